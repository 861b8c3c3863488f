/**
 * The lumen/1 host: control over QUIC on UDP port P (TLS 1.3 on TCP port P as the fallback; the
 * GameStream certificate as identity on both), the data plane on UDP port P + 1 shared by every
 * session (datagrams demuxed by the session id in their header). See PROTOCOL.md.
 *
 * Per connection: Hello → (Challenge → Auth | PairRequired → PIN on the host → SPAKE2) →
 * Welcome → Start → stream; Reconfigure / RequestIdr at any time; Stop → Bye.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { UdpSocket, type UdpPeer } from "../../ffi/stream.ts";
import { AppError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { InputEvent } from "../input/model.ts";
import { ControlServer, type ControlChannel } from "./control.ts";
import { ClientMessage, encodeMessage, LumenProtocolError, MessageReader, type HostMessage, type StreamConfig } from "./messages.ts";
import { PinWaiters, type LumenPairingStore, type LumenPendingPairing } from "./pairing.ts";
import { LumenSession, type FrameSource, type SessionNatives } from "./session.ts";
import { confirmMatches, Spake2 } from "./spake2.ts";

export const LUMEN_DEFAULT_PORT = 48100;

export type FrameSourceLike = FrameSource;

export interface LumenHostOptions {
  host: string;
  port: number;
  keyPem: string;
  certPem: string;
  /** SHA-256 of the certificate's DER, lowercase hex (what clients pin). */
  fingerprint: string;
  natives: SessionNatives;
  store: LumenPairingStore;
  log: Logger;
  source: FrameSource;
  maxSessions: number;
  pinTimeoutMs: number;
  /** Largest mode a client may ask for (pixels per frame; default 3840 × 2160). */
  maxPixels?: number;
  shardBytes?: number;
  maxFrameBytes?: number;
  paceFraction?: number;
  fecMinPctX100?: number;
  fecMaxPctX100?: number;
  /** A session whose client sent no authenticated datagram this long is ended (default 10 s). */
  silenceMs?: number;
  /** UDP GSO for video (default on); off where a path drops whole GSO buffers (netfilter on loopback). */
  gso?: boolean;
  onInput?: (sessionId: number, events: InputEvent[]) => void;
  onEvent?: (type: string, data: Record<string, unknown>) => void;
  audio?: (sessionId: number) => { nextPacket(): Uint8Array | null; intervalMs: number; close?(): void } | null;
}

/** MAC a paired client sends to prove it holds the pairing key. */
export function authMac(pairingKey: Uint8Array, nonce: string, fingerprint: string, clientId: string): string {
  return createHmac("sha256", pairingKey).update(`lumen/1 auth\n${nonce}\n${fingerprint}\n${clientId}`).digest("hex");
}

export function fingerprintOfPem(certPem: string): string {
  const b64 = certPem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "");
  return createHash("sha256").update(Buffer.from(b64, "base64")).digest("hex");
}

interface Conn {
  ch: ControlChannel;
  idle: ReturnType<typeof setTimeout> | null;
  remote: string;
  abort: AbortController;
  session: LumenSession | null;
  state: "hello" | "auth" | "pairing" | "pair-confirm" | "welcomed" | "streaming" | "closed";
  hello?: Extract<ClientMessage, { type: "hello" }>;
  nonce?: string;
  /** Pairing: the host's SPAKE2 side (once the PIN is entered) and the client's share (once sent). */
  spake?: Spake2;
  clientShare?: Uint8Array;
  pake?: { spake: Spake2; result: ReturnType<Spake2["finish"]> };
}

export class LumenHost {
  private server: ControlServer | null = null;
  private socket: UdpSocket | null = null;
  private poll: ReturnType<typeof setInterval> | null = null;
  private statsTimer: ReturnType<typeof setInterval> | null = null;
  private readonly conns = new Set<Conn>();
  readonly sessions = new Map<number, LumenSession>();
  private readonly connOf = new Map<number, Conn>();
  readonly pins: PinWaiters;
  private readonly dgram = new Uint8Array(2048);
  readonly counters = { datagrams: 0, unknownSession: 0, dropped: 0, refusedConnections: 0, protocolErrors: 0 };
  port = 0;
  /** UDP port of the data plane (Welcome's udpPort). */
  dataPort = 0;

  constructor(private readonly o: LumenHostOptions) {
    this.pins = new PinWaiters(o.pinTimeoutMs);
  }

