/**
 * Launch sessions: what /launch creates and the streaming part (RTSP, control,
 * video, audio) picks up. Key material lives in memory only, never in the DB
 * or the logs. One session at a time: the host is BUSY while it exists.
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
});
export type LaunchQuery = z.output<typeof LaunchQuery>;

export const ResumeQuery = LaunchQuery.omit({ appid: true, mode: true }).extend({ mode: LaunchQuery.shape.mode.optional() });

export interface StreamSession {
  id: string;
  appId: number;
  appName: string;
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
  /** The paired client (certificate fingerprint) that launched it. */
  clientFingerprint: string;
  /** Connect data the control stream's ENet connect carries (X-SS-Connect-Data). */
  connectData: number;
  startedAt: Date;
  /** RTSP handshake state: session id, ping payloads, streams set up (fresh after /resume: new keys). */
  rtsp: RtspHandshake;
  /** What the client's RTSP ANNOUNCE asked for; null until then. */
  stream: StreamConfig | null;
  /** Set by RTSP PLAY: the client waits for video, audio and the control stream. */
  playing: boolean;
}

export type SessionEvent = { type: "playing"; session: StreamSession } | { type: "ended"; session: StreamSession };

export class SessionStore {
  private current: StreamSession | null = null;
  private readonly listeners = new Set<(e: SessionEvent) => void>();

  /** `onListenerError` hears of a subscriber that threw: the session lifecycle goes on regardless. */
  constructor(private readonly onListenerError: (err: unknown, e: SessionEvent) => void = () => {}) {}

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
    if (s !== this.current || s.playing) return;
    s.playing = true;
    this.emit({ type: "playing", session: s });
  }

  get active(): StreamSession | null {
    return this.current;
  }

  start(s: Omit<StreamSession, "id" | "startedAt" | "connectData" | "rtsp" | "stream" | "playing">): StreamSession {
    if (this.current) this.end();
    this.current = { ...s, id: crypto.randomUUID(), connectData: randomInt(1, 2 ** 31), startedAt: new Date(), rtsp: newRtspHandshake(), stream: null, playing: false };
    return this.current;
  }

  /** New keys from /resume (clients send fresh ones when they reconnect). */
  rekey(riKey: Uint8Array, riKeyId: number): StreamSession | null {
    if (!this.current) return null;
    this.current.riKey.fill(0);
    this.current = { ...this.current, riKey, riKeyId, rtsp: newRtspHandshake(), stream: null, playing: false };
    return this.current;
  }

  end(): StreamSession | null {
    const s = this.current;
    if (s) s.riKey.fill(0);
    this.current = null;
    if (s) this.emit({ type: "ended", session: s });
    return s;
  }
}
