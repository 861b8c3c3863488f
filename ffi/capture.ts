/**
 * bun:ffi bindings of native/capture.h (LGMP/KVMFR reader, synthetic producer)
 * and native/encode.h (encoder, capture → encode pipeline). Every native
 * handle is owned by one wrapper object here and freed by its close()/stop().
 * Structs cross the boundary as caller-owned byte buffers read with DataView.
 */
import { CString, FFIType, ptr, read, type FFIFunction, type Library, type Pointer } from "bun:ffi";
import { NativeCallError, NativeModule } from "./native.ts";

const P = FFIType.ptr;
const symbols = {
  neuron_kvmfr_reader_open: { args: [P, FFIType.u64, P], returns: FFIType.i32 },
  neuron_kvmfr_reader_close: { args: [P], returns: FFIType.void },
  neuron_kvmfr_reader_attach: { args: [P, FFIType.u32], returns: FFIType.i32 },
  neuron_kvmfr_reader_next_frame: { args: [P, FFIType.u32, FFIType.u32, P, FFIType.u64, P], returns: FFIType.i32 },
  neuron_kvmfr_reader_cursor: { args: [P, P, P, FFIType.u64], returns: FFIType.i64 },
  neuron_kvmfr_reader_stats: { args: [P, P], returns: FFIType.void },
  neuron_kvmfr_reader_error: { args: [P], returns: P },
  neuron_kvmfr_region_size: { args: [FFIType.u32, FFIType.u32], returns: FFIType.u64 },
  neuron_producer_start: { args: [P, FFIType.u64, P, P], returns: FFIType.i32 },
  neuron_producer_frames: { args: [P], returns: FFIType.u64 },
  neuron_producer_stop: { args: [P], returns: FFIType.void },
  neuron_testpattern_fill: { args: [P, FFIType.u32, FFIType.u32, FFIType.u32, FFIType.u32], returns: FFIType.void },
  neuron_testpattern_counter: { args: [P, FFIType.u32, FFIType.u32, FFIType.u32], returns: FFIType.u32 },
  neuron_checksum64: { args: [P, FFIType.u64], returns: FFIType.u64 },
  neuron_encoder_open: { args: [P, P], returns: FFIType.i32 },
  neuron_encoder_name: { args: [P], returns: P },
  neuron_encoder_probe_report: { args: [P], returns: P },
  neuron_encoder_encode: { args: [P, P, FFIType.u32, FFIType.u32, P, FFIType.u64, P], returns: FFIType.i64 },
  neuron_encoder_set_bitrate: { args: [P, FFIType.u32], returns: FFIType.i32 },
  neuron_encoder_close: { args: [P], returns: FFIType.void },
  neuron_pipeline_start: { args: [P, P, P], returns: FFIType.i32 },
  neuron_pipeline_start_pw: { args: [P, P, P], returns: FFIType.i32 },
  neuron_pipeline_start_nvf: { args: [P, P, P], returns: FFIType.i32 },
  neuron_pipeline_poll: { args: [P, P, FFIType.u64, P], returns: FFIType.i64 },
  neuron_pipeline_wait: { args: [P, FFIType.u32], returns: FFIType.i32 },
  neuron_pipeline_request_idr: { args: [P], returns: FFIType.void },
  neuron_pipeline_set_bitrate: { args: [P, FFIType.u32], returns: FFIType.i32 },
  neuron_pipeline_stats_get: { args: [P, P], returns: FFIType.void },
  neuron_pipeline_encoder_report: { args: [P, P, FFIType.u32], returns: FFIType.i32 },
  neuron_pipeline_stop: { args: [P], returns: FFIType.void },
  neuron_pipeline_timings: { args: [P, P, FFIType.u32], returns: FFIType.u32 },
  neuron_encoder_speed_start: { args: [P, FFIType.u32, FFIType.u32, P], returns: FFIType.i32 },
  neuron_encoder_speed_get: { args: [P, P], returns: FFIType.void },
  neuron_encoder_speed_report: { args: [P, P, FFIType.u32], returns: FFIType.i32 },
  neuron_encoder_speed_free: { args: [P], returns: FFIType.void },
} as const satisfies Record<string, FFIFunction>;