  async start(): Promise<number> {
    const server = new ControlServer(
      { host: this.o.host, port: this.o.port, certPem: this.o.certPem, keyPem: this.o.keyPem, maxConns: Math.max(8, this.o.maxSessions * 2), lumen: this.o.natives.lumen },
      (ch) => this.accept(ch),
      () => this.counters.refusedConnections++,
    );
    this.port = await server.start();
    this.server = server;
    // the data plane: P + 1 (QUIC holds UDP P); any free port when the host was given port 0
    this.socket = UdpSocket.open(this.o.natives.stream, this.o.host, this.o.port ? this.port + 1 : 0, { sndbuf: 8 << 20, rcvbuf: 1 << 20 });
    this.dataPort = this.socket.port;
    return this.port;
  }

  /** The UDP poll (every 2 ms) and the stats timer run only while a session exists: an idle host wakes for nothing. */
  private timers(on: boolean): void {
    if (on && !this.poll) {
      this.poll = setInterval(() => this.drain(), 2);
      // once a second, each session's counters on the event bus (session.stats, as GameStream's)
      this.statsTimer = setInterval(() => {
        const now = performance.now();
        for (const s of [...this.sessions.values()]) {
          // the client reports every 50 ms: silence this long means it is gone (the TCP side may linger)
          const c = this.connOf.get(s.id);
          if (c && now - s.lastHeardMs > (this.o.silenceMs ?? 10_000)) {
            this.fail(c, "LUMEN_CLIENT_SILENT", "no datagram from the client for too long");
            continue;
          }
          this.o.onEvent?.("session.stats", { protocol: "lumen", session: s.id, ...s.config, ...s.snapshot() });
        }
      }, 1000);
    } else if (!on && this.poll) {
      clearInterval(this.poll);
      if (this.statsTimer) clearInterval(this.statsTimer);
      this.poll = this.statsTimer = null;
    }
  }

  /** Datagrams from clients: a handful per frame interval (input, reports, probes). */
  private drain(): void {
    const sock = this.socket;
    if (!sock) return;
    for (let i = 0; i < 256; i++) {
      const r = sock.recv(this.dgram);
      if (!r) return;
      this.counters.datagrams++;
      const bytes = this.dgram.subarray(0, r.length);
      if (bytes.length < 16) {
        this.counters.dropped++;
        continue;
      }
      const sid = new DataView(bytes.buffer, bytes.byteOffset).getUint32(4, true);
      const s = this.sessions.get(sid);
      if (!s) {
        this.counters.unknownSession++;
        continue;
      }
      if (!s.datagram(bytes, r.from)) this.counters.dropped++;
    }
  }

  pending(): LumenPendingPairing[] {
    return this.pins.pending();
  }

  private send(c: Conn, m: HostMessage): void {
    if (c.state !== "closed" && !c.ch.closed) c.ch.write(encodeMessage(m));
  }

  private fail(c: Conn, code: string, message: string): void {
    this.counters.protocolErrors++;
    this.o.log.info("lumen connection refused", { remote: c.remote, code, reason: message });
    this.send(c, { type: "error", code, message });
    this.close(c);
  }

  private close(c: Conn): void {
    if (c.state === "closed") return;
    c.state = "closed";
    c.abort.abort();
    if (c.session) {
      this.sessions.delete(c.session.id);
      this.connOf.delete(c.session.id);
      this.o.onEvent?.("lumen.session.ended", { session: c.session.id, ...c.session.snapshot() });
      c.session.close();
      c.session = null;
      if (this.sessions.size === 0) this.timers(false);
    }
    this.conns.delete(c);
    if (c.idle) clearTimeout(c.idle);
    c.ch.end();
  }

  private accept(ch: ControlChannel): void {
    const c: Conn = { ch, idle: null, remote: ch.remote, abort: new AbortController(), session: null, state: "hello" };
    this.conns.add(c);
    const reader = new MessageReader(ClientMessage);
    // until Welcome a connection must make progress; afterwards its datagrams watch it (silenceMs)
    const idle = () => {
      if (c.idle) clearTimeout(c.idle);
      c.idle = c.state === "hello" || c.state === "auth" || c.state === "pair-confirm" ? setTimeout(() => this.fail(c, "LUMEN_TIMEOUT", "the connection was idle too long"), 30_000) : null;
    };
    idle();
    ch.onDatagram = (d) => c.session?.controlDatagram(d);
    ch.onData = (chunk: Uint8Array) => {
      idle();
      let msgs: ClientMessage[];
      try {
        msgs = reader.push(chunk);
      } catch (err) {
        const e = err as LumenProtocolError;
        return this.fail(c, e.errorCode ?? "LUMEN_MESSAGE_INVALID", e.message);
      }
      for (const m of msgs) {
        if (c.state === "closed") return;
        this.handle(c, m).catch((err: unknown) => {
          const e = err as AppError;
          this.fail(c, e.errorCode ?? "LUMEN_ERROR", e.message);
        });
      }
    };
    ch.onClose = () => this.close(c);
  }

