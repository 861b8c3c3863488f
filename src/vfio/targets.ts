/**
 * Which boot systems a target root uses (detected from its files), and the
 * file changes that configure VFIO for each of them.
 */
import { lstatSync } from "node:fs";
import { join } from "node:path";
import { AppError } from "../errors.ts";
import { listDir, readBounded } from "../hardware/sysfs.ts";
import { splitCmdline } from "../hardware/cmdline.ts";
import * as edit from "./edits.ts";

export const CONFIG_FILE_MAX = 1024 * 1024;

export type InitramfsSystem = "mkinitcpio" | "dracut" | "initramfs-tools";
export type BootSystem = "grub" | "systemd-boot" | "uki";

export interface TargetSystems {
  initramfs: InitramfsSystem[];
  boot: BootSystem[];
  /** Highest kernel version found under usr/lib/modules (or lib/modules), if any. */
  kernel: string | null;
}

export interface PlannedFile {
  /** Absolute path as seen on the target system, e.g. /etc/modprobe.d/vfio.conf. */
  path: string;
  before: string | null;
  after: string | null;
  /** Mode for a new file (an existing file keeps its own). */
  mode: number;
  reason: string;
}

const SYSTEMD_BOOT_DIRS = ["boot/loader/entries", "efi/loader/entries", "boot/efi/loader/entries"];

function kind(path: string): "file" | "dir" | "link" | "other" | null {
  try {
    const st = lstatSync(path);
    return st.isSymbolicLink() ? "link" : st.isFile() ? "file" : st.isDirectory() ? "dir" : "other";
  } catch {
    return null;
  }
}

/** Reads a config file of the target; absent → null; a symlink, a directory or an oversized file is refused. */
export function readTargetFile(targetRoot: string, rel: string): string | null {
  const abs = join(targetRoot, rel);
  const k = kind(abs);
  if (k === null) return null;
  if (k !== "file")
    throw new AppError("UNSUPPORTED_CONFIG", `/${rel} is a ${k === "link" ? "symlink" : k === "dir" ? "directory" : "special file"}; refusing to replace it`, {
      status: 422,
    });
  const r = readBounded(abs, CONFIG_FILE_MAX);
  if (!r.ok) throw new AppError("TARGET_UNREADABLE", `cannot read /${rel}: ${r.error}`, { status: 422 });
  // Edits and backups handle text; bytes that are not UTF-8 would not survive a round trip exactly.
  if (r.text.includes("\0") || r.text.includes("\uFFFD"))
    throw new AppError("UNSUPPORTED_CONFIG", `/${rel} is not a UTF-8 text file; refusing to edit it`, { status: 422 });
  return r.text;
}

