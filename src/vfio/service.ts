/**
 * VFIO configuration of a target root: plan (a diff, nothing written), apply
 * (transactional, backed up, recorded in the audit log), rollback, verify.
 * No transport: the CLI and the API call these methods.
 */
import { join } from "node:path";
import type { Config } from "../config.ts";
import type { AuditRepo, AuditRow } from "../db/repos/audit.ts";
import { AppError, invalid, notFound } from "../errors.ts";
import { execFile, firstLine } from "../exec.ts";
import { ACS_OVERRIDE_PARAM } from "../hardware/cmdline.ts";
import type { Gpu, HardwareReport } from "../hardware/model.ts";
import { kernelAtLeast } from "../hardware/verdicts.ts";
import type { HardwareService } from "../hardware/service.ts";
import { unifiedDiff } from "./diff.ts";
import { cmdlineVfioIds, INVALID_PARAMS, vfioModules } from "./edits.ts";
import { realpathSync } from "node:fs";
import { readText } from "../hardware/read.ts";
import { splitCmdline } from "../hardware/cmdline.ts";
import {
  VfioApplyRequest,
  VfioPlanRequest,
  type CommandResult,
  type PlannedCommand,
  type VfioApplyResult,
  type VfioPlan,
  type VfioRollbackResult,
  type VfioVerifyReport,
} from "./model.ts";
import { compareVersions, detectSystems, existingVfioIds, plannedFiles, type PlannedFile, type TargetSystems } from "./targets.ts";
import { applyEdits, readManifest, rollbackEdits } from "./transaction.ts";

export const APPLY_ACTION = "vfio.apply";
export const ROLLBACK_ACTION = "vfio.rollback";
const COMMAND_TIMEOUT_MS = 10 * 60_000;

export interface VfioSettings {
  targetRoot: string;
  stateDir: string;
  bin: Pick<Config["bin"], "mkinitcpio" | "dracut" | "updateInitramfs" | "grubMkconfig" | "chroot">;
}

export const vfioSettings = (c: Config): VfioSettings => ({ targetRoot: c.targetRoot, stateDir: c.stateDir, bin: c.bin });

