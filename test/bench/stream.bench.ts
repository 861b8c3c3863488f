/**
 * Video stream benchmark: 1080p60 end to end on this machine — the synthetic producer
 * (its own process, standing in for the guest writing IVSHMEM) → native pipeline
 * (BGRA→I420, x264 ultrafast/zerolatency) → the video stream (one native call per frame:
 * packetize, FEC 20 %, AES-GCM, sendmmsg) → a receiver socket on 127.0.0.1 drained here.
 *
 * Prints one JSON object per line and case:
 *   { case, resolution, fps, p50Ms, p99Ms, sessions, cpuPct, ... }
 * p50Ms/p99Ms: host latency from the frame seen by the pipeline (capture) to the last shard
 * of the frame handed to the kernel, over all sessions. fps: frames sent per second per
 * session. cpuPct: CPU of this process (encoders, pipeline, sender, JS) per wall time,
 * 100 = one core (the producers run in their own processes and are not counted).
 * sendMbps: bytes handed to the kernel per session; droppedByHost: access units taken from
 * the ring but not sent. The native pump thread takes each access unit from the ring and
 * sends it (no JS on the frame path). loadAvg1m: the machine's 1-minute load
 * average when the case ended (figures on a shared 2-core machine move with it).
 *
 * stagesMs breaks the same frames down (p50/p99 each, from the pipeline's timing records):
 * guestWait (frame seen → its last row written by the guest, minus the conversion done while
 * waiting: the guest's own copy), convert (BGRA→I420, in bands as the guest writes), encode
 * (the encoder call), encoded (seen → access unit in the ring), and sendAndQueueP50 = total p50
 * − encoded p50 (pump wake-up, packetize + FEC + encrypt + sendmmsg, pacing when on).
 * guestCpuPct: CPU of the producer processes (the guest's side) per wall time.
 *
 * First the native send call alone (fixed access units, back to back; the receiver drains in
 * the same loop): time per call, shards per frame, Mpps. Then the encoder alone on the test
 * pattern: periodic IDR vs intra refresh (encode time and size, p50/p99/max).
 *
 * Last, N sessions through the whole multi-session host (GameStreamService): each launched
 * by its own client, PLAY starting its video and audio, the client addresses learned from
 * pings on the shared ports, every session's shards sent from the one video socket.
 *
 *   npm run bench:stream    (SECONDS=20 by default, at most 120; CASES=id,id... runs only
 *                            those cases: send, encoder, encpaced, ratio, enc, plain, paced,
 *                            paced2, batch8, threads (t1, t2, t4), two, two1, two2, two3, two4,
 *                            host; ROUNDS=3 for ratio)
 *   ONLY=host npm run bench:stream   (only the multi-session host case)
 *   ONLY=multi npm run bench:stream  (the 2-session video-stream case, then the host case)
 *
 * ratio: the stream path against its like-for-like baseline, the encoder alone as a session runs
 * it (encpaced: same encoder and 3 threads, fed at 60 fps, timed convert + encode), interleaved
 * over ROUNDS rounds; the best p50 and least CPU ms per frame of each give `ratio` / `cpuRatio`;
 * `ringPath*` the same for frames through the pipeline's ring and the pump's own thread (what
 * paced sessions use, and what unpaced ones used before they were sent on the pipeline's thread).
 * The stream cases' stagesMs also break down the time after the encoder per frame: auToSender
 * (access unit complete → the sender started on it), send (packetize, FEC, encrypt, sendmmsg);
 * totalOverEncodedP50 is the p50 of capture → last shard over that of capture → access unit, on
 * the same frames.
 *   CASES=b2b npm run bench:stream   (10 back-to-back sessions, RSS after each; B2B_SESSIONS, B2B_SECONDS)
 */
import { readFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { CaptureNative, VideoEncoder, type PipelineTiming } from "../../ffi/capture.ts";
import { resolveNativePath } from "../../ffi/native.ts";
import { StreamNative, UdpSocket, VideoSender, type PumpTiming } from "../../ffi/stream.ts";
import type { StreamConfig } from "../../src/gamestream/rtsp/announce.ts";
import { newRtspHandshake } from "../../src/gamestream/rtsp/state.ts";
import type { StreamSession } from "../../src/gamestream/sessions.ts";
import { VideoStream } from "../../src/gamestream/video/stream.ts";
import { shmPath as vmShmPath } from "../../src/vm/shm.ts";
import { silentLogger } from "../../src/log.ts";
import { removeFile, spawnProducer, type ProducerProcess } from "../capture/helpers.ts";
import { NativeCrypto } from "../../ffi/crypto.ts";
import { AppsService } from "../../src/apps/service.ts";
import { openDatabase } from "../../src/db/client.ts";
import { appsRepo } from "../../src/db/repos/apps.ts";
import { pairingsRepo } from "../../src/db/repos/pairings.ts";
import { gameStreamCrypto } from "../../src/gamestream/native-crypto.ts";
import { CODEC } from "../../src/gamestream/constants.ts";
import { GameStreamService } from "../../src/gamestream/service.ts";
import { tempDir, testConfig } from "../helpers/env.ts";
import { freeBasePort } from "../gamestream/helpers.ts";

const SECONDS = Math.min(Math.max(Number(process.env.SECONDS ?? 20), 3), 120);
const ONLY_CASES: Record<string, string[]> = { host: ["host"], multi: ["two", "host"] };
const CASES = process.env.CASES
  ? new Set(process.env.CASES.split(","))
  : process.env.ONLY
    ? new Set(ONLY_CASES[process.env.ONLY] ?? [process.env.ONLY])
    : null;
const want = (id: string) => !CASES || CASES.has(id);
const nativePath = resolveNativePath({});
const stream = new StreamNative(nativePath);
const capture = new CaptureNative(nativePath);

function pct(values: number[], p: number): number {
  if (!values.length) return NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}
const r2 = (v: number) => Math.round(v * 100) / 100;

function session(i: number, w: number, h: number, fps: number, encrypt: boolean): StreamSession {
  const cfg: StreamConfig = {
    width: w, height: h, fps, packetSize: 1392, bitStreamFormat: 0, codec: "h264", dynamicRangeMode: 0, encoderCscMode: 0,
    colorspace: "rec601", fullRange: false, chromaSamplingType: 0, bitrateKbps: 20000, fec: { minRequiredFecPackets: 2 },
    maxNumReferenceFrames: 1, slicesPerFrame: 1, audio: { channels: 2, channelMask: 3, highQuality: false, packetDurationMs: 5 },
    encryption: { mask: encrypt ? 3 : 1, control: true, video: encrypt, audio: false }, clientFeatureFlags: 0,
  };
  return {
    id: `bench-${i}`, appId: 1, appName: "bench", vmName: `bench-${process.pid}-${i}`, width: w, height: h, fps,
    riKey: new Uint8Array(16).fill(i + 1), riKeyId: 1, localAudioPlayMode: 0, surroundAudioInfo: 0x30002, remoteControllersBitmap: 0,
    gcmap: 0, hdr: false, encryptedRtsp: true, clientFingerprint: "bench", connectData: 1, startedAt: new Date(),
    rtsp: newRtspHandshake(), stream: cfg, playing: true,
  };
}

/** utime + stime of a process in ms (/proc/PID/stat), for the producer processes. */
function procCpuMs(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100; /* USER_HZ = 100 */
  } catch {
    return 0;
  }
}

function stage(values: number[]): { p50: number; p99: number } {
  return { p50: r2(pct(values, 50)), p99: r2(pct(values, 99)) };
}

interface CaseOptions {
  sessions: number;
  encrypt: boolean;
  paceFraction?: number;
  /** Shards per sendmmsg (pacing sleeps between batches; 64 = a P-frame in one batch). */
  sendBatch?: number;
  threads?: number;
}

