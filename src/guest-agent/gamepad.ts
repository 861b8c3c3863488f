/**
 * Virtual gamepads inside the guest: a hub of up to MAX_GAMEPADS pads, each a
 * device the OS sees as an Xbox-style controller. The device itself comes from
 * a GamepadDriver (Linux: uinput, gamepad-uinput.ts; Windows: ViGEmBus, not
 * available in this build). The state → evdev translation is pure and lives here.
 */
import { GAMEPAD_BUTTONS, type GamepadButton, type GamepadKind, type GamepadState, neutralState } from "../guest/gamepad-model.ts";
import { GuestCommandError } from "./os.ts";

/** Linux input event codes (linux/input-event-codes.h). */
export const EV = { SYN: 0x00, KEY: 0x01, ABS: 0x03 } as const;
export const SYN_REPORT = 0;
export const ABS = { X: 0x00, Y: 0x01, Z: 0x02, RX: 0x03, RY: 0x04, RZ: 0x05, HAT0X: 0x10, HAT0Y: 0x11 } as const;
export const BTN = {
  SOUTH: 0x130,
  EAST: 0x131,
  NORTH: 0x133,
  WEST: 0x134,
  TL: 0x136,
  TR: 0x137,
  SELECT: 0x13a,
  START: 0x13b,
  MODE: 0x13c,
  THUMBL: 0x13d,
  THUMBR: 0x13e,
} as const;

/** Face and shoulder buttons as keys (the d-pad is the hat, as Xbox pads report it on Linux). */
export const BUTTON_KEYS: Partial<Record<GamepadButton, number>> = {
  a: BTN.SOUTH,
  b: BTN.EAST,
  x: BTN.WEST,
  y: BTN.NORTH,
  lb: BTN.TL,
  rb: BTN.TR,
  back: BTN.SELECT,
  start: BTN.START,
  guide: BTN.MODE,
  ls: BTN.THUMBL,
  rs: BTN.THUMBR,
};

export interface AbsAxis {
  code: number;
  min: number;
  max: number;
  flat: number;
  fuzz: number;
}
export const PAD_AXES: readonly AbsAxis[] = [
  { code: ABS.X, min: -32768, max: 32767, flat: 128, fuzz: 16 },
  { code: ABS.Y, min: -32768, max: 32767, flat: 128, fuzz: 16 },
  { code: ABS.RX, min: -32768, max: 32767, flat: 128, fuzz: 16 },
  { code: ABS.RY, min: -32768, max: 32767, flat: 128, fuzz: 16 },
  { code: ABS.Z, min: 0, max: 255, flat: 0, fuzz: 0 },
  { code: ABS.RZ, min: 0, max: 255, flat: 0, fuzz: 0 },
  { code: ABS.HAT0X, min: -1, max: 1, flat: 0, fuzz: 0 },
  { code: ABS.HAT0Y, min: -1, max: 1, flat: 0, fuzz: 0 },
];
export const PAD_KEYS: readonly number[] = Object.values(BUTTON_KEYS) as number[];

export interface InputEventTriple {
  type: number;
  code: number;
  value: number;
}

/** XInput's +y = up becomes evdev's +y = down (−32768 maps to 32767, not past it). */
const invertY = (v: number) => (v === -32768 ? 32767 : -v);
const bit = (s: GamepadState, b: GamepadButton) => (s.buttons >> GAMEPAD_BUTTONS.indexOf(b)) & 1;

/** The evdev axis values of a state. */
export function evdevAxes(s: GamepadState): Record<number, number> {
  return {
    [ABS.X]: s.lx,
    [ABS.Y]: invertY(s.ly),
    [ABS.RX]: s.rx,
    [ABS.RY]: invertY(s.ry),
    [ABS.Z]: s.lt,
    [ABS.RZ]: s.rt,
    [ABS.HAT0X]: bit(s, "dpad_right") - bit(s, "dpad_left"),
    [ABS.HAT0Y]: bit(s, "dpad_down") - bit(s, "dpad_up"),
  };
}

