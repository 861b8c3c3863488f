/**
 * bun:ffi bindings of native/stream.h: UDP sockets and the GameStream video sender
 * (packetize + FEC + encrypt + sendmmsg in one call per frame). Each native handle
 * (socket descriptor, sender) is owned by one wrapper here and freed by close().
 */
import { FFIType, ptr, type FFIFunction, type Library } from "bun:ffi";
import { NativeCallError, NativeModule } from "./native.ts";
import { cstr, outPtr, type CapturePipeline } from "./capture.ts";

const P = FFIType.ptr;
const symbols = {
  neuron_udp_open: { args: [P, FFIType.u32, FFIType.u32, FFIType.u32, P], returns: FFIType.i32 },
  neuron_udp_recv: { args: [FFIType.i32, P, FFIType.u32, P], returns: FFIType.i32 },
  neuron_udp_send: { args: [FFIType.i32, P, FFIType.u32, P], returns: FFIType.i32 },
  neuron_udp_close: { args: [FFIType.i32], returns: FFIType.void },
  neuron_video_sender_create: { args: [P, P], returns: FFIType.i32 },
  neuron_video_sender_set_peer: { args: [P, P], returns: FFIType.i32 },
  neuron_video_send_frame: { args: [P, P, FFIType.u32, P, P], returns: FFIType.i32 },
  neuron_video_sender_destroy: { args: [P], returns: FFIType.void },
  neuron_monotonic_ns: { args: [], returns: FFIType.u64 },
  neuron_video_pump_start: { args: [P, P, FFIType.u64, FFIType.u32, FFIType.u64, P], returns: FFIType.i32 },
  neuron_video_pump_set_peer: { args: [P, P], returns: FFIType.i32 },
  neuron_video_pump_stats_get: { args: [P, P], returns: FFIType.void },
  neuron_video_pump_latencies: { args: [P, P, FFIType.u32], returns: FFIType.u32 },
  neuron_video_pump_timings: { args: [P, P, FFIType.u32], returns: FFIType.u32 },
  neuron_video_pump_stop: { args: [P], returns: FFIType.void },
} as const satisfies Record<string, FFIFunction>;

type Syms = Library<typeof symbols>["symbols"];

export const VIDEO_MIN_PACKET = 256;
export const VIDEO_MAX_PACKET = 16384;
export const VIDEO_MAX_FRAME = 64 << 20;

export interface UdpPeer {
  family: 4 | 6;
  /** Textual address ("127.0.0.1", "::1"). */
  address: string;
  port: number;
}

/** Frame types of the 8-byte frame header. */
export const FrameKind = { p: 1, idr: 2, intraRefresh: 4, afterInvalidation: 5 } as const;
export type FrameKindName = keyof typeof FrameKind;

export interface VideoSenderOptions {
  packetSize: number;
  fecPercent: number;
  minFec: number;
  /** AES-128 key: every shard sealed with AES-GCM when given. */
  key?: Uint8Array;
  maxFrameBytes: number;
  /** Shards per sendmmsg (1-64). */
  batch?: number;
}

export interface VideoFrameResult {
  frameIndex: number;
  shards: number;
  dataShards: number;
  parityShards: number;
  blocks: number;
  sendErrors: number;
  bytes: number;
  doneNs: bigint;
  fecPercent: number;
  latencyTenthMs: number;
  firstSeq: number;
}

export function encodePeer(p: UdpPeer, buf = new Uint8Array(24)): Uint8Array {
  buf.fill(0);
  if (p.family === 4) {
    const parts = p.address.split(".").map(Number);
    if (parts.length !== 4 || parts.some((x) => !Number.isInteger(x) || x < 0 || x > 255)) throw new RangeError(`bad IPv4 address ${p.address}`);
    buf.set(parts, 0);
  } else {
    buf.set(ipv6Bytes(p.address), 0);
  }
  if (!Number.isInteger(p.port) || p.port < 1 || p.port > 65535) throw new RangeError(`bad port ${p.port}`);
  new DataView(buf.buffer, buf.byteOffset).setUint16(16, p.port, true);
  buf[18] = p.family;
  return buf;
}

function ipv6Bytes(text: string): Uint8Array {
  const out = new Uint8Array(16);
  const [head = "", tail] = text.split("::") as [string, string | undefined];
  const h = head ? head.split(":") : [];
  const t = tail !== undefined && tail ? tail.split(":") : [];
  if (tail === undefined && h.length !== 8) throw new RangeError(`bad IPv6 address ${text}`);
  const groups = [...h, ...Array(8 - h.length - t.length).fill("0"), ...t];
  if (groups.length !== 8) throw new RangeError(`bad IPv6 address ${text}`);
  groups.forEach((g, i) => {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) throw new RangeError(`bad IPv6 address ${text}`);
    const v = parseInt(g, 16);
    out[i * 2] = v >> 8;
    out[i * 2 + 1] = v & 0xff;
  });
  return out;
}

