/**
 * Crypto benchmark: AES-128-GCM on 1,400-byte packets sealed/opened in batches through ffi, against
 * `openssl speed -evp aes-128-gcm -bytes 1400` measured in the same run; AES-128-CBC (audio) per
 * packet against `openssl speed -evp aes-128-cbc`; the cost of one batch call across the FFI.
 *
 *   npm run bench:crypto            (BENCH_SECONDS=1 by default per case)
 *
 * Prints one JSON object per line and case:
 *   { case, cipher, bytes, encodeMBps, decodeMBps, baseline, baselineMBps, ratio, ... }
 * MB/s are 10^6 bytes of payload per CPU-second on one thread. Shared VMs vary a lot from second to
 * second, so baselines and our cases are measured interleaved over ROUNDS rounds and the best
 * figure of each is kept. Two baselines for GCM: `openssl speed -evp` streams one long message
 * (no IV setup or tag per packet), `openssl speed -aead -evp` re-initialises the IV and finishes
 * each 1,400-byte message, which is the work a packet needs. `openssl speed` runs in its own
 * process and on this build is slower than OpenSSL used well, so the headline GCM baseline is
 * OpenSSL's EVP per-packet loop in process (native/bench/baselines.c: one context keyed once,
 * per 1,400-byte packet a fresh IV, EVP_EncryptUpdate, EVP_EncryptFinal_ex, GCM_GET_TAG; 256
 * packets per call): `evpBaselineMBps` / `evpRatio` (and the decode side). The `openssl speed`
 * figures stay in the output for comparison with older runs.
 */
import { randomBytes } from "node:crypto";
import { ptr } from "bun:ffi";
import { GcmIvMode, GcmLayout, NativeCrypto } from "../../ffi/crypto.ts";
import { cryptoSymbols } from "../../ffi/crypto-symbols.ts";
import { openSymbols, resolveNativePath } from "../../ffi/native.ts";
import { openBaselines } from "./baselines.ts";

const SECONDS = Math.min(10, Math.max(0.2, Number(process.env.BENCH_SECONDS ?? 1)));
const PACKET = 1400;
const ROUNDS = Math.min(10, Math.max(1, Number(process.env.BENCH_ROUNDS ?? 3)));

/**
 * Runs `fn` (which processes `bytesPerCall` payload bytes) for ~SECONDS of wall time; returns MB
 * per CPU-second of this process. `openssl speed` also divides by its user CPU time (unless
 * -elapsed), so both sides ignore time stolen by other tenants of the VM.
 */
function measure(bytesPerCall: number, fn: () => void): number {
  for (let i = 0; i < 20; i++) fn(); // warm-up
  let calls = 0;
  const deadline = Bun.nanoseconds() + SECONDS * 1e9;
  const cpu0 = process.cpuUsage();
  while (Bun.nanoseconds() < deadline) {
    for (let i = 0; i < 16; i++) fn();
    calls += 16;
  }
  const cpu = process.cpuUsage(cpu0);
  return (calls * bytesPerCall) / ((cpu.user + cpu.system) / 1e6) / 1e6;
}

/** `openssl speed -mr` throughput in MB/s for one cipher and size (its +F line is bytes/s). */
function opensslSpeed(cipher: string, bytes: number, decrypt = false, aead = false): number | undefined {
  const args = ["openssl", "speed", "-mr", ...(decrypt ? ["-decrypt"] : []), ...(aead ? ["-aead"] : []), "-evp", cipher, "-bytes", String(bytes), "-seconds", String(Math.max(1, Math.round(SECONDS)))];
  const proc = Bun.spawnSync(args, { stdout: "pipe", stderr: "pipe", timeout: 60_000 });
  const line = proc.stdout.toString().split("\n").find((l) => l.startsWith("+F:"));
  const v = line ? Number(line.split(":").at(-1)) : NaN;
  return Number.isFinite(v) && v > 0 ? v / 1e6 : undefined;
}

