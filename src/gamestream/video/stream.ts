/**
 * The GameStream video stream (UDP base + 9). One socket for the port; per session a
 * frame source (capture → encode pipeline) and a native sender. The client's address
 * is learned from its pings (payload matched to the session's X-SS-Ping-Payload);
 * until then frames are discarded, and the first frame sent is an IDR. A native pump
 * thread takes each access unit from the encoder's ring and sends it (packetizing, FEC,
 * encryption, sendmmsg in one call per frame): no frame passes through JS.
 */
import type { CaptureNative, CodecName, PipelineTiming } from "../../../ffi/capture.ts";
import { NativeStatus } from "../../../ffi/native.ts";
import { StreamNative, UdpSocket, VideoPump, VideoSender, type PumpTiming, type UdpPeer } from "../../../ffi/stream.ts";
import type { Logger } from "../../log.ts";
import type { StreamSession } from "../sessions.ts";
import type { VideoStreamStats } from "./model.ts";
import { parsePing } from "./ping.ts";
import type { NvfListenerPool } from "../../capture/nvf-listeners.ts";
import type { VmTransportChoice } from "../../capture/sources.ts";
import type { HostInputTarget } from "../../input/host-session-backend.ts";
import { openVideoSource, type FrameTransport, type HostDesktopOpener, type VideoSource } from "./source.ts";
import { VmLiveness, type SourceSample, type VmStateProbe } from "./vm-liveness.ts";

/** At most this many datagrams are read per poll: a flood cannot starve the frame pump. */
const MAX_DATAGRAMS_PER_POLL = 256;
const PING_POLL_MS = 20;
const SOURCE_CHECK_MS = 500;
const DEFAULT_FEC_PERCENT = 20;

export interface VideoStreamOptions {
  stream: StreamNative;
  capture: CaptureNative;
  host: string;
  port: number;
  shmDir: string;
  log: Logger;
  /** Encoder threads per session (software encoders; x264 splits each frame into that many
   * slices). Default 3: on 2 cores, 3 slices gave ~0.5 ms lower p50 and ~3 ms lower p99 than 2 at
   * the same CPU per frame (bench:stream), and the same with two sessions. */
  encoderThreads?: number;
  /** libavcodec encoder to use without probing. */
  encoder?: string;
  fecPercent?: number;
  /** Spread each frame's datagrams over this fraction of the frame interval (0 = burst, at most 0.9).
   * Pacing sleeps between sendmmsg batches: a frame of fewer shards than `sendBatch` goes out at once. */
  paceFraction?: number;
  /** Shards per sendmmsg batch, 1-64 (default 64). */
  sendBatch?: number;
  /**
   * A session's source stopped for good: `reason` says why in words ("VM win11 shut down",
   * "the video pipeline stopped (NEURON_ENOMEM)"). The session should end.
   */
  onSourceEnded?: (session: StreamSession, end: SourceEnd) => void;
  /** libvirt's state of a VM: lets a VM source notice that its VM shut down (see vm-liveness.ts). */
  vmState?: VmStateProbe;
  /** Opens the host's own desktop at a session's mode (apps of kind host-desktop). */
  hostDesktop?: HostDesktopOpener | null;
  /** The VMs' NVF1 listeners, for VMs whose frames come over vsock or a unix socket. */
  nvf?: NvfListenerPool | null;
  /** Liveness tuning (tests): no frame for this long before libvirt is asked, and between questions. */
  liveness?: { stallMs?: number; checkIntervalMs?: number };
}

export interface SourceEnd {
  reason: string;
  /** The pipeline's last negative status (0 = none). */
  lastError: number;
}

