import { describe, expect, test } from "bun:test";
import { decodeInputPacket, MAX_INPUT_PACKET_BYTES } from "../../src/input/decode.ts";
import { InputMagic, isRejection, type InputEvent, type InputRejection } from "../../src/input/model.ts";
import { packet, prng, w } from "./packets.ts";

function ok(bytes: Uint8Array): InputEvent {
  const r = decodeInputPacket(bytes);
  if (isRejection(r)) throw new Error(`unexpected rejection: ${r.reason} ${r.message}`);
  return r;
}

function rejected(bytes: Uint8Array): InputRejection {
  const r = decodeInputPacket(bytes);
  if (!isRejection(r)) throw new Error(`expected a rejection, got ${JSON.stringify(r)}`);
  expect(r.message.length).toBeGreaterThan(0);
  return r;
}

describe("decodeInputPacket: every packet type from hand-built bytes", () => {
  test("KEY_DOWN / KEY_UP: flags, LE16 key code (VK = low byte), modifiers", () => {
    // size 10, magic 3, flags 1, keyCode 0x8041 LE, modifiers shift|ctrl, zero
    const down = Uint8Array.from([0, 0, 0, 10, 3, 0, 0, 0, 1, 0x41, 0x80, 0x03, 0, 0]);
    expect(ok(down)).toEqual({ kind: "key", down: true, vk: 0x41, keyCode: 0x8041, modifiers: 3, flags: 1 });
    const up = packet(InputMagic.keyUp, w().u8(0).le16(0xa5).u8(0).le16(0).done());
    expect(ok(up)).toEqual({ kind: "key", down: false, vk: 0xa5, keyCode: 0xa5, modifiers: 0, flags: 0 });
    expect(up.length).toBe(14);
  });

  test("MOUSE_MOVE_REL: BE16 signed deltas", () => {
    const p = Uint8Array.from([0, 0, 0, 8, 7, 0, 0, 0, 0xff, 0xfb, 0x01, 0x2c]);
    expect(ok(p)).toEqual({ kind: "mouseMoveRel", dx: -5, dy: 300 });
    expect(ok(packet(7, w().be16(-32768).be16(32767).done()))).toEqual({ kind: "mouseMoveRel", dx: -32768, dy: 32767 });
  });

  test("MOUSE_MOVE_ABS: BE16 x, y, unused, width−1, height−1", () => {
    const p = packet(5, w().be16(959).be16(539).be16(0).be16(1919).be16(1079).done());
    expect(p.length).toBe(18);
    expect(ok(p)).toEqual({ kind: "mouseMoveAbs", x: 959, y: 539, width: 1920, height: 1080 });
    // a reference surface of width 1 cannot scale anything
    expect(rejected(packet(5, w().be16(0).be16(0).be16(0).be16(0).be16(10).done())).reason).toBe("BAD_VALUE");
    expect(rejected(packet(5, w().be16(0).be16(0).be16(0).be16(-5).be16(10).done())).reason).toBe("BAD_VALUE");
  });

  test("MOUSE_BUTTON down/up: buttons 1..5", () => {
    const names = ["left", "middle", "right", "x1", "x2"];
    for (let b = 1; b <= 5; b++) {
      expect(ok(packet(8, [b]))).toEqual({ kind: "mouseButton", down: true, button: names[b - 1] as never });
      expect(ok(packet(9, [b]))).toEqual({ kind: "mouseButton", down: false, button: names[b - 1] as never });
    }
    expect(packet(8, [1]).length).toBe(9);
    for (const bad of [0, 6, 0xff]) expect(rejected(packet(8, [bad])).reason).toBe("BAD_VALUE");
  });

  test("SCROLL (BE16, 120 per notch) and SS_HSCROLL", () => {
    const s = packet(0xa, w().be16(-240).be16(-240).be16(0).done());
    expect(s.length).toBe(14);
    expect(ok(s)).toEqual({ kind: "scroll", amount: -240 });
    const h = Uint8Array.from([0, 0, 0, 6, 0x01, 0, 0, 0x55, 0x00, 0x78]);
    expect(ok(h)).toEqual({ kind: "hscroll", amount: 120 });
  });

  test("MULTI_CONTROLLER: little-endian, buttonFlags2 are the upper 16 button bits", () => {
    const body = w()
      .le16(0x1a).le16(2).le16(0x5).le16(0x14).le16(0x1001).u8(200).u8(10)
      .le16(-32768).le16(32767).le16(100).le16(-100).le16(0x9c).le16(0x0001).le16(0x55)
      .done();
    const p = packet(0xc, body);
    expect(p.length).toBe(34);
    expect(ok(p)).toEqual({
      kind: "controller",
      controllerNumber: 2,
      activeGamepadMask: 5,
      buttonFlags: 0x11001,
      leftTrigger: 200,
      rightTrigger: 10,
      leftStickX: -32768,
      leftStickY: 32767,
      rightStickX: 100,
      rightStickY: -100,
    });
    const bad = body.slice();
    bad[2] = 16; // controller 16 of 0..15
    expect(rejected(packet(0xc, bad)).reason).toBe("BAD_VALUE");
  });

  test("UTF8_TEXT: 1..32 bytes of valid UTF-8", () => {
    const bytes = new TextEncoder().encode("hé✓😀");
    expect(ok(packet(0x17, bytes))).toEqual({ kind: "text", text: "hé✓😀" });
    const full = new Uint8Array(32).fill(0x41);
    expect(ok(packet(0x17, full))).toEqual({ kind: "text", text: "A".repeat(32) });
    expect(packet(0x17, full).length).toBe(MAX_INPUT_PACKET_BYTES);
    expect(rejected(packet(0x17, new Uint8Array(33).fill(0x41))).reason).toBe("TOO_LARGE");
    expect(rejected(packet(0x17, [])).reason).toBe("BAD_SIZE");
    expect(rejected(packet(0x17, [0xff, 0xfe])).reason).toBe("BAD_VALUE");
    expect(rejected(packet(0x17, [0xe2, 0x9c])).reason).toBe("BAD_VALUE"); // cut code point
    expect(rejected(packet(0x17, [0x41, 0x00])).reason).toBe("BAD_VALUE");
  });

  test("ENABLE_HAPTICS", () => {
    expect(ok(packet(0xd, w().le16(1).done()))).toEqual({ kind: "enableHaptics", enable: true });
    expect(ok(packet(0xd, w().le16(0).done()))).toEqual({ kind: "enableHaptics", enable: false });
    expect(packet(0xd, [1, 0]).length).toBe(10);
  });

  test("SS_TOUCH: LE fields and LE IEEE floats", () => {
    const body = w().u8(1).u8(0).le16(90).le32(7).f32(0.25).f32(0.75).f32(0.5).f32(0.125).f32(0).done();
    const p = packet(0x55000002, body);
    expect(p.length).toBe(36);
    expect(ok(p)).toEqual({
      kind: "touch",
      eventType: "down",
      rotation: 90,
      pointerId: 7,
      x: 0.25,
      y: 0.75,
      pressureOrDistance: 0.5,
      contactAreaMajor: 0.125,
      contactAreaMinor: 0,
    });
    const nan = w().u8(3).u8(0).le16(0xffff).le32(1).f32(NaN).f32(0).f32(0).f32(0).f32(0).done();
    expect(rejected(packet(0x55000002, nan)).reason).toBe("BAD_VALUE");
    const inf = w().u8(3).u8(0).le16(0).le32(1).f32(0).f32(Infinity).f32(0).f32(0).f32(0).done();
    expect(rejected(packet(0x55000002, inf)).reason).toBe("BAD_VALUE");
    const badType = body.slice();
    badType[0] = 8;
    expect(rejected(packet(0x55000002, badType)).reason).toBe("BAD_VALUE");
  });

  test("SS_PEN", () => {
    const body = w().u8(3).u8(2).u8(0x5).u8(0).f32(1).f32(0).f32(0.5).le16(359).u8(45).u8(0).f32(0.25).f32(0.5).done();
    const p = packet(0x55000003, body);
    expect(p.length).toBe(36);
    expect(ok(p)).toEqual({
      kind: "pen",
      eventType: "move",
      toolType: "eraser",
      penButtons: 5,
      x: 1,
      y: 0,
      pressureOrDistance: 0.5,
      rotation: 359,
      tilt: 45,
      contactAreaMajor: 0.25,
      contactAreaMinor: 0.5,
    });
    const badTool = body.slice();
    badTool[1] = 3;
    expect(rejected(packet(0x55000003, badTool)).reason).toBe("BAD_VALUE");
  });

  test("SS_CONTROLLER_ARRIVAL / TOUCH / MOTION / BATTERY", () => {
    const arrival = packet(0x55000004, w().u8(3).u8(2).le16(0x7f).le32(0x003ff7ff).done());
    expect(arrival.length).toBe(16);
    expect(ok(arrival)).toEqual({
      kind: "controllerArrival",
      controllerNumber: 3,
      type: "playstation",
      capabilities: 0x7f,
      supportedButtonFlags: 0x003ff7ff,
    });
    expect(rejected(packet(0x55000004, w().u8(0).u8(5).le16(0).le32(0).done())).reason).toBe("BAD_VALUE");
    expect(rejected(packet(0x55000004, w().u8(16).u8(1).le16(0).le32(0).done())).reason).toBe("BAD_VALUE");

    const touch = packet(0x55000005, w().u8(1).u8(2).u8(0).u8(1).le32(0xdeadbeef).f32(0.5).f32(0.25).f32(1).done());
    expect(touch.length).toBe(28);
    expect(ok(touch)).toEqual({
      kind: "controllerTouch",
      controllerNumber: 1,
      eventType: "up",
      touchpadIndex: 1,
      pointerId: 0xdeadbeef,
      x: 0.5,
      y: 0.25,
      pressure: 1,
    });

    const motion = packet(0x55000006, w().u8(0).u8(2).u8(0).u8(0).f32(-9.75).f32(0).f32(1.5).done());
    expect(motion.length).toBe(24);
    expect(ok(motion)).toEqual({ kind: "controllerMotion", controllerNumber: 0, motionType: "gyro", x: -9.75, y: 0, z: 1.5 });
    expect(rejected(packet(0x55000006, w().u8(0).u8(3).u8(0).u8(0).f32(0).f32(0).f32(0).done())).reason).toBe("BAD_VALUE");

    const battery = packet(0x55000007, [2, 3, 80, 0]);
    expect(battery.length).toBe(12);
    expect(ok(battery)).toEqual({ kind: "controllerBattery", controllerNumber: 2, state: "charging", percentage: 80 });
    expect(ok(packet(0x55000007, [2, 0, 0xff, 0]))).toMatchObject({ state: "unknown", percentage: 0xff });
    expect(rejected(packet(0x55000007, [2, 3, 101, 0])).reason).toBe("BAD_VALUE");
    expect(rejected(packet(0x55000007, [2, 6, 50, 0])).reason).toBe("BAD_VALUE");
  });

  test("a packet inside a larger buffer (non-zero byteOffset) decodes the same", () => {
    const inner = packet(7, w().be16(3).be16(-4).done());
    const big = new Uint8Array(100);
    big.set(inner, 37);
    expect(ok(big.subarray(37, 37 + inner.length))).toEqual({ kind: "mouseMoveRel", dx: 3, dy: -4 });
  });
});

