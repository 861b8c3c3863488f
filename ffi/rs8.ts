/**
 * GF(2^8) Reed–Solomon erasure codec (native/fec.h, neuron_rs8_*): the Moonlight-compatible
 * Cauchy matrix (parity row j, column i = INV[(m + i) XOR j], polynomial 0x11D) and the fixed
 * GameStream 4+2 audio matrix. One `Rs8Codec` per (k, m); it owns its native object and the
 * small buffers it passes across the boundary, and frees them on close() / dispose.
 *
 * Fast path: one contiguous block (or fixed-size packets) per call with `encodeBlock` /
 * `decodeBlock` — a single native call per block, no per-shard work in JS. `encode` / `decode`
 * take separate shard arrays (one pointer lookup per shard in JS).
 */
import { CString, FFIType, ptr, read, type FFIFunction, type Library, type Pointer } from "bun:ffi";
import { NEURON_ABI_VERSION, NativeLibraryError, NativeStatus, openSymbols, resolveNativePath, type NativeLocation } from "./native.ts";

/** Kernel ids of native/fec.h (neuron_rs8_kernel). */
export const Rs8Kernel = {
  auto: 0,
  portable: 1,
  avx2: 2,
  "gfni-avx2": 3,
  "gfni-avx512": 4,
  isal: 5,
} as const;
export type Rs8KernelName = keyof typeof Rs8Kernel;

export const RS8_MAX_SHARDS = 255;
export const RS8_MAX_SHARD_SIZE = 1 << 24;

export type Rs8ErrorCode =
  | "RS8_INVALID_ARGUMENT"
  | "RS8_UNRECOVERABLE"
  | "RS8_UNSUPPORTED_KERNEL"
  | "RS8_OUT_OF_MEMORY"
  | "RS8_CLOSED"
  | "RS8_NATIVE_ERROR";

/** Every failure of this module: a stable code and a message saying what was wrong. */
export class Rs8Error extends Error {
  constructor(
    readonly errorCode: Rs8ErrorCode,
    message: string,
    readonly nativeStatus?: number,
  ) {
    super(message);
    this.name = "Rs8Error";
  }
}

const symbols = {
  neuron_abi_version: { args: [], returns: FFIType.u32 },
  neuron_rs8_kernel_available: { args: [FFIType.u32], returns: FFIType.i32 },
  neuron_rs8_kernel_name: { args: [FFIType.u32], returns: FFIType.ptr },
  neuron_rs8_create: { args: [FFIType.u32, FFIType.u32, FFIType.u32, FFIType.ptr], returns: FFIType.i32 },
  neuron_rs8_create_audio: { args: [FFIType.u32, FFIType.ptr], returns: FFIType.i32 },
  neuron_rs8_destroy: { args: [FFIType.ptr], returns: FFIType.void },
  neuron_rs8_kernel_of: { args: [FFIType.ptr], returns: FFIType.i32 },
  neuron_rs8_matrix: { args: [FFIType.ptr, FFIType.ptr, "usize"], returns: FFIType.i32 },
  neuron_rs8_encode: { args: [FFIType.ptr, FFIType.ptr, FFIType.u32, "usize"], returns: FFIType.i32 },
  neuron_rs8_decode: {
    args: [FFIType.ptr, FFIType.ptr, FFIType.u32, "usize", FFIType.ptr, FFIType.u32],
    returns: FFIType.i32,
  },
  neuron_rs8_encode_block: { args: [FFIType.ptr, FFIType.ptr, "usize", "usize"], returns: FFIType.i32 },
  neuron_rs8_decode_block: {
    args: [FFIType.ptr, FFIType.ptr, "usize", "usize", FFIType.ptr, FFIType.u32],
    returns: FFIType.i32,
  },
  neuron_rs8_gf_mul: { args: [FFIType.u8, FFIType.u8], returns: FFIType.u8 },
  neuron_rs8_gf_inv: { args: [FFIType.u8], returns: FFIType.u8 },
} as const satisfies Record<string, FFIFunction>;

type Rs8Symbols = Library<typeof symbols>["symbols"];

