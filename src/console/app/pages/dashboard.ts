/** Dashboard: the doctor's checks, the hardware verdicts, the VFIO state and the one next thing to do. */
import { get, getOptional } from "../api.ts";
import { badge, h, section, table } from "../dom.ts";
import { livePage, type Page } from "./live.ts";

interface Check {
  id: string;
  title: string;
  status: "ok" | "warn" | "fail";
  detail: string;
}
interface SystemInfo {
  version: string;
  uptimeSeconds: number;
  native: { loaded: boolean; version: string | null };
  doctor: { status: "ok" | "warn" | "fail"; checks: Check[] };
}
interface Gpu {
  address: string;
  name: string;
  role: "host" | "candidate" | "other";
  roleReason: string;
  groupClean: boolean;
  isolationReason: string;
  boundToVfio: boolean;
  driver: string | null;
}
interface Hardware {
  cpu: { vendor: string; model: string | null; virtualization: string | null; reason: string };
  iommu: { state: string; enabled: boolean; reason: string; groupCount: number };
  gpus: Gpu[];
  warnings: string[];
}
interface VmList {
  vms: { name: string; state: string }[];
}

/** The single most useful next step, from what the machine reports. */
export function nextStep(sys: SystemInfo, hw: Hardware | null, vms: VmList | null): { text: string; href: string | null } {
  const failing = sys.doctor.checks.find((c) => c.status === "fail");
  if (hw && !hw.cpu.virtualization) return { text: `Enable CPU virtualization (VT-x / AMD-V) in the firmware settings: ${hw.cpu.reason}`, href: null };
  if (hw && !hw.iommu.enabled) return { text: `Turn the IOMMU on: ${hw.iommu.reason}`, href: "#/setup" };
  const candidate = hw?.gpus.find((g) => g.role === "candidate");
  if (hw && !candidate) return { text: "No GPU can be passed through yet: a second GPU (or an integrated one for the host) is needed.", href: null };
  if (candidate && !candidate.boundToVfio) return { text: `Prepare ${candidate.name} (${candidate.address}) for passthrough: run the guided setup.`, href: "#/setup" };
  if (vms && vms.vms.length === 0) return { text: "Create your first VM.", href: "#/vms" };
  if (failing) return { text: `Fix: ${failing.title} — ${failing.detail}`, href: null };
  if (vms && !vms.vms.some((v) => v.state === "running")) return { text: `Start a VM (${vms.vms[0]!.name}).`, href: "#/vms" };
  return { text: "Everything is in place: pair a Moonlight client to stream.", href: "#/streaming" };
}

const tone = (s: string) => (s === "ok" ? "ok" : s === "warn" ? "warn" : "fail") as "ok" | "warn" | "fail";

export const dashboardPage: Page = {
  title: "Dashboard",
  render(root) {
    return livePage(
      root,
      "dashboard",
      async () => {
        const [sys, hw, vms] = await Promise.all([get<SystemInfo>("/system"), getOptional<Hardware>("/hardware").catch(() => null), get<VmList>("/vms").catch(() => null)]);
        const next = nextStep(sys, hw, vms);
        return [
          h("section", { class: "card next", "aria-labelledby": "next-h" }, h("h2", { id: "next-h" }, "Next thing to do"), h("p", null, next.href ? h("a", { href: next.href }, next.text) : next.text)),
          section(
            "Doctor checks",
            h("p", null, "Overall: ", badge(sys.doctor.status, tone(sys.doctor.status)), ` — appliance ${sys.version}, up ${Math.round(sys.uptimeSeconds / 60)} min`),
            table(["Check", "Status", "Detail"], sys.doctor.checks.map((c) => [c.title, badge(c.status, tone(c.status)), c.detail]), "What this machine can do for the appliance"),
          ),
          hw
            ? section(
                "Hardware",
                h("ul", { class: "facts" }, h("li", null, `CPU: ${hw.cpu.model ?? hw.cpu.vendor} — virtualization ${hw.cpu.virtualization ?? "not available"}`), h("li", null, `IOMMU: ${hw.iommu.state} (${hw.iommu.groupCount} groups) — ${hw.iommu.reason}`)),
                table(
                  ["GPU", "Address", "Verdict", "VFIO"],
                  hw.gpus.map((g) => [g.name, g.address, h("span", { title: g.roleReason }, badge(g.role === "candidate" ? "can be passed through" : g.role === "host" ? "host display" : "other", g.role === "candidate" ? "ok" : "info")), g.boundToVfio ? badge("bound to vfio-pci", "ok") : badge(`driver ${g.driver ?? "none"}`, "off")]),
                  "GPUs and their passthrough verdicts",
                ),
                hw.warnings.length ? h("ul", { class: "warnings" }, hw.warnings.map((w) => h("li", null, w))) : null,
              )
            : section("Hardware", h("p", null, "Hardware detection is not available on this appliance.")),
        ];
      },
      ["vm.state", "setup.", "update.progress"],
    ).dispose;
  },
};
