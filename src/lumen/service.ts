/**
 * The lumen/1 host inside `serve`: the GameStream identity, paired clients in the database,
 * PIN entry through the same pairing API and CLI as Moonlight's, events on the core's bus,
 * input into each session's input backend: the QMP monitor of the VM named by `lumenInputVm`
 * when it runs, else counted and logged (as GameStream sessions without a VM). Frames: the test
 * pattern until a capture source is attached (the source is an option of the host).
 */
import { AudioNative } from "../../ffi/audio.ts";
import { CaptureNative } from "../../ffi/capture.ts";
import { LumenNative } from "../../ffi/lumen.ts";
import { StreamNative } from "../../ffi/stream.ts";
import type { Config } from "../config.ts";
import type { EventBus } from "../events/bus.ts";
import type { Logger } from "../log.ts";
import type { InputEvent } from "../input/model.ts";
import type { InputBackend } from "../input/backend.ts";
import { CountingInputBackend } from "../gamestream/control/counting-input.ts";
import { QmpInputBackend } from "../input/qmp-backend.ts";
import { vmQmpSocket } from "../vm/qmp-socket.ts";
import { existsSync } from "node:fs";
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
  /** Each session's input backend, opened on its first input event, closed when it ends. */
  private readonly inputs = new Map<number, Promise<InputBackend>>();

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
      onInput: this.d.onInput ?? ((sid, events) => this.deliverInput(sid, events)),
      onEvent: (type, data) => {
        if (type === "lumen.session.ended") this.endInput(data.session as number);
        this.d.events.publish(type, data);
      },
      audio: () => toneAudio(audio),
    });
    return this.host.start();
  }

  private backendFor(sessionId: number): Promise<InputBackend> {
    let b = this.inputs.get(sessionId);
    if (!b) {
      const vm = this.d.config.lumenInputVm;
      const log = this.d.log.child({ session: sessionId });
      const socketPath = vm ? vmQmpSocket(this.d.config.qmpDir, vm) : null;
      const backend: InputBackend = socketPath && existsSync(socketPath) ? new QmpInputBackend({ socketPath, log }) : new CountingInputBackend(log);
      b = backend.open().then(
        () => backend,
        (err: unknown) => {
          log.warn("lumen/1 input backend did not open: input is counted only", { error: (err as Error).message });
          return new CountingInputBackend(log) as InputBackend;
        },
      );
      this.inputs.set(sessionId, b);
    }
    return b;
  }

  private deliverInput(sessionId: number, events: InputEvent[]): void {
    void this.backendFor(sessionId).then((b) => b.submit(events));
  }

  private endInput(sessionId: number): void {
    const b = this.inputs.get(sessionId);
    this.inputs.delete(sessionId);
    void b?.then((x) => x.close());
  }

  /** Input statistics of a running session's backend (null before its first input). */
  async inputStats(sessionId: number) {
    const b = this.inputs.get(sessionId);
    return b ? (await b).stats() : null;
  }

  get running(): LumenHost | null {
    return this.host;
  }

  pairings() {
    return this.d.store.list();
  }

  /** Forgets a paired client: its next connection must pair by PIN again. */
  unpair(clientId: string): boolean {
    const removed = this.d.store.remove(clientId);
    if (removed) this.d.events.publish("pairing.removed", { protocol: "lumen", clientId });
    return removed;
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
