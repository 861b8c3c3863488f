/**
 * The RTSP request sequence of a GameStream session, transport-free: one
 * parsed request and the active launch session in, one response out, with
 * the session updated (streams set up, stream configuration, playing).
 *
 *   OPTIONS → DESCRIBE → SETUP audio/0/0 → SETUP video/0/0 → SETUP control/13/0
 *   → ANNOUNCE (SDP) → PLAY
 */
import type { Logger } from "../../log.ts";
import type { GameStreamPorts } from "../constants.ts";
import type { SessionStore, StreamSession } from "../sessions.ts";
import { AnnounceError, parseAnnounce } from "./announce.ts";
import { describeBody, type HostCapabilities } from "./describe.ts";
import type { RtspRequest, RtspResponse } from "./message.ts";
import type { RtspStream } from "./state.ts";

export interface RtspHandlerDeps {
  ports: GameStreamPorts;
  sessions: SessionStore;
  capabilities: () => HostCapabilities;
  log: Logger;
}

const SETUP_TARGET = /^(?:rtsp(?:enc|ru)?:\/\/[^/]*\/)?streamid=(audio|video|control)\/(\d{1,3})\/(\d{1,3})$/;
const ANNOUNCE_TARGETS = /^(?:rtsp(?:enc|ru)?:\/\/[^/]*\/)?streamid=(control\/13\/0|control\/1\/0|video)$/;

/** Parses a SETUP target; null when it is not one of the streams this host serves. */
export function setupStream(target: string): RtspStream | null {
  const m = SETUP_TARGET.exec(target);
  if (!m) return null;
  const [, kind, a, b] = m;
  if (kind === "control") return (a === "13" || a === "1") && b === "0" ? "control" : null;
  return a === "0" && b === "0" ? (kind as RtspStream) : null;
}

export function createRtspHandler(deps: RtspHandlerDeps) {
  const { ports, sessions } = deps;

  /** The Session header names this session's RTSP session (text before any `;`). */
  const sessionMatches = (req: RtspRequest, s: StreamSession) => (req.headers.get("session") ?? "").split(";")[0]!.trim() === s.rtsp.sessionId;

  return function handle(req: RtspRequest, s: StreamSession | null): RtspResponse {
    const cseq = req.cseq;
    const fail = (status: number, reason: string): RtspResponse => {
      deps.log.debug("RTSP request refused", { method: req.method, target: req.target, status, reason, session: s?.id });
      return { status, cseq, headers: [["X-Neuron-Reason", reason]] };
    };
    if (!s) return fail(454, "no session: launch an app first");

    switch (req.method) {
      case "OPTIONS":
        return { status: 200, cseq, headers: [["Public", "OPTIONS, DESCRIBE, SETUP, ANNOUNCE, PLAY"]] };

      case "DESCRIBE":
        return { status: 200, cseq, headers: [["Content-Type", "application/sdp"]], body: describeBody(deps.capabilities()) };

      case "SETUP": {
        const stream = setupStream(req.target);
        if (!stream) return fail(404, `unknown stream ${req.target}`);
        if (req.headers.has("session") && !sessionMatches(req, s)) return fail(454, "unknown RTSP session");
        s.rtsp.setup[stream] = true;
        const headers: [string, string][] = [
          ["Session", `${s.rtsp.sessionId};timeout = 90`],
          ["Transport", `server_port=${stream === "audio" ? ports.audio : stream === "video" ? ports.video : ports.control}`],
        ];
        if (stream === "audio") headers.push(["X-SS-Ping-Payload", s.rtsp.audioPingPayload]);
        if (stream === "video") headers.push(["X-SS-Ping-Payload", s.rtsp.videoPingPayload]);
        if (stream === "control") headers.push(["X-SS-Connect-Data", String(s.connectData >>> 0)]);
        return { status: 200, cseq, headers };
      }

      case "ANNOUNCE": {
        if (!ANNOUNCE_TARGETS.test(req.target)) return fail(404, `unknown stream ${req.target}`);
        if (!sessionMatches(req, s)) return fail(454, "unknown RTSP session");
        if (req.body.byteLength === 0) return fail(400, "ANNOUNCE without an SDP body");
        let text: string;
        try {
          text = new TextDecoder("utf-8", { fatal: true }).decode(req.body);
        } catch {
          return fail(400, "SDP body is not UTF-8 text");
        }
        const caps = deps.capabilities();
        try {
          s.stream = parseAnnounce(text, { codecModeSupport: caps.codecModeSupport, encryptionSupported: caps.encryptionSupported });
        } catch (err) {
          if (err instanceof AnnounceError) return fail(400, err.message);
          throw err;
        }
        const c = s.stream;
        deps.log.info("stream configured", {
          session: s.id,
          mode: `${c.width}x${c.height}x${c.fps}`,
          codec: c.codec,
          bitrateKbps: c.bitrateKbps,
          packetSize: c.packetSize,
          audioChannels: c.audio.channels,
          encryption: c.encryption.mask,
        });
        return { status: 200, cseq };
      }

      case "PLAY": {
        if (!sessionMatches(req, s)) return fail(454, "unknown RTSP session");
        if (!s.stream) return fail(455, "PLAY before ANNOUNCE");
        const missing = (["audio", "video", "control"] as const).filter((k) => !s.rtsp.setup[k]);
        if (missing.length > 0) return fail(455, `PLAY before SETUP of ${missing.join(", ")}`);
        if (!s.playing) deps.log.info("session playing", { session: s.id, rtspSession: s.rtsp.sessionId });
        sessions.markPlaying(s);
        return { status: 200, cseq };
      }

      default:
        return fail(501, `method ${req.method} is not implemented`);
    }
  };
}
export type RtspHandler = ReturnType<typeof createRtspHandler>;
