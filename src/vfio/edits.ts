/**
 * Pure text edits of the files VFIO setup touches. Each function maps the
 * current content (null = absent) to the wanted content and is idempotent:
 * edit(edit(x)) === edit(x), so applying twice changes nothing.
 */
import { AppError } from "../errors.ts";
import { mergeParams, paramKey, splitCmdline } from "../hardware/cmdline.ts";

export const MANAGED_HEADER = "# Written by neuron-appliance for GPU passthrough; `neuron-appliance vfio rollback` restores the previous file.";

/**
 * Parameters the plan removes wherever it edits a command line, with the reason shown in the plan:
 * values the kernel does not accept, which only mislead whoever reads the command line.
 */
export const INVALID_PARAMS: Record<string, string> = {
  "amd_iommu=on": "amd_iommu=on is not a valid value (the kernel accepts off, fullflush, force_isolation, pgtbl_v1/v2...; AMD-Vi is on by default once the firmware enables it): it is ignored, so it goes",
};
const normWord = (w: string) => {
  const i = w.indexOf("=");
  return i < 0 ? w.replace(/-/g, "_") : w.slice(0, i).replace(/-/g, "_") + w.slice(i);
};
const dropInvalid = (words: string[]) => words.filter((w) => !(normWord(w) in INVALID_PARAMS));
/** mergeParams after removing the invalid parameters. */
const merge = (words: string[], wanted: string[], remove: string[] = []) => mergeParams(dropInvalid(words), wanted, remove);

const unsupported = (file: string, why: string) =>
  new AppError("UNSUPPORTED_CONFIG", `${file}: ${why}; edit it by hand or simplify it, then plan again`, { status: 422 });

/** vfio modules in load order; vfio_virqfd was merged into vfio in Linux 6.2. */
export function vfioModules(needsVirqfd: boolean): string[] {
  return ["vfio_pci", "vfio", "vfio_iommu_type1", ...(needsVirqfd ? ["vfio_virqfd"] : [])];
}
const ALL_VFIO_MODULES = new Set(["vfio_pci", "vfio", "vfio_iommu_type1", "vfio_virqfd", "vfio-pci", "vfio-iommu-type1", "vfio-virqfd"]);

/** Drivers that must wait for vfio-pci so it claims the card first. */
export function softdepDrivers(functionKinds: string[]): string[] {
  const drivers = ["nvidia", "nouveau", "amdgpu", "radeon", "snd_hda_intel"];
  if (functionKinds.includes("usb")) drivers.push("xhci_pci");
  if (functionKinds.includes("serial-bus")) drivers.push("i2c_nvidia_gpu");
  return drivers;
}

const VFIO_ID_RE = /^[0-9a-f]{4}:[0-9a-f]{4}(?::[0-9a-f]{4}:[0-9a-f]{4})?$/;

