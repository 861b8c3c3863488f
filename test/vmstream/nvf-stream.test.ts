/**
 * A VM without IVSHMEM streamed over the NVF1 fallback, end to end: the appliance's own
 * definition of the VM (no running VM, so no shared memory file, no vsock device here) makes
 * chooseVmTransport pick the unix socket; at PLAY the GameStream host listens there, the guest
 * agent's exporter (test-pattern mode, run on the host as the guest would) sends NVF1 frames,
 * and the spec test client reassembles decodable H.264 whose pixels are the exporter's pattern.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { enetAvailable } from "../../ffi/enet.ts";
import { NativeLibrary } from "../../ffi/native.ts";
import { vmTransportResolver } from "../../src/capture/wire.ts";
import { fillPattern } from "../../src/guest-agent/frame-export.ts";
import { parseSpec } from "../../src/vm/service.ts";
import { buildDomainXml } from "../../src/vm/xml.ts";
import { decodeBgra, probeStream } from "../capture/ffmpeg.ts";
import { gameStreamTestService, launchSession, setTestStream } from "../gamestream/control-helpers.ts";
import { freeBasePort } from "../gamestream/helpers.ts";
import { VideoTestClient } from "../gamestream/video-client.ts";
import { tempDir, testConfig } from "../helpers/env.ts";
import { waitFor } from "../input/qemu.ts";

const SKIP = (enetAvailable() ? null : "libenet.so.7 is not installed") ?? (Bun.which("ffmpeg") && Bun.which("ffprobe") ? null : "ffmpeg/ffprobe are not installed");
if (SKIP) console.warn(`skipping the NVF1 streaming test: ${SKIP}`);

const VM = "nvfvm";
const W = 320;
const H = 240;

/** Mean absolute error (BGR, every 3rd pixel) between a decoded frame and the pattern of serial n. */
function patternError(frame: Uint8Array, n: number, expected: Uint8Array): number {
  fillPattern(expected, W, H, W * 4, n);
  let sum = 0;
  let count = 0;
  for (let y = 2; y < H; y += 3)
    for (let x = 0; x < W; x += 3) {
      const o = (y * W + x) * 4;
      sum += Math.abs(frame[o]! - expected[o]!) + Math.abs(frame[o + 1]! - expected[o + 1]!) + Math.abs(frame[o + 2]! - expected[o + 2]!);
      count += 3;
    }
  return sum / count;
}

