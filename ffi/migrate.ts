/**
 * File copy for data migration (native/migrate.h, neuron_copy_fd / neuron_digest_fd): one native
 * call per file reads the source (its data regions only), writes the non-zero 64 KiB blocks
 * (the target stays sparse), digests it (sha256-z64k), reads the target back for the same
 * digest, and sets owner and timestamps. The work buffer and the stats record are owned here.
 */
import { FFIType, ptr, type FFIFunction } from "bun:ffi";
import { NativeModule, NativeStatus } from "./native.ts";

export const COPY_BLOCK = 65536;
export const COPY_VERIFY = 1;
export const COPY_TIMES = 2;
export const COPY_OWNER = 4;
const STATS_BYTES = 96;

const symbols = {
  neuron_copy_fd: {
    args: [FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.u32, FFIType.ptr, "usize", FFIType.u32, FFIType.u32, FFIType.u32, FFIType.ptr],
    returns: FFIType.i32,
  },
  neuron_digest_fd: { args: [FFIType.i32, FFIType.ptr, "usize", FFIType.ptr, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
} as const satisfies Record<string, FFIFunction>;

export type CopyStage = "none" | "read" | "write" | "verify" | "meta";
const STAGES: CopyStage[] = ["none", "read", "write", "verify", "meta"];

export interface CopyResult {
  ok: boolean;
  size: number;
  readBytes: number;
  writtenBytes: number;
  /** sha256-z64k of the source as read, hex. */
  digest: string;
  /** The same of the target read back (empty without verify). */
  verifyDigest: string;
  failedStage: CopyStage;
  errno: number;
  status: number;
}

export interface CopyOptions {
  verify?: boolean;
  times?: boolean;
  owner?: { uid: number; gid: number };
  /** Data regions of the source, [offset, length] ascending; default: SEEK_DATA/SEEK_HOLE. */
  regions?: [number, number][];
}

const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");

export class NativeCopier {
  private readonly mod: NativeModule<typeof symbols>;
  private readonly buf: Uint8Array;
  private readonly stats = new Uint8Array(STATS_BYTES);
  private readonly view = new DataView(this.stats.buffer);
  private readonly digestOut = new Uint8Array(32);
  private readonly sizeOut = new BigUint64Array(1);
  private readonly errOut = new Int32Array(1);
  private readonly none = new BigUint64Array(2);

  constructor(libPath: string, bufferBytes = 1 << 20) {
    if (bufferBytes % COPY_BLOCK || bufferBytes < COPY_BLOCK) throw new RangeError("buffer must be a multiple of 64 KiB");
    this.mod = new NativeModule(libPath, symbols);
    this.buf = new Uint8Array(bufferBytes);
  }

  copy(srcFd: number, dstFd: number, opts: CopyOptions = {}): CopyResult {
    const flags = (opts.verify ? COPY_VERIFY : 0) | (opts.times ? COPY_TIMES : 0) | (opts.owner ? COPY_OWNER : 0);
    let regions = this.none;
    let count = 0;
    if (opts.regions) {
      regions = new BigUint64Array(Math.max(2, opts.regions.length * 2));
      opts.regions.forEach(([o, l], i) => {
        regions[2 * i] = BigInt(o);
        regions[2 * i + 1] = BigInt(l);
      });
      count = opts.regions.length;
    }
    const status = this.mod.sym.neuron_copy_fd(srcFd, dstFd, ptr(regions), count, ptr(this.buf), this.buf.length, flags, opts.owner?.uid ?? 0, opts.owner?.gid ?? 0, ptr(this.stats));
    const v = this.view;
    return {
      ok: status === NativeStatus.OK,
      status,
      size: Number(v.getBigUint64(0, true)),
      readBytes: Number(v.getBigUint64(8, true)),
      writtenBytes: Number(v.getBigUint64(16, true)),
      digest: status === NativeStatus.OK || v.getInt32(88, true) > 1 ? hex(this.stats.subarray(24, 56)) : "",
      verifyDigest: opts.verify && status === NativeStatus.OK ? hex(this.stats.subarray(56, 88)) : "",
      failedStage: STAGES[v.getInt32(88, true)] ?? "none",
      errno: v.getInt32(92, true),
    };
  }

  /** sha256-z64k of an open file; throws on a read error. */
  digest(fd: number): { digest: string; size: number } {
    const status = this.mod.sym.neuron_digest_fd(fd, ptr(this.buf), this.buf.length, ptr(this.digestOut), ptr(this.sizeOut), ptr(this.errOut));
    if (status !== NativeStatus.OK) throw Object.assign(new Error(`digest failed (status ${status}, errno ${this.errOut[0]})`), { errno: this.errOut[0] });
    return { digest: hex(this.digestOut), size: Number(this.sizeOut[0]) };
  }

  close(): void {
    this.mod.close();
  }
}
