/**
 * The contract every InputBackend passes. A backend's test file calls
 * `inputBackendContract` with a setup that starts the real target (QEMU, a
 * uinput device, ...) and an observer that reads, on the target's side, which
 * keys it received.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { InputBackend } from "../../src/input/backend.ts";
import type { InputEvent } from "../../src/input/model.ts";

export interface ObservedKey {
  /** Backend-neutral key name: the VK code the test sent. */
  vk: number;
  down: boolean;
}

export interface ContractTarget {
  backend: InputBackend;
  /** Key transitions the target has received so far, oldest first. */
  observedKeys(): ObservedKey[];
  teardown(): Promise<void>;
}

const VK_A = 0x41;
const VK_RSHIFT = 0xa1;
const key = (vk: number, down: boolean): InputEvent => ({ kind: "key", down, vk, keyCode: vk | 0x8000, modifiers: 0, flags: 0 });

/** One event of every kind of the model. */
export const ONE_OF_EACH: readonly InputEvent[] = [
  { kind: "mouseMoveRel", dx: 1, dy: 1 },
  { kind: "mouseMoveAbs", x: 10, y: 10, width: 100, height: 100 },
  { kind: "mouseButton", down: true, button: "middle" },
  { kind: "mouseButton", down: false, button: "middle" },
  { kind: "scroll", amount: 120 },
  { kind: "hscroll", amount: -120 },
  { kind: "controller", controllerNumber: 0, activeGamepadMask: 1, buttonFlags: 0, leftTrigger: 0, rightTrigger: 0, leftStickX: 0, leftStickY: 0, rightStickX: 0, rightStickY: 0 },
  { kind: "text", text: "ok" },
  { kind: "enableHaptics", enable: true },
  { kind: "touch", eventType: "hover", pointerId: 1, x: 0.5, y: 0.5, pressureOrDistance: 0, rotation: 0xffff, contactAreaMajor: 0, contactAreaMinor: 0 },
  { kind: "pen", eventType: "hover", toolType: "pen", penButtons: 0, x: 0.5, y: 0.5, pressureOrDistance: 0, rotation: 0xffff, tilt: 0xff, contactAreaMajor: 0, contactAreaMinor: 0 },
  { kind: "controllerArrival", controllerNumber: 0, type: "xbox", capabilities: 0, supportedButtonFlags: 0 },
  { kind: "controllerTouch", controllerNumber: 0, eventType: "down", touchpadIndex: 0, pointerId: 0, x: 0, y: 0, pressure: 0 },
  { kind: "controllerMotion", controllerNumber: 0, motionType: "accel", x: 0, y: 9.8, z: 0 },
  { kind: "controllerBattery", controllerNumber: 0, state: "full", percentage: 100 },
];

async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await Bun.sleep(10);
}

export function inputBackendContract(name: string, setup: () => Promise<ContractTarget>, opts: { skip?: string } = {}) {
  if (opts.skip !== undefined) console.warn(`skipping InputBackend contract for ${name}: ${opts.skip}`);
  describe.skipIf(opts.skip !== undefined)(`InputBackend contract: ${name}`, () => {
    let t: ContractTarget;
    beforeAll(async () => {
      t = await setup();
      await t.backend.open();
    });
    afterAll(async () => {
      await t?.backend.close();
      await t?.teardown();
    });

    test("reports its capabilities after open(); a keyboard at least", () => {
      expect(t.backend.capabilities.keyboard).toBe(true);
      expect(typeof t.backend.name).toBe("string");
    });

    test("key down and up reach the target in order", async () => {
      const before = t.observedKeys().length;
      t.backend.submit([key(VK_A, true), key(VK_A, false)]);
      await t.backend.flush();
      await until(() => t.observedKeys().length >= before + 2);
      expect(t.observedKeys().slice(before)).toEqual([
        { vk: VK_A, down: true },
        { vk: VK_A, down: false },
      ]);
    });

    test("releaseAll() releases a key left down", async () => {
      t.backend.submit([key(VK_RSHIFT, true)]);
      await t.backend.flush();
      const before = t.observedKeys().length;
      await t.backend.releaseAll();
      await until(() => t.observedKeys().length > before);
      expect(t.observedKeys().slice(before)).toEqual([{ vk: VK_RSHIFT, down: false }]);
    });

    test("every event kind is accepted without throwing; what cannot be expressed is counted", async () => {
      const before = t.backend.stats();
      expect(() => t.backend.submit(ONE_OF_EACH)).not.toThrow();
      await t.backend.flush();
      const after = t.backend.stats();
      expect(after.accepted - before.accepted).toBe(ONE_OF_EACH.length);
      const unsupported = (s: typeof after) => Object.values(s.unsupported).reduce((a, b) => a + (b ?? 0), 0);
      if (!t.backend.capabilities.gamepad) expect(unsupported(after) - unsupported(before)).toBeGreaterThan(0);
      expect(after.refusedBatches).toBe(before.refusedBatches);
    });

    test("close() is idempotent and later input is dropped, not thrown", async () => {
      await t.backend.close();
      await t.backend.close();
      expect(() => t.backend.submit([key(VK_A, true)])).not.toThrow();
      await t.backend.flush();
    });
  });
}
