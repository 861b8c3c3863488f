/**
 * One reference-client run against a host (the `lumen connect` command, the loss harness and
 * the benchmark): connect (pairing by PIN if needed), stream for a while with optional
 * simulated loss, decode what arrived with libavcodec (ffprobe) and summarise.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execFile } from "../exec.ts";
import { LumenClient, percentile, type ClientOptions } from "./client.ts";

export interface ClientRunResult {
  host: string;
  port: number;
  fingerprint: string;
  /** The control transport used: quic or tls. */
  transport: string;
  sessionId: number;
  codec: string;
  mode: string;
  seconds: number;
  loss: number;
  burst: number;
  framesSent: number;
  framesReceived: number;
  /** Frames libavcodec decoded from what arrived (null: ffprobe is not installed). */
  framesDecoded: number | null;
  framesRecovered: number;
  framesLost: number;
  p50Ms: number;
  p99Ms: number;
  idrRequests: number;
  inputSent: number;
  audioPackets: number;
  datagrams: number;
  droppedSim: number;
  replayed: number;
  badAuth: number;
  clockOffsetMs: number;
  goodputMbps: number;
}

/** Frames libavcodec decodes from each epoch's stream (ffprobe -show_frames); null without ffprobe. */
export async function decodeStreams(c: LumenClient, ffprobe = "ffprobe"): Promise<number | null> {
  const dir = mkdtempSync(join(tmpdir(), "lumen-decode-"));
  try {
    let total = 0;
    for (const [epoch, s] of c.streams) {
      const file = join(dir, `epoch-${epoch}.${s.codec}`);
      writeFileSync(file, Buffer.concat(s.chunks));
      const r = await execFile([ffprobe, "-v", "error", "-f", s.codec, "-show_entries", "frame=key_frame", "-of", "csv", file], { timeoutMs: 60_000 });
      if (r.spawnError) return null;
      total += r.stdout.split("\n").filter((l) => l.startsWith("frame")).length;
    }
    return total;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function runClient(o: ClientOptions & { seconds: number; inputEveryMs?: number; decode?: boolean }): Promise<ClientRunResult> {
  const c = new LumenClient(o);
  let bytes = 0;
  const userFrame = o.onFrame;
  c.setFrameHandler((info, b, cfg) => {
    bytes += info.bytes;
    userFrame?.(info, b, cfg);
  });
  c.keepStreams = o.decode !== false;
  try {
    await c.connect();
    let lastInput = 0;
    const t0 = performance.now();
    const counters = await c.stream(o.seconds, (ms) => {
      if (o.inputEveryMs && ms - lastInput >= o.inputEveryMs) {
        c.sendInput({ kind: "mouseMoveRel", dx: 1, dy: 0 });
        lastInput = ms;
      }
    });
    const elapsed = (performance.now() - t0) / 1000;
    const framesDecoded = o.decode === false ? null : await decodeStreams(c);
    const lat = counters.latenciesMs;
    return {
      host: o.host, port: c.port, fingerprint: c.fingerprint, transport: c.transport, sessionId: c.sessionId, codec: c.config.codec,
      mode: `${c.config.width}x${c.config.height}x${c.config.fps}`, seconds: o.seconds, loss: o.loss ?? 0, burst: o.burst ?? 1,
      framesSent: counters.framesSent, framesReceived: counters.framesReceived, framesDecoded, framesRecovered: counters.framesRecovered,
      framesLost: Math.max(0, counters.framesSent - counters.framesReceived), p50Ms: round3(percentile(lat, 50)), p99Ms: round3(percentile(lat, 99)),
      idrRequests: counters.idrRequests, inputSent: counters.inputSent, audioPackets: counters.audioPackets, datagrams: counters.datagrams,
      droppedSim: counters.droppedSim, replayed: counters.replayed, badAuth: counters.badAuth, clockOffsetMs: round3(counters.clockOffsetNs / 1e6),
      goodputMbps: round3((bytes * 8) / elapsed / 1e6),
    };
  } finally {
    c.close();
  }
}

const round3 = (v: number) => Math.round(v * 1000) / 1000;
