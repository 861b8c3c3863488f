/**
 * Capture → AU benchmark: BGRA frames from the synthetic producer (its own
 * process, 60 fps) through the native pipeline (libyuv BGRA→I420 straight out of
 * shared memory as the frame's wp advances, x264 on 2 threads). Prints one JSON object
 * per line and case:
 *   { case, resolution, encoder, fps, p50Ms, p99Ms, stages: { copy, convert, encode }, ... }
 * p50Ms/p99Ms: host latency from the frame message seen to the access unit complete.
 * Stage figures are { p50, p99 } in ms; the pipeline makes no frame copy, so its copy stage
 * is 0 and convert includes waiting on wp. cpuPct: CPU of this process (pipeline + encoder
 * threads) per wall time, 100 = one core; cpuMsPerFrame: the same per access unit (less
 * sensitive to other load than wall-clock figures); loadAvg1m: the machine's 1-minute load
 * average when the case ended. Bounded: FRAMES access units or 20 s per case.
 *
 * Also Opus (48 kHz, 5 ms CBR frames, stereo and 7.1): time per encoded frame.
 *
 *   npm run bench:capture            (FRAMES=300 by default)
 */
import { loadavg } from "node:os";
import { AudioNative, OpusEncoder } from "../../ffi/audio.ts";
import { resolveNativePath } from "../../ffi/native.ts";
import { CaptureNative, CapturePipeline, VideoEncoder, type AccessUnitInfo } from "../../ffi/capture.ts";
import { removeFile, shmPath, spawnProducer } from "../capture/helpers.ts";

const FRAMES = Math.min(Math.max(Number(process.env.FRAMES ?? 300), 30), 3000);
const native = new CaptureNative(resolveNativePath({}));

function pct(values: number[], p: number): number {
  if (!values.length) return NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}
const r2 = (v: number) => Math.round(v * 100) / 100;
const stage = (v: number[]) => ({ p50: r2(pct(v, 50)), p99: r2(pct(v, 99)) });

async function pipelineCase(name: string, width: number, height: number, fps: number): Promise<void> {
  const path = shmPath(`bench-${width}x${height}`);
  const producer = await spawnProducer(path, { width, height, fps });
  const p = CapturePipeline.start(native, path, { codec: "h264", fps, bitrateKbps: 20000, threads: 2, ringSlots: 32 });
  const buf = new Uint8Array(width * height * 2);
  const infos: AccessUnitInfo[] = [];
  const warmup = 30;
  let t0 = 0;
  let cpu0 = process.cpuUsage();
  const end = Date.now() + 20_000;
  try {
    while (infos.length < FRAMES + warmup && Date.now() < end) {
      const info = p.poll(buf);
      if (!info) {
        await Bun.sleep(1);
        continue;
      }
      infos.push(info);
      if (infos.length === warmup) {
        t0 = performance.now();
        cpu0 = process.cpuUsage();
      }
    }
    const elapsed = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const measured = infos.slice(warmup);
    const total = measured.map((i) => Number(i.doneNs - i.captureNs) / 1e6);
    const stats = p.stats();
    const report = p.encoderReport();
    console.log(
      JSON.stringify({
        case: name,
        resolution: `${width}x${height}`,
        encoder: report.match(/^(\S+): chosen/m)?.[1] ?? "unknown",
        fps: r2(measured.length / elapsed),
        p50Ms: r2(pct(total, 50)),
        p99Ms: r2(pct(total, 99)),
        stages: {
          copy: stage(measured.map((i) => i.copyUs / 1000)),
          convert: stage(measured.map((i) => i.convertUs / 1000)),
          encode: stage(measured.map((i) => i.encodeUs / 1000)),
        },
        frames: measured.length,
        targetFps: fps,
        dropped: stats.dropped,
        cpuPct: r2(((cpu.user + cpu.system) / 1000 / (elapsed * 1000)) * 100),
        cpuMsPerFrame: r2((cpu.user + cpu.system) / 1000 / Math.max(1, measured.length)),
        loadAvg1m: r2(loadavg()[0]!),
        avgAuBytes: Math.round(measured.reduce((s, i) => s + i.size, 0) / Math.max(1, measured.length)),
      }),
    );
  } finally {
    p.stop();
    await producer.stop();
    removeFile(path);
  }
}

/** Encoder alone on in-memory frames, as fast as it goes (no capture, no producer). */
function encodeOnlyCase(width: number, height: number): void {
  const enc = VideoEncoder.open(native, { codec: "h264", width, height, fps: 60, bitrateKbps: 20000, threads: 2 });
  const pitch = width * 4;
  const frames = Array.from({ length: 8 }, (_, i) => {
    const f = new Uint8Array(pitch * height);
    native.testpatternFill(f, width, height, pitch, i);
    return f;
  });
  const out = new Uint8Array(width * height * 2);
  const conv: number[] = [];
  const encs: number[] = [];
  const totals: number[] = [];
  const n = Math.min(FRAMES, 300);
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  try {
    for (let i = 0; i < n + 10; i++) {
      const info = enc.encode(frames[i % frames.length]!, pitch, false, out);
      if (i < 10) continue;
      conv.push(info.convertUs / 1000);
      encs.push(info.encodeUs / 1000);
      totals.push(Number(info.doneNs - info.captureNs) / 1e6);
    }
    const elapsed = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    console.log(
      JSON.stringify({
        case: "encode-only",
        resolution: `${width}x${height}`,
        encoder: enc.name,
        fps: r2(n / elapsed),
        p50Ms: r2(pct(totals, 50)),
        p99Ms: r2(pct(totals, 99)),
        stages: { copy: null, convert: stage(conv), encode: stage(encs) },
        frames: n,
        cpuMsPerFrame: r2((cpu.user + cpu.system) / 1000 / (n + 10)),
        loadAvg1m: r2(loadavg()[0]!),
      }),
    );
  } finally {
    enc.close();
  }
}

/** Opus, 48 kHz, 5 ms frames, CBR: time per encoded frame. */
function opusCase(channels: 2 | 6 | 8, bitrateBps: number): void {
  const audio = new AudioNative(resolveNativePath({}));
  const enc = OpusEncoder.open(audio, { channels, bitrateBps, frameSamples: 240 });
  const pcm = new Int16Array(240 * channels);
  const out = new Uint8Array(4000);
  const times: number[] = [];
  try {
    for (let f = 0; f < 2000; f++) {
      for (let i = 0; i < pcm.length; i++) pcm[i] = Math.round(8000 * Math.sin((f * 240 + i / channels) * 0.0576));
      const t = performance.now();
      enc.encode(pcm, out);
      times.push(performance.now() - t);
    }
    const total = times.reduce((a, b) => a + b, 0) / 1000;
    console.log(
      JSON.stringify({
        case: "opus-5ms",
        resolution: `48kHz-${channels}ch`,
        encoder: "libopus",
        fps: r2(times.length / total),
        p50Ms: Math.round(pct(times, 50) * 1000) / 1000,
        p99Ms: Math.round(pct(times, 99) * 1000) / 1000,
        stages: { copy: null, convert: null, encode: { p50: Math.round(pct(times, 50) * 1000) / 1000, p99: Math.round(pct(times, 99) * 1000) / 1000 } },
        frames: times.length,
      }),
    );
  } finally {
    enc.close();
    audio.close();
  }
}

opusCase(2, 128000);
opusCase(8, 450000);
encodeOnlyCase(1920, 1080);
await pipelineCase("pipeline-60fps", 1920, 1080, 60);
await pipelineCase("pipeline-60fps", 2560, 1440, 60);
native.close();