async function runCase(name: string, w: number, h: number, fps: number, o: CaseOptions): Promise<{ p50: number; cpuMsPerFrame: number; overEncoded: number }> {
  const { sessions, encrypt, paceFraction = 0, sendBatch = 64, threads = 3 } = o; // 3: the video stream's default
  const video = new VideoStream({ stream, capture, host: "127.0.0.1", port: 0, shmDir: "/dev/shm", log: silentLogger, encoderThreads: threads, encoder: "libx264", paceFraction, sendBatch });
  const producers: ProducerProcess[] = [];
  const paths: string[] = [];
  const receivers: UdpSocket[] = [];
  const lat: number[] = [];
  const timings: PipelineTiming[] = [];
  const pumpTimings: PumpTiming[] = [];
  let bytes = 0, frames = 0, datagrams = 0;
  try {
    const sess = Array.from({ length: sessions }, (_, i) => session(i, w, h, fps, encrypt));
    for (const s of sess) {
      const path = vmShmPath("/dev/shm", s.vmName!);
      paths.push(path);
      producers.push(await spawnProducer(path, { width: w, height: h, fps }));
    }
    const rxBuf = new Uint8Array(2048);
    for (const s of sess) {
      const vs = video.start(s);
      const rx = UdpSocket.open(stream, "127.0.0.1", 0, { rcvbuf: 4 << 20 });
      receivers.push(rx);
      vs.setPeer({ family: 4, address: "127.0.0.1", port: rx.port });
    }
    const warmupEnd = Date.now() + 1500;
    let measuring = false;
    const drain = setInterval(() => {
      for (const rx of receivers) while (rx.recv(rxBuf)) datagrams++;
      for (const s of sess) {
        const vs = video.get(s.id)!;
        const l = vs.latencies();
        const t = vs.pipelineTimings();
        const pt = vs.pumpTimings();
        if (measuring) {
          for (const us of l) lat.push(us / 1000);
          timings.push(...t);
          pumpTimings.push(...pt);
        }
      }
    }, 10); // the harness wakes 100 times a second, not 500: its own CPU is counted in cpuPct
    while (Date.now() < warmupEnd) await Bun.sleep(10);
    measuring = true;
    const framesBefore = sess.reduce((n, s) => n + video.get(s.id)!.stats().frames, 0);
    const bytesBefore = sess.reduce((n, s) => n + video.get(s.id)!.stats().bytes, 0);
    const discardedBefore = sess.reduce((n, s) => n + video.get(s.id)!.stats().framesDiscarded, 0);
    const cpu0 = process.cpuUsage();
    const guest0 = producers.reduce((n, p) => n + procCpuMs(p.pid), 0);
    const t0 = performance.now();
    await Bun.sleep(SECONDS * 1000);
    const wallMs = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const guestMs = producers.reduce((n, p) => n + procCpuMs(p.pid), 0) - guest0;
    measuring = false;
    clearInterval(drain);
    frames = sess.reduce((n, s) => n + video.get(s.id)!.stats().frames, 0) - framesBefore;
    bytes = sess.reduce((n, s) => n + video.get(s.id)!.stats().bytes, 0) - bytesBefore;
    const discarded = sess.reduce((n, s) => n + video.get(s.id)!.stats().framesDiscarded, 0) - discardedBefore;
    const sendErrors = sess.reduce((n, s) => n + video.get(s.id)!.stats().sendErrors, 0);
    const ms = (f: (t: PipelineTiming) => number) => stage(timings.map((t) => f(t) / 1000));
    const encoded = ms((t) => t.encodedUs);
    const pms = (f: (t: PumpTiming) => number) => stage(pumpTimings.map((t) => f(t) / 1000));
    const cpuMsPerFrame = (cpu.user + cpu.system) / 1000 / Math.max(frames, 1);
    console.log(
      JSON.stringify({
        case: name,
        resolution: `${w}x${h}`,
        fps: r2(frames / sessions / (wallMs / 1000)),
        p50Ms: r2(pct(lat, 50)),
        p99Ms: r2(pct(lat, 99)),
        sessions,
        cpuPct: r2(((cpu.user + cpu.system) / 1000 / wallMs) * 100),
        guestCpuPct: r2((guestMs / wallMs) * 100),
        cpuMsPerFrame: r2(cpuMsPerFrame),
        encoderThreads: threads,
        stagesMs: {
          guestWait: ms((t) => t.waitUs),
          convert: ms((t) => t.convertUs),
          encode: ms((t) => t.encodeUs),
          encoded,
          sendAndQueueP50: r2(pct(lat, 50) - encoded.p50),
          // per frame, after the encoder: AU complete → the sender started on it → last shard sent
          auToSender: pms((t) => t.takenUs - t.encodedUs),
          send: pms((t) => t.sentUs - t.takenUs),
          auToLastShard: pms((t) => t.sentUs - t.encodedUs),
        },
        // the same frames: capture → last shard sent over capture → access unit complete (what
        // the path after the encoder adds, less sensitive to other tenants than a separate run)
        totalOverEncodedP50: r2(pct(lat, 50) / encoded.p50),
        idrFrames: timings.filter((t) => t.idr).length,
        sendMbps: r2((bytes * 8) / sessions / (wallMs / 1000) / 1e6),
        framesMeasured: frames,
        droppedByHost: discarded,
        sendErrors,
        datagramsReceived: datagrams,
        encrypted: encrypt,
        paceFraction,
        sendBatch,
        seconds: SECONDS,
        cores: cpus().length,
        loadAvg1m: r2(loadavg()[0]!),
      }),
    );
    return { p50: pct(lat, 50), cpuMsPerFrame, overEncoded: pct(lat, 50) / encoded.p50 };
  } finally {
    video.close();
    for (const rx of receivers) rx.close();
    for (const p of producers) await p.stop();
    for (const p of paths) removeFile(p);
  }
}

