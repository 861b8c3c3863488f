/**
 * GameStream controller state → the agent's gamepad state (guest/gamepad-model.ts).
 * Both speak XInput's conventions (sticks −32768..32767 with +y up, triggers
 * 0..255), so only the button bits are re-laid out; paddles, touchpad click and
 * the misc button have no Xbox-pad counterpart and are left out.
 */
import { GamepadBit, type GamepadButton, type GamepadState } from "../guest/gamepad-model.ts";
import type { ControllerStateEvent } from "./model.ts";

/** GameStream button flags (low 16 bits: buttonFlags; high 16: buttonFlags2). */
export const MoonlightButton = {
  up: 0x0001,
  down: 0x0002,
  left: 0x0004,
  right: 0x0008,
  play: 0x0010,
  back: 0x0020,
  lsClick: 0x0040,
  rsClick: 0x0080,
  lb: 0x0100,
  rb: 0x0200,
  special: 0x0400,
  a: 0x1000,
  b: 0x2000,
  x: 0x4000,
  y: 0x8000,
  paddle1: 0x010000,
  paddle2: 0x020000,
  paddle3: 0x040000,
  paddle4: 0x080000,
  touchpad: 0x100000,
  misc: 0x200000,
} as const;

const MAP: readonly [number, GamepadButton][] = [
  [MoonlightButton.a, "a"],
  [MoonlightButton.b, "b"],
  [MoonlightButton.x, "x"],
  [MoonlightButton.y, "y"],
  [MoonlightButton.lb, "lb"],
  [MoonlightButton.rb, "rb"],
  [MoonlightButton.back, "back"],
  [MoonlightButton.play, "start"],
  [MoonlightButton.special, "guide"],
  [MoonlightButton.lsClick, "ls"],
  [MoonlightButton.rsClick, "rs"],
  [MoonlightButton.up, "dpad_up"],
  [MoonlightButton.down, "dpad_down"],
  [MoonlightButton.left, "dpad_left"],
  [MoonlightButton.right, "dpad_right"],
];

export function moonlightButtons(flags: number): number {
  let out = 0;
  for (const [ml, b] of MAP) if (flags & ml) out |= GamepadBit[b];
  return out;
}

const clampAxis = (v: number) => Math.max(-32768, Math.min(32767, Math.trunc(v) || 0));
const clampTrigger = (v: number) => Math.max(0, Math.min(255, Math.trunc(v) || 0));

export function moonlightToGamepad(ev: ControllerStateEvent): GamepadState {
  return {
    index: ev.controllerNumber,
    buttons: moonlightButtons(ev.buttonFlags),
    lt: clampTrigger(ev.leftTrigger),
    rt: clampTrigger(ev.rightTrigger),
    lx: clampAxis(ev.leftStickX),
    ly: clampAxis(ev.leftStickY),
    rx: clampAxis(ev.rightStickX),
    ry: clampAxis(ev.rightStickY),
  };
}
