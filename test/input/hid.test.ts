/**
 * USB HID descriptors and reports from native/hid.h through ffi/hid.ts: every descriptor
 * passes our parser with the documented report sizes; mutated descriptors never crash it.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { HidNative, type HidKind } from "../../ffi/hid.ts";
import { resolveNativePath } from "../../ffi/native.ts";

const hid = new HidNative(resolveNativePath({}));
afterAll(() => hid.close());

const KINDS: [HidKind, number, number, number][] = [
  // kind, usage (generic desktop), input bytes (first report), reports
  ["keyboard6kro", 6, 8, 1],
  ["keyboardNkro", 6, 21, 1],
  ["mouse", 2, 9, 1],
  ["tablet", 2, 6, 1],
  ["xbox", 5, 15, 1],
  ["dualsense", 5, 63, 5],
];

describe("HID report descriptors", () => {
  for (const [kind, usage, inputBytes, reports] of KINDS) {
    test(`${kind}: parses, generic desktop usage ${usage}, ${inputBytes}-byte input report`, () => {
      const d = hid.descriptor(kind);
      const info = hid.parse(d);
      expect(info).not.toBeNull();
      expect(info!.usagePage).toBe(1);
      expect(info!.usage).toBe(usage);
      expect(info!.reports.length).toBe(reports);
      expect(info!.reports[0]!.inputBits).toBe(inputBytes * 8);
    });
  }

  test("a thousand random mutations of each descriptor: refused or parsed, never a crash", () => {
    let seed = 12345;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) & 0xff;
    let refused = 0;
    for (const [kind] of KINDS) {
      const d = hid.descriptor(kind);
      for (let i = 0; i < 1000; i++) {
        const m = d.slice(0, 1 + (rnd() * d.length) / 256);
        for (let k = 0; k < 3; k++) m[rnd() % m.length] = rnd();
        if (hid.parse(m) === null) refused++;
      }
    }
    expect(refused).toBeGreaterThan(1000);
  });
});

describe("HID reports", () => {
  test("keyboard 6KRO: modifiers as bits, six keys, rollover error beyond", () => {
    expect([...hid.keyboardReport("keyboard6kro", [0xe1, 0x04])]).toEqual([0x02, 0, 0x04, 0, 0, 0, 0, 0]);
    expect([...hid.keyboardReport("keyboard6kro", [4, 5, 6, 7, 8, 9, 10])].slice(2)).toEqual([1, 1, 1, 1, 1, 1]);
    expect(hid.keyboardReport("keyboardNkro", [4, 5, 6, 7, 8, 9, 10, 11, 12]).length).toBe(21);
  });

  test("mouse hi-res wheel, tablet absolute, Xbox and DualSense pads", () => {
    expect([...hid.mouseReport(1, 5, -3, 120, 0)]).toEqual([1, 5, 0, 0xfd, 0xff, 120, 0, 0, 0]);
    expect([...hid.tabletReport(0, 16384, 32767, 0)]).toEqual([0, 0, 0x40, 0xff, 0x7f, 0]);
    expect(() => hid.tabletReport(0, 40000, 0, 0)).toThrow();
    const x = hid.padReport("xbox", { buttons: 0x1000, lx: 0, ly: 0, rx: 0, ry: 0, lt: 0, rt: 255 });
    expect(x.length).toBe(15);
    expect(x[13]).toBe(1);
    const ds = hid.padReport("dualsense", { buttons: 0x2000, lx: -32768, ly: 0, rx: 0, ry: 0, lt: 0, rt: 0, gyro: [1, 2, 3], touches: [{ id: 3, x: 100, y: 200 }] });
    expect(ds.length).toBe(64);
    expect(ds[0]).toBe(1);
    expect(ds[1]).toBe(0);
    expect(ds[8]! & 0x40).toBe(0x40);
    expect([ds[16], ds[18], ds[20]]).toEqual([1, 2, 3]);
    expect(ds[33]).toBe(3);
  });
});
