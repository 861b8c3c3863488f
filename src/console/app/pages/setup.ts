/**
 * Setup: the guided flow (detect → GPU → plan diff → apply → reboot → verify → VM → install ...)
 * over /api/v1/setup. Each step shows its state, what happened and what to do; the VFIO plan's
 * diff is shown before "Apply these changes" (the only confirmation the flow asks for).
 */
import { getOptional, post } from "../api.ts";
import { badge, button, confirmAction, field, h, section } from "../dom.ts";
import { attempt } from "../errors.ts";
import { absent, livePage, type Page } from "./live.ts";

type StepState = "pending" | "running" | "done" | "waiting" | "failed" | "skipped";
interface SetupStep {
  id: string;
  title: string;
  state: StepState;
  detail: string;
  advice: string | null;
  waitingFor: "confirm" | "reboot" | "input" | "guest" | null;
  error: { code: string; message: string } | null;
  result: Record<string, unknown> | null;
}
interface SetupStatus {
  state: "not-started" | "in-progress" | "waiting" | "failed" | "done";
  current: string | null;
  running: boolean;
  options: Record<string, unknown> & { passwordSet?: boolean };
  steps: SetupStep[];
}

const tone = (s: StepState) => (s === "done" ? "ok" : s === "failed" ? "fail" : s === "running" ? "info" : s === "waiting" ? "warn" : "off");

function optionsForm(status: SetupStatus): HTMLElement {
  const o = status.options;
  const inputs: [string, string, string][] = [
    ["gpu", "GPU (PCI address)", "e.g. 0000:01:00.0; empty: the recommended one"],
    ["vmName", "VM name", "default windows"],
    ["windowsIso", "Windows ISO", "absolute path on this machine (never downloaded)"],
    ["virtioIso", "virtio drivers ISO", "absolute path"],
  ];
  const controls = inputs.map(([k, label, hint]) => {
    const el = h("input", { name: k, value: typeof o[k] === "string" ? (o[k] as string) : "", autocomplete: "off" }) as HTMLInputElement;
    return { k, el, f: field(label, el, hint) };
  });
  const form = h("form", { class: "grid", "aria-label": "Setup options" }, controls.map((c) => c.f), h("div", { class: "actions" }, h("button", { type: "submit", class: "btn plain", title: "Save these options for the flow" }, "Save options")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body: Record<string, string | null> = {};
    for (const c of controls) body[c.k] = c.el.value.trim() || null;
    await attempt("save the setup options", () => post("/setup/options", body));
  });
  return form;
}

function stepItem(s: SetupStep, status: SetupStatus): HTMLElement {
  const diff = s.id === "vfio-plan" && typeof s.result?.diff === "string" ? h("details", null, h("summary", null, "The changes to the host's files"), h("pre", { class: "log", tabindex: "0", role: "region", "aria-label": "VFIO plan diff" }, s.result.diff as string)) : null;
  const apply =
    s.id === "vfio-apply" && s.waitingFor === "confirm"
      ? button(
          "Apply these changes",
          async () => {
            if (await confirmAction("Apply the VFIO changes?", "The host's boot configuration is changed (a backup is kept; the VFIO page can roll it back). A reboot follows.", "Apply"))
              await attempt("apply the VFIO changes", () => post("/setup/advance", { confirm: true, wait: false }));
          },
          { title: "Write the planned files (backup kept) and continue", kind: "primary" },
        )
      : null;
  const retry = s.state === "failed" || s.state === "waiting" ? button("Retry", async () => void (await attempt(`retry ${s.title}`, () => post(`/setup/steps/${s.id}/retry`, { wait: false }))), { title: `Run “${s.title}” again`, disabled: status.running }) : null;
  return h(
    "li",
    { class: s.id === status.current ? "current" : "", "data-step": s.id },
    h("strong", null, s.title),
    " ",
    badge(s.state, tone(s.state)),
    h("p", null, s.detail),
    s.error ? h("p", { class: "outcome fail" }, `What happened: ${s.error.message}`) : null,
    s.advice ? h("p", null, h("strong", null, "What to do: "), s.advice) : null,
    diff,
    h("div", { class: "row-actions" }, apply, retry),
  );
}

export const setupPage: Page = {
  title: "Setup",
  render(root) {
    return livePage(
      root,
      "setup",
      async () => {
        const status = await getOptional<SetupStatus>("/setup");
        if (!status) return absent("Setup", "/api/v1/setup", "follow the steps with the CLI: `neuron-appliance hardware`, `vfio plan`, `vfio apply`, reboot, `vfio verify`, `vm define`.");
        const advance = button("Continue", async () => void (await attempt("continue the setup", () => post("/setup/advance", { wait: false }))), { title: "Run the flow until a step waits, fails or everything is done", kind: "primary", disabled: status.running || status.state === "done" });
        const reset = button(
          "Start over",
          async () => {
            if (await confirmAction("Start the setup over?", "Every step becomes pending again. Changes already made to the host stay (the VFIO page rolls them back).", "Start over")) await attempt("reset the setup", () => post("/setup/reset", {}));
          },
          { title: "Mark every step pending again (host changes are not undone)", kind: "danger", disabled: status.running },
        );
        return [
          section("Guided setup", h("p", { role: "status" }, `Flow: ${status.state}${status.running ? " (running)" : ""}`), h("ol", { class: "steps" }, status.steps.map((s) => stepItem(s, status))), h("div", { class: "row-actions" }, advance, reset)),
          section("Options", optionsForm(status)),
        ];
      },
      ["setup."],
    ).dispose;
  },
};
