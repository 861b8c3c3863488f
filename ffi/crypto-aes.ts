/**
 * AES-128 through libneuron (OpenSSL): GCM key objects with batched seal/open, CBC with PKCS#7,
 * one-shot ECB without padding. Buffers are caller-owned; the batch calls allocate nothing.
 */
import { ptr, type Pointer } from "bun:ffi";
import {
  AES128_KEY_BYTES,
  CRYPTO_MAX_INPUT,
  CryptoArgumentError,
  GCM_IV_BYTES,
  GCM_MAX_BATCH,
  GCM_MAX_STRIDE,
  GCM_TAG_BYTES,
  NativeHandle,
  bufPtr,
  check,
  construct,
  requireLength,
  type CryptoLease,
  type CryptoSymbols,
} from "./crypto-symbols.ts";

/** Where each packet's IV comes from (neuron_gcm_iv_mode). */
export const GcmIvMode = {
  /** packet i uses the 12 bytes at iv[i * ivStride] */
  Explicit: 0,
  /** iv is a 12-byte template; bytes 0..3 = LE32(counter + i) */
  Counter32: 1,
  /** iv is a 12-byte template; bytes 0..7 = LE64(counter + i) */
  Counter64: 2,
  /** open only: the IV is read from each record at ivOffset */
  InRecord: 3,
} as const;
export type GcmIvMode = (typeof GcmIvMode)[keyof typeof GcmIvMode];

export interface GcmLayoutSpec {
  /** bytes between input packets (seal: plaintexts; open: records) */
  inStride: number;
  /** bytes between output slots (seal: records; open: plaintexts) */
  outStride: number;
  /** ciphertext offset inside a record */
  ctOffset: number;
  /** offset of the 16-byte tag inside a record (tagOffset + 16 <= ctOffset) */
  tagOffset: number;
  /** offset of the 12-byte IV inside a record, or -1 (seal writes it, open reads it in InRecord mode) */
  ivOffset?: number;
  ivMode: GcmIvMode;
  /** Explicit mode: bytes between IVs */
  ivStride?: number;
  /** AAD bytes per packet (0: none) */
  aadLen?: number;
  /** bytes between AADs (0: one AAD for all packets) */
  aadStride?: number;
}

function u32(name: string, v: number, max: number): number {
  if (!Number.isInteger(v) || v < 0 || v > max) throw new CryptoArgumentError(`${name} must be an integer in 0..${max}`);
  return v;
}

/** A batch layout encoded once as the 40-byte neuron_gcm_layout struct. */
export class GcmLayout {
  readonly spec: Readonly<Required<GcmLayoutSpec>>;
  readonly bytes = new Uint8Array(40);

  constructor(spec: GcmLayoutSpec) {
    const s: Required<GcmLayoutSpec> = { ivOffset: -1, ivStride: 0, aadLen: 0, aadStride: 0, ...spec };
    u32("inStride", s.inStride, GCM_MAX_STRIDE);
    u32("outStride", s.outStride, GCM_MAX_STRIDE);
    u32("ctOffset", s.ctOffset, GCM_MAX_STRIDE);
    u32("tagOffset", s.tagOffset, GCM_MAX_STRIDE);
    u32("ivStride", s.ivStride, GCM_MAX_STRIDE);
    u32("aadLen", s.aadLen, GCM_MAX_STRIDE);
    u32("aadStride", s.aadStride, GCM_MAX_STRIDE);
    if (s.ivOffset !== -1) u32("ivOffset", s.ivOffset, GCM_MAX_STRIDE);
    u32("ivMode", s.ivMode, 3);
    this.spec = Object.freeze(s);
    const v = new DataView(this.bytes.buffer);
    v.setUint32(0, s.inStride, true);
    v.setUint32(4, s.outStride, true);
    v.setUint32(8, s.ctOffset, true);
    v.setUint32(12, s.tagOffset, true);
    v.setInt32(16, s.ivOffset, true);
    v.setUint32(20, s.ivMode, true);
    v.setUint32(24, s.ivStride, true);
    v.setUint32(28, s.aadLen, true);
    v.setUint32(32, s.aadStride, true);
    v.setUint32(36, 0, true);
  }
}

export interface GcmBatch {
  count: number;
  /** seal: plaintexts at i * inStride; open: records at i * inStride (count * inStride bytes) */
  input: Uint8Array;
  /** byte length of each packet (seal: plaintext; open: whole record) */
  lens: Uint32Array;
  /** count * outStride bytes */
  output: Uint8Array;
  /** Explicit: the IVs; Counter*: the 12-byte template; InRecord: unused */
  iv?: Uint8Array;
  /** counter of packet 0 in the Counter modes */
  counter?: number | bigint;
  aad?: Uint8Array;
  /** receives each packet's status (0 or a negative NativeStatus) */
  status: Int32Array;
}

const NO_BYTES = new Uint8Array(0);

