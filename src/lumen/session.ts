/**
 * One lumen/1 stream on the host: frames from a source, encoded (libavcodec, ffi/capture.ts),
 * handed whole to the native pump (ffi/lumen.ts: split, RS16, AES-GCM, sendmmsg/GSO; paced frames on
 * the pump's own thread, so the JS thread never waits for pacing);
 * client datagrams (input, loss reports, clock probes) opened by its own receiver. The mode,
 * codec and bitrate change mid-stream (reconfigure) without a new connection: the config
 * epoch in every shard tells the client which config a frame belongs to.
 */
import { randomBytes } from "node:crypto";
import { VideoEncoder, type CaptureNative } from "../../ffi/capture.ts";
import { LumenPump, LumenReceiver, LumenSender, Plane, type LumenNative, type SideDatagram } from "../../ffi/lumen.ts";
import type { StreamNative, UdpPeer, UdpSocket } from "../../ffi/stream.ts";
import type { Logger } from "../log.ts";
import { decodeInputPacket } from "../input/decode.ts";
import { isRejection, type InputEvent } from "../input/model.ts";
import { PROBE_BYTES, REPORT_BYTES, type StreamConfig } from "./messages.ts";

export interface FrameSource {
  /** Writes the next BGRA frame (pitch = width * 4) into dst. */
  fill(dst: Uint8Array, width: number, height: number, counter: number): void;
}

export interface SessionNatives {
  lumen: LumenNative;
  stream: StreamNative;
  capture: CaptureNative;
}

export interface SessionKeys {
  hostToClient: { key: Uint8Array; salt: Uint8Array };
  clientToHost: { key: Uint8Array; salt: Uint8Array };
}

export interface LumenSessionStats {
  framesSent: number;
  bytesSent: number;
  parityShards: number;
  dataShards: number;
  encodeUsP50: number;
  lossPpm: number;
  burst: number;
  epoch: number;
  inputEvents: number;
  inputRejected: number;
  probes: number;
  reports: number;
  audioPackets: number;
}

export interface LumenSessionOptions {
  id: number;
  config: StreamConfig;
  shardBytes: number;
  maxFrameBytes: number;
  natives: SessionNatives;
  socket: UdpSocket;
  source: FrameSource;
  log: Logger;
  /** Share of the frame interval a frame's datagrams are spread over (0 = none). */
  paceFraction: number;
  /** Frames with fewer datagrams than this go out at once. */
  paceMinDatagrams: number;
  onInput?: (events: InputEvent[]) => void;
  /** Opus packets to send on the audio plane (null: no audio). */
  audio?: { nextPacket(): Uint8Array | null; intervalMs: number; close?(): void } | null;
  fecMinPctX100: number;
  fecMaxPctX100: number;
  /** UDP GSO for the video datagrams (default on). */
  gso?: boolean;
  /**
   * The control channel's datagrams (QUIC DATAGRAM frames), `plane byte ‖ payload`: where given,
   * the side planes audio and rumble leave through it and input arrives through it
   * (controlDatagram); without it they travel on the lumen/1 UDP data plane.
   */
  sideChannel?: (datagram: Uint8Array) => boolean;
}

export function newSessionKeys(): SessionKeys {
  return {
    hostToClient: { key: randomBytes(16), salt: randomBytes(4) },
    clientToHost: { key: randomBytes(16), salt: randomBytes(4) },
  };
}

/**
 * Loss assumed until the client's reports say otherwise: a stream starts protected — 10 % loss
 * in bursts of 8 datagrams — and relaxes on evidence: each clean 50 ms report keeps
 * RELAX_PER_REPORT of both estimates (a half-life of ~1.7 s), so loss that comes in rare long
 * bursts (10 % in bursts of 10: a burst every ~90 datagrams, most reports clean) still finds
 * the protection up when it strikes. A worse report raises the estimates at once.
 */
