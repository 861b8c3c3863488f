/**
 * bun:ffi bindings of native/framebuf.h: the NFB1 triple-buffered frame region
 * (reader and test producer). Handles are owned by the wrapper objects.
 */
import { CString, FFIType, ptr, type FFIFunction, type Pointer } from "bun:ffi";
import { NativeModule } from "./native.ts";
import { check, cstr, decodeReaderStats, outPtr, parseFrameInfo, type CursorInfo, type FrameInfo, type ProducerOptions, type ReaderStats, Fault } from "./capture.ts";

const P = FFIType.ptr;
const symbols = {
  neuron_fb_reader_open: { args: [P, FFIType.u64, P], returns: FFIType.i32 },
  neuron_fb_reader_attach: { args: [P, FFIType.u32], returns: FFIType.i32 },
  neuron_fb_reader_next_frame: { args: [P, FFIType.u32, P, FFIType.u64, P], returns: FFIType.i32 },
  neuron_fb_reader_cursor: { args: [P, P, P, FFIType.u64], returns: FFIType.i64 },
  neuron_fb_reader_audio: { args: [P, P, FFIType.u64, P], returns: FFIType.i64 },
  neuron_fb_reader_stats: { args: [P, P], returns: FFIType.void },
  neuron_fb_reader_error: { args: [P], returns: P },
  neuron_fb_reader_close: { args: [P], returns: FFIType.void },
  neuron_fb_producer_start: { args: [P, P, P], returns: FFIType.i32 },
  neuron_fb_producer_frames: { args: [P], returns: FFIType.u64 },
  neuron_fb_producer_stop: { args: [P], returns: FFIType.void },
} as const satisfies Record<string, FFIFunction>;

export class FramebufNative extends NativeModule<typeof symbols> {
  constructor(path: string) {
    super(path, symbols);
  }
}

export class NfbReader {
  private handle: Pointer | null;
  private readonly infoBuf = new Uint8Array(1120);
  private readonly cursorBuf = new Uint8Array(32);
  private readonly statsBuf = new Uint8Array(64);
  private readonly overrunBuf = new Uint32Array(1);

  private constructor(
    private readonly n: FramebufNative,
    handle: Pointer,
  ) {
    this.handle = handle;
  }

  static open(n: FramebufNative, path: string, size = 0): NfbReader {
    const cell = new BigUint64Array(1);
    check("neuron_fb_reader_open", n.sym.neuron_fb_reader_open(cstr(path), size, ptr(cell)));
    return new NfbReader(n, outPtr(cell));
  }

  private h(): Pointer {
    if (this.handle === null) throw new Error("reader is closed");
    return this.handle;
  }

  attach(timeoutMs: number): number {
    return this.n.sym.neuron_fb_reader_attach(this.h(), timeoutMs);
  }

  error(): string {
    const p = this.n.sym.neuron_fb_reader_error(this.h());
    return p ? new CString(p).toString() : "";
  }

  /** Same result shape as KvmfrReader.nextFrame. */
  nextFrame(dst: Uint8Array, timeoutMs: number): { event: "frame" | "timeout" | "restarted" | "too-small" | "error"; info: FrameInfo | null; status: number } {
    const rc = this.n.sym.neuron_fb_reader_next_frame(this.h(), timeoutMs, ptr(dst), dst.length, ptr(this.infoBuf));
    if (rc === -5) return { event: "too-small", info: parseFrameInfo(this.infoBuf), status: rc };
    if (rc < 0) return { event: "error", info: null, status: rc };
    if (rc === 0) return { event: "frame", info: parseFrameInfo(this.infoBuf), status: rc };
    return { event: rc === 2 ? "restarted" : "timeout", info: null, status: rc };
  }

  cursor(): CursorInfo {
    const rc = Number(this.n.sym.neuron_fb_reader_cursor(this.h(), ptr(this.cursorBuf), null, 0));
    check("neuron_fb_reader_cursor", rc);
    const v = new DataView(this.cursorBuf.buffer);
    return {
      x: v.getInt32(0, true),
      y: v.getInt32(4, true),
      visible: v.getUint32(8, true) === 1,
      shapeSerial: v.getUint32(12, true),
      shapeWidth: v.getUint32(16, true),
      shapeHeight: v.getUint32(20, true),
      shapeType: v.getUint32(24, true),
      updates: v.getUint32(28, true),
    };
  }

  /** PCM (s16le, interleaved) written since the last call. */
  audio(dst: Uint8Array): { bytes: number; overrun: boolean } {
    const rc = Number(this.n.sym.neuron_fb_reader_audio(this.h(), ptr(dst), dst.length, ptr(this.overrunBuf)));
    check("neuron_fb_reader_audio", rc);
    return { bytes: rc, overrun: this.overrunBuf[0] === 1 };
  }

  stats(): ReaderStats {
    this.n.sym.neuron_fb_reader_stats(this.h(), ptr(this.statsBuf));
    return decodeReaderStats(this.statsBuf);
  }

  close(): void {
    if (this.handle !== null) this.n.sym.neuron_fb_reader_close(this.handle);
    this.handle = null;
  }
}

export class NfbProducer {
  private handle: Pointer | null;
  private constructor(
    private readonly n: FramebufNative,
    handle: Pointer,
  ) {
    this.handle = handle;
  }

  static start(n: FramebufNative, path: string, o: ProducerOptions): NfbProducer {
    const cfg = new Uint8Array(32);
    const v = new DataView(cfg.buffer);
    v.setUint32(0, o.width, true);
    v.setUint32(4, o.height, true);
    v.setUint32(8, o.fps, true);
    v.setUint32(12, Fault[o.fault ?? "none"], true);
    v.setUint32(16, o.faultAfter ?? 0, true);
    v.setUint32(20, o.sessionId ?? 0, true);
    v.setUint32(24, o.maxFrames ?? 0, true);
    const cell = new BigUint64Array(1);
    check("neuron_fb_producer_start", n.sym.neuron_fb_producer_start(cstr(path), ptr(cfg), ptr(cell)));
    return new NfbProducer(n, outPtr(cell));
  }

  get frames(): number {
    return this.handle === null ? 0 : Number(this.n.sym.neuron_fb_producer_frames(this.handle));
  }

  stop(): void {
    if (this.handle !== null) this.n.sym.neuron_fb_producer_stop(this.handle);
    this.handle = null;
  }
}
