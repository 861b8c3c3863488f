/**
 * The audio stream of one session: on the audio port (base+11, shared by all
 * sessions: port.ts), the client's address learned from its pings (20 bytes: the
 * audio X-SS-Ping-Payload ‖ BE32 count; the port routes them by payload and
 * ignores anything else), then Opus packets paced in real time
 * (one per packetDuration, drift-corrected against the monotonic clock), each
 * encrypted and protected as packets.ts describes.
 */
import type { AudioNative } from "../../../ffi/audio.ts";
import { OpusEncoder } from "../../../ffi/audio.ts";
import type { AesCbc, NativeCrypto } from "../../../ffi/crypto.ts";
import { Rs8Codec, type Rs8Library } from "../../../ffi/rs8.ts";
import type { Logger } from "../../log.ts";
import type { StreamSession } from "../sessions.ts";
import { AUDIO_MAX_OPUS_BYTES, AudioPacketizer } from "./packets.ts";
import { audioParams, type AudioParams } from "./params.ts";
import type { PcmSource } from "./source.ts";
import { AudioPort } from "./port.ts";

export interface AudioNatives {
  audio: AudioNative;
  crypto: NativeCrypto;
  rs8: Rs8Library;
}

export interface AudioStreamOptions {
  host: string;
  port: number;
  /** The shared audio port; absent: the stream binds its own on host:port (and closes it when it stops). */
  shared?: AudioPort;
  session: StreamSession;
  natives: AudioNatives;
  /** Opens the PCM source for a channel count (called once, at start). */
  openSource: (channels: number) => PcmSource;
  log: Logger;
  /** Default CLIENT_SILENCE_MS. */
  clientSilenceMs?: number;
}

export interface AudioStreamInfo {
  port: number;
  source: "tone" | "command";
  sourceDetail: string;
  channels: number;
  bitrateBps: number;
  packetDurationMs: number;
  encrypted: boolean;
  client: string | null;
  pingsAccepted: number;
  pingsRejected: number;
  dataPackets: number;
  parityPackets: number;
  blocksWithoutParity: number;
  sourceUnderruns: number;
  /** Packets not produced because the host fell more than MAX_CATCH_UP_MS behind real time. */
  skippedPackets: number;
}

export const PING_BYTES = 20;
/** Clients ping every 500 ms; after this long without one the stream stops sending until the next ping. */
export const CLIENT_SILENCE_MS = 10_000;
/** Most audio time produced in one timer tick when the event loop was late (sent as a burst); beyond it time is skipped. */
const MAX_CATCH_UP_MS = 200;

export class AudioStream {
  readonly params: AudioParams;
  private socket: AudioPort | null = null;
  private ownsSocket = false;
  private unregister: (() => void) | null = null;
  private readonly encoder: OpusEncoder;
  private readonly cipher: AesCbc | null;
  private readonly fec: Rs8Codec;
  private readonly packetizer: AudioPacketizer;
  private readonly source: PcmSource;
  private readonly pcm: Int16Array;
  private readonly opus = new Uint8Array(AUDIO_MAX_OPUS_BYTES);
  private client: { address: string; port: number } | null = null;
  private lastPingAt = 0;
  private paused = false;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private t0 = 0;
  private produced = 0;
  private pingsAccepted = 0;
  private skipped = 0;
  private stopped = false;
  private boundPort = 0;

  private constructor(private readonly o: AudioStreamOptions) {
    const stream = o.session.stream;
    if (!stream) throw new Error("audio stream needs the session's ANNOUNCE");
    this.params = audioParams(stream);
    const p = this.params;
    this.encoder = OpusEncoder.openLayout(o.natives.audio, { channels: p.channels, bitrateBps: p.bitrateBps, frameSamples: p.frameSamples }, p.layout);
    this.cipher = p.encrypted ? o.natives.crypto.aesCbc(o.session.riKey) : null;
    this.fec = Rs8Codec.audio({ library: o.natives.rs8 });
    this.packetizer = new AudioPacketizer({ packetDurationMs: p.packetDurationMs, cipher: this.cipher, riKeyId: o.session.riKeyId, fec: this.fec });
    this.pcm = new Int16Array(p.frameSamples * p.channels);
    this.source = o.openSource(p.channels);
  }

