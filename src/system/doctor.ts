/**
 * `doctor`: what this machine can do for the appliance. Every probe reads the
 * paths and binaries from config, so tests run it against fixture trees.
 */
import { accessSync, constants, existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Config } from "../config.ts";
import { execFile, firstLine } from "../exec.ts";
import { checkVmSharedMemory } from "../vm/doctor.ts";
import { checkVmGraphics } from "../vm/graphics-doctor.ts";
import { checkVmQmp } from "../vm/qmp-doctor.ts";
import { checkCodecs, checkVideoEncoder } from "../capture/doctor.ts";
import { CaptureService } from "../capture/service.ts";
import { CodecSupport, type CodecSupportReport } from "../gamestream/codecs.ts";
import { silentLogger } from "../log.ts";
import type { DoctorCheck, DoctorReport } from "./model.ts";

export interface NativeState {
  version: string | null;
  path: string | null;
  error: string | null;
}

function groupName(gid: number, groupFile = "/etc/group"): string {
  try {
    for (const line of readFileSync(groupFile, "utf8").split("\n")) {
      const [name, , id] = line.split(":");
      if (name && Number(id) === gid) return name;
    }
  } catch {
    /* fall through */
  }
  return String(gid);
}

function writable(path: string): boolean {
  try {
    accessSync(path, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

function nonEmptyDir(path: string): boolean {
  try {
    return readdirSync(path).length > 0;
  } catch {
    return false;
  }
}

export function checkKvm(devicePath: string): DoctorCheck {
  const base = { id: "kvm", title: "KVM device" };
  if (!existsSync(devicePath))
    return { ...base, status: "fail", detail: `${devicePath} is missing: enable virtualisation (VT-x/AMD-V) in firmware and load kvm_intel/kvm_amd` };
  const st = statSync(devicePath);
  if (!st.isCharacterDevice()) return { ...base, status: "fail", detail: `${devicePath} is not a character device` };
  const mode = st.mode & 0o777;
  const group = groupName(st.gid);
  const modeText = mode.toString(8).padStart(4, "0");
  if (group !== "kvm" || (mode & 0o060) !== 0o060)
    return {
      ...base,
      status: "warn",
      detail: `${devicePath} is group ${group}, mode ${modeText}; libvirt needs group kvm, mode 0660 (else every call re-probes QEMU slowly)`,
    };
  return { ...base, status: "ok", detail: `${devicePath} group ${group}, mode ${modeText}` };
}

export function checkIommu(root: string): DoctorCheck {
  const base = { id: "iommu", title: "IOMMU" };
  const groups = join(root, "sys", "kernel", "iommu_groups");
  if (nonEmptyDir(groups)) {
    const n = readdirSync(groups).length;
    return { ...base, status: "ok", detail: `on: ${n} IOMMU group(s)` };
  }
  if (nonEmptyDir(join(root, "sys", "class", "iommu")))
    return { ...base, status: "warn", detail: "IOMMU hardware present but no groups: add iommu=pt (and intel_iommu=on on Intel)" };
  return {
    ...base,
    status: "warn",
    detail: "off: no IOMMU groups (enable VT-d/AMD-Vi in firmware; on Intel add intel_iommu=on); GPU passthrough is unavailable",
  };
}

export async function checkLibvirt(config: Config): Promise<DoctorCheck> {
  const base = { id: "libvirt", title: "libvirt" };
  const r = await execFile([config.bin.virsh, "-c", config.libvirtUri, "version"], { timeoutMs: 5000 });
  if (r.spawnError) return { ...base, status: "fail", detail: `${config.bin.virsh} not runnable: ${r.spawnError}` };
  if (r.timedOut) return { ...base, status: "fail", detail: `${config.libvirtUri}: no answer within 5 s` };
  if (r.code !== 0) return { ...base, status: "fail", detail: `${config.libvirtUri}: ${firstLine(r.stderr) || `exit ${r.code}`}` };
  const running = r.stdout.match(/Running hypervisor:\s*(.+)/)?.[1]?.trim();
  return { ...base, status: "ok", detail: `${config.libvirtUri} reachable${running ? ` (${running})` : ""}` };
}

export async function checkQemu(config: Config): Promise<DoctorCheck> {
  const base = { id: "qemu", title: "QEMU" };
  const found = config.bin.qemuSystem.includes("/") ? (existsSync(config.bin.qemuSystem) ? config.bin.qemuSystem : null) : Bun.which(config.bin.qemuSystem);
  if (!found) return { ...base, status: "fail", detail: `${config.bin.qemuSystem} not found` };
  const r = await execFile([found, "--version"], { timeoutMs: 5000 });
  return { ...base, status: r.code === 0 ? "ok" : "fail", detail: `${found}: ${firstLine(r.code === 0 ? r.stdout : r.stderr)}` };
}

export function checkUinput(devicePath: string): DoctorCheck {
  const base = { id: "uinput", title: "uinput (virtual input devices)" };
  if (!existsSync(devicePath)) return { ...base, status: "warn", detail: `${devicePath} is missing: load the uinput module; input falls back to QMP` };
  if (!writable(devicePath)) return { ...base, status: "warn", detail: `${devicePath} is not writable by this user` };
  return { ...base, status: "ok", detail: `${devicePath} writable` };
}

export function checkShm(shmDir: string): DoctorCheck {
  const base = { id: "shm", title: "shared memory directory" };
  if (!existsSync(shmDir)) return { ...base, status: "fail", detail: `${shmDir} does not exist` };
  if (!writable(shmDir)) return { ...base, status: "fail", detail: `${shmDir} is not writable` };
  return { ...base, status: "ok", detail: `${shmDir} writable` };
}

export function checkNative(native: NativeState): DoctorCheck {
  const base = { id: "native", title: "native library" };
  if (native.error) return { ...base, status: "fail", detail: native.error };
  return { ...base, status: "ok", detail: `libneuron ${native.version} (${native.path})` };
}

export function checkDb(dbPath: string): DoctorCheck {
  const base = { id: "db", title: "database" };
  if (existsSync(dbPath))
    return writable(dbPath)
      ? { ...base, status: "ok", detail: `${dbPath} writable` }
      : { ...base, status: "fail", detail: `${dbPath} is not writable` };
  let dir = dirname(dbPath);
  while (!existsSync(dir) && dirname(dir) !== dir) dir = dirname(dir);
  return writable(dir)
    ? { ...base, status: "ok", detail: `${dbPath} can be created` }
    : { ...base, status: "fail", detail: `${dir} is not writable: cannot create ${dbPath}` };
}

export interface DoctorOptions {
  /** The running service's codec offer; absent: the encoders are measured here (a few seconds). */
  codecs?: () => CodecSupportReport;
}

async function codecsCheck(config: Config, native: NativeState, opts: DoctorOptions): Promise<DoctorCheck> {
  if (opts.codecs) return checkCodecs(opts.codecs());
  if (native.error || !native.path) return checkCodecs(null, "needs the native library (see above)");
  const capture = new CaptureService(config.shmDir, native.path);
  const support = new CodecSupport(capture, config.gamestreamCodecs, silentLogger, { maxFrames: 30, maxMs: 1000 });
  try {
    return checkCodecs(await support.measure());
  } catch (err) {
    return checkCodecs(null, (err as Error).message);
  } finally {
    await support.close();
    capture.close();
  }
}

export async function runDoctor(config: Config, native: NativeState, opts: DoctorOptions = {}): Promise<DoctorReport> {
  const checks: DoctorCheck[] = [
    checkKvm(config.kvmDevice),
    checkIommu(config.root),
    await checkLibvirt(config),
    await checkQemu(config),
    checkUinput(config.uinputDevice),
    checkShm(config.shmDir),
    await checkVmSharedMemory(config),
    await checkVmQmp(config),
    await checkVmGraphics(config),
    checkNative(native),
    checkVideoEncoder(native.error ? null : native.path, config.shmDir),
    await codecsCheck(config, native, opts),
    checkDb(config.dbPath),
  ];
  const status = checks.some((c) => c.status === "fail") ? "fail" : checks.some((c) => c.status === "warn") ? "warn" : "ok";
  return { status, checks };
}
