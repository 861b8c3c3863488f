/**
 * The lumen/1 reference client (TypeScript on Bun): connects over QUIC (or TLS on TCP), pins the host's
 * certificate fingerprint, pairs by PIN through SPAKE2 the first time, proves its pairing key
 * later, receives and reassembles frames natively (ffi/lumen.ts), keeps per-epoch Annex-B
 * streams for decoding, sends input, loss reports and clock probes, and counts everything.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { LumenReceiver, LumenSender, Plane, type LumenFrameInfo, type LumenNative } from "../../ffi/lumen.ts";
import { UdpSocket, type StreamNative } from "../../ffi/stream.ts";
import { AppError } from "../errors.ts";
import { encodeInputEvent } from "../input/encode.ts";
import type { InputEvent } from "../input/model.ts";
import { connectControl, type ControlChannel, type ControlTransport } from "./control.ts";
import { authMac, LUMEN_DEFAULT_PORT } from "./host.ts";
import { encodeMessage, HostMessage, LUMEN_VERSION, MessageReader, type ClientMessage, type CodecName, type Mode, type StreamConfig } from "./messages.ts";
import { confirmMatches, Spake2 } from "./spake2.ts";

/** What a client remembers: its id, and per host the pinned fingerprint and pairing key. */
export interface ClientState {
  clientId: string;
  hosts: Record<string, { fingerprint: string; pairingKey: string }>;
}

export function loadClientState(dir: string): ClientState {
  const file = join(dir, "lumen-client.json");
  if (existsSync(file)) {
    const j = JSON.parse(readFileSync(file, "utf8")) as ClientState;
    if (typeof j.clientId === "string" && j.hosts && typeof j.hosts === "object") return j;
  }
  return { clientId: `c-${randomBytes(12).toString("hex")}`, hosts: {} };
}

export function saveClientState(dir: string, s: ClientState): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, "lumen-client.json");
  writeFileSync(file + ".tmp", JSON.stringify(s, null, 2), { mode: 0o600 });
  renameSync(file + ".tmp", file);
}

export interface ClientOptions {
  host: string;
  port?: number;
  name?: string;
  pin?: string;
  stateDir: string;
  mode: Mode;
  codecs?: CodecName[];
  bitrateKbps?: number;
  /** Share (0..1) of incoming datagrams dropped on purpose, in bursts of `burst`. */
  loss?: number;
  burst?: number;
  seed?: number;
  natives: { lumen: LumenNative; stream: StreamNative };
  /** Called for each reassembled frame (bytes valid during the call). */
  onFrame?: (info: LumenFrameInfo, bytes: Uint8Array, epochConfig: StreamConfig) => void;
  /** Called for each Opus packet of the audio plane. */
  onAudio?: (packet: Uint8Array) => void;
  timeoutMs?: number;
  /** Control transport: QUIC (default) or TLS 1.3 on TCP (the fallback). */
  transport?: ControlTransport;
}

export interface ClientCounters {
  framesSent: number;
  framesReceived: number;
  framesRecovered: number;
  framesLost: number;
  /** Frames kept for decoding (from an IDR on, no gap since). */
  framesDecodable: number;
  idrRequests: number;
  inputSent: number;
  audioPackets: number;
  /** Side-plane datagrams that came over the control channel (QUIC DATAGRAM frames). */
  controlDatagrams: number;
  probes: number;
  clockOffsetNs: number;
  latenciesMs: number[];
  reconfigurations: number;
  datagrams: number;
  badAuth: number;
  replayed: number;
  droppedSim: number;
}

export class LumenClientError extends AppError {}

/** Datagrams per receive call before completed frames are taken (< a frame slot's worth of small frames). */
const RECV_BATCH = 128;

const HOST_KEY = (h: string, p: number) => `${h}:${p}`;

