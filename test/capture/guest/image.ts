/**
 * A tiny real guest for the IVSHMEM test: Debian's kernel (apt-get download +
 * dpkg-deb -x, cached), busybox-static and the static guest-producer in a
 * gzip'd cpio initramfs.
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { execFile } from "../../../src/exec.ts";

const REPO = resolve(import.meta.dir, "..", "..", "..");
export const CACHE_DIR = process.env.NEURON_TEST_CACHE ?? "/var/cache/neuron-appliance-tests";

async function run(argv: string[], cwd?: string, timeoutMs = 300_000): Promise<string> {
  const r = await execFile(argv, { cwd, timeoutMs });
  if (r.code !== 0) throw new Error(`${argv.join(" ")} failed: ${r.spawnError ?? r.stderr.trim().split("\n").pop()}`);
  return r.stdout;
}

/** Path of a Debian amd64 kernel image, downloaded once into the cache. */
export async function ensureKernel(): Promise<string> {
  const dir = join(CACHE_DIR, "kernel");
  const target = join(dir, "vmlinuz");
  if (existsSync(target)) return target;
  const deps = await run(["apt-cache", "depends", "linux-image-amd64"]);
  const pkg = deps.match(/Depends: (linux-image-[0-9][^\s]*-amd64)/)?.[1];
  if (!pkg) throw new Error("cannot resolve the linux-image-amd64 package");
  const work = mkdtempSync(join(tmpdir(), "neuron-kernel-"));
  try {
    await run(["apt-get", "download", pkg], work);
    const deb = readdirSync(work).find((f) => f.endsWith(".deb"));
    if (!deb) throw new Error(`apt-get download ${pkg} produced no .deb`);
    await run(["dpkg-deb", "-x", deb, "x"], work);
    const vmlinuz = readdirSync(join(work, "x", "boot")).find((f) => f.startsWith("vmlinuz-"));
    if (!vmlinuz) throw new Error(`${pkg} holds no vmlinuz`);
    mkdirSync(dir, { recursive: true });
    copyFileSync(join(work, "x", "boot", vmlinuz), target + ".tmp");
    await run(["mv", target + ".tmp", target]);
    return target;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** Builds initramfs.cpio.gz in `dir`: /init runs the producer for `seconds`, then powers off. */
export async function buildInitramfs(dir: string, width: number, height: number, fps: number, seconds: number): Promise<string> {
  const root = join(dir, "root");
  for (const d of ["bin", "proc", "sys", "dev"]) mkdirSync(join(root, d), { recursive: true });
  copyFileSync("/bin/busybox", join(root, "bin", "busybox"));
  for (const tool of ["sh", "mount", "poweroff", "echo", "sleep"]) symlinkSync("busybox", join(root, "bin", tool));
  await run([
    "cc", "-static", "-O2", "-std=c11", "-D_GNU_SOURCE", "-o", join(root, "bin", "guest-producer"),
    join(REPO, "test", "capture", "guest", "guest-producer.c"),
    join(REPO, "native", "capture", "producer.c"),
    join(REPO, "native", "capture", "pattern.c"),
    join(REPO, "native", "capture", "reader.c"),
    "-lpthread",
  ]);
  writeFileSync(
    join(root, "init"),
    [
      "#!/bin/sh",
      "mount -t proc proc /proc",
      "mount -t sysfs sys /sys",
      "mount -t devtmpfs dev /dev",
      `/bin/guest-producer ${width} ${height} ${fps} ${seconds}`,
      "poweroff -f",
      "",
    ].join("\n"),
  );
  chmodSync(join(root, "init"), 0o755);
  const out = join(dir, "initramfs.cpio.gz");
  await run(["sh", "-c", `find . | cpio -o -H newc --quiet | gzip -1 > '${out}'`], root);
  return out;
}

export function busyboxAvailable(): boolean {
  return existsSync("/bin/busybox");
}