export interface VideoSessionStats {
  sessionId: string;
  source: "vm" | "test-pattern" | "host-desktop";
  /** A VM source's transport (IVSHMEM, vsock, unix socket); null otherwise. */
  transport: FrameTransport | null;
  /** Why that transport, in words; null otherwise. */
  transportReason: string | null;
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

/** Latency samples kept per session for the API's percentiles (~10 s at 60 fps). */
const LATENCY_WINDOW = 600;
/** Frame-counter samples kept for the host fps (one per SOURCE_CHECK_MS: ~5 s). */
const FPS_WINDOW = 10;
/** Samples held for latencies() between two calls (benchmarks). */
const MAX_PENDING_LATENCIES = 16384;

/** Why a source stopped, in words (the pipeline's last native status). */
export function sourceEndedMessage(lastError: number): string {
  const name = Object.entries(NativeStatus).find(([, v]) => v === lastError)?.[0];
  if (lastError === NativeStatus.EIO) return "the video source ended (VM shut down or its shared memory went away)";
  return `the video pipeline stopped (${name ? `NEURON_${name}` : `status ${lastError}`})`;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** One session's video: source (capture → encode), sender and the native pump between them. */
export class VideoSession {
  peer: UdpPeer | null = null;
  private idrRequests = 0;
  private readonly pump: VideoPump;
  private readonly window = new Float64Array(LATENCY_WINDOW);
  private windowLen = 0;
  private windowNext = 0;
  private pending: Uint32Array[] = [];
  private pendingCount = 0;
  private readonly fpsSamples: { t: number; frames: number }[] = [];

  constructor(
    readonly session: StreamSession,
    readonly pingPayload: string,
    private readonly source: VideoSource,
    private readonly sender: VideoSender,
    stream: StreamNative,
    epochNs: bigint,
    private readonly log: Logger,
    paceNs = 0,
    /** Whether the VM behind a VM source still runs (null: test pattern, or no libvirt probe). */
    readonly liveness: VmLiveness | null = null,
  ) {
    this.pump = VideoPump.start(stream, source.pipeline, sender, epochNs, source.slotBytes, paceNs);
  }

  /** The encoder's target bitrate now (kbps). */
  bitrateKbps = 0;

  /** Changes the encoder's target bitrate (and its one-frame VBV) from the next frame on; the stream goes on. */
  setBitrate(kbps: number): void {
    this.source.pipeline.setBitrate(kbps);
    this.bitrateKbps = kbps;
  }

  /** host-desktop: input into the host's session at this session's output (null otherwise). */
  get hostInput(): HostInputTarget | null {
    return this.source.hostInput ?? null;
  }

  /** Makes the next frame sent an IDR (the control stream's IDR request lands here). */
  requestIdr(): void {
    this.idrRequests++;
    this.source.pipeline.requestIdr();
  }

  /** Where shards go; a (new) receiver starts with an IDR. */
  setPeer(peer: UdpPeer): void {
    if (this.peer && this.peer.address === peer.address && this.peer.port === peer.port) return;
    this.pump.setPeer(peer);
    const first = this.peer === null;
    this.peer = peer;
    this.log.info(first ? "video client address learned" : "video client address changed", { peer: `${peer.address}:${peer.port}` });
  }

  /** Drains the pump's latency samples into the rolling window and notes the frame counter (every SOURCE_CHECK_MS). */
  sample(): void {
    this.drain();
    this.fpsSamples.push({ t: performance.now(), frames: this.pump.stats().frames });
    if (this.fpsSamples.length > FPS_WINDOW) this.fpsSamples.shift();
  }

  private drain(): void {
    const l = this.pump.latencies();
    for (const us of l) {
      this.window[this.windowNext] = us / 1000;
      this.windowNext = (this.windowNext + 1) % LATENCY_WINDOW;
      if (this.windowLen < LATENCY_WINDOW) this.windowLen++;
    }
    if (l.length && this.pendingCount + l.length <= MAX_PENDING_LATENCIES) {
      this.pending.push(l.slice());
      this.pendingCount += l.length;
    }
  }

  /** Latency samples (capture → last shard sent, µs) since the last call (benchmarks). */
  latencies(): Uint32Array {
    this.drain();
    const out = new Uint32Array(this.pendingCount);
    let o = 0;
    for (const p of this.pending) {
      out.set(p, o);
      o += p.length;
    }
    this.pending = [];
    this.pendingCount = 0;
    return out;
  }

  /** Frames sent per second over the last few seconds, host latency p50/p99 over the last ~600 frames (ms). */
  rates(): { hostFps: number; latencyP50Ms: number; latencyP99Ms: number; latencySamples: number } {
    const a = this.fpsSamples[0], b = this.fpsSamples.at(-1);
    const hostFps = a && b && b.t > a.t ? ((b.frames - a.frames) * 1000) / (b.t - a.t) : 0;
    const sorted = this.window.slice(0, this.windowLen).sort();
    const r2 = (v: number) => Math.round(v * 100) / 100;
    return { hostFps: r2(hostFps), latencyP50Ms: r2(percentile(sorted, 50)), latencyP99Ms: r2(percentile(sorted, 99)), latencySamples: this.windowLen };
  }

  /** Per-frame stage timings of the capture → encode pipeline since the last call (benchmarks). */
  pipelineTimings(): PipelineTiming[] {
    return this.source.pipeline.timings();
  }

  /** Per-frame timings after the encoder (ring → pump → last shard) since the last call (benchmarks). */
  pumpTimings(): PumpTiming[] {
    return this.pump.timings();
  }

  pipelineStats(): { running: boolean; lastError: number } {
    const st = this.source.pipeline.stats();
    const ps = this.pump.stats();
    return { running: st.running && ps.running, lastError: ps.lastError || st.lastError };
  }

  /** The capture side's counters the liveness check reads. */
  sourceSample(): SourceSample {
    const st = this.source.pipeline.stats();
    return { framesIn: st.framesIn, restarts: st.restarts };
  }

  /** The management API's view (video/model.ts). */
  apiStats(): VideoStreamStats {
    const { sessionId: _id, peer, ...rest } = this.stats();
    return { ...rest, peer: peer ? `${peer.family === 6 ? `[${peer.address}]` : peer.address}:${peer.port}` : null };
  }

  stats(): VideoSessionStats {
    const p = this.pump.stats();
    return {
      sessionId: this.session.id,
      source: this.source.kind,
      transport: this.source.transport,
      transportReason: this.source.transportReason ?? null,
      peer: this.peer,
      frames: p.frames,
      shards: p.shards,
      parityShards: p.parityShards,
      bytes: p.bytes,
      sendErrors: p.sendErrors,
      idrRequests: this.idrRequests,
      framesDiscarded: p.discarded,
      lastFrameIndex: p.lastFrameIndex,
      lastLatencyMs: p.lastLatencyMs,
    };
  }

  close(): void {
    this.pump.stop();
    this.source.stop();
    this.sender.close();
  }
}

/** The encoder bitrates a session may have (kbps). */
export const MIN_SESSION_KBPS = 500;
export const MAX_SESSION_KBPS = 500_000;
const clampBitrate = (kbps: number) => Math.min(Math.max(Math.round(kbps), MIN_SESSION_KBPS), MAX_SESSION_KBPS);

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
  private watchTimer: ReturnType<typeof setInterval> | null = null;
  private readonly epochNs: bigint;
  private rejected = 0;
  private lastRejectLog = 0;

  constructor(private readonly o: VideoStreamOptions) {
    this.socket = UdpSocket.open(o.stream, o.host, o.port, { sndbuf: 4 << 20, rcvbuf: 256 << 10 });
    this.epochNs = o.stream.monotonicNs();
    this.pingTimer = setInterval(() => this.pollPings(), PING_POLL_MS);
  }

  get port(): number {
    return this.socket.port;
  }

  /**
   * Starts the video of a session that reached PLAY (its ANNOUNCE gave the stream settings).
   * `vmTransport`: how the session's VM exports its frames (chooseVmTransport), where known.
   */
  start(session: StreamSession, vmTransport: VmTransportChoice | null = null): VideoSession {
    this.stop(session.id);
    const st = session.stream;
    const width = st?.width ?? session.width;
    const height = st?.height ?? session.height;
    const fps = st?.fps ?? session.fps;
    const bitrateKbps = clampBitrate(st?.bitrateKbps ?? 20000);
    const source = openVideoSource(this.o.capture, {
      shmDir: this.o.shmDir,
      vmName: session.vmName,
      appKind: session.appKind,
      hostDesktop: this.o.hostDesktop,
      vmTransport,
      nvf: this.o.nvf,
      encode: {
        width,
        height,
        fps,
        codec: codecOf(session),
        bitrateKbps,
        threads: this.o.encoderThreads ?? 3,
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
        maxFrameBytes: source.slotBytes,
        batch: this.o.sendBatch,
      });
    } catch (err) {
      source.stop();
      throw err;
    }
    const log = this.o.log.child({ session: session.id });
    let vs: VideoSession;
    try {
      const paceNs = (Math.min(Math.max(this.o.paceFraction ?? 0, 0), 0.9) * 1e9) / fps;
      const liveness =
        source.kind === "vm" && session.vmName && this.o.vmState
          ? new VmLiveness({ vmName: session.vmName, probe: this.o.vmState, log, ...this.o.liveness })
          : null;
      vs = new VideoSession(session, session.rtsp.videoPingPayload, source, sender, this.o.stream, this.epochNs, log, paceNs, liveness);
    } catch (err) {
      sender.close();
      source.stop();
      throw err;
    }
    vs.bitrateKbps = bitrateKbps;
    this.sessions.set(session.id, vs);
    log.info("video stream started", { source: source.kind, transport: source.transport, transportReason: source.transportReason ?? undefined, path: source.path, width, height, fps, codec: codecOf(session), encrypted: !!st?.encryption.video });
    this.watchTimer ??= setInterval(() => this.watchSources(), SOURCE_CHECK_MS);
    return vs;
  }

  get(sessionId: string): VideoSession | undefined {
    return this.sessions.get(sessionId);
  }

  /** Changes a session's encoder bitrate live; false when the session has no video. */
  setBitrate(sessionId: string, kbps: number): boolean {
    const vs = this.sessions.get(sessionId);
    if (!vs) return false;
    vs.setBitrate(clampBitrate(kbps));
    this.o.log.info("video bitrate changed", { session: sessionId, bitrateKbps: vs.bitrateKbps });
    return true;
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
    const stats = vs.stats();
    vs.close();
    this.o.log.info("video stream stopped", { ...stats });
    if (this.sessions.size === 0 && this.watchTimer) {
      clearInterval(this.watchTimer);
      this.watchTimer = null;
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
      } else if (ping?.kind === "legacy") {
        // no payload to match: only a single session launched from that address may claim it
        const fromIp = [...this.sessions.values()].filter((vs) => vs.session.clientAddress === got.from.address);
        if (fromIp.length === 1) target = fromIp[0];
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

  /** Samples each session's statistics; ends the video of sessions whose source stopped for good (VM shut down, pipeline or pump error). */
  private watchSources(): void {
    for (const vs of [...this.sessions.values()]) {
      vs.sample();
      const st = vs.pipelineStats();
      if (!st.running) {
        this.endSource(vs, { reason: sourceEndedMessage(st.lastError), lastError: st.lastError });
        continue;
      }
      vs.liveness
        ?.sample(vs.sourceSample())
        .then((reason) => {
          // the session may have been stopped while libvirt answered: its pipeline is gone then
          if (reason && this.sessions.get(vs.session.id) === vs) this.endSource(vs, { reason, lastError: vs.pipelineStats().lastError });
        })
        .catch((err: unknown) => this.o.log.error("VM liveness check failed", { session: vs.session.id, error: err }));
    }
  }

  private endSource(vs: VideoSession, end: SourceEnd): void {
    if (this.sessions.get(vs.session.id) !== vs) return;
    this.o.log.warn("video source ended; ending the session", { session: vs.session.id, reason: end.reason, lastError: end.lastError });
    this.stop(vs.session.id);
    this.o.onSourceEnded?.(vs.session, end);
  }

  /** Live video sessions. */
  list(): VideoSession[] {
    return [...this.sessions.values()];
  }

  get rejectedDatagrams(): number {
    return this.rejected;
  }

  close(): void {
    for (const id of [...this.sessions.keys()]) this.stop(id);
    if (this.pingTimer) clearInterval(this.pingTimer);
    if (this.watchTimer) clearInterval(this.watchTimer);
    this.pingTimer = this.watchTimer = null;
    this.socket.close();
  }
}
