/**
 * Input into the host's own desktop session (apps of kind host-desktop): a stream client's
 * keys, pointer, buttons and wheel go to the compositor through the input path of the
 * session's virtual output (Mutter: the RemoteDesktop session linked to its ScreenCast
 * stream, NotifyKeyboardKeycode / NotifyPointerMotion* / NotifyPointerButton /
 * NotifyPointerAxisDiscrete). Keys are Windows VK codes on the wire, evdev codes here
 * (the native key table). Absolute motion is scaled from the client's reference surface
 * to the output's pixels. Touch, pen, text and gamepads are counted as unsupported.
 */
import { AppError, describeError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { HostSessionInput } from "../capture/host-output.ts";
import { emptyStats, type InputBackend, type InputBackendStats, type InputCapabilities } from "./backend.ts";
import type { KeyTable } from "./keymap.ts";
import { WHEEL_DELTA, type InputEvent, type MouseButton } from "./model.ts";

/** evdev BTN_* codes of the client's buttons. */
const BUTTON_CODE: Record<MouseButton, number> = { left: 0x110, right: 0x111, middle: 0x112, x1: 0x113, x2: 0x114 };
/** Most wheel clicks one packet may produce (a hostile amount cannot flood the session). */
const MAX_STEPS = 16;
/** Pixels of smooth scroll per wheel click (what Mutter scrolls for one discrete step). */
const PX_PER_STEP = 10;

/** The output's input path and its size in pixels, once the session's video has created it. */
export interface HostInputTarget {
  input: HostSessionInput;
  width: number;
  height: number;
}

export interface HostSessionInputOptions {
  /** The session's output (null until its video source is open, or when the compositor takes no input). */
  target: () => HostInputTarget | null;
  keys: KeyTable;
  log: Logger;
  /** How long open() waits for the session's output (its video starts at PLAY). */
  openTimeoutMs?: number;
}

export class HostSessionInputBackend implements InputBackend {
  readonly name = "host-session";
  readonly capabilities: InputCapabilities = {
    keyboard: true,
    relativePointer: true,
    absolutePointer: true,
    wheel: true,
    hwheel: true,
    text: false,
    touch: false,
    gamepad: false,
  };
  private readonly counters: InputBackendStats = emptyStats();
  private readonly heldKeys = new Set<number>();
  private readonly heldButtons = new Set<number>();
  private errorLogged = false;

  constructor(private readonly o: HostSessionInputOptions) {}

  async open(): Promise<void> {
    const end = Date.now() + (this.o.openTimeoutMs ?? 3000);
    while (!this.o.target()) {
      if (Date.now() >= end)
        throw new AppError("INPUT_BACKEND_UNAVAILABLE", "the host session takes no input for this stream: its compositor offers no RemoteDesktop session (or the output is not open)", { status: 503 });
      await Bun.sleep(20);
    }
    this.counters.connects++;
  }

  submit(events: readonly InputEvent[]): void {
    const t = this.o.target();
    this.counters.accepted += events.length;
    if (!t) {
      this.counters.dropped += events.length;
      return;
    }
    try {
      for (const ev of events) this.deliver(t, ev);
      if (events.length) this.counters.batches++;
    } catch (err) {
      this.counters.refusedBatches++;
      if (!this.errorLogged) this.o.log.warn("the host session refused input", { error: describeError(err) });
      this.errorLogged = true;
    }
  }

  private deliver(t: HostInputTarget, ev: InputEvent): void {
    switch (ev.kind) {
      case "key": {
        const row = this.o.keys.byVk(ev.vk);
        if (!row) {
          this.counters.unmappedKeys++;
          return;
        }
        if (!ev.down && !this.heldKeys.has(row.evdev)) return; // a release of a key we never pressed
        t.input.key(row.evdev, ev.down);
        if (ev.down) this.heldKeys.add(row.evdev);
        else this.heldKeys.delete(row.evdev);
        break;
      }
      case "mouseMoveRel":
        t.input.pointerRelative(ev.dx, ev.dy);
        break;
      case "mouseMoveAbs": {
        const sx = Math.min(Math.max(ev.x, 0), ev.width - 1) / Math.max(1, ev.width - 1);
        const sy = Math.min(Math.max(ev.y, 0), ev.height - 1) / Math.max(1, ev.height - 1);
        t.input.pointerAbsolute(sx * (t.width - 1), sy * (t.height - 1));
        break;
      }
      case "mouseButton": {
        const code = BUTTON_CODE[ev.button];
        if (!ev.down && !this.heldButtons.has(code)) return;
        t.input.button(code, ev.down);
        if (ev.down) this.heldButtons.add(code);
        else this.heldButtons.delete(code);
        break;
      }
      case "scroll":
      case "hscroll": {
        // whole clicks are discrete steps; a high-resolution wheel's fractions scroll smoothly.
        // The wire's vertical positive is away from the user (up); the compositor's is down.
        const sign = ev.kind === "scroll" ? -1 : 1;
        if (ev.amount % WHEEL_DELTA !== 0) {
          const px = (sign * Math.max(-MAX_STEPS * WHEEL_DELTA, Math.min(MAX_STEPS * WHEEL_DELTA, ev.amount)) * PX_PER_STEP) / WHEEL_DELTA;
          if (ev.kind === "scroll") t.input.scrollSmooth(0, px);
          else t.input.scrollSmooth(px, 0);
          break;
        }
        const steps = Math.max(-MAX_STEPS, Math.min(MAX_STEPS, ev.amount / WHEEL_DELTA));
        t.input.scroll(ev.kind === "scroll" ? "vertical" : "horizontal", sign * steps);
        break;
      }
      default:
        this.counters.unsupported[ev.kind] = (this.counters.unsupported[ev.kind] ?? 0) + 1;
        return;
    }
    this.counters.delivered++;
  }

  async flush(): Promise<void> {}

  async releaseAll(): Promise<void> {
    const t = this.o.target();
    if (!t) {
      this.heldKeys.clear();
      this.heldButtons.clear();
      return;
    }
    try {
      for (const k of this.heldKeys) t.input.key(k, false);
      for (const b of this.heldButtons) t.input.button(b, false);
    } catch (err) {
      this.o.log.warn("releasing held keys in the host session failed", { error: describeError(err) });
    }
    this.heldKeys.clear();
    this.heldButtons.clear();
  }

  async close(): Promise<void> {
    await this.releaseAll();
  }

  stats(): InputBackendStats {
    return { ...this.counters, unsupported: { ...this.counters.unsupported } };
  }
}