/** The ids of `options vfio-pci ... ids=a,b` lines (modprobe.d syntax; vfio_pci is the same module). */
export function modprobeVfioIds(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split("\n")) {
    const m = /^\s*options\s+vfio[-_]pci\s+(.*)$/.exec(line);
    if (!m) continue;
    for (const w of m[1]!.replace(/#.*$/, "").split(/\s+/)) if (w.startsWith("ids=")) out.push(...w.slice(4).split(",").map((x) => x.trim().toLowerCase()).filter((x) => VFIO_ID_RE.test(x)));
  }
  return out;
}

/** `vfio-pci.ids=` values of a kernel command line. */
export function cmdlineVfioIds(words: string[]): string[] {
  return words
    .filter((w) => /^vfio[-_]pci\.ids=/.test(w))
    .flatMap((w) => w.slice(w.indexOf("=") + 1).replace(/^"|"$/g, "").split(","))
    .map((x) => x.trim().toLowerCase())
    .filter((x) => VFIO_ID_RE.test(x));
}

/**
 * /etc/modprobe.d/vfio.conf: the ids (merged by the caller), softdeps, and every line of a
 * previous file that is not ours kept as it was (other vfio-pci options keep their line, without ids=).
 */
/** vendor-reset must be loaded before vfio-pci binds the GPU: modprobe loads it first. */
export const VENDOR_RESET_SOFTDEP = "softdep vfio-pci pre: vendor-reset";

export function modprobeConf(ids: string[], drivers: string[], previous: string | null = null, vendorReset = false): string {
  const ours = new Set([MANAGED_HEADER, VENDOR_RESET_SOFTDEP, ...drivers.map((d) => `softdep ${d} pre: vfio-pci`)]);
  const kept: string[] = [];
  for (const line of (previous ?? "").split("\n")) {
    if (ours.has(line)) continue;
    const m = /^(\s*options\s+vfio[-_]pci\s+)(.*)$/.exec(line);
    if (m) {
      const rest = m[2]!.split(/\s+/).filter((w) => w && !w.startsWith("ids="));
      if (rest.length) kept.push(`${m[1]}${rest.join(" ")}`);
      continue;
    }
    kept.push(line);
  }
  while (kept.length && kept[kept.length - 1] === "") kept.pop();
  return [
    MANAGED_HEADER,
    `options vfio-pci ids=${ids.join(",")}`,
    ...(vendorReset ? [VENDOR_RESET_SOFTDEP] : []),
    ...drivers.map((d) => `softdep ${d} pre: vfio-pci`),
    ...kept,
    "",
  ].join("\n");
}

/** Rewrites a bash array or string assignment NAME=(...) / NAME="..." on one line. */
function editAssignment(
  file: string,
  text: string,
  name: string,
  edit: (words: string[]) => string[],
  fallback: string | null,
): string {
  const lines = text.split("\n");
  const re = new RegExp(`^(\\s*${name}=)(\\((.*)\\)|"([^"]*)"|'([^']*)'|\\(.*)(\\s*(#.*)?)$`);
  let found = false;
  for (let i = 0; i < lines.length; i++) {
    const m = re.exec(lines[i]!);
    if (!m) continue;
    if (m[2]!.startsWith("(") && m[3] === undefined) throw unsupported(file, `${name}=( spans several lines`);
    const inner = m[3] ?? m[4] ?? m[5] ?? "";
    if (/[$`"'\\]/.test(inner)) throw unsupported(file, `${name} uses quoting or expansions`);
    const words = edit(inner.split(/\s+/).filter(Boolean)).join(" ");
    const value = m[3] !== undefined ? `(${words})` : m[4] !== undefined ? `"${words}"` : `'${words}'`;
    lines[i] = `${m[1]}${value}${m[6] ?? ""}`;
    found = true;
  }
  if (!found && fallback !== null) {
    const tail = lines.length && lines[lines.length - 1] === "" ? lines.pop() : undefined;
    lines.push(`${name}=(${edit([]).join(" ")})`);
    if (tail !== undefined) lines.push(tail);
  }
  return lines.join("\n");
}

export function mkinitcpioConf(file: string, text: string, modules: string[]): { text: string; warnings: string[] } {
  const warnings: string[] = [];
  const ours = new Set([...ALL_VFIO_MODULES, ...modules]);
  let out = editAssignment(file, text, "MODULES", (words) => [...modules, ...words.filter((w) => !ours.has(w))], "");
  if (!/^\s*HOOKS=/m.test(out)) warnings.push(`${file}: no HOOKS line; make sure the modconf hook runs so /etc/modprobe.d is read in the initramfs`);
  else
    out = editAssignment(
      file,
      out,
      "HOOKS",
      (words) => {
        if (words.includes("modconf")) return words;
        const after = ["autodetect", "udev", "systemd", "base"].find((h) => words.includes(h));
        if (!after) return [...words, "modconf"];
        const i = words.indexOf(after) + 1;
        return [...words.slice(0, i), "modconf", ...words.slice(i)];
      },
      null,
    );
  return { text: out, warnings };
}

export function dracutConf(modules: string[]): string {
  return [MANAGED_HEADER, `force_drivers+=" ${modules.join(" ")} "`, ""].join("\n");
}

/** /etc/initramfs-tools/modules: our modules first (after the leading comments), in order, once. */
export function initramfsToolsModules(text: string | null, modules: string[]): string {
  const lines = (text ?? "").split("\n");
  if (lines.length && lines[lines.length - 1] === "") lines.pop();
  const ours = new Set([...ALL_VFIO_MODULES, ...modules]);
  const isOurs = (l: string) => ours.has(l.trim().split(/\s+/)[0] ?? "");
  const kept = lines.filter((l) => !isOurs(l));
  let at = 0;
  while (at < kept.length && (kept[at]!.trim() === "" || kept[at]!.trim().startsWith("#"))) at++;
  return [...kept.slice(0, at), ...modules, ...kept.slice(at)].join("\n") + "\n";
}

/** /etc/default/grub: GRUB_CMDLINE_LINUX_DEFAULT gets the wanted parameters. */
export function grubDefault(file: string, text: string, wanted: string[]): string {
  const lines = text.split("\n");
  const re = /^(\s*GRUB_CMDLINE_LINUX_DEFAULT=)(?:"([^"]*)"|'([^']*)'|([^\s"'#]*))(\s*(?:#.*)?)$/;
  let found = false;
  for (let i = 0; i < lines.length; i++) {
    const plain = /^(\s*GRUB_CMDLINE_LINUX=)(?:"([^"]*)"|'([^']*)')(\s*(?:#.*)?)$/.exec(lines[i]!);
    if (plain) {
      const inner = plain[2] ?? plain[3] ?? "";
      const words = splitCmdline(inner);
      const kept = dropInvalid(words);
      if (kept.length !== words.length) {
        const q = plain[3] !== undefined ? "'" : '"';
        lines[i] = `${plain[1]}${q}${kept.join(" ")}${q}${plain[4] ?? ""}`;
      }
      continue;
    }
    if (!/^\s*GRUB_CMDLINE_LINUX_DEFAULT=/.test(lines[i]!)) continue;
    const m = re.exec(lines[i]!);
    if (!m) throw unsupported(file, "GRUB_CMDLINE_LINUX_DEFAULT is not a simple quoted value");
    const inner = m[2] ?? m[3] ?? m[4] ?? "";
    if (/[$`\\]/.test(inner)) throw unsupported(file, "GRUB_CMDLINE_LINUX_DEFAULT uses expansions");
    const quote = m[3] !== undefined ? "'" : '"';
    lines[i] = `${m[1]}${quote}${merge(splitCmdline(inner), wanted).join(" ")}${quote}${m[5] ?? ""}`;
    found = true;
  }
  if (!found) {
    const tail = lines.length && lines[lines.length - 1] === "" ? lines.pop() : undefined;
    lines.push(`GRUB_CMDLINE_LINUX_DEFAULT="${wanted.join(" ")}"`);
    if (tail !== undefined) lines.push(tail);
  }
  return lines.join("\n");
}

/** A systemd-boot entry: the last `options` line gets the parameters, earlier ones lose those keys. */
export function bootEntry(text: string, wanted: string[]): string | null {
  const lines = text.split("\n");
  if (!lines.some((l) => /^\s*linux\s/.test(l))) return null; // not a Linux entry (Windows, EFI shell)
  const optionIdx = lines.flatMap((l, i) => (/^\s*options(\s|$)/.test(l) ? [i] : []));
  const keys = wanted.map(paramKey);
  const render = (words: string[]) => `options ${words.join(" ")}`.trimEnd();
  if (optionIdx.length === 0) {
    const linuxAt = lines.findIndex((l) => /^\s*linux\s/.test(l));
    lines.splice(linuxAt + 1, 0, render(wanted));
    return lines.join("\n");
  }
  optionIdx.forEach((idx, n) => {
    const words = splitCmdline(lines[idx]!.replace(/^\s*options/, ""));
    lines[idx] = render(n === optionIdx.length - 1 ? merge(words, wanted) : merge(words, [], keys));
  });
  return lines.join("\n");
}

/** /etc/kernel/cmdline: the whole command line on one line. */
export function kernelCmdline(text: string | null, wanted: string[]): string {
  return merge(splitCmdline((text ?? "").replace(/\n/g, " ")), wanted).join(" ") + "\n";
}

/** A /etc/cmdline.d/*.conf file that is not ours: drop the keys we manage (ours carries them). */
export function cmdlineDropKeys(text: string, wanted: string[]): string {
  const keys = wanted.map(paramKey);
  const lines = text.split("\n").map((l) => {
    if (l.trim().startsWith("#") || l.trim() === "") return l;
    const words = splitCmdline(l);
    const kept = merge(words, [], keys);
    return kept.length === words.length ? l : kept.join(" ");
  });
  return lines.join("\n");
}

export function cmdlineConf(wanted: string[]): string {
  return [MANAGED_HEADER, wanted.join(" "), ""].join("\n");
}

/** Loads vendor-reset at boot (the AMD reset bug); the module itself comes from vendor-reset-dkms. */
export function vendorResetModulesLoad(): string {
  return [MANAGED_HEADER, "vendor-reset", ""].join("\n");
}

/** On kernels ≥ 5.15 vendor-reset only acts when reset_method is device_specific: udev sets it per device. */
export function vendorResetUdevRule(ids: string[]): string {
  const rules = ids.map((id) => {
    const [v, d] = id.split(":");
    return `ACTION=="add", SUBSYSTEM=="pci", ATTR{vendor}=="0x${v}", ATTR{device}=="0x${d}", ATTR{reset_method}="device_specific"`;
  });
  return [MANAGED_HEADER, ...rules, ""].join("\n");
}
