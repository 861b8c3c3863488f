/**
 * The common input event model. Every input packet a GameStream client sends
 * on the control stream (message type 0x0206) decodes into one of these
 * events; input backends (QMP, uinput, ...) consume them.
 *
 * Wire facts (all packets): `BE32 size` (bytes after this field) ‖
 * `LE32 magic` ‖ body. Field byte orders differ per packet type; they are
 * documented in decode.ts beside each layout.
 */
import { z } from "zod";

/** Packet type tags (`magic`, little-endian on the wire). */
export const InputMagic = {
  keyDown: 0x03,
  keyUp: 0x04,
  mouseMoveAbs: 0x05,
  mouseMoveRel: 0x07,
  mouseButtonDown: 0x08,
  mouseButtonUp: 0x09,
  scroll: 0x0a,
  multiController: 0x0c,
  enableHaptics: 0x0d,
  utf8Text: 0x17,
  hscroll: 0x55000001,
  touch: 0x55000002,
  pen: 0x55000003,
  controllerArrival: 0x55000004,
  controllerTouch: 0x55000005,
  controllerMotion: 0x55000006,
  controllerBattery: 0x55000007,
} as const;

/** Keyboard modifier bits carried by key packets. */
export const KeyModifier = { shift: 0x01, ctrl: 0x02, alt: 0x04, meta: 0x08 } as const;

/** Key packet flag: the key code is not a normalized (US layout) VK code. */
export const KEY_FLAG_NON_NORMALIZED = 0x01;

export type MouseButton = "left" | "middle" | "right" | "x1" | "x2";
/** Wire value → button (1..5). */
export const MOUSE_BUTTONS: readonly MouseButton[] = ["left", "middle", "right", "x1", "x2"];

/** One wheel notch, in the units of SCROLL / SS_HSCROLL packets. */
export const WHEEL_DELTA = 120;

/** Touch / pen event types (wire values 0..7). */
export const TOUCH_EVENT_TYPES = [
  "hover",
  "down",
  "up",
  "move",
  "cancel",
  "buttonOnly",
  "hoverLeave",
  "cancelAll",
] as const;
export type TouchEventType = (typeof TOUCH_EVENT_TYPES)[number];

/** Pen tool types (wire values 0..2). */
export const PEN_TOOL_TYPES = ["unknown", "pen", "eraser"] as const;
export type PenToolType = (typeof PEN_TOOL_TYPES)[number];

/** Controller families reported on arrival (wire values 0..4). */
export const CONTROLLER_TYPES = ["unknown", "xbox", "playstation", "nintendo", "steam"] as const;
export type ControllerType = (typeof CONTROLLER_TYPES)[number];

/** Battery states (wire values 0..5). */
export const BATTERY_STATES = [
  "unknown",
  "notPresent",
  "discharging",
  "charging",
  "notCharging",
  "full",
] as const;
export type BatteryState = (typeof BATTERY_STATES)[number];

/** Gamepads a client may address (controller numbers 0..15). */
export const MAX_CONTROLLERS = 16;
/** Most bytes of UTF-8 text one text packet may carry. */
export const MAX_TEXT_BYTES = 32;
/** Rotation / tilt values meaning "not reported". */
export const ROTATION_UNKNOWN = 0xffff;
export const TILT_UNKNOWN = 0xff;

export interface KeyEvent {
  kind: "key";
  down: boolean;
  /** Windows virtual-key code (low byte of the wire key code). */
  vk: number;
  /** The full 16-bit key code as sent (clients may set 0x8000). */
  keyCode: number;
  /** KeyModifier bits. */
  modifiers: number;
  /** Key flags (KEY_FLAG_NON_NORMALIZED). */
  flags: number;
}

export interface MouseMoveRelEvent {
  kind: "mouseMoveRel";
  dx: number;
  dy: number;
}

export interface MouseMoveAbsEvent {
  kind: "mouseMoveAbs";
  x: number;
  y: number;
  /** Reference surface the client measured x/y against (≥ 2). */
  width: number;
  height: number;
}

export interface MouseButtonEvent {
  kind: "mouseButton";
  down: boolean;
  button: MouseButton;
}

export interface ScrollEvent {
  kind: "scroll";
  /** Vertical wheel motion; WHEEL_DELTA per notch, positive = away from the user (up). */
  amount: number;
}