/** The native send call alone: a fixed access unit, N frames back to back to a drained socket. */
function senderCase(name: string, auBytes: number, encrypt: boolean, frames = 3000): void {
  const tx = UdpSocket.open(stream, "127.0.0.1", 0, { sndbuf: 4 << 20 });
  const rx = UdpSocket.open(stream, "127.0.0.1", 0, { rcvbuf: 4 << 20 });
  const sender = VideoSender.create(stream, tx, { packetSize: 1392, fecPercent: 20, minFec: 2, maxFrameBytes: 1 << 21, key: encrypt ? new Uint8Array(16).fill(1) : undefined });
  sender.setPeer({ family: 4, address: "127.0.0.1", port: rx.port });
  const au = new Uint8Array(auBytes).map((_, i) => (i * 13) & 0xff);
  const rxBuf = new Uint8Array(2048);
  const us: number[] = [];
  let shards = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < frames; i++) {
    const a = performance.now();
    const r = sender.sendFrame(au, au.length, { captureNs: 0n, rtpTimestamp: i * 1500, kind: i === 0 ? "idr" : "p" });
    us.push((performance.now() - a) * 1000);
    shards += r.shards;
    while (rx.recv(rxBuf)) {}
  }
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  console.log(JSON.stringify({
    case: name, resolution: "n/a", fps: r2(frames / (wallMs / 1000)), p50Ms: r2(pct(us, 50) / 1000), p99Ms: r2(pct(us, 99) / 1000),
    sessions: 1, cpuPct: r2(((cpu.user + cpu.system) / 1000 / wallMs) * 100), auBytes, shardsPerFrame: r2(shards / frames),
    sendCallUsP50: r2(pct(us, 50)), sendCallUsP99: r2(pct(us, 99)), mpps: r2(shards / (wallMs / 1000) / 1e6), encrypted: encrypt, loadAvg1m: r2(loadavg()[0]!),
  }));
  sender.close();
  tx.close();
  rx.close();
}

/** The encoder alone on the moving test pattern: IDR every `idrEvery` frames, or intra refresh. */
function encoderCase(name: string, intraRefresh: boolean, idrEvery: number, threads: number, frames = 600): void {
  const w = 1920, h = 1080;
  const enc = VideoEncoder.open(capture, { codec: "h264", width: w, height: h, fps: 60, bitrateKbps: 20000, threads, intraRefresh, encoder: "libx264" });
  const src = new Uint8Array(w * h * 4);
  const out = new Uint8Array(4 << 20);
  const encMs: number[] = [], sizes: number[] = [], idrMs: number[] = [];
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < frames; i++) {
    capture.testpatternFill(src, w, h, w * 4, i);
    const forceIdr = i === 0 || (idrEvery > 0 && i % idrEvery === 0);
    const info = enc.encode(src, w * 4, forceIdr, out);
    encMs.push(info.encodeUs / 1000);
    sizes.push(info.size);
    if (info.idr) idrMs.push(info.encodeUs / 1000);
  }
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  enc.close();
  console.log(JSON.stringify({
    case: name, resolution: `${w}x${h}`, fps: r2(frames / (wallMs / 1000)), p50Ms: r2(pct(encMs, 50)), p99Ms: r2(pct(encMs, 99)),
    sessions: 1, cpuPct: r2(((cpu.user + cpu.system) / 1000 / wallMs) * 100), encoderThreads: threads, maxMs: r2(Math.max(...encMs)),
    idrFrames: idrMs.length, idrEncodeMsP50: r2(pct(idrMs, 50)), sizeKbP50: r2(pct(sizes, 50) / 1000), sizeKbMax: r2(Math.max(...sizes) / 1000),
    loadAvg1m: r2(loadavg()[0]!),
  }));
}

