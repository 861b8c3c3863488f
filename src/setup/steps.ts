/**
 * What each setup step does. A runner reads the current state of the machine and acts only
 * where something is missing, so running it twice changes nothing; it returns done/skipped,
 * or waiting (with advice) when something outside the flow must happen first, and throws a
 * domain error (mapped to plain advice) when it fails.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import type { AppsService } from "../apps/service.ts";
import type { CaptureService } from "../capture/service.ts";
import { AppError } from "../errors.ts";
import type { GuestService } from "../guest/service.ts";
import type { Gpu, HardwareReport } from "../hardware/model.ts";
import type { HardwareService } from "../hardware/service.ts";
import type { VfioService } from "../vfio/service.ts";
import type { VmSpecInput } from "../vm/model.ts";
import type { VmService } from "../vm/service.ts";
import { shmName } from "../vm/shm.ts";
import { vmQmpSocket } from "../vm/qmp-socket.ts";
import { pressBootKeys } from "./boot-keys.ts";
import { hostMonitors, sizeVm, type HostShare } from "../vm/sizing.ts";
import type { SetupOptions, StepId, WaitingFor } from "./model.ts";

export type StepOutcome =
  | { state: "done" | "skipped"; detail: string; result?: Record<string, unknown> }
  | { state: "waiting"; waitingFor: WaitingFor; detail: string; advice: string; result?: Record<string, unknown> };

export interface StepContext {
  options: SetupOptions;
  /** confirm: true (CLI --yes, the console's Apply) lets vfio-apply write. */
  confirm: boolean;
  /** The recorded result of an earlier step. */
  result(id: StepId): Record<string, unknown> | null;
}

export interface AnswerMediaInput {
  vmName: string;
  template: "win11" | "win10";
  user: string;
  password: string;
  lookingGlassInstaller?: string;
  ivshmemDriver?: string;
  resolution: { width: number; height: number };
}

export interface StepDeps {
  settings: {
    root: string;
    stateDir: string;
    shmDir: string;
    share: HostShare;
    /** How long one pass waits for the guest (agent, Looking Glass), ms. */
    guestWaitMs: number;
    /** The VMs' QMP sockets (<qmpDir>/<vm>.qmp): the first boot of a Windows ISO gets its "press any key" there. */
    qmpDir?: string;
    /** How long the first boot presses keys for the install ISO's prompt (ms); 0: none. */
    bootKeysMs?: number;
    /** Spec fields every VM of the flow gets (network, display); default: the VM module's. */
    vmDefaults?: Partial<Pick<VmSpecInput, "network" | "graphics">>;
  };
  hardware: HardwareService;
  vfio: VfioService;
  vms: VmService;
  guest: Pick<GuestService, "status"> | null;
  capture: Pick<CaptureService, "inspectSource"> | null;
  apps: AppsService;
  /** Builds the unattended-install ISO (autounattend.xml and the installers); null where it cannot. */
  answerMedia: ((input: AnswerMediaInput) => Promise<{ path: string; files: string[] }>) | null;
}

type Runner = (deps: StepDeps, ctx: StepContext) => Promise<StepOutcome>;

export class StepFailure extends AppError {
  constructor(
    errorCode: string,
    message: string,
    readonly advice: string,
  ) {
    super(errorCode, message, { status: 422 });
  }
}

const DEFAULT_VM = "windows";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The GPU to pass through: the chosen one, else the best candidate (clean group, not the boot display). */
export function recommendGpu(report: HardwareReport): { gpu: Gpu; reasons: string[] } | null {
  const candidates = report.gpus.filter((g) => g.role === "candidate");
  if (!candidates.length) return null;
  const score = (g: Gpu) => (g.groupClean ? 4 : 0) + (g.bootVga === false ? 2 : 0) + (g.resetBug.affected ? 0 : 1);
  const best = [...candidates].sort((a, b) => score(b) - score(a) || a.address.localeCompare(b.address))[0]!;
  const reasons = [best.roleReason];
  reasons.push(best.groupClean ? "its IOMMU group holds only its own functions" : `its IOMMU group is not clean: ${best.isolationReason}`);
  if (best.bootVga === false) reasons.push("the host does not boot on it (the host keeps its display)");
  if (best.resetBug.affected) reasons.push(`it has the AMD reset bug: ${best.resetBug.reason}`);
  if (candidates.length > 1) reasons.push(`chosen over ${candidates.filter((c) => c !== best).map((c) => `${c.address} (${c.name})`).join(", ")}`);
  return { gpu: best, reasons };
}

