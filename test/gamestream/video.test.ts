/**
 * The video stream end to end on 127.0.0.1: a session reaches PLAY, the test client
 * pings, receives every shard (plain and AES-GCM), drops some on purpose and rebuilds
 * them through the FEC parity, and the reassembled Annex-B stream is decoded by ffprobe.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { NativeCrypto } from "../../ffi/crypto.ts";
import { NativeLibrary } from "../../ffi/native.ts";
import { createLogger, type Logger } from "../../src/log.ts";
import type { StreamConfig } from "../../src/gamestream/rtsp/announce.ts";
import { SessionStore, type StreamSession } from "../../src/gamestream/sessions.ts";
import { attachVideoStream, type AttachedVideo } from "../../src/gamestream/video/attach.ts";
import { shmPath } from "../../src/vm/shm.ts";
import { CaptureNative, SyntheticProducer } from "../../ffi/capture.ts";
import { parsePing } from "../../src/gamestream/video/ping.ts";
import { tempDir } from "../helpers/env.ts";
import { VideoTestClient } from "./video-client.ts";
import { MoonlightDepacketizer } from "./moonlight-depacketizer.ts";

const nativePath = NativeLibrary.load().path;
const haveFfprobe = spawnSync("ffprobe", ["-version"]).status === 0;
const logs: string[] = [];
const log: Logger = createLogger({ level: "debug", format: "json", write: (l) => void logs.push(l) });

function streamConfig(o: { width: number; height: number; fps: number; packetSize: number; encrypt: boolean; bitrateKbps?: number; codec?: "h264" | "hevc" }): StreamConfig {
  return {
    width: o.width,
    height: o.height,
    fps: o.fps,
    packetSize: o.packetSize,
    bitStreamFormat: o.codec === "hevc" ? 1 : 0,
    codec: o.codec ?? "h264",
    dynamicRangeMode: 0,
    encoderCscMode: 0,
    colorspace: "rec601",
    fullRange: false,
    chromaSamplingType: 0,
    bitrateKbps: o.bitrateKbps ?? 4000,
    fec: { minRequiredFecPackets: 2 },
    maxNumReferenceFrames: 1,
    slicesPerFrame: 1,
    audio: { channels: 2, channelMask: 3, highQuality: false, packetDurationMs: 5 },
    encryption: { mask: o.encrypt ? 3 : 1, control: true, video: o.encrypt, audio: false },
    clientFeatureFlags: 0,
  };
}

function startSession(store: SessionStore, cfg: StreamConfig, key: Uint8Array, vmName: string | null = null): StreamSession {
  const s = store.start({
    appId: 1,
    appName: vmName ? "VM" : "Desktop",
    vmName,
    width: cfg.width,
    height: cfg.height,
    fps: cfg.fps,
    riKey: key.slice(),
    riKeyId: 7,
    localAudioPlayMode: 0,
    surroundAudioInfo: 0x30002,
    remoteControllersBitmap: 0,
    gcmap: 0,
    hdr: false,
    encryptedRtsp: true,
    clientFingerprint: "test",
  });
  s.stream = cfg;
  store.markPlaying(s);
  return s;
}

async function until(cond: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await Bun.sleep(10);
}

function ffprobeFrames(path: string, format: "h264" | "hevc" = "h264"): { key: boolean; width: number; height: number }[] {
  const r = spawnSync("ffprobe", ["-v", "error", "-f", format, "-select_streams", "v", "-show_entries", "frame=key_frame,width,height", "-of", "csv=p=0", path], { encoding: "utf8", timeout: 30_000 });
  expect(r.status).toBe(0);
  return r.stdout
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((l) => {
      const [key, width, height] = l.split(",").map(Number);
      return { key: key === 1, width: width!, height: height! };
    });
}

describe("video stream", () => {
  const dir = tempDir("neuron-video-");
  let store: SessionStore;
  let video: AttachedVideo;
  const crypto = NativeCrypto.load();

  beforeAll(() => {
    store = new SessionStore();
    video = attachVideoStream({ nativePath, sessions: store, host: "127.0.0.1", port: 0, shmDir: dir.path, log, encoderThreads: 1 });
  });

  afterAll(() => {
    store.endAll("host-stopped");
    video.close();
    crypto.close();
    dir.cleanup();
  });

  test("pings: payload or legacy PING, anything else is no ping", () => {
    const b = new Uint8Array(20);
    b.set(new TextEncoder().encode("AbCdEfGh12345678"), 0);
    b.set([0, 0, 1, 2], 16);
    expect(parsePing(b, 20)).toEqual({ kind: "payload", payload: "AbCdEfGh12345678", count: 258 });
    expect(parsePing(new TextEncoder().encode("PING"), 4)).toEqual({ kind: "legacy" });
    expect(parsePing(b, 19)).toBeNull();
    b[3] = 0x20; // a space is not a payload character
    expect(parsePing(b, 20)).toBeNull();
    expect(parsePing(new Uint8Array(4), 4)).toBeNull();
  });

  test(
    "test pattern → shards with FEC recovery → Annex-B that ffprobe decodes; IDR first and on request",
    async () => {
      const cfg = streamConfig({ width: 640, height: 360, fps: 30, packetSize: 1024, encrypt: false });
      const session = startSession(store, cfg, new Uint8Array(16).fill(3));
      const vs = video.stream.get(session.id)!;
      expect(vs.stats().source).toBe("test-pattern");
      // frames made before the client is known are discarded, never sent
      await until(() => vs.stats().framesDiscarded > 2, 5000);
      const client = new VideoTestClient({ port: video.stream.port, pingPayload: session.rtsp.videoPingPayload, packetSize: 1024, drop: (f, _b, p) => (f % 3 === 0 ? p : 1) });
      // hostile traffic on the port first: garbage, wrong payloads, a flood — ignored, bounded
      const before = video.stream.rejectedDatagrams;
      await client.bind();
      client.ping("ZZZZZZZZZZZZZZZZ");
      for (let i = 0; i < 500; i++) client.send(new Uint8Array([i & 0xff, 1, 2]));
      await client.start();
      await until(() => client.frames.length >= 20, 15_000);
      video.requestIdr(session.id);
      await until(() => client.frames.length >= 40, 15_000);
      // per sent frame after the encoder: access unit complete <= sender started <= last shard
      const timings = vs.pumpTimings();
      expect(timings.length).toBeGreaterThanOrEqual(20);
      expect(timings.every((t) => t.encodedUs <= t.takenUs && t.takenUs <= t.sentUs)).toBe(true);
      expect(timings.every((t, i) => i === 0 || t.frameSerial > timings[i - 1]!.frameSerial)).toBe(true);
      expect(vs.pumpTimings().length).toBeLessThan(timings.length); // drained by the call
      store.endAll("host-stopped");
      await Bun.sleep(50);
      await client.close();

      expect(client.errors).toEqual([]);
      expect(video.stream.rejectedDatagrams - before).toBeGreaterThanOrEqual(1);
      expect(client.frames.length).toBeGreaterThanOrEqual(40);
      expect(client.frames[0]!.frameIndex).toBe(1);
      expect(client.frames[0]!.frameType).toBe(2);
      const recovered = client.frames.reduce((n, f) => n + f.recovered, 0);
      expect(recovered).toBeGreaterThan(client.frames.length);
      expect(client.frames.every((f) => f.parityShards >= 2)).toBe(true);
      const idrs = client.frames.filter((f) => f.frameType === 2).map((f) => f.frameIndex);
      expect(idrs.length).toBeGreaterThanOrEqual(2); // the first one and the requested one
      expect(client.frames.some((f) => f.latencyTenthMs > 0)).toBe(true);

      const path = join(dir.path, "plain.h264");
      writeFileSync(path, client.annexB());
      if (!haveFfprobe) return; // the decode check needs ffmpeg's ffprobe (build/debian-packages.txt installs it)
      const frames = ffprobeFrames(path);
      expect(frames.length).toBe(client.frames.length);
      expect(frames[0]).toEqual({ key: true, width: 640, height: 360 });
      const keyAt = frames.map((f, i) => (f.key ? client.frames[i]!.frameIndex : 0)).filter(Boolean);
      expect(keyAt).toEqual(idrs);
    },
    40_000,
  );

  test(
    "encrypted video: every shard is an AES-GCM record with the 'V' counter IV; multi-block frames",
    async () => {
      const key = new Uint8Array(16).map((_, i) => i * 11 + 5);
      // a high bitrate and small packets make IDR frames span several FEC blocks
      const cfg = streamConfig({ width: 1280, height: 720, fps: 30, packetSize: 512, encrypt: true, bitrateKbps: 60000 });
      const session = startSession(store, cfg, key);
      const gcm = crypto.aesGcm(key);
      const client = new VideoTestClient({ port: video.stream.port, pingPayload: session.rtsp.videoPingPayload, packetSize: 512, gcm, drop: () => 2 });
      await client.start();
      await until(() => client.frames.length >= 15, 15_000);
      store.endAll("host-stopped");
      await Bun.sleep(50);
      await client.close();
      gcm.close();

      expect(client.errors).toEqual([]);
      expect(client.frames.length).toBeGreaterThanOrEqual(15);
      expect(client.frames[0]!.frameType).toBe(2);
      expect(client.frames.some((f) => f.blocks > 1)).toBe(true);
      const path = join(dir.path, "enc.h264");
      writeFileSync(path, client.annexB());
      if (!haveFfprobe) return;
      const frames = ffprobeFrames(path);
      expect(frames.length).toBe(client.frames.length);
      expect(frames[0]).toEqual({ key: true, width: 1280, height: 720 });
    },
    40_000,
  );

  test(
    "the bitrate changes live: the encoder's output rate follows, the stream goes on without an IDR",
    async () => {
      const cfg = streamConfig({ width: 640, height: 360, fps: 30, packetSize: 1024, encrypt: false, bitrateKbps: 12000 });
      const session = startSession(store, cfg, new Uint8Array(16).fill(4));
      const vs = video.stream.get(session.id)!;
      expect(vs.bitrateKbps).toBe(12000);
      const client = new VideoTestClient({ port: video.stream.port, pingPayload: session.rtsp.videoPingPayload, packetSize: 1024, drop: () => 1 });
      await client.start();
      // bytes a frame over `n` frames sent, after `skip` frames to settle
      const rate = async (skip: number, n: number) => {
        await until(() => client.frames.length >= skip, 15_000);
        const a = vs.stats();
        await until(() => vs.stats().frames >= a.frames + n, 15_000);
        const b = vs.stats();
        return (b.bytes - a.bytes) / (b.frames - a.frames);
      };
      const high = await rate(10, 20);
      const changedAt = client.frames.length;
      expect(video.stream.setBitrate(session.id, 1000)).toBe(true);
      expect(vs.bitrateKbps).toBe(1000);
      const low = await rate(changedAt + 8, 20);
      expect(video.stream.setBitrate(session.id, 12000)).toBe(true);
      const back = await rate(client.frames.length + 8, 20);
      expect(video.stream.setBitrate("no-such-session", 2000)).toBe(false);
      store.endAll("host-stopped");
      await Bun.sleep(50);
      await client.close();
      console.log(`bitrate live: ${Math.round(high)} B/frame at 12000 kbps, ${Math.round(low)} at 1000, ${Math.round(back)} back at 12000`);
      expect(client.errors).toEqual([]);
      // 1000 kbps at 30 fps is ~4.2 kB a frame; 12000 kbps ~50 kB: the pattern changes every frame
      expect(high / low).toBeGreaterThan(3);
      expect(back / low).toBeGreaterThan(3);
      expect(low).toBeLessThan(((1000 * 1000) / 8 / 30) * 2);
      // no restart: frame indices run on and no IDR came with the change
      const idx = client.frames.map((f) => f.frameIndex);
      expect(idx.every((v, i) => i === 0 || v === idx[i - 1]! + 1)).toBe(true);
      expect(client.frames.slice(1).some((f) => f.frameType === 2)).toBe(false);
    },
    40_000,
  );

  test(
    "an app whose VM has shared memory streams from that region",
    async () => {
      const vmName = `win-${process.pid}`;
      const capture = new CaptureNative(nativePath);
      const producer = SyntheticProducer.start(capture, shmPath(dir.path, vmName), { width: 320, height: 240, fps: 30 });
      try {
        const cfg = streamConfig({ width: 320, height: 240, fps: 30, packetSize: 1024, encrypt: false });
        const session = startSession(store, cfg, new Uint8Array(16).fill(9), vmName);
        expect(video.stream.get(session.id)!.stats().source).toBe("vm");
        const client = new VideoTestClient({ port: video.stream.port, pingPayload: session.rtsp.videoPingPayload, packetSize: 1024 });
        await client.start();
        await until(() => client.frames.length >= 5, 10_000);
        store.endAll("host-stopped");
        await client.close();
        expect(client.errors).toEqual([]);
        expect(client.frames.length).toBeGreaterThanOrEqual(5);
        expect(client.frames[0]!.frameType).toBe(2);
      } finally {
        producer.stop();
        capture.close();
      }
    },
    20_000,
  );

  for (const [codec, packetSize] of [["h264", 512], ["h264", 992], ["hevc", 512], ["hevc", 992], ["hevc", 1360]] as const)
    test(
      `${codec} at packetSize ${packetSize}: what a Moonlight client's depacketizer hands its decoder decodes, every frame, no error`,
      async () => {
        const cfg = streamConfig({ width: 640, height: 360, fps: 30, packetSize, encrypt: false, codec, bitrateKbps: 6000 });
        const session = startSession(store, cfg, new Uint8Array(16).fill(5));
        const depacketizer = new MoonlightDepacketizer(codec);
        const client = new VideoTestClient({ port: video.stream.port, pingPayload: session.rtsp.videoPingPayload, packetSize, depacketizer, drop: () => 1 });
        await client.start();
        await until(() => client.frames.length >= 12, 15_000);
        video.requestIdr(session.id);
        await until(() => client.frames.length >= 30, 15_000);
        store.endAll("host-stopped");
        await Bun.sleep(50);
        await client.close();

        expect(client.errors).toEqual([]);
        expect(depacketizer.asserts).toEqual([]);
        expect(depacketizer.log).toEqual([]); // never "Waiting for IDR frame"
        expect(client.frames.length).toBeGreaterThanOrEqual(30);
        const units = depacketizer.units;
        expect(units.length).toBe(client.frames.length);
        expect(units.map((u) => u.type)).toEqual(client.frames.map((f) => (f.frameType === 2 ? "idr" : "p")));
        expect(units[0]!.type).toBe("idr");
        expect(units.filter((u) => u.type === "idr").length).toBeGreaterThanOrEqual(2);
        const first = depacketizer.firstPackets[0]!;
        expect(first).toEqual({ frameIndex: 1, contentBytes: packetSize - 24, start: "idr", decidingNalAt: 0 });

        const path = join(dir.path, `moonlight-${codec}-${packetSize}.${codec}`);
        writeFileSync(path, Buffer.concat(units.map((u) => u.data)));
        if (!haveFfprobe) return; // the decode check needs ffmpeg (build/debian-packages.txt installs it)
        const dec = spawnSync("ffmpeg", ["-v", "error", "-xerror", "-f", codec, "-i", path, "-f", "null", "-"], { encoding: "utf8", timeout: 30_000 });
        expect({ status: dec.status, stderr: dec.stderr }).toEqual({ status: 0, stderr: "" });
        const count = spawnSync("ffprobe", ["-v", "error", "-f", codec, "-count_frames", "-select_streams", "v:0", "-show_entries", "stream=nb_read_frames,width,height", "-of", "csv=p=0", path], { encoding: "utf8", timeout: 30_000 });
        expect(count.stderr).toBe("");
        expect(count.stdout.trim()).toBe(`640,360,${units.length}`);
        const frames = ffprobeFrames(path, codec);
        expect(frames.map((f) => f.key)).toEqual(units.map((u) => u.type === "idr"));
        const idrBytes = units.filter((u) => u.type === "idr").map((u) => u.data.length);
        console.log(`${codec} @${packetSize}: ${units.length} frames decoded (${idrBytes.length} IDR, ${idrBytes.join("/")} B with padding), first packet ${first.contentBytes} B of access unit`);
      },
      40_000,
    );

  test("the session's end stops its video; an unknown session has nothing to request", () => {
    expect(video.requestIdr("no-such-session")).toBe(false);
    expect(logs.some((l) => l.includes("video stream stopped"))).toBe(true);
    expect(existsSync(join(dir.path, `neuron-video-${process.pid}-1`))).toBe(false);
  });
});
