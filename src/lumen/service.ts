/**
 * The lumen/1 host inside `serve`: the GameStream identity, paired clients in the database,
 * PIN entry through the same pairing API and CLI as Moonlight's, events on the core's bus,
 * input into a backend when one is given. Frames: the test pattern until a capture source is
 * attached (the source is an option of the host).
 */
import { AudioNative } from "../../ffi/audio.ts";
import { CaptureNative } from "../../ffi/capture.ts";
import { LumenNative } from "../../ffi/lumen.ts";
import { StreamNative } from "../../ffi/stream.ts";
import type { Config } from "../config.ts";
import type { EventBus } from "../events/bus.ts";
import type { Logger } from "../log.ts";
import type { InputEvent } from "../input/model.ts";
import { toneAudio } from "./audio.ts";
import { LumenHost, type FrameSourceLike } from "./host.ts";
import type { LumenPairingStore, LumenPendingPairing } from "./pairing.ts";

export interface LumenServiceDeps {
  config: Config;
  nativePath: string;
  identity: () => { keyPem: string; certPem: string; fingerprint: string };
  store: LumenPairingStore;
  events: EventBus;
  log: Logger;
  onInput?: (sessionId: number, events: InputEvent[]) => void;
  source?: FrameSourceLike;
}

export class LumenService {
  private host: LumenHost | null = null;

  constructor(private readonly d: LumenServiceDeps) {}

  async start(): Promise<number> {
    if (this.host) return this.host.port;
    const n = { lumen: new LumenNative(this.d.nativePath), stream: new StreamNative(this.d.nativePath), capture: new CaptureNative(this.d.nativePath) };
    const audio = new AudioNative(this.d.nativePath);
    const id = this.d.identity();
    const c = this.d.config;
    this.host = new LumenHost({
      host: c.lumenHost, port: c.lumenPort, ...id, natives: n, store: this.d.store, log: this.d.log,
      source: this.d.source ?? { fill: (dst, w, h, counter) => n.capture.testpatternFill(dst, w, h, w * 4, counter) },
      maxSessions: c.lumenMaxSessions, pinTimeoutMs: c.pairingPinTimeoutMs,
      onInput: this.d.onInput, onEvent: (type, data) => this.d.events.publish(type, data),
      audio: () => toneAudio(audio),
    });
    return this.host.start();
  }

  get running(): LumenHost | null {
    return this.host;
  }

  pending(): LumenPendingPairing[] {
    return this.host?.pending() ?? [];
  }

  submitPin(pin: string, attemptId?: string): LumenPendingPairing | null {
    return this.host?.submitPin(pin, attemptId) ?? null;
  }

  async stop(): Promise<void> {
    await this.host?.stop();
    this.host = null;
  }
}