  private async handle(c: Conn, m: ClientMessage): Promise<void> {
    switch (m.type) {
      case "hello": {
        if (c.state !== "hello") return this.fail(c, "LUMEN_UNEXPECTED", "hello twice");
        c.hello = m;
        const paired = this.o.store.byClientId(m.clientId);
        if (paired) {
          c.nonce = randomBytes(32).toString("hex");
          c.state = "auth";
          return this.send(c, { type: "challenge", nonce: c.nonce });
        }
        c.state = "pairing";
        const wait = this.pins.wait(m.name, c.remote, c.abort.signal);
        this.o.onEvent?.("pairing.request", { protocol: "lumen", attemptId: wait.id, deviceName: m.name, remoteIp: c.remote });
        this.send(c, { type: "pair-required", attemptId: wait.id });
        const pin = await wait.pin;
        if ((c.state as Conn["state"]) !== "pairing") return;
        c.spake = new Spake2("host", pin, m.clientId, this.o.fingerprint);
        return this.pairShare(c);
      }
      case "auth": {
        if (c.state !== "auth" || !c.hello || !c.nonce) return this.fail(c, "LUMEN_UNEXPECTED", "auth out of order");
        const paired = this.o.store.byClientId(c.hello.clientId);
        const want = paired ? Buffer.from(authMac(Buffer.from(paired.pairingKey, "hex"), c.nonce, this.o.fingerprint, c.hello.clientId), "hex") : Buffer.alloc(32);
        if (!paired || !timingSafeEqual(want, Buffer.from(m.mac, "hex"))) return this.fail(c, "LUMEN_AUTH_FAILED", "the client's pairing proof is wrong; pair again");
        this.o.store.touch(c.hello.clientId, new Date());
        return this.welcome(c);
      }
      case "pair-start": {
        if (c.state !== "pairing" || c.clientShare) return this.fail(c, "LUMEN_UNEXPECTED", "pair-start out of order");
        c.clientShare = Buffer.from(m.share, "hex");
        return this.pairShare(c);
      }
      case "pair-confirm": {
        if (c.state !== "pair-confirm" || !c.pake || !c.hello) return this.fail(c, "LUMEN_UNEXPECTED", "pair-confirm out of order");
        if (!confirmMatches(c.pake.result.expect, Buffer.from(m.confirm, "hex"))) {
          this.o.onEvent?.("pairing.failed", { protocol: "lumen", deviceName: c.hello.name, remoteIp: c.remote, reason: "wrong PIN" });
          return this.fail(c, "PAIRING_PIN_MISMATCH", "wrong PIN: the pairing is refused");
        }
        this.o.store.upsert({ clientId: c.hello.clientId, name: c.hello.name, pairingKey: c.pake.result.pairingKey.toString("hex") });
        this.o.onEvent?.("pairing.paired", { protocol: "lumen", deviceName: c.hello.name, remoteIp: c.remote });
        this.send(c, { type: "pair-done", confirm: c.pake.result.confirm.toString("hex") });
        return this.welcome(c);
      }
      case "start": {
        if (c.state !== "welcomed" || !c.session) return this.fail(c, "LUMEN_UNEXPECTED", "start before welcome");
        c.state = "streaming";
        c.session.start();
        return;
      }
      case "reconfigure": {
        if (!c.session) return this.fail(c, "LUMEN_UNEXPECTED", "reconfigure without a session");
        const { type: _t, ...change } = m;
        try {
          this.checkMode({ width: change.width ?? c.session.config.width, height: change.height ?? c.session.config.height });
          const config = c.session.reconfigure(change);
          this.o.onEvent?.("lumen.session.reconfigured", { session: c.session.id, ...config, epoch: c.session.epoch });
          return this.send(c, { type: "reconfigured", config, epoch: c.session.epoch });
        } catch (err) {
          return this.fail(c, "LUMEN_MODE_REFUSED", (err as Error).message);
        }
      }
      case "request-idr":
        c.session?.requestIdr();
        return;
      case "stop": {
        const framesSent = c.session?.snapshot().framesSent ?? 0;
        this.send(c, { type: "bye", framesSent, reason: "the client stopped" });
        return this.close(c);
      }
    }
  }

