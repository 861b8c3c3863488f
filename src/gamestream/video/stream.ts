/**
 * The GameStream video stream (UDP base + 9). One socket for the port; per session a
 * frame source (capture → encode pipeline) and a native sender. The client's address
 * is learned from its pings (payload matched to the session's X-SS-Ping-Payload);
 * until then frames are discarded, and the first frame sent is an IDR. JS handles
 * one access unit at a time: packetizing, FEC, encryption and sending happen in one
 * native call per frame.
 */
import type { AccessUnitInfo, CaptureNative, CodecName } from "../../../ffi/capture.ts";
import { StreamNative, UdpSocket, VideoSender, type UdpPeer, type VideoFrameResult } from "../../../ffi/stream.ts";
import type { Logger } from "../../log.ts";
import type { StreamSession } from "../sessions.ts";
import type { VideoStreamStats } from "./model.ts";
import { parsePing } from "./ping.ts";
import { openVideoSource, type VideoSource } from "./source.ts";

/** At most this many datagrams are read per poll: a flood cannot starve the frame pump. */
const MAX_DATAGRAMS_PER_POLL = 256;
const PING_POLL_MS = 20;
const PUMP_MS = 1;
const DEFAULT_FEC_PERCENT = 20;

export interface VideoStreamOptions {
  stream: StreamNative;
  capture: CaptureNative;
  host: string;
  port: number;
  shmDir: string;
  log: Logger;
  /** Encoder threads per session (software encoders). */
  encoderThreads?: number;
  /** libavcodec encoder to use without probing. */
  encoder?: string;
  fecPercent?: number;
  /** A session's source stopped for good (VM shut down, pipeline error): the session should end. */
  onSourceEnded?: (session: StreamSession, lastError: number) => void;
}

export interface VideoSessionStats {
  sessionId: string;
  source: "vm" | "test-pattern";
  peer: UdpPeer | null;
  frames: number;
  shards: number;
  parityShards: number;
  bytes: number;
  sendErrors: number;
  idrRequests: number;
  framesDiscarded: number;
  lastFrameIndex: number;
  lastLatencyMs: number;
}

/** One session's video: source, sender, counters. */
export class VideoSession {
  peer: UdpPeer | null = null;
  private waitingForIdr = true;
  private readonly buf: Uint8Array;
  private readonly epochNs: bigint;
  private readonly counters = { frames: 0, shards: 0, parityShards: 0, bytes: 0, sendErrors: 0, idrRequests: 0, framesDiscarded: 0, lastFrameIndex: 0, lastLatencyMs: 0 };
  /** Called after each frame sent (benchmarks, stats). */
  onFrame: ((r: VideoFrameResult, au: AccessUnitInfo) => void) | null = null;

  constructor(
    readonly session: StreamSession,
    readonly pingPayload: string,
    private readonly source: VideoSource,
    private readonly sender: VideoSender,
    epochNs: bigint,
    private readonly log: Logger,
  ) {
    const w = session.stream?.width ?? session.width;
    const h = session.stream?.height ?? session.height;
    this.buf = new Uint8Array(Math.max(w * h * 2, 1 << 20) + 65536);
    this.epochNs = epochNs;
  }

  /** Makes the next frame sent an IDR (the control stream's IDR request lands here). */
  requestIdr(): void {
    this.counters.idrRequests++;
    this.source.pipeline.requestIdr();
  }

  setPeer(peer: UdpPeer): void {
    if (this.peer && this.peer.address === peer.address && this.peer.port === peer.port) return;
    this.sender.setPeer(peer);
    const first = this.peer === null;
    this.peer = peer;
    this.log.info(first ? "video client address learned" : "video client address changed", { peer: `${peer.address}:${peer.port}` });
    // a (new) receiver starts with an IDR
    this.waitingForIdr = true;
    this.source.pipeline.requestIdr();
  }

  /** Drains the access-unit ring; sends what a known peer can use. Returns frames handled. */
  pump(): number {
    let handled = 0;
    for (;;) {
      const info = this.source.pipeline.poll(this.buf);
      if (!info) return handled;
      handled++;
      if (!this.peer || (this.waitingForIdr && !info.idr)) {
        this.counters.framesDiscarded++;
        continue;
      }
      this.waitingForIdr = false;
      const ts = Number((((info.captureNs - this.epochNs) * 90000n) / 1_000_000_000n) & 0xffffffffn);
      const r = this.sender.sendFrame(this.buf, info.size, { captureNs: info.captureNs, rtpTimestamp: ts, kind: info.idr ? "idr" : "p" });
      const c = this.counters;
      c.frames++;
      c.shards += r.shards;
      c.parityShards += r.parityShards;
      c.bytes += r.bytes;
      c.sendErrors += r.sendErrors;
      c.lastFrameIndex = r.frameIndex;
      c.lastLatencyMs = Number(r.doneNs - info.captureNs) / 1e6;
      this.onFrame?.(r, info);
    }
  }

  pipelineStats(): { running: boolean; lastError: number } {
    const st = this.source.pipeline.stats();
    return { running: st.running, lastError: st.lastError };
  }

  /** The management API's view (video/model.ts). */
  apiStats(): VideoStreamStats {
    const { sessionId: _id, peer, ...rest } = this.stats();
    return { ...rest, peer: peer ? `${peer.family === 6 ? `[${peer.address}]` : peer.address}:${peer.port}` : null };
  }

  stats(): VideoSessionStats {
    return { sessionId: this.session.id, source: this.source.kind, peer: this.peer, ...this.counters };
  }

  close(): void {
    this.source.stop();
    this.sender.close();
  }
}