function cpuNs(since: NodeJS.CpuUsage): number {
  const c = process.cpuUsage(since);
  return (c.user + c.system) * 1000;
}

const round = (v: number | undefined, d = 1) => (v === undefined ? undefined : Number(v.toFixed(d)));
function emit(o: Record<string, unknown>): void {
  console.log(JSON.stringify(Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined))));
}

const best = new Map<string, number>();
function keep(name: string, v: number | undefined): void {
  if (v !== undefined && v > (best.get(name) ?? 0)) best.set(name, v);
}

const crypto = NativeCrypto.load();
const gcm = crypto.aesGcm(randomBytes(16));
const cbc = crypto.aesCbc(randomBytes(16));
const BATCHES = [1, 16, 64, 256];
const REC = 32 + PACKET;

/** Video layout: iv[12] ‖ LE32 frameIndex ‖ tag[16] ‖ ciphertext, LE64 counter IVs ending 'V'. */
function gcmCase(batch: number): { enc: number; dec: number } {
  const seal = new GcmLayout({ inStride: PACKET, outStride: REC, ctOffset: 32, tagOffset: 16, ivOffset: 0, ivMode: GcmIvMode.Counter64 });
  const open = new GcmLayout({ inStride: REC, outStride: PACKET, ctOffset: 32, tagOffset: 16, ivOffset: 0, ivMode: GcmIvMode.InRecord });
  const template = new Uint8Array(12);
  template[11] = 0x56;
  const sealArgs = {
    count: batch, input: randomBytes(batch * PACKET), lens: new Uint32Array(batch).fill(PACKET),
    output: new Uint8Array(batch * REC), iv: template, counter: 0, status: new Int32Array(batch),
  };
  const enc = measure(batch * PACKET, () => {
    sealArgs.counter += batch;
    if (gcm.sealBatch(seal, sealArgs) !== batch) throw new Error("seal failed");
  });
  const openArgs = { count: batch, input: sealArgs.output, lens: new Uint32Array(batch).fill(REC), output: new Uint8Array(batch * PACKET), status: new Int32Array(batch) };
  const dec = measure(batch * PACKET, () => {
    if (gcm.openBatch(open, openArgs) !== batch) throw new Error("open failed");
  });
  return { enc, dec };
}

/** The same video records sealed in place (payload already at its ciphertext offset), as
 * `openssl speed` encrypts in place. */
function gcmInPlace(batch: number): number {
  const seal = new GcmLayout({ inStride: REC, outStride: REC, ctOffset: 32, tagOffset: 16, ivOffset: 0, ivMode: GcmIvMode.Counter64 });
  const records = randomBytes(batch * REC);
  const args = { count: batch, input: records.subarray(32), lens: new Uint32Array(batch).fill(PACKET), output: records, iv: new Uint8Array(12), counter: 0, status: new Int32Array(batch) };
  return measure(batch * PACKET, () => {
    args.counter += batch;
    if (gcm.sealBatch(seal, args) !== batch) throw new Error("seal failed");
  });
}

/** Audio: AES-128-CBC + PKCS#7, one packet per call (audio is one packet per 5 ms). */
function cbcCase(bytes: number): { enc: number; dec: number } {
  const pt = randomBytes(bytes);
  const iv = new Uint8Array(16);
  const ct = new Uint8Array(bytes + 16);
  const back = new Uint8Array(bytes + 16);
  const n = cbc.encryptInto(iv, pt, ct);
  const ctView = ct.subarray(0, n);
  return { enc: measure(bytes, () => cbc.encryptInto(iv, pt, ct)), dec: measure(bytes, () => cbc.decryptInto(iv, ctView, back)) };
}

