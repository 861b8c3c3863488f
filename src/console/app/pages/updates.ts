/** Updates: history with the reasons in words, a run with live progress and log, snapshots, rollback. */
import { get, getOptional, post } from "../api.ts";
import { badge, button, confirmAction, fmtTime, h, section, table } from "../dom.ts";
import { attempt } from "../errors.ts";
import { on } from "../events.ts";
import { absent, livePage, type Page } from "./live.ts";

interface UpdateView {
  id: number;
  status: "running" | "succeeded" | "failed" | "rolled_back";
  verdict: string | null;
  startedAt: string;
  finishedAt: string | null;
  packages: { name: string; from: string | null; to: string | null }[];
  reason: string | null;
  checks: { name: string; status: string; detail: string; required: boolean }[];
}
interface Snapshot {
  id: number;
  kind: string;
  label: string;
  createdAt: string;
  updateId: number | null;
  deleted: boolean;
}

const tone = (s: string) => (s === "succeeded" ? "ok" : s === "running" ? "info" : s === "rolled_back" ? "warn" : "fail");

export const updatesPage: Page = {
  title: "Updates",
  render(root) {
    const progress = h("progress", { max: 1, value: 0, id: "update-progress", "aria-label": "Update progress" }) as HTMLProgressElement;
    const phase = h("p", { role: "status", id: "update-phase" }, "No update is running.");
    const log = h("pre", { class: "log", id: "update-log", tabindex: "0", role: "log", "aria-label": "Update log" });
    const run = button(
      "Run update",
      async () => {
        if (!(await confirmAction("Update the system now?", "A snapshot is taken first; a failed health check rolls the system back to it.", "Run update"))) return;
        log.textContent = "";
        const r = await attempt("start the update", () => post<{ id: number }>("/updates", {}));
        if (r) phase.textContent = `Update ${r.id} started…`;
      },
      { title: "Snapshot, pacman -Syu, snapshot, health checks; rolls back on failure", kind: "primary" },
    );
    root.appendChild(section("Run an update", h("div", { class: "row-actions" }, run), phase, progress, log));
    const off = on(["update."], (e) => {
      const d = e.data as { id: number | null; type: string; phase?: string; message?: string; line?: string; total?: number; done?: number; action?: string | null; pkg?: string | null; name?: string; status?: string; update?: UpdateView };
      if (e.type === "update.output" && d.line !== undefined) {
        log.textContent += d.line + "\n";
        if (log.textContent!.length > 200_000) log.textContent = log.textContent!.slice(-150_000);
        log.scrollTop = log.scrollHeight;
      } else if (d.type === "progress" && d.total) {
        progress.max = d.total;
        progress.value = d.done ?? 0;
        phase.textContent = `Update ${d.id}: ${d.action ?? "working"} ${d.pkg ?? ""} (${d.done}/${d.total})`;
      } else if (d.type === "phase") phase.textContent = `Update ${d.id}: ${d.phase} — ${d.message}`;
      else if (d.type === "check") phase.textContent = `Update ${d.id}: check ${d.name} ${d.status}`;
      else if (d.type === "done") {
        progress.value = progress.max;
        phase.textContent = `Update ${d.id} finished: ${d.update?.status ?? "done"}${d.update?.reason ? ` — ${d.update.reason}` : ""}`;
        history.reload();
      }
    });
    const history = livePage(root, "update history", async () => {
      const list = await getOptional<{ updates: UpdateView[] }>("/updates");
      if (!list) return absent("Updates", "/api/v1/updates", "update with `neuron-appliance update run`.");
      const snaps = await getOptional<{ backend: string | null; snapshots: Snapshot[] }>("/snapshots").catch(() => null);
      return [
        section(
          "History",
          table(
            ["#", "Started", "Outcome", "Packages", "What happened", ""],
            list.updates.map((u) => [
              String(u.id),
              fmtTime(u.startedAt),
              badge(u.status.replace("_", " "), tone(u.status)),
              u.packages.length ? `${u.packages.length} (${u.packages.slice(0, 3).map((p) => p.name).join(", ")}${u.packages.length > 3 ? ", …" : ""})` : "—",
              u.reason ?? (u.checks.filter((c) => c.status === "failed").map((c) => `${c.name}: ${c.detail}`).join("; ") || "—"),
              u.status === "succeeded"
                ? button(
                    "Roll back",
                    async () => {
                      if (await confirmAction(`Roll back update ${u.id}?`, "The next boot mounts the snapshot taken before it; the machine reboots unless told otherwise.", "Roll back"))
                        await attempt(`roll back update ${u.id}`, () => post(`/updates/${u.id}/rollback`, { reboot: false }));
                      history.reload();
                    },
                    { title: "Return to the system as it was before this update", kind: "danger" },
                  )
                : "",
            ]),
            "System updates, newest first",
          ),
        ),
        snaps
          ? section(
              "Snapshots",
              h("p", null, `Backend: ${snaps.backend ?? "none (this root cannot take snapshots)"}`),
              table(["#", "Kind", "Label", "Taken", "Update"], snaps.snapshots.filter((s) => !s.deleted).map((s) => [String(s.id), s.kind, s.label, fmtTime(s.createdAt), s.updateId ? `#${s.updateId}` : "—"]), "Snapshots of the system root"),
            )
          : null,
      ];
    });
    return () => {
      off();
      history.dispose();
    };
  },
};