/** One connection to a host. */
export class LumenClient {
  private ch!: ControlChannel;
  private readonly reader = new MessageReader(HostMessage);
  private readonly inbox: HostMessage[] = [];
  private waiters: (() => void)[] = [];
  private closedErr: Error | null = null;
  private udp: UdpSocket | null = null;
  private tx: LumenSender | null = null;
  private rx: LumenReceiver | null = null;
  fingerprint = "";
  sessionId = 0;
  config!: StreamConfig;
  epoch = 0;
  private readonly epochs = new Map<number, StreamConfig>();
  private frameBuf = new Uint8Array(0);
  private nextIndex = 0;
  private broken = true; // until the first IDR
  private bestRtt = Infinity;
  readonly counters: ClientCounters = {
    framesSent: 0, framesReceived: 0, framesRecovered: 0, framesLost: 0, framesDecodable: 0, idrRequests: 0, inputSent: 0,
    audioPackets: 0, controlDatagrams: 0, probes: 0, clockOffsetNs: 0, latenciesMs: [], reconfigurations: 0, datagrams: 0, badAuth: 0, replayed: 0, droppedSim: 0,
  };
  /** Annex-B bytes per epoch, frames from an IDR on without gaps (for decoding). */
  readonly streams = new Map<number, { codec: CodecName; chunks: Uint8Array[]; frames: number }>();
  keepStreams = true;

  constructor(private readonly o: ClientOptions) {}

  /** Replaces the per-frame callback (ClientOptions.onFrame). */
  setFrameHandler(fn: ClientOptions["onFrame"]): void {
    this.o.onFrame = fn;
  }

  get port(): number {
    return this.o.port ?? LUMEN_DEFAULT_PORT;
  }

  private send(m: ClientMessage): void {
    this.ch.write(encodeMessage(m));
  }

