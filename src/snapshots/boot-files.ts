/**
 * The /boot files that belong to a snapshot when /boot is outside the root
 * subvolume (a vfat ESP): kernels, initramfs images, microcode and UKIs are
 * hashed and copied beside the snapshot, and written back on rollback — so a
 * rolled-back root never boots a kernel whose modules are gone.
 */
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { SnapshotError } from "./backend.ts";

export interface BootFile {
  /** Relative to the boot directory. */
  path: string;
  sha256: string;
  size: number;
}

const KERNEL_FILE = /^(vmlinuz-.+|initramfs-.+\.img|.+-ucode\.img|kernel-.+|initrd.*)$/;

export function sha256File(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

/** Is the boot directory a file system (or subvolume) of its own, outside the root's snapshots? */
export function bootIsSeparate(root: string, bootDir: string): boolean {
  if (!existsSync(bootDir)) return false;
  return statSync(bootDir).dev !== statSync(root).dev;
}

/** The kernel-related files in a boot directory: top-level kernels/initramfs/microcode and EFI/Linux/*.efi (UKIs). */
export function listBootFiles(bootDir: string): string[] {
  const out: string[] = [];
  if (!existsSync(bootDir)) return out;
  for (const e of readdirSync(bootDir, { withFileTypes: true })) if (e.isFile() && KERNEL_FILE.test(e.name)) out.push(e.name);
  const uki = join(bootDir, "EFI", "Linux");
  if (existsSync(uki)) for (const e of readdirSync(uki, { withFileTypes: true })) if (e.isFile() && e.name.endsWith(".efi")) out.push(relative(bootDir, join(uki, e.name)));
  return out.sort();
}

/** Copies the boot files into `store` and returns their manifest. */
export function keepBootFiles(bootDir: string, store: string): BootFile[] {
  mkdirSync(store, { recursive: true });
  return listBootFiles(bootDir).map((rel) => {
    const src = join(bootDir, rel);
    const dst = join(store, rel);
    mkdirSync(dirname(dst), { recursive: true });
    copyFileSync(src, dst);
    const sha256 = sha256File(dst);
    if (sha256 !== sha256File(src)) throw new SnapshotError("BOOT_COPY_FAILED", `copy of ${src} does not match the original`);
    return { path: rel, sha256, size: statSync(dst).size };
  });
}

/**
 * Writes the kept files back into the boot directory, removes kernel files the
 * manifest does not name (those of a kernel the snapshot does not have), and
 * checks every hash. Refuses before touching anything when a kept file is damaged.
 */
export function restoreBootFiles(bootDir: string, store: string, manifest: BootFile[]): { restored: string[]; removed: string[] } {
  for (const f of manifest) {
    const kept = join(store, f.path);
    if (!existsSync(kept) || sha256File(kept) !== f.sha256)
      throw new SnapshotError("BOOT_FILES_DAMAGED", `the kept copy of /boot/${f.path} (${kept}) is missing or does not match its hash; /boot was not changed`);
  }
  const named = new Set(manifest.map((f) => f.path));
  const removed: string[] = [];
  for (const rel of listBootFiles(bootDir)) {
    if (!named.has(rel)) {
      rmSync(join(bootDir, rel), { force: true });
      removed.push(rel);
    }
  }
  const restored: string[] = [];
  for (const f of manifest) {
    const dst = join(bootDir, f.path);
    if (existsSync(dst) && sha256File(dst) === f.sha256) continue;
    mkdirSync(dirname(dst), { recursive: true });
    copyFileSync(join(store, f.path), dst);
    if (sha256File(dst) !== f.sha256) throw new SnapshotError("BOOT_RESTORE_FAILED", `/boot/${f.path} does not match the kept hash after writing it`);
    restored.push(f.path);
  }
  return { restored, removed };
}

export interface KernelMatch {
  /** The boot file, e.g. vmlinuz-linux. */
  kernel: string;
  /** The modules directory in the tree that belongs to it, or null when there is none. */
  modules: string | null;
}

/**
 * Which modules directory of `tree` belongs to each vmlinuz-* in `bootDir`:
 * the one whose own vmlinuz has the same bytes, or whose pkgbase names it (Arch's layout).
 */
export function matchKernels(tree: string, bootDir: string): KernelMatch[] {
  const modRoot = join(tree, "usr", "lib", "modules");
  const dirs = existsSync(modRoot) ? readdirSync(modRoot).map((d) => join(modRoot, d)) : [];
  const kernels = existsSync(bootDir) ? readdirSync(bootDir).filter((n) => n.startsWith("vmlinuz-")) : [];
  return kernels.map((kernel) => {
    const hash = sha256File(join(bootDir, kernel));
    const base = kernel.slice("vmlinuz-".length);
    const hit = dirs.find((d) => existsSync(join(d, "vmlinuz")) && sha256File(join(d, "vmlinuz")) === hash) ??
      dirs.find((d) => !existsSync(join(d, "vmlinuz")) && existsSync(join(d, "pkgbase")) && readFileSync(join(d, "pkgbase"), "utf8").trim() === base);
    return { kernel, modules: hit ? relative(tree, hit) : null };
  });
}
