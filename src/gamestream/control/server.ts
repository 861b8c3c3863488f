/**
 * The GameStream control stream (UDP base+10): ENet (libenet through ffi/enet.ts, polled from
 * a timer) carrying encrypted control messages. A client connects with 0x30 channels and the
 * session's connect data; every message is opened with the session's rikey, replays and bad tags
 * are dropped (counted, logged a bounded number of times). IDR requests and reference-frame
 * invalidations become events for the video sender; input goes to the session's input backend;
 * 10 s without a message, or the client's disconnect, ends the session; a session that ends gets a
 * graceful termination, and so does the connection a relaunch or resume replaces. Several sessions
 * share the port: the connect data finds the session.
 */
import { EnetHost, type EnetEvent, type EnetPeer } from "../../../ffi/enet.ts";
import type { InputBackend, InputBackendStats } from "../../input/backend.ts";
import { InputSink, type InputAdmission, type InputSinkStats } from "../../input/service.ts";
import type { Logger } from "../../log.ts";
import type { RtspCipher } from "../rtsp/record.ts";
import type { SessionEvent, SessionStore, StreamSession } from "../sessions.ts";
import { ControlType, openControl, ReplayWindow, sealControl, type ControlMessage } from "./envelope.ts";
import { parseFecStatus, parseInvalidation, rumblePayload, terminationPayload, type FrameFecStatus, type FrameRange, type Rumble } from "./messages.ts";

export const CONTROL_CHANNELS = 0x30;

export type ControlEvent =
  | { type: "connected"; sessionId: string; address: string }
  /** The client asked for a fresh IDR frame (0x0302 / 0x0307). */
  | { type: "idr-request"; sessionId: string }
  /** The client lost reference frames `range`: recover with an IDR (or a frame that avoids them). */
  | { type: "invalidate-refs"; sessionId: string; range: FrameRange }
  | { type: "fec-status"; sessionId: string; status: FrameFecStatus }
  | { type: "disconnected"; sessionId: string; reason: "client" | "timeout" | "session-ended" | "replaced" };

export type DropReason = "unencrypted" | "malformed" | "badTag" | "replayed" | "rateLimited" | "oversized";

export interface ControlStats {
  sessionId: string;
  address: string;
  connectedAt: string;
  messages: number;
  pings: number;
  idrRequests: number;
  invalidations: number;
  unknownTypes: number;
  dropped: Record<DropReason, number>;
  fec: { reports: number; lostDataShards: number; recoveredFrames: number; unrecoverableFrames: number; lastFrameIndex: number | null };
  /** The client's periodic loss reports (0x0201): reports received, frames it said it lost. */
  loss: { reports: number; framesLost: number };
  /** The session's input: counters and the backend that serves it (qmp, host-session, counting, ...). */
  input: (InputSinkStats & { backend: string }) | null;
  msSinceLastMessage: number;
}

export interface ControlServerOptions {
  host: string;
  port: number;
  sessions: SessionStore;
  /** AES-128-GCM with the session's rikey. */
  cipher: (key: Uint8Array) => RtspCipher;
  /** The input backend of a session (opened by the server, closed when the connection goes). */
  inputBackend: (session: StreamSession) => Promise<InputBackend>;
  log: Logger;
  /** Time without a message from the client before the session ends (default 10 s). */
  peerTimeoutMs?: number;
  /** Time a launched or resumed session may go without a control connection before it ends (default 3 × peerTimeoutMs, at least 5 s). */
  connectTimeoutMs?: number;
  /** How often the ENet host is serviced (ms, default 2): bounds the delay of an IDR request. */
  pollIntervalMs?: number;
  /** ENet events handled per poll (default 512): bounds the work a flood can cause per tick. */
  maxEventsPerPoll?: number;
  /** Messages a connection may send per second before the rest are dropped (default 4000: a 1 kHz mouse, keys, pad and pings fit). */
  maxMessagesPerSecond?: number;
  maxPeers?: number;
  /**
   * Which input events of a session go on (checked per event, so a grant or revoke applies at
   * once); absent: all of them.
   */
  inputAdmission?: (session: StreamSession) => InputAdmission;
}

