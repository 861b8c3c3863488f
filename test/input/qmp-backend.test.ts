/**
 * The QMP input backend against a real QEMU: every event is checked on the
 * QEMU side through its `input_event_*` trace events.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { selectInputBackend } from "../../src/input/backend.ts";
import type { InputEvent } from "../../src/input/model.ts";
import { QmpClient } from "../../src/input/qmp-client.ts";
import { QmpInputBackend } from "../../src/input/qmp-backend.ts";
import { UNMAPPED_VKS, VK_QCODE_ENTRIES } from "../../src/input/vk-qcode.ts";
import { tempDir } from "../helpers/env.ts";
import { qemuAvailable, startQemu, waitFor, type TestQemu, type TraceEvent } from "./qemu.ts";

const skip = !qemuAvailable();
if (skip) console.warn("skipping QMP input tests: qemu-system-x86_64 is not installed");

const key = (vk: number, down: boolean): InputEvent => ({ kind: "key", down, vk, keyCode: vk, modifiers: 0, flags: 0 });

describe.skipIf(skip)("QMP input backend against a real QEMU", () => {
  const dir = tempDir("neuron-input-");
  let vm: TestQemu;
  let backend: QmpInputBackend;

  /** Trace events (without syncs) produced by `fn`. */
  async function observe(fn: () => Promise<void> | void, expectCount?: number): Promise<TraceEvent[]> {
    const before = vm.trace().length;
    await fn();
    await backend.flush();
    const get = () => vm.trace().slice(before).filter((e) => e.ev !== "sync");
    if (expectCount !== undefined) await waitFor(() => get().length >= expectCount, 3000, `${expectCount} trace events`);
    return get();
  }

  beforeAll(async () => {
    vm = await startQemu(dir.path);
    backend = new QmpInputBackend({ socketPath: vm.socketPath, reconnectMaxDelayMs: 200 });
    await backend.open();
  });

  afterAll(async () => {
    await backend?.close();
    await vm?.stop();
    dir.cleanup();
  });

  test("probing learns what this QEMU and its devices accept", () => {
    expect(backend.capabilities).toEqual({
      keyboard: true,
      relativePointer: true,
      absolutePointer: true, // virtio-tablet
      wheel: true,
      hwheel: true,
      text: true,
      touch: true,
      gamepad: false,
    });
    expect(backend.stats().connects).toBe(1);
  });

  test("every qcode of the VK table is a value of this QEMU's QKeyCode enum, and QEMU receives each", async () => {
    const ctl = new QmpClient({ socketPath: vm.controlPath });
    await ctl.connect();
    const schema = (await ctl.execute("query-qmp-schema")) as { "meta-type": string; values?: string[] }[];
    ctl.close();
    const qkeycode = schema.find((e) => e["meta-type"] === "enum" && e.values?.includes("kp_add"))?.values ?? [];
    expect(qkeycode.length).toBeGreaterThan(100);
    for (const [vk, name, q] of VK_QCODE_ENTRIES) {
      if (!qkeycode.includes(q)) throw new Error(`${name} (0x${vk.toString(16)}) maps to ${q}, unknown to this QEMU`);
    }
    for (const f of ["f13", "f24"]) expect(qkeycode).not.toContain(f);

    const entries = VK_QCODE_ENTRIES;
    const events = entries.flatMap(([vk]) => [key(vk, true), key(vk, false)]);
    const seen = await observe(() => backend.submit(events), events.length);
    const s = backend.stats();
    expect(s.refusedBatches).toBe(0);
    expect(s.unmappedKeys).toBe(0);
    expect(seen).toEqual(entries.flatMap(([, , q]) => [
      { ev: "key", qcode: q, down: true },
      { ev: "key", qcode: q, down: false },
    ]));
    // submitted in one tick: batched into as few commands as the bounds allow. No guest driver
    // runs here, so QEMU routes keys to the PS/2 keyboard, whose small queue sets the bound
    // (6 scancode bytes a command; without a byte table every key counts as 2)
    expect(backend.keyPacing).toEqual({ budget: 6, msPerByte: 5 });
    expect(s.batches).toBe(Math.ceil(events.length / 3));
    expect(backend.held().keys).toEqual([]);
  });

  test("F13–F24 have no QEMU key code: counted as unmapped, nothing sent", async () => {
    const before = backend.stats().unmappedKeys;
    const seen = await observe(() => backend.submit(UNMAPPED_VKS.map(([vk]) => key(vk, true))));
    expect(seen).toEqual([]);
    expect(backend.stats().unmappedKeys - before).toBe(UNMAPPED_VKS.length);
    expect(backend.held().keys).toEqual([]);
  });

  test("relative motion: adjacent moves merge into one delta per axis", async () => {
    const batchesBefore = backend.stats().batches;
    const moves: InputEvent[] = Array.from({ length: 10 }, () => ({ kind: "mouseMoveRel", dx: 3, dy: -2 }));
    const seen = await observe(() => backend.submit(moves), 2);
    expect(seen).toEqual([
      { ev: "rel", axis: "x", value: 30 },
      { ev: "rel", axis: "y", value: -20 },
    ]);
    expect(backend.stats().batches - batchesBefore).toBe(1);
    // a button between moves keeps the order: move, press, move
    const seen2 = await observe(
      () =>
        backend.submit([
          { kind: "mouseMoveRel", dx: 1, dy: 0 },
          { kind: "mouseButton", down: true, button: "left" },
          { kind: "mouseMoveRel", dx: 0, dy: 5 },
          { kind: "mouseButton", down: false, button: "left" },
        ]),
      4,
    );
    expect(seen2).toEqual([
      { ev: "rel", axis: "x", value: 1 },
      { ev: "btn", button: "left", down: true },
      { ev: "rel", axis: "y", value: 5 },
      { ev: "btn", button: "left", down: false },
    ]);
  });

  test("absolute motion scales the client's surface to 0..0x7fff and clamps", async () => {
    const cases: [number, number, number, number][] = [
      // x, y on a 1920x1080 surface → QEMU x, y
      [0, 0, 0, 0],
      [1919, 1079, 0x7fff, 0x7fff],
      [959, 539, 16375, 16368], // 959/1919 · 32767 = 16374.96; 539/1079 · 32767 = 16368.32
      [-40, 5000, 0, 0x7fff],
    ];
    for (const [x, y, ex, ey] of cases) {
      const seen = await observe(() => backend.submit([{ kind: "mouseMoveAbs", x, y, width: 1920, height: 1080 }]), 2);
      expect(seen).toEqual([
        { ev: "abs", axis: "x", value: ex },
        { ev: "abs", axis: "y", value: ey },
      ]);
    }
    // many positions in one tick: only the last one leaves (49/99 · 32767 = 16218.01)
    const burst: InputEvent[] = Array.from({ length: 50 }, (_, i) => ({ kind: "mouseMoveAbs", x: i, y: i, width: 100, height: 100 }));
    const last = await observe(() => backend.submit(burst), 2);
    expect(last).toEqual([
      { ev: "abs", axis: "x", value: 16218 },
      { ev: "abs", axis: "y", value: 16218 },
    ]);
  });

  test("buttons: left, middle, right, X1 → side, X2 → extra", async () => {
    const buttons = ["left", "middle", "right", "x1", "x2"] as const;
    const seen = await observe(
      () => backend.submit(buttons.flatMap((button) => [true, false].map((down) => ({ kind: "mouseButton" as const, down, button })))),
      10,
    );
    expect(seen).toEqual(
      ["left", "middle", "right", "side", "extra"].flatMap((b) => [
        { ev: "btn", button: b, down: true },
        { ev: "btn", button: b, down: false },
      ]),
    );
  });

  test("wheel: 120 per notch as press/release taps, remainders carried, bursts bounded", async () => {
    const tap = (b: string): TraceEvent[] => [
      { ev: "btn", button: b, down: true },
      { ev: "btn", button: b, down: false },
    ];
    expect(await observe(() => backend.submit([{ kind: "scroll", amount: 240 }]), 4)).toEqual([...tap("wheel-up"), ...tap("wheel-up")]);
    expect(await observe(() => backend.submit([{ kind: "scroll", amount: -120 }]), 2)).toEqual(tap("wheel-down"));
    // high-resolution wheel: 4 × 30 = one notch
    expect(await observe(() => backend.submit([30, 30, 30, 30].map((amount) => ({ kind: "scroll" as const, amount }))), 2)).toEqual(
      tap("wheel-up"),
    );
    expect(await observe(() => backend.submit([{ kind: "hscroll", amount: 120 }]), 2)).toEqual(tap("wheel-right"));
    expect(await observe(() => backend.submit([{ kind: "hscroll", amount: -120 }]), 2)).toEqual(tap("wheel-left"));
    const huge = await observe(() => backend.submit([{ kind: "scroll", amount: 32767 }]), 32);
    expect(huge.length).toBe(32); // 16 notches, not 273
  });

  test("UTF-8 text is typed as US-layout key taps; untypeable text is refused whole", async () => {
    const seen = await observe(() => backend.submit([{ kind: "text", text: "Hi!" }]), 10);
    const k = (qcode: string, down: boolean): TraceEvent => ({ ev: "key", qcode, down });
    expect(seen).toEqual([
      k("shift", true), k("h", true), k("h", false), k("shift", false),
      k("i", true), k("i", false),
      k("shift", true), k("1", true), k("1", false), k("shift", false),
    ]);
    // with the user holding left shift: lowercase lifts it around the tap, uppercase uses it as is
    await observe(() => backend.submit([key(0xa0, true)]), 1);
    expect(await observe(() => backend.submit([{ kind: "text", text: "aB" }]), 6)).toEqual([
      k("shift", false), k("a", true), k("a", false), k("shift", true),
      k("b", true), k("b", false),
    ]);
    expect(backend.held().keys).toEqual(["shift"]);
    await observe(() => backend.submit([key(0xa0, false)]), 1);
    const before = backend.stats().unmappedKeys;
    expect(await observe(() => backend.submit([{ kind: "text", text: "é" }]))).toEqual([]);
    expect(backend.stats().unmappedKeys).toBe(before + 1);
  });

  test("touch and pen drive the absolute pointer with the left button", async () => {
    const touch = (eventType: "down" | "move" | "up", pointerId: number, x: number, y: number): InputEvent => ({
      kind: "touch", eventType, pointerId, x, y, pressureOrDistance: 1, rotation: 0xffff, contactAreaMajor: 0, contactAreaMinor: 0,
    });
    const seen = await observe(
      () => backend.submit([touch("down", 4, 0.5, 0.25), touch("down", 5, 0.9, 0.9), touch("move", 4, 1, 1), touch("up", 5, 0, 0), touch("up", 4, 1, 1)]),
      5,
    );
    expect(seen).toEqual([
      { ev: "abs", axis: "x", value: 16384 },
      { ev: "abs", axis: "y", value: 8192 },
      { ev: "btn", button: "left", down: true },
      { ev: "abs", axis: "x", value: 0x7fff },
      { ev: "abs", axis: "y", value: 0x7fff },
      { ev: "btn", button: "left", down: false },
    ]);
  });

  test("gamepad and sensor events are counted as unsupported and send nothing", async () => {
    const seen = await observe(() =>
      backend.submit([
        { kind: "controller", controllerNumber: 0, activeGamepadMask: 1, buttonFlags: 0x1000, leftTrigger: 0, rightTrigger: 0, leftStickX: 0, leftStickY: 0, rightStickX: 0, rightStickY: 0 },
        { kind: "controllerMotion", controllerNumber: 0, motionType: "gyro", x: 0, y: 0, z: 0 },
        { kind: "enableHaptics", enable: true },
      ]),
    );
    expect(seen).toEqual([]);
    expect(backend.stats().unsupported).toMatchObject({ controller: 1, controllerMotion: 1, enableHaptics: 1 });
  });

  test("releaseAll releases every held key and button (session end)", async () => {
    await observe(() => backend.submit([key(0xa0, true), key(0x41, true), key(0x41, true), { kind: "mouseButton", down: true, button: "right" }]), 4);
    expect(backend.held()).toEqual({ keys: ["shift", "a"], buttons: ["right"] });
    const seen = await observe(() => backend.releaseAll(), 3);
    expect(seen).toEqual([
      { ev: "key", qcode: "shift", down: false },
      { ev: "key", qcode: "a", down: false },
      { ev: "btn", button: "right", down: false },
    ]);
    expect(backend.held()).toEqual({ keys: [], buttons: [] });
  });

  test("a paused VM refuses input: counted and logged, the backend keeps working after resume", async () => {
    const ctl = new QmpClient({ socketPath: vm.controlPath });
    await ctl.connect();
    try {
      await ctl.execute("stop");
      const refused = backend.stats().refusedBatches;
      expect(await observe(() => backend.submit([key(0x41, true), key(0x41, false)]))).toEqual([]);
      expect(backend.stats().refusedBatches).toBe(refused + 1);
      await ctl.execute("cont");
      expect(await observe(() => backend.submit([key(0x42, true), key(0x42, false)]), 2)).toEqual([
        { ev: "key", qcode: "b", down: true },
        { ev: "key", qcode: "b", down: false },
      ]);
    } finally {
      ctl.close();
    }
  });

  test("a QEMU restart on the same socket: reconnects and releases keys held before the loss", async () => {
    await observe(() => backend.submit([key(0x11, true), { kind: "mouseButton", down: true, button: "left" }]), 2);
    expect(backend.held()).toEqual({ keys: ["ctrl"], buttons: ["left"] });
    await vm.stop();
    await waitFor(() => !backend.connected, 3000, "disconnect");
    // events while disconnected are dropped, never queued without bound
    const dropped = backend.stats().dropped;
    backend.submit([key(0x42, true)]);
    expect(backend.stats().dropped).toBe(dropped + 1);
    // a session end during the outage keeps the held state for the reconnect to release
    await backend.releaseAll();
    expect(backend.held()).toEqual({ keys: ["ctrl"], buttons: ["left"] });
    vm = await startQemu(dir.path, "vm", { traceName: "vm-restarted" });
    await waitFor(() => backend.connected && vm.trace().length >= 2, 5000, "reconnect and release");
    await backend.flush();
    expect(backend.stats().connects).toBe(2);
    expect(vm.trace().filter((e) => e.ev !== "sync")).toEqual([
      { ev: "key", qcode: "ctrl", down: false },
      { ev: "btn", button: "left", down: false },
    ]);
    expect(backend.held()).toEqual({ keys: [], buttons: [] });
    // and input flows again
    expect(await observe(() => backend.submit([key(0x43, true), key(0x43, false)]), 2)).toEqual([
      { ev: "key", qcode: "c", down: true },
      { ev: "key", qcode: "c", down: false },
    ]);
  }, 20_000);

  test("close() releases what is held, then further input is dropped, and close is idempotent", async () => {
    await observe(() => backend.submit([key(0x5b, true)]), 1);
    const before = vm.trace().length;
    await backend.close();
    await waitFor(() => vm.trace().length > before, 3000, "release on close");
    expect(vm.trace().slice(before).filter((e) => e.ev !== "sync")).toEqual([{ ev: "key", qcode: "meta_l", down: false }]);
    backend.submit([key(0x41, true)]);
    await backend.flush();
    await backend.close();
    expect(vm.trace().slice(before).filter((e) => e.ev !== "sync").length).toBe(1);
  });
});

describe("QMP input backend: unusable sockets", () => {
  test("open() on a missing socket is a typed error; probing moves on to the next candidate", async () => {
    const dir = tempDir("neuron-input-");
    try {
      const missing = new QmpInputBackend({ socketPath: `${dir.path}/nope.qmp`, reconnect: false });
      await expect(missing.open()).rejects.toMatchObject({ errorCode: "INPUT_BACKEND_UNAVAILABLE" });
      await missing.close();
      await expect(
        selectInputBackend([{ name: "qmp", create: () => new QmpInputBackend({ socketPath: `${dir.path}/nope.qmp`, reconnect: false }) }]),
      ).rejects.toMatchObject({ errorCode: "INPUT_BACKEND_UNAVAILABLE" });
    } finally {
      dir.cleanup();
    }
  });
});
