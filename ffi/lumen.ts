/**
 * bun:ffi bindings of native/lumen.h: the lumen/1 data plane. A `LumenSender` splits, protects
 * (GF(2^16) RS), seals (AES-128-GCM) and sends a whole access unit in one native call; a
 * `LumenReceiver` drains a socket with recvmmsg, drops replays and forgeries, and reassembles
 * frames natively. Side-plane datagrams (input, audio, rumble, probes, loss reports) go through
 * the same objects so every datagram of a direction shares one sequence space.
 */
import { FFIType, ptr, type FFIFunction, type Pointer } from "bun:ffi";
import { NativeCallError, NativeModule } from "./native.ts";
import { outPtr } from "./capture.ts";
import { encodePeer, type UdpPeer, type UdpSocket } from "./stream.ts";
import { quicSymbols } from "./lumen-quic.ts";

const P = FFIType.ptr;
const symbols = {
  neuron_lumen_parity: { args: [FFIType.u32, FFIType.u32, FFIType.u32, FFIType.u32, FFIType.u32], returns: FFIType.i32 },
  neuron_lumen_tx_create: { args: [P, P], returns: FFIType.i32 },
  neuron_lumen_tx_set_peer: { args: [P, P], returns: FFIType.i32 },
  neuron_lumen_tx_set_shard_bytes: { args: [P, FFIType.u32], returns: FFIType.i32 },
  neuron_lumen_tx_send_frame: { args: [P, P, FFIType.u32, P, P], returns: FFIType.i32 },
  neuron_lumen_tx_send_datagram: { args: [P, FFIType.u32, P, FFIType.u32], returns: FFIType.i32 },
  neuron_lumen_tx_seal_datagram: { args: [P, FFIType.u32, P, FFIType.u32, P, FFIType.u32], returns: FFIType.i32 },
  neuron_lumen_tx_seq: { args: [P], returns: FFIType.u64 },
  neuron_lumen_tx_set_gso: { args: [P, FFIType.u32], returns: FFIType.i32 },
  neuron_lumen_tx_destroy: { args: [P], returns: FFIType.void },
  neuron_lumen_rx_create: { args: [P, P], returns: FFIType.i32 },
  neuron_lumen_rx_set_drop: { args: [P, FFIType.u32, FFIType.u32, FFIType.u64], returns: FFIType.i32 },
  neuron_lumen_rx_push: { args: [P, P, FFIType.u32, P, FFIType.u32], returns: FFIType.i32 },
  neuron_lumen_rx_recv: { args: [P, FFIType.i32, FFIType.u32, FFIType.u32], returns: FFIType.i32 },
  neuron_lumen_rx_set_gro: { args: [P, FFIType.i32, FFIType.u32], returns: FFIType.i32 },
  neuron_lumen_rx_next_frame: { args: [P, P, FFIType.u64, P], returns: FFIType.i64 },
  neuron_lumen_rx_next_side: { args: [P, P, FFIType.u32], returns: FFIType.i32 },
  neuron_lumen_rx_stats_get: { args: [P, P], returns: FFIType.void },
  neuron_lumen_rx_footprint: { args: [P], returns: FFIType.u64 },
  neuron_lumen_rx_codec_bytes: { args: [P], returns: FFIType.u64 },
  neuron_lumen_rx_destroy: { args: [P], returns: FFIType.void },
  neuron_lumen_pump_start: { args: [P, FFIType.u32, FFIType.u32, P], returns: FFIType.i32 },
  neuron_lumen_pump_submit: { args: [P, P, FFIType.u32, P], returns: FFIType.i32 },
  neuron_lumen_pump_results: { args: [P, P, FFIType.u32], returns: FFIType.u32 },
  neuron_lumen_pump_stats_get: { args: [P, P], returns: FFIType.void },
  neuron_lumen_pump_stop: { args: [P], returns: FFIType.void },
  ...quicSymbols,
} as const satisfies Record<string, FFIFunction>;

export const LUMEN_VIDEO_OVERHEAD = 60;
export const LUMEN_SIDE_OVERHEAD = 32;
export const LUMEN_MAX_SIDE_PAYLOAD = 1400;
export const LUMEN_MIN_SHARD = 64;
export const LUMEN_MAX_SHARD = 8960;
export const LUMEN_MAX_FRAME = 64 << 20;