export function decodePeer(b: Uint8Array): UdpPeer {
  const v = new DataView(b.buffer, b.byteOffset, 24);
  const family = b[18] === 6 ? 6 : 4;
  const port = v.getUint16(16, true);
  if (family === 4) return { family, address: `${b[0]}.${b[1]}.${b[2]}.${b[3]}`, port };
  const groups: string[] = [];
  for (let i = 0; i < 8; i++) groups.push(v.getUint16(i * 2, false).toString(16));
  return { family, address: groups.join(":"), port };
}

/** The stream part of libneuron. */
export class StreamNative extends NativeModule<typeof symbols> {
  constructor(path: string) {
    super(path, symbols);
  }

  monotonicNs(): bigint {
    return BigInt(this.sym.neuron_monotonic_ns());
  }
}

/** A bound UDP socket: non-blocking receive (polled), shared by the senders of its port. */
export class UdpSocket {
  private fd: number;
  readonly port: number;
  private readonly from = new Uint8Array(24);
  private readonly peerBuf = new Uint8Array(24);

  private constructor(
    private readonly n: StreamNative,
    fd: number,
    port: number,
  ) {
    this.fd = fd;
    this.port = port;
  }

  static open(n: StreamNative, host: string, port: number, opts: { sndbuf?: number; rcvbuf?: number } = {}): UdpSocket {
    const cell = new Int32Array(1);
    const rc = n.sym.neuron_udp_open(cstr(host), port, opts.sndbuf ?? 0, opts.rcvbuf ?? 0, ptr(cell));
    if (rc < 0) throw new NativeCallError("neuron_udp_open", rc);
    return new UdpSocket(n, cell[0]!, rc);
  }

  get descriptor(): number {
    if (this.fd < 0) throw new Error("socket is closed");
    return this.fd;
  }

  /** One queued datagram into buf: its length and sender, or null when none is queued. */
  recv(buf: Uint8Array): { length: number; from: UdpPeer } | null {
    const rc = this.n.sym.neuron_udp_recv(this.descriptor, ptr(buf), buf.length, ptr(this.from));
    if (rc < 0) throw new NativeCallError("neuron_udp_recv", rc);
    return rc === 0 ? null : { length: rc, from: decodePeer(this.from) };
  }

  send(data: Uint8Array, to: UdpPeer): void {
    const rc = this.n.sym.neuron_udp_send(this.descriptor, ptr(data), data.length, ptr(encodePeer(to, this.peerBuf)));
    if (rc < 0) throw new NativeCallError("neuron_udp_send", rc);
  }

  close(): void {
    if (this.fd >= 0) this.n.sym.neuron_udp_close(this.fd);
    this.fd = -1;
  }
}

/** One session's video sender: one native call per access unit. */
export class VideoSender {
  private handle: ReturnType<typeof outPtr> | null;
  private readonly frameBuf = new Uint8Array(24);
  private readonly resultBuf = new Uint8Array(56);

  private constructor(
    private readonly n: StreamNative,
    handle: ReturnType<typeof outPtr>,
  ) {
    this.handle = handle;
  }

  static create(n: StreamNative, socket: UdpSocket, o: VideoSenderOptions): VideoSender {
    const cfg = new Uint8Array(48);
    const v = new DataView(cfg.buffer);
    v.setUint32(0, o.packetSize, true);
    v.setUint32(4, o.fecPercent, true);
    v.setUint32(8, o.minFec, true);
    if (o.key) {
      if (o.key.length !== 16) throw new RangeError("video key must be 16 bytes");
      v.setUint32(12, 1, true);
      cfg.set(o.key, 16);
    }
    v.setInt32(32, socket.descriptor, true);
    v.setUint32(36, o.maxFrameBytes, true);
    v.setUint32(40, o.batch ?? 0, true);
    const cell = new BigUint64Array(1);
    const rc = n.sym.neuron_video_sender_create(ptr(cfg), ptr(cell));
    cfg.fill(0);
    if (rc < 0) throw new NativeCallError("neuron_video_sender_create", rc);
    return new VideoSender(n, outPtr(cell));
  }

  h(): NonNullable<typeof this.handle> {
    if (this.handle === null) throw new Error("video sender is closed");
    return this.handle;
  }

  setPeer(peer: UdpPeer): void {
    const rc = this.n.sym.neuron_video_sender_set_peer(this.h(), ptr(encodePeer(peer)));
    if (rc < 0) throw new NativeCallError("neuron_video_sender_set_peer", rc);
  }

