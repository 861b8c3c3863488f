/**
 * What the RTSP handshake leaves on a launch session: the RTSP session id, the
 * ping payloads the video and audio streams match client pings against, which
 * streams were set up, and the record sequence numbers of encrypted RTSP.
 */
import { randomBytes } from "node:crypto";

export type RtspStream = "audio" | "video" | "control";

export interface RtspHandshake {
  /** RTSP `Session` id issued by the first SETUP (16 hex digits). */
  sessionId: string;
  /** X-SS-Ping-Payload of the audio stream: 16 characters [A-Za-z0-9]. */
  audioPingPayload: string;
  /** X-SS-Ping-Payload of the video stream. */
  videoPingPayload: string;
  /** Streams the client set up. */
  setup: Record<RtspStream, boolean>;
  /** Highest client record sequence number accepted (encrypted RTSP); records at or below it are replays. */
  clientSeq: number;
  /** Last host record sequence number used (host records count from 1). */
  hostSeq: number;
}

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/** `n` random characters of [A-Za-z0-9] (rejection sampling: no modulo bias). */
export function randomToken(n: number): string {
  let out = "";
  while (out.length < n) {
    for (const b of randomBytes(n * 2)) {
      if (b < 248 && out.length < n) out += ALPHABET[b % 62];
    }
  }
  return out;
}

export function newRtspHandshake(): RtspHandshake {
  return {
    sessionId: randomBytes(8).toString("hex").toUpperCase(),
    audioPingPayload: randomToken(16),
    videoPingPayload: randomToken(16),
    setup: { audio: false, video: false, control: false },
    clientSeq: 0,
    hostSeq: 0,
  };
}