/** First byte of every lumen/1 datagram. */
export const Plane = {
  video: 0x56, // 'V'
  audio: 0x41, // 'A'
  rumble: 0x55, // 'U'
  probeReply: 0x51, // 'Q'
  input: 0x49, // 'I'
  report: 0x52, // 'R'
  probe: 0x50, // 'P'
} as const;
export type PlaneName = keyof typeof Plane;
const planeNames = new Map<number, PlaneName>(Object.entries(Plane).map(([k, v]) => [v, k as PlaneName]));

export interface DirectionKeys {
  key: Uint8Array; // 16 bytes
  salt: Uint8Array; // 4 bytes
  sessionId: number;
}

function keysInto(buf: Uint8Array, k: DirectionKeys): void {
  if (k.key.length !== 16 || k.salt.length !== 4) throw new RangeError("lumen keys: 16-byte key and 4-byte salt");
  buf.set(k.key, 0);
  buf.set(k.salt, 16);
  new DataView(buf.buffer, buf.byteOffset).setUint32(20, k.sessionId >>> 0, true);
}

export class LumenNative extends NativeModule<typeof symbols> {
  constructor(path: string) {
    super(path, symbols);
  }

  /** Parity shards for k data shards under the adaptive rule (native/lumen.h). */
  parity(k: number, lossPpm: number, burst = 1, minPctX100 = 100, maxPctX100 = 5000): number {
    const rc = this.sym.neuron_lumen_parity(k, lossPpm, burst, minPctX100, maxPctX100);
    if (rc < 0) throw new NativeCallError("neuron_lumen_parity", rc);
    return rc;
  }
}

export interface LumenFrame {
  captureNs: bigint;
  paceNs?: number;
  idr: boolean;
  codec: 0 | 1;
  epoch: number;
  lossPpm: number;
  burst: number;
  minPctX100?: number;
  maxPctX100?: number;
}

export interface LumenSendResult {
  frameIndex: number;
  dataShards: number;
  parityShards: number;
  sendErrors: number;
  bytes: number;
  doneNs: bigint;
  fecNs: number;
  sealNs: number;
}

function encodeFrame(f: LumenFrame, buf: Uint8Array): Uint8Array {
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  v.setBigUint64(0, f.captureNs, true);
  v.setBigUint64(8, BigInt(Math.max(0, Math.round(f.paceNs ?? 0))), true);
  v.setUint32(16, f.idr ? 2 : 1, true);
  v.setUint32(20, f.codec, true);
  v.setUint32(24, f.epoch, true);
  v.setUint32(28, f.lossPpm, true);
  v.setUint32(32, Math.max(1, f.burst), true);
  v.setUint32(36, f.minPctX100 ?? 100, true);
  v.setUint32(40, f.maxPctX100 ?? 5000, true);
  return buf;
}

function decodeSendResult(r: DataView, o: number): LumenSendResult {
  return {
    frameIndex: r.getUint32(o, true),
    dataShards: r.getUint32(o + 4, true),
    parityShards: r.getUint32(o + 8, true),
    sendErrors: r.getUint32(o + 12, true),
    bytes: Number(r.getBigUint64(o + 16, true)),
    doneNs: r.getBigUint64(o + 24, true),
    fecNs: Number(r.getBigUint64(o + 32, true)),
    sealNs: Number(r.getBigUint64(o + 40, true)),
  };
}

export interface LumenPumpResult extends LumenSendResult {
  serial: number;
  status: number;
}

/**
 * Sends (and paces) frames off the JS thread (native/lumen.h, neuron_lumen_pump_*): submit
 * returns at once; results come back by serial. The sender must stay open until close().
 */
export class LumenPump {
  private handle: Pointer | null;
  private readonly frameBuf = new Uint8Array(48);
  private readonly resBuf = new Uint8Array(56 * 64);
  private readonly statsBuf = new Uint8Array(48);

  private constructor(
    private readonly n: LumenNative,
    handle: Pointer,
  ) {
    this.handle = handle;
  }

