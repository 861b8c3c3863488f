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
import { Database } from "bun:sqlite";
import { MIGRATIONS } from "../db/client.ts";
import { schemaVersion } from "../db/migrator.ts";

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

export function checkKvm(devicePath: string, root = "/"): DoctorCheck {
  const base = { id: "kvm", title: "KVM device" };
  if (!existsSync(devicePath))
    return {
      ...base,
      status: "fail",
      detail: insideVm(root)
        ? `${devicePath} is missing: this system is a virtual machine; its host must give it nested virtualisation (kvm_intel nested=1 / kvm_amd nested=1, CPU mode host-passthrough)`
        : `${devicePath} is missing: enable virtualisation (VT-x/AMD-V) in firmware and load kvm_intel/kvm_amd`,
    };
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

/** The CPU reports the hypervisor flag: this system is itself a virtual machine. */
function insideVm(root: string): boolean {
  try {
    const text = readFileSync(join(root, "proc", "cpuinfo"), "utf8").slice(0, 1024 * 1024);
    return /^flags\s*:.*\bhypervisor\b/m.test(text);
  } catch {
    return false;
  }
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
  if (insideVm(root))
    return {
      ...base,
      status: "warn",
      detail: "off: this system is a virtual machine without a virtual IOMMU; GPU passthrough needs the appliance on bare metal (or a VM given a virtual IOMMU and the GPU by its host)",
    };
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

/**
 * The database as serve opens it: SQLite reads the file (a corrupt or foreign file fails here),
 * the integrity check passes, and the schema is not newer than this build; pending migrations
 * are named (serve applies them at start). Nothing is written or migrated.
 */
export function checkDb(dbPath: string): DoctorCheck {
  const base = { id: "db", title: "database" };
  if (existsSync(dbPath)) {
    if (!writable(dbPath)) return { ...base, status: "fail", detail: `${dbPath} is not writable` };
    let sqlite: Database | null = null;
    try {
      sqlite = new Database(dbPath, { readwrite: true, create: false, strict: true });
      sqlite.run("PRAGMA busy_timeout = 5000");
      const check = sqlite.query("PRAGMA quick_check").get() as { quick_check: string } | null;
      if (check?.quick_check !== "ok") return { ...base, status: "fail", detail: `${dbPath}: integrity check failed (${check?.quick_check ?? "no answer"})` };
      const version = schemaVersion(sqlite);
      const last = version
        ? (sqlite.query(`SELECT max(created_at) AS at FROM "__drizzle_migrations"`).get() as { at: number | null }).at
        : null;
      const known = Math.max(0, ...MIGRATIONS.map((m) => m.when));
      if (last !== null && Number(last) > known)
        return { ...base, status: "fail", detail: `${dbPath}: its schema is newer than this appliance (an older build on a newer database): update the appliance` };
      const pending = MIGRATIONS.filter((m) => last === null || Number(last) < m.when).length;
      return { ...base, status: "ok", detail: `${dbPath}: schema ${version}${pending ? `, ${pending} migration(s) applied at the next start` : ""}` };
    } catch (err) {
      return { ...base, status: "fail", detail: `${dbPath} cannot be opened as the appliance database: ${(err as Error).message}` };
    } finally {
      sqlite?.close();
    }
  }
  let dir = dirname(dbPath);
  while (!existsSync(dir) && dirname(dir) !== dir) dir = dirname(dir);
  return writable(dir)
    ? { ...base, status: "ok", detail: `${dbPath} can be created` }
    : { ...base, status: "fail", detail: `${dir} is not writable: cannot create ${dbPath}` };
}

interface FirmwareDescriptor {
  "interface-types"?: string[];
  targets?: { architecture?: string; machines?: string[] }[];
  features?: string[];
}

/**
 * What the win11 template needs from the host: UEFI with Secure Boot and enrolled keys for q35
 * (a QEMU firmware descriptor libvirt picks from), and swtpm for its TPM 2.0.
 */
export function checkWin11Support(firmwareDir: string, swtpm: string): DoctorCheck {
  const base = { id: "win11", title: "Windows 11 template (Secure Boot firmware, TPM emulator)" };
  const problems: string[] = [];
  let secure: string | null = null;
  let names: string[] = [];
  try {
    names = readdirSync(firmwareDir).filter((n) => n.endsWith(".json")).sort();
  } catch {
    problems.push(`no firmware descriptors in ${firmwareDir}: install OVMF (ovmf / edk2-ovmf)`);
  }
  for (const n of names) {
    try {
      const d = JSON.parse(readFileSync(join(firmwareDir, n), "utf8").slice(0, 1024 * 1024)) as FirmwareDescriptor;
      const x86 = (d.targets ?? []).some((t) => t.architecture === "x86_64" && (t.machines ?? []).some((m) => m.includes("q35")));
      const f = new Set(d.features ?? []);
      if ((d["interface-types"] ?? []).includes("uefi") && x86 && f.has("secure-boot") && f.has("enrolled-keys")) {
        secure = n;
        break;
      }
    } catch {
      /* a descriptor libvirt would skip too */
    }
  }
  if (names.length && !secure) problems.push(`no OVMF with Secure Boot and enrolled keys among ${firmwareDir}/*.json: install the Secure Boot variant of OVMF (Debian: ovmf, Arch: edk2-ovmf)`);
  const tpm = swtpm.includes("/") ? (existsSync(swtpm) ? swtpm : null) : Bun.which(swtpm);
  if (!tpm) problems.push(`${swtpm} not found: install swtpm (the VM's TPM 2.0)`);
  if (problems.length) return { ...base, status: "warn", detail: `${problems.join("; ")} (the win10 and linux templates do without)` };
  return { ...base, status: "ok", detail: `Secure Boot firmware ${secure}; TPM emulator ${tpm}` };
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
    checkKvm(config.kvmDevice, config.root),
    checkIommu(config.root),
    await checkLibvirt(config),
    await checkQemu(config),
    checkWin11Support(config.firmwareDir, config.bin.swtpm),
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
