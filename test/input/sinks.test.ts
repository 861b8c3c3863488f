/**
 * chooseSinks: which sink serves each event class from what QEMU reports, what the agent
 * offers, the host's uinput and the pins in config (the real QEMU cases are in
 * inject-api.test.ts and test/vm/input-devices.test.ts; these are the rules alone).
 */
import { describe, expect, test } from "bun:test";
import { agentDeviceNames, chooseSinks, type QemuInputDevices } from "../../src/input/sinks.ts";

// as QEMU 7.2 answers query-mice: the most recently activated handler last
const usbVm: QemuInputDevices = {
  mice: [
    { index: 2, name: "QEMU PS/2 Mouse", current: false, absolute: false },
    { index: 4, name: "QEMU HID Mouse", current: false, absolute: false },
    { index: 5, name: "QEMU HID Tablet", current: true, absolute: true },
  ],
  keyboards: [{ kind: "ps2", id: "i8042" }, { kind: "usb", id: "usb-kbd" }],
};
const by = (r: ReturnType<typeof chooseSinks>) => Object.fromEntries(r.map((s) => [s.eventClass, s]));

describe("chooseSinks", () => {
  test("QEMU's devices: the USB keyboard, the relative pointer activated last, the current tablet; no pad without an agent", () => {
    const s = by(chooseSinks(usbVm, { agent: false, hostUinput: false }));
    expect(s.keyboard).toMatchObject({ sink: "usb", stealth: 1 });
    expect(s.pointer).toMatchObject({ sink: "usb", device: "QEMU HID Mouse" });
    expect(s.pointer!.why).toContain("activated last");
    expect(s.absolute).toMatchObject({ sink: "usb", device: "QEMU HID Tablet" });
    expect(s.gamepad).toMatchObject({ sink: null });
  });

  test("classes pinned to the agent are served by its uhid devices (stealth 2); unpinned ones stay with QEMU", () => {
    const s = by(chooseSinks(usbVm, { agent: true, hostUinput: false, pins: { keyboard: "agent", pointer: "agent" }, agentDevices: agentDeviceNames("dualsense", ["keyboard", "pointer"]) }));
    expect(s.keyboard).toMatchObject({ sink: "agent", device: "uhid NeuronOS Keyboard (NKRO)", stealth: 2, pinned: { sink: "agent", honoured: true } });
    expect(s.keyboard!.available).toEqual(["ps2", "usb", "agent"]);
    expect(s.pointer).toMatchObject({ sink: "agent", device: "uhid NeuronOS Mouse" });
    expect(s.absolute).toMatchObject({ sink: "usb" });
    expect(s.gamepad).toMatchObject({ sink: "agent", device: "uhid DualSense (054c:0ce6, motion sensors, touchpad)", stealth: 2 });
  });

  test("a pin to the agent without an agent is not honoured, and says so", () => {
    const s = by(chooseSinks(usbVm, { agent: false, hostUinput: false, pins: { keyboard: "agent" } }));
    expect(s.keyboard).toMatchObject({ sink: "usb", pinned: { sink: "agent", honoured: false } });
    expect(s.keyboard!.why).toContain("pinned to agent");
  });

  test("gamepads pinned to host-uinput: served there where /dev/uinput exists, else by the agent with the reason", () => {
    expect(by(chooseSinks(usbVm, { agent: true, hostUinput: true, pins: { gamepad: "host-uinput" } })).gamepad).toMatchObject({ sink: "host-uinput", pinned: { honoured: true } });
    const noUinput = by(chooseSinks(usbVm, { agent: true, hostUinput: false, pins: { gamepad: "host-uinput" } })).gamepad!;
    expect(noUinput).toMatchObject({ sink: "agent", pinned: { sink: "host-uinput", honoured: false } });
    expect(noUinput.why).toContain("no /dev/uinput");
    expect(by(chooseSinks(usbVm, { agent: true, hostUinput: true })).gamepad).toMatchObject({ sink: "agent", available: ["agent", "host-uinput"] });
  });
});