  static start(n: LumenNative, tx: LumenSender, o: { slots: number; auCap: number }): LumenPump {
    const cell = new BigUint64Array(1);
    const rc = n.sym.neuron_lumen_pump_start(tx.pointer, o.slots, o.auCap, ptr(cell));
    if (rc < 0) throw new NativeCallError("neuron_lumen_pump_start", rc);
    return new LumenPump(n, outPtr(cell));
  }

  private h(): Pointer {
    if (this.handle === null) throw new Error("lumen pump is stopped");
    return this.handle;
  }

  /** The frame's serial, or null when the pump's queue is full (the frame is dropped). */
  submit(au: Uint8Array, len: number, f: LumenFrame): number | null {
    const rc = this.n.sym.neuron_lumen_pump_submit(this.h(), ptr(au), len, ptr(encodeFrame(f, this.frameBuf)));
    if (rc === -5) return null;
    if (rc < 0) throw new NativeCallError("neuron_lumen_pump_submit", rc);
    return rc;
  }

  /** Results of frames sent since the last call, oldest first. */
  results(): LumenPumpResult[] {
    const out: LumenPumpResult[] = [];
    for (;;) {
      const n = this.n.sym.neuron_lumen_pump_results(this.h(), ptr(this.resBuf), 64);
      const v = new DataView(this.resBuf.buffer);
      for (let i = 0; i < n; i++) out.push({ serial: v.getUint32(i * 56, true), status: v.getInt32(i * 56 + 4, true), ...decodeSendResult(v, i * 56 + 8) });
      if (n < 64) return out;
    }
  }

  stats(): { framesSent: number; framesFailed: number; direct: number; queued: number; dropped: number; pending: number } {
    this.n.sym.neuron_lumen_pump_stats_get(this.h(), ptr(this.statsBuf));
    const v = new DataView(this.statsBuf.buffer);
    const g = (i: number) => Number(v.getBigUint64(i * 8, true));
    return { framesSent: g(0), framesFailed: g(1), direct: g(2), queued: g(3), dropped: g(4), pending: v.getUint32(40, true) };
  }

  close(): void {
    if (this.handle !== null) this.n.sym.neuron_lumen_pump_stop(this.handle);
    this.handle = null;
  }
}

export class LumenSender {
  private handle: Pointer | null;
  private readonly frameBuf = new Uint8Array(48);
  private readonly resBuf = new Uint8Array(48);
  private readonly peerBuf = new Uint8Array(24);

  private constructor(
    private readonly n: LumenNative,
    handle: Pointer,
  ) {
    this.handle = handle;
  }

  static create(n: LumenNative, socket: UdpSocket, keys: DirectionKeys, o: { shardBytes: number; maxFrameBytes: number; batch?: number }): LumenSender {
    const cfg = new Uint8Array(40);
    keysInto(cfg, keys);
    const v = new DataView(cfg.buffer);
    v.setInt32(24, socket.descriptor, true);
    v.setUint32(28, o.shardBytes, true);
    v.setUint32(32, o.maxFrameBytes, true);
    v.setUint32(36, o.batch ?? 0, true);
    const cell = new BigUint64Array(1);
    const rc = n.sym.neuron_lumen_tx_create(ptr(cfg), ptr(cell));
    cfg.fill(0);
    if (rc < 0) throw new NativeCallError("neuron_lumen_tx_create", rc);
    return new LumenSender(n, outPtr(cell));
  }

  private h(): Pointer {
    if (this.handle === null) throw new Error("lumen sender is closed");
    return this.handle;
  }

  setPeer(peer: UdpPeer): void {
    const rc = this.n.sym.neuron_lumen_tx_set_peer(this.h(), ptr(encodePeer(peer, this.peerBuf)));
    if (rc < 0) throw new NativeCallError("neuron_lumen_tx_set_peer", rc);
  }

  setShardBytes(s: number): void {
    const rc = this.n.sym.neuron_lumen_tx_set_shard_bytes(this.h(), s);
    if (rc < 0) throw new NativeCallError("neuron_lumen_tx_set_shard_bytes", rc);
  }

  /** UDP GSO on (default) or off (sendmmsg only). */
  setGso(on: boolean): void {
    const rc = this.n.sym.neuron_lumen_tx_set_gso(this.h(), on ? 1 : 0);
    if (rc < 0) throw new NativeCallError("neuron_lumen_tx_set_gso", rc);
  }