export interface HScrollEvent {
  kind: "hscroll";
  /** Horizontal wheel motion; WHEEL_DELTA per notch, positive = right. */
  amount: number;
}

export interface ControllerStateEvent {
  kind: "controller";
  controllerNumber: number;
  /** Bit n set: gamepad n is present. */
  activeGamepadMask: number;
  /** 32-bit button flags (low 16 bits from buttonFlags, high 16 from buttonFlags2). */
  buttonFlags: number;
  leftTrigger: number;
  rightTrigger: number;
  leftStickX: number;
  leftStickY: number;
  rightStickX: number;
  rightStickY: number;
}

export interface TextEvent {
  kind: "text";
  text: string;
}

export interface EnableHapticsEvent {
  kind: "enableHaptics";
  enable: boolean;
}

export interface TouchEvent {
  kind: "touch";
  eventType: TouchEventType;
  pointerId: number;
  /** Normalised 0..1 surface coordinates. */
  x: number;
  y: number;
  pressureOrDistance: number;
  /** Degrees 0..359, or ROTATION_UNKNOWN. */
  rotation: number;
  contactAreaMajor: number;
  contactAreaMinor: number;
}

export interface PenEvent {
  kind: "pen";
  eventType: TouchEventType;
  toolType: PenToolType;
  /** Pen button bits: 1 primary, 2 secondary, 4 tertiary. */
  penButtons: number;
  x: number;
  y: number;
  pressureOrDistance: number;
  rotation: number;
  /** Degrees 0..90, or TILT_UNKNOWN. */
  tilt: number;
  contactAreaMajor: number;
  contactAreaMinor: number;
}

export interface ControllerArrivalEvent {
  kind: "controllerArrival";
  controllerNumber: number;
  type: ControllerType;
  /** Capability bits (analog triggers, rumble, touchpad, motion sensors, battery, LED...). */
  capabilities: number;
  supportedButtonFlags: number;
}

export interface ControllerTouchEvent {
  kind: "controllerTouch";
  controllerNumber: number;
  eventType: TouchEventType;
  touchpadIndex: number;
  pointerId: number;
  x: number;
  y: number;
  pressure: number;
}

export interface ControllerMotionEvent {
  kind: "controllerMotion";
  controllerNumber: number;
  motionType: "accel" | "gyro";
  x: number;
  y: number;
  z: number;
}

export interface ControllerBatteryEvent {
  kind: "controllerBattery";
  controllerNumber: number;
  state: BatteryState;
  /** 0..100, or 0xff when unknown. */
  percentage: number;
}

export type InputEvent =
  | KeyEvent
  | MouseMoveRelEvent
  | MouseMoveAbsEvent
  | MouseButtonEvent
  | ScrollEvent
  | HScrollEvent
  | ControllerStateEvent
  | TextEvent
  | EnableHapticsEvent
  | TouchEvent
  | PenEvent
  | ControllerArrivalEvent
  | ControllerTouchEvent
  | ControllerMotionEvent
  | ControllerBatteryEvent
  | UsageKeyEvent;

export type InputEventKind = InputEvent["kind"];

/** Why a packet was refused. Stable codes for logs and counters. */
export type InputRejectionReason =
  | "TRUNCATED" // fewer bytes than the header or than the size field announces
  | "TRAILING_BYTES" // more bytes than the size field announces
  | "TOO_LARGE" // the size field exceeds any known packet
  | "UNKNOWN_MAGIC" // not a packet type of the protocol
  | "BAD_SIZE" // the size does not match the packet type's layout
  | "BAD_VALUE"; // a field holds a value outside its domain

export interface InputRejection {
  kind: "rejected";
  reason: InputRejectionReason;
  message: string;
  /** The packet type when the header could be read. */
  magic?: number;
}

export const isRejection = (r: InputEvent | InputRejection): r is InputRejection =>
  r.kind === "rejected";

// ---------------------------------------------------------------------------------------------
// The VM input API's events (POST /vms/{name}/inject-input, the input WebSocket): keys by USB
// HID usage, pointer in QEMU's absolute range, wheel in hi-res units, gamepads, touch and pen.
// The layout is documented for clients in docs of the API (OpenAPI) and in ws-codec.ts.
// ---------------------------------------------------------------------------------------------

