/**
 * bun:ffi bindings of native/vsock.h: the NVF1 frame-export listener (AF_VSOCK or a unix
 * socket, one native thread) and the guest side's AF_VSOCK connect. Handles are owned by
 * the wrapper objects here.
 */
import { FFIType, ptr, type FFIFunction, type Pointer } from "bun:ffi";
import { CString } from "bun:ffi";
import { NativeCallError, NativeModule } from "./native.ts";
import { cstr, decodeReaderStats, outPtr, parseFrameInfo, type FrameInfo, type ReaderStats } from "./capture.ts";

const P = FFIType.ptr;
const symbols = {
  neuron_nvf_listen_unix: { args: [P, FFIType.u64, P], returns: FFIType.i32 },
  neuron_nvf_listen_vsock: { args: [FFIType.u32, FFIType.u64, P], returns: FFIType.i32 },
  neuron_nvf_last_error: { args: [], returns: P },
  neuron_nvf_reader_attach: { args: [P, FFIType.u32], returns: FFIType.i32 },
  neuron_nvf_reader_next_frame: { args: [P, FFIType.u32, P, FFIType.u64, P], returns: FFIType.i32 },
  neuron_nvf_reader_hello: { args: [P, P], returns: FFIType.void },
  neuron_nvf_reader_stats: { args: [P, P], returns: FFIType.void },
  neuron_nvf_reader_error: { args: [P, P, FFIType.u32], returns: FFIType.i32 },
  neuron_nvf_reader_close: { args: [P], returns: FFIType.void },
  neuron_nvf_connect_vsock: { args: [FFIType.u32, FFIType.u32, FFIType.u32], returns: FFIType.i32 },
} as const satisfies Record<string, FFIFunction>;

export const NVF_DEFAULT_PORT = 5900;
export const NvfCodec = { raw: 1, h264: 2 } as const;
/** FrameInfo.type of an H.264 access unit from the guest. */
export const FRAME_H264_AU = 0x100;
export const NVF_FLAG_KEYFRAME = 0x100;

export interface NvfHello {
  codec: "raw" | "h264";
  width: number;
  height: number;
  fps: number;
  maxPayload: number;
  connection: number;
  valid: boolean;
}

export class VsockNative extends NativeModule<typeof symbols> {
  constructor(path: string) {
    super(path, symbols);
  }

  lastError(): string {
    const p = this.sym.neuron_nvf_last_error();
    return p ? new CString(p).toString() : "";
  }

  /** Guest side: an AF_VSOCK socket connected to cid:port (the fd), or throws with the reason. */
  connectVsock(cid: number, port: number, timeoutMs: number): number {
    const fd = this.sym.neuron_nvf_connect_vsock(cid, port, timeoutMs);
    if (fd < 0) throw new NvfListenError(fd, this.lastError() || `vsock ${cid}:${port}: status ${fd}`);
    return fd;
  }
}

export class NvfListenError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "NvfListenError";
  }
}

/** The host listener: frames a guest exports are read with nextFrame (same shape as the other readers). */
export class NvfReader {
  private handle: Pointer | null;
  private readonly infoBuf = new Uint8Array(1120);
  private readonly statsBuf = new Uint8Array(64);
  private readonly helloBuf = new Uint8Array(32);
  private readonly errBuf = new Uint8Array(256);

  private constructor(
    private readonly n: VsockNative,
    handle: Pointer,
  ) {
    this.handle = handle;
  }

  static listenUnix(n: VsockNative, path: string, maxFrameBytes = 64 << 20): NvfReader {
    const cell = new BigUint64Array(1);
    const rc = n.sym.neuron_nvf_listen_unix(cstr(path), maxFrameBytes, ptr(cell));
    if (rc < 0) throw new NvfListenError(rc, n.lastError() || new NativeCallError("neuron_nvf_listen_unix", rc).message);
    return new NvfReader(n, outPtr(cell));
  }

  static listenVsock(n: VsockNative, port = NVF_DEFAULT_PORT, maxFrameBytes = 64 << 20): NvfReader {
    const cell = new BigUint64Array(1);
    const rc = n.sym.neuron_nvf_listen_vsock(port, maxFrameBytes, ptr(cell));
    if (rc < 0) throw new NvfListenError(rc, n.lastError() || new NativeCallError("neuron_nvf_listen_vsock", rc).message);
    return new NvfReader(n, outPtr(cell));
  }

  private h(): Pointer {
    if (this.handle === null) throw new Error("reader is closed");
    return this.handle;
  }

  /** The native listener, for the encode pipeline (CapturePipeline.startFromNvf) that borrows it. */
  get nativeHandle(): Pointer {
    return this.h();
  }

  attach(timeoutMs: number): number {
    return this.n.sym.neuron_nvf_reader_attach(this.h(), timeoutMs);
  }

  error(): string {
    const len = this.n.sym.neuron_nvf_reader_error(this.h(), ptr(this.errBuf), this.errBuf.length);
    return new TextDecoder().decode(this.errBuf.subarray(0, Math.max(0, len)));
  }

  hello(): NvfHello {
    this.n.sym.neuron_nvf_reader_hello(this.h(), ptr(this.helloBuf));
    const v = new DataView(this.helloBuf.buffer);
    const u = (o: number) => v.getUint32(o, true);
    return {
      codec: u(0) === NvfCodec.h264 ? "h264" : "raw",
      width: u(4),
      height: u(8),
      fps: u(12),
      maxPayload: u(16),
      connection: u(20),
      valid: u(24) === 1,
    };
  }

  /** Same result shape as KvmfrReader.nextFrame; the guest's timestamp in microseconds. */
  nextFrame(dst: Uint8Array, timeoutMs: number): {
    event: "frame" | "timeout" | "restarted" | "rejected" | "too-small" | "error";
    info: FrameInfo | null;
    timestampUs: number;
    status: number;
  } {
    const rc = this.n.sym.neuron_nvf_reader_next_frame(this.h(), timeoutMs, ptr(dst), dst.length, ptr(this.infoBuf));
    const v = new DataView(this.infoBuf.buffer);
    const ts = () => v.getUint32(1104, true) + v.getUint32(1108, true) * 2 ** 32;
    if (rc === -5) return { event: "too-small", info: parseFrameInfo(this.infoBuf), timestampUs: 0, status: rc };
    if (rc < 0) return { event: "error", info: null, timestampUs: 0, status: rc };
    if (rc === 0) return { event: "frame", info: parseFrameInfo(this.infoBuf), timestampUs: ts(), status: rc };
    return { event: rc === 2 ? "restarted" : rc === 3 ? "rejected" : "timeout", info: null, timestampUs: 0, status: rc };
  }

  stats(): ReaderStats {
    this.n.sym.neuron_nvf_reader_stats(this.h(), ptr(this.statsBuf));
    return decodeReaderStats(this.statsBuf);
  }

  close(): void {
    if (this.handle !== null) this.n.sym.neuron_nvf_reader_close(this.handle);
    this.handle = null;
  }
}