type Syms = Library<typeof symbols>["symbols"];

export const CaptureEvent = { FRAME: 0, TIMEOUT: 1, RESTARTED: 2, REJECTED: 3 } as const;
export type CaptureEventName = "frame" | "timeout" | "restarted" | "rejected";
const EVENT_NAMES: CaptureEventName[] = ["frame", "timeout", "restarted", "rejected"];

export const Fault = {
  none: 0,
  stallHeartbeat: 1,
  newSession: 2,
  wrongVersion: 3,
  truncated: 4,
  slowWp: 5,
  hostile: 6,
  b6: 7,
} as const;
export type FaultName = keyof typeof Fault;

export const FrameType = { BGRA: 1, RGBA: 2, RGBA10: 3, RGBA16F: 4, BGR_32: 5, RGB_24: 6 } as const;
export const Codec = { h264: 0, hevc: 1 } as const;
export type CodecName = keyof typeof Codec;

export interface FrameInfo {
  formatVer: number;
  frameSerial: number;
  type: number;
  screenWidth: number;
  screenHeight: number;
  dataWidth: number;
  dataHeight: number;
  frameWidth: number;
  frameHeight: number;
  rotation: number;
  outPitch: number;
  flags: number;
  sessionId: number;
  damage: { x: number; y: number; w: number; h: number }[];
  bytes: number;
  copyNs: number;
  readTimeNs: bigint;
}

export interface CursorInfo {
  x: number;
  y: number;
  visible: boolean;
  shapeSerial: number;
  shapeWidth: number;
  shapeHeight: number;
  shapeType: number;
  updates: number;
}

export interface ReaderStats {
  frames: number;
  rejected: number;
  resubscribes: number;
  restarts: number;
  wpTimeouts: number;
  cursorUpdates: number;
  sessionId: number;
  lgmpVersion: number;
  kvmfrVersion: number;
  attached: boolean;
}

export interface AccessUnitInfo {
  frameIndex: number;
  captureNs: bigint;
  doneNs: bigint;
  size: number;
  idr: boolean;
  copyUs: number;
  convertUs: number;
  encodeUs: number;
  frameSerial: number;
  width: number;
  height: number;
}

/** Where one frame's time went inside the pipeline (native/encode.h neuron_pipeline_timing). */
export interface PipelineTiming {
  frameSerial: number;
  /** Seen → last row readable, not converting: waiting on the guest's writes. */
  waitUs: number;
  convertUs: number;
  encodeUs: number;
  /** Seen → access unit in the ring. */
  encodedUs: number;
  size: number;
  idr: boolean;
}

export interface PipelineStats {
  framesIn: number;
  ausOut: number;
  dropped: number;
  rejected: number;
  restarts: number;
  lastError: number;
  running: boolean;
  width: number;
  height: number;
  idrRequests: number;
}

export interface ProducerOptions {
  width: number;
  height: number;
  fps: number;
  fault?: FaultName;
  faultAfter?: number;
  sessionId?: number;
  maxFrames?: number;
}

export interface EncoderOptions {
  codec: CodecName;
  width: number;
  height: number;
  fps: number;
  bitrateKbps: number;
  threads: number;
  intraRefresh?: boolean;
  inputFormat?: "bgra" | "rgba";
  /** A libavcodec encoder name to use without fallback; omitted = probe. */
  encoder?: string;
}

export interface PipelineOptions extends Omit<EncoderOptions, "width" | "height" | "inputFormat"> {
  ringSlots?: number;
  slotBytes?: number;
  frameTimeoutMs?: number;
  wpTimeoutMs?: number;
}

