/**
 * File copy for data migration (native/migrate.h, neuron_copy_fd / neuron_digest_fd): one native
 * call per file reads the source (its data regions only), writes the non-zero 64 KiB blocks
 * (the target stays sparse), digests it (xxh128-z64k), reads the target back for the same
 * digest, and sets owner and timestamps. The work buffer and the stats record are owned here.
 */
import { FFIType, ptr, type FFIFunction } from "bun:ffi";
import { NativeModule, NativeStatus } from "./native.ts";

export const COPY_BLOCK = 65536;
export const COPY_VERIFY = 1;
export const COPY_TIMES = 2;
export const COPY_OWNER = 4;
/** neuron_copy_job.open_flags: open the source O_DIRECT. */
export const COPY_SRC_DIRECT = 1;
const STATS_BYTES = 96;

const symbols = {
  neuron_copy_fd: {
    args: [FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.u32, FFIType.ptr, "usize", FFIType.u32, FFIType.u32, FFIType.u32, FFIType.ptr],
    returns: FFIType.i32,
  },
  neuron_copy_batch: { args: [FFIType.ptr, "usize", FFIType.ptr, "usize", FFIType.ptr, FFIType.u32, FFIType.u32, FFIType.ptr, "usize"], returns: FFIType.i32 },
  neuron_digest_fd: { args: [FFIType.i32, FFIType.ptr, "usize", FFIType.ptr, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
  neuron_xattr_copy: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.ptr, "usize", FFIType.ptr, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
  neuron_xattr_set: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.u32, FFIType.ptr], returns: FFIType.i32 },
} as const satisfies Record<string, FFIFunction>;

export type CopyStage = "none" | "read" | "write" | "verify" | "meta";
const STAGES: CopyStage[] = ["none", "read", "write", "verify", "meta"];