function parse<T>(schema: { safeParse(v: unknown): { success: true; data: T } | { success: false; error: { issues: { path: PropertyKey[]; message: string }[] } } }, v: unknown): T {
  const r = schema.safeParse(v);
  if (!r.success) throw invalid(r.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; "));
  return r.data;
}

const actionOf = (f: PlannedFile) => (f.before === null ? "create" : f.after === null ? "delete" : "modify") as "create" | "modify" | "delete";

/** Invalid parameters the plan's edits remove, with the file and the reason. */
function removedInvalidParams(files: PlannedFile[]): { param: string; path: string; reason: string }[] {
  const out: { param: string; path: string; reason: string }[] = [];
  for (const f of files)
    for (const [param, reason] of Object.entries(INVALID_PARAMS)) {
      const has = (t: string | null) => t !== null && new RegExp(`(^|[\\s"'])${param.replace(/[_-]/g, "[_-]")}(?=[\\s"']|$)`, "m").test(t);
      if (has(f.before) && !has(f.after)) {
        out.push({ param, path: f.path, reason });
        f.reason += `; removes ${param}`;
      }
    }
  return out;
}

/** Kernels that carry the ACS override patch, by their release names. */
const ACS_KERNEL_RE = /(zen|lqx|liquorix|xanmod|acs|vfio)/i;

/** Whether the target's kernel honours pcie_acs_override (a stock kernel ignores it) and what to install. */
export function acsOverrideKernel(kernel: string | null, systems: TargetSystems): { kernel: string | null; honoured: boolean; install: string | null; advice: string } {
  if (kernel && ACS_KERNEL_RE.test(kernel)) return { kernel, honoured: true, install: null, advice: `${kernel} carries the ACS override patch` };
  const arch = systems.initramfs.includes("mkinitcpio");
  const install = arch ? "linux-zen" : "a kernel with the ACS override patch (XanMod or Liquorix)";
  return {
    kernel,
    honoured: false,
    install,
    advice: `the target kernel ${kernel ?? "(unknown)"} does not honour ${ACS_OVERRIDE_PARAM} (stock kernels ignore it): install ${arch ? "linux-zen (pacman -S linux-zen linux-zen-headers)" : install}, boot it, then plan again`,
  };
}

/** A warning when the GPU's IOMMU group also holds the disk the root file system lives on (a laptop's NVMe). */
export function rootDiskInGroup(root: string, report: HardwareReport, gpu: Gpu): string | null {
  const storage = gpu.groupMembers.filter((m) => m.kind === "storage").map((m) => m.address);
  if (!storage.length) return null;
  const rootDev = rootBlockDevice(root);
  const rootPci = rootDev ? pciOfBlock(root, rootDev) : null;
  if (rootPci && storage.includes(rootPci))
    return `the GPU's IOMMU group ${gpu.group} also holds ${rootPci} (${report.devices.find((d) => d.address === rootPci)?.deviceName ?? "storage"}), the disk with the root file system (${rootDev}): passing the group through takes the host's own disk away; this machine cannot pass the GPU through without the ACS override, and even then the disk stays shared`;
  return `the GPU's IOMMU group ${gpu.group} also holds the storage controller ${storage.join(", ")}${rootDev ? ` (the root file system is on ${rootDev})` : ""}: if a host file system lives on it, passing the group through takes it away`;
}

function rootBlockDevice(root: string): string | null {
  const mounts = readText(join(root, "proc", "mounts"), 1024 * 1024) ?? "";
  for (const line of mounts.split("\n")) {
    const [dev, mnt] = line.split(" ");
    if (mnt === "/" && dev?.startsWith("/dev/")) return dev;
  }
  return null;
}

function pciOfBlock(root: string, dev: string): string | null {
  const name = dev.slice("/dev/".length);
  const disk = name.replace(/p\d+$/, "").replace(/^(sd[a-z]+)\d+$/, "$1");
  try {
    const real = realpathSync(join(root, "sys", "class", "block", disk));
    const m = [...real.matchAll(/\/([0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7])(?=\/)/g)];
    return m.length ? m[m.length - 1]![1]! : null;
  } catch {
    return null;
  }
}

export class VfioService {
  constructor(
    private readonly settings: VfioSettings,
    private readonly hardware: HardwareService,
    private readonly audit: AuditRepo,
  ) {}

  private pickGpu(report: HardwareReport, address: string): Gpu {
    const gpu = report.gpus.find((g) => g.address === address);
    if (!gpu) {
      const dev = report.devices.find((d) => d.address === address);
      if (dev) throw new AppError("NOT_A_GPU", `${address} is a ${dev.kind} device (${dev.vendorName} ${dev.deviceName}), not a GPU`, { status: 422 });
      throw notFound("PCI device", address);
    }
    if (gpu.role === "host") throw new AppError("GPU_IS_HOST", `${address} is the host GPU: ${gpu.roleReason}`, { status: 409 });
    if (gpu.role !== "candidate") throw new AppError("GPU_NOT_CANDIDATE", `${address} cannot be passed through: ${gpu.roleReason}`, { status: 422 });
    if (gpu.vfioIds.length !== gpu.functions.length && gpu.functions.some((f) => !f.vendorId || !f.deviceId))
      throw new AppError("GPU_UNREADABLE", `${address}: some functions of its slot have unreadable ids`, { status: 422 });
    const hostIds = report.gpus.filter((g) => g.role === "host").flatMap((g) => g.vfioIds);
    const shared = gpu.vfioIds.filter((id) => hostIds.includes(id));
    if (shared.length)
      throw new AppError("GPU_IDS_SHARED", `the host GPU uses the same ids (${shared.join(", ")}): vfio-pci.ids would take the host's display too`, {
        status: 409,
      });
    return gpu;
  }

  private commands(systems: TargetSystems): PlannedCommand[] {
    const b = this.settings.bin;
    const out: PlannedCommand[] = [];
    for (const s of systems.initramfs) {
      if (s === "mkinitcpio") out.push({ argv: [b.mkinitcpio, "-P"], reason: "rebuild every mkinitcpio preset (and UKI)" });
      if (s === "dracut") out.push({ argv: [b.dracut, "--regenerate-all", "--force"], reason: "rebuild the dracut initramfs images" });
      if (s === "initramfs-tools") out.push({ argv: [b.updateInitramfs, "-u", "-k", "all"], reason: "rebuild the initramfs-tools images" });
    }
    if (systems.boot.includes("grub")) out.push({ argv: [b.grubMkconfig, "-o", "/boot/grub/grub.cfg"], reason: "write the GRUB menu with the new parameters" });
    if (this.settings.targetRoot !== "/") for (const c of out) c.argv = [b.chroot, this.settings.targetRoot, ...c.argv];
    return out;
  }

  private compute(input: VfioPlanRequest): { plan: VfioPlan; files: PlannedFile[] } {
    const req = parse(VfioPlanRequest, input);
    const report = this.hardware.detect();
    const gpu = this.pickGpu(report, req.gpu);
    const target = this.settings.targetRoot;
    const systems = detectSystems(target);
    const warnings = [...gpu.warnings];
    const kernel = systems.kernel ?? report.kernel.release;
    if (!kernel) warnings.push("kernel version unknown: vfio_virqfd left out (it only exists before Linux 6.2)");
    const needsVirqfd = kernel !== null && compareVersions(kernel, "6.2") < 0;
    // ids passed through already (a NIC, a second card) stay: merged after the GPU's, never replaced
    const existing = existingVfioIds(target, systems);
    const running = cmdlineVfioIds(splitCmdline(report.kernel.cmdline ?? "")).map((id) => ({ id, source: "the running kernel's command line" }));
    const kept: { id: string; source: string }[] = [];
    for (const e of [...existing, ...running]) if (!gpu.vfioIds.includes(e.id) && !kept.some((k) => k.id === e.id)) kept.push(e);
    const vfioIds = [...gpu.vfioIds, ...kept.map((k) => k.id)];
    for (const k of kept) warnings.push(`vfio-pci ids: keeps ${k.id} (already passed through, from ${k.source}) beside the GPU's ${gpu.vfioIds.join(",")}`);
    const params = [
      ...(report.cpu.vendor === "intel" ? ["intel_iommu=on"] : []),
      "iommu=pt",
      `vfio-pci.ids=${vfioIds.join(",")}`,
      ...(req.acsOverride ? [ACS_OVERRIDE_PARAM] : []),
    ];
    if (gpu.needsAcsOverride && !req.acsOverride) warnings.push(`the GPU's IOMMU group is not clean: ${gpu.isolationReason}; plan with the ACS override to add ${ACS_OVERRIDE_PARAM}`);
    if (!report.iommu.enabled) warnings.push(`IOMMU: ${report.iommu.reason}`);
    const { files, warnings: fileWarnings } = plannedFiles(target, systems, {
      vfioIds,
      functionKinds: gpu.functions.map((f) => f.kind),
      kernelParams: params,
      needsVirqfd,
      resetBug: gpu.resetBug.affected
        ? { ids: [`${gpu.vendorId}:${gpu.deviceId}`], deviceSpecific: kernelAtLeast(kernel, 5, 15) !== false }
        : null,
    });
    if (gpu.resetBug.affected && !gpu.resetBug.vendorResetLoaded)
      warnings.push("install the vendor-reset module (vendor-reset-dkms); the plan loads it at boot and sets its reset method");
    warnings.push(...fileWarnings);
    const removedParams = removedInvalidParams(files);
    if (req.acsOverride) {
      const k = acsOverrideKernel(kernel, systems);
      if (!k.honoured) warnings.push(k.advice);
    }
    const rootWarning = rootDiskInGroup(this.hardware.root, report, gpu);
    if (rootWarning) warnings.push(rootWarning);
    const changes = files.map((f) => ({ path: f.path, action: actionOf(f), reason: f.reason, diff: unifiedDiff(f.path, f.before, f.after) }));
    const plan: VfioPlan = {
      gpu: gpu.address,
      gpuName: gpu.name,
      vfioIds,
      mergedIds: kept,
      removedParams,
      acsOverrideKernel: req.acsOverride ? acsOverrideKernel(kernel, systems) : null,
      targetRoot: target,
      systems,
      kernelParams: params,
      modules: vfioModules(needsVirqfd),
      changes,
      diff: changes.map((c) => c.diff).join(""),
      commands: changes.length ? this.commands(systems) : [],
      warnings,
    };
    return { plan, files };
  }

  plan(input: VfioPlanRequest): VfioPlan {
    return this.compute(input).plan;
  }

  async apply(input: VfioApplyRequest, actor: string): Promise<VfioApplyResult> {
    const req = parse(VfioApplyRequest, input);
    const { plan, files } = this.compute({ gpu: req.gpu, acsOverride: req.acsOverride });
    const summary = files.map((f) => ({ path: f.path, action: actionOf(f) }));
    const base = { gpu: plan.gpu, vfioIds: plan.vfioIds, kernelParams: plan.kernelParams, files: summary };
    if (files.length === 0) {
      const row = this.audit.insert({ actor, action: APPLY_ACTION, target: plan.targetRoot, status: "applied", details: JSON.stringify({ ...base, changed: false }) });
      return { auditId: row.id, changed: false, files: [], backupDir: null, commands: [], warnings: plan.warnings };
    }
    const row = this.audit.insert({ actor, action: APPLY_ACTION, target: plan.targetRoot, status: "planned", details: JSON.stringify({ ...base, diff: plan.diff }) });
    let backupDir: string;
    try {
      backupDir = applyEdits(plan.targetRoot, join(this.settings.stateDir, "backups", "vfio"), files).backupDir;
    } catch (err) {
      this.audit.setStatus(row.id, "failed", JSON.stringify({ ...base, error: (err as Error).message }));
      throw err;
    }
    const commands: CommandResult[] = [];
    if (req.regenerate) {
      for (const c of plan.commands) {
        const r = await execFile(c.argv, { timeoutMs: COMMAND_TIMEOUT_MS });
        const output = (r.spawnError ?? (r.timedOut ? "timed out" : r.stderr || r.stdout)).slice(-4000);
        commands.push({ argv: c.argv, ok: r.code === 0, exitCode: r.code, output });
        if (r.code !== 0) break;
      }
    }
    const warnings = [...plan.warnings];
    const failed = commands.find((c) => !c.ok);
    if (failed) warnings.push(`${failed.argv.join(" ")} failed (${firstLine(failed.output) || `exit ${failed.exitCode}`}): the files are written; fix it and rerun, or \`vfio rollback ${row.id}\``);
    if (!req.regenerate && plan.commands.length) warnings.push(`not regenerated: run ${plan.commands.map((c) => c.argv.join(" ")).join("; ")} (or apply with --regenerate), then reboot`);
    this.audit.setStatus(row.id, "applied", JSON.stringify({ ...base, diff: plan.diff, backupDir, commands }), backupDir);
    return { auditId: row.id, changed: true, files: summary, backupDir, commands, warnings };
  }

  rollback(id: number | undefined, actor: string): VfioRollbackResult {
    if (id !== undefined && (!Number.isSafeInteger(id) || id < 1)) throw invalid("id must be a positive integer");
    let row: AuditRow | undefined;
    if (id === undefined) {
      row = this.audit.latest(APPLY_ACTION, "applied").find((r) => r.backupPath !== null);
      if (!row) throw new AppError("NOTHING_TO_ROLL_BACK", "no applied VFIO change to roll back", { status: 404 });
    } else {
      row = this.audit.get(id);
      if (!row || row.action !== APPLY_ACTION) throw notFound("VFIO apply", id);
      if (row.status !== "applied" || row.backupPath === null)
        throw new AppError("NOT_ROLLBACKABLE", `VFIO apply ${id} is ${row.status}${row.backupPath === null ? " and changed nothing" : ""}: nothing to roll back`, { status: 409 });
    }
    const manifest = readManifest(row.backupPath!);
    if (manifest.targetRoot !== this.settings.targetRoot)
      throw new AppError("TARGET_MISMATCH", `VFIO apply ${row.id} was made under ${manifest.targetRoot}, not ${this.settings.targetRoot}`, { status: 409 });
    rollbackEdits(row.backupPath!, this.settings.targetRoot);
    this.audit.setStatus(row.id, "rolled_back");
    const files = manifest.files.map((f) => ({ path: f.path, restored: f.existed ? ("previous-content" as const) : ("removed" as const) }));
    const rb = this.audit.insert({
      actor,
      action: ROLLBACK_ACTION,
      target: this.settings.targetRoot,
      status: "applied",
      details: JSON.stringify({ of: row.id, files }),
      backupPath: row.backupPath,
    });
    return { auditId: rb.id, rolledBack: row.id, files };
  }

  /** After the reboot: is the GPU on vfio-pci, and what is still wrong. */
  verify(address: string): VfioVerifyReport {
    const gpuAddr = parse(VfioPlanRequest, { gpu: address }).gpu;
    const report = this.hardware.detect();
    const gpu = report.gpus.find((g) => g.address === gpuAddr);
    if (!gpu) throw notFound("GPU", gpuAddr);
    const checks = [
      { name: "iommu", ok: report.iommu.enabled, detail: report.iommu.reason },
      { name: "vfio-pci module", ok: report.modules.vfioPci, detail: report.modules.vfioPci ? "vfio_pci is loaded" : "vfio_pci is not loaded: the initramfs/modprobe configuration did not take effect" },
      ...gpu.functions.map((f) => ({
        name: `driver ${f.address}`,
        ok: f.driver === "vfio-pci",
        detail: f.driver === "vfio-pci" ? "bound to vfio-pci" : `bound to ${f.driver ?? "no driver"}, not vfio-pci`,
      })),
      { name: "isolation", ok: gpu.groupClean || (gpu.needsAcsOverride && report.iommu.acsOverrideActive), detail: gpu.isolationReason },
    ];
    if (gpu.resetBug.affected) {
      checks.push({ name: "reset bug", ok: gpu.resetBug.vendorResetLoaded && (!gpu.resetBug.deviceSpecificNeeded || gpu.resetBug.deviceSpecificActive), detail: gpu.resetBug.reason });
      const order = this.hardware.moduleLoadOrder();
      const vr = order.indexOf("vendor_reset");
      const vp = order.indexOf("vfio_pci");
      checks.push({
        name: "vendor-reset before vfio-pci",
        ok: vr >= 0 && vp >= 0 && vr < vp,
        detail:
          vr < 0
            ? "vendor-reset is not loaded"
            : vp < 0
              ? "vfio_pci is not loaded as a module: the load order cannot be seen"
              : vr < vp
                ? "vendor-reset was loaded before vfio-pci bound the GPU"
                : "vendor-reset was loaded after vfio-pci: the GPU's first reset was not handled by it; check the softdep in /etc/modprobe.d/vfio.conf and that vendor-reset is in the initramfs",
      });
    }
    return { gpu: gpuAddr, ok: checks.every((c) => c.ok), checks };
  }

  history(limit = 50): AuditRow[] {
    return this.audit.list(APPLY_ACTION, limit);
  }
}
