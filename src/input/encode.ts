/**
 * Encoder of input packets, the inverse of decode.ts (layouts documented
 * there). The host never sends input packets; this serves test clients and
 * tools that speak to the host as a client would.
 */
import {
  BATTERY_STATES,
  CONTROLLER_TYPES,
  InputMagic,
  MAX_TEXT_BYTES,
  MOUSE_BUTTONS,
  PEN_TOOL_TYPES,
  TOUCH_EVENT_TYPES,
  type InputEvent,
} from "./model.ts";

const utf8 = new TextEncoder();

class Writer {
  readonly bytes: Uint8Array;
  readonly v: DataView;
  constructor(magic: number, bodyLen: number) {
    this.bytes = new Uint8Array(8 + bodyLen);
    this.v = new DataView(this.bytes.buffer);
    this.v.setUint32(0, 4 + bodyLen, false);
    this.v.setUint32(4, magic >>> 0, true);
  }
  u8(off: number, x: number) {
    this.v.setUint8(8 + off, x);
    return this;
  }
  le16(off: number, x: number) {
    this.v.setUint16(8 + off, x & 0xffff, true);
    return this;
  }
  be16(off: number, x: number) {
    this.v.setUint16(8 + off, x & 0xffff, false);
    return this;
  }
  le32(off: number, x: number) {
    this.v.setUint32(8 + off, x >>> 0, true);
    return this;
  }
  f32(off: number, x: number) {
    this.v.setFloat32(8 + off, x, true);
    return this;
  }
}

const idx = (table: readonly string[], value: string) => {
  const i = table.indexOf(value);
  if (i < 0) throw new RangeError(`unknown value ${value}`);
  return i;
};

/** Encode one event as the packet a client would send. Throws RangeError on values the wire cannot carry. */
export function encodeInputEvent(ev: InputEvent): Uint8Array {
  switch (ev.kind) {
    case "key":
      return new Writer(ev.down ? InputMagic.keyDown : InputMagic.keyUp, 6)
        .u8(0, ev.flags)
        .le16(1, ev.keyCode)
        .u8(3, ev.modifiers).bytes;
    case "mouseMoveRel":
      return new Writer(InputMagic.mouseMoveRel, 4).be16(0, ev.dx).be16(2, ev.dy).bytes;
    case "mouseMoveAbs":
      return new Writer(InputMagic.mouseMoveAbs, 10)
        .be16(0, ev.x)
        .be16(2, ev.y)
        .be16(6, ev.width - 1)
        .be16(8, ev.height - 1).bytes;
    case "mouseButton":
      return new Writer(ev.down ? InputMagic.mouseButtonDown : InputMagic.mouseButtonUp, 1).u8(
        0,
        idx(MOUSE_BUTTONS, ev.button) + 1,
      ).bytes;
    case "scroll":
      return new Writer(InputMagic.scroll, 6).be16(0, ev.amount).be16(2, ev.amount).bytes;
    case "hscroll":
      return new Writer(InputMagic.hscroll, 2).be16(0, ev.amount).bytes;
    case "controller":
      return new Writer(InputMagic.multiController, 26)
        .le16(0, 0x1a)
        .le16(2, ev.controllerNumber)
        .le16(4, ev.activeGamepadMask)
        .le16(6, 0x14)
        .le16(8, ev.buttonFlags & 0xffff)
        .u8(10, ev.leftTrigger)
        .u8(11, ev.rightTrigger)
        .le16(12, ev.leftStickX)
        .le16(14, ev.leftStickY)
        .le16(16, ev.rightStickX)
        .le16(18, ev.rightStickY)
        .le16(20, 0x9c)
        .le16(22, ev.buttonFlags >>> 16)
        .le16(24, 0x55).bytes;
    case "text": {
      const b = utf8.encode(ev.text);
      if (b.length < 1 || b.length > MAX_TEXT_BYTES) throw new RangeError(`text of ${b.length} bytes (1..${MAX_TEXT_BYTES})`);
      const w = new Writer(InputMagic.utf8Text, b.length);
      w.bytes.set(b, 8);
      return w.bytes;
    }
    case "enableHaptics":
      return new Writer(InputMagic.enableHaptics, 2).le16(0, ev.enable ? 1 : 0).bytes;
    case "touch":
      return new Writer(InputMagic.touch, 28)
        .u8(0, idx(TOUCH_EVENT_TYPES, ev.eventType))
        .le16(2, ev.rotation)
        .le32(4, ev.pointerId)
        .f32(8, ev.x)
        .f32(12, ev.y)
        .f32(16, ev.pressureOrDistance)
        .f32(20, ev.contactAreaMajor)
        .f32(24, ev.contactAreaMinor).bytes;
    case "pen":
      return new Writer(InputMagic.pen, 28)
        .u8(0, idx(TOUCH_EVENT_TYPES, ev.eventType))
        .u8(1, idx(PEN_TOOL_TYPES, ev.toolType))
        .u8(2, ev.penButtons)
        .f32(4, ev.x)
        .f32(8, ev.y)
        .f32(12, ev.pressureOrDistance)
        .le16(16, ev.rotation)
        .u8(18, ev.tilt)
        .f32(20, ev.contactAreaMajor)
        .f32(24, ev.contactAreaMinor).bytes;
    case "controllerArrival":
      return new Writer(InputMagic.controllerArrival, 8)
        .u8(0, ev.controllerNumber)
        .u8(1, idx(CONTROLLER_TYPES, ev.type))
        .le16(2, ev.capabilities)
        .le32(4, ev.supportedButtonFlags).bytes;
    case "controllerTouch":
      return new Writer(InputMagic.controllerTouch, 20)
        .u8(0, ev.controllerNumber)
        .u8(1, idx(TOUCH_EVENT_TYPES, ev.eventType))
        .u8(3, ev.touchpadIndex)
        .le32(4, ev.pointerId)
        .f32(8, ev.x)
        .f32(12, ev.y)
        .f32(16, ev.pressure).bytes;
    case "controllerMotion":
      return new Writer(InputMagic.controllerMotion, 16)
        .u8(0, ev.controllerNumber)
        .u8(1, ev.motionType === "accel" ? 1 : 2)
        .f32(4, ev.x)
        .f32(8, ev.y)
        .f32(12, ev.z).bytes;
    case "controllerBattery":
      return new Writer(InputMagic.controllerBattery, 4)
        .u8(0, ev.controllerNumber)
        .u8(1, idx(BATTERY_STATES, ev.state))
        .u8(2, ev.percentage).bytes;
    case "usageKey":
      throw new RangeError("a key by HID usage has no GameStream packet (clients send VK codes)");
  }
}