  get seq(): bigint {
    return BigInt(this.n.sym.neuron_lumen_tx_seq(this.h()));
  }

  /** The native handle (for a pump that drives this sender). */
  get pointer(): Pointer {
    return this.h();
  }

  sendFrame(au: Uint8Array, len: number, f: LumenFrame): LumenSendResult {
    const rc = this.n.sym.neuron_lumen_tx_send_frame(this.h(), ptr(au), len, ptr(encodeFrame(f, this.frameBuf)), ptr(this.resBuf));
    if (rc < 0) throw new NativeCallError("neuron_lumen_tx_send_frame", rc);
    return decodeSendResult(new DataView(this.resBuf.buffer), 0);
  }

  /** Seals and sends one side-plane datagram to the peer. */
  sendDatagram(plane: PlaneName, payload: Uint8Array): void {
    const rc = this.n.sym.neuron_lumen_tx_send_datagram(this.h(), Plane[plane], payload.length ? ptr(payload) : null, payload.length);
    if (rc < 0) throw new NativeCallError("neuron_lumen_tx_send_datagram", rc);
  }

  /** Seals a side-plane datagram without sending it (tests, tools). */
  sealDatagram(plane: PlaneName | number, payload: Uint8Array): Uint8Array {
    const out = new Uint8Array(LUMEN_SIDE_OVERHEAD + payload.length);
    const id = typeof plane === "number" ? plane : Plane[plane];
    const rc = this.n.sym.neuron_lumen_tx_seal_datagram(this.h(), id, payload.length ? ptr(payload) : null, payload.length, ptr(out), out.length);
    if (rc < 0) throw new NativeCallError("neuron_lumen_tx_seal_datagram", rc);
    return out;
  }

  close(): void {
    if (this.handle !== null) this.n.sym.neuron_lumen_tx_destroy(this.handle);
    this.handle = null;
  }
}

export interface LumenRxStats {
  datagrams: number;
  accepted: number;
  droppedSim: number;
  badFormat: number;
  badAuth: number;
  replayed: number;
  inconsistent: number;
  framesComplete: number;
  framesRecovered: number;
  framesLost: number;
  shardsLate: number;
  highestSeq: number;
  seqReceived: number;
  lossRuns: number;
  readyDropped: number;
  decodeNs: number;
}

export interface LumenFrameInfo {
  frameIndex: number;
  bytes: number;
  captureNs: bigint;
  completeNs: bigint;
  idr: boolean;
  codec: number;
  epoch: number;
  recovered: boolean;
  dataShards: number;
  parityShards: number;
}

export interface SideDatagram {
  plane: PlaneName;
  payload: Uint8Array;
}

export class LumenReceiver {
  private handle: Pointer | null;
  private readonly infoBuf = new Uint8Array(48);
  private readonly statsBuf = new Uint8Array(128);
  private readonly sideBuf = new Uint8Array(LUMEN_MAX_SIDE_PAYLOAD);

  private constructor(
    private readonly n: LumenNative,
    handle: Pointer,
  ) {
    this.handle = handle;
  }

  /** shardBytes 0: a receiver of side planes only. */
  static create(n: LumenNative, keys: DirectionKeys, o: { shardBytes: number; maxFrameBytes: number; slots?: number; readyFrames?: number }): LumenReceiver {
    const cfg = new Uint8Array(40);
    keysInto(cfg, keys);
    const v = new DataView(cfg.buffer);
    v.setUint32(24, o.shardBytes, true);
    v.setUint32(28, o.maxFrameBytes, true);
    v.setUint32(32, o.slots ?? 4, true);
    v.setUint32(36, o.readyFrames ?? 8, true);
    const cell = new BigUint64Array(1);
    const rc = n.sym.neuron_lumen_rx_create(ptr(cfg), ptr(cell));
    cfg.fill(0);
    if (rc < 0) throw new NativeCallError("neuron_lumen_rx_create", rc);
    return new LumenReceiver(n, outPtr(cell));
  }

  private h(): Pointer {
    if (this.handle === null) throw new Error("lumen receiver is closed");
    return this.handle;
  }

