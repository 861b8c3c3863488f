/**
 * Opening a migration source, read-only: a directory as it is, or an NTFS partition / image that
 * the appliance mounts itself (a loop device for an image; ntfs3, falling back to ntfs-3g).
 * BitLocker volumes are unlocked with a recovery key (dislocker, read-only) or refused with what
 * to do; hibernated / Fast Startup and dirty volumes are detected and explained. Nothing here
 * ever writes to the source (no `ntfsfix`, no read-write mount).
 */
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { AppError } from "../errors.ts";
import { execFile, firstLine } from "../exec.ts";
import type { SourceInfo } from "./model.ts";
import { probeVolume } from "./ntfs-volume.ts";
import type { MigrationSettings } from "./settings.ts";

export interface OpenedSource {
  info: SourceInfo;
  /** The directory the Windows tree is read from. */
  root: string;
  /** The block device the NTFS volume is on (for runlist queries), null for a directory. */
  device: string | null;
  close(): Promise<void>;
  /** The same, blocking (a process that is closing). */
  closeSync(): void;
}

export interface SourceOptions {
  settings: MigrationSettings;
  mountDir: string;
  recoveryKey?: string;
}

export const HIBERNATED_ADVICE =
  "Windows on this disk is hibernated or was shut down with Fast Startup: files changed since are still in Windows' memory image and the disk is not safe to change. The safe way: boot Windows, then choose Restart (not Shut down), or turn off Fast Startup (Control Panel → Power Options → Choose what the power buttons do) and shut down. The appliance only reads such a disk, and never runs `ntfsfix -d`.";
export const DIRTY_ADVICE =
  "The volume is marked dirty (Windows did not finish with it, or it needs a check): boot Windows and let it check the disk (chkdsk), or shut it down cleanly. The appliance only reads it; some recent files may be incomplete.";
export const BITLOCKER_ADVICE =
  "This volume is encrypted with BitLocker. Give its 48-digit recovery key (--recovery-key, from the Microsoft account page aka.ms/myrecoverykey or where it was printed/saved), or boot Windows and turn BitLocker off (Settings → Privacy & security → Device encryption), or migrate from the running Windows VM instead.";

/**
 * ntfs-3g's mount: read-only, and, since nothing changes the volume while it is mounted so, the
 * kernel keeps names, attributes and file data it was given (a run opens every file the plan's
 * scan looked up: no second round trip through the FUSE daemon for each).
 */
export const NTFS3G_OPTIONS = "ro,noatime,nodev,nosuid,noexec,kernel_cache,entry_timeout=600,attr_timeout=600,negative_timeout=600";
/**
 * ntfs-3g answers each read with a fresh 128 KiB buffer at the top of its heap; glibc's default
 * trim gives that memory back after every request (two brk calls and 32 new zeroed pages per
 * 128 KiB read). A higher trim threshold keeps it.
 */
export const NTFS3G_ENV = { GLIBC_TUNABLES: "glibc.malloc.trim_threshold=67108864:glibc.malloc.top_pad=1048576" };

const RECOVERY_KEY = /^\d{6}(-\d{6}){7}$/;

/** A BitLocker recovery key is 8 groups of 6 digits, each group a multiple of 11 below 720896. */
export function validRecoveryKey(key: string): boolean {
  if (!RECOVERY_KEY.test(key)) return false;
  return key.split("-").every((g) => Number(g) % 11 === 0 && Number(g) < 720896);
}

function hiberfilHibernated(root: string): boolean {
  for (const name of ["hiberfil.sys", "Hiberfil.sys", "HIBERFIL.SYS"]) {
    const p = join(root, name);
    if (!existsSync(p)) continue;
    let fd: number | null = null;
    try {
      fd = openSync(p, "r");
      const b = Buffer.alloc(4);
      const n = readSync(fd, b, 0, 4, 0);
      const magic = b.toString("latin1", 0, n).toLowerCase();
      return magic === "hibr" || magic === "rstr";
    } catch {
      return false;
    } finally {
      if (fd !== null) closeSync(fd);
    }
  }
  return false;
}

/** An undo step of opening a source, done either way (sync: when the process is closing). */
interface Cleanup {
  run(): Promise<void>;
  runSync(): void;
}

function mountPoints(): Set<string> {
  try {
    return new Set(
      readFileSync("/proc/self/mountinfo", "utf8")
        .split("\n")
        .map((l) => l.split(" ")[4])
        .filter((p): p is string => Boolean(p))
        .map((p) => p.replace(/\\040/g, " ")),
    );
  } catch {
    return new Set();
  }
}

interface MountEntry {
  mountPoint: string;
  /** The mounted file system's own root (/ for a whole volume). */
  fsRoot: string;
  fstype: string;
  source: string;
  readOnly: boolean;
}

const unescapeMount = (p: string) => p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