const LOG_FIRST = 10;
const LOG_EVERY = 1000;

interface Connection {
  peer: EnetPeer;
  session: StreamSession;
  address: string;
  cipher: RtspCipher;
  replay: ReplayWindow;
  sendSeq: number;
  connectedAt: Date;
  lastMessageAt: number;
  windowStart: number;
  windowCount: number;
  sink: InputSink | null;
  backend: InputBackend | null;
  stats: Omit<ControlStats, "sessionId" | "address" | "connectedAt" | "input" | "msSinceLastMessage">;
  dropsLogged: number;
  closing: boolean;
}

export class ControlServer {
  private host: EnetHost | null = null;
  private timer: ReturnType<typeof setInterval> | null = null;
  private readonly connections = new Map<EnetPeer, Connection>();
  private readonly listeners = new Set<(e: ControlEvent) => void>();
  private unsubscribe: (() => void) | null = null;
  private readonly peerTimeoutMs: number;
  private readonly maxEventsPerPoll: number;
  private readonly maxPerSecond: number;
  private readonly log: Logger;
  /** Connect attempts refused (unknown connect data). */
  refusedConnects = 0;
  /** Live sessions without a control connection: since when (ms). */
  private readonly unclaimedSince = new Map<string, number>();
  private readonly connectTimeoutMs: number;

  constructor(private readonly opts: ControlServerOptions) {
    this.peerTimeoutMs = opts.peerTimeoutMs ?? 10_000;
    this.connectTimeoutMs = opts.connectTimeoutMs ?? Math.max(3 * this.peerTimeoutMs, 5000);
    this.maxEventsPerPoll = opts.maxEventsPerPoll ?? 512;
    this.maxPerSecond = opts.maxMessagesPerSecond ?? 4000;
    this.log = opts.log;
  }

  get port(): number {
    return this.opts.port;
  }

  start(): void {
    if (this.host) return;
    this.host = new EnetHost({ bind: { host: this.opts.host, port: this.opts.port }, peers: this.opts.maxPeers ?? 8, channels: CONTROL_CHANNELS });
    this.unsubscribe = this.opts.sessions.subscribe((e) => this.onSession(e));
    this.timer = setInterval(() => this.poll(), this.opts.pollIntervalMs ?? 2);
    this.log.info("control stream listening", { host: this.opts.host, port: this.opts.port, peerTimeoutMs: this.peerTimeoutMs });
  }