  private async next(timeoutMs = this.o.timeoutMs ?? 10_000): Promise<HostMessage> {
    const deadline = Date.now() + timeoutMs;
    while (this.inbox.length === 0) {
      if (this.closedErr) throw this.closedErr;
      const left = deadline - Date.now();
      if (left <= 0) throw new LumenClientError("LUMEN_TIMEOUT", "the host did not answer in time", { status: 504 });
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
    const m = this.inbox.shift()!;
    if (m.type === "error") throw new LumenClientError(m.code, `host refused: ${m.message}`, { status: 403 });
    return m;
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  get transport(): ControlTransport {
    return this.o.transport ?? "quic";
  }

  /** Control connection (QUIC or TLS), pin check, authentication or PIN pairing, Welcome. */
  async connect(): Promise<void> {
    const state = loadClientState(this.o.stateDir);
    const key = HOST_KEY(this.o.host, this.port);
    let der: Uint8Array;
    try {
      ({ channel: this.ch, certDer: der } = await connectControl({ host: this.o.host, port: this.port, transport: this.transport, timeoutMs: this.o.timeoutMs ?? 10_000, lumen: this.o.natives.lumen }));
    } catch (err) {
      const m = (err as Error).message;
      throw new LumenClientError(/in time/.test(m) ? "LUMEN_TIMEOUT" : "LUMEN_CONNECT", `cannot connect to ${key} (${this.transport}): ${m}`, { status: /in time/.test(m) ? 504 : 502 });
    }
    this.ch.onData = (chunk) => {
      try {
        this.inbox.push(...this.reader.push(chunk));
      } catch (err) {
        this.closedErr = err as Error;
        this.ch.destroy();
      }
      this.wake();
    };
    this.ch.onDatagram = (d) => this.controlDatagram(d);
    this.ch.onClose = () => {
      this.closedErr ??= new LumenClientError("LUMEN_CLOSED", "the host closed the connection", { status: 502 });
      this.wake();
    };
    // the pin: SHA-256 of the certificate's DER, as the host's own fingerprint (fingerprintOfPem)
    this.fingerprint = new Bun.CryptoHasher("sha256").update(der).digest("hex");
    const known = state.hosts[key];
    if (known && known.fingerprint !== this.fingerprint) {
      this.ch.destroy();
      throw new LumenClientError("LUMEN_FINGERPRINT_MISMATCH", `the host at ${key} presents certificate ${this.fingerprint.slice(0, 16)}…, not the pinned ${known.fingerprint.slice(0, 16)}…; refusing (pair again only if the host was reinstalled)`, { status: 403 });
    }
    this.send({
      type: "hello", version: LUMEN_VERSION, clientId: state.clientId, name: this.o.name ?? "lumen-client", modes: [this.o.mode],
      codecs: this.o.codecs ?? ["h264", "hevc"], capabilities: ["input", "audio", "rumble", "reconfigure"],
      ...(this.o.bitrateKbps ? { bitrateKbps: this.o.bitrateKbps } : {}),
    });
    const first = await this.next();
    if (first.type === "challenge") {
      if (!known) throw new LumenClientError("LUMEN_PROTOCOL", "the host knows this client but the client has no key for it", { status: 502 });
      this.send({ type: "auth", mac: authMac(Buffer.from(known.pairingKey, "hex"), first.nonce, this.fingerprint, state.clientId) });
    } else if (first.type === "pair-required") {
      if (!this.o.pin) {
        this.ch.destroy();
        throw new LumenClientError("PAIRING_PIN_REQUIRED", `not paired with ${key}: give --pin NNNN and enter the same PIN on the host (pair --pin NNNN)`, { status: 401 });
      }
      const spake = new Spake2("client", this.o.pin, state.clientId, this.fingerprint);
      this.send({ type: "pair-start", share: Buffer.from(spake.share).toString("hex") });
      const share = await this.next(this.o.timeoutMs ?? 120_000);
      if (share.type !== "pair-share") throw new LumenClientError("LUMEN_PROTOCOL", `expected pair-share, got ${share.type}`, { status: 502 });
      const r = spake.finish(Buffer.from(share.share, "hex"));
      this.send({ type: "pair-confirm", confirm: r.confirm.toString("hex") });
      const done = await this.next();
      if (done.type !== "pair-done" || !confirmMatches(r.expect, Buffer.from(done.confirm, "hex")))
        throw new LumenClientError("PAIRING_FAILED", "the host's pairing confirmation is wrong (wrong PIN or a man in the middle)", { status: 403 });
      state.hosts[key] = { fingerprint: this.fingerprint, pairingKey: r.pairingKey.toString("hex") };
      saveClientState(this.o.stateDir, state);
    } else {
      throw new LumenClientError("LUMEN_PROTOCOL", `unexpected ${first.type}`, { status: 502 });
    }
    const w = await this.next();
    if (w.type !== "welcome") throw new LumenClientError("LUMEN_PROTOCOL", `expected welcome, got ${w.type}`, { status: 502 });
    this.sessionId = w.sessionId;
    this.config = w.config;
    this.epochs.set(0, w.config);
    const n = this.o.natives;
    // the data plane goes to the address the control channel reached (names resolved there)
    const addr = this.ch.remote.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, "$1");
    const v6 = addr.includes(":");
    this.udp = UdpSocket.open(n.stream, v6 ? "::" : "0.0.0.0", 0, { rcvbuf: 16 << 20 });
    this.tx = LumenSender.create(n.lumen, this.udp, { key: Buffer.from(w.clientToHost.key, "hex"), salt: Buffer.from(w.clientToHost.salt, "hex"), sessionId: w.sessionId }, { shardBytes: 64, maxFrameBytes: 64 });
    this.tx.setPeer({ family: v6 ? 6 : 4, address: addr, port: w.udpPort });
    this.rx = LumenReceiver.create(n.lumen, { key: Buffer.from(w.hostToClient.key, "hex"), salt: Buffer.from(w.hostToClient.salt, "hex"), sessionId: w.sessionId }, { shardBytes: w.shardBytes, maxFrameBytes: w.maxFrameBytes, slots: 8, readyFrames: 16 });
    // a GSO sender's buffers arrive whole: one read per up to 64 KiB of datagrams
    this.rx.setGro(this.udp, true);
    if (this.o.loss) this.rx.setDrop(this.o.loss, this.o.burst ?? 1, this.o.seed ?? 1);
    this.frameBuf = new Uint8Array(w.maxFrameBytes);
  }

  private probe(): void {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, this.o.natives.stream.monotonicNs(), true);
    this.tx!.sendDatagram("probe", b);
  }