  /** Joins the shared audio port (or binds its own) and waits for the client's pings. */
  static async start(o: AudioStreamOptions): Promise<AudioStream> {
    const s = new AudioStream(o);
    try {
      s.socket = o.shared ?? (await AudioPort.open(o.host, o.port, o.log));
      s.ownsSocket = !o.shared;
      s.unregister = s.socket.register({
        pingPayload: o.session.rtsp.audioPingPayload,
        clientAddress: o.session.clientAddress ?? "",
        onPing: (address, port) => s.onPing(address, port),
      });
    } catch (err) {
      s.release();
      if (s.ownsSocket) await s.socket?.close();
      throw err;
    }
    s.boundPort = s.socket.port;
    o.log.info("audio stream ready", {
      port: s.boundPort,
      channels: s.params.channels,
      bitrateBps: s.params.bitrateBps,
      packetDurationMs: s.params.packetDurationMs,
      encrypted: s.params.encrypted,
      source: s.source.kind,
      sourceDetail: s.source.detail,
    });
    return s;
  }

  get port(): number {
    return this.boundPort;
  }

  /** A ping of this session (the port matched its payload). */
  private onPing(address: string, port: number): void {
    if (this.stopped) return;
    this.pingsAccepted++;
    this.lastPingAt = performance.now();
    if (this.paused) {
      this.paused = false;
      this.o.log.info("audio client is back", { client: `${address}:${port}` });
    }
    const first = this.client === null;
    if (first || this.client!.address !== address || this.client!.port !== port) {
      this.client = { address, port };
      this.o.log.info("audio client address learned", { client: `${address}:${port}` });
    }
    if (first) {
      this.t0 = performance.now();
      this.tick();
    }
  }

  private tick(): void {
    if (this.stopped) return;
    const dur = this.params.packetDurationMs;
    const now = performance.now();
    const maxBurst = MAX_CATCH_UP_MS / dur;
    let due = Math.floor((now - this.t0) / dur) + 1 - this.produced;
    if (due > maxBurst) {
      this.skipped += due - maxBurst;
      this.produced += due - maxBurst;
      due = maxBurst;
    }
    for (let i = 0; i < due; i++) this.produceOne();
    const next = this.t0 + this.produced * dur;
    this.timer = setTimeout(() => this.tick(), Math.max(0, next - performance.now()));
  }

  private produceOne(): void {
    this.produced++;
    this.source.read(this.pcm);
    const n = this.encoder.encode(this.pcm, this.opus);
    const packets = this.packetizer.packetize(this.opus.subarray(0, n));
    const c = this.client;
    if (!c) return;
    if (performance.now() - this.lastPingAt > (this.o.clientSilenceMs ?? CLIENT_SILENCE_MS)) {
      if (!this.paused) this.o.log.warn("audio client stopped pinging; not sending until it pings again", { client: `${c.address}:${c.port}`, silentMs: this.o.clientSilenceMs ?? CLIENT_SILENCE_MS });
      this.paused = true;
      return;
    }
    for (const pkt of packets) this.socket!.send(pkt, c.port, c.address);
  }

  info(): AudioStreamInfo {
    const st = this.packetizer.stats;
    return {
      port: this.boundPort,
      source: this.source.kind,
      sourceDetail: this.source.detail,
      channels: this.params.channels,
      bitrateBps: this.params.bitrateBps,
      packetDurationMs: this.params.packetDurationMs,
      encrypted: this.params.encrypted,
      client: this.client ? `${this.client.address}:${this.client.port}` : null,
      pingsAccepted: this.pingsAccepted,
      pingsRejected: this.socket?.rejectedDatagrams ?? 0,
      dataPackets: st.dataPackets,
      parityPackets: st.parityPackets,
      blocksWithoutParity: st.blocksWithoutParity,
      sourceUnderruns: this.source.underruns,
      skippedPackets: this.skipped,
    };
  }

  private release(): void {
    this.stopped = true;
    this.unregister?.();
    this.unregister = null;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.source.close();
    this.encoder.close();
    this.cipher?.close();
    this.fec[Symbol.dispose]();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.release();
    if (this.ownsSocket) await this.socket?.close();
    this.o.log.info("audio stream stopped", { ...this.info() });
  }
}
