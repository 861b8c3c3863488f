/**
 * Migration: plan a move of a Windows disk (or folder) into this machine's home, per item with its
 * fidelity, run it with live progress, read the report, undo — over /api/v1/migrations.
 */
import { getOptional, post } from "../api.ts";
import { badge, button, confirmAction, field, fmtTime, h, section, table } from "../dom.ts";
import { attempt } from "../errors.ts";
import { on } from "../events.ts";
import { absent, livePage, type Page } from "./live.ts";

type Fidelity = "exact" | "translated" | "reinstall" | "cannot";
interface PlanItem {
  id: string;
  label: string;
  category: string;
  files: number;
  bytes: number;
  fidelity: Fidelity;
  why: string | null;
  conflicts: { count: number };
}
interface Plan {
  id: number;
  status: string;
  source: { input: string; warnings: string[]; hibernated?: boolean; dirty?: boolean };
  items: PlanItem[];
  totals: { items: number; files: number; bytes: number; conflicts: number };
  estimateSeconds: number;
  warnings: string[];
}
interface Summary {
  id: number;
  status: string;
  source: string;
  profiles: string[];
  createdAt: string;
  files: number;
  bytes: number;
}
interface Progress {
  id: number;
  phase: string;
  filesDone: number;
  filesTotal: number;
  bytesDone: number;
  bytesTotal: number;
  current: string | null;
  etaSeconds: number | null;
}

const FIDELITY: Record<Fidelity, { text: string; tone: "ok" | "info" | "warn" | "fail" }> = {
  exact: { text: "exact copy", tone: "ok" },
  translated: { text: "translated", tone: "info" },
  reinstall: { text: "reinstall", tone: "warn" },
  cannot: { text: "cannot move", tone: "fail" },
};
/** What the last undo of a plan did, said under it (this page's memory). */
const undone = new Map<number, { removed: number; restored: number; refused: { path: string; reason: string }[] }>();
const mib = (b: number) => `${(b / 1048576).toFixed(1)} MiB`;

function undoNote(id: number): HTMLElement | null {
  const u = undone.get(id);
  if (!u) return null;
  return h(
    "div",
    { class: "undo-result", role: "status" },
    h("p", null, `Undone: ${u.removed} file${u.removed === 1 ? "" : "s"} removed${u.restored ? `, ${u.restored} restored` : ""}${u.refused.length ? `; ${u.refused.length} kept because they changed or went missing since the copy:` : "."}`),
    u.refused.length ? h("ul", null, u.refused.slice(0, 20).map((r) => h("li", null, `${r.path} (${r.reason})`))) : null,
  );
}

function planView(plan: Plan, reload: () => void): HTMLElement {
  // a hibernated (Fast Startup) or uncleanly shut down Windows: copying is a choice, never a default
  // the plan repeats the source's warnings: each said once
  const warnings = [...new Set([...plan.warnings, ...plan.source.warnings])];
  const unsafe = plan.source.hibernated === true || plan.source.dirty === true;
  const acceptId = `accept-unsafe-${plan.id}`;
  const accept = unsafe ? (h("input", { type: "checkbox", id: acceptId, name: "acceptUnsafeSource" }) as HTMLInputElement) : null;
  const acceptField = accept
    ? h(
        "p",
        { class: "accept-unsafe" },
        accept,
        " ",
        h("label", { for: acceptId }, `Copy anyway: Windows on this source ${plan.source.hibernated ? "is hibernated (Fast Startup)" : "was not shut down cleanly"}. It stays read-only; files open in Windows then may be out of date.`),
      )
    : null;
  const run = button(
    "Run migration",
    async () => {
      if (await confirmAction(`Run migration ${plan.id}?`, `${plan.totals.files} files (${mib(plan.totals.bytes)}) are copied into this machine's home; nothing on the source changes. Undo removes what was copied.`, "Run"))
        await attempt("run the migration", () => post(`/migrations/${plan.id}/run`, accept?.checked ? { acceptUnsafeSource: true } : {}));
    },
    { title: "Copy the planned items (the source stays read-only)", kind: "primary", disabled: plan.status === "running" || plan.status === "done" },
  );
  const undo = button(
    "Undo",
    async () => {
      if (await confirmAction(`Undo migration ${plan.id}?`, "Files it copied are removed, unless changed since (those stay, listed).", "Undo")) {
        const r = await attempt("undo the migration", () => post<{ removed: number; restored: number; refused: { path: string; reason: string }[] }>(`/migrations/${plan.id}/undo`, {}));
        if (r) undone.set(plan.id, r);
        reload();
      }
    },
    { title: "Remove what this migration copied", kind: "danger", disabled: plan.status !== "done" && plan.status !== "failed" && plan.status !== "interrupted" },
  );
  return section(
    `Plan ${plan.id} — ${plan.status}`,
    h("p", null, `From ${plan.source.input}: ${plan.totals.items} items, ${plan.totals.files} files, ${mib(plan.totals.bytes)}, ${plan.totals.conflicts} conflicts; about ${Math.ceil(plan.estimateSeconds / 60)} min.`),
    warnings.length ? h("ul", { class: "warnings" }, warnings.map((w) => h("li", null, w))) : null,
    table(["Item", "Category", "Files", "Size", "Fidelity", "Why"], plan.items.map((i) => [i.label, i.category, String(i.files), mib(i.bytes), badge(FIDELITY[i.fidelity].text, FIDELITY[i.fidelity].tone), i.why ?? "—"]), "What moves, and how faithfully"),
    plan.status === "planned" || plan.status === "interrupted" || plan.status === "failed" ? acceptField : null,
    undoNote(plan.id),
    h("div", { class: "row-actions" }, run, undo),
  );
}