  private pairShare(c: Conn): void {
    const spake = c.spake, share = c.clientShare;
    if (!spake || !share || c.state !== "pairing") return;
    let result;
    try {
      result = spake.finish(share);
    } catch (err) {
      return this.fail(c, "LUMEN_PAKE_FAILED", (err as Error).message);
    }
    c.pake = { spake, result };
    c.state = "pair-confirm";
    this.send(c, { type: "pair-share", share: Buffer.from(spake.share).toString("hex") });
  }

  private checkMode(m: { width: number; height: number }): void {
    const max = this.o.maxPixels ?? 3840 * 2160;
    if (m.width * m.height > max) throw new AppError("LUMEN_MODE_REFUSED", `mode ${m.width}x${m.height} exceeds this host's ${max} pixels per frame`, { status: 422 });
  }

  private pickConfig(h: NonNullable<Conn["hello"]>): StreamConfig {
    const mode = h.modes.find((m) => m.width * m.height <= (this.o.maxPixels ?? 3840 * 2160)) ?? h.modes[0]!;
    this.checkMode(mode);
    const codec = h.codecs.includes("h264") ? "h264" : h.codecs[0]!;
    const bitrate = h.bitrateKbps ?? Math.max(2000, Math.round((mode.width * mode.height * mode.fps) / 20_000));
    return { codec, width: mode.width, height: mode.height, fps: mode.fps, bitrateKbps: Math.min(500_000, bitrate) };
  }

  private welcome(c: Conn): void {
    if (!c.hello || !this.socket) return;
    if (this.sessions.size >= this.o.maxSessions) return this.fail(c, "LUMEN_BUSY", `${this.o.maxSessions} sessions already run`);
    let id = 0;
    while (id === 0 || this.sessions.has(id)) id = randomBytes(4).readUInt32LE(0);
    let config: StreamConfig;
    try {
      config = this.pickConfig(c.hello);
    } catch (err) {
      return this.fail(c, (err as AppError).errorCode ?? "LUMEN_MODE_REFUSED", (err as Error).message);
    }
    const shardBytes = this.o.shardBytes ?? 1344;
    const maxFrameBytes = this.o.maxFrameBytes ?? 8 << 20;
    let session: LumenSession;
    try {
      session = new LumenSession({
        id, config, shardBytes, maxFrameBytes, natives: this.o.natives, socket: this.socket, source: this.o.source,
        sideChannel: c.ch.transport === "quic" ? (d) => c.ch.datagram(d) : undefined,
        log: this.o.log, paceFraction: this.o.paceFraction ?? 0.25, paceMinDatagrams: 64,
        onInput: this.o.onInput ? (ev) => this.o.onInput!(id, ev) : undefined, audio: this.o.audio?.(id) ?? null,
        fecMinPctX100: this.o.fecMinPctX100 ?? 100, fecMaxPctX100: this.o.fecMaxPctX100 ?? 5000, gso: this.o.gso,
      });
    } catch (err) {
      return this.fail(c, "LUMEN_ENCODER", (err as Error).message);
    }
    c.session = session;
    this.sessions.set(id, session);
    this.connOf.set(id, c);
    // from here the client is watched by its datagrams (silenceMs), not by the control channel's idleness
    if (c.idle) clearTimeout(c.idle);
    c.idle = null;
    this.timers(true);
    c.state = "welcomed";
    const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
    this.o.onEvent?.("lumen.session.started", { session: id, client: c.hello.name, transport: c.ch.transport, ...config });
    this.send(c, {
      type: "welcome", sessionId: id, udpPort: this.dataPort, config, epoch: 0, shardBytes, maxFrameBytes,
      hostToClient: { key: hex(session.keys.hostToClient.key), salt: hex(session.keys.hostToClient.salt) },
      clientToHost: { key: hex(session.keys.clientToHost.key), salt: hex(session.keys.clientToHost.salt) },
    });
  }

  /** Enters the PIN for a waiting lumen client; null when none waits. */
  submitPin(pin: string, attemptId?: string): LumenPendingPairing | null {
    return this.pins.submit(pin, attemptId);
  }

  async stop(): Promise<void> {
    this.timers(false);
    for (const c of [...this.conns]) {
      this.send(c, { type: "bye", framesSent: c.session?.snapshot().framesSent ?? 0, reason: "the host stops" });
      this.close(c);
    }
    const server = this.server;
    this.server = null;
    await server?.stop();
    this.socket?.close();
    this.socket = null;
  }
}

export type { UdpPeer };