function mountTable(): MountEntry[] {
  let text = "";
  try {
    text = readFileSync("/proc/self/mountinfo", "utf8");
  } catch {
    return [];
  }
  const out: MountEntry[] = [];
  for (const line of text.split("\n")) {
    const f = line.split(" ");
    const dash = f.indexOf("-");
    if (dash < 6 || f.length < dash + 3) continue;
    out.push({ mountPoint: unescapeMount(f[4]!), fsRoot: unescapeMount(f[3]!), fstype: f[dash + 1]!, source: unescapeMount(f[dash + 2]!), readOnly: f[5]!.split(",").includes("ro") });
  }
  return out;
}

/** ntfs-3g shows as fuse (an image) or fuseblk (a device); the kernel drivers as ntfs3 / ntfs. */
const NTFS_FSTYPES = new Map<string, "ntfs3" | "ntfs-3g">([["fuse", "ntfs-3g"], ["fuseblk", "ntfs-3g"], ["ntfs3", "ntfs3"], ["ntfs", "ntfs3"]]);

/**
 * A whole NTFS volume already mounted read-only (by the desktop, by hand): found by its device or
 * image (`device`), or by its mount point (`mountPoint`); the appliance reads it there.
 */
function existingNtfsMount(q: { device?: string; mountPoint?: string }, mountDir: string): (MountEntry & { driver: "ntfs3" | "ntfs-3g" }) | null {
  const ours = resolve(mountDir) + "/";
  for (const m of mountTable().reverse()) {
    const driver = NTFS_FSTYPES.get(m.fstype);
    // the appliance's own mounts (of this or another run, or left by a killed one) are not reused
    if (!driver || !m.readOnly || m.fsRoot !== "/" || m.mountPoint.startsWith(ours)) continue;
    if ((q.device && resolve(m.source) === q.device) || (q.mountPoint && m.mountPoint === q.mountPoint)) return { ...m, driver };
  }
  return null;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Mounts left by a process that died mid-run (kill -9): unmounted, their folders removed. */
export async function cleanStaleMounts(mountDir: string, umount: string): Promise<string[]> {
  const cleaned: string[] = [];
  let names: string[] = [];
  try {
    names = readdirSync(mountDir);
  } catch {
    return cleaned;
  }
  const mounted = mountPoints();
  // inner (bitlocker) mounts after the ntfs ones above them
  for (const name of names.sort((a, b) => (a.startsWith("ntfs-") ? -1 : 0) - (b.startsWith("ntfs-") ? -1 : 0))) {
    const m = /^(?:ntfs|bitlocker)-(\d+)-/.exec(name);
    if (!m || Number(m[1]) === process.pid || alive(Number(m[1]))) continue;
    const dir = join(mountDir, name);
    if (mounted.has(dir)) {
      const r = await run([umount, dir]);
      if (r.code !== 0) await run([umount, "-l", dir]);
    }
    try {
      rmdirSync(dir);
      cleaned.push(dir);
    } catch {
      // still busy: next time
    }
  }
  return cleaned;
}

async function run(argv: string[], input?: string) {
  return execFile(argv, { timeoutMs: 60_000, input });
}

/** A volume someone else mounted read-only: read there, left mounted. */
function alreadyMounted(input: string, device: string, m: MountEntry & { driver: "ntfs3" | "ntfs-3g" }): OpenedSource {
  const probe = probeVolume(device);
  const hibernated = hiberfilHibernated(m.mountPoint);
  const warnings = [...(hibernated ? [HIBERNATED_ADVICE] : []), ...(probe.dirty ? [DIRTY_ADVICE] : [])];
  return {
    root: m.mountPoint,
    device,
    info: { input, kind: "ntfs", mountedBy: m.driver, root: m.mountPoint, bitlocker: false, hibernated, dirty: probe.dirty, readOnly: true, warnings },
    close: async () => {},
    closeSync: () => {},
  };
}

export async function openSource(input: string, opts: SourceOptions): Promise<OpenedSource> {
  const path = resolve(input);
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new AppError("MIGRATION_SOURCE_INVALID", `source ${path} does not exist`, { status: 422 });
  }
  if (st.isDirectory()) {
    // the root of an NTFS volume mounted read-only already: an NTFS source, read where it is
    const m = existingNtfsMount({ mountPoint: path }, opts.mountDir);
    if (m && existsSync(m.source) && probeVolume(m.source).kind === "ntfs") return alreadyMounted(path, m.source, m);
    const hibernated = hiberfilHibernated(path);
    return {
      root: path,
      device: null,
      info: { input: path, kind: "directory", mountedBy: null, root: path, bitlocker: false, hibernated, dirty: false, readOnly: true, warnings: hibernated ? [HIBERNATED_ADVICE] : [] },
      close: async () => {},
      closeSync: () => {},
    };
  }
  if (!st.isFile() && !st.isBlockDevice()) throw new AppError("MIGRATION_SOURCE_INVALID", `source ${path} is neither a directory, a disk image nor a block device`, { status: 422 });
  const probe = probeVolume(path);
  if (probe.kind === "unknown") throw new AppError("MIGRATION_SOURCE_INVALID", `source ${path} holds neither NTFS nor BitLocker (give the partition, e.g. /dev/sdb2, or a partition image)`, { status: 422 });
  if (probe.kind === "ntfs") {
    const m = existingNtfsMount({ device: path }, opts.mountDir);
    if (m) return alreadyMounted(path, path, m);
  }
  const bin = opts.settings.bin;
  const cleanups: Cleanup[] = [];
  const unwind = async () => {
    for (const c of cleanups.splice(0).reverse()) await c.run().catch(() => {});
  };
  const unwindSync = () => {
    for (const c of cleanups.splice(0).reverse()) {
      try {
        c.runSync();
      } catch {
        // best effort, as unwind
      }
    }
  };
  const rmdirStep = (dir: string): Cleanup => ({ run: async () => rmdirSync(dir), runSync: () => rmdirSync(dir) });
  const umountStep = (dir: string, lazy: boolean): Cleanup => ({
    run: async () => {
      const r = await run([bin.umount, dir]);
      if (r.code !== 0 && lazy) await run([bin.umount, "-l", dir]);
    },
    runSync: () => {
      const r = Bun.spawnSync([bin.umount, dir], { stdout: "ignore", stderr: "ignore" });
      if (r.exitCode !== 0 && lazy) Bun.spawnSync([bin.umount, "-l", dir], { stdout: "ignore", stderr: "ignore" });
    },
  });
  try {
    mkdirSync(opts.mountDir, { recursive: true, mode: 0o700 });
    await cleanStaleMounts(opts.mountDir, bin.umount);
    let device = path;
    let bitlocker = false;
    if (probe.kind === "bitlocker") {
      bitlocker = true;
      if (!opts.recoveryKey) throw new AppError("MIGRATION_BITLOCKER_LOCKED", BITLOCKER_ADVICE, { status: 422 });
      if (!validRecoveryKey(opts.recoveryKey)) throw new AppError("MIGRATION_BITLOCKER_KEY", "that is not a valid BitLocker recovery key (8 groups of 6 digits, each a multiple of 11)", { status: 422 });
      const fuseDir = mkdtempSync(join(opts.mountDir, `bitlocker-${process.pid}-`));
      cleanups.push(rmdirStep(fuseDir));
      const r = await run([bin.dislocker, "-r", "-V", path, `-p${opts.recoveryKey}`, "--", fuseDir]);
      if (r.code !== 0) throw new AppError("MIGRATION_BITLOCKER_KEY", `BitLocker volume could not be unlocked with that recovery key: ${firstLine(r.stderr || r.stdout) || r.spawnError || "dislocker failed"}`, { status: 422 });
      cleanups.push(umountStep(fuseDir, false));
      device = join(fuseDir, "dislocker-file");
      const inner = probeVolume(device);
      if (inner.kind !== "ntfs") throw new AppError("MIGRATION_SOURCE_INVALID", "the unlocked BitLocker volume does not hold NTFS", { status: 422 });
      probe.dirty = inner.dirty;
    }
    // an image: ntfs3 through an autoclear loop device (mount -o loop), ntfs-3g opens the file itself
    const isImage = !statSync(device).isBlockDevice();
    const mnt = mkdtempSync(join(opts.mountDir, `ntfs-${process.pid}-`));
    cleanups.push(rmdirStep(mnt));
    let mountedBy: "ntfs3" | "ntfs-3g" | null = null;
    const errors: string[] = [];
    for (const driver of opts.settings.drivers) {
      const r =
        driver === "ntfs3"
          ? await run([bin.mount, "-t", "ntfs3", "-o", `ro,noatime,nodev,nosuid,noexec${isImage ? ",loop" : ""}`, device, mnt])
          : await execFile([bin.ntfs3g, "-o", NTFS3G_OPTIONS, device, mnt], { timeoutMs: 60_000, env: { ...process.env, ...NTFS3G_ENV } });
      if (r.code === 0) {
        mountedBy = driver;
        break;
      }
      errors.push(`${driver}: ${firstLine(r.stderr || r.stdout) || r.spawnError || `exit ${r.code}`}`);
    }
    if (!mountedBy) throw new AppError("MIGRATION_MOUNT_FAILED", `could not mount ${path} read-only (${errors.join("; ")})`, { status: 500 });
    cleanups.push(umountStep(mnt, true));
    const hibernated = hiberfilHibernated(mnt);
    const warnings = [...(hibernated ? [HIBERNATED_ADVICE] : []), ...(probe.dirty ? [DIRTY_ADVICE] : [])];
    return {
      root: mnt,
      device,
      info: { input: path, kind: "ntfs", mountedBy, root: mnt, bitlocker, hibernated, dirty: probe.dirty, readOnly: true, warnings },
      close: unwind,
      closeSync: unwindSync,
    };
  } catch (err) {
    await unwind();
    throw err;
  }
}