function gpuOf(ctx: StepContext): string {
  const g = ctx.result("gpu")?.gpu;
  if (typeof g !== "string") throw new StepFailure("SETUP_STEP_MISSING", "the GPU was not chosen", "reset the flow from the gpu step and run it again");
  return g;
}

function bootId(root: string): string | null {
  try {
    return readFileSync(join(root, "proc", "sys", "kernel", "random", "boot_id"), "utf8").trim() || null;
  } catch {
    return null;
  }
}

const vmNameOf = (ctx: StepContext) => ctx.options.vmName ?? DEFAULT_VM;
const templateOf = (ctx: StepContext) => ctx.options.template ?? "win11";

const detect: Runner = async (d) => {
  const r = d.hardware.detect();
  if (!r.cpu.virtualization)
    throw new StepFailure(
      "CPU_NO_VIRTUALIZATION",
      r.cpu.reason,
      /virtual machine/.test(r.cpu.reason)
        ? "this system is a virtual machine: GPU passthrough needs the appliance on the machine itself (or a host that gives this VM nested virtualisation and the GPU)"
        : `turn on ${r.cpu.vendor === "amd" ? "SVM (AMD-V)" : "VT-x"} in the firmware setup (UEFI/BIOS), then run setup again`,
    );
  const candidates = r.gpus.filter((g) => g.role === "candidate");
  if (!candidates.length) {
    const why = r.gpus.map((g) => `${g.address} ${g.name}: ${g.roleReason}`).join("; ") || "no GPU found";
    throw new StepFailure("NO_PASSTHROUGH_GPU", `no GPU can be passed through (${why})`, "GPU passthrough needs a second GPU besides the one the host displays on; install one (or connect the host's display to the integrated GPU) and run setup again");
  }
  return {
    state: "done",
    detail: `${r.cpu.model ?? r.cpu.vendor}; IOMMU ${r.iommu.enabled ? "on" : "off"}; ${r.gpus.length} GPU(s), ${candidates.length} can be passed through`,
    result: {
      cpu: { vendor: r.cpu.vendor, model: r.cpu.model, virtualization: r.cpu.virtualization },
      iommu: { enabled: r.iommu.enabled, state: r.iommu.state, reason: r.iommu.reason },
      gpus: r.gpus.map((g) => ({ address: g.address, name: g.name, role: g.role, reason: g.roleReason })),
      warnings: r.warnings,
    },
  };
};

const gpu: Runner = async (d, ctx) => {
  const r = d.hardware.detect();
  const rec = recommendGpu(r);
  const chosen = ctx.options.gpu;
  if (chosen) {
    const g = r.gpus.find((x) => x.address === chosen);
    if (!g) {
      const dev = r.devices.find((x) => x.address === chosen);
      throw new StepFailure("NOT_A_GPU", dev ? `${chosen} is a ${dev.kind} device (${dev.deviceName}), not a GPU` : `no PCI device ${chosen}`, `choose one of: ${r.gpus.filter((x) => x.role === "candidate").map((x) => `${x.address} (${x.name})`).join(", ")}`);
    }
    if (g.role !== "candidate")
      throw new StepFailure(g.role === "host" ? "GPU_IS_HOST" : "GPU_NOT_CANDIDATE", `${chosen} cannot be passed through: ${g.roleReason}`, rec ? `choose ${rec.gpu.address} (${rec.gpu.name}) instead` : "this machine has no GPU to pass through");
    return { state: "done", detail: `${g.address} ${g.name} (chosen)`, result: { gpu: g.address, name: g.name, vfioIds: g.vfioIds, reasons: ["chosen by you", g.roleReason], recommended: rec?.gpu.address ?? null } };
  }
  if (!rec) throw new StepFailure("NO_PASSTHROUGH_GPU", "no GPU can be passed through", "install a second GPU, then run setup again");
  return { state: "done", detail: `${rec.gpu.address} ${rec.gpu.name} (recommended)`, result: { gpu: rec.gpu.address, name: rec.gpu.name, vfioIds: rec.gpu.vfioIds, reasons: rec.reasons, recommended: rec.gpu.address } };
};