/** AES-128-GCM key object: the key schedule lives in native contexts, zeroed on close(). */
export class AesGcm extends NativeHandle {
  private readonly sym: CryptoSymbols;
  constructor(lease: CryptoLease, key: Uint8Array) {
    if (key.byteLength !== AES128_KEY_BYTES) throw new CryptoArgumentError("AES-128-GCM key must be 16 bytes");
    const sym = lease.sym;
    super(
      lease,
      construct("neuron_aes_gcm_new", (out) => sym.neuron_aes_gcm_new(ptr(key), key.byteLength, out)),
      (h) => sym.neuron_aes_gcm_free(h),
    );
    this.sym = sym;
  }

  /** Seals a batch; returns how many packets were sealed (see batch.status for each). */
  sealBatch(layout: GcmLayout, b: GcmBatch): number {
    this.checkBatch(layout, b, false);
    return check(
      "neuron_aes_gcm_seal_batch",
      this.sym.neuron_aes_gcm_seal_batch(this.handle, ptr(layout.bytes), b.count, bufPtr(b.input), bufPtr(b.lens),
        bufPtr(b.output), b.iv ? bufPtr(b.iv) : null, b.counter ?? 0, b.aad ? bufPtr(b.aad) : null, bufPtr(b.status)),
    );
  }

  /** Opens a batch; returns how many packets authenticated (failed ones have zeroed plaintext). */
  openBatch(layout: GcmLayout, b: GcmBatch): number {
    this.checkBatch(layout, b, true);
    return check(
      "neuron_aes_gcm_open_batch",
      this.sym.neuron_aes_gcm_open_batch(this.handle, ptr(layout.bytes), b.count, bufPtr(b.input), bufPtr(b.lens),
        bufPtr(b.output), b.iv ? bufPtr(b.iv) : null, b.counter ?? 0, b.aad ? bufPtr(b.aad) : null, bufPtr(b.status)),
    );
  }

  /** One packet: returns tag[16] ‖ ciphertext. */
  seal(plaintext: Uint8Array, iv: Uint8Array, aad?: Uint8Array): Uint8Array {
    requireLength("iv", iv, GCM_IV_BYTES);
    const layout = new GcmLayout({
      inStride: plaintext.byteLength, outStride: GCM_TAG_BYTES + plaintext.byteLength, ctOffset: GCM_TAG_BYTES,
      tagOffset: 0, ivMode: GcmIvMode.Explicit, aadLen: aad?.byteLength ?? 0,
    });
    const out = new Uint8Array(GCM_TAG_BYTES + plaintext.byteLength);
    const status = new Int32Array(1);
    this.sealBatch(layout, { count: 1, input: plaintext, lens: Uint32Array.of(plaintext.byteLength), output: out, iv, aad, status });
    check("neuron_aes_gcm_seal_batch", status[0]!);
    return out;
  }

  /** One packet of tag[16] ‖ ciphertext: returns the plaintext or throws NEURON_EAUTH / NEURON_EFORMAT. */
  open(record: Uint8Array, iv: Uint8Array, aad?: Uint8Array): Uint8Array {
    requireLength("iv", iv, GCM_IV_BYTES);
    const ptLen = Math.max(0, record.byteLength - GCM_TAG_BYTES);
    const layout = new GcmLayout({
      inStride: record.byteLength, outStride: ptLen, ctOffset: GCM_TAG_BYTES, tagOffset: 0,
      ivMode: GcmIvMode.Explicit, aadLen: aad?.byteLength ?? 0,
    });
    const out = new Uint8Array(ptLen);
    const status = new Int32Array(1);
    this.openBatch(layout, { count: 1, input: record, lens: Uint32Array.of(record.byteLength), output: out, iv, aad, status });
    check("neuron_aes_gcm_open_batch", status[0]!);
    return out;
  }

  /** The buffer sizes the native side reads and writes, checked here where they are known. */
  private checkBatch(layout: GcmLayout, b: GcmBatch, opening: boolean): void {
    const s = layout.spec;
    u32("count", b.count, GCM_MAX_BATCH);
    if (b.count === 0) return;
    if (b.lens.length < b.count) throw new CryptoArgumentError(`lens has ${b.lens.length} entries, needs ${b.count}`);
    // The native side touches, for packet i, at most [i*stride, i*stride + stride) and skips a
    // packet whose length does not fit its stride; the last slot only needs what its lengths use
    // (so in-place batches can start a few bytes into a record buffer).
    let maxLen = 0;
    for (let i = 0; i < b.count; i++) if (b.lens[i]! > maxLen) maxLen = b.lens[i]!;
    const last = b.count - 1;
    const inTail = Math.min(s.inStride, maxLen);
    const outTail = Math.min(s.outStride, opening ? Math.max(0, maxLen - s.ctOffset) : s.ctOffset + maxLen);
    requireLength("input", b.input, last * s.inStride + inTail);
    requireLength("output", b.output, last * s.outStride + outTail);
    if (b.status.length < b.count) throw new CryptoArgumentError(`status has ${b.status.length} entries, needs ${b.count}`);
    if (s.ivMode === GcmIvMode.Explicit) requireLength("iv", b.iv ?? NO_BYTES, (b.count - 1) * s.ivStride + GCM_IV_BYTES);
    else if (s.ivMode !== GcmIvMode.InRecord) requireLength("iv", b.iv ?? NO_BYTES, GCM_IV_BYTES);
    else if (!opening) throw new CryptoArgumentError("InRecord IVs apply to openBatch only");
    if (s.aadLen > 0) requireLength("aad", b.aad ?? NO_BYTES, (b.count - 1) * s.aadStride + s.aadLen);
    const c = b.counter ?? 0;
    if (typeof c === "number" && (!Number.isSafeInteger(c) || c < 0)) throw new CryptoArgumentError("counter must be a non-negative safe integer or a bigint");
    if (typeof c === "bigint" && (c < 0n || c >= 1n << 64n)) throw new CryptoArgumentError("counter must fit 64 bits");
  }
}

