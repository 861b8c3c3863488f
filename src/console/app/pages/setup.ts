/** Setup: the guided flow (detect → GPU → plan diff → apply → reboot → verify → VM → install), over the setup API. */
import { getOptional, post } from "../api.ts";
import { badge, button, h, section } from "../dom.ts";
import { attempt } from "../errors.ts";
import { absent, livePage, type Page } from "./live.ts";

interface SetupStep {
  id: string;
  title?: string;
  status: string;
  detail?: string | null;
}
interface SetupState {
  steps?: SetupStep[];
  current?: string | null;
  [k: string]: unknown;
}

const FLOW = ["detect", "gpu", "plan", "apply", "reboot", "verify", "vm", "install"];
const tone = (s: string) => (/done|ok|passed|complete/.test(s) ? "ok" : /fail|error/.test(s) ? "fail" : /run|progress|active|current/.test(s) ? "info" : "off");

export const setupPage: Page = {
  title: "Setup",
  render(root) {
    return livePage(
      root,
      "setup",
      async () => {
        const state = await getOptional<SetupState>("/setup");
        if (!state) return absent("Setup", "/api/v1/setup", "follow the steps with the CLI: `neuron-appliance hardware`, `vfio plan`, `vfio apply`, reboot, `vfio verify`, `vm define`.");
        const steps: SetupStep[] = state.steps ?? FLOW.map((id) => ({ id, status: "pending" }));
        return section(
          "Guided setup",
          h("ol", { class: "steps" }, steps.map((s) => h("li", { class: s.id === state.current ? "current" : "" }, h("strong", null, s.title ?? s.id), " ", badge(s.status, tone(s.status)), s.detail ? h("p", null, s.detail) : null))),
          h("div", { class: "row-actions" }, button("Continue", async () => void (await attempt("continue the setup", () => post("/setup/next", {}))), { title: "Run the next step of the setup", kind: "primary" })),
        );
      },
      ["setup."],
    ).dispose;
  },
};
