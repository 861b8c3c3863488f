/**
 * A tiny Linux guest that reports the input events it receives: Debian's
 * kernel (downloaded as a package, extracted, never installed), its virtio and
 * evdev modules, busybox, and evprint (test/fixtures/input-guest/evprint.c),
 * which prints every evdev event to the serial console. Built once into
 * <repo>/.cache/input-guest/.
 */
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO_ROOT } from "../helpers/env.ts";

const EVPRINT_SRC = join(REPO_ROOT, "test", "fixtures", "input-guest", "evprint.c");
const UHIDMK_SRC = join(REPO_ROOT, "test", "fixtures", "input-guest", "uhidmk.c");
const CACHE = join(REPO_ROOT, ".cache", "input-guest");
/**
 * Load order matters: each module's dependencies first. Beside virtio: the PS/2 mouse
 * (the i8042 and AT keyboard drivers are built in), USB HID over xHCI, and uhid.
 */
const MODULES = [
  "evdev", "virtio_ring", "virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev", "virtio_pci", "virtio_input",
  "psmouse", "usb-common", "usbcore", "xhci-hcd", "xhci-pci-renesas", "xhci-pci", "hid", "usbhid", "hid-generic", "uhid",
];
/** Modules some kernel builds lack or build in: their absence is no reason to skip. */
const OPTIONAL = new Set(["xhci-pci-renesas", "psmouse"]);

const INIT = `#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sys /sys
/bin/busybox mount -t devtmpfs dev /dev
for m in ${MODULES.join(" ")}; do [ -f /mod/$m.ko ] && { /bin/busybox insmod /mod/$m.ko || echo "insmod $m failed"; }; done
# uhid devices asked for on the command line (uhidN=...), made before evprint enumerates
/bin/uhidmk &
# let the input devices appear before evprint enumerates them (nevents=N on the command line, default 4)
want=4; for a in $(/bin/busybox cat /proc/cmdline); do case $a in nevents=*) want=\${a#nevents=};; esac; done
i=0; while [ $i -lt 300 ] && [ $(/bin/busybox ls /dev/input | /bin/busybox grep -c event) -lt $want ]; do /bin/busybox sleep 0.1; i=$((i+1)); done
exec /bin/evprint
`;

export interface InputGuest {
  kernel: string;
  initrd: string;
}

function run(argv: string[], cwd?: string): { ok: boolean; out: string } {
  const r = Bun.spawnSync(argv, { cwd, stdout: "pipe", stderr: "pipe" });
  return { ok: r.exitCode === 0, out: (r.stdout.toString() + r.stderr.toString()).trim() };
}

/** Build (or reuse) the guest; a string is the reason it cannot be built here. */
export function inputGuest(): InputGuest | string {
  const stamp = createHash("sha256").update(readFileSync(EVPRINT_SRC)).update(readFileSync(UHIDMK_SRC)).update(INIT).digest("hex").slice(0, 16);
  const dir = join(CACHE, stamp);
  const kernel = join(dir, "vmlinuz");
  const initrd = join(dir, "initramfs.cpio.gz");
  if (existsSync(kernel) && existsSync(initrd)) return { kernel, initrd };

  for (const tool of ["apt-cache", "apt-get", "dpkg-deb", "gcc", "cpio", "gzip"]) {
    if (!Bun.which(tool)) return `${tool} is not installed`;
  }
  const busybox = ["/bin/busybox", "/usr/bin/busybox"].find((p) => existsSync(p));
  if (!busybox) return "busybox (busybox-static) is not installed";
  const dep = run(["apt-cache", "depends", "linux-image-amd64"]).out.match(/Depends:\s*(linux-image-\S+)/);
  if (!dep) return "no Debian kernel package is known to apt (linux-image-amd64)";
  const pkg = dep[1] as string;

  const work = mkdtempSync(join(tmpdir(), "neuron-input-guest-"));
  try {
    const dl = run(["apt-get", "download", pkg], work);
    if (!dl.ok) return `cannot download ${pkg}: ${dl.out.split("\n").pop()}`;
    const deb = readdirSync(work).find((f) => f.endsWith(".deb"));
    if (!deb) return `apt-get download ${pkg} produced no package`;
    const x = join(work, "x");
    if (!run(["dpkg-deb", "-x", join(work, deb), x]).ok) return `cannot unpack ${deb}`;
    const kver = readdirSync(join(x, "lib", "modules"))[0];
    if (!kver) return `${deb} has no modules`;
    const root = join(work, "root");
    for (const d of ["bin", "mod", "dev", "proc", "sys"]) mkdirSync(join(root, d), { recursive: true });
    copyFileSync(busybox, join(root, "bin", "busybox"));
    const cc = run(["gcc", "-static", "-O2", "-o", join(root, "bin", "evprint"), EVPRINT_SRC]);
    if (!cc.ok) return `cannot build evprint: ${cc.out}`;
    const cc2 = run(["gcc", "-static", "-O2", "-o", join(root, "bin", "uhidmk"), UHIDMK_SRC]);
    if (!cc2.ok) return `cannot build uhidmk: ${cc2.out}`;
    const modRoot = join(x, "lib", "modules", kver, "kernel");
    for (const m of MODULES) {
      const found = run(["find", modRoot, "-name", `${m}.ko`]).out.split("\n")[0];
      if (!found && OPTIONAL.has(m)) continue;
      if (!found) return `${pkg} lacks module ${m}`;
      copyFileSync(found, join(root, "mod", `${m}.ko`));
    }
    writeFileSync(join(root, "init"), INIT, { mode: 0o755 });
    mkdirSync(dir, { recursive: true });
    const pack = run(["sh", "-c", `cd "${root}" && find . | cpio -o -H newc 2>/dev/null | gzip -1 > "${initrd}.tmp"`]);
    if (!pack.ok) return `cannot pack the initramfs: ${pack.out}`;
    copyFileSync(join(x, "boot", `vmlinuz-${kver}`), kernel);
    copyFileSync(`${initrd}.tmp`, initrd);
    rmSync(`${initrd}.tmp`);
    return { kernel, initrd };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