describe.skipIf(SKIP !== null)("a VM's frames over the unix-socket fallback (NVF1) reach a Moonlight-like client", () => {
  const dir = tempDir("neuron-nvfstream-");
  const config = testConfig({
    stateDir: dir.path,
    shmDir: join(dir.path, "shm"),
    frameSocketDir: join(dir.path, "frames"),
    vsockDevice: join(dir.path, "no-vhost-vsock"),
    gamestreamHost: "127.0.0.1",
    gamestreamPort: freeBasePort(),
    mdns: false,
    hostname: "neuron-test",
  });
  const spec = parseSpec({ name: VM, template: "linux", vcpus: 1, memoryMiB: 256, network: { kind: "none" }, graphics: "none", resolution: { width: 640, height: 480 } });
  const xml = buildDomainXml(spec, { domainType: "qemu" });
  /** Held open by a test: the definition's answer waits for it (libvirt slow to answer). */
  let gate: Promise<void> = Promise.resolve();
  const resolver = vmTransportResolver(config, async (vm) => {
    await gate;
    if (vm !== VM) throw new Error(`no VM ${vm}`);
    return xml;
  });
  const { db, service } = gameStreamTestService(config, { nativePath: NativeLibrary.load().path, vmTransport: resolver });

  afterAll(async () => {
    await service.stop(); // idempotent
    db.close();
    dir.cleanup();
  });

  test(
    "unix socket chosen and reported; the exporter's pattern decodes with its pixels",
    async () => {
      const choice = await resolver(VM);
      expect(choice.kind).toBe("unix");
      expect(choice.reason).toContain("not kvmfr: the VM's shared memory");
      expect(choice.reason).toContain("vsock: the VM has no vsock device");
      await service.start();
      const { session } = launchSession({ service }, VM, { appId: 2, appName: VM, width: W, height: H, fps: 30 });
      setTestStream(session, { bitrateKbps: 4000, encryptVideo: false });
      service.sessions.markPlaying(session);
      await waitFor(() => service.video?.stream.get(session.id) !== undefined, 5000, "the session's video to start");
      const stats = service.video!.stream.get(session.id)!.stats();
      expect(stats).toMatchObject({ source: "vm", transport: "unix" });
      expect(service.video!.stream.get(session.id)!.apiStats()).toMatchObject({ transport: "unix", transportReason: choice.reason });

      const video = new VideoTestClient({ port: service.ports.video, pingPayload: session.rtsp.videoPingPayload, packetSize: 1024 });
      const exporter = Bun.spawn(
        [process.execPath, join(import.meta.dir, "../../src/guest-agent/main.ts"), "export-frames", "--mode", "test-pattern", "--unix", choice.socketPath!, "--width", String(W), "--height", String(H), "--fps", "30"],
        { stdout: "ignore", stderr: "pipe" },
      );
      try {
        await video.start();
        await waitFor(() => video.frames.length >= 30, 30_000, "30 frames from the exporter");
        expect(video.errors).toEqual([]);
        expect(video.frames[0]!.frameType).toBe(2); // the first frame sent is an IDR
        const file = join(dir.path, "nvf.h264");
        const received = video.frames.length;
        writeFileSync(file, video.annexB());
        const probed = await probeStream(file, "h264");
        expect(probed).toMatchObject({ codec: "h264", width: W, height: H, frames: received });

        // pixels: each decoded frame is the exporter's pattern for some serial, and the serials advance
        const raw = join(dir.path, "nvf.bgra");
        await decodeBgra(file, "h264", raw);
        const all = new Uint8Array(readFileSync(raw));
        const size = W * H * 4;
        expect(all.length).toBe(received * size);
        const expected = new Uint8Array(size);
        const matches: { n: number; err: number; runnerUp: number }[] = [];
        for (const i of [received - 6, received - 4, received - 2]) {
          const frame = all.subarray(i * size, (i + 1) * size);
          const errs = Array.from({ length: 256 }, (_, n) => patternError(frame, n, expected));
          const best = errs.indexOf(Math.min(...errs));
          const runnerUp = Math.min(...errs.filter((_, n) => Math.abs(n - best) > 2));
          matches.push({ n: best, err: errs[best]!, runnerUp });
        }
        if (process.env.NEURON_TEST_VERBOSE) console.log("pattern matches:", matches);
        for (const m of matches) {
          expect(m.err).toBeLessThan(6);
          expect(m.runnerUp).toBeGreaterThan(m.err * 2);
        }
        // two frames apart at 30 fps: the pattern moved on (serials mod 256)
        expect((matches[1]!.n - matches[0]!.n + 256) % 256).toBeGreaterThan(0);
        expect((matches[2]!.n - matches[1]!.n + 256) % 256).toBeGreaterThan(0);

        // the session ends; the VM's listener stays (a channel's byte stream must not break between
        // sessions), still connected to the exporter, and the next session streams the same stream on
        service.sessions.endAll("ended-by-api");
        await waitFor(() => service.video?.stream.get(session.id) === undefined, 5000, "the session's video to stop");
        expect(statSync(choice.socketPath!).isSocket()).toBe(true);
        expect(service.video!.nvf!.open).toEqual([`unix:${choice.socketPath}`]);
        const next = launchSession({ service }, VM, { appId: 2, appName: VM, width: W, height: H, fps: 30 }).session;
        setTestStream(next, { bitrateKbps: 4000, encryptVideo: false });
        service.sessions.markPlaying(next);
        await waitFor(() => service.video?.stream.get(next.id) !== undefined, 5000, "the next session's video to start");
        const video2 = new VideoTestClient({ port: service.ports.video, pingPayload: next.rtsp.videoPingPayload, packetSize: 1024 });
        try {
          await video2.start();
          await waitFor(() => video2.frames.length >= 10, 20_000, "frames in the next session");
          const n2 = video2.frames.length;
          writeFileSync(file, video2.annexB());
          const p2 = await probeStream(file, "h264");
          expect(p2).toMatchObject({ codec: "h264", width: W, height: H });
          expect(p2.frames).toBe(n2);
          expect(p2.keyFrames[0]).toBe(0); // the next session starts with an IDR
        } finally {
          await video2.close();
        }
      } finally {
        exporter.kill();
        await exporter.exited;
        await video.close();
        service.sessions.endAll("ended-by-api");
      }
      // the stream's end closes the listeners and removes their sockets
      await service.stop();
      expect(existsSync(choice.socketPath!)).toBe(false);
    },
    60_000,
  );

  test("a session that ends before its VM's transport is known starts no video and opens no listener", async () => {
    await service.start();
    let open!: () => void;
    gate = new Promise<void>((r) => (open = r));
    const { session } = launchSession({ service }, VM, { appId: 2, appName: VM, width: W, height: H, fps: 30 });
    setTestStream(session, { bitrateKbps: 1000, encryptVideo: false });
    service.sessions.markPlaying(session);
    await Bun.sleep(50);
    expect(service.video?.stream.get(session.id)).toBeUndefined(); // still asking
    service.sessions.endAll("ended-by-api");
    open();
    await Bun.sleep(200);
    expect(service.video?.stream.get(session.id)).toBeUndefined();
    expect(service.video?.nvf?.open).toEqual([]);
    expect(existsSync(join(config.frameSocketDir, `${VM}.nvf`))).toBe(false);
    await service.stop();
  });
});
