/**
 * GF(2^16) Reed–Solomon benchmark (`npm run bench:fec`): Rs16Codec through ffi on shards of
 * 1,408 bytes, with ISA-L's GF(2^8) Cauchy-matrix codec (libisal.so.2, same k + m when
 * k + m <= 255) as the baseline measured in the same run. One JSON object per line and case.
 * Bounded: each measurement stops after its iteration cap or its time budget.
 *
 * Two ISA-L decode baselines: `baselineDecode*` inverts the whole k×k survivor matrix on every
 * decode (a naive use, kept for comparison with older runs); `lostRowsBaselineDecode*` is the
 * usual decode — a decode matrix of only the lost data shards' rows, from the inverse of the
 * e×e block of parity rows at the lost columns (native/bench/baselines.c), then ec_init_tables
 * and ec_encode_data, with the e×e block inverted by ISA-L's gf_invert_matrix (as its examples
 * do); `lostRowsFastInvBaselineDecode*` the same with a table-driven e×e inversion (ISA-L's
 * inversion calls gf_mul per element and dominates a small decode): the strongest ISA-L decode.
 * `decodeRatio` is against the naive one, `lostRowsDecodeRatio` / `lostRowsFastInvDecodeRatio`
 * against the two usual ones (the honest figures).
 */
import { dlopen, FFIType, ptr, type Pointer } from "bun:ffi";
import { resolveNativePath } from "../../ffi/native.ts";
import { RS16_ISAS, Rs16Codec, type Rs16Isa } from "../../ffi/rs16.ts";
import { openBaselines } from "./baselines.ts";

const SHARD = 1408;
const CASES: Array<[number, number]> = [
  [200, 40],
  [1000, 200],
  [4000, 800],
];

function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>>= 0);
  };
}