/**
 * The encoder alone as the stream runs it: the same encoder, settings and threads as a session,
 * fed at the session's frame rate (the next test-pattern frame is drawn, not timed, while the
 * encoder idles, as the producer writes it), timed from the call to the access unit complete:
 * BGRA→I420 + encode, the work of the stream path before the ring. The like-for-like baseline
 * of the stream cases (their p50 / this p50; CPU ms per frame the same way).
 */
async function encoderPacedCase(threads: number, fps = 60, frames = 300): Promise<{ p50: number; p99: number; cpuMsPerFrame: number }> {
  const w = 1920, h = 1080;
  const enc = VideoEncoder.open(capture, { codec: "h264", width: w, height: h, fps, bitrateKbps: 20000, threads, encoder: "libx264" });
  const src = new Uint8Array(w * h * 4);
  const out = new Uint8Array(4 << 20);
  const totals: number[] = [], conv: number[] = [], encs: number[] = [];
  const interval = 1000 / fps;
  let cpuMs = 0;
  try {
    const t0 = performance.now();
    for (let i = 0; i < frames + 30; i++) {
      capture.testpatternFill(src, w, h, w * 4, i);
      const due = t0 + i * interval;
      const wait = due - performance.now();
      if (wait > 0) await Bun.sleep(wait);
      const c0 = process.cpuUsage();
      const info = enc.encode(src, w * 4, i === 0, out);
      const c = process.cpuUsage(c0);
      if (i < 30) continue; // warm-up
      cpuMs += (c.user + c.system) / 1000;
      totals.push(Number(info.doneNs - info.captureNs) / 1e6);
      conv.push(info.convertUs / 1000);
      encs.push(info.encodeUs / 1000);
    }
  } finally {
    enc.close();
  }
  const r = { p50: r2(pct(totals, 50)), p99: r2(pct(totals, 99)), cpuMsPerFrame: r2(cpuMs / frames) };
  console.log(JSON.stringify({
    case: `encoder alone 1080p${fps}, as a session runs it (${threads} threads, fed at ${fps} fps, convert + encode)`, resolution: `${w}x${h}`,
    p50Ms: r.p50, p99Ms: r.p99, sessions: 1, encoderThreads: threads, cpuMsPerFrame: r.cpuMsPerFrame,
    stagesMs: { convert: stage(conv), encode: stage(encs) }, frames, loadAvg1m: r2(loadavg()[0]!),
  }));
  return r;
}

/**
 * N concurrent sessions through the whole host: launch (one client each), the stream settings
 * of an ANNOUNCE, PLAY → video + audio; receivers ping the shared video and audio ports with
 * their session's payloads and drain what comes. Video from a producer process per session
 * (the VM's IVSHMEM stand-in, not counted in cpuPct).
 */