  /** Simulated loss of incoming datagrams: share 0..1 in bursts of `burst`. */
  setDrop(share: number, burst = 1, seed = 1): void {
    const rc = this.n.sym.neuron_lumen_rx_set_drop(this.h(), Math.round(share * 1e6), burst, BigInt(seed));
    if (rc < 0) throw new NativeCallError("neuron_lumen_rx_set_drop", rc);
  }

  /** Offers one datagram: the side-plane payload, "video" for an accepted shard, or null when dropped. */
  push(dgram: Uint8Array): SideDatagram | "video" | null {
    const rc = this.n.sym.neuron_lumen_rx_push(this.h(), dgram.length ? ptr(dgram) : null, dgram.length, ptr(this.sideBuf), this.sideBuf.length);
    if (rc < 0) return null;
    const plane = planeNames.get(rc >>> 16);
    if (plane === "video") return "video";
    if (!plane) return null;
    return { plane, payload: this.sideBuf.slice(0, rc & 0xffff) };
  }

  /** UDP GRO on the socket (several datagrams per read); false where the kernel refuses it. */
  setGro(socket: UdpSocket, on: boolean): boolean {
    const rc = this.n.sym.neuron_lumen_rx_set_gro(this.h(), socket.descriptor, on ? 1 : 0);
    if (rc === -8) return false;
    if (rc < 0) throw new NativeCallError("neuron_lumen_rx_set_gro", rc);
    return true;
  }

  /** Drains the socket (waiting up to timeoutMs for the first datagram); datagrams read. */
  recv(socket: UdpSocket, timeoutMs: number, max = 0): number {
    const rc = this.n.sym.neuron_lumen_rx_recv(this.h(), socket.descriptor, timeoutMs, max);
    if (rc < 0) throw new NativeCallError("neuron_lumen_rx_recv", rc);
    return rc;
  }

  /** The oldest completed frame copied into out, or null when none is ready. */
  nextFrame(out: Uint8Array): LumenFrameInfo | null {
    const rc = Number(this.n.sym.neuron_lumen_rx_next_frame(this.h(), ptr(out), out.length, ptr(this.infoBuf)));
    if (rc === 0) return null;
    if (rc < 0) throw new NativeCallError("neuron_lumen_rx_next_frame", rc);
    const v = new DataView(this.infoBuf.buffer);
    return {
      frameIndex: v.getUint32(0, true),
      bytes: v.getUint32(4, true),
      captureNs: v.getBigUint64(8, true),
      completeNs: v.getBigUint64(16, true),
      idr: v.getUint32(24, true) === 2,
      codec: v.getUint32(28, true),
      epoch: v.getUint32(32, true),
      recovered: v.getUint32(36, true) === 1,
      dataShards: v.getUint32(40, true),
      parityShards: v.getUint32(44, true),
    };
  }

  nextSide(): SideDatagram | null {
    const rc = this.n.sym.neuron_lumen_rx_next_side(this.h(), ptr(this.sideBuf), this.sideBuf.length);
    if (rc <= 0) return null;
    const plane = planeNames.get(rc >>> 16);
    return plane ? { plane, payload: this.sideBuf.slice(0, rc & 0xffff) } : null;
  }

  stats(): LumenRxStats {
    this.n.sym.neuron_lumen_rx_stats_get(this.h(), ptr(this.statsBuf));
    const v = new DataView(this.statsBuf.buffer);
    const g = (i: number) => Number(v.getBigUint64(i * 8, true));
    return {
      datagrams: g(0), accepted: g(1), droppedSim: g(2), badFormat: g(3), badAuth: g(4), replayed: g(5),
      inconsistent: g(6), framesComplete: g(7), framesRecovered: g(8), framesLost: g(9), shardsLate: g(10),
      highestSeq: g(11), seqReceived: g(12), lossRuns: g(13), readyDropped: g(14), decodeNs: g(15),
    };
  }

  footprint(): number {
    return Number(this.n.sym.neuron_lumen_rx_footprint(this.h()));
  }

  codecBytes(): number {
    return Number(this.n.sym.neuron_lumen_rx_codec_bytes(this.h()));
  }

  close(): void {
    if (this.handle !== null) this.n.sym.neuron_lumen_rx_destroy(this.handle);
    this.handle = null;
  }
}
