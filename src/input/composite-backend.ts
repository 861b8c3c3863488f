/**
 * One session, two targets: keyboard, mouse, text and touch go to the primary
 * backend (the VM's QMP monitor), controller events to the gamepad backend
 * (the VM's guest agent). A gamepad backend that cannot open leaves the session
 * with the primary alone (gamepad events then count as unsupported).
 */
import { describeError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { sumStats, type InputBackend, type InputBackendStats, type InputCapabilities } from "./backend.ts";
import type { InputEvent, InputEventKind } from "./model.ts";

export const GAMEPAD_EVENT_KINDS: ReadonlySet<InputEventKind> = new Set<InputEventKind>([
  "controller",
  "controllerArrival",
  "controllerTouch",
  "controllerMotion",
  "controllerBattery",
  "enableHaptics",
]);

export class CompositeInputBackend implements InputBackend {
  readonly name: string;
  private gamepadOpen = false;

  constructor(
    private readonly primary: InputBackend,
    private readonly gamepad: InputBackend,
    private readonly log: Logger,
    /** The event kinds the second backend takes (default: controllers). */
    private readonly kinds: ReadonlySet<InputEventKind> = GAMEPAD_EVENT_KINDS,
  ) {
    this.name = `${primary.name}+${gamepad.name}`;
  }

  get capabilities(): InputCapabilities {
    return { ...this.primary.capabilities, gamepad: this.gamepadOpen && this.gamepad.capabilities.gamepad };
  }

  async open(): Promise<void> {
    await this.primary.open();
    try {
      await this.gamepad.open();
      this.gamepadOpen = true;
    } catch (err) {
      this.log.warn("gamepad backend unavailable: controllers are not forwarded", { backend: this.gamepad.name, error: describeError(err) });
    }
  }

  submit(events: readonly InputEvent[]): void {
    const pads: InputEvent[] = [];
    const rest: InputEvent[] = [];
    for (const ev of events) (this.gamepadOpen && this.kinds.has(ev.kind) ? pads : rest).push(ev);
    if (rest.length) this.primary.submit(rest);
    if (pads.length) this.gamepad.submit(pads);
  }

  async flush(): Promise<void> {
    await Promise.all([this.primary.flush(), this.gamepad.flush()]);
  }

  async releaseAll(): Promise<void> {
    await Promise.all([this.primary.releaseAll(), this.gamepad.releaseAll()]);
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.primary.close(), this.gamepad.close()]);
  }

  stats(): InputBackendStats {
    return sumStats(this.primary.stats(), this.gamepad.stats());
  }
}
