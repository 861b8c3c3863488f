import { describe, expect, test } from "bun:test";
import { decodeInputPacket } from "../../src/input/decode.ts";
import { encodeInputEvent } from "../../src/input/encode.ts";
import {
  BATTERY_STATES,
  CONTROLLER_TYPES,
  MOUSE_BUTTONS,
  PEN_TOOL_TYPES,
  TOUCH_EVENT_TYPES,
  type InputEvent,
} from "../../src/input/model.ts";
import { prng } from "./packets.ts";

describe("encodeInputEvent", () => {
  test("matches the hand-built bytes of the spec layouts", () => {
    const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
    expect(hex(encodeInputEvent({ kind: "key", down: true, vk: 0x41, keyCode: 0x8041, modifiers: 3, flags: 1 }))).toBe(
      "0000000a03000000014180030000",
    );
    expect(hex(encodeInputEvent({ kind: "mouseMoveRel", dx: -5, dy: 300 }))).toBe("0000000807000000fffb012c");
    expect(hex(encodeInputEvent({ kind: "hscroll", amount: 120 }))).toBe("00000006010000550078");
    expect(hex(encodeInputEvent({ kind: "mouseButton", down: false, button: "x2" }))).toBe("000000050900000005");
  });

  test("refuses what the wire cannot carry", () => {
    expect(() => encodeInputEvent({ kind: "text", text: "" })).toThrow(RangeError);
    expect(() => encodeInputEvent({ kind: "text", text: "x".repeat(33) })).toThrow(RangeError);
  });

  test("decode(encode(e)) == e for 5,000 random events of every kind", () => {
    const rnd = prng(99);
    const int = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
    const f = () => Math.fround((rnd() - 0.5) * 100);
    const of = <T>(t: readonly T[]) => t[int(0, t.length - 1)] as T;
    const gens: (() => InputEvent)[] = [
      () => ({ kind: "key", down: rnd() < 0.5, vk: 0, keyCode: int(0, 0xffff), modifiers: int(0, 15), flags: int(0, 1) }),
      () => ({ kind: "mouseMoveRel", dx: int(-32768, 32767), dy: int(-32768, 32767) }),
      () => ({ kind: "mouseMoveAbs", x: int(-32768, 32767), y: int(-32768, 32767), width: int(2, 32767), height: int(2, 32767) }),
      () => ({ kind: "mouseButton", down: rnd() < 0.5, button: of(MOUSE_BUTTONS) }),
      () => ({ kind: "scroll", amount: int(-32768, 32767) }),
      () => ({ kind: "hscroll", amount: int(-32768, 32767) }),
      () => ({
        kind: "controller", controllerNumber: int(0, 15), activeGamepadMask: int(0, 0xffff), buttonFlags: int(0, 0xffffffff) >>> 0,
        leftTrigger: int(0, 255), rightTrigger: int(0, 255), leftStickX: int(-32768, 32767), leftStickY: int(-32768, 32767),
        rightStickX: int(-32768, 32767), rightStickY: int(-32768, 32767),
      }),
      () => ({ kind: "text", text: "aé✓😀".slice(0, int(1, 3)) }),
      () => ({ kind: "enableHaptics", enable: rnd() < 0.5 }),
      () => ({
        kind: "touch", eventType: of(TOUCH_EVENT_TYPES), pointerId: int(0, 0xffffffff) >>> 0, x: f(), y: f(),
        pressureOrDistance: f(), rotation: int(0, 0xffff), contactAreaMajor: f(), contactAreaMinor: f(),
      }),
      () => ({
        kind: "pen", eventType: of(TOUCH_EVENT_TYPES), toolType: of(PEN_TOOL_TYPES), penButtons: int(0, 7), x: f(), y: f(),
        pressureOrDistance: f(), rotation: int(0, 0xffff), tilt: int(0, 255), contactAreaMajor: f(), contactAreaMinor: f(),
      }),
      () => ({ kind: "controllerArrival", controllerNumber: int(0, 15), type: of(CONTROLLER_TYPES), capabilities: int(0, 0xffff), supportedButtonFlags: int(0, 0xffffffff) >>> 0 }),
      () => ({ kind: "controllerTouch", controllerNumber: int(0, 15), eventType: of(TOUCH_EVENT_TYPES), touchpadIndex: int(0, 255), pointerId: int(0, 0xffffffff) >>> 0, x: f(), y: f(), pressure: f() }),
      () => ({ kind: "controllerMotion", controllerNumber: int(0, 15), motionType: rnd() < 0.5 ? "accel" : "gyro", x: f(), y: f(), z: f() }),
      () => ({ kind: "controllerBattery", controllerNumber: int(0, 15), state: of(BATTERY_STATES), percentage: rnd() < 0.9 ? int(0, 100) : 0xff }),
    ];
    for (let i = 0; i < 5000; i++) {
      const ev = (gens[i % gens.length] as () => InputEvent)();
      if (ev.kind === "key") ev.vk = ev.keyCode & 0xff;
      expect(decodeInputPacket(encodeInputEvent(ev))).toEqual(ev);
    }
  });
});