/** Events that take a pad from `prev` to `next` (only what changed), ending in SYN_REPORT; [] when nothing changed. */
export function stateEvents(prev: GamepadState, next: GamepadState): InputEventTriple[] {
  const out: InputEventTriple[] = [];
  for (const [name, code] of Object.entries(BUTTON_KEYS) as [GamepadButton, number][]) {
    const v = bit(next, name);
    if (v !== bit(prev, name)) out.push({ type: EV.KEY, code, value: v });
  }
  const a = evdevAxes(prev);
  const b = evdevAxes(next);
  for (const axis of PAD_AXES) if (a[axis.code] !== b[axis.code]) out.push({ type: EV.ABS, code: axis.code, value: b[axis.code]! });
  if (out.length) out.push({ type: EV.SYN, code: SYN_REPORT, value: 0 });
  return out;
}

/** One OS device. */
export interface VirtualPad {
  /** OS name of the device (e.g. /dev/input/event5, or the uinput sysname). */
  readonly device: string;
  emit(events: readonly InputEventTriple[]): void;
  destroy(): void;
}

/** The game set the pad's motors (0..65535 each; 0/0 = stop). */
export type RumbleListener = (r: { index: number; low: number; high: number }) => void;

export interface GamepadDriver {
  readonly name: string;
  /** Why this guest cannot create pads, or null when it can. */
  unavailable(): string | null;
  create(index: number, kind: GamepadKind, onRumble?: RumbleListener): VirtualPad;
}

/** Windows: pads need the ViGEmBus driver; this build has no client for it, so it says so. */
export class VigemUnavailableDriver implements GamepadDriver {
  readonly name = "vigem";
  unavailable(): string {
    return "virtual gamepads on Windows need the ViGEmBus driver, which this agent build does not support yet";
  }
  create(): VirtualPad {
    throw new GuestCommandError("GAMEPAD_UNAVAILABLE", this.unavailable());
  }
}

interface Pad {
  dev: VirtualPad;
  state: GamepadState;
}

export class GamepadHub {
  private readonly pads = new Map<number, Pad>();

  constructor(
    private readonly driver: GamepadDriver,
    /** Where the pads' rumble goes (the agent server sends it to the host). */
    public onRumble: RumbleListener | null = null,
  ) {}

  get count(): number {
    return this.pads.size;
  }

  /** Creates pad `index` (already attached: kept, state reset to neutral). */
  attach(index: number, kind: GamepadKind): { index: number; device: string } {
    const existing = this.pads.get(index);
    if (existing) {
      this.apply(existing, neutralState(index));
      return { index, device: existing.dev.device };
    }
    const why = this.driver.unavailable();
    if (why) throw new GuestCommandError("GAMEPAD_UNAVAILABLE", why);
    let dev: VirtualPad;
    try {
      dev = this.driver.create(index, kind, (r) => this.onRumble?.(r));
    } catch (err) {
      if (err instanceof GuestCommandError) throw err;
      throw new GuestCommandError("GAMEPAD_UNAVAILABLE", `cannot create gamepad ${index}: ${(err as Error).message}`);
    }
    this.pads.set(index, { dev, state: neutralState(index) });
    return { index, device: dev.device };
  }

  state(s: GamepadState): void {
    const pad = this.pads.get(s.index);
    if (!pad) throw new GuestCommandError("GAMEPAD_NOT_ATTACHED", `gamepad ${s.index} is not attached`);
    this.apply(pad, s);
  }

  /** Releases everything, then removes the device; detaching an absent pad is not an error. */
  detach(index: number): void {
    const pad = this.pads.get(index);
    if (!pad) return;
    this.pads.delete(index);
    try {
      this.apply(pad, neutralState(index));
    } finally {
      pad.dev.destroy();
    }
  }

  detachAll(): void {
    for (const i of [...this.pads.keys()]) {
      try {
        this.detach(i);
      } catch {
        // a device that fails to release is gone anyway
      }
    }
  }

  private apply(pad: Pad, next: GamepadState): void {
    const events = stateEvents(pad.state, next);
    if (events.length) pad.dev.emit(events);
    pad.state = next;
  }
}
