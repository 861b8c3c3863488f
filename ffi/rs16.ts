/**
 * GF(2^16) Reed–Solomon erasure codec (native/fec.h, neuron_rs16_*) for large blocks: up to
 * 65,535 shards, O(n log n) encode and decode.
 *
 * An `Rs16Codec` owns its native codec (tables + work area, created once per k, m and shard
 * size) and one block buffer holding all k + m shards back to back: data shards 0..k-1, then
 * parity shards 0..m-1, each `shardSize` bytes (a multiple of 64). Fill the data shards, call
 * `encode()`; on the receiving side fill what arrived, call `decode(lost)` with the indices that
 * did not, and the lost shards are rebuilt in place. One native call per block; the pointer
 * tables are built once, so a call costs no allocation.
 */
import { CString, FFIType, ptr, type FFIFunction, type Library, type Pointer } from "bun:ffi";
import {
  NativeCallError,
  NativeLibraryError,
  NativeStatus,
  NEURON_ABI_VERSION,
  openSymbols, resolveNativePath, type NativeLocation } from "./native.ts";

export const RS16_MAX_SHARDS = 65535;
export const RS16_SHARD_ALIGN = 64;
/** Work area limit of one codec (N × shardSize bytes, N = power of two >= k + m', see fec.h). */
export const RS16_MAX_WORK_BYTES = 2 ** 30;

const rs16Symbols = {
  neuron_abi_version: { args: [], returns: FFIType.u32 },
  neuron_rs16_create: { args: [FFIType.u32, FFIType.u32, "usize", FFIType.ptr], returns: FFIType.i32 },
  neuron_rs16_free: { args: [FFIType.ptr], returns: FFIType.void },
  neuron_rs16_isa: { args: [FFIType.ptr], returns: FFIType.ptr },
  neuron_rs16_work_bytes: { args: [FFIType.ptr], returns: FFIType.u64 },
  neuron_rs16_set_isa: { args: [FFIType.ptr, FFIType.cstring], returns: FFIType.i32 },
  neuron_rs16_encode: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr, "usize"], returns: FFIType.i32 },
  neuron_rs16_decode: {
    args: [FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.u32, "usize"],
    returns: FFIType.i32,
  },
} as const satisfies Record<string, FFIFunction>;

type Rs16Library = Library<typeof rs16Symbols>;

/** A parameter the codec cannot take (checked before any native call). */
export class FecParameterError extends Error {
  readonly errorCode = "FEC_INVALID_PARAMETER";
  constructor(message: string) {
    super(message);
    this.name = "FecParameterError";
  }
}

export interface Rs16Options {
  /** data shards, >= 1 */
  k: number;
  /** parity shards, >= 1; k + m <= 65,535 */
  m: number;
  /** bytes per shard: a positive multiple of 64 */
  shardSize: number;
  /** where libneuron.so is (default: the usual search, ffi/native.ts) */
  native?: NativeLocation;
  /** force these kernels instead of the best the CPU has (benchmarks, cross-checks) */
  isa?: Rs16Isa;
}

export const RS16_ISAS = ["gfni-avx512", "gfni", "avx2", "portable"] as const;
export type Rs16Isa = (typeof RS16_ISAS)[number];

function checkParams(k: number, m: number, shardSize: number): void {
  if (!Number.isInteger(k) || k < 1) throw new FecParameterError(`k must be an integer >= 1 (got ${k})`);
  if (!Number.isInteger(m) || m < 1) throw new FecParameterError(`m must be an integer >= 1 (got ${m})`);
  if (k + m > RS16_MAX_SHARDS)
    throw new FecParameterError(`k + m must be at most ${RS16_MAX_SHARDS} (got ${k} + ${m} = ${k + m})`);
  if (!Number.isInteger(shardSize) || shardSize < RS16_SHARD_ALIGN || shardSize % RS16_SHARD_ALIGN !== 0)
    throw new FecParameterError(`shardSize must be a positive multiple of ${RS16_SHARD_ALIGN} (got ${shardSize})`);
  const work = rs16TransformSize(k, m) * shardSize;
  if (work > RS16_MAX_WORK_BYTES)
    throw new FecParameterError(
      `work area of ${work} bytes for ${k} + ${m} shards of ${shardSize} bytes exceeds ${RS16_MAX_WORK_BYTES} bytes`,
    );
}

const pow2AtLeast = (v: number) => 2 ** Math.ceil(Math.log2(v));

/** N, the transform size of the codec's layout (native/fec.h): its work area is N × shardSize. */
export function rs16TransformSize(k: number, m: number): number {
  const mp = pow2AtLeast(m);
  const kp = pow2AtLeast(k);
  const highFits = mp + k <= 65536;
  const lowFits = kp + m <= 65536;
  if (lowFits && (kp < mp || !highFits)) return pow2AtLeast(kp + m);
  if (highFits) return pow2AtLeast(mp + k);
  return pow2AtLeast(k + m);
}

export class Rs16Codec {
  readonly k: number;
  readonly m: number;
  readonly shardSize: number;
  readonly totalShards: number;
  /** All shards back to back: data 0..k-1, then parity 0..m-1. */
  readonly block: Uint8Array;
  /** The kernels the native codec runs: "gfni" where the CPU has it, else "avx2", else "portable"; or the `isa` asked for. */
  readonly isa: Rs16Isa;
  /** Bytes of the native work area. */
  readonly workBytes: number;

  private readonly lib: Rs16Library;
  private handle: Pointer | null;
  private readonly table: BigUint64Array; /* shard pointers, data then parity */
  private readonly lost: Uint32Array;
  private readonly tablePtr: number;
  private readonly parityTablePtr: number;
  private readonly lostPtr: number;