async function hostCase(name: string, sessions: number, w: number, h: number, fps: number): Promise<void> {
  const dir = tempDir("neuron-bench-host-");
  const config = testConfig({ stateDir: dir.path, shmDir: "/dev/shm", gamestreamHost: "127.0.0.1", gamestreamPort: freeBasePort(), mdns: false, hostname: "bench", gamestreamMaxSessions: sessions });
  const db = openDatabase(config.dbPath);
  const apps = new AppsService(appsRepo(db.db));
  apps.seedDefaults();
  const native = NativeCrypto.load({ explicit: nativePath });
  const service = new GameStreamService({ config, apps, pairings: pairingsRepo(db.db), crypto: gameStreamCrypto(native), log: silentLogger, codecModeSupport: () => CODEC.H264, nativePath });
  const producers: ProducerProcess[] = [];
  const receivers: { video: UdpSocket; audio: UdpSocket; videoPing: Uint8Array; audioPing: Uint8Array }[] = [];
  const lat: number[] = [];
  let datagrams = 0;
  try {
    await service.start();
    const ids: string[] = [];
    for (let i = 0; i < sessions; i++) {
      const vmName = `bench-host-${process.pid}-${i}`;
      producers.push(await spawnProducer(vmShmPath("/dev/shm", vmName), { width: w, height: h, fps }));
      const s = service.sessions.start({
        appId: 1, appName: "bench", vmName, width: w, height: h, fps, riKey: new Uint8Array(16).fill(i + 1), riKeyId: i, localAudioPlayMode: 0,
        surroundAudioInfo: 0x30002, remoteControllersBitmap: 0, gcmap: 0, hdr: false, encryptedRtsp: true, clientFingerprint: `bench-client-${i}`, clientAddress: "127.0.0.1",
      });
      s.stream = session(i, w, h, fps, true).stream;
      service.sessions.markPlaying(s);
      ids.push(s.id);
      const ping = (payload: string) => {
        const b = new Uint8Array(20);
        b.set(new TextEncoder().encode(payload));
        return b;
      };
      receivers.push({
        video: UdpSocket.open(stream, "127.0.0.1", 0, { rcvbuf: 4 << 20 }),
        audio: UdpSocket.open(stream, "127.0.0.1", 0, { rcvbuf: 1 << 20 }),
        videoPing: ping(s.rtsp.videoPingPayload),
        audioPing: ping(s.rtsp.audioPingPayload),
      });
    }
    const rxBuf = new Uint8Array(2048);
    const pingAll = () => {
      for (const r of receivers) {
        r.video.send(r.videoPing, { family: 4, address: "127.0.0.1", port: service.ports.video });
        r.audio.send(r.audioPing, { family: 4, address: "127.0.0.1", port: service.ports.audio });
      }
    };
    pingAll();
    const pinger = setInterval(pingAll, 500);
    let measuring = false;
    const drain = setInterval(() => {
      for (const r of receivers) {
        while (r.video.recv(rxBuf)) datagrams++;
        while (r.audio.recv(rxBuf)) {}
      }
      for (const id of ids) {
        const l = service.video?.stream.get(id)?.latencies() ?? new Uint32Array(0);
        if (measuring) for (const us of l) lat.push(us / 1000);
      }
    }, 2);
    await Bun.sleep(1500);
    measuring = true;
    const vstats = () => ids.map((id) => service.video!.stream.get(id)!.stats());
    const before = vstats();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await Bun.sleep(SECONDS * 1000);
    const wallMs = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const after = vstats();
    measuring = false;
    const infos = service.listSessions();
    clearInterval(drain);
    clearInterval(pinger);
    const frames = after.reduce((n, s, i) => n + s.frames - before[i]!.frames, 0);
    const bytes = after.reduce((n, s, i) => n + s.bytes - before[i]!.bytes, 0);
    console.log(
      JSON.stringify({
        case: name, resolution: `${w}x${h}`, fps: r2(frames / sessions / (wallMs / 1000)), p50Ms: r2(pct(lat, 50)), p99Ms: r2(pct(lat, 99)), sessions,
        cpuPct: r2(((cpu.user + cpu.system) / 1000 / wallMs) * 100), sendMbps: r2((bytes * 8) / sessions / (wallMs / 1000) / 1e6), framesMeasured: frames,
        droppedByHost: after.reduce((n, s, i) => n + s.framesDiscarded - before[i]!.framesDiscarded, 0), sendErrors: after.reduce((n, s) => n + s.sendErrors, 0),
        datagramsReceived: datagrams, apiHostFps: infos.map((s) => s.hostFps), apiLatencyP50Ms: infos.map((s) => s.latency.p50Ms), apiLatencyP99Ms: infos.map((s) => s.latency.p99Ms),
        audio: infos.map((s) => s.audio?.dataPackets ?? 0), encrypted: true, seconds: SECONDS, cores: cpus().length, loadAvg1m: r2(loadavg()[0]!),
      }),
    );
  } finally {
    await service.stop();
    for (const r of receivers) {
      r.video.close();
      r.audio.close();
    }
    for (const p of producers) await p.stop();
    for (let i = 0; i < sessions; i++) removeFile(vmShmPath("/dev/shm", `bench-host-${process.pid}-${i}`));
    db.close();
    native.close();
    dir.cleanup();
  }
}

/**
 * Back-to-back single sessions through one GameStream host (launch → PLAY → stream → end, N
 * times): RSS and the JS heap after each session ended (after a GC), to see whether anything of
 * an ended session stays (native pipeline, encoder, rings, JS state).
 */