describe("decodeInputPacket: framing errors", () => {
  test("shorter than the header", () => {
    for (let n = 0; n < 8; n++) expect(rejected(new Uint8Array(n)).reason).toBe("TRUNCATED");
  });
  test("size field announces more than there is / less than there is", () => {
    const p = packet(7, w().be16(1).be16(1).done());
    expect(rejected(p.subarray(0, p.length - 1))).toMatchObject({ reason: "TRUNCATED", magic: 7 });
    const longer = new Uint8Array(p.length + 1);
    longer.set(p);
    expect(rejected(longer).reason).toBe("TRAILING_BYTES");
  });
  test("size too small for the magic, or larger than any packet", () => {
    expect(rejected(Uint8Array.from([0, 0, 0, 3, 7, 0, 0, 0])).reason).toBe("BAD_SIZE");
    expect(rejected(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 7, 0, 0, 0])).reason).toBe("TOO_LARGE");
    expect(rejected(Uint8Array.from([0, 0, 0, 37, 0x17, 0, 0, 0])).reason).toBe("TOO_LARGE");
  });
  test("wrong body size for a known type", () => {
    expect(rejected(packet(3, [0, 0x41, 0, 0, 0, 0, 0]))).toMatchObject({ reason: "BAD_SIZE", magic: 3 });
    expect(rejected(packet(8, [1, 0])).reason).toBe("BAD_SIZE");
    expect(rejected(packet(0xc, new Uint8Array(24))).reason).toBe("BAD_SIZE");
  });
  test("unknown or legacy magics", () => {
    // 0x06 is the pre-GFE-5 relative mouse, 0x0b/0x0e unused, 0x55000008 unknown extension
    for (const m of [0, 1, 2, 6, 0xb, 0xe, 0x16, 0x55000000, 0x55000008, 0xffffffff]) {
      expect(rejected(packet(m, [0, 0]))).toMatchObject({ reason: "UNKNOWN_MAGIC", magic: m >>> 0 });
    }
  });
});

