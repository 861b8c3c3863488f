/** Audit log: who changed what, newest first. */
import { get } from "../api.ts";
import { badge, fmtTime, h, table } from "../dom.ts";
import { livePage, type Page } from "./live.ts";

interface Entry {
  id: number;
  createdAt: string;
  actor: string;
  action: string;
  target: string;
  status: string;
  dryRun: boolean;
}

export const auditPage: Page = {
  title: "Audit log",
  render(root) {
    const filter = h("input", { id: "audit-action", type: "search", placeholder: "e.g. vm.define", title: "Show only rows of this action" }) as HTMLInputElement;
    const form = h("form", { class: "inline", role: "search" }, h("label", { for: "audit-action" }, "Action"), filter, h("button", { type: "submit", class: "btn plain", title: "Apply the filter" }, "Filter"));
    root.appendChild(form);
    const page = livePage(
      root,
      "audit log",
      async () => {
        const q = new URLSearchParams({ limit: "200" });
        if (filter.value.trim()) q.set("action", filter.value.trim());
        const rows = await get<Entry[]>(`/audit?${q}`);
        return table(
          ["When", "Who", "What", "Target", "Outcome"],
          rows.map((r) => [fmtTime(r.createdAt), r.actor, r.action, r.target, badge(r.dryRun ? `${r.status} (dry run)` : r.status, r.status === "applied" || r.status.startsWith("2") ? "ok" : r.status === "failed" || /^[45]/.test(r.status) ? "fail" : "info")]),
          "Every change made through the appliance, newest first",
        );
      },
      ["vm.state", "pairing.outcome", "update.progress"],
    );
    form.addEventListener("submit", (e) => (e.preventDefault(), page.reload()));
    return page.dispose;
  },
};