async function backToBackCase(name: string, n: number, secondsEach: number, w: number, h: number, fps: number): Promise<void> {
  const dir = tempDir("neuron-bench-b2b-");
  const config = testConfig({ stateDir: dir.path, shmDir: "/dev/shm", gamestreamHost: "127.0.0.1", gamestreamPort: freeBasePort(), mdns: false, hostname: "bench" });
  const db = openDatabase(config.dbPath);
  const apps = new AppsService(appsRepo(db.db));
  apps.seedDefaults();
  const native = NativeCrypto.load({ explicit: nativePath });
  const service = new GameStreamService({ config, apps, pairings: pairingsRepo(db.db), crypto: gameStreamCrypto(native), log: silentLogger, codecModeSupport: () => CODEC.H264, nativePath });
  const vmName = `bench-b2b-${process.pid}`;
  const rss = () => r2(Number(readFileSync("/proc/self/status", "utf8").match(/VmRSS:\s+(\d+)/)![1]) / 1024);
  const settle = async () => {
    await Bun.sleep(300);
    Bun.gc(true);
    return { rssMiB: rss(), heapMiB: r2(process.memoryUsage().heapUsed / 1048576) };
  };
  const producer = await spawnProducer(vmShmPath("/dev/shm", vmName), { width: w, height: h, fps });
  const after: { rssMiB: number; heapMiB: number; frames: number }[] = [];
  const rx = UdpSocket.open(stream, "127.0.0.1", 0, { rcvbuf: 4 << 20 });
  const rxBuf = new Uint8Array(2048);
  try {
    await service.start();
    const before = await settle();
    for (let i = 0; i < n; i++) {
      const s = service.sessions.start({
        appId: 1, appName: "bench", vmName, width: w, height: h, fps, riKey: new Uint8Array(16).fill(i + 1), riKeyId: i, localAudioPlayMode: 0,
        surroundAudioInfo: 0x30002, remoteControllersBitmap: 0, gcmap: 0, hdr: false, encryptedRtsp: true, clientFingerprint: "bench-client", clientAddress: "127.0.0.1",
      });
      s.stream = session(0, w, h, fps, true).stream;
      service.sessions.markPlaying(s);
      const ping = new Uint8Array(20);
      ping.set(new TextEncoder().encode(s.rtsp.videoPingPayload));
      const pinger = setInterval(() => rx.send(ping, { family: 4, address: "127.0.0.1", port: service.ports.video }), 200);
      rx.send(ping, { family: 4, address: "127.0.0.1", port: service.ports.video });
      const drain = setInterval(() => {
        while (rx.recv(rxBuf)) {}
      }, 2);
      await Bun.sleep(secondsEach * 1000);
      const frames = service.video?.stream.get(s.id)?.stats().frames ?? 0;
      clearInterval(pinger);
      clearInterval(drain);
      service.endSession(s.id);
      after.push({ ...(await settle()), frames });
    }
    console.log(
      JSON.stringify({
        case: name, resolution: `${w}x${h}`, fps, sessions: n, secondsEach, before,
        rssMiBAfterEach: after.map((a) => a.rssMiB), heapMiBAfterEach: after.map((a) => a.heapMiB), framesEach: after.map((a) => a.frames),
        rssGrowthFirstToLastMiB: r2(after[after.length - 1]!.rssMiB - after[0]!.rssMiB), loadAvg1m: r2(loadavg()[0]!),
      }),
    );
  } finally {
    await service.stop();
    rx.close();
    await producer.stop();
    removeFile(vmShmPath("/dev/shm", vmName));
    db.close();
    native.close();
    dir.cleanup();
  }
}