export const cstr = (s: string) => Buffer.from(s + "\0", "utf8");
const num = (v: number | bigint) => Number(v);

export function check(fn: string, rc: number): void {
  if (rc < 0) throw new NativeCallError(fn, rc);
}

/** Reads the pointer written into an out-parameter cell. */
export function outPtr(cell: BigUint64Array): Pointer {
  return read.ptr(ptr(cell), 0) as Pointer;
}

export function parseFrameInfo(b: Uint8Array): FrameInfo {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const u = (o: number) => v.getUint32(o, true);
  const damage: FrameInfo["damage"] = [];
  const count = Math.min(u(52), 64);
  for (let i = 0; i < count; i++)
    damage.push({ x: u(80 + i * 16), y: u(84 + i * 16), w: u(88 + i * 16), h: u(92 + i * 16) });
  return {
    formatVer: u(0),
    frameSerial: u(4),
    type: u(8),
    screenWidth: u(12),
    screenHeight: u(16),
    dataWidth: u(20),
    dataHeight: u(24),
    frameWidth: u(28),
    frameHeight: u(32),
    rotation: u(36),
    outPitch: u(40),
    flags: u(44),
    sessionId: u(48),
    damage,
    bytes: Number(v.getBigUint64(56, true)),
    copyNs: Number(v.getBigUint64(64, true)),
    readTimeNs: v.getBigUint64(72, true),
  };
}

export function parseAuInfo(b: Uint8Array): AccessUnitInfo {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const u = (o: number) => v.getUint32(o, true);
  return {
    frameIndex: Number(v.getBigUint64(0, true)),
    captureNs: v.getBigUint64(8, true),
    doneNs: v.getBigUint64(16, true),
    size: u(24),
    idr: u(28) === 1,
    copyUs: u(32),
    convertUs: u(36),
    encodeUs: u(40),
    frameSerial: u(44),
    width: u(48),
    height: u(52),
  };
}

function encoderConfig(o: EncoderOptions, buf = new Uint8Array(64)): Uint8Array {
  const v = new DataView(buf.buffer, buf.byteOffset, 64);
  v.setUint32(0, Codec[o.codec], true);
  v.setUint32(4, o.width, true);
  v.setUint32(8, o.height, true);
  v.setUint32(12, o.fps, true);
  v.setUint32(16, o.bitrateKbps, true);
  v.setUint32(20, o.threads, true);
  v.setUint32(24, o.intraRefresh ? 1 : 0, true);
  v.setUint32(28, o.inputFormat === "rgba" ? FrameType.RGBA : FrameType.BGRA, true);
  const name = Buffer.from(o.encoder ?? "", "utf8");
  if (name.length > 31) throw new NativeCallError("neuron_encoder_open", -1);
  buf.set(name, 32);
  return buf;
}

/** The capture/encode part of libneuron, opened from the library at `path`. */
export class CaptureNative extends NativeModule<typeof symbols> {
  constructor(path: string) {
    super(path, symbols);
  }

  regionSize(width: number, height: number): number {
    return num(this.sym.neuron_kvmfr_region_size(width, height));
  }

  testpatternFill(dst: Uint8Array, width: number, height: number, pitch: number, counter: number): void {
    if (dst.length < pitch * height || pitch < width * 4) throw new RangeError("test pattern buffer too small");
    this.sym.neuron_testpattern_fill(ptr(dst), width, height, pitch, counter >>> 0);
  }

  testpatternCounter(src: Uint8Array, width: number, height: number, pitch: number): number {
    if (src.length < pitch * height) throw new RangeError("frame buffer too small");
    return this.sym.neuron_testpattern_counter(ptr(src), width, height, pitch);
  }

  checksum(data: Uint8Array, length = data.length): bigint {
    if (length > data.length) throw new RangeError("checksum length past the buffer");
    return BigInt(this.sym.neuron_checksum64(ptr(data), length));
  }
}