  /** Subscribes to control events (IDR requests, invalidations, FEC status, connection changes). */
  subscribe(listener: (e: ControlEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Statistics of the session's control connection, or null when it has none. */
  stats(sessionId: string): ControlStats | null {
    const c = [...this.connections.values()].find((x) => x.session.id === sessionId && !x.closing);
    if (!c) return null;
    return {
      ...c.stats,
      dropped: { ...c.stats.dropped },
      fec: { ...c.stats.fec },
      loss: { ...c.stats.loss },
      sessionId,
      address: c.address,
      connectedAt: c.connectedAt.toISOString(),
      input: c.sink && c.backend ? { ...c.sink.stats(), backend: c.backend.name } : null,
      msSinceLastMessage: Date.now() - c.lastMessageAt,
    };
  }

  /** The input backend serving the session's control connection: its name and counters (null: none yet). */
  inputBackendOf(sessionId: string): { name: string; stats: InputBackendStats } | null {
    const c = [...this.connections.values()].find((x) => x.session.id === sessionId && !x.closing);
    return c?.backend ? { name: c.backend.name, stats: c.backend.stats() } : null;
  }

  /** Sends a rumble to the session's client; false when it has no control connection. */
  rumble(sessionId: string, r: Rumble): boolean {
    if (!Number.isInteger(r.controller) || r.controller < 0 || r.controller > 15) throw new RangeError("controller must be 0–15");
    for (const v of [r.lowFreq, r.highFreq]) if (!Number.isInteger(v) || v < 0 || v > 0xffff) throw new RangeError("rumble strength must be 0–65535");
    const c = this.connectionOf(sessionId);
    if (!c) return false;
    return this.send(c, { type: ControlType.RUMBLE, payload: rumblePayload(r) });
  }

  /**
   * Releases every key, button and pad state the session's client holds (an input permission was
   * revoked: the release events it sends next are dropped, so nothing may stay pressed).
   */
  async releaseInput(sessionId: string): Promise<void> {
    const c = this.connectionOf(sessionId);
    try {
      await c?.backend?.releaseAll();
    } catch (err) {
      this.log.warn("input release failed", { session: sessionId, error: err });
    }
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.unsubscribe?.();
    this.unsubscribe = null;
    const host = this.host;
    if (!host) return;
    for (const c of [...this.connections.values()]) {
      if (!c.closing) this.send(c, { type: ControlType.TERMINATION, payload: terminationPayload() });
      host.flush();
      host.disconnectNow(c.peer);
      await this.drop(c, "session-ended");
    }
    host.close();
    this.host = null;
  }

  private connectionOf(sessionId: string): Connection | undefined {
    return [...this.connections.values()].find((x) => x.session.id === sessionId && !x.closing);
  }

  private emit(e: ControlEvent): void {
    for (const l of [...this.listeners]) {
      try {
        l(e);
      } catch (err) {
        this.log.error("control event listener failed", { event: e.type, session: e.sessionId, error: err });
      }
    }
  }

  private poll(): void {
    const host = this.host;
    if (!host) return;
    try {
      for (let i = 0; i < this.maxEventsPerPoll; i++) {
        const ev = host.service(0);
        if (!ev) break;
        this.onEnet(ev);
      }
      this.checkTimeouts();
    } catch (err) {
      this.log.error("control stream poll failed", { error: err });
    }
  }

  private onEnet(ev: EnetEvent): void {
    const host = this.host!;
    if (ev.type === "connect") {
      const s = this.opts.sessions.byConnectData(ev.data);
      if (!s) {
        this.refusedConnects++;
        if (this.refusedConnects <= LOG_FIRST || this.refusedConnects % LOG_EVERY === 0) {
          this.log.warn("control connect refused: unknown connect data", { address: ev.address, refused: this.refusedConnects });
        }
        host.disconnectNow(ev.peer);
        return;
      }
      // a connection of the session still open (a resume whose event it missed): it ends gracefully first
      const old = this.connectionOf(s.id);
      if (old) this.terminate(old, "replaced", "a new control connection of the session");
      this.accept(ev.peer, s, ev.address);
      return;
    }
    const c = this.connections.get(ev.peer);
    if (!c) return;
    if (ev.type === "disconnect") {
      const byClient = !c.closing;
      void this.drop(c, "client");
      if (byClient) {
        this.log.info("control stream disconnected by the client", { session: c.session.id });
        if (this.opts.sessions.isLive(c.session)) this.opts.sessions.end(c.session.id, "client-disconnected");
      }
      return;
    }
    if (ev.type === "oversized") {
      this.dropped(c, "oversized", `${ev.bytes} bytes`);
      return;
    }
    this.onMessage(c, ev.data);
  }

  private accept(peer: EnetPeer, session: StreamSession, address: string): void {
    const now = Date.now();
    const c: Connection = {
      peer,
      session,
      address,
      cipher: this.opts.cipher(session.riKey),
      replay: new ReplayWindow(),
      sendSeq: 0,
      connectedAt: new Date(now),
      lastMessageAt: now,
      windowStart: now,
      windowCount: 0,
      sink: null,
      backend: null,
      stats: {
        messages: 0,
        pings: 0,
        idrRequests: 0,
        invalidations: 0,
        unknownTypes: 0,
        dropped: { unencrypted: 0, malformed: 0, badTag: 0, replayed: 0, rateLimited: 0, oversized: 0 },
        fec: { reports: 0, lostDataShards: 0, recoveredFrames: 0, unrecoverableFrames: 0, lastFrameIndex: null },
        loss: { reports: 0, framesLost: 0 },
      },
      dropsLogged: 0,
      closing: false,
    };
    this.connections.set(peer, c);
    // ENet's own timeout a little later than ours, so ours (which ends the session) decides.
    this.host!.peerTimeout(peer, this.peerTimeoutMs + 5000, this.peerTimeoutMs + 5000);
    const log = this.log.child({ session: session.id });
    log.info("control stream connected", { address });
    this.opts
      .inputBackend(session)
      .then(async (backend) => {
        await backend.open();
        if (c.closing) {
          await backend.close();
          return;
        }
        c.backend = backend;
        c.sink = new InputSink(backend, log.child({ component: "input" }), this.opts.inputAdmission?.(session));
        log.info("input backend ready", { backend: backend.name });
      })
      .catch((err) => log.warn("no input backend for the session: input is dropped", { error: err }));
    this.emit({ type: "connected", sessionId: session.id, address });
  }

  private dropped(c: Connection, reason: DropReason, detail: string): void {
    c.stats.dropped[reason]++;
    c.dropsLogged++;
    if (c.dropsLogged <= LOG_FIRST || c.dropsLogged % LOG_EVERY === 0) {
      this.log.warn("control message dropped", { session: c.session.id, reason, detail, droppedSoFar: c.dropsLogged });
    }
  }

  private onMessage(c: Connection, data: Uint8Array): void {
    if (c.closing) return;
    const now = Date.now();
    if (now - c.windowStart >= 1000) {
      c.windowStart = now;
      c.windowCount = 0;
    }
    if (++c.windowCount > this.maxPerSecond) {
      this.dropped(c, "rateLimited", `over ${this.maxPerSecond} messages/s`);
      return;
    }
    const r = openControl(c.cipher, data);
    if (!r.ok) {
      this.dropped(c, r.reason === "bad-tag" ? "badTag" : r.reason, r.detail);
      return;
    }
    if (!c.replay.accept(r.seq)) {
      this.dropped(c, "replayed", `seq ${r.seq}`);
      return;
    }
    c.lastMessageAt = now;
    c.stats.messages++;
    this.handle(c, r.message);
  }

  private handle(c: Connection, m: ControlMessage): void {
    const sessionId = c.session.id;
    switch (m.type) {
      case ControlType.PING:
        c.stats.pings++;
        return;
      case ControlType.IDR_REQUEST:
      case ControlType.START_B:
        c.stats.idrRequests++;
        this.emit({ type: "idr-request", sessionId });
        return;
      case ControlType.INVALIDATE_REFS: {
        const range = parseInvalidation(m.payload);
        if (!range) return this.dropped(c, "malformed", `invalidation of ${m.payload.length} bytes`);
        c.stats.invalidations++;
        this.emit({ type: "invalidate-refs", sessionId, range });
        return;
      }
      case ControlType.FEC_STATUS: {
        const s = parseFecStatus(m.payload);
        if (!s) return this.dropped(c, "malformed", `FEC status of ${m.payload.length} bytes`);
        const f = c.stats.fec;
        f.reports++;
        f.lastFrameIndex = s.frameIndex;
        f.lostDataShards += s.totalData - s.receivedData;
        if (s.receivedData + s.receivedParity >= s.totalData) f.recoveredFrames++;
        else f.unrecoverableFrames++;
        this.emit({ type: "fec-status", sessionId, status: s });
        return;
      }
      case ControlType.INPUT:
        if (c.sink) c.sink.deliver(m.payload);
        return;
      case ControlType.LOSS_STATS: {
        // LE32 frames lost since the last report, then interval and frame fields this host does not use
        if (m.payload.length < 4 || m.payload.length > 64) return this.dropped(c, "malformed", `loss report of ${m.payload.length} bytes`);
        const lost = new DataView(m.payload.buffer, m.payload.byteOffset, 4).getUint32(0, true);
        c.stats.loss.reports++;
        c.stats.loss.framesLost += Math.min(lost, 1_000_000);
        return;
      }
      case ControlType.LTR_ACK:
        return;
      default:
        c.stats.unknownTypes++;
        if (c.stats.unknownTypes <= LOG_FIRST) this.log.debug("control message of unknown type", { session: sessionId, type: `0x${m.type.toString(16)}`, bytes: m.payload.length });
    }
  }

  private send(c: Connection, m: ControlMessage): boolean {
    if (!this.host || c.closing) return false;
    const ok = this.host.send(c.peer, 0, sealControl(c.cipher, c.sendSeq++, m, "host"));
    this.host.flush();
    return ok;
  }

  private checkTimeouts(): void {
    const now = Date.now();
    for (const c of this.connections.values()) {
      if (c.closing || now - c.lastMessageAt <= this.peerTimeoutMs) continue;
      this.log.warn("control stream timed out: ending the session", { session: c.session.id, silentMs: now - c.lastMessageAt });
      this.host!.disconnectNow(c.peer);
      void this.drop(c, "timeout");
      if (this.opts.sessions.isLive(c.session)) this.opts.sessions.end(c.session.id, "control-timeout", `no control message for ${now - c.lastMessageAt} ms`);
    }
    // a launched (or resumed) session whose client never connects holds a slot: it ends too
    const connected = new Set<string>();
    for (const c of this.connections.values()) if (!c.closing && this.opts.sessions.isLive(c.session)) connected.add(c.session.id);
    for (const id of this.unclaimedSince.keys()) if (connected.has(id) || !this.opts.sessions.get(id)) this.unclaimedSince.delete(id);
    for (const s of this.opts.sessions.list()) {
      if (connected.has(s.id)) continue;
      const since = this.unclaimedSince.get(s.id);
      if (since === undefined) this.unclaimedSince.set(s.id, now);
      else if (now - since > this.connectTimeoutMs) {
        this.unclaimedSince.delete(s.id);
        this.log.warn("no control connection for the session: ending it", { session: s.id, waitedMs: now - since });
        this.opts.sessions.end(s.id, "control-timeout", `no control connection within ${this.connectTimeoutMs} ms`);
      }
    }
  }

  /**
   * Session end, and a resume that replaces the session's keys: the connection that belongs to
   * the old state gets the graceful termination, then a disconnect once it is delivered (a client
   * that gets only the disconnect reports an error).
   */
  private onSession(e: SessionEvent): void {
    if (e.type === "playing") return;
    const c = this.connectionOf(e.session.id);
    if (!c) return;
    if (e.type === "ended") this.terminate(c, "session-ended", e.reason);
    else if (c.session === e.previous) this.terminate(c, "replaced", "resumed with new keys");
  }

  /** The graceful end of one connection: termination message, disconnect after it, the connection forgotten then. */
  private terminate(c: Connection, reason: "session-ended" | "replaced", why: string): void {
    if (!this.host || c.closing) return;
    this.send(c, { type: ControlType.TERMINATION, payload: terminationPayload() });
    this.host.disconnectLater(c.peer);
    this.log.info("control stream: sent termination", { session: c.session.id, reason: why });
    void this.drop(c, reason, false);
  }

  /** Forgets a connection (now, or when ENet reports its disconnect when `forget` is false) and releases its input. */
  private async drop(c: Connection, reason: Extract<ControlEvent, { type: "disconnected" }>["reason"], forget = true): Promise<void> {
    if (forget) this.connections.delete(c.peer);
    if (c.closing) return;
    c.closing = true;
    c.cipher.close();
    const st = c.stats;
    this.log.info("control stream closed", {
      session: c.session.id, reason, messages: st.messages, pings: st.pings, idrRequests: st.idrRequests, invalidations: st.invalidations,
      fecReports: st.fec.reports, inputPackets: c.sink?.stats().packets ?? 0, dropped: Object.values(st.dropped).reduce((a, b) => a + b, 0),
    });
    this.emit({ type: "disconnected", sessionId: c.session.id, reason });
    const backend = c.backend;
    c.backend = null;
    try {
      await c.sink?.end();
      await backend?.close();
    } catch (err) {
      this.log.warn("input backend close failed", { session: c.session.id, error: err });
    }
  }
}
