/**
 * The tiny guest of the VM streaming test: the test kernel (tiny-guest.ts), the
 * Looking Glass producer (test/capture/guest/guest-producer.c over our native
 * producer) posting frames into the ivshmem-plain BAR, and evprint reading the
 * virtio input devices. /init prints every input event to the serial console
 * and powers the VM off when F12 is pressed.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "../helpers/env.ts";
import { buildInitramfs, findKernel, tinyGuestUnavailable, type Kernel } from "../guest/tiny-guest.ts";

/** evdev key code of F12: the guest powers off when it sees it pressed. */
export const KEY_F12 = 88;

export interface StreamGuest {
  kernel: Kernel;
  initramfs: string;
}

function cc(out: string, sources: string[]): void {
  const r = Bun.spawnSync(["cc", "-static", "-O2", "-std=gnu11", "-D_GNU_SOURCE", "-o", out, ...sources, "-lpthread"], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`cc ${out}: ${r.stderr.toString().slice(-1500)}`);
}

/** Why the guest cannot be built here, or null. */
export function streamGuestUnavailable(): string | null {
  const why = tinyGuestUnavailable();
  if (why) return why;
  if (!Bun.which("cc")) return "no C compiler (cc) to build the guest's static programs";
  const k = findKernel() as Kernel;
  for (const m of ["evdev", "virtio_input"]) if (!k.modules[m]) return `test kernel lacks module ${m}`;
  return null;
}

export function buildStreamGuest(work: string, o: { width: number; height: number; fps: number }): StreamGuest {
  const kernel = findKernel();
  if (typeof kernel === "string") throw new Error(kernel);
  const bin = join(work, "bin");
  mkdirSync(bin, { recursive: true });
  const producer = join(bin, "guest-producer");
  cc(producer, [
    join(REPO_ROOT, "test", "capture", "guest", "guest-producer.c"),
    join(REPO_ROOT, "native", "capture", "producer.c"),
    join(REPO_ROOT, "native", "capture", "pattern.c"),
    join(REPO_ROOT, "native", "capture", "reader.c"),
  ]);
  const evprint = join(bin, "evprint");
  cc(evprint, [join(REPO_ROOT, "test", "fixtures", "input-guest", "evprint.c")]);
  const run = [
    "insmod /modules/evdev.ko; insmod /modules/virtio_input.ko",
    // the keyboard, mouse and tablet of the definition
    "i=0; while [ $i -lt 50 ] && [ $(ls /dev/input | grep -c event) -lt 3 ]; do sleep 0.1; i=$((i+1)); done",
    `/bin/guest-producer ${o.width} ${o.height} ${o.fps} 3600 &`,
    // every input event to the console; F12 pressed powers the guest off
    `/bin/evprint | while read -r line; do echo "$line"; case "$line" in "EV "*" 1 ${KEY_F12} 1") echo GUEST-POWEROFF; poweroff -f;; esac; done`,
  ].join("\n");
  const root = join(work, "root");
  if (existsSync(root)) rmSync(root, { recursive: true, force: true });
  const initramfs = buildInitramfs(
    work,
    kernel,
    {
      "/bin/guest-producer": { host: producer },
      "/bin/evprint": { host: evprint },
      "/modules/evdev.ko": { text: readFileSync(kernel.modules.evdev!) },
      "/modules/virtio_input.ko": { text: readFileSync(kernel.modules.virtio_input!) },
    },
    run,
  );
  const out = join(work, "stream-guest.cpio");
  copyFileSync(initramfs, out);
  return { kernel, initramfs: out };
}