/** Runs fn until `maxIter` iterations or `budgetMs`; returns per-call times in ms (after warm-up). */
function measure(fn: () => void, maxIter: number, budgetMs: number): number[] {
  for (let i = 0; i < 20; i++) fn();
  const times: number[] = [];
  const end = performance.now() + budgetMs;
  while (times.length < maxIter && performance.now() < end) {
    const t0 = performance.now();
    fn();
    times.push(performance.now() - t0);
  }
  return times;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const mbps = (bytes: number, ms: number) => Math.round(bytes / 1e6 / (ms / 1e3));

function pickLost(count: number, below: number, next: () => number): number[] {
  const set = new Set<number>();
  while (set.size < count) set.add(next() % below);
  return [...set];
}

/* ---------- ISA-L baseline ---------- */

const isalSymbols = {
  gf_gen_cauchy1_matrix: { args: [FFIType.ptr, FFIType.i32, FFIType.i32], returns: FFIType.void },
  ec_init_tables: { args: [FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.ptr], returns: FFIType.void },
  ec_encode_data: {
    args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.ptr, FFIType.ptr],
    returns: FFIType.void,
  },
  gf_invert_matrix: { args: [FFIType.ptr, FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
} as const;

type Isal = ReturnType<typeof dlopen<typeof isalSymbols>>;

function openIsal(): Isal | null {
  try {
    return dlopen("libisal.so.2", isalSymbols);
  } catch {
    return null;
  }
}

const bytesOf = (n: number) => new Uint8Array(new ArrayBuffer(n));

function pointerTable(base: number, count: number, stride: number): BigUint64Array {
  const t = new BigUint64Array(new ArrayBuffer(8 * count));
  for (let i = 0; i < count; i++) t[i] = BigInt(base + i * stride);
  return t;
}

/**
 * ISA-L encode and decode MB/s with m data shards lost. Decode as ISA-L's own examples do it
 * (invert the k×k survivor matrix, build tables, reconstruct), and its data path alone
 * (tables prepared beforehand), the floor of any matrix decoder.
 */
function isalCase(
  isal: Isal,
  k: number,
  m: number,
  lost: number[],
): { enc: number; dec: number; decP50: number; decKernel: number; decRows?: number; decRowsP50?: number; decRowsFast?: number; decRowsFastP50?: number } {
  const n = k + m;
  const block = bytesOf(n * SHARD);
  const next = rng(7);
  for (let i = 0; i < k * SHARD; i++) block[i] = next();
  const base = ptr(block);
  const all = pointerTable(base, n, SHARD);
  const matrix = bytesOf(n * k);
  isal.symbols.gf_gen_cauchy1_matrix(ptr(matrix), n, k);
  const tables = bytesOf(32 * k * m);
  isal.symbols.ec_init_tables(k, m, (ptr(matrix) + k * k) as Pointer, ptr(tables));
  const encode = () =>
    isal.symbols.ec_encode_data(SHARD, k, m, ptr(tables), ptr(all), (ptr(all) + 8 * k) as Pointer);
  const encTimes = measure(encode, 500, 1500);

  // decode: survivors = first k present shards; rows of the inverse for the lost data shards
  const lostSet = new Set(lost);
  const survivors = [...Array(n).keys()].filter((i) => !lostSet.has(i)).slice(0, k);
  const survTable = new BigUint64Array(new ArrayBuffer(8 * k));
  survivors.forEach((s, i) => (survTable[i] = BigInt(base + s * SHARD)));
  const outTable = new BigUint64Array(new ArrayBuffer(8 * lost.length));
  lost.forEach((s, i) => (outTable[i] = BigInt(base + s * SHARD)));
  const sub = bytesOf(k * k);
  const inv = bytesOf(k * k);
  const rows = bytesOf(k * lost.length);
  const decTables = bytesOf(32 * k * lost.length);
  const decode = () => {
    survivors.forEach((s, r) => sub.set(matrix.subarray(s * k, s * k + k), r * k));
    if (isal.symbols.gf_invert_matrix(ptr(sub), ptr(inv), k) !== 0) throw new Error("singular");
    lost.forEach((d, r) => rows.set(inv.subarray(d * k, d * k + k), r * k));
    isal.symbols.ec_init_tables(k, lost.length, ptr(rows), ptr(decTables));
    isal.symbols.ec_encode_data(SHARD, k, lost.length, ptr(decTables), ptr(survTable), ptr(outTable));
  };
  const original = block.slice(0, k * SHARD);
  for (const d of lost) block.fill(0, d * SHARD, (d + 1) * SHARD);
  decode();
  if (Buffer.compare(block.subarray(0, k * SHARD), original) !== 0) throw new Error("ISA-L decode mismatch");
  const decTimes = measure(decode, 300, 1500);
  const kernel = () =>
    isal.symbols.ec_encode_data(SHARD, k, lost.length, ptr(decTables), ptr(survTable), ptr(outTable));
  const kernelTimes = measure(kernel, 500, 1000);
  const bytes = k * SHARD;
  // the usual decode: only the lost rows, one native call (matrix, tables, rebuild), the e×e
  // block inverted by ISA-L's gf_invert_matrix (0) or by a table-driven inversion (1)
  const rowsTimes: (number[] | undefined)[] = [];
  if (baselines) {
    const e = lost.length;
    const lostBytes = Uint8Array.from(lost);
    const rowTables = bytesOf(32 * k * e);
    const ptrs = bytesOf(8 * (k + e));
    const work = bytesOf(k + 3 * e * k + 34 * e * e);
    for (const fast of [0, 1]) {
      const decodeRows = () => {
        if (baselines.symbols.bench_isal_decode(ptr(matrix), k, m, SHARD, ptr(all), ptr(lostBytes), e, fast, ptr(rowTables), ptr(ptrs), ptr(work)) !== 0)
          throw new Error("ISA-L lost-rows decode failed");
      };
      for (const d of lost) block.fill(0, d * SHARD, (d + 1) * SHARD);
      decodeRows();
      if (Buffer.compare(block.subarray(0, k * SHARD), original) !== 0) throw new Error("ISA-L lost-rows decode mismatch");
      rowsTimes.push(measure(decodeRows, 500, 1500));
    }
  }
  return {
    enc: mbps(bytes, median(encTimes)),
    dec: mbps(bytes, median(decTimes)),
    decP50: median(decTimes),
    decKernel: mbps(bytes, median(kernelTimes)),
    decRows: rowsTimes[0] && mbps(bytes, median(rowsTimes[0])),
    decRowsP50: rowsTimes[0] && median(rowsTimes[0]),
    decRowsFast: rowsTimes[1] && mbps(bytes, median(rowsTimes[1])),
    decRowsFastP50: rowsTimes[1] && median(rowsTimes[1]),
  };
}

/* ---------- main ---------- */

const isal = openIsal();
const baselines = isal ? openBaselines() : null;

// Raw bun:ffi cost of one call into libneuron (no arguments, no work), for scale.
{
  const lib = dlopen(resolveNativePath({}), { neuron_abi_version: { args: [], returns: FFIType.u32 } });
  const calls = 200000;
  for (let i = 0; i < 1000; i++) lib.symbols.neuron_abi_version();
  const t0 = performance.now();
  for (let i = 0; i < calls; i++) lib.symbols.neuron_abi_version();
  const callNs = ((performance.now() - t0) * 1e6) / calls;
  console.log(JSON.stringify({ case: "ffi-call-noop", codec: "libneuron", callNs: Number(callNs.toFixed(1)) }));
  lib.close();
}
type IsalFigures = ReturnType<typeof isalCase>;

function runCase(k: number, m: number, isa: Rs16Isa | undefined, isalMemo: Map<string, IsalFigures>): void {
  let codec: Rs16Codec;
  try {
    codec = Rs16Codec.create({ k, m, shardSize: SHARD, isa });
  } catch {
    console.log(JSON.stringify({ case: `rs16-${k}+${m}-${SHARD}B`, codec: `rs16-${isa}`, skipped: "CPU lacks it" }));
    return;
  }
  using c = codec;
  const next = rng(k * 31 + m);
  for (let i = 0; i < k * SHARD; i++) c.block[i] = next();
  const encTimes = measure(() => c.encode(), 500, 2000);
  const original = c.block.slice();
  const lost = pickLost(m, k, next); // m data shards lost: the decoder must rebuild data
  for (const i of lost) c.shard(i).fill(0);
  c.decode(lost);
  if (Buffer.compare(c.block, original) !== 0) throw new Error(`rs16 decode mismatch at ${k}+${m}`);
  const decTimes = measure(() => c.decode(lost), 300, 2000);
  const bytes = k * SHARD;
  const encodeMBps = mbps(bytes, median(encTimes));
  const row: Record<string, unknown> = {
    case: `rs16-${k}+${m}-${SHARD}B`,
    codec: `rs16-${c.isa}`,
    k,
    m,
    bytes,
    encodeMBps,
    decodeMBps: mbps(bytes, median(decTimes)),
    decodeP50Ms: Number(median(decTimes).toFixed(4)),
    encodeP50Ms: Number(median(encTimes).toFixed(4)),
  };
  if (isal && k + m <= 255) {
    const key = `${k}+${m}`;
    let b = isalMemo.get(key);
    if (!b) {
      b = isalCase(isal, k, m, lost);
      isalMemo.set(key, b);
    }
    Object.assign(row, {
      baseline: "isa-l-gf8-cauchy",
      baselineDecode: "isa-l, whole k×k survivor matrix inverted per decode",
      baselineMBps: b.enc,
      ratio: Number((encodeMBps / b.enc).toFixed(2)),
      baselineDecodeMBps: b.dec,
      baselineDecodeP50Ms: Number(b.decP50.toFixed(4)),
      decodeRatio: Number((Number(row.decodeMBps) / b.dec).toFixed(2)),
      lostRowsBaselineDecode: b.decRows ? "isa-l, decode matrix of the lost rows only (e×e inversion)" : "none (bench baselines not built)",
      lostRowsBaselineDecodeMBps: b.decRows,
      lostRowsBaselineDecodeP50Ms: b.decRowsP50 === undefined ? undefined : Number(b.decRowsP50.toFixed(4)),
      lostRowsDecodeRatio: b.decRows ? Number((Number(row.decodeMBps) / b.decRows).toFixed(2)) : undefined,
      lostRowsFastInvBaselineDecode: b.decRowsFast ? "isa-l, lost rows only, e×e block inverted with a product table" : undefined,
      lostRowsFastInvBaselineDecodeMBps: b.decRowsFast,
      lostRowsFastInvBaselineDecodeP50Ms: b.decRowsFastP50 === undefined ? undefined : Number(b.decRowsFastP50.toFixed(4)),
      lostRowsFastInvDecodeRatio: b.decRowsFast ? Number((Number(row.decodeMBps) / b.decRowsFast).toFixed(2)) : undefined,
      baselineDecodeKernelMBps: b.decKernel,
      decodeKernelRatio: Number((Number(row.decodeMBps) / b.decKernel).toFixed(2)),
    });
  } else {
    row.baseline = isal ? "none (k + m > 255: out of GF(2^8) range)" : "none (libisal.so.2 not loadable)";
  }
  console.log(JSON.stringify(row));
  if (isa !== undefined) return;

  // Batch-call overhead: a decode call with nothing lost crosses the FFI, validates the k + m
  // shard pointers and returns
  const none: number[] = [];
  const calls = 20000;
  const t0 = performance.now();
  for (let i = 0; i < calls; i++) c.decode(none);
  const callNs = ((performance.now() - t0) * 1e6) / calls;
  console.log(
    JSON.stringify({ case: `rs16-batch-call-${k}+${m}`, codec: `rs16-${c.isa}`, k, m, callNs: Math.round(callNs) }),
  );
}

const isalMemo = new Map<string, IsalFigures>();
for (const [k, m] of CASES) runCase(k, m, undefined, isalMemo);
// the same first case on every other kernel set (machines without GFNI/AVX2 run these)
for (const isa of RS16_ISAS) runCase(CASES[0]![0], CASES[0]![1], isa, isalMemo);