const versionKey = (v: string) => (/^(\d+)\.(\d+)(?:\.(\d+))?/.exec(v) ?? []).slice(1, 4).map((x) => Number(x ?? 0));
export function compareVersions(a: string, b: string): number {
  const [x, y] = [versionKey(a), versionKey(b)];
  for (let i = 0; i < 3; i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
  return 0;
}

export function detectSystems(targetRoot: string): TargetSystems {
  const at = (rel: string) => kind(join(targetRoot, rel));
  const initramfs: InitramfsSystem[] = [];
  // Anything present counts (a symlink or a directory where a file belongs is then refused by name when read).
  const has = (rel: string) => at(rel) !== null;
  if (has("etc/mkinitcpio.conf")) initramfs.push("mkinitcpio");
  if (has("etc/dracut.conf") || has("etc/dracut.conf.d")) initramfs.push("dracut");
  if (has("etc/initramfs-tools")) initramfs.push("initramfs-tools");
  const boot: BootSystem[] = [];
  if (has("etc/default/grub")) boot.push("grub");
  if (SYSTEMD_BOOT_DIRS.some((d) => at(d) === "dir")) boot.push("systemd-boot");
  if (has("etc/kernel/cmdline") || at("etc/cmdline.d") === "dir") boot.push("uki");
  let kernel: string | null = null;
  for (const dir of ["usr/lib/modules", "lib/modules"]) {
    const l = listDir(join(targetRoot, dir));
    if (!l.ok) continue;
    for (const v of l.names.filter((n) => /^\d+\.\d+/.test(n))) if (!kernel || compareVersions(v, kernel) > 0) kernel = v;
  }
  return { initramfs, boot, kernel };
}

/** vfio-pci ids already configured on the target (modprobe.d, boot loader command lines), with where each was found. */
export function existingVfioIds(targetRoot: string, systems: TargetSystems): { id: string; source: string }[] {
  const out: { id: string; source: string }[] = [];
  const from = (source: string, ids: string[]) => ids.forEach((id) => out.push({ id, source }));
  const md = listDir(join(targetRoot, "etc/modprobe.d"));
  for (const name of md.ok ? md.names.filter((n) => n.endsWith(".conf")).sort() : []) {
    const text = readTargetFile(targetRoot, `etc/modprobe.d/${name}`);
    if (text) from(`/etc/modprobe.d/${name}`, edit.modprobeVfioIds(text));
  }
  if (systems.boot.includes("grub")) {
    const g = readTargetFile(targetRoot, "etc/default/grub") ?? "";
    for (const m of g.matchAll(/^\s*GRUB_CMDLINE_LINUX(?:_DEFAULT)?=(?:"([^"]*)"|'([^']*)'|(\S*))/gm)) from("/etc/default/grub", edit.cmdlineVfioIds(splitCmdline(m[1] ?? m[2] ?? m[3] ?? "")));
  }
  const cmdline = readTargetFile(targetRoot, "etc/kernel/cmdline");
  if (cmdline) from("/etc/kernel/cmdline", edit.cmdlineVfioIds(splitCmdline(cmdline.replace(/\n/g, " "))));
  const cd = listDir(join(targetRoot, "etc/cmdline.d"));
  for (const name of cd.ok ? cd.names.filter((n) => n.endsWith(".conf")).sort() : []) {
    const text = readTargetFile(targetRoot, `etc/cmdline.d/${name}`) ?? "";
    from(`/etc/cmdline.d/${name}`, edit.cmdlineVfioIds(splitCmdline(text.replace(/\n/g, " "))));
  }
  for (const dir of SYSTEMD_BOOT_DIRS) {
    const l = listDir(join(targetRoot, dir));
    for (const name of l.ok ? l.names.filter((n) => n.endsWith(".conf")).sort() : []) {
      const text = readTargetFile(targetRoot, `${dir}/${name}`) ?? "";
      for (const m of text.matchAll(/^\s*options\s+(.*)$/gm)) from(`/${dir}/${name}`, edit.cmdlineVfioIds(splitCmdline(m[1]!)));
    }
  }
  return out;
}

export interface EditInputs {
  vfioIds: string[];
  functionKinds: string[];
  kernelParams: string[];
  needsVirqfd: boolean;
  /** GPU ids with the AMD reset bug, and whether reset_method must be set to device_specific (kernel ≥ 5.15). */
  resetBug: { ids: string[]; deviceSpecific: boolean } | null;
}

export function plannedFiles(targetRoot: string, systems: TargetSystems, input: EditInputs): { files: PlannedFile[]; warnings: string[] } {
  const files: PlannedFile[] = [];
  const warnings: string[] = [];
  const add = (rel: string, after: string | null, reason: string, before = readTargetFile(targetRoot, rel)) =>
    files.push({ path: `/${rel}`, before, after, mode: 0o644, reason });
  // with the reset bug, vendor-reset goes into the initramfs before vfio-pci (softdep in modprobe.d orders the loads)
  const modules = [...(input.resetBug ? ["vendor-reset"] : []), ...edit.vfioModules(input.needsVirqfd)];

  const prevModprobe = readTargetFile(targetRoot, "etc/modprobe.d/vfio.conf");
  add("etc/modprobe.d/vfio.conf", edit.modprobeConf(input.vfioIds, edit.softdepDrivers(input.functionKinds), prevModprobe, input.resetBug !== null), "vfio-pci claims the GPU's functions before their drivers", prevModprobe);
  if (input.resetBug) {
    add("etc/modules-load.d/vendor-reset.conf", edit.vendorResetModulesLoad(), "load vendor-reset at boot: the GPU has the AMD reset bug");
    if (input.resetBug.deviceSpecific)
      add("etc/udev/rules.d/99-neuron-vendor-reset.rules", edit.vendorResetUdevRule(input.resetBug.ids), "reset_method=device_specific so vendor-reset handles the reset");
  }
  for (const sys of systems.initramfs) {
    if (sys === "mkinitcpio") {
      const before = readTargetFile(targetRoot, "etc/mkinitcpio.conf")!;
      const r = edit.mkinitcpioConf("/etc/mkinitcpio.conf", before, modules);
      warnings.push(...r.warnings);
      add("etc/mkinitcpio.conf", r.text, "vfio modules in the initramfs before any KMS driver; modconf hook", before);
      const dropins = listDir(join(targetRoot, "etc/mkinitcpio.conf.d"));
      for (const name of dropins.ok ? dropins.names.filter((n) => n.endsWith(".conf")) : []) {
        const text = readTargetFile(targetRoot, `etc/mkinitcpio.conf.d/${name}`);
        if (text !== null && /^\s*MODULES\+?=/m.test(text))
          warnings.push(`/etc/mkinitcpio.conf.d/${name} sets MODULES too: make sure it keeps vfio_pci vfio vfio_iommu_type1 first`);
      }
    } else if (sys === "dracut") add("etc/dracut.conf.d/10-vfio.conf", edit.dracutConf(modules), "dracut loads the vfio modules early");
    else {
      const before = readTargetFile(targetRoot, "etc/initramfs-tools/modules");
      add("etc/initramfs-tools/modules", edit.initramfsToolsModules(before, modules), "initramfs-tools loads the vfio modules early", before);
    }
  }
  if (systems.initramfs.length === 0)
    warnings.push("no initramfs generator found (mkinitcpio, dracut, initramfs-tools): vfio-pci loads from the root filesystem, where a GPU driver built into the initramfs may win");
  for (const sys of systems.boot) {
    if (sys === "grub") {
      const before = readTargetFile(targetRoot, "etc/default/grub")!;
      add("etc/default/grub", edit.grubDefault("/etc/default/grub", before, input.kernelParams), "kernel parameters for GRUB", before);
    } else if (sys === "systemd-boot") {
      for (const dir of SYSTEMD_BOOT_DIRS) {
        const l = listDir(join(targetRoot, dir));
        if (!l.ok) continue;
        for (const name of l.names.filter((n) => n.endsWith(".conf"))) {
          const rel = `${dir}/${name}`;
          const before = readTargetFile(targetRoot, rel)!;
          const after = edit.bootEntry(before, input.kernelParams);
          if (after !== null) add(rel, after, "kernel parameters for this systemd-boot entry", before);
        }
      }
    } else {
      if (kind(join(targetRoot, "etc/kernel/cmdline")) !== null) {
        const before = readTargetFile(targetRoot, "etc/kernel/cmdline");
        add("etc/kernel/cmdline", edit.kernelCmdline(before, input.kernelParams), "kernel parameters built into the UKI", before);
      }
      const l = listDir(join(targetRoot, "etc/cmdline.d"));
      if (l.ok) {
        for (const name of l.names.filter((n) => n.endsWith(".conf") && n !== "vfio.conf")) {
          const rel = `etc/cmdline.d/${name}`;
          const before = readTargetFile(targetRoot, rel)!;
          add(rel, edit.cmdlineDropKeys(before, input.kernelParams), "parameters now set in /etc/cmdline.d/vfio.conf", before);
        }
        add("etc/cmdline.d/vfio.conf", edit.cmdlineConf(input.kernelParams), "kernel parameters built into the UKI (mkinitcpio)");
      }
    }
  }
  if (systems.boot.length === 0)
    warnings.push(`no boot loader configuration found (GRUB, systemd-boot, UKI): add these kernel parameters by hand: ${input.kernelParams.join(" ")}`);
  return { files: files.filter((f) => f.before !== f.after), warnings };
}