/** The 64-byte reader statistics record both readers fill (native/capture.h, native/framebuf.h). */
export function decodeReaderStats(buf: Uint8Array): ReaderStats {
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const q = (o: number) => Number(v.getBigUint64(o, true));
  return {
    frames: q(0),
    rejected: q(8),
    resubscribes: q(16),
    restarts: q(24),
    wpTimeouts: q(32),
    cursorUpdates: q(40),
    sessionId: v.getUint32(48, true),
    lgmpVersion: v.getUint32(52, true),
    kvmfrVersion: v.getUint32(56, true),
    attached: v.getUint32(60, true) === 1,
  };
}

/** Reader of an LGMP/KVMFR region (a /dev/shm file, /dev/kvmfr0, /proc/self/fd/N). */
export class KvmfrReader {
  private handle: Pointer | null;
  private readonly infoBuf = new Uint8Array(1120);
  private readonly cursorBuf = new Uint8Array(32);
  private readonly statsBuf = new Uint8Array(64);

  private constructor(
    private readonly n: CaptureNative,
    handle: Pointer,
  ) {
    this.handle = handle;
  }

  static open(n: CaptureNative, path: string, size = 0): KvmfrReader {
    const cell = new BigUint64Array(1);
    check("neuron_kvmfr_reader_open", n.sym.neuron_kvmfr_reader_open(cstr(path), size, ptr(cell)));
    return new KvmfrReader(n, outPtr(cell));
  }

  private h(): Pointer {
    if (this.handle === null) throw new Error("reader is closed");
    return this.handle;
  }

  /** Last error text of the reader (names both versions on a mismatch). */
  error(): string {
    const p = this.n.sym.neuron_kvmfr_reader_error(this.h());
    return p ? new CString(p).toString() : "";
  }

  /** Attach; returns the native status (0 ok, negative on failure, see error()). */
  attach(timeoutMs: number): number {
    return this.n.sym.neuron_kvmfr_reader_attach(this.h(), timeoutMs);
  }

  /** Next frame into dst. A negative status throws unless it is ERANGE (info.bytes = needed). */
  nextFrame(
    dst: Uint8Array,
    timeoutMs: number,
    wpTimeoutMs = 100,
  ): { event: CaptureEventName | "too-small" | "error"; info: FrameInfo | null; status: number } {
    const rc = this.n.sym.neuron_kvmfr_reader_next_frame(
      this.h(),
      timeoutMs,
      wpTimeoutMs,
      ptr(dst),
      dst.length,
      ptr(this.infoBuf),
    );
    if (rc === -5) return { event: "too-small", info: parseFrameInfo(this.infoBuf), status: rc };
    if (rc < 0) return { event: "error", info: null, status: rc };
    const event = EVENT_NAMES[rc] ?? "timeout";
    return { event, info: event === "frame" ? parseFrameInfo(this.infoBuf) : null, status: rc };
  }

  cursor(shape?: Uint8Array): { info: CursorInfo; shapeBytes: number } {
    const rc = num(
      this.n.sym.neuron_kvmfr_reader_cursor(
        this.h(),
        ptr(this.cursorBuf),
        shape ? ptr(shape) : null,
        shape ? shape.length : 0,
      ),
    );
    check("neuron_kvmfr_reader_cursor", rc);
    const v = new DataView(this.cursorBuf.buffer);
    return {
      info: {
        x: v.getInt32(0, true),
        y: v.getInt32(4, true),
        visible: v.getUint32(8, true) === 1,
        shapeSerial: v.getUint32(12, true),
        shapeWidth: v.getUint32(16, true),
        shapeHeight: v.getUint32(20, true),
        shapeType: v.getUint32(24, true),
        updates: v.getUint32(28, true),
      },
      shapeBytes: rc,
    };
  }

  stats(): ReaderStats {
    this.n.sym.neuron_kvmfr_reader_stats(this.h(), ptr(this.statsBuf));
    return decodeReaderStats(this.statsBuf);
  }

