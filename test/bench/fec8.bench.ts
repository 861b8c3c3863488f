/**
 * GF(2^8) Reed–Solomon benchmark (`npm run bench:fec`): our kernels against Intel ISA-L's
 * ec_encode_data measured in the same run, through the same FFI path (Rs8Codec.encodeBlock /
 * decodeBlock, one call per block).
 *
 * One JSON object per line and case. MB/s = data bytes (k x shard size) per second / 1e6.
 * Decode loses m data shards (the worst case: largest matrix inversion). Times are the best of
 * ROUNDS rounds, codec and baseline interleaved round by round, so a noisy shared machine
 * disturbs both alike. ratio = encodeMBps / baselineMBps; decodeRatio likewise for decode;
 * decodeOverEncode = decode time / encode time of the same codec (goal <= 1.5).
 */
import { Rs8Codec, rs8Library, type Rs8KernelName } from "../../ffi/rs8.ts";

const SHARD = 1408;
const ROUNDS = 40;
const CASES = [
  { k: 128, m: 32 },
  { k: 200, m: 55 },
] as const;

function bestOf(fn: () => void, iters: number): number {
  const t0 = Bun.nanoseconds();
  for (let i = 0; i < iters; i++) fn();
  return (Bun.nanoseconds() - t0) / iters;
}

interface Measured {
  encodeNs: number;
  decodeNs: number;
}

function measure(codecs: Rs8Codec[], k: number, m: number): Measured[] {
  const block = new Uint8Array((k + m) * SHARD);
  for (let i = 0; i < k * SHARD; i++) block[i] = (i * 2654435761) >>> 24;
  const step = Math.floor(k / m);
  const lost = Array.from({ length: m }, (_, i) => i * step);
  const best = codecs.map(() => ({ encodeNs: Infinity, decodeNs: Infinity }));
  // about 2 ms of work per measurement (short windows dodge preemption on a busy machine) and codec (warm-up call included in the calibration)
  const iters = codecs.map((c) => Math.max(2, Math.min(1000, Math.round(2e6 / bestOf(() => c.encodeBlock(block, SHARD), 3)))));
  const rounds = codecs.map((c, i) => (iters[i]! <= 2 ? 3 : ROUNDS)); // the slow portable kernel: fewer rounds
  for (let r = 0; r < ROUNDS; r++) {
    codecs.forEach((c, i) => {
      if (r >= rounds[i]!) return;
      const b = best[i]!;
      b.encodeNs = Math.min(b.encodeNs, bestOf(() => c.encodeBlock(block, SHARD), iters[i]!));
      b.decodeNs = Math.min(b.decodeNs, bestOf(() => c.decodeBlock(block, SHARD, lost), iters[i]!));
    });
  }
  return best;
}

const mbps = (bytes: number, ns: number) => Math.round((bytes / ns) * 1000 * 10) / 10;
const round2 = (x: number) => Math.round(x * 100) / 100;

const lib = rs8Library();
const ours = lib.availableKernels().filter((k): k is Exclude<Rs8KernelName, "isal"> => k !== "isal");
const hasIsal = lib.kernelAvailable("isal");
if (!hasIsal) console.error("ISA-L (libisal.so.2) not installed: printing figures without a baseline");

for (const { k, m } of CASES) {
  const kernels: Rs8KernelName[] = hasIsal ? [...ours, "isal"] : [...ours];
  const codecs = kernels.map((kernel) => Rs8Codec.create(k, m, { kernel }));
  const res = measure(codecs, k, m);
  const base = hasIsal ? res[res.length - 1]! : undefined;
  const bytes = k * SHARD;
  ours.forEach((kernel, i) => {
    const r = res[i]!;
    const line: Record<string, string | number> = {
      case: `${k}+${m}x${SHARD}`,
      codec: `rs8-${kernel}`,
      k,
      m,
      bytes: SHARD,
      encodeMBps: mbps(bytes, r.encodeNs),
      decodeMBps: mbps(bytes, r.decodeNs),
      encodeUs: round2(r.encodeNs / 1000),
      decodeUs: round2(r.decodeNs / 1000),
      decodeOverEncode: round2(r.decodeNs / r.encodeNs),
    };
    if (base) {
      Object.assign(line, {
        baseline: "isal-ec_encode_data",
        baselineMBps: mbps(bytes, base.encodeNs),
        baselineDecodeMBps: mbps(bytes, base.decodeNs),
        ratio: round2(base.encodeNs / r.encodeNs),
        decodeRatio: round2(base.decodeNs / r.decodeNs),
      });
    }
    console.log(JSON.stringify(line));
  });
  if (base)
    console.log(
      JSON.stringify({
        case: `${k}+${m}x${SHARD}`,
        codec: "isal-ec_encode_data",
        k,
        m,
        bytes: SHARD,
        encodeMBps: mbps(bytes, base.encodeNs),
        decodeMBps: mbps(bytes, base.decodeNs),
        decodeOverEncode: round2(base.decodeNs / base.encodeNs),
      }),
    );
  for (const c of codecs) c.close();
}

/* FFI overhead per batch call: the smallest block (1+1 shards of 1 byte) through the same path,
 * so the figure is the JS wrapper + bun:ffi call + argument checks, with ~no coding work. */
{
  using tiny = Rs8Codec.create(1, 1);
  const block = new Uint8Array(2);
  const lost = [0];
  const iters = 5_000;
  let enc = Infinity;
  let dec = Infinity;
  for (let r = 0; r < 60; r++) {
    enc = Math.min(enc, bestOf(() => tiny.encodeBlock(block, 1), iters));
    dec = Math.min(dec, bestOf(() => tiny.decodeBlock(block, 1, lost), iters));
  }
  console.log(
    JSON.stringify({ case: "ffi-overhead-per-call", codec: `rs8-${tiny.kernel}`, k: 1, m: 1, bytes: 1, encodeNs: round2(enc), decodeNs: round2(dec) }),
  );
}
