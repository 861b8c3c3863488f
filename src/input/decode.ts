/**
 * Bounded, validated decoder of GameStream input packets (the payload of a
 * control-stream message of type 0x0206).
 *
 * Packet = `BE32 size` ‖ `LE32 magic` ‖ body, where `size` counts the magic and
 * the body (every byte after the size field). A packet must be exactly
 * `4 + size` bytes. Any deviation gives an InputRejection, never a throw.
 *
 * Body layouts (offsets from the start of the body, i.e. after the magic):
 *
 * | packet | body bytes | layout |
 * | --- | --- | --- |
 * | KEY_DOWN/UP (3/4) | 6 | u8 flags, LE16 keyCode, u8 modifiers, LE16 zero |
 * | MOUSE_MOVE_REL (7) | 4 | BE16 dx, BE16 dy (signed) |
 * | MOUSE_MOVE_ABS (5) | 10 | BE16 x, BE16 y, BE16 unused, BE16 width−1, BE16 height−1 (signed) |
 * | MOUSE_BUTTON (8/9) | 1 | u8 button 1..5 |
 * | SCROLL (0xA) | 6 | BE16 amount, BE16 amount (repeat), BE16 zero |
 * | SS_HSCROLL (0x55000001) | 2 | BE16 amount |
 * | MULTI_CONTROLLER (0xC) | 26 | LE16 headerB, LE16 number, LE16 activeMask, LE16 midB, LE16 buttons, u8 LT, u8 RT, LE16 LX, LY, RX, RY, LE16 tailA, LE16 buttons2, LE16 tailB |
 * | UTF8_TEXT (0x17) | 1..32 | UTF-8 bytes |
 * | ENABLE_HAPTICS (0xD) | 2 | LE16 enable |
 * | SS_TOUCH (0x55000002) | 28 | u8 type, u8 0, LE16 rotation, LE32 pointerId, LEf32 x, y, pressure, areaMajor, areaMinor |
 * | SS_PEN (0x55000003) | 28 | u8 type, u8 tool, u8 buttons, u8 0, LEf32 x, y, pressure, LE16 rotation, u8 tilt, u8 0, LEf32 areaMajor, areaMinor |
 * | SS_CONTROLLER_ARRIVAL (0x55000004) | 8 | u8 number, u8 type, LE16 capabilities, LE32 supportedButtons |
 * | SS_CONTROLLER_TOUCH (0x55000005) | 20 | u8 number, u8 type, u8 0, u8 touchpad, LE32 pointerId, LEf32 x, y, pressure |
 * | SS_CONTROLLER_MOTION (0x55000006) | 16 | u8 number, u8 motionType 1 accel/2 gyro, u8[2] 0, LEf32 x, y, z |
 * | SS_CONTROLLER_BATTERY (0x55000007) | 4 | u8 number, u8 state, u8 percentage, u8 0 |
 */
import {
  BATTERY_STATES,
  CONTROLLER_TYPES,
  InputMagic,
  MAX_CONTROLLERS,
  MAX_TEXT_BYTES,
  MOUSE_BUTTONS,
  PEN_TOOL_TYPES,
  TOUCH_EVENT_TYPES,
  type InputEvent,
  type InputRejection,
  type InputRejectionReason,
  type TouchEventType,
} from "./model.ts";

/** Header bytes: BE32 size + LE32 magic. */
export const INPUT_HEADER_BYTES = 8;
/** Largest packet of the protocol (UTF-8 text with 32 bytes): 8 + 32. */
export const MAX_INPUT_PACKET_BYTES = INPUT_HEADER_BYTES + MAX_TEXT_BYTES;

/** Fixed body length per magic (text is variable and handled apart). */
const BODY_BYTES: ReadonlyMap<number, number> = new Map([
  [InputMagic.keyDown, 6],
  [InputMagic.keyUp, 6],
  [InputMagic.mouseMoveRel, 4],
  [InputMagic.mouseMoveAbs, 10],
  [InputMagic.mouseButtonDown, 1],
  [InputMagic.mouseButtonUp, 1],
  [InputMagic.scroll, 6],
  [InputMagic.hscroll, 2],
  [InputMagic.multiController, 26],
  [InputMagic.enableHaptics, 2],
  [InputMagic.touch, 28],
  [InputMagic.pen, 28],
  [InputMagic.controllerArrival, 8],
  [InputMagic.controllerTouch, 20],
  [InputMagic.controllerMotion, 16],
  [InputMagic.controllerBattery, 4],
]);

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