/** OpenSSL EVP per packet in process, EVP_BATCH packets per native call. */
const baselines = openBaselines();
const EVP_BATCH = 256;
function evpCase(): { enc: number; dec: number } | undefined {
  if (!baselines) return undefined;
  const b = baselines.symbols;
  const g = b.bench_gcm_new(ptr(randomBytes(16)));
  if (!g) throw new Error("bench_gcm_new failed");
  try {
    const pt = randomBytes(EVP_BATCH * PACKET), ct = new Uint8Array(EVP_BATCH * PACKET), back = new Uint8Array(EVP_BATCH * PACKET);
    const tags = new Uint8Array(EVP_BATCH * 16);
    let counter = 0;
    const enc = measure(EVP_BATCH * PACKET, () => {
      counter += EVP_BATCH;
      if (b.bench_gcm_seal(g, EVP_BATCH, PACKET, ptr(pt), ptr(ct), ptr(tags), counter) !== EVP_BATCH) throw new Error("EVP seal failed");
    });
    if (b.bench_gcm_open(g, EVP_BATCH, PACKET, ptr(ct), ptr(tags), ptr(back), counter) !== EVP_BATCH || Buffer.compare(back, pt) !== 0)
      throw new Error("EVP open mismatch");
    const dec = measure(EVP_BATCH * PACKET, () => {
      if (b.bench_gcm_open(g, EVP_BATCH, PACKET, ptr(ct), ptr(tags), ptr(back), counter) !== EVP_BATCH) throw new Error("EVP open failed");
    });
    return { enc, dec };
  } finally {
    b.bench_gcm_free(g);
  }
}

for (let round = 0; round < ROUNDS; round++) {
  const evp = evpCase();
  keep("gcm-evp-enc", evp?.enc);
  keep("gcm-evp-dec", evp?.dec);
  keep("gcm-base-enc", opensslSpeed("aes-128-gcm", PACKET));
  keep("gcm-base-dec", opensslSpeed("aes-128-gcm", PACKET, true));
  keep("gcm-aead-enc", opensslSpeed("aes-128-gcm", PACKET, false, true));
  keep("gcm-aead-dec", opensslSpeed("aes-128-gcm", PACKET, true, true));
  for (const batch of BATCHES) {
    const r = gcmCase(batch);
    keep(`gcm-${batch}-enc`, r.enc);
    keep(`gcm-${batch}-dec`, r.dec);
  }
  keep("gcm-inplace-enc", gcmInPlace(256));
  keep("cbc-base-enc", opensslSpeed("aes-128-cbc", PACKET));
  keep("cbc-base-dec", opensslSpeed("aes-128-cbc", PACKET, true));
  const c = cbcCase(PACKET);
  keep("cbc-enc", c.enc);
  keep("cbc-dec", c.dec);
  const s = cbcCase(240);
  keep("cbc240-enc", s.enc);
  keep("cbc240-dec", s.dec);
}

const g = (k: string) => best.get(k);
const ratio = (a: number | undefined, b: number | undefined) => (a !== undefined && b ? round(a / b, 3) : undefined);
for (const batch of BATCHES) {
  const enc = g(`gcm-${batch}-enc`), dec = g(`gcm-${batch}-dec`);
  emit({
    case: `gcm-video-batch${batch}`, cipher: "aes-128-gcm", bytes: PACKET, batch,
    encodeMBps: round(enc), decodeMBps: round(dec),
    baseline: "openssl speed -evp aes-128-gcm", baselineMBps: round(g("gcm-base-enc")), ratio: ratio(enc, g("gcm-base-enc")),
    baselineDecodeMBps: round(g("gcm-base-dec")), decodeRatio: ratio(dec, g("gcm-base-dec")),
    aeadBaselineMBps: round(g("gcm-aead-enc")), aeadRatio: ratio(enc, g("gcm-aead-enc")),
    aeadBaselineDecodeMBps: round(g("gcm-aead-dec")), aeadDecodeRatio: ratio(dec, g("gcm-aead-dec")),
    evpBaseline: baselines ? `openssl EVP in process, per ${PACKET} B packet (fresh IV, update, final, tag), ${EVP_BATCH} per call` : "none (bench baselines not built)",
    evpBaselineMBps: round(g("gcm-evp-enc")), evpRatio: ratio(enc, g("gcm-evp-enc")),
    evpBaselineDecodeMBps: round(g("gcm-evp-dec")), evpDecodeRatio: ratio(dec, g("gcm-evp-dec")),
    packetsPerSecond: enc === undefined ? undefined : Math.round((enc * 1e6) / PACKET),
  });
}