describe("decodeInputPacket: hostile bytes (bounded fuzz)", () => {
  const REASONS = new Set(["TRUNCATED", "TRAILING_BYTES", "TOO_LARGE", "UNKNOWN_MAGIC", "BAD_SIZE", "BAD_VALUE"]);
  const valid = [
    packet(3, w().u8(0).le16(0x41).u8(0).le16(0).done()),
    packet(5, w().be16(1).be16(1).be16(0).be16(99).be16(99).done()),
    packet(7, w().be16(1).be16(1).done()),
    packet(8, [1]),
    packet(0xa, w().be16(120).be16(120).be16(0).done()),
    packet(0x55000001, w().be16(120).done()),
    packet(0xc, w().le16(0x1a).le16(0).le16(1).le16(0x14).le16(0).u8(0).u8(0).le16(0).le16(0).le16(0).le16(0).le16(0x9c).le16(0).le16(0x55).done()),
    packet(0x17, [0x61, 0x62]),
    packet(0xd, [1, 0]),
    packet(0x55000002, w().u8(1).u8(0).le16(0).le32(1).f32(0.5).f32(0.5).f32(0).f32(0).f32(0).done()),
    packet(0x55000003, w().u8(1).u8(1).u8(0).u8(0).f32(0.5).f32(0.5).f32(0).le16(0).u8(0).u8(0).f32(0).f32(0).done()),
    packet(0x55000004, w().u8(0).u8(1).le16(0).le32(0).done()),
    packet(0x55000005, w().u8(0).u8(1).u8(0).u8(0).le32(0).f32(0).f32(0).f32(0).done()),
    packet(0x55000006, w().u8(0).u8(1).u8(0).u8(0).f32(0).f32(0).f32(0).done()),
    packet(0x55000007, [0, 2, 50, 0]),
  ];

  const check = (bytes: Uint8Array) => {
    const r = decodeInputPacket(bytes); // must not throw
    if (isRejection(r)) {
      expect(REASONS.has(r.reason)).toBe(true);
      return false;
    }
    // anything accepted was exactly framed
    expect(bytes.length).toBe(4 + new DataView(bytes.buffer, bytes.byteOffset).getUint32(0, false));
    return true;
  };

  test("every seed packet decodes", () => {
    for (const p of valid) expect(check(p)).toBe(true);
  });

  test("20,000 random buffers of 0..64 bytes never throw", () => {
    const rnd = prng(0x5eed);
    let accepted = 0;
    for (let i = 0; i < 20_000; i++) {
      const b = new Uint8Array(Math.floor(rnd() * 65));
      for (let j = 0; j < b.length; j++) b[j] = Math.floor(rnd() * 256);
      if (check(b)) accepted++;
    }
    // random framing almost never lines up; nothing random should pass in bulk
    expect(accepted).toBeLessThan(50);
  });

  test("20,000 mutations of valid packets (byte flips, truncation, extension) never throw", () => {
    const rnd = prng(42);
    const seen = new Set<string>();
    for (let i = 0; i < 20_000; i++) {
      const seed = valid[i % valid.length] as Uint8Array;
      let b = seed.slice();
      const op = Math.floor(rnd() * 3);
      if (op === 0) {
        for (let k = 0; k < 1 + Math.floor(rnd() * 3); k++) b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256);
      } else if (op === 1) {
        b = b.subarray(0, Math.floor(rnd() * b.length));
      } else {
        const ext = new Uint8Array(b.length + 1 + Math.floor(rnd() * 8));
        ext.set(b);
        b = ext;
      }
      const r = decodeInputPacket(b);
      seen.add(r.kind === "rejected" ? r.reason : "accepted");
      check(b);
    }
    // the mutations exercise every path
    for (const k of ["accepted", "TRUNCATED", "TRAILING_BYTES", "UNKNOWN_MAGIC", "BAD_SIZE", "BAD_VALUE", "TOO_LARGE"]) {
      expect(seen.has(k)).toBe(true);
    }
  });
});
