/**
 * The agent sink end to end: the host's AgentHidBackend → the guest agent (compiled, in a
 * TCG guest with Debian's HID modules) → uhid devices made from native/hid.c's descriptors
 * → the guest's HID drivers (hid-generic; hid-playstation for the DualSense identity, with
 * its motion sensors and touchpad) → evdev, read back in the guest. One boot for the file.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { agentClientLink } from "../../src/input/agent-link.ts";
import { VmInputService } from "../../src/input/vm-input.ts";
import { HidNative } from "../../ffi/hid.ts";
import { resolveNativePath } from "../../ffi/native.ts";
import type { HidOutput } from "../../src/guest/hid-model.ts";
import { AgentHidBackend, type HidLink } from "../../src/input/agent-hid-backend.ts";
import { MoonlightButton } from "../../src/input/gamepad-map.ts";
import type { InputEvent } from "../../src/input/model.ts";
import { silentLogger } from "../../src/log.ts";
import { tempDir } from "../helpers/env.ts";
import { pad } from "../gamepad/pad.ts";
import { bootAgentGuest, type AgentGuest } from "../guest/agent-guest.ts";
import { hidModules } from "../guest/hid-modules.ts";
import { CAPTURE_AGENT_CONFIG, capture as captureGuest, readNodes as readGuestNodes, type GuestEv } from "../guest/evdev-capture.ts";
import { findKernel, tinyGuestUnavailable, type Kernel } from "../guest/tiny-guest.ts";

const kernel = findKernel();
const mods = typeof kernel === "string" ? kernel : (tinyGuestUnavailable() ?? hidModules(kernel));
const skipReason = typeof mods === "string" ? mods : null;
if (skipReason) console.warn(`skipping the agent HID end-to-end test: ${skipReason}`);

const EV_KEY = 1, EV_REL = 2, EV_ABS = 3;
const KEY_LEFTSHIFT = 42, KEY_A = 30, BTN_LEFT = 0x110, BTN_RIGHT = 0x111, BTN_SOUTH = 0x130, BTN_TOUCH = 0x14a;
const REL_X = 0, REL_Y = 1, REL_WHEEL_HI_RES = 11;
const ABS_X = 0, ABS_Y = 1, ABS_RX = 3, ABS_MT_POSITION_X = 0x35;

async function waitFor(fn: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  for (const until = Date.now() + ms; !(await fn()); await Bun.sleep(100)) if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
}

describe.skipIf(skipReason !== null)("agent sink: uhid devices in a QEMU guest, read back from evdev", () => {
  const work = tempDir("neuron-e2e-hid-");
  const hid = new HidNative(resolveNativePath({}));
  let guest: AgentGuest;
  const outputs: HidOutput[] = [];
  let link: HidLink;

  beforeAll(async () => {
    const k = kernel as Kernel;
    const m = mods as Exclude<typeof mods, string>;
    mkdirSync(join(work.path, "qmp"));
    guest = await bootAgentGuest({ work: work.path, kernel: k, config: CAPTURE_AGENT_CONFIG, files: { ...m.files, ...(k.modules.uinput ? { "modules/uinput.ko": { host: k.modules.uinput } } : {}) }, init: [...m.init, ...(k.modules.uinput ? ["insmod /modules/uinput.ko"] : [])], qemu: ["-qmp", `unix:${join(work.path, "qmp", "vm1.qmp")},server=on,wait=off`] });
    guest.client.on("hid_output", (o: HidOutput) => outputs.push(o));
    link = {
      request: (command, data) => guest.client.request(command, data, 20_000),
      onHidOutput(l) {
        guest.client.on("hid_output", l);
        return () => guest.client.off("hid_output", l);
      },
    };
  }, 180_000);

  afterAll(async () => {
    hid.close();
    await guest?.stop();
    work.cleanup();
  });

  const capture = () => captureGuest(guest.client);
  const readNodes = (nodes: string[]) => readGuestNodes(guest.client, nodes);

  const strip = (evs: GuestEv[] | undefined) => (evs ?? []).map(({ type, code, value }) => ({ type, code, value }));

  test("keyboard, mouse and an Xbox-like pad: created by the agent, driven by the host, destroyed at close", async () => {
    const backend = new AgentHidBackend({ link, hid, log: silentLogger, pads: "xbox" });
    await backend.open();
    const devs = await backend.prepare(["keyboard", "mouse", "tablet", { pad: 0 }]);
    expect(devs.map((d) => [d.role, d.created.driver])).toEqual([["keyboard", "hid-generic"], ["mouse", "hid-generic"], ["tablet", "hid-generic"], ["xbox", "hid-generic"]]);
    const node = (role: string) => devs.find((d) => d.role === role)!.created.inputs[0]!.node;
    for (const d of devs) expect(d.created.inputs.length).toBeGreaterThanOrEqual(1);
    await readNodes(devs.map((d) => d.created.inputs[0]!.node));

    const key = (usage: number, down: boolean): InputEvent => ({ kind: "usageKey", page: 7, usage, down, evdev: 0, qcode: null });
    backend.submit([key(0xe1, true), key(0x04, true), key(0x04, false), key(0xe1, false)]);
    backend.submit([{ kind: "mouseButton", button: "left", down: true }, { kind: "mouseMoveRel", dx: 7, dy: -4 }, { kind: "scroll", amount: 120 }, { kind: "mouseButton", button: "left", down: false }]);
    // absolute motion goes to the tablet, and the buttons after it too
    backend.submit([{ kind: "mouseMoveAbs", x: 16384, y: 8192, width: 32768, height: 32768 }, { kind: "mouseButton", button: "right", down: true }, { kind: "mouseButton", button: "right", down: false }]);
    backend.submit([pad({ buttonFlags: MoonlightButton.a, leftStickX: 32767 })]);
    await backend.flush();
    backend.submit([pad({})]);
    await backend.flush();

    let cap = await capture();
    await waitFor(async () => ((cap = await capture()), strip(cap.events.get(node("xbox").slice(11))).some((e) => e.code === BTN_SOUTH && e.value === 0)), 10_000, "the pad's release in the guest").catch(() => {});
    const of = (role: string) => strip(cap.events.get(node(role).slice("/dev/input/".length)));
    expect(of("keyboard").filter((e) => !(e.type === EV_KEY && e.value === 2))).toEqual([
      { type: EV_KEY, code: KEY_LEFTSHIFT, value: 1 },
      { type: EV_KEY, code: KEY_A, value: 1 },
      { type: EV_KEY, code: KEY_A, value: 0 },
      { type: EV_KEY, code: KEY_LEFTSHIFT, value: 0 },
    ]);
    expect(of("mouse")).toEqual(
      expect.arrayContaining([
        { type: EV_KEY, code: BTN_LEFT, value: 1 },
        { type: EV_REL, code: REL_X, value: 7 },
        { type: EV_REL, code: REL_Y, value: -4 },
        { type: EV_REL, code: REL_WHEEL_HI_RES, value: 120 },
        { type: EV_KEY, code: BTN_LEFT, value: 0 },
      ]),
    );
    expect(of("tablet")).toEqual(
      expect.arrayContaining([
        { type: EV_ABS, code: ABS_X, value: 16384 },
        { type: EV_ABS, code: ABS_Y, value: 8192 },
        { type: EV_KEY, code: BTN_RIGHT, value: 1 },
        { type: EV_KEY, code: BTN_RIGHT, value: 0 },
      ]),
    );
    expect(of("mouse").some((e) => e.code === BTN_RIGHT)).toBe(false);
    const xbox = of("xbox");
    expect(xbox).toEqual(expect.arrayContaining([{ type: EV_KEY, code: BTN_SOUTH, value: 1 }, { type: EV_KEY, code: BTN_SOUTH, value: 0 }]));
    expect(xbox.some((e) => e.type === EV_ABS && e.code === ABS_X && e.value === 65535)).toBe(true);

    await backend.close();
    await waitFor(async () => (await capture()).uhid === 0, 10_000, "the uhid devices to go");
  }, 120_000);

  test("DualSense-like pad: hid-playstation binds; buttons, gyro, accel and the touchpad arrive on its three evdev devices", async () => {
    const backend = new AgentHidBackend({ link, hid, log: silentLogger, pads: "dualsense" });
    await backend.open();
    const [ds] = await backend.prepare([{ pad: 1 }]);
    expect(ds!.created.driver).toBe("playstation");
    const byName = (suffix: string) => ds!.created.inputs.find((i) => (suffix ? i.name.endsWith(suffix) : !/Motion Sensors|Touchpad/.test(i.name)))!;
    expect(ds!.created.inputs.map((i) => i.name).sort()).toEqual(
      ["", " Motion Sensors", " Touchpad"].map((s) => `Sony Interactive Entertainment DualSense Wireless Controller${s}`).sort(),
    );
    const gamepad = byName(""), motion = byName("Motion Sensors"), touch = byName("Touchpad");
    await readNodes([gamepad.node, motion.node, touch.node]);

    backend.submit([
      pad({ controllerNumber: 1, activeGamepadMask: 0b10, buttonFlags: MoonlightButton.a, leftStickX: 32767 }),
      { kind: "controllerMotion", controllerNumber: 1, motionType: "gyro", x: 10, y: 0, z: 0 },
      { kind: "controllerMotion", controllerNumber: 1, motionType: "accel", x: 0, y: 9.80665, z: 0 },
      { kind: "controllerTouch", controllerNumber: 1, eventType: "down", touchpadIndex: 0, pointerId: 3, x: 0.5, y: 0.5, pressure: 1 },
    ]);
    await backend.flush();
    await Bun.sleep(50);
    backend.submit([pad({ controllerNumber: 1, activeGamepadMask: 0b10 })]);
    await backend.flush();

    let cap = await capture();
    const at = (n: string) => strip(cap.events.get(n.slice("/dev/input/".length)));
    await waitFor(async () => ((cap = await capture()), at(gamepad.node).some((e) => e.code === BTN_SOUTH && e.value === 0)), 10_000, "the DualSense release").catch(() => {});
    expect(at(gamepad.node)).toEqual(expect.arrayContaining([{ type: EV_KEY, code: BTN_SOUTH, value: 1 }, { type: EV_ABS, code: ABS_X, value: 255 }, { type: EV_KEY, code: BTN_SOUTH, value: 0 }]));
    // 10 °/s → 1024 per °/s; 1 g → 8192 per g (the calibration the device reports)
    expect(at(motion.node)).toEqual(expect.arrayContaining([{ type: EV_ABS, code: ABS_RX, value: 10240 }, { type: EV_ABS, code: ABS_Y, value: 8192 }]));
    expect(at(touch.node)).toEqual(expect.arrayContaining([{ type: EV_KEY, code: BTN_TOUCH, value: 1 }, { type: EV_ABS, code: ABS_MT_POSITION_X, value: 960 }]));
    // the driver set the lightbar and player LEDs through output reports, which reached the host
    expect(outputs.some((o) => o.id === 17)).toBe(true);

    await backend.close();
    await waitFor(async () => (await capture()).uhid === 0, 10_000, "the DualSense to go");
  }, 120_000);

  test("the host's session ending destroys every device it left (no stuck devices)", async () => {
    const backend = new AgentHidBackend({ link, hid, log: silentLogger, pads: "xbox" });
    const devs = await backend.prepare(["keyboard", { pad: 2 }]);
    expect(devs.length).toBe(2);
    expect((await capture()).uhid).toBe(2);
    // the connection drops with the devices still there; the agent removes them itself
    guest.client.stop();
    guest.client.start();
    await waitFor(() => guest.client.state === "connected", 30_000, "the agent again");
    await waitFor(async () => (await capture()).uhid === 0, 10_000, "the devices of the ended session to go");
    // the host's backend learns its keyboard is gone from the refusal, and makes it again on the next key
    const key = (down: boolean): InputEvent => ({ kind: "usageKey", page: 7, usage: 0x04, down, evdev: 30, qcode: "a" });
    backend.submit([key(true)]);
    await backend.flush();
    expect(backend.stats().refusedBatches).toBe(1);
    backend.submit([key(false)]);
    await backend.flush();
    // (the pad, unused since, is still the host's until its next state tells it otherwise)
    expect(backend.created().map((d) => d.role).sort()).toEqual(["keyboard", "xbox"]);
    expect((await capture()).uhid).toBe(1);
    await backend.close();
    await waitFor(async () => (await capture()).uhid === 0, 10_000, "the keyboard made again to go at close");
  }, 60_000);

  test("a hostile hid_create is refused and creates nothing", async () => {
    const bad = [
      { id: 40, name: "x", vendor: 1, product: 1, descriptor: "AAAA" },
      { id: 3, name: "x", vendor: 1, product: 1, descriptor: "!!!!" },
      { id: 3, name: "x", vendor: 1, product: 70000, descriptor: "AAAA" },
      { id: 3, name: "x", vendor: 1, product: 1, descriptor: Buffer.alloc(5000).toString("base64") },
      { id: 3, name: "x", vendor: 1, product: 1, descriptor: "AAAA", features: { "5": Buffer.from([9, 1]).toString("base64") } },
    ];
    for (const b of bad) await expect(guest.client.request("hid_create", b)).rejects.toThrow();
    await expect(guest.client.request("hid_input", { id: 5, reports: ["AAAA"] })).rejects.toThrow(/not created/);
    expect((await capture()).uhid).toBe(0);
  }, 30_000);

  test("the input hub routes classes pinned to the agent to its uhid devices, reported as the agent sink with its stealth level", async () => {
    const svc = new VmInputService({
      qmpDir: join(work.path, "qmp"),
      settings: { keymapDir: "/usr/share/qemu/keymaps", layouts: {}, frameMs: 0, keyRepeat: "guest", pins: { vm1: { keyboard: "agent", pointer: "agent" } }, padDevice: { vm1: "dualsense" } },
      nativePath: () => resolveNativePath({}),
      log: silentLogger,
      gamepadLink: () => agentClientLink(guest.client),
    });
    try {
      const probe = await svc.probe("vm1");
      const sink = (c: string) => probe.sinks.find((x) => x.eventClass === c)!;
      expect(sink("keyboard")).toMatchObject({ sink: "agent", device: "uhid NeuronOS Keyboard (NKRO)", stealth: 2, pinned: { sink: "agent", honoured: true } });
      expect(sink("pointer")).toMatchObject({ sink: "agent", device: "uhid NeuronOS Mouse", stealth: 2 });
      expect(sink("absolute").sink).not.toBe("agent");
      expect(sink("gamepad")).toMatchObject({ sink: "agent", device: "uhid DualSense (054c:0ce6, motion sensors, touchpad)", stealth: 2 });
      // the pinned classes' devices exist from the hub's start, before any input
      const hub = await svc.hub("vm1");
      const devs = hub.hid!.created();
      expect(devs.map((d) => d.role)).toEqual(["keyboard", "mouse"]);
      await readNodes(devs.map((d) => d.created.inputs[0]!.node));
      const r = await svc.inject("vm1", [
        { type: "key", usage: 0x04, down: true },
        { type: "key", usage: 0x04, down: false },
        { type: "move", dx: 3, dy: 2 },
        { type: "button", button: 1, down: true },
        { type: "button", button: 1, down: false },
      ] as never);
      expect(r.sinks).toMatchObject({ keyboard: "agent", pointer: "agent", gamepad: "agent" });
      let cap = await capture();
      const of = (role: string) => strip(cap.events.get(devs.find((d) => d.role === role)!.created.inputs[0]!.node.slice("/dev/input/".length)));
      await waitFor(async () => ((cap = await capture()), of("mouse").some((e) => e.code === BTN_LEFT && e.value === 0)), 10_000, "the click in the guest").catch(() => {});
      expect(of("keyboard")).toEqual([{ type: EV_KEY, code: KEY_A, value: 1 }, { type: EV_KEY, code: KEY_A, value: 0 }]);
      expect(of("mouse")).toEqual([
        { type: EV_REL, code: REL_X, value: 3 },
        { type: EV_REL, code: REL_Y, value: 2 },
        { type: EV_KEY, code: BTN_LEFT, value: 1 },
        { type: EV_KEY, code: BTN_LEFT, value: 0 },
      ]);
      // a pad's first state makes the DualSense
      await svc.inject("vm1", [{ type: "gamepad", pad: 0, buttons: 0x1000 }, { type: "gamepad", pad: 0, buttons: 0 }] as never);
      await waitFor(() => hub.hid!.created().some((d) => d.role === "dualsense" && d.created.driver === "playstation"), 10_000, "the DualSense");
    } finally {
      await svc.close();
    }
    await waitFor(async () => (await capture()).uhid === 0, 10_000, "the hub's devices to go at close");
  }, 60_000);

  test("pads \"auto\": a PlayStation controller becomes the uhid DualSense, an Xbox one the uinput pad", async () => {
    const svc = new VmInputService({
      qmpDir: join(work.path, "qmp"),
      settings: { keymapDir: "/usr/share/qemu/keymaps", layouts: {}, frameMs: 0, keyRepeat: "guest", pins: {}, padDevice: { vm1: "auto" } },
      nativePath: () => resolveNativePath({}),
      log: silentLogger,
      gamepadLink: () => agentClientLink(guest.client),
    });
    try {
      const probe = await svc.probe("vm1");
      expect(probe.sinks.find((x) => x.eventClass === "gamepad")!.device).toContain("DualSense for a PlayStation one");
      await svc.inject("vm1", [
        { type: "gamepadAttach", pad: 3, kind: "dualsense" },
        { type: "gamepadAttach", pad: 4, kind: "xbox" },
        { type: "gamepad", pad: 3, buttons: 0 },
        { type: "gamepad", pad: 4, buttons: 0 },
      ]);
      const hub = await svc.hub("vm1");
      await waitFor(() => hub.hid!.created().some((d) => d.role === "dualsense"), 10_000, "the DualSense");
      expect(hub.hid!.created().map((d) => d.role)).toEqual(["dualsense"]);
      const names = async () => [...(await capture()).names.values()];
      await waitFor(async () => (await names()).includes("NeuronOS Virtual Gamepad 4"), 10_000, "the uinput pad");
      expect(await names()).toContain("Sony Interactive Entertainment DualSense Wireless Controller Motion Sensors");
      // pad 3 leaves the client's mask: its DualSense goes, the uinput pad stays
      await svc.inject("vm1", [{ type: "gamepadDetach", pad: 3 }, { type: "gamepad", pad: 4, buttons: 0 }]);
      await waitFor(async () => (await capture()).uhid === 0, 10_000, "the DualSense to go");
      expect(await names()).toContain("NeuronOS Virtual Gamepad 4");
    } finally {
      await svc.close();
    }
    await waitFor(async () => !(await capture()).names.size || ![...(await capture()).names.values()].includes("NeuronOS Virtual Gamepad 4"), 10_000, "the uinput pad to go at close");
  }, 60_000);
});