  close(): void {
    if (this.handle !== null) this.n.sym.neuron_kvmfr_reader_close(this.handle);
    this.handle = null;
  }
}

/** The synthetic guest-side producer, in a native thread of this process. */
export class SyntheticProducer {
  private handle: Pointer | null;

  private constructor(
    private readonly n: CaptureNative,
    handle: Pointer,
  ) {
    this.handle = handle;
  }

  static start(n: CaptureNative, path: string, o: ProducerOptions, size = 0): SyntheticProducer {
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
    check("neuron_producer_start", n.sym.neuron_producer_start(cstr(path), size, ptr(cfg), ptr(cell)));
    return new SyntheticProducer(n, outPtr(cell));
  }

  get frames(): number {
    return this.handle === null ? 0 : num(this.n.sym.neuron_producer_frames(this.handle));
  }

  stop(): void {
    if (this.handle !== null) this.n.sym.neuron_producer_stop(this.handle);
    this.handle = null;
  }
}

/** One libavcodec encoder (chosen by probing unless named). */
export class VideoEncoder {
  private handle: Pointer | null;
  private readonly infoBuf = new Uint8Array(64);
  readonly name: string;
  readonly report: string;

  private constructor(
    private readonly n: CaptureNative,
    handle: Pointer,
  ) {
    this.handle = handle;
    this.name = new CString(n.sym.neuron_encoder_name(handle)!).toString();
    this.report = new CString(n.sym.neuron_encoder_probe_report(handle)!).toString();
  }

  /** Opens an encoder; on failure throws EncoderUnavailableError with the probe report. */
  static open(n: CaptureNative, o: EncoderOptions): VideoEncoder {
    const cell = new BigUint64Array(1);
    const rc = n.sym.neuron_encoder_open(ptr(encoderConfig(o)), ptr(cell));
    if (rc < 0) {
      const report = rc === -8 ? new CString(n.sym.neuron_encoder_probe_report(null)!).toString() : "";
      throw new EncoderUnavailableError(rc, report);
    }
    return new VideoEncoder(n, outPtr(cell));
  }

  /** Encodes one frame of the configured input format; returns the AU size (bytes in out). */
  encode(src: Uint8Array, pitch: number, forceIdr: boolean, out: Uint8Array): AccessUnitInfo {
    if (this.handle === null) throw new Error("encoder is closed");
    const rc = num(
      this.n.sym.neuron_encoder_encode(this.handle, ptr(src), pitch, forceIdr ? 1 : 0, ptr(out), out.length, ptr(this.infoBuf)),
    );
    check("neuron_encoder_encode", rc);
    return parseAuInfo(this.infoBuf);
  }

  setBitrate(kbps: number): void {
    if (this.handle === null) throw new Error("encoder is closed");
    check("neuron_encoder_set_bitrate", this.n.sym.neuron_encoder_set_bitrate(this.handle, kbps));
  }

  close(): void {
    if (this.handle !== null) this.n.sym.neuron_encoder_close(this.handle);
    this.handle = null;
  }
}

export class EncoderUnavailableError extends Error {
  readonly errorCode = "ENCODER_UNAVAILABLE";
  constructor(
    readonly status: number,
    readonly report: string,
  ) {
    super(status === -8 ? `no encoder could be opened:\n${report.trimEnd()}` : `encoder options rejected (status ${status})`);
    this.name = "EncoderUnavailableError";
  }
}

const TIMING_RECORDS = 1024;

/** Native capture → convert → encode thread with a ring of access units that JS polls. */
export class CapturePipeline {
  private handle: Pointer | null;
  private readonly infoBuf = new Uint8Array(64);
  private readonly statsBuf = new Uint8Array(64);
  private readonly timingBuf = new Uint8Array(TIMING_RECORDS * 32);

  private constructor(
    private readonly n: CaptureNative,
    handle: Pointer,
  ) {
    this.handle = handle;
  }