const reject = (reason: InputRejectionReason, message: string, magic?: number): InputRejection =>
  magic === undefined ? { kind: "rejected", reason, message } : { kind: "rejected", reason, message, magic };

const hex = (n: number) => "0x" + n.toString(16).padStart(2, "0");

class BadValue {
  constructor(readonly message: string) {}
}

/** Decode one input packet. Never throws. */
export function decodeInputPacket(bytes: Uint8Array): InputEvent | InputRejection {
  if (bytes.length < INPUT_HEADER_BYTES) {
    return reject("TRUNCATED", `input packet of ${bytes.length} bytes is shorter than its 8-byte header`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const size = view.getUint32(0, false);
  const magic = view.getUint32(4, true);
  if (size > MAX_INPUT_PACKET_BYTES - 4) {
    return reject("TOO_LARGE", `input packet size ${size} exceeds ${MAX_INPUT_PACKET_BYTES - 4}`, magic);
  }
  if (size < 4) return reject("BAD_SIZE", `input packet size ${size} cannot hold its magic`, magic);
  if (bytes.length < 4 + size) {
    return reject("TRUNCATED", `input packet announces ${4 + size} bytes, got ${bytes.length}`, magic);
  }
  if (bytes.length > 4 + size) {
    return reject("TRAILING_BYTES", `input packet announces ${4 + size} bytes, got ${bytes.length}`, magic);
  }
  const bodyLen = size - 4;
  if (magic === InputMagic.utf8Text) {
    if (bodyLen < 1 || bodyLen > MAX_TEXT_BYTES) {
      return reject("BAD_SIZE", `text packet carries ${bodyLen} bytes (1..${MAX_TEXT_BYTES} allowed)`, magic);
    }
    let text: string;
    try {
      text = utf8.decode(bytes.subarray(INPUT_HEADER_BYTES));
    } catch {
      return reject("BAD_VALUE", "text packet is not valid UTF-8", magic);
    }
    if (text.includes("\0")) return reject("BAD_VALUE", "text packet contains a NUL character", magic);
    return { kind: "text", text };
  }
  const expected = BODY_BYTES.get(magic);
  if (expected === undefined) return reject("UNKNOWN_MAGIC", `unknown input packet type ${hex(magic)}`, magic);
  if (bodyLen !== expected) {
    return reject("BAD_SIZE", `input packet type ${hex(magic)} needs a ${expected}-byte body, got ${bodyLen}`, magic);
  }
  try {
    return decodeBody(magic, new Body(view, INPUT_HEADER_BYTES));
  } catch (err) {
    if (err instanceof BadValue) return reject("BAD_VALUE", err.message, magic);
    throw err;
  }
}

/** Cursor over a packet body; every read is within the checked body length. */
class Body {
  constructor(
    private readonly v: DataView,
    private readonly base: number,
  ) {}
  u8(off: number) {
    return this.v.getUint8(this.base + off);
  }
  le16(off: number) {
    return this.v.getUint16(this.base + off, true);
  }
  le16s(off: number) {
    return this.v.getInt16(this.base + off, true);
  }
  be16s(off: number) {
    return this.v.getInt16(this.base + off, false);
  }
  le32(off: number) {
    return this.v.getUint32(this.base + off, true);
  }
  f32(off: number, name: string) {
    const f = this.v.getFloat32(this.base + off, true);
    if (!Number.isFinite(f)) throw new BadValue(`${name} is not a finite number`);
    return f;
  }
}

function pick<T>(table: readonly T[], value: number, name: string): T {
  const v = table[value];
  if (v === undefined) throw new BadValue(`${name} ${value} is out of range 0..${table.length - 1}`);
  return v;
}

function controllerNumber(value: number): number {
  if (value >= MAX_CONTROLLERS) throw new BadValue(`controller number ${value} exceeds ${MAX_CONTROLLERS - 1}`);
  return value;
}

const touchType = (value: number): TouchEventType => pick(TOUCH_EVENT_TYPES, value, "touch event type");

function decodeBody(magic: number, b: Body): InputEvent {
  switch (magic) {
    case InputMagic.keyDown:
    case InputMagic.keyUp: {
      const keyCode = b.le16(1);
      return {
        kind: "key",
        down: magic === InputMagic.keyDown,
        vk: keyCode & 0xff,
        keyCode,
        modifiers: b.u8(3),
        flags: b.u8(0),
      };
    }
    case InputMagic.mouseMoveRel:
      return { kind: "mouseMoveRel", dx: b.be16s(0), dy: b.be16s(2) };
    case InputMagic.mouseMoveAbs: {
      const wm1 = b.be16s(6);
      const hm1 = b.be16s(8);
      if (wm1 < 1 || hm1 < 1) throw new BadValue(`absolute reference size ${wm1 + 1}x${hm1 + 1} is too small`);
      return { kind: "mouseMoveAbs", x: b.be16s(0), y: b.be16s(2), width: wm1 + 1, height: hm1 + 1 };
    }
    case InputMagic.mouseButtonDown:
    case InputMagic.mouseButtonUp: {
      const wire = b.u8(0);
      if (wire < 1) throw new BadValue("mouse button 0 is not a button");
      return {
        kind: "mouseButton",
        down: magic === InputMagic.mouseButtonDown,
        button: pick(MOUSE_BUTTONS, wire - 1, "mouse button index"),
      };
    }
    case InputMagic.scroll:
      return { kind: "scroll", amount: b.be16s(0) };
    case InputMagic.hscroll:
      return { kind: "hscroll", amount: b.be16s(0) };
    case InputMagic.multiController: {
      const number = b.le16(2);
      return {
        kind: "controller",
        controllerNumber: controllerNumber(number),
        activeGamepadMask: b.le16(4),
        buttonFlags: (b.le16(8) | (b.le16(22) << 16)) >>> 0,
        leftTrigger: b.u8(10),
        rightTrigger: b.u8(11),
        leftStickX: b.le16s(12),
        leftStickY: b.le16s(14),
        rightStickX: b.le16s(16),
        rightStickY: b.le16s(18),
      };
    }
    case InputMagic.enableHaptics:
      return { kind: "enableHaptics", enable: b.le16(0) !== 0 };
    case InputMagic.touch:
      return {
        kind: "touch",
        eventType: touchType(b.u8(0)),
        rotation: b.le16(2),
        pointerId: b.le32(4),
        x: b.f32(8, "touch x"),
        y: b.f32(12, "touch y"),
        pressureOrDistance: b.f32(16, "touch pressure"),
        contactAreaMajor: b.f32(20, "touch contact area"),
        contactAreaMinor: b.f32(24, "touch contact area"),
      };
    case InputMagic.pen:
      return {
        kind: "pen",
        eventType: touchType(b.u8(0)),
        toolType: pick(PEN_TOOL_TYPES, b.u8(1), "pen tool type"),
        penButtons: b.u8(2),
        x: b.f32(4, "pen x"),
        y: b.f32(8, "pen y"),
        pressureOrDistance: b.f32(12, "pen pressure"),
        rotation: b.le16(16),
        tilt: b.u8(18),
        contactAreaMajor: b.f32(20, "pen contact area"),
        contactAreaMinor: b.f32(24, "pen contact area"),
      };
    case InputMagic.controllerArrival:
      return {
        kind: "controllerArrival",
        controllerNumber: controllerNumber(b.u8(0)),
        type: pick(CONTROLLER_TYPES, b.u8(1), "controller type"),
        capabilities: b.le16(2),
        supportedButtonFlags: b.le32(4),
      };
    case InputMagic.controllerTouch:
      return {
        kind: "controllerTouch",
        controllerNumber: controllerNumber(b.u8(0)),
        eventType: touchType(b.u8(1)),
        touchpadIndex: b.u8(3),
        pointerId: b.le32(4),
        x: b.f32(8, "controller touch x"),
        y: b.f32(12, "controller touch y"),
        pressure: b.f32(16, "controller touch pressure"),
      };
    case InputMagic.controllerMotion: {
      const t = b.u8(1);
      if (t !== 1 && t !== 2) throw new BadValue(`motion type ${t} is neither 1 (accel) nor 2 (gyro)`);
      return {
        kind: "controllerMotion",
        controllerNumber: controllerNumber(b.u8(0)),
        motionType: t === 1 ? "accel" : "gyro",
        x: b.f32(4, "motion x"),
        y: b.f32(8, "motion y"),
        z: b.f32(12, "motion z"),
      };
    }
    case InputMagic.controllerBattery: {
      const pct = b.u8(2);
      if (pct > 100 && pct !== 0xff) throw new BadValue(`battery percentage ${pct} is above 100`);
      return {
        kind: "controllerBattery",
        controllerNumber: controllerNumber(b.u8(0)),
        state: pick(BATTERY_STATES, b.u8(1), "battery state"),
        percentage: pct,
      };
    }
    default:
      throw new BadValue(`unknown input packet type ${hex(magic)}`);
  }
}
