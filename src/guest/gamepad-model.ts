/**
 * Gamepad messages of the agent protocol (PROTOCOL.md, "Gamepads"): the host
 * attaches a virtual pad in the guest, sends its full state (latest wins), and
 * detaches it. Shared by the host backend and the in-guest service.
 *
 * State convention (XInput-like): sticks −32768..32767 with +y = up, triggers
 * 0..255, buttons a bit mask over GAMEPAD_BUTTONS (bit n = GAMEPAD_BUTTONS[n]).
 */
import { z } from "zod";

/** Pads a host may attach at once (index 0..15, as GameStream controller numbers). */
export const MAX_GAMEPADS = 16;

export const GAMEPAD_BUTTONS = [
  "a",
  "b",
  "x",
  "y",
  "lb",
  "rb",
  "back",
  "start",
  "guide",
  "ls",
  "rs",
  "dpad_up",
  "dpad_down",
  "dpad_left",
  "dpad_right",
] as const;
export type GamepadButton = (typeof GAMEPAD_BUTTONS)[number];
/** Bit of a button in the `buttons` mask. */
export const GamepadBit = Object.fromEntries(GAMEPAD_BUTTONS.map((b, i) => [b, 1 << i])) as Record<GamepadButton, number>;
export const GAMEPAD_BUTTON_MASK = (1 << GAMEPAD_BUTTONS.length) - 1;

export const GAMEPAD_KINDS = ["xbox"] as const;
export type GamepadKind = (typeof GAMEPAD_KINDS)[number];

const index = z.number().int().min(0).max(MAX_GAMEPADS - 1);
const axis = z.number().int().min(-32768).max(32767);
const trigger = z.number().int().min(0).max(255);

export const GamepadAttach = z.strictObject({ index, kind: z.enum(GAMEPAD_KINDS).default("xbox") });
export type GamepadAttach = z.output<typeof GamepadAttach>;

export const GamepadState = z.strictObject({
  index,
  buttons: z.number().int().min(0).max(GAMEPAD_BUTTON_MASK),
  lt: trigger,
  rt: trigger,
  lx: axis,
  ly: axis,
  rx: axis,
  ry: axis,
});
export type GamepadState = z.output<typeof GamepadState>;

export const GamepadDetach = z.strictObject({ index });
export type GamepadDetach = z.output<typeof GamepadDetach>;

/** What attach answers: the device the guest created. */
export const GamepadAttached = z.object({ index, device: z.string().max(256) });
export type GamepadAttached = z.infer<typeof GamepadAttached>;

/** Guest → host event: the game drives the pad's motors (0..65535 each, 0/0 = stop). */
export const GamepadRumble = z.object({ index, low: z.number().int().min(0).max(65535), high: z.number().int().min(0).max(65535) });
export type GamepadRumble = z.infer<typeof GamepadRumble>;

export const neutralState = (i: number): GamepadState => ({ index: i, buttons: 0, lt: 0, rt: 0, lx: 0, ly: 0, rx: 0, ry: 0 });
