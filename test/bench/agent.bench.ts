/**
 * Benchmark of the guest agent channel (prints figures, asserts nothing):
 *  - FrameDecoder throughput on 1 KiB and 1 MiB frames, and skipping an oversized frame;
 *  - ping round trips host client → guest agent over a real unix socket, plain and
 *    over mutual TLS (median / p99), sequential and 32 in flight;
 *  - clipboard_set of 1 MiB text, plain vs TLS.
 *
 *   npm run bench:agent
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureAgentCertificates } from "../../src/guest/certs.ts";
import { AgentClient } from "../../src/guest/client.ts";
import { encodeFrame, FrameDecoder } from "../../src/guest/framing.ts";
import { silentLogger } from "../../src/log.ts";
import { serveAgent } from "../guest/agent-env.ts";

const PINGS = Number(process.env.BENCH_PINGS ?? 3000);
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
const r2 = (x: number) => Math.round(x * 100) / 100;

function decoderBench(frameBytes: number, totalBytes: number) {
  const frame = encodeFrame({ type: "clipboard_set", request_id: "b", data: { mime: "text/plain", text: "x".repeat(frameBytes - 80) } });
  const count = Math.max(1, Math.floor(totalBytes / frame.length));
  let frames = 0;
  const d = new FrameDecoder({ onFrame: () => frames++, onDrop: () => {} });
  const chunk = 64 * 1024;
  const t = performance.now();
  for (let i = 0; i < count; i++) for (let o = 0; o < frame.length; o += chunk) d.push(frame.subarray(o, o + chunk));
  const s = (performance.now() - t) / 1000;
  return { frameBytes: frame.length, frames, MBps: r2((count * frame.length) / s / 1e6) };
}

function skipBench(totalBytes: number) {
  const d = new FrameDecoder({ maxFrameBytes: 4 * 1024 * 1024, onFrame: () => {}, onDrop: () => {} });
  const chunk = new Uint8Array(64 * 1024).fill(0x41);
  d.push(new Uint8Array([2]));
  const t = performance.now();
  for (let o = 0; o < totalBytes; o += chunk.length) d.push(chunk);
  return { MBps: r2(totalBytes / ((performance.now() - t) / 1000) / 1e6), maxBuffered: d.buffered };
}

async function channelBench(label: string, tls: boolean, dir: string) {
  const certs = await ensureAgentCertificates({ stateDir: dir, openssl: "openssl" }, "bench");
  const socketPath = join(dir, `${label}.sock`);
  const served = await serveAgent({ socketPath, dir, tls: tls ? certs.guest : null });
  const client = new AgentClient({ socketPath, tls: tls ? certs.host : null, log: silentLogger });
  const tc = performance.now();
  await client.connectOnce();
  const connectMs = performance.now() - tc;
  for (let i = 0; i < 200; i++) await client.request("ping"); // warm-up
  const rtt: number[] = [];
  for (let i = 0; i < PINGS; i++) {
    const t = performance.now();
    await client.request("ping");
    rtt.push((performance.now() - t) * 1000);
  }
  const tp = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: 32 }, async () => {
    while (next++ < PINGS) await client.request("ping");
  }));
  const parallelPerSec = PINGS / ((performance.now() - tp) / 1000);
  const text = "y".repeat(1024 * 1024 - 200);
  const tb = performance.now();
  for (let i = 0; i < 10; i++) await client.request("clipboard_set", { mime: "text/plain", text });
  const clipMs = (performance.now() - tb) / 10;
  client.stop();
  await served.close();
  return { label, connectMs: r2(connectMs), pingP50us: r2(pct(rtt, 50)), pingP99us: r2(pct(rtt, 99)), pings32InFlightPerSec: Math.round(parallelPerSec), clipboard1MiBms: r2(clipMs) };
}

const dir = mkdtempSync(join(tmpdir(), "neuron-agent-bench-"));
try {
  console.log("frame decoder:");
  console.log("  1 KiB frames ", decoderBench(1024, 64 * 1024 * 1024));
  console.log("  1 MiB frames ", decoderBench(1024 * 1024, 256 * 1024 * 1024));
  console.log("  oversized skip", skipBench(256 * 1024 * 1024));
  // A first pair warms the JIT and the sockets; the second pair is reported.
  await channelBench("warm-plain", false, dir);
  await channelBench("warm-tls", true, dir);
  const plain = await channelBench("plain", false, dir);
  const tls = await channelBench("tls", true, dir);
  console.log("unix socket, host client ↔ guest agent (ping answered by the agent, clipboard via `sh -c cat > file`):");
  console.table([plain, tls]);
  console.log(`TLS/plain ratios: ping p50 ${r2(tls.pingP50us / plain.pingP50us)}×, 32-in-flight rate ${r2(tls.pings32InFlightPerSec / plain.pings32InFlightPerSec)}×, 1 MiB clipboard ${r2(tls.clipboard1MiBms / plain.clipboard1MiBms)}×`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