export const INITIAL_LOSS_PPM = 100_000;
export const INITIAL_BURST = 8;
export const RELAX_PER_REPORT = 0.98;

const codecId = (c: StreamConfig["codec"]) => (c === "hevc" ? 1 : 0);

export class LumenSession {
  readonly id: number;
  readonly keys = newSessionKeys();
  config: StreamConfig;
  epoch = 0;
  private readonly tx: LumenSender;
  private pump: LumenPump | null = null;
  /** Frames handed to the pump whose result has not come back: serial → timings so far. */
  private readonly inFlight = new Map<number, { encodeUs: number; encodeCallUs: number; captureNs: bigint; bytes: number }>();
  private readonly rx: LumenReceiver;
  private encoder: VideoEncoder | null = null;
  private pixels = new Uint8Array(0);
  private au = new Uint8Array(0);
  private timer: ReturnType<typeof setTimeout> | null = null;
  private audioTimer: ReturnType<typeof setInterval> | null = null;
  private peer: UdpPeer | null = null;
  /** performance.now() of the last authenticated datagram from the client (or of the start). */
  lastHeardMs = performance.now();
  private counter = 0;
  private forceIdr = true;
  private nextDue = 0;
  private running = false;
  private lastReport: { highest: number; received: number; runs: number } | null = null;
  /** The mean loss burst estimate, unrounded (stats.burst is its rounded value). */
  private burstEstimate = INITIAL_BURST;
  private readonly encodeUs: number[] = [];
  /** Per sent frame (the last 4096): convert + encode µs, and ns from the capture to its last datagram handed over. */
  readonly frameTimings = new Map<number, { encodeUs: number; encodeCallUs: number; sentNs: number; bytes: number }>();
  readonly stats: LumenSessionStats = {
    framesSent: 0, bytesSent: 0, parityShards: 0, dataShards: 0, encodeUsP50: 0, lossPpm: INITIAL_LOSS_PPM, burst: INITIAL_BURST, epoch: 0,
    inputEvents: 0, inputRejected: 0, probes: 0, reports: 0, audioPackets: 0,
  };

  constructor(private readonly o: LumenSessionOptions) {
    this.id = o.id;
    this.config = { ...o.config };
    this.tx = LumenSender.create(o.natives.lumen, o.socket, { ...this.keys.hostToClient, sessionId: o.id }, { shardBytes: o.shardBytes, maxFrameBytes: o.maxFrameBytes });
    if (o.gso === false) this.tx.setGso(false);
    this.rx = LumenReceiver.create(o.natives.lumen, { ...this.keys.clientToHost, sessionId: o.id }, { shardBytes: 0, maxFrameBytes: 0, slots: 1, readyFrames: 1 });
    this.openEncoder();
  }

  private openEncoder(): void {
    this.encoder?.close();
    const c = this.config;
    this.encoder = VideoEncoder.open(this.o.natives.capture, { codec: c.codec, width: c.width, height: c.height, fps: c.fps, bitrateKbps: c.bitrateKbps, threads: 2 });
    this.pixels = new Uint8Array(c.width * c.height * 4);
    this.au = new Uint8Array(Math.min(this.o.maxFrameBytes, c.width * c.height * 2 + 65536));
    // the pump's slots hold access units of this mode: a new mode gets a pump sized for it
    this.collect();
    this.pump?.close();
    this.pump = LumenPump.start(this.o.natives.lumen, this.tx, { slots: 3, auCap: this.au.length });
    this.forceIdr = true;
  }

  /** A datagram for this session (the session id matched): opens it; false when it was dropped. */
  datagram(bytes: Uint8Array, from: UdpPeer): boolean {
    const r = this.rx.push(bytes);
    if (r === null || r === "video") return false;
    this.lastHeardMs = performance.now();
    // the client's address is learned (and may change: roaming) from authenticated datagrams only
    if (!this.peer || this.peer.address !== from.address || this.peer.port !== from.port) {
      this.peer = from;
      this.tx.setPeer(from);
      this.forceIdr = true;
      if (this.running && this.timer === null) this.schedule();
    }
    this.side(r);
    return true;
  }