const vfioPlan: Runner = async (d, ctx) => {
  const plan = d.vfio.plan({ gpu: gpuOf(ctx), acsOverride: ctx.options.acsOverride ?? false });
  return {
    state: "done",
    detail: plan.changes.length ? `${plan.changes.length} file(s) to change: ${plan.changes.map((c) => c.path).join(", ")}` : "the host is already configured: nothing to change",
    result: { diff: plan.diff, changes: plan.changes.map((c) => ({ path: c.path, action: c.action, reason: c.reason })), kernelParams: plan.kernelParams, warnings: plan.warnings, commands: plan.commands.map((c) => c.argv.join(" ")) },
  };
};

const vfioApply: Runner = async (d, ctx) => {
  const gpuAddr = gpuOf(ctx);
  const plan = d.vfio.plan({ gpu: gpuAddr, acsOverride: ctx.options.acsOverride ?? false });
  if (plan.changes.length === 0) return { state: "done", detail: "nothing to write: the configuration is in place", result: { changed: false, bootId: bootId(d.settings.root) } };
  if (!ctx.confirm)
    return {
      state: "waiting",
      waitingFor: "confirm",
      detail: `${plan.changes.length} file(s) will change (see the plan's diff)`,
      advice: "review the diff of the VFIO plan, then confirm (setup --yes, or Apply in the console)",
    };
  const r = await d.vfio.apply({ gpu: gpuAddr, acsOverride: ctx.options.acsOverride ?? false, regenerate: ctx.options.regenerate ?? true }, "setup");
  const failed = r.commands.find((c) => !c.ok);
  if (failed)
    throw new StepFailure("REGENERATE_FAILED", `${failed.argv.join(" ")} failed: ${failed.output.split("\n").filter(Boolean).pop() ?? `exit ${failed.exitCode}`}`, `the files are written (audit #${r.auditId}); fix what the command reports, then retry this step (or roll back with \`neuron-appliance vfio rollback ${r.auditId}\`)`);
  return {
    state: "done",
    detail: r.changed ? `written (audit #${r.auditId}, backup in ${r.backupDir})` : "nothing to write",
    result: { changed: r.changed, auditId: r.auditId, backupDir: r.backupDir, files: r.files, warnings: r.warnings, bootId: bootId(d.settings.root) },
  };
};

/** Every function of the GPU bound to vfio-pci. */
function gpuOnVfio(d: StepDeps, address: string): boolean {
  const g = d.hardware.detect().gpus.find((x) => x.address === address);
  return !!g && g.functions.every((f) => f.driver === "vfio-pci");
}

const reboot: Runner = async (d, ctx) => {
  const gpuAddr = gpuOf(ctx);
  const applied = ctx.result("vfio-apply");
  const before = typeof applied?.bootId === "string" ? applied.bootId : null;
  const now = bootId(d.settings.root);
  if (before && now && before !== now) return { state: "done", detail: "the machine has rebooted since the changes were written", result: { bootId: now } };
  if (gpuOnVfio(d, gpuAddr)) return { state: "done", detail: "the GPU is already on vfio-pci: no reboot needed", result: { bootId: now } };
  return {
    state: "waiting",
    waitingFor: "reboot",
    detail: "reboot needed: vfio-pci takes the GPU at boot",
    advice: "reboot the machine; setup checks the result at boot by itself and continues",
    result: { bootId: now },
  };
};

