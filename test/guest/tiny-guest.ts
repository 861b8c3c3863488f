/**
 * A tiny real Linux guest for end-to-end tests: the Debian kernel fetched by
 * build/test-guest-kernel.sh, and an initramfs built here from busybox-static,
 * the virtio modules, and whatever files the test puts in (e.g. the compiled
 * guest agent with the glibc it links). Booted under QEMU TCG.
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { REPO_ROOT } from "../helpers/env.ts";

export const KERNEL_CACHE = join(REPO_ROOT, ".cache", "test-guest");
const MODULE_ORDER = ["virtio_ring", "virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev", "virtio_pci", "virtio_console"];

export interface Kernel {
  vmlinuz: string;
  modules: Record<string, string>;
}

/** The kernel and its virtio modules, or a reason why not. */
export function findKernel(): Kernel | string {
  const boot = join(KERNEL_CACHE, "boot");
  if (!existsSync(boot)) return `no test kernel in ${KERNEL_CACHE} (run build/test-guest-kernel.sh)`;
  const vmlinuz = readdirSync(boot).find((f) => f.startsWith("vmlinuz-"));
  if (!vmlinuz) return `no vmlinuz in ${boot}`;
  const version = vmlinuz.slice("vmlinuz-".length);
  const modules: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else if (e.name.endsWith(".ko")) modules[e.name.slice(0, -3)] = join(d, e.name);
    }
  };
  walk(join(KERNEL_CACHE, "lib", "modules", version));
  const missing = MODULE_ORDER.filter((m) => !modules[m]);
  if (missing.length) return `test kernel lacks modules ${missing.join(", ")}`;
  return { vmlinuz: join(boot, vmlinuz), modules };
}

/** Why this machine cannot build or boot the tiny guest, or null when it can. */
export function tinyGuestUnavailable(): string | null {
  const k = findKernel();
  if (typeof k === "string") return k;
  if (!Bun.which("qemu-system-x86_64")) return "qemu-system-x86_64 is not installed (Debian package qemu-system-x86)";
  if (!busybox()) return "busybox is not installed (Debian package busybox-static)";
  if (!Bun.which("cpio")) return "cpio is not installed (Debian package cpio)";
  return null;
}

export function busybox(): string | null {
  for (const p of ["/bin/busybox", "/usr/bin/busybox"]) if (existsSync(p)) return p;
  return null;
}

/** Shared libraries a dynamically linked host binary needs, from ldd. */
export function sharedLibs(binary: string): string[] {
  const out = Bun.spawnSync(["ldd", binary]).stdout.toString();
  const libs = new Set<string>();
  for (const line of out.split("\n")) {
    const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m) libs.add(m[1]!);
  }
  return [...libs];
}

/**
 * Builds initramfs.cpio in `work`. `files` maps guest paths to host files
 * (copied, with their shared libraries) or to text (written). `run` is the
 * shell that /init runs after loading the virtio modules; the VM powers off
 * when it returns.
 */
export function buildInitramfs(work: string, kernel: Kernel, files: Record<string, { host: string; libs?: boolean } | { text: string | Uint8Array; mode?: number }>, run: string): string {
  const root = join(work, "root");
  for (const d of ["bin", "proc", "sys", "dev", "tmp", "etc", "modules", "root"]) mkdirSync(join(root, d), { recursive: true });
  copyFileSync(busybox()!, join(root, "bin", "busybox"));
  symlinkSync("busybox", join(root, "bin", "sh"));
  for (const m of MODULE_ORDER) copyFileSync(kernel.modules[m]!, join(root, "modules", `${m}.ko`));
  const put = (guestPath: string, host: string) => {
    const dest = join(root, guestPath);
    mkdirSync(dirname(dest), { recursive: true });
    if (!existsSync(dest)) copyFileSync(host, dest);
  };
  for (const [guestPath, f] of Object.entries(files)) {
    if ("host" in f) {
      put(guestPath, f.host);
      chmodSync(join(root, guestPath), 0o755);
      if (f.libs) for (const lib of sharedLibs(f.host)) put(lib, lib);
    } else {
      mkdirSync(dirname(join(root, guestPath)), { recursive: true });
      writeFileSync(join(root, guestPath), f.text, { mode: f.mode ?? 0o644 });
    }
  }
  writeFileSync(
    join(root, "init"),
    [
      "#!/bin/sh",
      "/bin/busybox --install -s /bin",
      "mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev; mount -t tmpfs tmp /tmp",
      ...MODULE_ORDER.map((m) => `insmod /modules/${m}.ko`),
      "echo TINY-GUEST-UP",
      run,
      "echo TINY-GUEST-DONE",
      "poweroff -f",
      "",
    ].join("\n"),
    { mode: 0o755 },
  );
  // Uncompressed: under TCG the kernel's gunzip of a ~60 MB archive costs more than loading ~150 MB.
  const out = join(work, "initramfs.cpio");
  const r = Bun.spawnSync(["sh", "-c", `set -e; cd "$0"; find . > ../files.list; cpio -o -H newc --quiet < ../files.list > ../initramfs.cpio`, root]);
  if (r.exitCode !== 0) throw new Error(`initramfs: ${r.stderr.toString()}`);
  return out;
}

/** QEMU argv for the tiny guest (TCG: nested KVM hangs Linux guests on some hosts). */
export function qemuArgs(kernel: Kernel, initramfs: string, consoleLog: string, devices: string[], memMiB = 768): string[] {
  return [
    "qemu-system-x86_64",
    "-accel", "tcg",
    "-cpu", "max",
    "-machine", "q35",
    "-nodefaults",
    "-display", "none",
    "-m", String(memMiB),
    "-no-reboot",
    "-kernel", kernel.vmlinuz,
    "-initrd", initramfs,
    "-append", "console=ttyS0 quiet panic=-1",
    "-serial", `file:${consoleLog}`,
    ...devices,
  ];
}
