/**
 * Runs a session's audio stream for as long as the session plays: started on
 * RTSP PLAY, stopped when the session ends (or the host stops). One stream at a
 * time, as sessions are.
 */
import { AudioNative } from "../../../ffi/audio.ts";
import { NativeCrypto } from "../../../ffi/crypto.ts";
import { Rs8Library } from "../../../ffi/rs8.ts";
import type { Logger } from "../../log.ts";
import type { SessionStore, StreamSession } from "../sessions.ts";
import { openPcmSource, type AudioSourceSettings } from "./source.ts";
import { AudioStream, type AudioNatives, type AudioStreamInfo } from "./stream.ts";

export interface AudioServiceOptions {
  host: string;
  port: number;
  /** Path of libneuron.so. */
  nativePath: string;
  source: AudioSourceSettings;
  log: Logger;
}

export function loadAudioNatives(path: string): AudioNatives {
  return { audio: new AudioNative(path), crypto: NativeCrypto.load({ explicit: path }), rs8: Rs8Library.open({ explicit: path }) };
}

export class AudioService {
  private natives: AudioNatives | null = null;
  private stream: AudioStream | null = null;
  private streamSession: StreamSession | null = null;
  /** Start in flight (PLAY → bind), so an end that comes meanwhile stops what it produces. */
  private pending: Promise<void> = Promise.resolve();
  private readonly unsubscribe: () => void;

  constructor(
    sessions: SessionStore,
    private readonly o: AudioServiceOptions,
  ) {
    this.unsubscribe = sessions.subscribe((e) => {
      if (e.type === "playing") this.pending = this.pending.then(() => this.begin(e.session));
      else this.pending = this.pending.then(() => this.end(e.session));
    });
  }

  private async begin(session: StreamSession): Promise<void> {
    await this.stopStream();
    const log = this.o.log.child({ session: session.id, stream: "audio" });
    try {
      this.natives ??= loadAudioNatives(this.o.nativePath);
      const natives = this.natives;
      this.stream = await AudioStream.start({
        host: this.o.host,
        port: this.o.port,
        session,
        natives,
        openSource: (channels) => openPcmSource(this.o.source, channels, log),
        log,
      });
      this.streamSession = session;
    } catch (err) {
      log.error("audio stream failed to start", { error: (err as Error).message });
    }
  }

  private async end(session: StreamSession): Promise<void> {
    if (this.streamSession && this.streamSession.id === session.id) await this.stopStream();
  }

  private async stopStream(): Promise<void> {
    const s = this.stream;
    this.stream = null;
    this.streamSession = null;
    await s?.stop();
  }

  /** The running stream's state (source, client, packets), or null. */
  info(): AudioStreamInfo | null {
    return this.stream?.info() ?? null;
  }

  /** Stops listening to session events (the service is going away for good). */
  detach(): void {
    this.unsubscribe();
  }

  /** Waits for queued starts/stops (tests, shutdown). */
  settled(): Promise<void> {
    return this.pending;
  }

  /** Stops the running stream and frees the native handles; a later PLAY starts afresh. */
  async close(): Promise<void> {
    await this.pending;
    await this.stopStream();
    if (this.natives) {
      this.natives.crypto.close();
      this.natives.audio.close();
      this.natives = null;
    }
  }
}