const verify: Runner = async (d, ctx) => {
  const report = d.vfio.verify(gpuOf(ctx));
  if (report.ok) return { state: "done", detail: "the GPU is on vfio-pci and isolated", result: { checks: report.checks } };
  const bad = report.checks.filter((c) => !c.ok);
  throw new StepFailure(
    "VFIO_NOT_ACTIVE",
    bad.map((c) => `${c.name}: ${c.detail}`).join("; "),
    bad.some((c) => c.name === "iommu")
      ? "the IOMMU is off: turn on VT-d / AMD IOMMU in the firmware setup, reboot, then retry this step"
      : bad.some((c) => c.name.startsWith("driver"))
        ? "the GPU is still on its own driver: check that the initramfs was rebuilt (retry the apply step with regeneration) and reboot, then retry this step"
        : bad.some((c) => c.name === "reset bug")
          ? "install vendor-reset (vendor-reset-dkms), reboot, then retry this step"
          : "fix what the checks report, reboot, then retry this step",
  );
};

function vmSpec(d: StepDeps, ctx: StepContext, media: Partial<Pick<VmSpecInput, "osIso" | "virtioIso" | "unattendIso">> = {}): { spec: VmSpecInput; warnings: string[]; monitor: string | null } {
  const o = ctx.options;
  const sizing = sizeVm(d.settings.root, d.settings.share, { memoryMiB: o.memoryMiB, vcpus: o.vcpus });
  const monitors = hostMonitors(d.settings.root);
  const resolution = monitors[0]?.resolution ?? { width: 1920, height: 1080 };
  const spec: VmSpecInput = {
    ...d.settings.vmDefaults,
    name: vmNameOf(ctx),
    template: templateOf(ctx),
    vcpus: sizing.vcpus,
    topology: sizing.topology,
    memoryMiB: sizing.memoryMiB,
    hugepages: o.hugepages ?? false,
    ...(o.pinning ? { pinning: sizing.pinning } : {}),
    disk: { kind: "new", sizeGiB: o.diskGiB ?? 128 },
    gpu: gpuOf(ctx),
    resolution,
    ...media,
  };
  const warnings = [...sizing.warnings];
  if (!monitors.length) warnings.push("no connected monitor with an EDID under /sys/class/drm: the VM's resolution is 1920x1080");
  return { spec, warnings, monitor: monitors[0]?.connector ?? null };
}

const vm: Runner = async (d, ctx) => {
  const name = vmNameOf(ctx);
  const { spec, warnings, monitor } = vmSpec(d, ctx);
  if (await d.vms.exists(name)) {
    const details = await d.vms.show(name);
    const gpuAddr = gpuOf(ctx);
    if (!details.hostdevs.includes(gpuAddr))
      throw new StepFailure("VM_NAME_TAKEN", `a VM named ${name} exists without the GPU ${gpuAddr}`, `choose another VM name (vmName) or delete that VM (neuron-appliance vm delete ${name}), then retry`);
    return { state: "done", detail: `VM ${name} is defined`, result: { name, spec: ctx.result("vm")?.spec ?? spec, existing: true } };
  }
  const created = await d.vms.create(spec, "setup");
  return {
    state: "done",
    detail: `VM ${name} defined: ${spec.vcpus} vCPUs, ${spec.memoryMiB} MiB, ${spec.resolution!.width}x${spec.resolution!.height}, Looking Glass ${created.shm.sizeMiB} MiB`,
    result: { name, spec, disk: created.disk, shm: created.shm, monitor, warnings },
  };
};

function mustExist(path: string | undefined, what: string, option: string): string {
  if (!path) throw new StepWaiting("input", `${what} not given`, `give the path of ${what} (${option}); it is never downloaded`);
  if (!existsSync(path) || !statSync(path).isFile()) throw new StepFailure("MEDIA_MISSING", `${what} ${path} does not exist`, `check the path of ${what} (${option}) and retry`);
  return path;
}