  private static config(o: PipelineOptions): Uint8Array {
    const cfg = new Uint8Array(80);
    encoderConfig({ ...o, width: 0, height: 0, inputFormat: "bgra" }, cfg);
    const v = new DataView(cfg.buffer);
    v.setUint32(64, o.ringSlots ?? 16, true);
    v.setUint32(68, o.slotBytes ?? 0, true);
    v.setUint32(72, o.frameTimeoutMs ?? 50, true);
    v.setUint32(76, o.wpTimeoutMs ?? 100, true);
    return cfg;
  }

  static start(n: CaptureNative, path: string, o: PipelineOptions): CapturePipeline {
    const cell = new BigUint64Array(1);
    check("neuron_pipeline_start", n.sym.neuron_pipeline_start(cstr(path), ptr(CapturePipeline.config(o)), ptr(cell)));
    return new CapturePipeline(n, outPtr(cell));
  }

  /** The same pipeline over an NVF1 listener (ffi/vsock.ts NvfReader: vsock or unix-socket frames), which it borrows: stop this first. */
  static startFromNvf(n: CaptureNative, reader: Pointer, o: PipelineOptions): CapturePipeline {
    const cell = new BigUint64Array(1);
    check("neuron_pipeline_start_nvf", n.sym.neuron_pipeline_start_nvf(reader, ptr(CapturePipeline.config(o)), ptr(cell)));
    return new CapturePipeline(n, outPtr(cell));
  }

  /** The same pipeline over a host virtual output's PipeWire stream (ffi/hostout.ts PwVideoStream), which it borrows: stop this first. */
  static startFromStream(n: CaptureNative, stream: Pointer, o: PipelineOptions): CapturePipeline {
    const cell = new BigUint64Array(1);
    check("neuron_pipeline_start_pw", n.sym.neuron_pipeline_start_pw(stream, ptr(CapturePipeline.config(o)), ptr(cell)));
    return new CapturePipeline(n, outPtr(cell));
  }

  private h(): Pointer {
    if (this.handle === null) throw new Error("pipeline is stopped");
    return this.handle;
  }

  /** The native pipeline, for a native consumer of its ring (ffi/stream.ts VideoPump). */
  get nativeHandle(): Pointer {
    return this.h();
  }

  /** Takes the oldest access unit into dst; null when the ring is empty. */
  poll(dst: Uint8Array): AccessUnitInfo | null {
    const rc = num(this.n.sym.neuron_pipeline_poll(this.h(), ptr(dst), dst.length, ptr(this.infoBuf)));
    check("neuron_pipeline_poll", rc);
    return rc === 0 ? null : parseAuInfo(this.infoBuf);
  }

  /** Blocks the calling thread up to timeoutMs (keep it short on the JS thread). */
  wait(timeoutMs: number): boolean {
    return this.n.sym.neuron_pipeline_wait(this.h(), timeoutMs) === 1;
  }

  requestIdr(): void {
    this.n.sym.neuron_pipeline_request_idr(this.h());
  }

  setBitrate(kbps: number): void {
    check("neuron_pipeline_set_bitrate", this.n.sym.neuron_pipeline_set_bitrate(this.h(), kbps));
  }

  encoderReport(): string {
    const buf = new Uint8Array(1024);
    this.n.sym.neuron_pipeline_encoder_report(this.h(), ptr(buf), buf.length);
    return Buffer.from(buf.subarray(0, buf.indexOf(0))).toString("utf8");
  }

  stats(): PipelineStats {
    this.n.sym.neuron_pipeline_stats_get(this.h(), ptr(this.statsBuf));
    const v = new DataView(this.statsBuf.buffer);
    const q = (o: number) => Number(v.getBigUint64(o, true));
    return {
      framesIn: q(0),
      ausOut: q(8),
      dropped: q(16),
      rejected: q(24),
      restarts: q(32),
      lastError: v.getInt32(40, true),
      running: v.getUint32(44, true) === 1,
      width: v.getUint32(48, true),
      height: v.getUint32(52, true),
      idrRequests: v.getUint32(56, true),
    };
  }

