/**
 * Launch sessions: what /launch creates and the streaming part (RTSP, control,
 * video, audio) picks up. One session per paired client (keyed by its
 * certificate fingerprint), several clients at once up to a configured limit.
 * Key material lives in memory only, never in the DB or the logs. A session
 * that ends leaves a short record (who, what, why) in a bounded history.
 */
import { randomInt } from "node:crypto";
import { z } from "zod";
import type { StreamConfig } from "./rtsp/announce.ts";
import { newRtspHandshake, type RtspHandshake } from "./rtsp/state.ts";

const int = (min: number, max: number) =>
  z
    .string()
    .regex(/^-?\d{1,11}$/, "must be an integer")
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

/** Query of /launch and /resume (unknown parameters are ignored: clients add new ones over time). */
export const LaunchQuery = z.object({
  appid: int(1, 2 ** 31 - 1),
  mode: z
    .string()
    .regex(/^\d{2,5}x\d{2,5}x\d{1,3}$/, "must be WIDTHxHEIGHTxFPS")
    .transform((m) => {
      const [width, height, fps] = m.split("x").map(Number) as [number, number, number];
      return { width, height, fps };
    })
    .refine((m) => m.width >= 64 && m.width <= 7680 && m.height >= 64 && m.height <= 4320 && m.fps >= 1 && m.fps <= 480, "resolution or fps out of range"),
  rikey: z.string().regex(/^[0-9a-fA-F]{32}$/, "must be 32 hex digits"),
  rikeyid: int(-(2 ** 31), 2 ** 32 - 1),
  localAudioPlayMode: int(0, 1),
  surroundAudioInfo: int(0, 2 ** 31 - 1).optional(),
  remoteControllersBitmap: int(0, 0xffff).optional(),
  gcmap: int(0, 0xffff).optional(),
  sops: int(0, 1).optional(),
  hdrMode: int(0, 1).optional(),
  corever: int(0, 255).optional(),
  additionalStates: int(0, 1).optional(),
  /** What the client calls itself (moonlight-embedded always sends the same one): shown, never trusted. */
  uniqueid: z.string().max(64).regex(/^[\x20-\x7e]*$/, "printable ASCII").optional().catch(undefined),
});
export type LaunchQuery = z.output<typeof LaunchQuery>;

export const ResumeQuery = LaunchQuery.omit({ appid: true, mode: true }).extend({ mode: LaunchQuery.shape.mode.optional() });

/** Why a session ended (API history, logs). */
export type SessionEndReason =
  | "cancelled" // the client's /cancel
  | "replaced" // the same client launched again
  | "ended-by-api" // DELETE /api/v1/sessions/{id}
  | "control-timeout" // no control traffic for the peer timeout
  | "client-disconnected" // the client closed its control connection
  | "source-ended" // the video source stopped for good (VM shut down, pipeline error)
  | "host-stopped"; // the GameStream host shut down

export interface StreamSession {
  id: string;
  appId: number;
  appName: string;
  /** The catalog kind of the app ("host-desktop" streams the host's own session). */
  appKind?: string;
  vmName: string | null;
  width: number;
  height: number;
  fps: number;
  /** AES-128 key for RTSP, control, video and audio. */
  riKey: Uint8Array;
  /** Seeds the audio IV. */
  riKeyId: number;
  localAudioPlayMode: number;
  /** (channel mask << 16) | channel count. */
  surroundAudioInfo: number;
  remoteControllersBitmap: number;
  gcmap: number;
  hdr: boolean;
  /** rtspenc:// (encrypted RTSP) when the client sent corever. */
  encryptedRtsp: boolean;
  /** The paired client (certificate fingerprint) that launched it: one session per fingerprint. */
  clientFingerprint: string;
  /** The pairing's device name, when known. */
  clientName?: string | null;
  /** The uniqueid the client sent with /launch (not an identity: clients may all send the same). */
  clientUniqueId?: string | null;
  /** IP address /launch came from (plain, no ::ffff: prefix); "" when unknown. */
  clientAddress?: string;
  /** Connect data the control stream's ENet connect carries (X-SS-Connect-Data); unique among live sessions. */
  connectData: number;
  startedAt: Date;
  /** RTSP handshake state: session id, ping payloads, streams set up (fresh after /resume: new keys). */
  rtsp: RtspHandshake;
  /** What the client's RTSP ANNOUNCE asked for; null until then. */
  stream: StreamConfig | null;
  /** Set by RTSP PLAY: the client waits for video, audio and the control stream. */
  playing: boolean;
}

export type NewSession = Omit<StreamSession, "id" | "startedAt" | "connectData" | "rtsp" | "stream" | "playing">;

export type SessionEvent =
  | { type: "playing"; session: StreamSession }
  /** /resume re-keyed the session: `previous` (its old keys, its old control connection) is replaced by `session`. */
  | { type: "resumed"; session: StreamSession; previous: StreamSession }
  | { type: "ended"; session: StreamSession; reason: SessionEndReason; detail?: string };

/** What is kept of a session after it ended. */
export interface EndedSession {
  id: string;
  appId: number;
  appName: string;
  clientFingerprint: string;
  clientName: string | null;
  clientAddress: string;
  width: number;
  height: number;
  fps: number;
  startedAt: Date;
  endedAt: Date;
  reason: SessionEndReason;
  detail: string | null;
}

/** The client already at the limit of concurrent sessions (launch refused). */
export class SessionLimitError extends Error {
  constructor(readonly limit: number) {
    super(`the host already streams to ${limit} client${limit === 1 ? "" : "s"}, its limit: end one of those streams first`);
    this.name = "SessionLimitError";
  }
}