/** Thrown inside a runner to end it as waiting. */
export class StepWaiting extends Error {
  constructor(
    readonly waitingFor: WaitingFor,
    readonly detail: string,
    readonly advice: string,
  ) {
    super(detail);
  }
}

const installMedia: Runner = async (d, ctx) => {
  const prev = ctx.result("vm");
  const spec = prev?.spec as VmSpecInput | undefined;
  if (!spec) throw new StepFailure("SETUP_STEP_MISSING", "the VM step left no definition", "reset the flow from the vm step and run it again");
  const windows = spec.template !== "linux";
  try {
    const osIso = mustExist(ctx.options.windowsIso, windows ? "the Windows ISO" : "the installer ISO", "windowsIso / --windows-iso");
    const virtioIso = windows ? mustExist(ctx.options.virtioIso, "the virtio drivers ISO (virtio-win)", "virtioIso / --virtio-iso") : ctx.options.virtioIso;
    if (ctx.options.lookingGlassInstaller) mustExist(ctx.options.lookingGlassInstaller, "the Looking Glass host installer", "lookingGlassInstaller");
    const ivshmem = ctx.options.ivshmemDriver;
    if (ivshmem && !(existsSync(ivshmem) && statSync(ivshmem).isDirectory() && existsSync(join(ivshmem, "ivshmem.inf"))))
      throw new StepFailure("MEDIA_MISSING", `${ivshmem} holds no ivshmem.inf`, "give the directory of the IVSHMEM driver (ivshmem.inf, ivshmem.sys, ivshmem.cat) as ivshmemDriver, then retry");
    let unattendIso: string | undefined;
    let files: string[] = [];
    if (windows) {
      if (!d.answerMedia) throw new StepFailure("ANSWER_MEDIA_UNAVAILABLE", "cannot build the unattended-install ISO", "install xorriso, then retry this step");
      const built = await d.answerMedia({
        vmName: spec.name,
        template: spec.template as "win11" | "win10",
        user: ctx.options.user ?? "user",
        password: ctx.options.password ?? "",
        lookingGlassInstaller: ctx.options.lookingGlassInstaller,
        ivshmemDriver: ctx.options.ivshmemDriver,
        resolution: spec.resolution ?? { width: 1920, height: 1080 },
      });
      unattendIso = built.path;
      files = built.files;
    }
    const withMedia = { ...spec, osIso, ...(virtioIso ? { virtioIso } : {}), ...(unattendIso ? { unattendIso } : {}) };
    const details = await d.vms.show(spec.name);
    const attached = [osIso, virtioIso, unattendIso].filter((p): p is string => !!p);
    if (!attached.every((p) => details.disks.includes(p))) {
      if (details.state !== "shut off") throw new StepFailure("VM_RUNNING", `VM ${spec.name} is ${details.state}`, `shut the VM down (neuron-appliance vm stop ${spec.name}), then retry this step`);
      await d.vms.redefine(withMedia, "setup");
    }
    return { state: "done", detail: `attached: ${attached.join(", ")}`, result: { osIso, virtioIso: virtioIso ?? null, unattendIso: unattendIso ?? null, answerFiles: files } };
  } catch (err) {
    if (err instanceof StepWaiting) return { state: "waiting", waitingFor: err.waitingFor, detail: err.detail, advice: err.advice };
    throw err;
  }
};