  /** Timing records of the frames put in the ring since the last call (the pipeline keeps the last 1024). */
  timings(): PipelineTiming[] {
    const n = this.n.sym.neuron_pipeline_timings(this.h(), ptr(this.timingBuf), TIMING_RECORDS);
    const v = new DataView(this.timingBuf.buffer);
    const out: PipelineTiming[] = [];
    for (let i = 0; i < Math.min(n, TIMING_RECORDS); i++) {
      const u = (o: number) => v.getUint32(i * 32 + o, true);
      out.push({ frameSerial: u(0), waitUs: u(4), convertUs: u(8), encodeUs: u(12), encodedUs: u(16), size: u(20), idr: u(24) === 1 });
    }
    return out;
  }

  stop(): void {
    if (this.handle !== null) this.n.sym.neuron_pipeline_stop(this.handle);
    this.handle = null;
  }
}

/** State of an encoder speed measurement (neuron_encoder_speed, 80 bytes). */
export interface EncoderSpeed {
  done: boolean;
  /** 0, or the native status that stopped it (-8: no encoder opened). */
  status: number;
  frames: number;
  warmup: number;
  busyUs: number;
  encodeP50Us: number;
  encodeMaxUs: number;
  width: number;
  height: number;
  software: boolean;
  encoder: string;
}

/**
 * A native thread that encodes a moving test pattern with one encoder configuration and
 * times the conversion + encode of each frame; JS polls it, nothing blocks the event loop.
 */
export class EncoderSpeedJob {
  private handle: Pointer | null;
  private readonly buf = new Uint8Array(80);

  private constructor(
    private readonly n: CaptureNative,
    handle: Pointer,
  ) {
    this.handle = handle;
  }

  static start(n: CaptureNative, o: EncoderOptions, limits: { maxFrames: number; maxMs: number }): EncoderSpeedJob {
    const cell = new BigUint64Array(1);
    check("neuron_encoder_speed_start", n.sym.neuron_encoder_speed_start(ptr(encoderConfig(o)), limits.maxFrames, limits.maxMs, ptr(cell)));
    return new EncoderSpeedJob(n, outPtr(cell));
  }

  state(): EncoderSpeed {
    if (this.handle === null) throw new Error("speed measurement is freed");
    this.n.sym.neuron_encoder_speed_get(this.handle, ptr(this.buf));
    const v = new DataView(this.buf.buffer);
    const nameEnd = this.buf.indexOf(0, 48);
    return {
      done: v.getUint32(0, true) === 1,
      status: v.getInt32(4, true),
      frames: v.getUint32(8, true),
      warmup: v.getUint32(12, true),
      busyUs: Number(v.getBigUint64(16, true)),
      encodeP50Us: v.getUint32(24, true),
      encodeMaxUs: v.getUint32(28, true),
      width: v.getUint32(32, true),
      height: v.getUint32(36, true),
      software: v.getUint32(40, true) === 1,
      encoder: Buffer.from(this.buf.subarray(48, nameEnd < 0 ? 80 : nameEnd)).toString("utf8"),
    };
  }

  /** The probe report of the encoder open ("name: status (reason)" lines); empty while it runs. */
  report(): string {
    if (this.handle === null) throw new Error("speed measurement is freed");
    const out = new Uint8Array(1024);
    this.n.sym.neuron_encoder_speed_report(this.handle, ptr(out), out.length);
    const end = out.indexOf(0);
    return Buffer.from(out.subarray(0, end < 0 ? out.length : end)).toString("utf8");
  }

  /** Stops the thread if it still runs (after its current frame) and frees it. */
  free(): void {
    if (this.handle !== null) this.n.sym.neuron_encoder_speed_free(this.handle);
    this.handle = null;
  }
}