  private constructor(lib: Rs16Library, handle: Pointer, k: number, m: number, shardSize: number) {
    this.lib = lib;
    this.handle = handle;
    this.k = k;
    this.m = m;
    this.shardSize = shardSize;
    this.totalShards = k + m;
    // Backed by explicit ArrayBuffers: a small `new Uint8Array(n)` (measured: up to 512 bytes)
    // keeps its bytes inline and moves them on the first `.buffer`/`subarray()` access, which
    // would leave the addresses cached below pointing at stale memory.
    this.block = new Uint8Array(new ArrayBuffer(this.totalShards * shardSize));
    this.table = new BigUint64Array(new ArrayBuffer(8 * this.totalShards));
    const base = ptr(this.block);
    for (let i = 0; i < this.totalShards; i++) this.table[i] = BigInt(base + i * shardSize);
    this.tablePtr = ptr(this.table);
    this.parityTablePtr = this.tablePtr + 8 * k;
    this.lost = new Uint32Array(new ArrayBuffer(4 * this.totalShards));
    this.lostPtr = ptr(this.lost);
    this.isa = new CString(lib.symbols.neuron_rs16_isa(handle)!).toString() as Rs16Isa;
    this.workBytes = Number(lib.symbols.neuron_rs16_work_bytes(handle));
  }

  /** Creates a codec; throws FecParameterError for bad parameters, NativeCallError if the library refuses. */
  static create(opts: Rs16Options): Rs16Codec {
    checkParams(opts.k, opts.m, opts.shardSize);
    const lib = library(opts.native ?? {});
    const out = new BigUint64Array(new ArrayBuffer(8));
    const rc = lib.symbols.neuron_rs16_create(opts.k, opts.m, opts.shardSize, ptr(out));
    if (rc !== NativeStatus.OK) throw new NativeCallError("neuron_rs16_create", rc);
    const handle = Number(out[0]) as Pointer;
    if (opts.isa !== undefined) {
      const isaRc = RS16_ISAS.includes(opts.isa)
        ? lib.symbols.neuron_rs16_set_isa(handle, Buffer.from(`${opts.isa}\0`))
        : NativeStatus.EINVAL;
      if (isaRc !== NativeStatus.OK) {
        lib.symbols.neuron_rs16_free(handle);
        if (isaRc === NativeStatus.EINVAL) throw new FecParameterError(`unknown kernel set ${String(opts.isa)}`);
        throw new NativeCallError("neuron_rs16_set_isa", isaRc);
      }
    }
    return new Rs16Codec(lib, handle, opts.k, opts.m, opts.shardSize);
  }

  /** View of shard i (data i < k, parity i - k otherwise) inside `block`. */
  shard(i: number): Uint8Array {
    if (!Number.isInteger(i) || i < 0 || i >= this.totalShards)
      throw new FecParameterError(`shard index ${i} out of range 0..${this.totalShards - 1}`);
    return this.block.subarray(i * this.shardSize, (i + 1) * this.shardSize);
  }

  /** Computes the m parity shards from the k data shards of `block`. */
  encode(): void {
    const rc = this.lib.symbols.neuron_rs16_encode(
      this.live(),
      this.tablePtr as Pointer,
      this.parityTablePtr as Pointer,
      this.shardSize,
    );
    if (rc !== NativeStatus.OK) throw new NativeCallError("neuron_rs16_encode", rc);
  }

  /**
   * Rebuilds the listed shards in place from the others. Throws NativeCallError with errorCode
   * NEURON_EUNRECOVERABLE when more than m are lost, NEURON_EINVAL for an index out of range or
   * listed twice; in both cases no shard is written.
   */
  decode(lost: ArrayLike<number>): void {
    const handle = this.live();
    if (lost.length > this.totalShards)
      throw new FecParameterError(`${lost.length} lost shards listed for a block of ${this.totalShards}`);
    for (let i = 0; i < lost.length; i++) {
      const v = lost[i]!;
      if (!Number.isInteger(v) || v < 0 || v >= this.totalShards)
        throw new FecParameterError(`lost shard index ${v} out of range 0..${this.totalShards - 1}`);
      this.lost[i] = v;
    }
    const rc = this.lib.symbols.neuron_rs16_decode(
      handle,
      this.tablePtr as Pointer,
      this.lostPtr as Pointer,
      lost.length,
      this.shardSize,
    );
    if (rc !== NativeStatus.OK) throw new NativeCallError("neuron_rs16_decode", rc);
  }

  /** Frees the native codec; the codec cannot be used afterwards (a second close is a no-op). */
  close(): void {
    if (this.handle === null) return;
    this.lib.symbols.neuron_rs16_free(this.handle);
    this.handle = null;
  }

  [Symbol.dispose](): void {
    this.close();
  }

  private live(): Pointer {
    if (this.handle === null) throw new FecParameterError("Rs16Codec used after close()");
    return this.handle;
  }
}

/* One dlopen per library path for the process; codecs share it. */
const libraries = new Map<string, Rs16Library>();

function library(loc: NativeLocation): Rs16Library {
  const path = resolveNativePath(loc);
  let lib = libraries.get(path);
  if (!lib) {
    lib = openSymbols(path, rs16Symbols);
    const abi = lib.symbols.neuron_abi_version();
    if (abi !== NEURON_ABI_VERSION) {
      lib.close();
      throw new NativeLibraryError(`native library ${path} has ABI version ${abi}; this build needs ${NEURON_ABI_VERSION}`);
    }
    libraries.set(path, lib);
  }
  return lib;
}