export interface CopyResult {
  ok: boolean;
  size: number;
  readBytes: number;
  writtenBytes: number;
  /** xxh128-z64k (native/migrate.h) of the source as read, hex. */
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

export interface CopyJob {
  src: string;
  part: string;
  target: string;
  mode: number;
  owner?: { uid: number; gid: number } | null;
  /** Data regions; [] = all hole; undefined = SEEK_DATA/SEEK_HOLE. */
  regions?: [number, number][] | null;
  /** Read the source with O_DIRECT (a FUSE source: one copy less per byte). */
  direct?: boolean;
}

export interface CopyJobResult {
  status: number;
  ok: boolean;
  /** errno opening the source (unreadable), 0 if it opened. */
  openErrno: number;
  /** errno of link(2): EEXIST (17) when the target appeared meanwhile (nothing replaced). */
  linkErrno: number;
  digest: string;
  failedStage: CopyStage;
  errno: number;
  size: number;
}

const JOB_BYTES = 160;
/** NEURON_XATTR_MAX: the largest extended attribute value copied. */
export const XATTR_MAX = 65536;
const XATTR_STAGES = ["none", "read", "write", "verify"] as const;
export interface XattrResult {
  ok: boolean;
  size: number;
  stage: (typeof XATTR_STAGES)[number];
  errno: number;
}
const cstr = (s: string) => Buffer.from(s + "\0");
const NO_REGIONS = 0xffffffff;

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
      digest: status === NativeStatus.OK || v.getInt32(88, true) > 1 ? hex(this.stats.subarray(24, 40)) : "",
      verifyDigest: opts.verify && status === NativeStatus.OK ? hex(this.stats.subarray(56, 72)) : "",
      failedStage: STAGES[v.getInt32(88, true)] ?? "none",
      errno: v.getInt32(92, true),
    };
  }

  private batchBufs: Uint8Array | null = null;

  /**
   * Copies many files in one native call on `threads` threads: open, create the part file,
   * copy, verify, owner/times/mode, link to the target (never replacing it). The part names
   * are left for the caller to remove once recorded.
   */
  copyBatch(jobs: CopyJob[], threads = 2): CopyJobResult[] {
    if (!jobs.length) return [];
    const t = Math.max(1, Math.min(16, threads, jobs.length));
    const need = t * this.buf.length;
    if (!this.batchBufs || this.batchBufs.length < need) this.batchBufs = new Uint8Array(need);
    const enc = new TextEncoder();
    const parts: Uint8Array[] = [];
    let len = 0;
    const put = (s: string) => {
      const b = enc.encode(s + "\0");
      parts.push(b);
      const off = len;
      len += b.length;
      return off;
    };
    const regionList: number[] = [];
    const jb = new Uint8Array(jobs.length * JOB_BYTES);
    const v = new DataView(jb.buffer);
    jobs.forEach((j, i) => {
      const o = i * JOB_BYTES;
      v.setBigUint64(o, BigInt(put(j.src)), true);
      v.setBigUint64(o + 8, BigInt(put(j.part)), true);
      v.setBigUint64(o + 16, BigInt(put(j.target)), true);
      v.setBigUint64(o + 24, BigInt(regionList.length / 2), true);
      if (j.regions) {
        for (const [a, l] of j.regions) regionList.push(a, l);
        v.setUint32(o + 32, j.regions.length, true);
      } else v.setUint32(o + 32, NO_REGIONS, true);
      v.setUint32(o + 36, j.mode, true);
      v.setUint32(o + 40, j.owner ? j.owner.uid : NO_REGIONS, true);
      v.setUint32(o + 44, j.owner ? j.owner.gid : 0, true);
      v.setUint32(o + 156, j.direct ? COPY_SRC_DIRECT : 0, true);
    });
    const paths = new Uint8Array(len);
    let at = 0;
    for (const b of parts) {
      paths.set(b, at);
      at += b.length;
    }
    const regions = new BigUint64Array(Math.max(2, regionList.length));
    regionList.forEach((x, i) => (regions[i] = BigInt(x)));
    const rc = this.mod.sym.neuron_copy_batch(ptr(paths), paths.length, ptr(regions), regionList.length / 2, ptr(jb), jobs.length, t, ptr(this.batchBufs), this.buf.length);
    if (rc !== NativeStatus.OK) throw new Error(`neuron_copy_batch failed (status ${rc})`);
    return jobs.map((_, i) => {
      const o = i * JOB_BYTES;
      const status = v.getInt32(o + 144, true);
      return {
        status,
        ok: status === NativeStatus.OK,
        openErrno: v.getInt32(o + 148, true),
        linkErrno: v.getInt32(o + 152, true),
        digest: hex(jb.subarray(o + 48 + 24, o + 48 + 40)),
        failedStage: STAGES[v.getInt32(o + 48 + 88, true)] ?? "none",
        errno: v.getInt32(o + 48 + 92, true),
        size: Number(v.getBigUint64(o + 48, true)),
      };
    });
  }

  private xbuf: Uint8Array | null = null;
  private readonly xsize = new Uint32Array(1);
  private readonly xstage = new Int32Array(1);

  /**
   * Copies extended attribute srcName of src to a new one, dstName, of dst (never replacing
   * one), read back and compared. Links are not followed.
   */
  copyXattr(src: string, srcName: string, dst: string, dstName: string): XattrResult {
    this.xbuf ??= new Uint8Array(2 * XATTR_MAX);
    const status = this.mod.sym.neuron_xattr_copy(ptr(cstr(src)), ptr(cstr(srcName)), ptr(cstr(dst)), ptr(cstr(dstName)), ptr(this.xbuf), this.xbuf.length, ptr(this.xsize), ptr(this.xstage), ptr(this.errOut));
    if (status === NativeStatus.EINVAL) throw new RangeError("neuron_xattr_copy: bad arguments");
    return { ok: status === NativeStatus.OK, size: this.xsize[0]!, stage: XATTR_STAGES[this.xstage[0]!] ?? "none", errno: this.errOut[0]! };
  }

  /** Creates extended attribute name = value on path (never replacing one); the errno, 0 when set. */
  setXattr(path: string, name: string, value: Uint8Array): number {
    if (value.length > XATTR_MAX) throw new RangeError("extended attribute value too large");
    const status = this.mod.sym.neuron_xattr_set(ptr(cstr(path)), ptr(cstr(name)), ptr(value.length ? value : new Uint8Array(1)), value.length, ptr(this.errOut));
    if (status === NativeStatus.EINVAL) throw new RangeError("neuron_xattr_set: bad arguments");
    return status === NativeStatus.OK ? 0 : this.errOut[0]!;
  }

  /** xxh128-z64k of an open file; throws on a read error. */
  digest(fd: number): { digest: string; size: number } {
    const status = this.mod.sym.neuron_digest_fd(fd, ptr(this.buf), this.buf.length, ptr(this.digestOut), ptr(this.sizeOut), ptr(this.errOut));
    if (status !== NativeStatus.OK) throw Object.assign(new Error(`digest failed (status ${status}, errno ${this.errOut[0]})`), { errno: this.errOut[0] });
    return { digest: hex(this.digestOut.subarray(0, 16)), size: Number(this.sizeOut[0]) };
  }

  close(): void {
    this.mod.close();
  }
}
