/**
 * The input backend of sessions without a VM (the "Desktop" test app): accepts every event,
 * counts it by kind and logs the first few, delivers nowhere.
 */
import type { InputBackend, InputBackendStats, InputCapabilities } from "../../input/backend.ts";
import { emptyStats } from "../../input/backend.ts";
import type { InputEvent, InputEventKind } from "../../input/model.ts";
import type { Logger } from "../../log.ts";

const LOG_FIRST = 20;

export class CountingInputBackend implements InputBackend {
  readonly name = "counting";
  readonly capabilities: InputCapabilities = {
    keyboard: true,
    relativePointer: true,
    absolutePointer: true,
    wheel: true,
    hwheel: true,
    text: true,
    touch: true,
    gamepad: true,
  };
  private readonly counters: InputBackendStats = emptyStats();
  readonly byKind: Partial<Record<InputEventKind, number>> = {};
  /** releaseAll() calls (session end, an input permission revoked). */
  releases = 0;

  constructor(private readonly log: Logger) {}

  async open(): Promise<void> {}

  submit(events: readonly InputEvent[]): void {
    for (const ev of events) {
      this.counters.accepted++;
      this.counters.delivered++;
      this.byKind[ev.kind] = (this.byKind[ev.kind] ?? 0) + 1;
      if (this.counters.accepted <= LOG_FIRST) this.log.debug("input event (no VM: counted only)", { kind: ev.kind });
    }
    if (events.length) this.counters.batches++;
  }

  async flush(): Promise<void> {}
  async releaseAll(): Promise<void> {
    this.releases++;
  }
  async close(): Promise<void> {}

  stats(): InputBackendStats {
    return { ...this.counters, unsupported: { ...this.counters.unsupported } };
  }
}