const firstBoot: Runner = async (d, ctx) => {
  const name = vmNameOf(ctx);
  const details = await d.vms.show(name);
  if (details.state === "running") return { state: "done", detail: `VM ${name} is running`, result: { started: false } };
  if (ctx.result("first-boot")?.started === true && details.state !== "shut off")
    return { state: "waiting", waitingFor: "guest", detail: `VM ${name} is ${details.state}`, advice: `start it: neuron-appliance vm start ${name}` };
  await d.vms.start(name, "setup");
  const windows = templateOf(ctx) !== "linux";
  let keys = 0;
  if (windows && d.settings.qmpDir && (d.settings.bootKeysMs ?? 8000) > 0) {
    // the ISO's "press any key to boot from CD": without a key it would fall through to the empty disk
    keys = await pressBootKeys(vmQmpSocket(d.settings.qmpDir, name), d.settings.bootKeysMs ?? 8000).catch(() => 0);
  }
  return {
    state: "done",
    detail: windows ? `VM ${name} started: Windows installs unattended (about 15–30 minutes)` : `VM ${name} started`,
    result: { started: true, bootKeys: keys },
  };
};

const agent: Runner = async (d, ctx) => {
  const name = vmNameOf(ctx);
  if (!d.guest) throw new StepFailure("GUEST_UNAVAILABLE", "the guest agent service is not available here", "run setup through the appliance service (neuron-appliance serve)");
  const deadline = Date.now() + d.settings.guestWaitMs;
  for (;;) {
    const s = await d.guest.status(name);
    if (s.connected)
      return { state: "done", detail: `the agent in ${name} answers${s.info ? ` (${JSON.stringify(s.info).slice(0, 120)})` : ""}`, result: { hello: s.hello as unknown as Record<string, unknown> | null } };
    if (Date.now() >= deadline)
      return {
        state: "waiting",
        waitingFor: "guest",
        detail: `no answer from the agent in ${name} yet (${s.error ?? s.state})`,
        advice: "Windows is still installing, or the first logon has not run the agent's installer yet: wait, then advance again; if Windows is at its desktop, run the agent installer from the setup ISO (drive with autounattend.xml)",
      };
    await sleep(250);
  }
};

const lookingGlass: Runner = async (d, ctx) => {
  const name = vmNameOf(ctx);
  if (!d.capture) throw new StepFailure("CAPTURE_UNAVAILABLE", "frame capture is not available (native library missing)", "install the appliance package with its native library (libneuron.so), then retry");
  const deadline = Date.now() + d.settings.guestWaitMs;
  let last = "";
  for (;;) {
    try {
      const s = d.capture.inspectSource(shmName(name), 1000);
      if (s.frame) return { state: "done", detail: `Looking Glass writes ${s.frame.width}x${s.frame.height} frames`, result: { frame: s.frame as unknown as Record<string, unknown> } };
      last = "the shared memory holds no frame yet";
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() >= deadline)
      return {
        state: "waiting",
        waitingFor: "guest",
        detail: `no frames from Looking Glass yet (${last})`,
        advice: "the Looking Glass host and the IVSHMEM driver are installed at first logon; wait for it, or install them from the setup ISO, then advance again",
      };
    await sleep(250);
  }
};

const app: Runner = async (d, ctx) => {
  const name = vmNameOf(ctx);
  const existing = d.apps.list().find((a) => a.kind === "vm" && a.vmName === name);
  if (existing) return { state: "done", detail: `the app "${existing.name}" starts ${name}`, result: { appId: existing.id, name: existing.name } };
  const label = name === DEFAULT_VM ? "Windows" : name;
  const taken = new Set(d.apps.list().map((a) => a.name));
  const appName = taken.has(label) ? `${label} (VM ${name})` : label;
  const created = d.apps.create({ name: appName, kind: "vm", vmName: name });
  return { state: "done", detail: `Moonlight clients now list "${created.name}"`, result: { appId: created.id, name: created.name } };
};

const done: Runner = async (_d, ctx) => ({ state: "done", detail: `setup is complete: stream ${vmNameOf(ctx)} from Moonlight` });

export const STEP_RUNNERS: Record<StepId, Runner> = {
  detect,
  gpu,
  "vfio-plan": vfioPlan,
  "vfio-apply": vfioApply,
  reboot,
  verify,
  vm,
  "install-media": installMedia,
  "first-boot": firstBoot,
  agent,
  "looking-glass": lookingGlass,
  app,
  done,
};