export const DEFAULT_MAX_SESSIONS = 2;
const HISTORY = 32;

export class SessionStore {
  private readonly live = new Map<string, StreamSession>();
  private readonly ended: EndedSession[] = [];
  private readonly listeners = new Set<(e: SessionEvent) => void>();

  /** `onListenerError` hears of a subscriber that threw: the session lifecycle goes on regardless. */
  constructor(
    private readonly onListenerError: (err: unknown, e: SessionEvent) => void = () => {},
    readonly maxSessions = DEFAULT_MAX_SESSIONS,
  ) {
    if (!Number.isInteger(maxSessions) || maxSessions < 1) throw new RangeError("maxSessions must be an integer ≥ 1");
  }

  /** Runs before a session starts (the host opens its control stream then); a throw refuses the session. */
  beforeStart: (() => void) | null = null;

  /** Subscribes to session events (PLAY, end); returns the unsubscribe function. */
  subscribe(listener: (e: SessionEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(e: SessionEvent): void {
    for (const l of [...this.listeners]) {
      try {
        l(e);
      } catch (err) {
        this.onListenerError(err, e);
      }
    }
  }

  /** RTSP PLAY: marks the session playing and tells subscribers (once per handshake). */
  markPlaying(s: StreamSession): void {
    if (this.live.get(s.id) !== s || s.playing) return;
    s.playing = true;
    this.emit({ type: "playing", session: s });
  }

  /** Live sessions, oldest first. */
  list(): StreamSession[] {
    return [...this.live.values()];
  }

  get size(): number {
    return this.live.size;
  }

  /** The newest live session, or null (single-client views: /api/v1/gamestream, tests). */
  get active(): StreamSession | null {
    let last: StreamSession | null = null;
    for (const s of this.live.values()) last = s;
    return last;
  }

  get(id: string): StreamSession | null {
    return this.live.get(id) ?? null;
  }

  /** The live session `s` still is (not ended, not replaced by a resume). */
  isLive(s: StreamSession): boolean {
    return this.live.get(s.id) === s;
  }

  /** The session of a paired client (by certificate fingerprint). */
  ofClient(fingerprint: string): StreamSession | null {
    for (const s of this.live.values()) if (s.clientFingerprint === fingerprint) return s;
    return null;
  }

  byConnectData(data: number): StreamSession | null {
    for (const s of this.live.values()) if (s.connectData === data >>> 0) return s;
    return null;
  }

  /** Whether a launch by this client would exceed the limit (its own session would be replaced, so it does not count). */
  wouldExceed(fingerprint: string): boolean {
    return this.live.size - (this.ofClient(fingerprint) ? 1 : 0) >= this.maxSessions;
  }

  /**
   * Starts the client's session, replacing the one it had. Throws SessionLimitError when
   * other clients already hold `maxSessions` sessions.
   */
  start(s: NewSession): StreamSession {
    if (this.wouldExceed(s.clientFingerprint)) throw new SessionLimitError(this.maxSessions);
    this.beforeStart?.();
    const old = this.ofClient(s.clientFingerprint);
    if (old) this.end(old, "replaced");
    let connectData: number;
    do connectData = randomInt(1, 2 ** 31);
    while (this.byConnectData(connectData));
    const session: StreamSession = { clientAddress: "", ...s, id: crypto.randomUUID(), connectData, startedAt: new Date(), rtsp: newRtspHandshake(), stream: null, playing: false };
    this.live.set(session.id, session);
    return session;
  }

  /**
   * New keys from /resume (clients send fresh ones when they reconnect): the session keeps its
   * id and connect data, gets a fresh RTSP handshake, and waits for PLAY again. Subscribers hear
   * it first (the old control connection gets its graceful termination), then the old keys go.
   */
  rekey(s: StreamSession, riKey: Uint8Array, riKeyId: number): StreamSession | null {
    if (!this.isLive(s)) return null;
    const next: StreamSession = { ...s, riKey, riKeyId, rtsp: newRtspHandshake(), stream: null, playing: false };
    this.live.set(s.id, next);
    this.emit({ type: "resumed", session: next, previous: s });
    s.riKey.fill(0);
    return next;
  }

  /** Ends one session (by object or id); null when it is not live. */
  end(target: StreamSession | string, reason: SessionEndReason, detail?: string): StreamSession | null {
    const id = typeof target === "string" ? target : target.id;
    const s = this.live.get(id);
    if (!s) return null;
    this.live.delete(id);
    s.riKey.fill(0);
    this.ended.push({
      id: s.id, appId: s.appId, appName: s.appName, clientFingerprint: s.clientFingerprint, clientName: s.clientName ?? null,
      clientAddress: s.clientAddress ?? "", width: s.width, height: s.height, fps: s.fps, startedAt: s.startedAt, endedAt: new Date(),
      reason, detail: detail ?? null,
    });
    if (this.ended.length > HISTORY) this.ended.splice(0, this.ended.length - HISTORY);
    this.emit({ type: "ended", session: s, reason, detail });
    return s;
  }

  /** Ends every live session (host shutdown, tests). */
  endAll(reason: SessionEndReason): StreamSession[] {
    return [...this.live.values()].map((s) => this.end(s, reason)).filter((s): s is StreamSession => s !== null);
  }

  /** Recently ended sessions, newest first (bounded). */
  history(): EndedSession[] {
    return [...this.ended].reverse();
  }
}