  /** Sends one access unit (au[0..length)). Throws NativeCallError for a refused frame. */
  sendFrame(
    au: Uint8Array,
    length: number,
    frame: { captureNs: bigint; rtpTimestamp: number; kind: FrameKindName; paceNs?: number },
  ): VideoFrameResult {
    if (length < 1 || length > au.length) throw new RangeError("access unit length out of its buffer");
    const v = new DataView(this.frameBuf.buffer);
    v.setBigUint64(0, frame.captureNs, true);
    v.setUint32(8, frame.rtpTimestamp >>> 0, true);
    v.setUint32(12, FrameKind[frame.kind], true);
    v.setBigUint64(16, BigInt(Math.max(0, Math.floor(frame.paceNs ?? 0))), true);
    const rc = this.n.sym.neuron_video_send_frame(this.h(), ptr(au), length, ptr(this.frameBuf), ptr(this.resultBuf));
    if (rc < 0) throw new NativeCallError("neuron_video_send_frame", rc);
    const r = new DataView(this.resultBuf.buffer);
    const u = (o: number) => r.getUint32(o, true);
    return {
      frameIndex: u(0),
      shards: u(4),
      dataShards: u(8),
      parityShards: u(12),
      blocks: u(16),
      sendErrors: u(20),
      bytes: Number(r.getBigUint64(24, true)),
      doneNs: r.getBigUint64(32, true),
      fecPercent: u(40),
      latencyTenthMs: u(44),
      firstSeq: u(48),
    };
  }

  close(): void {
    if (this.handle !== null) this.n.sym.neuron_video_sender_destroy(this.handle);
    this.handle = null;
  }
}

export interface VideoPumpStats {
  frames: number;
  shards: number;
  parityShards: number;
  bytes: number;
  sendErrors: number;
  discarded: number;
  lastLatencyMs: number;
  lastFrameIndex: number;
  running: boolean;
  lastError: number;
  havePeer: boolean;
}

/** One sent frame after the encoder, µs since the frame was seen (neuron_video_pump_timing). */
export interface PumpTiming {
  frameSerial: number;
  /** Access unit complete. */
  encodedUs: number;
  /** The pump started on it. */
  takenUs: number;
  /** Its last shard handed to the kernel. */
  sentUs: number;
}

/**
 * The native thread from a pipeline's access-unit ring to a sender: no frame passes through
 * JS. Stop it before stopping the pipeline or closing the sender.
 */
export class VideoPump {
  private handle: ReturnType<typeof outPtr> | null;
  private readonly statsBuf = new Uint8Array(80);

  private constructor(
    private readonly n: StreamNative,
    handle: ReturnType<typeof outPtr>,
  ) {
    this.handle = handle;
  }

  /** paceNs: spread each frame's datagrams over this many ns (0 = at once). */
  static start(n: StreamNative, pipeline: CapturePipeline, sender: VideoSender, epochNs: bigint, auCap: number, paceNs = 0): VideoPump {
    const cell = new BigUint64Array(1);
    const rc = n.sym.neuron_video_pump_start(pipeline.nativeHandle, sender.h(), epochNs, auCap, BigInt(Math.max(0, Math.floor(paceNs))), ptr(cell));
    if (rc < 0) throw new NativeCallError("neuron_video_pump_start", rc);
    return new VideoPump(n, outPtr(cell));
  }

  private h(): NonNullable<typeof this.handle> {
    if (this.handle === null) throw new Error("video pump is stopped");
    return this.handle;
  }

  setPeer(peer: UdpPeer): void {
    const rc = this.n.sym.neuron_video_pump_set_peer(this.h(), ptr(encodePeer(peer)));
    if (rc < 0) throw new NativeCallError("neuron_video_pump_set_peer", rc);
  }

  stats(): VideoPumpStats {
    this.n.sym.neuron_video_pump_stats_get(this.h(), ptr(this.statsBuf));
    const v = new DataView(this.statsBuf.buffer);
    const q = (o: number) => Number(v.getBigUint64(o, true));
    return {
      frames: q(0),
      shards: q(8),
      parityShards: q(16),
      bytes: q(24),
      sendErrors: q(32),
      discarded: q(40),
      lastLatencyMs: q(48) / 1e6,
      lastFrameIndex: v.getUint32(56, true),
      running: v.getUint32(60, true) === 1,
      lastError: v.getInt32(64, true),
      havePeer: v.getUint32(68, true) === 1,
    };
  }

  /** Latency samples (capture → last shard sent, µs) taken since the last call. */
  latencies(max = 4096): Uint32Array {
    const out = new Uint32Array(max);
    const n = this.n.sym.neuron_video_pump_latencies(this.h(), ptr(out), max);
    return out.subarray(0, n);
  }

  /** Per-frame timings of the frames sent since the last call (oldest first; at most `max`). */
  timings(max = 4096): PumpTiming[] {
    const buf = new Uint32Array(max * 4);
    const n = this.n.sym.neuron_video_pump_timings(this.h(), ptr(buf), max);
    const out: PumpTiming[] = [];
    for (let i = 0; i < n; i++) out.push({ frameSerial: buf[i * 4]!, encodedUs: buf[i * 4 + 1]!, takenUs: buf[i * 4 + 2]!, sentUs: buf[i * 4 + 3]! });
    return out;
  }

  stop(): void {
    if (this.handle !== null) this.n.sym.neuron_video_pump_stop(this.handle);
    this.handle = null;
  }
}