export const migrationPage: Page = {
  title: "Migration",
  render(root) {
    const progress = h("progress", { max: 1, value: 0, "aria-label": "Migration progress" }) as HTMLProgressElement;
    const status = h("p", { role: "status" }, "No migration is running.");
    let selected: number | null = null;
    const page = livePage(
      root,
      "migrations",
      async () => {
        const list = await getOptional<{ migrations: Summary[] }>("/migrations");
        if (!list) return absent("Migration", "/api/v1/migrations", "plan a migration with the CLI: `neuron-appliance migrate plan SOURCE`.");
        const source = h("input", { required: true, placeholder: "/dev/sdb3, an image file or a folder", autocomplete: "off" }) as HTMLInputElement;
        const user = h("input", { autocomplete: "off" }) as HTMLInputElement;
        const form = h("form", { class: "grid", "aria-label": "Plan a migration" }, field("Windows disk or folder", source), field("Windows user", user, "empty: the only profile"), h("div", { class: "actions" }, h("button", { type: "submit", class: "btn primary", title: "Look at the source and list what would move (nothing is copied yet)" }, "Plan")));
        form.addEventListener("submit", async (ev) => {
          ev.preventDefault();
          const plan = await attempt("plan the migration", () => post<Plan>("/migrations/plan", { source: source.value.trim(), ...(user.value.trim() ? { user: user.value.trim() } : {}) }));
          if (plan) ((selected = plan.id), page.reload());
        });
        selected ??= list.migrations[0]?.id ?? null;
        const plan = selected !== null ? await getOptional<Plan>(`/migrations/${selected}`) : null;
        const report = selected !== null && plan && plan.status !== "planned" ? await getOptional<{ words: string }>(`/migrations/${selected}/report`).catch(() => null) : null;
        return [
          section("Plan a migration", form),
          plan ? planView(plan, page.reload) : null,
          section("Progress", status, progress),
          report ? section("Report", h("p", null, report.words)) : null,
          section(
            "Migrations",
            table(["#", "Source", "Profiles", "Status", "Planned", ""], list.migrations.map((m) => [String(m.id), m.source, m.profiles.join(", "), m.status, fmtTime(m.createdAt), button("Show", () => void ((selected = m.id), page.reload()), { title: `Show plan ${m.id}` })]), "Migrations, newest first"),
          ),
        ];
      },
      ["migration.state"],
    );
    const off = on(["migration.progress"], (e) => {
      const p = e.data as Progress;
      progress.max = Math.max(1, p.bytesTotal);
      progress.value = p.bytesDone;
      status.textContent = `Migration ${p.id}: ${p.phase} — ${p.filesDone}/${p.filesTotal} files${p.current ? `, ${p.current}` : ""}${p.etaSeconds !== null ? `, about ${Math.ceil(p.etaSeconds)} s left` : ""}`;
    });
    return () => {
      off();
      page.dispose();
    };
  },
};
