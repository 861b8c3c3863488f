/**
 * The NVF1 unix-socket fallback in a real VM, on a private real libvirtd (test/vm/libvirtd.ts):
 * the appliance's definition with frameChannel (a virtio-serial port org.neuronos.frames.0 whose
 * unix chardev connects to the host's listener, and reconnects), booted under TCG with the tiny
 * test kernel; inside the guest the compiled guest agent's exporter writes test-pattern frames
 * to that port; the host's listener, opened only after the VM started, reads them: the serials
 * advance and every pixel is the pattern's. Then the same VM through the GameStream host: its
 * definition, read from libvirt, makes the session's source the channel's socket, and the spec
 * test client decodes the guest's frames.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { enetAvailable } from "../../ffi/enet.ts";
import { NativeLibrary, resolveNativePath } from "../../ffi/native.ts";
import { VsockNative } from "../../ffi/vsock.ts";
import { SocketFrameSource } from "../../src/capture/socket-source.ts";
import { chooseVmTransport } from "../../src/capture/sources.ts";
import { fillPattern } from "../../src/guest-agent/frame-export.ts";
import { parseSpec } from "../../src/vm/service.ts";
import type { Virsh } from "../../src/vm/virsh.ts";
import { domainTree, FRAME_CHANNEL, serializeXml, vmFrameSocket } from "../../src/vm/xml.ts";
import { buildInitramfs, findKernel, tinyGuestUnavailable, type Kernel } from "../guest/tiny-guest.ts";
import { BUN, REPO_ROOT, tempDir, testConfig } from "../helpers/env.ts";
import { libvirtdUnavailable, startLibvirtd, TEST_VIRSH_TIMEOUT_MS, type PrivateLibvirtd } from "../vm/libvirtd.ts";
import { virshStateProbe } from "../../src/gamestream/video/vm-state.ts";
import { probeStream } from "../capture/ffmpeg.ts";
import { gameStreamTestService, launchSession, setTestStream } from "../gamestream/control-helpers.ts";
import { freeBasePort } from "../gamestream/helpers.ts";
import { VideoTestClient } from "../gamestream/video-client.ts";
import { ControlTestClient } from "../gamestream/control-client.ts";
import { waitFor } from "../input/qemu.ts";

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
  const consoleText = () => (existsSync(consoleLog) ? readFileSync(consoleLog, "utf8") : "");

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
        `HOME=/root TMPDIR=/tmp /agent/neuron-agent export-frames --mode test-pattern --device "$dev" --width ${W} --height ${H} --fps 10 --frames 900 2>&1`,
      ].join("\n");
      const initramfs = buildInitramfs(dir.path, kernel, { "agent/neuron-agent": { host: agentBin, libs: true } }, run);

      // the appliance's definition with the frames channel, booting the tiny kernel instead of firmware
      const spec = parseSpec({ name: VM, template: "linux", vcpus: 1, memoryMiB: 768, network: { kind: "none" }, graphics: "none", frameChannel: true });
      const socketPath = vmFrameSocket(frameDir, VM);
      const tree = domainTree(spec, { domainType: "qemu", frameSocket: socketPath }) as { domain: Record<string, unknown> & { devices: Record<string, unknown> } };
      tree.domain.os = { type: { "@_arch": "x86_64", "@_machine": "q35", "#text": "hvm" }, kernel: kernel.vmlinuz, initrd: initramfs, cmdline: "console=ttyS0 quiet panic=-1" };
      tree.domain.devices.serial = { "@_type": "file", source: { "@_path": consoleLog }, target: { "@_port": "0" } };
      // a guest without Looking Glass: no IVSHMEM device (with one, its region would be chosen first)
      delete tree.domain.devices.shmem;
      const xml = serializeXml(tree);
      await virsh.define(xml);
      // as the stream would: the definition says unix socket, through the channel
      const choice = chooseVmTransport(VM, await virsh.dumpxml(VM, true), { shmDir: daemon.shmDir, vsockDevice: join(dir.path, "no-vhost-vsock"), frameSocketDir: frameDir });
      expect(choice).toMatchObject({ kind: "unix", socketPath });
      expect(choice.reason).toContain(`channel ${FRAME_CHANNEL}`);
      expect(choice.reason).toContain("not kvmfr: the VM has no IVSHMEM device");

      // no listener yet: QEMU starts anyway and keeps trying to connect
      await virsh.start(VM);
      expect(await virsh.state(VM)).toBe("running");
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

  test.skipIf(!enetAvailable() || !Bun.which("ffprobe"))(
    "the same VM streamed to a Moonlight-like client: the GameStream host picks the channel's socket and decodes the guest's frames",
    async () => {
      const config = testConfig({
        stateDir: join(dir.path, "gs"),
        shmDir: daemon.shmDir,
        libvirtUri: daemon.uri,
        libvirtTimeoutMs: TEST_VIRSH_TIMEOUT_MS,
        frameSocketDir: frameDir,
        vsockDevice: join(dir.path, "no-vhost-vsock"),
        gamestreamHost: "127.0.0.1",
        gamestreamPort: freeBasePort(),
        mdns: false,
        hostname: "neuron-test",
      });
      Bun.spawnSync(["mkdir", "-p", config.stateDir]);
      // the default transport resolver: the VM's definition read from libvirt
      const { db, service } = gameStreamTestService(config, { nativePath: NativeLibrary.load().path, vmState: virshStateProbe("virsh", daemon.uri) });
      await service.start();
      await virsh.start(VM); // a fresh boot: a fresh exporter
      const video = (session: ReturnType<typeof launchSession>["session"]) =>
        new VideoTestClient({ port: service.ports.video, pingPayload: session.rtsp.videoPingPayload, packetSize: 1024 });
      const { key, session } = launchSession({ service }, VM, { appId: 2, appName: VM, width: W, height: H, fps: 10 });
      setTestStream(session, { bitrateKbps: 1000, encryptVideo: false });
      service.sessions.markPlaying(session);
      const client = video(session);
      const control = new ControlTestClient(key); // as Moonlight: the control stream keeps the session while the guest boots
      let keepalive: ReturnType<typeof setInterval> | null = null;
      try {
        expect(await control.connect(service.ports.control, session.connectData)).toBe(true);
        keepalive = setInterval(() => control.ping(), 1000); // Moonlight pings about once a second
        await waitFor(() => service.video?.stream.get(session.id) !== undefined, 20_000, "the session's video to start");
        expect(service.video!.stream.get(session.id)!.stats()).toMatchObject({ source: "vm", transport: "unix" });
        await client.start();
        const progress = setInterval(() => {
          const vs = service.video?.stream.get(session.id);
          if (process.env.NEURON_TEST_VERBOSE) console.log("progress", client.frames.length, JSON.stringify(vs?.sourceSample()), JSON.stringify(vs?.pipelineStats()), JSON.stringify(vs?.stats()));
        }, 3000);
        try {
          await waitFor(() => client.frames.length >= 10, 90_000, "10 frames from the guest");
        } catch (err) {
          const qemuLog = daemon.hostPath(`/var/log/libvirt/qemu/${VM}.log`);
          throw new Error(
            `${(err as Error).message}: VM ${await virsh.state(VM).catch(() => "?")}, stream ${JSON.stringify(service.video?.stream.get(session.id)?.stats())}, ` +
              `ended: ${JSON.stringify(service.sessions.history()[0])}, console: ${consoleText().slice(-400)}; qemu: ${existsSync(qemuLog) ? readFileSync(qemuLog, "utf8").slice(-600) : "no log"}`,
          );
        } finally {
          clearInterval(progress);
        }
        expect(client.errors).toEqual([]);
        const n = client.frames.length;
        const file = join(dir.path, "guest.h264");
        writeFileSync(file, client.annexB());
        const probed = await probeStream(file, "h264");
        expect(probed).toMatchObject({ codec: "h264", width: W, height: H, frames: n });
        expect(probed.keyFrames[0]).toBe(0);
      } finally {
        if (keepalive) clearInterval(keepalive);
        control.close();
        await client.close();
        service.sessions.endAll("ended-by-api");
        await service.stop();
        db.close();
        await virsh.destroy(VM).catch(() => undefined);
      }
    },
    150_000,
  );
});