function statusError(fn: string, status: number, detail: string): Rs8Error {
  switch (status) {
    case NativeStatus.EINVAL:
      return new Rs8Error("RS8_INVALID_ARGUMENT", `${fn}: invalid argument (${detail})`, status);
    case NativeStatus.EUNRECOVERABLE:
      return new Rs8Error("RS8_UNRECOVERABLE", `${fn}: ${detail}`, status);
    case NativeStatus.EUNSUPPORTED:
      return new Rs8Error("RS8_UNSUPPORTED_KERNEL", `${fn}: kernel not supported on this machine (${detail})`, status);
    case NativeStatus.ENOMEM:
      return new Rs8Error("RS8_OUT_OF_MEMORY", `${fn}: out of memory`, status);
    default:
      return new Rs8Error("RS8_NATIVE_ERROR", `${fn}: native status ${status} (${detail})`, status);
  }
}

function invalid(message: string): Rs8Error {
  return new Rs8Error("RS8_INVALID_ARGUMENT", message);
}

function isCount(v: unknown, min: number, max: number): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= min && v <= max;
}

function kernelId(name: Rs8KernelName | undefined): number {
  const key = name ?? "auto";
  if (typeof key !== "string" || !Object.hasOwn(Rs8Kernel, key)) throw invalid(`unknown kernel ${String(name)}`);
  return Rs8Kernel[key];
}

/** The native library's rs8 entry points (one per library path). */
export class Rs8Library {
  readonly path: string;
  /** @internal */
  readonly sym: Rs8Symbols;
  private readonly lib: Library<typeof symbols>;

  private constructor(path: string) {
    this.path = path;
    this.lib = openSymbols(path, symbols);
    const abi = this.lib.symbols.neuron_abi_version();
    if (abi !== NEURON_ABI_VERSION) {
      this.lib.close();
      throw new NativeLibraryError(`native library ${path} has ABI version ${abi}; this build needs ${NEURON_ABI_VERSION}`);
    }
    this.sym = this.lib.symbols;
  }

  static open(loc: NativeLocation = {}): Rs8Library {
    return new Rs8Library(resolveNativePath(loc));
  }

  kernelAvailable(kernel: Rs8KernelName): boolean {
    return this.sym.neuron_rs8_kernel_available(kernelId(kernel)) === 1;
  }

  /** The kernels this machine runs (auto excluded), slowest first. */
  availableKernels(): Rs8KernelName[] {
    return (Object.keys(Rs8Kernel) as Rs8KernelName[]).filter((k) => k !== "auto" && this.kernelAvailable(k));
  }

  gfMul(a: number, b: number): number {
    return this.sym.neuron_rs8_gf_mul(a & 0xff, b & 0xff);
  }

  gfInv(a: number): number {
    return this.sym.neuron_rs8_gf_inv(a & 0xff);
  }

  kernelName(id: number): string {
    const p = this.sym.neuron_rs8_kernel_name(id);
    return p ? new CString(p).toString() : "unknown";
  }
}

let defaultLibrary: Rs8Library | undefined;

/** The library found by the standard search (ffi/native.ts), opened once. */
export function rs8Library(): Rs8Library {
  defaultLibrary ??= Rs8Library.open();
  return defaultLibrary;
}

export interface Rs8Options {
  kernel?: Rs8KernelName;
  library?: Rs8Library;
}

const destroyer = new FinalizationRegistry<{ lib: Rs8Library; handle: Pointer }>(({ lib, handle }) => {
  lib.sym.neuron_rs8_destroy(handle);
});

export class Rs8Codec implements Disposable {
  readonly dataShards: number;
  readonly parityShards: number;
  readonly totalShards: number;
  /** The kernel actually running (never "auto"). */
  readonly kernel: Rs8KernelName;
  private readonly lib: Rs8Library;
  private handle: Pointer | null;
  private readonly token = {};
  private readonly lostBuf = new Uint32Array(RS8_MAX_SHARDS);
  private readonly ptrBuf = new BigUint64Array(RS8_MAX_SHARDS);
  private readonly seen = new Uint8Array(RS8_MAX_SHARDS);

