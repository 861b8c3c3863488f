/**
 * Pads by what the client says it holds (input.padDevice "auto"): a PlayStation controller
 * becomes the agent's uhid DualSense (its motion sensors and touchpad reach the guest), any
 * other the agent's uinput Xbox 360 pad. A controller whose state comes before its arrival
 * counts as an Xbox one. Per controller, every event goes to the backend chosen for it.
 */
import { sumStats, type InputBackend, type InputBackendStats, type InputCapabilities } from "./backend.ts";
import type { InputEvent } from "./model.ts";

/** A pad backend that can drop the pads a client no longer has. */
export interface PadBackend extends InputBackend {
  /** Detaches every pad whose bit is not in `mask`. */
  retain(mask: number): void;
}

export class PadRouter implements InputBackend {
  readonly name: string;
  private readonly chosen = new Map<number, InputBackend>();

  constructor(
    private readonly xbox: PadBackend,
    private readonly playstation: PadBackend,
  ) {
    this.name = `pads(${xbox.name}|${playstation.name})`;
  }

  get capabilities(): InputCapabilities {
    return { ...this.xbox.capabilities, gamepad: true };
  }

  async open(): Promise<void> {
    await Promise.all([this.xbox.open(), this.playstation.open()]);
  }

  /** The backend serving controller n. */
  backendOf(n: number): InputBackend {
    return this.chosen.get(n) ?? this.xbox;
  }

  submit(events: readonly InputEvent[]): void {
    for (const ev of events) {
      if (ev.kind === "controllerArrival") this.chosen.set(ev.controllerNumber, ev.type === "playstation" ? this.playstation : this.xbox);
      const target = "controllerNumber" in ev ? this.backendOf(ev.controllerNumber) : this.xbox;
      target.submit([ev]);
      // a state's active mask concerns both: the other one detaches its pads that left
      if (ev.kind === "controller") (target === this.xbox ? this.playstation : this.xbox).retain(ev.activeGamepadMask);
    }
  }

  async flush(): Promise<void> {
    await Promise.all([this.xbox.flush(), this.playstation.flush()]);
  }

  async releaseAll(): Promise<void> {
    await Promise.all([this.xbox.releaseAll(), this.playstation.releaseAll()]);
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.xbox.close(), this.playstation.close()]);
  }

  stats(): InputBackendStats {
    return sumStats(this.xbox.stats(), this.playstation.stats());
  }
}
