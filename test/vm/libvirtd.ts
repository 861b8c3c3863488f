/**
 * A private, real libvirtd for tests: run as root in its own mount namespace,
 * with /etc/libvirt, /run/libvirt, /var/lib/libvirt, /var/cache/libvirt,
 * /var/log/libvirt and /dev/shm bound to a temporary directory, so it never
 * touches the host's libvirt state. Clients reach it through the socket in that
 * directory (qemu:///system?socket=...). Stopped by its PID.
 */
import { cpSync, existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "../helpers/env.ts";

export interface PrivateLibvirtd {
  dir: string;
  uri: string;
  pid: number;
  /** Host path of a path as the daemon (and QEMU) see it. */
  hostPath(path: string): string;
  /** Host path of the daemon's /dev/shm. */
  shmDir: string;
  stop(): Promise<void>;
}

export function libvirtdUnavailable(): string | null {
  if (process.getuid?.() !== 0) return "needs root (libvirtd in a private mount namespace)";
  for (const bin of ["libvirtd", "unshare", "virsh", "qemu-system-x86_64", "qemu-img"]) if (!Bun.which(bin)) return `${bin} is not installed`;
  if (!existsSync("/etc/libvirt")) return "/etc/libvirt is missing (libvirt-daemon-system not installed)";
  return null;
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
export async function startLibvirtd(opts: { qemuUser?: { user: string; group: string } } = {}): Promise<PrivateLibvirtd> {
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
    const r = Bun.spawnSync(["virsh", "-q", "-c", uri, "list"], { stdout: "pipe", stderr: "pipe" });
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
  return { dir, uri, pid: proc.pid, hostPath, shmDir: join(dir, "shm"), stop };
}
