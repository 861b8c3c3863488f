/**
 * The NVF1 unix-socket fallback in a real VM, on a private real libvirtd (test/vm/libvirtd.ts):
 * the appliance's definition with frameChannel (a virtio-serial port org.neuronos.frames.0 whose
 * unix chardev connects to the host's listener, and reconnects), booted under TCG with the tiny
 * test kernel; inside the guest the compiled guest agent's exporter writes test-pattern frames
 * to that port; the host's listener, opened only after the VM started, reads them: the serials
 * advance and every pixel is the pattern's.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { resolveNativePath } from "../../ffi/native.ts";
import { VsockNative } from "../../ffi/vsock.ts";
import { SocketFrameSource } from "../../src/capture/socket-source.ts";
import { chooseVmTransport } from "../../src/capture/sources.ts";
import { fillPattern } from "../../src/guest-agent/frame-export.ts";
import { parseSpec } from "../../src/vm/service.ts";
import type { Virsh } from "../../src/vm/virsh.ts";
import { domainTree, FRAME_CHANNEL, serializeXml, vmFrameSocket } from "../../src/vm/xml.ts";
import { buildInitramfs, findKernel, tinyGuestUnavailable, type Kernel } from "../guest/tiny-guest.ts";
import { BUN, REPO_ROOT, tempDir } from "../helpers/env.ts";
import { libvirtdUnavailable, startLibvirtd, type PrivateLibvirtd } from "../vm/libvirtd.ts";

const SKIP = libvirtdUnavailable() ?? tinyGuestUnavailable();
if (SKIP) console.warn(`skipping the NVF1 guest test: ${SKIP}`);

const VM = "nvfguest";
const W = 64;
const H = 48;

describe.skipIf(SKIP !== null)("a TCG guest's exporter sends NVF1 through the frames channel to the host listener", () => {
  const dir = tempDir("neuron-nvfg-");
  const frameDir = join(dir.path, "frames");
  const consoleLog = join(dir.path, "console.log");
  let daemon: PrivateLibvirtd;
  let virsh: Virsh;
  const native = new VsockNative(resolveNativePath({}));

  beforeAll(async () => {
    daemon = await startLibvirtd();
    virsh = daemon.virsh();
  }, 60_000);

  afterAll(async () => {
    if (daemon) {
      if ((await virsh.state(VM).catch(() => "gone")) === "running") await virsh.destroy(VM).catch(() => undefined);
      await daemon.stop();
    }
    native.close();
    dir.cleanup();
  }, 60_000);

  test(
    "libvirt starts the VM without a listener; the listener opened later gets the guest's frames, pixel for pixel",
    async () => {
      const kernel = findKernel() as Kernel;
      const agentBin = join(dir.path, "neuron-agent");
      const build = Bun.spawnSync([BUN, "build", "--compile", join(REPO_ROOT, "src", "guest-agent", "main.ts"), "--outfile", agentBin], { stdout: "pipe", stderr: "pipe" });
      expect(build.stderr.toString()).not.toContain("error:");
      expect(build.exitCode).toBe(0);
      const run = [
        // the frames port by its name (no udev here; ports appear a moment after the module loads)
        `dev=; i=0; while [ -z "$dev" ] && [ $i -lt 100 ]; do for p in /sys/class/virtio-ports/*; do [ "$(cat $p/name 2>/dev/null)" = ${FRAME_CHANNEL} ] && dev=/dev/$(basename $p); done; [ -z "$dev" ] && sleep 0.1; i=$((i+1)); done`,
        'ls /sys/class/virtio-ports/ 2>&1; i=0; while [ -n "$dev" ] && [ ! -e "$dev" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done',
        'echo "FRAMES-PORT $dev"',
        `HOME=/root TMPDIR=/tmp /agent/neuron-agent export-frames --mode test-pattern --device "$dev" --width ${W} --height ${H} --fps 10 --frames 300 2>&1`,
      ].join("\n");
      const initramfs = buildInitramfs(dir.path, kernel, { "agent/neuron-agent": { host: agentBin, libs: true } }, run);

      // the appliance's definition with the frames channel, booting the tiny kernel instead of firmware
      const spec = parseSpec({ name: VM, template: "linux", vcpus: 1, memoryMiB: 768, network: { kind: "none" }, graphics: "none", frameChannel: true });
      const socketPath = vmFrameSocket(frameDir, VM);
      const tree = domainTree(spec, { domainType: "qemu", frameSocket: socketPath }) as { domain: Record<string, unknown> & { devices: Record<string, unknown> } };
      tree.domain.os = { type: { "@_arch": "x86_64", "@_machine": "q35", "#text": "hvm" }, kernel: kernel.vmlinuz, initrd: initramfs, cmdline: "console=ttyS0 quiet panic=-1" };
      tree.domain.devices.serial = { "@_type": "file", source: { "@_path": consoleLog }, target: { "@_port": "0" } };
      const xml = serializeXml(tree);
      await virsh.define(xml);
      // as the stream would: the definition says unix socket, through the channel
      const choice = chooseVmTransport(VM, await virsh.dumpxml(VM, true), { shmDir: daemon.shmDir, vsockDevice: join(dir.path, "no-vhost-vsock"), frameSocketDir: frameDir });
      expect(choice).toMatchObject({ kind: "unix", socketPath });
      expect(choice.reason).toContain(`channel ${FRAME_CHANNEL}`);

      // no listener yet: QEMU starts anyway and keeps trying to connect
      await virsh.start(VM);
      expect(await virsh.state(VM)).toBe("running");
      const consoleText = () => (existsSync(consoleLog) ? readFileSync(consoleLog, "utf8") : "");
      Bun.spawnSync(["mkdir", "-p", frameDir]);
      const src = new SocketFrameSource(native, { kind: "unix", path: socketPath });
      try {
        // the guest boots under TCG (several seconds) and its exporter starts
        const bootDeadline = Date.now() + 90_000;
        for (;;) {
          try {
            src.attach(2000);
            break;
          } catch (err) {
            const state = await virsh.state(VM).catch(() => "gone");
            if (state !== "running" || Date.now() > bootDeadline)
              throw new Error(`${(err as Error).message} (VM ${state}); guest console: ${consoleText().slice(-800)}`);
          }
        }
        expect(consoleText()).toMatch(/FRAMES-PORT \/dev\/vport\d+p\d+/);
        expect(src.hello()).toMatchObject({ width: W, height: H, fps: 10, codec: "raw" });
        const buf = new Uint8Array(W * H * 4);
        const expected = new Uint8Array(W * H * 4);
        const serials: number[] = [];
        const deadline = Date.now() + 60_000;
        while (serials.length < 5 && Date.now() < deadline) {
          const ev = src.next(buf, 2000);
          if (ev.kind !== "frame") continue;
          serials.push(ev.info.frameSerial);
          // frame serial s carries the pattern of s - 1 (the exporter fills, then counts)
          fillPattern(expected, W, H, W * 4, ev.info.frameSerial - 1);
          expect(ev.info).toMatchObject({ frameWidth: W, frameHeight: H });
          expect(Buffer.compare(buf, expected)).toBe(0);
        }
        expect(serials.length).toBe(5);
        expect(serials).toEqual([...serials].sort((a, b) => a - b));
        expect(new Set(serials).size).toBe(5);
        expect(src.stats().frames).toBeGreaterThanOrEqual(5);
      } finally {
        src.close();
        await virsh.destroy(VM).catch(() => undefined);
      }
    },
    180_000,
  );
});