  private report(): void {
    const s = this.rx!.stats();
    const b = new Uint8Array(24);
    const v = new DataView(b.buffer);
    v.setBigUint64(0, BigInt(s.highestSeq), true);
    v.setBigUint64(8, BigInt(s.seqReceived), true);
    v.setUint32(16, s.lossRuns >>> 0, true);
    v.setUint32(20, s.framesComplete >>> 0, true);
    this.tx!.sendDatagram("report", b);
  }

  /** One input event: a DATAGRAM frame on QUIC, the input plane of the UDP data plane on TLS. */
  sendInput(ev: InputEvent): void {
    const packet = encodeInputEvent(ev);
    if (this.ch.transport === "quic") {
      const d = new Uint8Array(1 + packet.length);
      d[0] = Plane.input;
      d.set(packet, 1);
      this.ch.datagram(d);
    } else this.tx!.sendDatagram("input", packet);
    this.counters.inputSent++;
  }

  /** A side-plane datagram from the control channel: `plane byte ‖ payload` (audio, rumble). */
  private controlDatagram(d: Uint8Array): void {
    if (d.length < 1) return;
    this.counters.controlDatagrams++;
    if (d[0] === Plane.audio) {
      this.counters.audioPackets++;
      this.o.onAudio?.(d.subarray(1));
    }
  }

  /** Asks for a new mode/codec/bitrate; resolves with the new config once the host confirms. */
  reconfigure(change: Partial<StreamConfig>): void {
    this.send({ type: "reconfigure", ...change });
  }

  private handleControl(m: HostMessage): void {
    if (m.type === "reconfigured") {
      this.epochs.set(m.epoch, m.config);
      this.counters.reconfigurations++;
    } else if (m.type === "bye") {
      this.counters.framesSent = m.framesSent;
    } else if (m.type === "error") {
      this.closedErr = new LumenClientError(m.code, `host: ${m.message}`, { status: 502 });
    }
  }

  private takeFrames(): void {
    const rx = this.rx!;
    for (;;) {
      const info = rx.nextFrame(this.frameBuf);
      if (!info) break;
      this.counters.framesReceived++;
      if (info.recovered) this.counters.framesRecovered++;
      const latNs = Number(info.completeNs) - (Number(info.captureNs) - this.counters.clockOffsetNs);
      this.counters.latenciesMs.push(latNs / 1e6);
      if (this.nextIndex && info.frameIndex !== this.nextIndex) {
        this.counters.framesLost += Math.max(0, info.frameIndex - this.nextIndex);
        if (!info.idr && !this.broken) {
          this.broken = true;
          this.counters.idrRequests++;
          this.send({ type: "request-idr" });
        }
      }
      this.nextIndex = info.frameIndex + 1;
      if (info.idr) this.broken = false;
      if (info.epoch !== this.epoch) {
        this.epoch = info.epoch;
        this.config = this.epochs.get(info.epoch) ?? this.config;
        if (!info.idr) this.broken = true;
      }
      const bytes = this.frameBuf.subarray(0, info.bytes);
      if (!this.broken) {
        this.counters.framesDecodable++;
        if (this.keepStreams) {
          let s = this.streams.get(info.epoch);
          if (!s) this.streams.set(info.epoch, (s = { codec: info.codec === 1 ? "hevc" : "h264", chunks: [], frames: 0 }));
          s.chunks.push(bytes.slice());
          s.frames++;
        }
      }
      this.o.onFrame?.(info, bytes, this.config);
    }
  }