  private constructor(lib: Rs8Library, handle: Pointer, k: number, m: number) {
    this.lib = lib;
    this.handle = handle;
    this.dataShards = k;
    this.parityShards = m;
    this.totalShards = k + m;
    const id = lib.sym.neuron_rs8_kernel_of(handle);
    this.kernel = (Object.keys(Rs8Kernel) as Rs8KernelName[]).find((k) => Rs8Kernel[k] === id) ?? "portable";
    destroyer.register(this, { lib, handle }, this.token);
  }

  private static make(lib: Rs8Library, k: number, m: number, create: (out: Pointer) => number, what: string): Rs8Codec {
    const out = new BigUint64Array(1);
    const rc = create(ptr(out));
    if (rc !== 0) throw statusError(what, rc, `k=${k}, m=${m}`);
    const handle = read.ptr(ptr(out), 0) as Pointer;
    return new Rs8Codec(lib, handle, k, m);
  }

  /** A codec for k data + m parity shards with the Moonlight Cauchy matrix (k, m >= 1, k + m <= 255). */
  static create(dataShards: number, parityShards: number, opts: Rs8Options = {}): Rs8Codec {
    if (!isCount(dataShards, 1, RS8_MAX_SHARDS - 1) || !isCount(parityShards, 1, RS8_MAX_SHARDS - 1))
      throw invalid(`data and parity shard counts must be integers >= 1, got k=${dataShards}, m=${parityShards}`);
    if (dataShards + parityShards > RS8_MAX_SHARDS)
      throw invalid(`k + m must be at most ${RS8_MAX_SHARDS}, got ${dataShards} + ${parityShards}`);
    const lib = opts.library ?? rs8Library();
    const kernel = kernelId(opts.kernel);
    return Rs8Codec.make(
      lib,
      dataShards,
      parityShards,
      (out) => lib.sym.neuron_rs8_create(dataShards, parityShards, kernel, out),
      "neuron_rs8_create",
    );
  }

  /** The GameStream audio codec: 4 data + 2 parity, fixed matrix {77 40 38 0e / c7 a7 0d 6c}. */
  static audio(opts: Rs8Options = {}): Rs8Codec {
    const lib = opts.library ?? rs8Library();
    const kernel = kernelId(opts.kernel);
    return Rs8Codec.make(lib, 4, 2, (out) => lib.sym.neuron_rs8_create_audio(kernel, out), "neuron_rs8_create_audio");
  }

  private live(): Pointer {
    if (this.handle === null) throw new Rs8Error("RS8_CLOSED", "Rs8Codec is closed");
    return this.handle;
  }

  /** The m x k parity matrix, row-major (row j = parity shard j). */
  matrix(): Uint8Array {
    const out = new Uint8Array(this.parityShards * this.dataShards);
    const rc = this.lib.sym.neuron_rs8_matrix(this.live(), ptr(out), out.length);
    if (rc !== 0) throw statusError("neuron_rs8_matrix", rc, "matrix");
    return out;
  }

  private checkBlock(block: Uint8Array, shardSize: number, stride: number): void {
    if (!(block instanceof Uint8Array)) throw invalid("block must be a Uint8Array");
    if (!isCount(shardSize, 1, RS8_MAX_SHARD_SIZE))
      throw invalid(`shard size must be an integer in 1..${RS8_MAX_SHARD_SIZE}, got ${shardSize}`);
    if (!Number.isSafeInteger(stride) || stride < shardSize)
      throw invalid(`stride must be an integer >= shard size (${shardSize}), got ${stride}`);
    const need = (this.totalShards - 1) * stride + shardSize;
    if (block.length < need)
      throw invalid(`block holds ${block.length} bytes; ${this.totalShards} shards of ${shardSize} at stride ${stride} need ${need}`);
  }