function codecOf(s: StreamSession): CodecName {
  const codec = s.stream?.codec ?? "h264";
  if (codec === "av1") throw new Error("AV1 was negotiated but this host has no AV1 encoder");
  return codec;
}

export class VideoStream {
  private readonly socket: UdpSocket;
  private readonly sessions = new Map<string, VideoSession>();
  private readonly rx = new Uint8Array(2048);
  private pingTimer: ReturnType<typeof setInterval> | null = null;
  private pumpTimer: ReturnType<typeof setInterval> | null = null;
  private readonly epochNs: bigint;
  private rejected = 0;
  private lastSourceCheck = 0;
  private lastRejectLog = 0;

  constructor(private readonly o: VideoStreamOptions) {
    this.socket = UdpSocket.open(o.stream, o.host, o.port, { sndbuf: 4 << 20, rcvbuf: 256 << 10 });
    this.epochNs = o.stream.monotonicNs();
    this.pingTimer = setInterval(() => this.pollPings(), PING_POLL_MS);
  }

  get port(): number {
    return this.socket.port;
  }

  /** Starts the video of a session that reached PLAY (its ANNOUNCE gave the stream settings). */
  start(session: StreamSession): VideoSession {
    this.stop(session.id);
    const st = session.stream;
    const width = st?.width ?? session.width;
    const height = st?.height ?? session.height;
    const fps = st?.fps ?? session.fps;
    const source = openVideoSource(this.o.capture, {
      shmDir: this.o.shmDir,
      vmName: session.vmName,
      encode: {
        width,
        height,
        fps,
        codec: codecOf(session),
        bitrateKbps: Math.min(Math.max(st?.bitrateKbps ?? 20000, 500), 500000),
        threads: this.o.encoderThreads ?? 2,
        encoder: this.o.encoder,
      },
    });
    let sender: VideoSender;
    try {
      sender = VideoSender.create(this.o.stream, this.socket, {
        packetSize: st?.packetSize ?? 1024,
        fecPercent: this.o.fecPercent ?? DEFAULT_FEC_PERCENT,
        minFec: Math.min(st?.fec.minRequiredFecPackets ?? 2, 64),
        key: st?.encryption.video ? session.riKey : undefined,
        maxFrameBytes: Math.max(width * height * 2, 1 << 20) + 65536,
      });
    } catch (err) {
      source.stop();
      throw err;
    }
    const log = this.o.log.child({ session: session.id });
    const vs = new VideoSession(session, session.rtsp.videoPingPayload, source, sender, this.epochNs, log);
    this.sessions.set(session.id, vs);
    log.info("video stream started", { source: source.kind, path: source.path, width, height, fps, codec: codecOf(session), encrypted: !!st?.encryption.video });
    this.pumpTimer ??= setInterval(() => this.pumpAll(), PUMP_MS);
    return vs;
  }

  get(sessionId: string): VideoSession | undefined {
    return this.sessions.get(sessionId);
  }

  /** Asks the session's encoder for an IDR next (control stream: IDR request, invalidation). */
  requestIdr(sessionId: string): boolean {
    const vs = this.sessions.get(sessionId);
    vs?.requestIdr();
    return vs !== undefined;
  }

  stop(sessionId: string): void {
    const vs = this.sessions.get(sessionId);
    if (!vs) return;
    this.sessions.delete(sessionId);
    vs.close();
    this.o.log.info("video stream stopped", vs.stats() as unknown as Record<string, unknown>);
    if (this.sessions.size === 0 && this.pumpTimer) {
      clearInterval(this.pumpTimer);
      this.pumpTimer = null;
    }
  }

  /** Reads queued pings (bounded per call) and learns client addresses. */
  pollPings(): void {
    for (let i = 0; i < MAX_DATAGRAMS_PER_POLL; i++) {
      let got;
      try {
        got = this.socket.recv(this.rx);
      } catch (err) {
        this.o.log.warn("video socket receive failed", { error: err });
        return;
      }
      if (!got) return;
      const ping = parsePing(this.rx, got.length);
      let target: VideoSession | undefined;
      if (ping?.kind === "payload") {
        for (const vs of this.sessions.values()) if (vs.pingPayload === ping.payload) target = vs;
      } else if (ping?.kind === "legacy" && this.sessions.size === 1) {
        target = this.sessions.values().next().value;
      }
      if (!target) {
        this.rejected++;
        const now = Date.now();
        if (now - this.lastRejectLog > 5000) {
          this.lastRejectLog = now;
          this.o.log.warn("video port: datagram that is no ping of a live session ignored", { from: `${got.from.address}:${got.from.port}`, bytes: got.length, rejectedSoFar: this.rejected });
        }
        continue;
      }
      target.setPeer(got.from);
    }
  }

  private pumpAll(): void {
    const now = Date.now();
    const checkSources = now - this.lastSourceCheck >= 500;
    if (checkSources) this.lastSourceCheck = now;
    for (const vs of [...this.sessions.values()]) {
      if (checkSources) {
        const st = vs.pipelineStats();
        if (!st.running) {
          this.o.log.warn("video source stopped; ending the session", { session: vs.session.id, lastError: st.lastError });
          this.stop(vs.session.id);
          this.o.onSourceEnded?.(vs.session, st.lastError);
          continue;
        }
      }
      try {
        vs.pump();
      } catch (err) {
        this.o.log.error("video frame send failed", { session: vs.session.id, error: err });
      }
    }
  }

  get rejectedDatagrams(): number {
    return this.rejected;
  }

  close(): void {
    for (const id of [...this.sessions.keys()]) this.stop(id);
    if (this.pingTimer) clearInterval(this.pingTimer);
    if (this.pumpTimer) clearInterval(this.pumpTimer);
    this.pingTimer = this.pumpTimer = null;
    this.socket.close();
  }
}
