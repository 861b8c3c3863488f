/**
 * GameStream controller state → agent gamepad state → evdev events, the
 * protocol's validation of hostile values, and the input_event encoding.
 */
import { describe, expect, test } from "bun:test";
import { GAMEPAD_BUTTON_MASK, GamepadAttach, GamepadBit, GamepadDetach, GamepadState, neutralState } from "../../src/guest/gamepad-model.ts";
import { REQUEST_SCHEMAS } from "../../src/guest/model.ts";
import { ABS, BTN, EV, evdevAxes, GamepadHub, stateEvents, VigemUnavailableDriver, type GamepadDriver, type InputEventTriple } from "../../src/guest-agent/gamepad.ts";
import { decodeEvents, encodeEvent, INPUT_EVENT_SIZE, UinputDriver } from "../../src/guest-agent/gamepad-uinput.ts";
import { MoonlightButton, moonlightButtons, moonlightToGamepad } from "../../src/input/gamepad-map.ts";
import { pad } from "./pad.ts";

const ev = pad;

describe("Moonlight → agent gamepad state", () => {
  test("every Xbox button maps to its own bit; paddles, touchpad and misc are left out", () => {
    const pairs: [number, keyof typeof GamepadBit][] = [
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
    for (const [ml, b] of pairs) expect(moonlightButtons(ml)).toBe(GamepadBit[b]);
    expect(moonlightButtons(pairs.reduce((m, [ml]) => m | ml, 0))).toBe(GAMEPAD_BUTTON_MASK);
    expect(moonlightButtons(MoonlightButton.paddle1 | MoonlightButton.touchpad | MoonlightButton.misc | 0x0800)).toBe(0);
  });

  test("sticks and triggers pass through (XInput convention on both sides), the result validates", () => {
    const s = moonlightToGamepad(ev({ controllerNumber: 3, buttonFlags: MoonlightButton.a, leftTrigger: 255, rightTrigger: 7, leftStickX: -32768, leftStickY: 32767, rightStickX: 5, rightStickY: -5 }));
    expect(s).toEqual({ index: 3, buttons: GamepadBit.a, lt: 255, rt: 7, lx: -32768, ly: 32767, rx: 5, ry: -5 });
    expect(GamepadState.parse(s)).toEqual(s);
  });
});

describe("agent gamepad state → evdev", () => {
  test("y axes flip (+y up becomes +y down) without overflowing, the d-pad becomes the hat", () => {
    const s = { ...neutralState(0), ly: -32768, ry: 32767, buttons: GamepadBit.dpad_up | GamepadBit.dpad_right };
    const a = evdevAxes(s);
    expect(a[ABS.Y]).toBe(32767);
    expect(a[ABS.RY]).toBe(-32767);
    expect(a[ABS.HAT0X]).toBe(1);
    expect(a[ABS.HAT0Y]).toBe(-1);
    // Opposite directions held together cancel out.
    expect(evdevAxes({ ...neutralState(0), buttons: GamepadBit.dpad_left | GamepadBit.dpad_right })[ABS.HAT0X]).toBe(0);
  });

  test("only what changed is emitted, closed by SYN_REPORT; nothing at all when nothing changed", () => {
    const n = neutralState(0);
    expect(stateEvents(n, n)).toEqual([]);
    const s = { ...n, buttons: GamepadBit.a | GamepadBit.y | GamepadBit.guide, rt: 9 };
    expect(stateEvents(n, s)).toEqual([
      { type: EV.KEY, code: BTN.SOUTH, value: 1 },
      { type: EV.KEY, code: BTN.NORTH, value: 1 },
      { type: EV.KEY, code: BTN.MODE, value: 1 },
      { type: EV.ABS, code: ABS.RZ, value: 9 },
      { type: EV.SYN, code: 0, value: 0 },
    ]);
    expect(stateEvents(s, { ...s, buttons: GamepadBit.y | GamepadBit.guide })).toEqual([
      { type: EV.KEY, code: BTN.SOUTH, value: 0 },
      { type: EV.SYN, code: 0, value: 0 },
    ]);
  });

  test("input_event records round-trip (24 bytes, time left to the kernel)", () => {
    const events: InputEventTriple[] = [
      { type: EV.ABS, code: ABS.X, value: -32768 },
      { type: EV.KEY, code: BTN.THUMBR, value: 1 },
      { type: EV.SYN, code: 0, value: 0 },
    ];
    const buf = Buffer.alloc(events.length * INPUT_EVENT_SIZE, 0xff);
    events.forEach((e, i) => encodeEvent(e, buf, i * INPUT_EVENT_SIZE));
    expect(buf.subarray(0, 16).every((b) => b === 0)).toBe(true);
    expect(decodeEvents(buf)).toEqual(events);
    expect(decodeEvents(buf.subarray(0, 30))).toHaveLength(1); // a partial record is not read
  });
});

describe("protocol validation", () => {
  const good = { index: 0, buttons: 0, lt: 0, rt: 0, lx: 0, ly: 0, rx: 0, ry: 0 };
  test.each([
    ["index 16", { ...good, index: 16 }],
    ["index -1", { ...good, index: -1 }],
    ["fractional index", { ...good, index: 0.5 }],
    ["unknown button bits", { ...good, buttons: GAMEPAD_BUTTON_MASK + 1 }],
    ["negative buttons", { ...good, buttons: -1 }],
    ["trigger 256", { ...good, lt: 256 }],
    ["negative trigger", { ...good, rt: -1 }],
    ["axis 32768", { ...good, lx: 32768 }],
    ["axis -32769", { ...good, ry: -32769 }],
    ["NaN axis", { ...good, rx: Number.NaN }],
    ["string axis", { ...good, ly: "1" }],
    ["missing field", { index: 0, buttons: 0 }],
    ["extra field", { ...good, rumble: 1 }],
    ["array", [good]],
  ])("gamepad_state refuses %s", (_name, value) => {
    expect(REQUEST_SCHEMAS.gamepad_state.safeParse(value).success).toBe(false);
  });

  test("attach and detach are bounded too; attach defaults to an Xbox pad", () => {
    expect(GamepadAttach.parse({ index: 15 })).toEqual({ index: 15, kind: "xbox" });
    expect(GamepadAttach.safeParse({ index: 0, kind: "dualsense" }).success).toBe(false);
    expect(GamepadAttach.safeParse({ index: 99 }).success).toBe(false);
    expect(GamepadDetach.safeParse({ index: 0, extra: true }).success).toBe(false);
    expect(REQUEST_SCHEMAS.gamepad_state.parse(good)).toEqual(good);
  });
});

describe("guest gamepad hub", () => {
  class RecordingDriver implements GamepadDriver {
    readonly name = "recording";
    readonly log: string[] = [];
    unavailable(): string | null {
      return null;
    }
    create(index: number) {
      this.log.push(`create ${index}`);
      return {
        device: `pad${index}`,
        emit: (events: readonly InputEventTriple[]) => this.log.push(`emit ${index} ${events.map((e) => `${e.type}:${e.code}=${e.value}`).join(",")}`),
        destroy: () => this.log.push(`destroy ${index}`),
      };
    }
  }

  test("state on an absent pad is refused; detach releases what is held, then destroys", () => {
    const d = new RecordingDriver();
    const hub = new GamepadHub(d);
    expect(() => hub.state({ ...neutralState(2), buttons: 1 })).toThrow(/not attached/);
    expect(hub.attach(2, "xbox")).toEqual({ index: 2, device: "pad2" });
    expect(hub.attach(2, "xbox")).toEqual({ index: 2, device: "pad2" }); // idempotent: one device
    hub.state({ ...neutralState(2), buttons: GamepadBit.b });
    hub.detachAll();
    hub.detach(2); // absent: no error
    expect(d.log).toEqual(["create 2", `emit 2 ${EV.KEY}:${BTN.EAST}=1,0:0=0`, `emit 2 ${EV.KEY}:${BTN.EAST}=0,0:0=0`, "destroy 2"]);
    expect(hub.count).toBe(0);
  });

  test("no driver: a clear GAMEPAD_UNAVAILABLE error (Windows without ViGEmBus; a Linux guest without /dev/uinput)", () => {
    expect(() => new GamepadHub(new VigemUnavailableDriver()).attach(0, "xbox")).toThrow(/ViGEmBus/);
    const missing = new UinputDriver("/nonexistent/uinput");
    expect(missing.unavailable()).toMatch(/missing|Linux only/);
    try {
      new GamepadHub(missing).attach(0, "xbox");
      throw new Error("attached");
    } catch (err) {
      expect((err as { errorCode?: string }).errorCode).toBe("GAMEPAD_UNAVAILABLE");
    }
  });
});