/** QEMU's absolute axis maximum: absolute positions are 0..ABS_MAX. */
export const ABS_MAX = 0x7fff;
/** Most events one batch (request body or WebSocket message) may hold. */
export const MAX_BATCH_EVENTS = 1024;
/** Most characters of text one batch may type. */
export const MAX_BATCH_TEXT = 1024;

const int = (min: number, max: number) => z.number().int().min(min).max(max);
const i16 = int(-32768, 32767);
const abs = int(0, ABS_MAX);
const unit = z.number().min(0).max(1);
const pad = int(0, MAX_CONTROLLERS - 1);

export const InjectEvent = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("key"), usage: int(0, 0xffff), page: z.union([z.literal(1), z.literal(7), z.literal(12)]).optional(), down: z.boolean() }),
  z.strictObject({ type: z.literal("move"), dx: i16, dy: i16 }),
  z.strictObject({ type: z.literal("abs"), x: abs, y: abs }),
  z.strictObject({ type: z.literal("button"), button: int(1, 5), down: z.boolean() }),
  z.strictObject({ type: z.literal("wheel"), dy: i16.optional(), dx: i16.optional() }),
  z.strictObject({ type: z.literal("text"), text: z.string().min(1).max(MAX_BATCH_TEXT), layout: z.string().regex(/^[a-z]{2}(-[a-z]{2})?$/).optional() }),
  z.strictObject({ type: z.literal("releaseAll") }),
  z.strictObject({
    type: z.literal("gamepad"),
    pad,
    buttons: int(0, 0x3fffff),
    lx: i16.optional(),
    ly: i16.optional(),
    rx: i16.optional(),
    ry: i16.optional(),
    lt: int(0, 255).optional(),
    rt: int(0, 255).optional(),
  }),
  z.strictObject({ type: z.literal("gamepadAttach"), pad, kind: z.enum(["xbox", "dualsense"]) }),
  z.strictObject({ type: z.literal("gamepadDetach"), pad }),
  z.strictObject({ type: z.literal("gamepadMotion"), pad, sensor: z.enum(["accel", "gyro"]), x: z.number().min(-1000).max(1000), y: z.number().min(-1000).max(1000), z: z.number().min(-1000).max(1000) }),
  z.strictObject({ type: z.literal("touch"), id: int(0, 9), phase: z.enum(["down", "move", "up", "cancel"]), x: abs, y: abs, pressure: unit.optional() }),
  z.strictObject({ type: z.literal("pen"), phase: z.enum(["hover", "down", "move", "up"]), x: abs, y: abs, pressure: unit.optional(), buttons: int(0, 7).optional(), eraser: z.boolean().optional() }),
]);
export type InjectEvent = z.infer<typeof InjectEvent>;
export type InjectEventType = InjectEvent["type"];

export const InjectBatch = z.strictObject({ events: z.array(InjectEvent).min(1).max(MAX_BATCH_EVENTS) });
export type InjectBatch = z.infer<typeof InjectBatch>;

export const SinkReportSchema = z.object({
  eventClass: z.enum(["keyboard", "pointer", "absolute", "gamepad"]),
  sink: z.enum(["ps2", "usb", "virtio", "agent", "host-uinput"]).nullable(),
  device: z.string().nullable(),
  stealth: z.number().int(),
  why: z.string(),
  available: z.array(z.string()),
  pinned: z.object({ sink: z.string(), honoured: z.boolean() }).optional(),
});

export const InjectResult = z.object({
  accepted: z.number().int(),
  /** Which sink served each event class. */
  sinks: z.record(z.string(), z.string().nullable()),
});
export type InjectResult = z.infer<typeof InjectResult>;

export const InputProbeResult = z.object({
  vm: z.string(),
  qemu: z.string().nullable(),
  sinks: z.array(SinkReportSchema),
});

/**
 * A key by USB HID usage, resolved against the key table at the API edge: the backend
 * that serves it picks the code it needs (QEMU QKeyCode, evdev code).
 */
export interface UsageKeyEvent {
  kind: "usageKey";
  down: boolean;
  page: number;
  usage: number;
  evdev: number;
  /** QEMU QKeyCode; null where QEMU has none (the QMP backend counts it unmapped). */
  qcode: string | null;
}
