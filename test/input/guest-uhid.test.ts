/**
 * The native HID descriptors and reports (native/hid.h) as real devices in a Linux guest:
 * a uhid device is created with each descriptor (test/fixtures/input-guest/uhidmk.c), the
 * native report is written, and the guest's evdev must show the events it means.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { HidNative } from "../../ffi/hid.ts";
import { resolveNativePath } from "../../ffi/native.ts";
import { tempDir } from "../helpers/env.ts";
import { inputGuest } from "./guest.ts";
import { bootGuest, type BootedGuest } from "./guest-vm.ts";
import { qemuAvailable, waitFor } from "./qemu.ts";

const guest = qemuAvailable() ? inputGuest() : "qemu-system-x86_64 is not installed";
const skip = typeof guest === "string" ? guest : undefined;
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

const EV_KEY = 1, EV_REL = 2, EV_ABS = 3;
const KEY_LEFTSHIFT = 42, KEY_A = 30, BTN_LEFT = 0x110, BTN_SOUTH = 0x130;
const REL_X = 0, REL_Y = 1, REL_WHEEL = 8, REL_WHEEL_HI_RES = 11, ABS_X = 0;

describe.skipIf(skip !== undefined)("HID descriptors from native code become working uhid devices in a guest", () => {
  const dir = tempDir("neuron-uhid-");
  const hid = new HidNative(resolveNativePath({}));
  let g: BootedGuest;

  beforeAll(async () => {
    if (typeof guest === "string") return;
    const kb = `${hex(hid.descriptor("keyboard6kro"))}:${hex(hid.keyboardReport("keyboard6kro", [0xe1, 0x04]))}:${hex(hid.keyboardReport("keyboard6kro", []))}`;
    const mouse = `${hex(hid.descriptor("mouse"))}:${hex(hid.mouseReport(1, 5, -3, 120, 0))}:${hex(hid.mouseReport(0, 0, 0, 0, 0))}`;
    const neutral = { buttons: 0, lx: 0, ly: 0, rx: 0, ry: 0, lt: 0, rt: 0 };
    const pad = `${hex(hid.descriptor("xbox"))}:${hex(hid.padReport("xbox", { ...neutral, buttons: 0x1000, lx: 32767 }))}:${hex(hid.padReport("xbox", neutral))}`;
    g = await bootGuest(guest, dir.path, "uhid", [], 3, "q35,i8042=off", `uhid0=${kb} uhid1=${mouse} uhid2=${pad}`);
    await waitFor(() => g.lines().filter((l) => l.startsWith("UHID SENT")).length >= 3, 30_000, "the reports");
    await Bun.sleep(300);
  }, 150_000);

  afterAll(async () => {
    hid.close();
    await g?.stop();
    dir.cleanup();
  });

  const of = (n: number) => g.events().filter((e) => e.dev === `Neuron Test HID ${n}`).map(({ type, code, value }) => ({ type, code, value }));

  test("the guest has the three devices", () => {
    expect([...g.devs.values()]).toEqual(expect.arrayContaining(["Neuron Test HID 0", "Neuron Test HID 1", "Neuron Test HID 2"]));
  });

  test("keyboard 6KRO: shift+a pressed, then released", () => {
    // the guest kernel's own autorepeat (value 2) fires when the release comes late on a loaded host
    expect(of(0).filter((e) => !(e.type === EV_KEY && e.value === 2))).toEqual([
      { type: EV_KEY, code: KEY_LEFTSHIFT, value: 1 },
      { type: EV_KEY, code: KEY_A, value: 1 },
      { type: EV_KEY, code: KEY_LEFTSHIFT, value: 0 },
      { type: EV_KEY, code: KEY_A, value: 0 },
    ]);
  });

  test("mouse: button, motion and one wheel notch in hi-res units", () => {
    const ev = of(1);
    expect(ev).toEqual(
      expect.arrayContaining([
        { type: EV_KEY, code: BTN_LEFT, value: 1 },
        { type: EV_REL, code: REL_X, value: 5 },
        { type: EV_REL, code: REL_Y, value: -3 },
        { type: EV_REL, code: REL_WHEEL, value: 1 },
        { type: EV_REL, code: REL_WHEEL_HI_RES, value: 120 },
        { type: EV_KEY, code: BTN_LEFT, value: 0 },
      ]),
    );
  });

  test("Xbox-like pad: A and the left stick", () => {
    const ev = of(2);
    expect(ev).toEqual(expect.arrayContaining([{ type: EV_KEY, code: BTN_SOUTH, value: 1 }, { type: EV_KEY, code: BTN_SOUTH, value: 0 }]));
    expect(ev.some((e) => e.type === EV_ABS && e.code === ABS_X && e.value === 65535)).toBe(true);
  });
});