const P = "1080p60 x264 ultrafast, FEC 20 %";
if (want("send")) {
  senderCase("native send call: 40 KB P-frame, FEC 20 %, AES-GCM", 40_000, true);
  senderCase("native send call: 40 KB P-frame, FEC 20 %, plain", 40_000, false);
  senderCase("native send call: 400 KB IDR (multi-block), FEC 20 %, AES-GCM", 400_000, true, 500);
}
if (want("encoder")) {
  encoderCase("encoder alone 1080p: IDR every 60 frames", false, 60, 3);
  encoderCase("encoder alone 1080p: intra refresh (no IDR after the first)", true, 0, 3);
  encoderCase("encoder alone 1080p: IDR first only", false, 0, 3);
}
if (want("encpaced")) await encoderPacedCase(3);
// The stream path against the encoder alone as a session runs it (same threads, fed at 60 fps),
// interleaved over ROUNDS rounds, best p50 (and least CPU per frame) of each kept: on a shared
// machine the best of a few runs is the one least disturbed by the other tenants.
if (want("ratio")) {
  const rounds = Math.min(Math.max(Number(process.env.ROUNDS ?? 3), 1), 6);
  const best = { base: { p50: Infinity, cpu: Infinity, over: Infinity }, path: { p50: Infinity, cpu: Infinity, over: Infinity }, ring: { p50: Infinity, cpu: Infinity, over: Infinity } };
  const keepBest = (k: keyof typeof best, v: { p50: number; cpuMsPerFrame: number; overEncoded?: number }) => {
    best[k] = { p50: Math.min(best[k].p50, v.p50), cpu: Math.min(best[k].cpu, v.cpuMsPerFrame), over: Math.min(best[k].over, v.overEncoded ?? Infinity) };
  };
  for (let r = 0; r < rounds; r++) {
    keepBest("base", await encoderPacedCase(3));
    keepBest("path", await runCase(`${P}, AES-GCM (round ${r + 1})`, 1920, 1080, 60, { sessions: 1, encrypt: true }));
    // a 1 ns pace keeps the paced path: the ring and the pump's thread (the former unpaced path)
    keepBest("ring", await runCase(`${P}, AES-GCM, through the ring and the pump thread (round ${r + 1})`, 1920, 1080, 60, { sessions: 1, encrypt: true, paceFraction: 1e-7 }));
  }
  const { base, path, ring } = best;
  console.log(JSON.stringify({
    case: "stream path (capture → last shard sent, 1 session, AES-GCM) vs the encoder alone (3 threads, 60 fps, convert + encode)",
    rounds, p50Ms: r2(path.p50), baselineP50Ms: r2(base.p50), ratio: r2(path.p50 / base.p50),
    cpuMsPerFrame: r2(path.cpu), baselineCpuMsPerFrame: r2(base.cpu), cpuRatio: r2(path.cpu / base.cpu),
    totalOverEncodedP50: r2(path.over),
    ringPathP50Ms: r2(ring.p50), ringPathRatio: r2(ring.p50 / base.p50), ringPathCpuMsPerFrame: r2(ring.cpu), ringPathCpuRatio: r2(ring.cpu / base.cpu),
    ringPathTotalOverEncodedP50: r2(ring.over),
    seconds: SECONDS, cores: cpus().length, loadAvg1m: r2(loadavg()[0]!),
  }));
}
if (want("enc")) await runCase(`${P}, AES-GCM`, 1920, 1080, 60, { sessions: 1, encrypt: true });
if (want("plain")) await runCase(`${P}, plain`, 1920, 1080, 60, { sessions: 1, encrypt: false });
// Pacing acts between batches: with the default 64-shard batch a P-frame (~37 shards) still goes
// out at once, so the paced cases use 8-shard batches (the burst case with 8 too, for comparison).
if (want("paced")) await runCase(`${P}, AES-GCM, paced over 1/4 frame, 8-shard batches`, 1920, 1080, 60, { sessions: 1, encrypt: true, paceFraction: 0.25, sendBatch: 8 });
if (want("paced2")) await runCase(`${P}, AES-GCM, paced over 1/2 frame, 8-shard batches`, 1920, 1080, 60, { sessions: 1, encrypt: true, paceFraction: 0.5, sendBatch: 8 });
if (want("batch8")) await runCase(`${P}, AES-GCM, burst, 8-shard batches`, 1920, 1080, 60, { sessions: 1, encrypt: true, sendBatch: 8 });
for (const t of [1, 2, 4])
  if (want("threads") || want(`t${t}`)) await runCase(`${P}, AES-GCM, ${t} encoder thread(s)`, 1920, 1080, 60, { sessions: 1, encrypt: true, threads: t });
if (want("two")) await runCase(`2 x ${P}, AES-GCM`, 1920, 1080, 60, { sessions: 2, encrypt: true });
for (const t of [1, 2, 3, 4])
  if (want(`two${t}`)) await runCase(`2 x ${P}, AES-GCM, ${t} encoder thread(s) per session`, 1920, 1080, 60, { sessions: 2, encrypt: true, threads: t });
if (want("host"))
  await hostCase("host: 2 concurrent sessions (launch → PLAY → ping-learned peers on the shared ports), 1080p60, video AES-GCM, audio", 2, 1920, 1080, 60);
if (want("b2b")) await backToBackCase("back-to-back single sessions through one host, 1080p60, video AES-GCM", Number(process.env.B2B_SESSIONS ?? 10), Number(process.env.B2B_SECONDS ?? 2), 1920, 1080, 60);
stream.close();
capture.close();