  /** A side-plane datagram from the control channel (QUIC DATAGRAM frame): `plane byte ‖ payload`. */
  controlDatagram(d: Uint8Array): void {
    if (d.length < 1) return;
    // only the planes the control channel carries (PROTOCOL.md); reports and probes stay on the data plane
    if (d[0] === Plane.input) this.side({ plane: "input", payload: d.subarray(1) });
  }

  private sendSide(plane: "audio" | "rumble", payload: Uint8Array): void {
    if (this.o.sideChannel) {
      const d = new Uint8Array(1 + payload.length);
      d[0] = Plane[plane];
      d.set(payload, 1);
      this.o.sideChannel(d);
    } else this.tx.sendDatagram(plane, payload);
  }

  private side(d: SideDatagram): void {
    const v = new DataView(d.payload.buffer, d.payload.byteOffset, d.payload.byteLength);
    switch (d.plane) {
      case "probe": {
        if (d.payload.length !== PROBE_BYTES) return;
        this.stats.probes++;
        const reply = new Uint8Array(16);
        reply.set(d.payload, 0);
        new DataView(reply.buffer).setBigUint64(8, this.o.natives.stream.monotonicNs(), true);
        this.tx.sendDatagram("probeReply", reply);
        return;
      }
      case "report": {
        if (d.payload.length !== REPORT_BYTES) return;
        this.stats.reports++;
        const now = { highest: Number(v.getBigUint64(0, true)), received: Number(v.getBigUint64(8, true)), runs: v.getUint32(16, true) };
        const prev = this.lastReport;
        this.lastReport = now;
        if (!prev) return;
        const expected = now.highest - prev.highest, got = now.received - prev.received, runs = now.runs - prev.runs;
        if (expected <= 0 || got < 0) return;
        const lost = Math.max(0, expected - got);
        const ppm = Math.min(900_000, Math.round((lost / expected) * 1e6));
        // fast up, slow down: one clean interval does not drop the protection at once
        this.stats.lossPpm = Math.max(ppm, Math.round(this.stats.lossPpm * RELAX_PER_REPORT));
        if (runs > 0 && lost > 0) this.burstEstimate = Math.max(this.burstEstimate * RELAX_PER_REPORT, Math.min(64, lost / runs));
        else if (ppm === 0) this.burstEstimate *= RELAX_PER_REPORT;
        this.burstEstimate = Math.max(1, this.burstEstimate);
        this.stats.burst = Math.round(this.burstEstimate);
        return;
      }
      case "input": {
        const ev = decodeInputPacket(d.payload);
        if (isRejection(ev)) {
          this.stats.inputRejected++;
          return;
        }
        this.stats.inputEvents++;
        this.o.onInput?.([ev]);
        return;
      }
      default:
        return;
    }
  }

  start(): void {
    this.running = true;
    this.nextDue = performance.now();
    if (this.peer) this.schedule();
    if (this.o.audio && !this.audioTimer) {
      const audio = this.o.audio;
      this.audioTimer = setInterval(() => {
        if (!this.peer) return;
        const p = audio.nextPacket();
        if (p) {
          this.sendSide("audio", p);
          this.stats.audioPackets++;
        }
      }, audio.intervalMs);
    }
  }

  private schedule(): void {
    const wait = Math.max(0, this.nextDue - performance.now());
    this.timer = setTimeout(() => {
      this.timer = null;
      if (!this.running) return;
      try {
        this.frame();
      } catch (err) {
        this.o.log.warn("frame failed", { session: this.id, error: (err as Error).message });
      }
      const interval = 1000 / this.config.fps;
      this.nextDue += interval;
      if (this.nextDue < performance.now() - interval) this.nextDue = performance.now(); // fell behind: do not burst
      this.schedule();
    }, wait);
  }

