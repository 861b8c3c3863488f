/**
 * A private, real libvirtd for tests: run as root in its own mount namespace,
 * with /etc/libvirt, /run/libvirt, /var/lib/libvirt, /var/cache/libvirt,
 * /var/log/libvirt and /dev/shm bound to a temporary directory, so it never
 * touches the host's libvirt state. Clients reach it through the socket in that
 * directory (qemu:///system?socket=...). Stopped by its PID.
 *
 * Every test that starts one checks `libvirtdUnavailable()` (with the QEMU user
 * it asks for) and skips with its reason, and talks to it through `daemon.virsh()`,
 * whose calls are bounded well below the tests' timeouts.
 */
import { cpSync, existsSync, mkdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { idOf } from "../../src/vm/host.ts";
import { Virsh } from "../../src/vm/virsh.ts";
import { tempDir } from "../helpers/env.ts";

/** The bound on one virsh call in these tests (a hung libvirtd fails the call, never the test timeout). */
export const TEST_VIRSH_TIMEOUT_MS = 20_000;

export interface QemuUser {
  user: string;
  group: string;
}

export interface PrivateLibvirtd {
  dir: string;
  uri: string;
  pid: number;
  /** Host path of a path as the daemon (and QEMU) see it. */
  hostPath(path: string): string;
  /** Host path of the daemon's /dev/shm. */
  shmDir: string;
  /** A client of this daemon whose every call ends within `timeoutMs`. */
  virsh(timeoutMs?: number): Virsh;
  stop(): Promise<void>;
}

/** Why a private libvirtd (running QEMU as `qemuUser`) cannot run here, or null. */
export function libvirtdUnavailable(opts: { qemuUser?: QemuUser } = {}): string | null {
  if (process.getuid?.() !== 0) return "needs root (libvirtd in a private mount namespace)";
  for (const bin of ["libvirtd", "unshare", "virsh", "qemu-system-x86_64", "qemu-img"]) if (!Bun.which(bin)) return `${bin} is not installed`;
  if (!existsSync("/etc/libvirt")) return "/etc/libvirt is missing (libvirt-daemon-system not installed)";
  return opts.qemuUser ? qemuUserUnavailable(opts.qemuUser) : null;
}

/**
 * /dev/kvm as QEMU's user sees it. libvirtd checks that user can open /dev/kvm
 * and, when it cannot while the device exists (root:root 0600, as on a machine
 * where udev never ran), probes QEMU again on every call (10–40 s each): a test
 * would hang in `virsh define`. Debian's udev rule makes it group kvm 0660.
 */
export type KvmAccess = { kind: "absent" } | { kind: "usable" } | { kind: "private-node"; mode: string; owner: string };

export function kvmAccessFor(q: QemuUser): KvmAccess {
  let st;
  try {
    st = statSync("/dev/kvm");
  } catch {
    return { kind: "absent" };
  }
  const uid = idOf("/etc/passwd", q.user);
  const gid = idOf("/etc/group", q.group);
  const mode = st.mode & 0o777;
  const rw = (bits: number) => (mode & bits) === bits;
  const usable = (uid === st.uid && rw(0o600)) || (gid === st.gid && rw(0o060)) || rw(0o006);
  if (usable) return { kind: "usable" };
  return { kind: "private-node", mode: mode.toString(8).padStart(4, "0"), owner: `${st.uid}:${st.gid}` };
}

/**
 * Inside the daemon's mount namespace: a device node of the host's /dev/kvm on the
 * namespace's own /run tmpfs (never nodev), group `group`, 0660, bound over /dev/kvm.
 * The host's /dev/kvm is left as it is.
 */
function privateKvmLines(group: string): string[] {
  return [
    'mknod -m 0660 /run/neuron-kvm c "$((0x$(stat -c %t /dev/kvm)))" "$((0x$(stat -c %T /dev/kvm)))"',
    `chgrp '${group}' /run/neuron-kvm`,
    "mount --bind /run/neuron-kvm /dev/kvm",
  ];
}

function qemuUserUnavailable(q: QemuUser): string | null {
  const uid = idOf("/etc/passwd", q.user);
  const gid = idOf("/etc/group", q.group);
  if (uid === null) return `no ${q.user} user (libvirt-daemon-system creates it)`;
  if (gid === null) return `no ${q.group} group (run npm run setup as root)`;
  if (!Bun.which("setpriv")) return "setpriv (util-linux) is not installed";
  const kvm = kvmAccessFor(q);
  if (kvm.kind !== "private-node") return null;
  // Try the preparation once, the way startLibvirtd does it, and open the node as QEMU's user.
  const script = ["set -e", "mount -t tmpfs -o mode=0755 tmpfs /run", ...privateKvmLines(q.group), `exec setpriv --reuid=${uid} --regid=${gid} --clear-groups sh -c 'exec 3<>/dev/kvm'`].join("\n");
  const r = Bun.spawnSync(["unshare", "-m", "--propagation", "private", "sh", "-c", script], { stdout: "pipe", stderr: "pipe", timeout: 10_000 });
  if (r.exitCode === 0) return null;
  return (
    `/dev/kvm is ${kvm.owner} ${kvm.mode}: ${q.user} cannot open it (libvirtd would re-probe QEMU on every call) and a private node for the test's libvirtd failed ` +
    `(${r.stderr.toString().trim().slice(-200) || `exit ${r.exitCode ?? "timeout"}`}); npm run setup as root gives it group kvm 0660`
  );
}

const BINDS: [string, string][] = [
  ["etc", "/etc/libvirt"],
  ["run", "/run/libvirt"],
  ["lib", "/var/lib/libvirt"],
  ["cache", "/var/cache/libvirt"],
  ["log", "/var/log/libvirt"],
  ["shm", "/dev/shm"],
];

/** `qemuUser`: run QEMU as this user and group (as distributions do) instead of root. */
export async function startLibvirtd(opts: { qemuUser?: QemuUser } = {}): Promise<PrivateLibvirtd> {
  const tmp = tempDir("neuron-libvirtd-");
  const dir = tmp.path;
  for (const [sub] of BINDS) mkdirSync(join(dir, sub), { recursive: true });
  cpSync("/etc/libvirt", join(dir, "etc"), { recursive: true });
  // No autostarted networks: they would create host bridges.
  rmSync(join(dir, "etc", "qemu", "networks", "autostart"), { recursive: true, force: true });
  // QEMU runs as root with no relabelling or confinement, its stdio in a file (no virtlogd).
  writeFileSync(
    join(dir, "etc", "qemu.conf"),
    [`user = "${opts.qemuUser?.user ?? "root"}"`, `group = "${opts.qemuUser?.group ?? "root"}"`, "dynamic_ownership = 0", "remember_owner = 0", 'security_driver = "none"', 'stdio_handler = "file"', ""].join("\n"),
  );
  const script = [
    "set -e",
    "mount -t tmpfs -o mode=0755 tmpfs /run",
    "mkdir -p /run/libvirt",
    ...(opts.qemuUser && kvmAccessFor(opts.qemuUser).kind === "private-node" ? privateKvmLines(opts.qemuUser.group) : []),
    ...BINDS.map(([sub, target]) => `mount --bind '${join(dir, sub)}' '${target}'`),
    "exec libvirtd",
  ].join("\n");
  writeFileSync(join(dir, "start.sh"), script);
  const proc = Bun.spawn(["unshare", "-m", "--propagation", "private", "sh", join(dir, "start.sh")], {
    stdout: Bun.file(join(dir, "libvirtd.out")),
    stderr: Bun.file(join(dir, "libvirtd.err")),
  });
  const uri = `qemu:///system?socket=${join(dir, "run", "libvirt-sock")}`;
  const stop = async () => {
    if (proc.exitCode === null) {
      proc.kill("SIGTERM");
      const done = await Promise.race([proc.exited.then(() => true), Bun.sleep(10_000).then(() => false)]);
      if (!done) {
        proc.kill("SIGKILL");
        await proc.exited;
      }
    }
    tmp.cleanup();
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (proc.exitCode !== null) {
      const err = await Bun.file(join(dir, "libvirtd.err")).text();
      await stop();
      throw new Error(`libvirtd exited (${proc.exitCode}): ${err.slice(-500)}`);
    }
    const r = Bun.spawnSync(["virsh", "-q", "-c", uri, "list"], { stdout: "pipe", stderr: "pipe", timeout: 5_000 });
    if (r.exitCode === 0) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`libvirtd did not answer: ${r.stderr.toString().slice(-300)}`);
    }
    await Bun.sleep(100);
  }
  const hostPath = (p: string) => {
    for (const [sub, target] of BINDS) if (p === target || p.startsWith(target + "/")) return join(dir, sub, p.slice(target.length));
    return p;
  };
  const virsh = (timeoutMs = TEST_VIRSH_TIMEOUT_MS) => new Virsh({ bin: "virsh", uri, timeoutMs });
  return { dir, uri, pid: proc.pid, hostPath, shmDir: join(dir, "shm"), virsh, stop };
}
