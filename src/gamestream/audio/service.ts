/**
 * Runs each session's audio stream for as long as the session plays: started on
 * RTSP PLAY, stopped when the session ends (or the host stops). All streams share
 * the audio port (port.ts), bound while at least one stream runs.
 */
import { AudioNative } from "../../../ffi/audio.ts";
import { NativeCrypto } from "../../../ffi/crypto.ts";
import { Rs8Library } from "../../../ffi/rs8.ts";
import type { Logger } from "../../log.ts";
import type { SessionStore, StreamSession } from "../sessions.ts";
import { AudioPort } from "./port.ts";
import { openPcmSource, type AudioSourceSettings } from "./source.ts";
import { AudioStream, type AudioNatives, type AudioStreamInfo } from "./stream.ts";
import { sinkExists, vmAudioMonitor, vmAudioSink } from "../../vm/audio.ts";

export interface AudioServiceOptions {
  host: string;
  port: number;
  /** Path of libneuron.so. */
  nativePath: string;
  source: AudioSourceSettings;
  /** pactl binary: a VM's session records that VM's own sink when the server has it. */
  pactl?: string;
  log: Logger;
}

/**
 * The source of a session: a VM's own sink monitor when the session streams a VM and the pulse
 * server has that VM's sink (audio.ts), else the configured source as it is.
 */
export async function sourceForSession(source: AudioSourceSettings, vmName: string | null, pactl = "pactl"): Promise<AudioSourceSettings> {
  if (!vmName || source.command?.length || !source.pulseServer) return source;
  try {
    if (await sinkExists(pactl, source.pulseServer, vmAudioSink(vmName))) return { ...source, device: vmAudioMonitor(vmName) };
  } catch {
    /* no pactl or no server: the configured source */
  }
  return source;
}

export function loadAudioNatives(path: string): AudioNatives {
  return { audio: new AudioNative(path), crypto: NativeCrypto.load({ explicit: path }), rs8: Rs8Library.open({ explicit: path }) };
}

export class AudioService {
  private natives: AudioNatives | null = null;
  private port: AudioPort | null = null;
  /** session id → its running stream */
  private readonly streams = new Map<string, AudioStream>();
  /** Starts and stops in flight (PLAY → bind), so an end that comes meanwhile stops what a start produces. */
  private pending: Promise<void> = Promise.resolve();
  private readonly unsubscribe: () => void;

  constructor(
    sessions: SessionStore,
    private readonly o: AudioServiceOptions,
  ) {
    this.unsubscribe = sessions.subscribe((e) => {
      if (e.type === "playing") this.pending = this.pending.then(() => this.begin(e.session));
      else if (e.type === "ended") this.pending = this.pending.then(() => this.end(e.session.id));
    });
  }

  private async begin(session: StreamSession): Promise<void> {
    await this.end(session.id);
    const log = this.o.log.child({ session: session.id, stream: "audio" });
    try {
      this.natives ??= loadAudioNatives(this.o.nativePath);
      const source = await sourceForSession(this.o.source, session.vmName, this.o.pactl);
      if (source.device) log.info("audio source: the VM's own sink", { device: source.device });
      this.port ??= await AudioPort.open(this.o.host, this.o.port, this.o.log);
      const stream = await AudioStream.start({
        host: this.o.host,
        port: this.o.port,
        shared: this.port,
        session,
        natives: this.natives,
        openSource: (channels) => openPcmSource(source, channels, log),
        log,
      });
      this.streams.set(session.id, stream);
    } catch (err) {
      log.error("audio stream failed to start", { error: (err as Error).message });
    }
  }

  private async end(sessionId: string): Promise<void> {
    const s = this.streams.get(sessionId);
    this.streams.delete(sessionId);
    await s?.stop();
    // the last stream gone: the port is given back until the next PLAY
    if (this.streams.size === 0 && this.port) {
      const port = this.port;
      this.port = null;
      await port.close();
    }
  }

  /** The session's running audio stream (source, client, packets), or null. */
  info(sessionId: string): AudioStreamInfo | null {
    return this.streams.get(sessionId)?.info() ?? null;
  }

  /** Audio streams running now. */
  get running(): number {
    return this.streams.size;
  }

  /** Stops listening to session events (the service is going away for good). */
  detach(): void {
    this.unsubscribe();
  }

  /** Waits for queued starts/stops (tests, shutdown). */
  settled(): Promise<void> {
    return this.pending;
  }

  /** Stops every stream, closes the port and frees the native handles; a later PLAY starts afresh. */
  async close(): Promise<void> {
    await this.pending;
    for (const id of [...this.streams.keys()]) await this.end(id);
    await this.port?.close();
    this.port = null;
    if (this.natives) {
      this.natives.crypto.close();
      this.natives.audio.close();
      this.natives = null;
    }
  }
}
