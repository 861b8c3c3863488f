/**
 * The guest kernel's HID modules (hid, uhid, hid-generic, hid-playstation and what it
 * needs) for tests that create uhid devices through the guest agent. The test kernel cache
 * (build/test-guest-kernel.sh) keeps only virtio, evdev and uinput; the HID modules of the
 * same kernel version are unpacked once from its Debian package into
 * .cache/test-guest-hid/<version>/ (downloaded, never installed).
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { REPO_ROOT } from "../helpers/env.ts";
import type { Kernel } from "./tiny-guest.ts";

/** In load order (each one's dependencies first). */
export const HID_MODULES = ["evdev", "hid", "uhid", "hid-generic", "ff-memless", "led-class-multicolor", "hid-playstation"] as const;
/** USB HID over xHCI (QEMU's usb-kbd and friends), after HID_MODULES. */
export const USB_HID_MODULES = ["usb-common", "usbcore", "xhci-hcd", "xhci-pci", "usbhid"] as const;

/** Guest paths → host files for buildInitramfs, and the insmod lines; or why not. */
export function hidModules(kernel: Kernel, opts: { usb?: boolean } = {}): { files: Record<string, { host: string }>; init: string[] } | string {
  const wanted: string[] = [...HID_MODULES, ...(opts.usb ? USB_HID_MODULES : [])];
  const version = basename(kernel.vmlinuz).slice("vmlinuz-".length);
  const cache = join(REPO_ROOT, ".cache", "test-guest-hid", version);
  const find = (m: string): string | undefined => kernel.modules[m] ?? (existsSync(join(cache, `${m}.ko`)) ? join(cache, `${m}.ko`) : undefined);
  if (wanted.some((m) => !find(m))) {
    const why = fetchModules(version, cache, wanted);
    if (why) return why;
  }
  const missing = wanted.filter((m) => !find(m));
  if (missing.length) return `the ${version} kernel package lacks ${missing.join(", ")}`;
  return {
    files: Object.fromEntries(wanted.map((m) => [`modules/${m}.ko`, { host: find(m)! }])),
    init: wanted.map((m) => `insmod /modules/${m}.ko`),
  };
}

function fetchModules(version: string, cache: string, wanted: readonly string[]): string | null {
  for (const tool of ["apt-get", "dpkg-deb"]) if (!Bun.which(tool)) return `${tool} is not installed`;
  const pkg = `linux-image-${version}`;
  const work = mkdtempSync(join(tmpdir(), "neuron-hid-modules-"));
  try {
    const dl = Bun.spawnSync(["apt-get", "download", pkg], { cwd: work, stdout: "pipe", stderr: "pipe" });
    const deb = readdirSync(work).find((f) => f.endsWith(".deb"));
    if (dl.exitCode !== 0 || !deb) return `cannot download ${pkg} for its HID modules: ${dl.stderr.toString().trim().split("\n").pop()}`;
    const x = join(work, "x");
    if (Bun.spawnSync(["dpkg-deb", "-x", join(work, deb), x]).exitCode !== 0) return `cannot unpack ${deb}`;
    mkdirSync(cache, { recursive: true });
    const walk = (d: string) => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        if (e.isDirectory()) walk(join(d, e.name));
        else if (e.name.endsWith(".ko") && wanted.includes(e.name.slice(0, -3))) copyFileSync(join(d, e.name), join(cache, e.name));
      }
    };
    walk(join(x, "lib", "modules", version));
    return null;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