  private loadLost(lost: ArrayLike<number>): number {
    if (lost === null || typeof lost !== "object" || typeof lost.length !== "number")
      throw invalid("lost must be an array of shard indices");
    const n = lost.length;
    if (n > this.totalShards) throw invalid(`${n} lost indices for a block of ${this.totalShards} shards`);
    const seen = this.seen;
    seen.fill(0, 0, this.totalShards);
    for (let i = 0; i < n; i++) {
      const v = lost[i];
      if (!isCount(v, 0, this.totalShards - 1))
        throw invalid(`lost shard index ${String(v)} is not an integer in 0..${this.totalShards - 1}`);
      if (seen[v]) throw invalid(`lost shard index ${v} is listed twice`);
      seen[v] = 1;
      this.lostBuf[i] = v;
    }
    if (n > this.parityShards)
      throw new Rs8Error(
        "RS8_UNRECOVERABLE",
        `${n} shards lost; a ${this.dataShards}+${this.parityShards} block recovers at most ${this.parityShards}`,
        NativeStatus.EUNRECOVERABLE,
      );
    return n;
  }

  /**
   * Computes the parity of the block in place: shard i at block[i * stride, i * stride + shardSize),
   * data shards first. stride defaults to shardSize (contiguous shards).
   */
  encodeBlock(block: Uint8Array, shardSize: number, stride: number = shardSize): void {
    const h = this.live();
    this.checkBlock(block, shardSize, stride);
    const rc = this.lib.sym.neuron_rs8_encode_block(h, ptr(block), stride, shardSize);
    if (rc !== 0) throw statusError("neuron_rs8_encode_block", rc, `shard size ${shardSize}, stride ${stride}`);
  }

  /** Rebuilds the shards listed in `lost` in place (at most m, each once, any order). */
  decodeBlock(block: Uint8Array, shardSize: number, lost: ArrayLike<number>, stride: number = shardSize): void {
    const h = this.live();
    this.checkBlock(block, shardSize, stride);
    const n = this.loadLost(lost);
    const rc = this.lib.sym.neuron_rs8_decode_block(h, ptr(block), stride, shardSize, ptr(this.lostBuf), n);
    if (rc !== 0) throw statusError("neuron_rs8_decode_block", rc, `${n} lost`);
  }

  private loadShards(shards: readonly Uint8Array[]): number {
    if (!Array.isArray(shards) || shards.length !== this.totalShards)
      throw invalid(`expected ${this.totalShards} shards, got ${Array.isArray(shards) ? shards.length : typeof shards}`);
    const first = shards[0];
    const size = first instanceof Uint8Array ? first.length : -1;
    if (!isCount(size, 1, RS8_MAX_SHARD_SIZE)) throw invalid(`shard size must be in 1..${RS8_MAX_SHARD_SIZE}`);
    for (let i = 0; i < shards.length; i++) {
      const s = shards[i];
      if (!(s instanceof Uint8Array) || s.length !== size)
        throw invalid(`shard ${i} must be a Uint8Array of ${size} bytes like shard 0`);
      this.ptrBuf[i] = BigInt(ptr(s));
    }
    return size;
  }

  /** Computes shards[k..k+m) from shards[0..k); all shards the same length. */
  encode(shards: readonly Uint8Array[]): void {
    const h = this.live();
    const size = this.loadShards(shards);
    const rc = this.lib.sym.neuron_rs8_encode(h, ptr(this.ptrBuf), this.totalShards, size);
    if (rc !== 0) throw statusError("neuron_rs8_encode", rc, `shard size ${size}`);
  }

  /** Rebuilds shards[i] for every i in `lost`, in place. */
  decode(shards: readonly Uint8Array[], lost: ArrayLike<number>): void {
    const h = this.live();
    const size = this.loadShards(shards);
    const n = this.loadLost(lost);
    const rc = this.lib.sym.neuron_rs8_decode(h, ptr(this.ptrBuf), this.totalShards, size, ptr(this.lostBuf), n);
    if (rc !== 0) throw statusError("neuron_rs8_decode", rc, `${n} lost`);
  }

  get closed(): boolean {
    return this.handle === null;
  }

  close(): void {
    if (this.handle === null) return;
    destroyer.unregister(this.token);
    this.lib.sym.neuron_rs8_destroy(this.handle);
    this.handle = null;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