{
  const enc = g("gcm-inplace-enc");
  emit({
    case: "gcm-video-inplace-batch256", cipher: "aes-128-gcm", bytes: PACKET, batch: 256, encodeMBps: round(enc),
    baseline: "openssl speed -evp aes-128-gcm", baselineMBps: round(g("gcm-base-enc")), ratio: ratio(enc, g("gcm-base-enc")),
    aeadBaselineMBps: round(g("gcm-aead-enc")), aeadRatio: ratio(enc, g("gcm-aead-enc")),
    evpBaselineMBps: round(g("gcm-evp-enc")), evpRatio: ratio(enc, g("gcm-evp-enc")),
  });
}

// FFI overhead per batch call (CPU time, best of 3): an empty batch through the TS wrapper (its
// size checks + one native call that validates the layout and returns), and the bare symbol call.
{
  const layout = new GcmLayout({ inStride: PACKET, outStride: REC, ctOffset: 32, tagOffset: 16, ivMode: GcmIvMode.Counter64 });
  const empty = { count: 0, input: new Uint8Array(1), lens: new Uint32Array(1), output: new Uint8Array(1), iv: new Uint8Array(12), status: new Int32Array(1) };
  const N = 1_000_000;
  let wrapped = Infinity;
  for (let r = 0; r < 3; r++) {
    const c0 = process.cpuUsage();
    for (let i = 0; i < N; i++) gcm.sealBatch(layout, empty);
    wrapped = Math.min(wrapped, cpuNs(c0) / N);
  }
  // the bare symbol with pointers taken once (a NULL object: the library returns at its first check)
  const lib = openSymbols(resolveNativePath({}), { neuron_aes_gcm_seal_batch: cryptoSymbols.neuron_aes_gcm_seal_batch });
  const L = ptr(layout.bytes), I = ptr(empty.input), LN = ptr(empty.lens), O = ptr(empty.output), IV = ptr(empty.iv), ST = ptr(empty.status);
  let bare = Infinity;
  for (let r = 0; r < 3; r++) {
    const c0 = process.cpuUsage();
    for (let i = 0; i < N; i++) lib.symbols.neuron_aes_gcm_seal_batch(null, L, 0, I, LN, O, IV, 0, null, ST);
    bare = Math.min(bare, cpuNs(c0) / N);
  }
  lib.close();
  const perPacket256 = g("gcm-256-enc") ? (PACKET / (g("gcm-256-enc")! * 1e6)) * 1e9 : undefined;
  emit({
    case: "ffi-overhead-per-batch-call", cipher: "aes-128-gcm", nsPerCall: round(wrapped, 1), nsPerBareCall: round(bare, 1),
    nsPerPacketAtBatch256: round(perPacket256, 1),
  });
}

for (const [name, bytes, enc, dec, base, baseD] of [
  ["cbc-audio-per-packet", PACKET, "cbc-enc", "cbc-dec", "cbc-base-enc", "cbc-base-dec"],
  ["cbc-audio-240B", 240, "cbc240-enc", "cbc240-dec", undefined, undefined],
] as const) {
  emit({
    case: name, cipher: "aes-128-cbc", bytes, encodeMBps: round(g(enc)), decodeMBps: round(g(dec)),
    baseline: base && `openssl speed -evp aes-128-cbc -bytes ${PACKET}`, baselineMBps: base && round(g(base)), ratio: base && ratio(g(enc), g(base)),
    baselineDecodeMBps: baseD && round(g(baseD)), decodeRatio: baseD && ratio(g(dec), g(baseD)),
  });
}

cbc.close();
gcm.close();
crypto.close();
baselines?.close();