  private frame(): void {
    if (!this.encoder || !this.peer) return;
    const c = this.config;
    const stream = this.o.natives.stream;
    this.o.source.fill(this.pixels, c.width, c.height, this.counter++);
    const captureNs = stream.monotonicNs(); // the frame is captured once its pixels are there
    const e0 = performance.now();
    const info = this.encoder.encode(this.pixels, c.width * 4, this.forceIdr, this.au);
    const encodeCallUs = (performance.now() - e0) * 1000;
    if (info.size === 0) return;
    this.forceIdr = false;
    this.encodeUs.push(info.encodeUs + info.convertUs);
    if (this.encodeUs.length > 512) this.encodeUs.splice(0, 256);
    const k = Math.ceil(info.size / this.o.shardBytes);
    const interval = 1e9 / c.fps;
    const paceNs = k >= this.o.paceMinDatagrams ? interval * this.o.paceFraction : 0;
    const serial = this.pump!.submit(this.au, info.size, {
      captureNs, paceNs, idr: info.idr, codec: codecId(c.codec), epoch: this.epoch, lossPpm: this.stats.lossPpm, burst: this.stats.burst,
      minPctX100: this.o.fecMinPctX100, maxPctX100: this.o.fecMaxPctX100,
    });
    if (serial === null) {
      this.forceIdr = true; // the pump is behind: this frame is gone, the next one must stand alone
      return;
    }
    this.inFlight.set(serial, { encodeUs: info.encodeUs + info.convertUs, encodeCallUs, captureNs, bytes: info.size });
    this.collect();
  }

  /** Takes the pump's results: counters, and per frame its timings (capture → last datagram handed over). */
  collect(): void {
    if (!this.pump) return;
    for (const r of this.pump.results()) {
      const f = this.inFlight.get(r.serial);
      this.inFlight.delete(r.serial);
      if (r.status < 0) {
        this.o.log.warn("frame not sent", { session: this.id, status: r.status });
        continue;
      }
      this.stats.framesSent++;
      this.stats.bytesSent += r.bytes;
      this.stats.dataShards += r.dataShards;
      this.stats.parityShards += r.parityShards;
      if (f) this.frameTimings.set(r.frameIndex, { encodeUs: f.encodeUs, encodeCallUs: f.encodeCallUs, sentNs: Number(r.doneNs - f.captureNs), bytes: f.bytes });
      if (this.frameTimings.size > 4096) this.frameTimings.delete(this.frameTimings.keys().next().value!);
    }
  }

  requestIdr(): void {
    this.forceIdr = true;
  }

  /** Changes mode, codec and/or bitrate mid-stream; the next frame is an IDR of the new epoch. */
  reconfigure(change: Partial<StreamConfig>): StreamConfig {
    const next = { ...this.config, ...Object.fromEntries(Object.entries(change).filter(([, v]) => v !== undefined)) } as StreamConfig;
    const onlyBitrate = next.codec === this.config.codec && next.width === this.config.width && next.height === this.config.height && next.fps === this.config.fps;
    this.config = next;
    if (onlyBitrate) this.encoder?.setBitrate(next.bitrateKbps);
    else this.openEncoder();
    this.epoch = (this.epoch + 1) & 0xffff;
    this.stats.epoch = this.epoch;
    this.forceIdr = true;
    return this.config;
  }

  snapshot(): LumenSessionStats {
    this.collect();
    const s = [...this.encodeUs].sort((a, b) => a - b);
    this.stats.encodeUsP50 = s.length ? s[Math.floor(s.length / 2)]! : 0;
    return { ...this.stats };
  }

  close(): void {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    if (this.audioTimer) clearInterval(this.audioTimer);
    this.o.audio?.close?.();
    this.timer = null;
    this.audioTimer = null;
    this.encoder?.close();
    this.encoder = null;
    this.pump?.close(); // before the sender it drives
    this.pump = null;
    this.tx.close();
    this.rx.close();
  }
}