  private handleSide(): void {
    for (;;) {
      const d = this.rx!.nextSide();
      if (!d) return;
      if (d.plane === "audio") {
        this.counters.audioPackets++;
        this.o.onAudio?.(d.payload);
      }
      else if (d.plane === "probeReply" && d.payload.length === 16) {
        const v = new DataView(d.payload.buffer, d.payload.byteOffset);
        const t1 = Number(v.getBigUint64(0, true)), t2 = Number(v.getBigUint64(8, true)), t3 = Number(this.o.natives.stream.monotonicNs());
        const rtt = t3 - t1;
        this.counters.probes++;
        if (rtt < this.bestRtt) {
          this.bestRtt = rtt;
          this.counters.clockOffsetNs = t2 - (t1 + t3) / 2; // host clock − client clock
        }
      }
    }
  }

  /**
   * Streams for `seconds` (or until `until` returns true): receives, reports loss every 50 ms,
   * probes the clock every 250 ms, calls `tick` every loop with the elapsed ms.
   */
  async stream(seconds: number, tick?: (elapsedMs: number) => void, until?: () => boolean): Promise<ClientCounters> {
    this.send({ type: "start" });
    const t0 = performance.now();
    let lastReport = 0, lastProbe = -1000;
    for (let i = 0; i < 5; i++) this.probe();
    while (performance.now() - t0 < seconds * 1000 && !(until?.() ?? false)) {
      if (this.closedErr) throw this.closedErr;
      while (this.inbox.length) this.handleControl(this.inbox.shift()!);
      // a bounded batch at a time, frames taken between: a backlog (the loop was starved) must not
      // complete more frames than the receiver holds before they are taken
      let first = true;
      while (this.rx!.recv(this.udp!, first ? 1 : 0, RECV_BATCH) >= RECV_BATCH) {
        first = false;
        this.takeFrames();
      }
      this.takeFrames();
      this.handleSide();
      const now = performance.now() - t0;
      if (now - lastReport >= 50) {
        this.report();
        lastReport = now;
      }
      if (now - lastProbe >= 250) {
        this.probe();
        lastProbe = now;
      }
      tick?.(now);
      await new Promise((r) => setImmediate(r));
    }
    return this.finish();
  }

  private async finish(): Promise<ClientCounters> {
    if (!this.closedErr) {
      this.send({ type: "stop" });
      const deadline = Date.now() + 3000;
      while (Date.now() < deadline && !this.closedErr) {
        this.rx!.recv(this.udp!, 1);
        this.takeFrames();
        while (this.inbox.length) {
          const m = this.inbox.shift()!;
          this.handleControl(m);
          if (m.type === "bye") this.closedErr = new LumenClientError("LUMEN_CLOSED", "bye", { status: 200 });
        }
        await new Promise((r) => setTimeout(r, 2));
      }
    }
    // the bye and the close can arrive in one poll of the QUIC thread: what the host sent before
    // them (the last frame's datagrams, a paced frame's tail) is in the socket, read it still
    while (this.rx!.recv(this.udp!, 0) > 0) this.takeFrames();
    this.takeFrames();
    while (this.inbox.length) this.handleControl(this.inbox.shift()!); // a bye that came with the close
    const s = this.rx!.stats();
    this.counters.datagrams = s.datagrams;
    this.counters.badAuth = s.badAuth;
    this.counters.replayed = s.replayed;
    this.counters.droppedSim = s.droppedSim;
    return this.counters;
  }

  rxStats() {
    return this.rx?.stats() ?? null;
  }

  close(): void {
    this.ch?.destroy();
    this.tx?.close();
    this.rx?.close();
    this.udp?.close();
    this.tx = this.rx = null;
    this.udp = null;
  }
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}