/** AES-128-CBC with PKCS#7 padding (GameStream audio). */
export class AesCbc extends NativeHandle {
  private readonly sym: CryptoSymbols;
  constructor(lease: CryptoLease, key: Uint8Array) {
    if (key.byteLength !== AES128_KEY_BYTES) throw new CryptoArgumentError("AES-128-CBC key must be 16 bytes");
    const sym = lease.sym;
    super(
      lease,
      construct("neuron_aes_cbc_new", (out) => sym.neuron_aes_cbc_new(ptr(key), key.byteLength, out)),
      (h) => sym.neuron_aes_cbc_free(h),
    );
    this.sym = sym;
  }

  /** Encrypts into `out` (>= (len/16+1)*16 bytes); returns the ciphertext length. */
  encryptInto(iv: Uint8Array, plaintext: Uint8Array, out: Uint8Array): number {
    requireLength("iv", iv, 16);
    return check("neuron_aes_cbc_encrypt",
      this.sym.neuron_aes_cbc_encrypt(this.handle, ptr(iv), bufPtr(plaintext), plaintext.byteLength, bufPtr(out), out.byteLength));
  }

  /** Decrypts into `out` (>= ciphertext length); returns the plaintext length. */
  decryptInto(iv: Uint8Array, ciphertext: Uint8Array, out: Uint8Array): number {
    requireLength("iv", iv, 16);
    return check("neuron_aes_cbc_decrypt",
      this.sym.neuron_aes_cbc_decrypt(this.handle, ptr(iv), bufPtr(ciphertext), ciphertext.byteLength, bufPtr(out), out.byteLength));
  }

  encrypt(iv: Uint8Array, plaintext: Uint8Array): Uint8Array {
    if (plaintext.byteLength > CRYPTO_MAX_INPUT) throw new CryptoArgumentError(`plaintext over ${CRYPTO_MAX_INPUT} bytes`);
    const out = new Uint8Array((Math.floor(plaintext.byteLength / 16) + 1) * 16);
    return out.subarray(0, this.encryptInto(iv, plaintext, out));
  }

  decrypt(iv: Uint8Array, ciphertext: Uint8Array): Uint8Array {
    if (ciphertext.byteLength > CRYPTO_MAX_INPUT) throw new CryptoArgumentError(`ciphertext over ${CRYPTO_MAX_INPUT} bytes`);
    const out = new Uint8Array(Math.max(16, ciphertext.byteLength));
    return out.subarray(0, this.decryptInto(iv, ciphertext, out));
  }
}

/** GameStream audio IV: BE32(rikeyid + seq) ‖ 12 zero bytes. */
export function audioIv(rikeyid: number, seq: number): Uint8Array {
  const iv = new Uint8Array(16);
  new DataView(iv.buffer).setUint32(0, (rikeyid + seq) >>> 0, false);
  return iv;
}

export function aesEcb(sym: CryptoSymbols, encrypt: boolean, key: Uint8Array, data: Uint8Array): Uint8Array {
  if (key.byteLength !== AES128_KEY_BYTES) throw new CryptoArgumentError("AES-128-ECB key must be 16 bytes");
  if (data.byteLength % 16 !== 0 || data.byteLength > CRYPTO_MAX_INPUT)
    throw new CryptoArgumentError("AES-128-ECB data must be a multiple of 16 bytes (no padding), at most 1 MiB");
  const out = new Uint8Array(data.byteLength);
  if (data.byteLength === 0) return out;
  const fn = encrypt ? sym.neuron_aes_ecb_encrypt : sym.neuron_aes_ecb_decrypt;
  check(encrypt ? "neuron_aes_ecb_encrypt" : "neuron_aes_ecb_decrypt",
    fn(ptr(key), key.byteLength, ptr(data), data.byteLength, ptr(out)));
  return out;
}

export type { Pointer };
