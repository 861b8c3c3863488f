/**
 * End to end into a guest: input packets → InputSink → QMP backend → QEMU's
 * virtio keyboard / mouse / tablet → the guest kernel's evdev, read inside a
 * tiny Linux guest that prints each event to its serial console.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { encodeInputEvent } from "../../src/input/encode.ts";
import type { InputEvent } from "../../src/input/model.ts";
import { QmpInputBackend } from "../../src/input/qmp-backend.ts";
import { InputSink } from "../../src/input/service.ts";
import { silentLogger } from "../../src/log.ts";
import { tempDir } from "../helpers/env.ts";
import { inputGuest } from "./guest.ts";
import { QEMU, qemuAvailable, waitFor } from "./qemu.ts";

// evdev codes (linux/input-event-codes.h)
const EV_KEY = 1, EV_REL = 2, EV_ABS = 3;
const KEY_A = 30, KEY_B = 48, KEY_LEFTSHIFT = 42, BTN_LEFT = 0x110, BTN_SIDE = 0x113, BTN_EXTRA = 0x114;
const REL_X = 0, REL_Y = 1, REL_WHEEL = 8, ABS_X = 0, ABS_Y = 1;

const guest = qemuAvailable() ? inputGuest() : "qemu-system-x86_64 is not installed";
const skip = typeof guest === "string" ? guest : undefined;
if (skip) console.warn(`skipping guest input tests: ${skip}`);

interface GuestEvent {
  dev: string;
  type: number;
  code: number;
  value: number;
}

describe.skipIf(skip !== undefined)("input reaches a Linux guest's evdev devices", () => {
  const dir = tempDir("neuron-input-guest-");
  const consolePath = join(dir.path, "console.log");
  const tracePath = join(dir.path, "virtio.trace");
  const socketPath = join(dir.path, "vm.qmp");
  let proc: ReturnType<typeof Bun.spawn> | undefined;
  let backend: QmpInputBackend;
  let sink: InputSink;
  const devs = new Map<number, string>();

  const consoleLines = () => (existsSync(consolePath) ? readFileSync(consolePath, "utf8").split(/\r?\n/) : []);
  const events = (): GuestEvent[] =>
    consoleLines().flatMap((l) => {
      const m = l.match(/^EV (\d+) (\d+) (\d+) (-?\d+)/);
      return m ? [{ dev: devs.get(Number(m[1])) ?? "?", type: Number(m[2]), code: Number(m[3]), value: Number(m[4]) }] : [];
    });

  /** Deliver packets, then wait until the guest printed `n` more events; returns them. */
  async function send(evs: InputEvent[], n: number, ms = 20_000): Promise<GuestEvent[]> {
    const before = events().length;
    for (const e of evs) expect(sink.deliver(encodeInputEvent(e)).kind).not.toBe("rejected");
    await backend.flush();
    await waitFor(() => events().length >= before + n, ms, `${n} guest events`).catch((err) => {
      throw new Error(`${err.message}; got ${JSON.stringify(events().slice(before))}`);
    });
    await Bun.sleep(100); // anything beyond n would be a bug: let it show
    return events().slice(before);
  }

  beforeAll(async () => {
    if (typeof guest === "string") return;
    proc = Bun.spawn(
      [QEMU, "-accel", "tcg", "-machine", "q35", "-nodefaults", "-display", "none", "-m", "256", "-no-reboot",
        "-kernel", guest.kernel, "-initrd", guest.initrd, "-append", "console=ttyS0 quiet panic=-1",
        "-serial", `file:${consolePath}`, "-qmp", `unix:${socketPath},server=on,wait=off`,
        "-device", "virtio-keyboard-pci", "-device", "virtio-mouse-pci", "-device", "virtio-tablet-pci",
        "-trace", `enable=virtio_input_queue_full,file=${tracePath}`],
      { stdout: "ignore", stderr: "ignore" },
    );
    await waitFor(() => consoleLines().some((l) => l.startsWith("READY")), 90_000, "the guest to boot");
    for (const l of consoleLines()) {
      const m = l.match(/^DEV (\d+) (.*)$/);
      if (m) devs.set(Number(m[1]), (m[2] as string).trim());
    }
    backend = new QmpInputBackend({ socketPath });
    await backend.open();
    sink = new InputSink(backend, silentLogger);
  }, 120_000);

  afterAll(async () => {
    await backend?.close();
    proc?.kill();
    await proc?.exited;
    dir.cleanup();
  });

  test("the guest sees QEMU's virtio keyboard, mouse and tablet", () => {
    expect([...devs.values()]).toEqual(expect.arrayContaining(["QEMU Virtio Keyboard", "QEMU Virtio Mouse", "QEMU Virtio Tablet"]));
  });

  test("keys: VK codes arrive as the matching evdev key codes", async () => {
    const key = (vk: number, down: boolean): InputEvent => ({ kind: "key", down, vk, keyCode: 0x8000 | vk, modifiers: 0, flags: 0 });
    const got = await send([key(0xa0, true), key(0x41, true), key(0x41, false), key(0xa0, false)], 4);
    expect(got).toEqual([
      { dev: "QEMU Virtio Keyboard", type: EV_KEY, code: KEY_LEFTSHIFT, value: 1 },
      { dev: "QEMU Virtio Keyboard", type: EV_KEY, code: KEY_A, value: 1 },
      { dev: "QEMU Virtio Keyboard", type: EV_KEY, code: KEY_A, value: 0 },
      { dev: "QEMU Virtio Keyboard", type: EV_KEY, code: KEY_LEFTSHIFT, value: 0 },
    ]);
  }, 30_000);

  test("relative motion reaches the virtio mouse; absolute motion the tablet, scaled to 0..32767", async () => {
    const rel = await send([{ kind: "mouseMoveRel", dx: 5, dy: -3 }], 2);
    expect(rel).toEqual([
      { dev: "QEMU Virtio Mouse", type: EV_REL, code: REL_X, value: 5 },
      { dev: "QEMU Virtio Mouse", type: EV_REL, code: REL_Y, value: -3 },
    ]);
    const abs = await send([{ kind: "mouseMoveAbs", x: 1919, y: 539, width: 1920, height: 1080 }], 2);
    expect(abs).toEqual([
      { dev: "QEMU Virtio Tablet", type: EV_ABS, code: ABS_X, value: 32767 },
      { dev: "QEMU Virtio Tablet", type: EV_ABS, code: ABS_Y, value: 16368 },
    ]);
  }, 30_000);

  // Horizontal wheel: QEMU 7.2 accepts wheel-left/right over QMP, but its virtio pointer devices do
  // not pass them on (no REL_HWHEEL reaches the guest), so it is not checked here.
  test("buttons and the wheel arrive as BTN_* and REL_WHEEL", async () => {
    const got = await send(
      [
        { kind: "mouseButton", down: true, button: "left" },
        { kind: "mouseButton", down: false, button: "left" },
        { kind: "mouseButton", down: true, button: "x1" },
        { kind: "mouseButton", down: false, button: "x1" },
        { kind: "mouseButton", down: true, button: "x2" },
        { kind: "mouseButton", down: false, button: "x2" },
        { kind: "scroll", amount: -120 },
      ],
      7,
    );
    const seen = got.map(({ type, code, value }) => ({ type, code, value }));
    expect(seen).toEqual([
      { type: EV_KEY, code: BTN_LEFT, value: 1 },
      { type: EV_KEY, code: BTN_LEFT, value: 0 },
      { type: EV_KEY, code: BTN_SIDE, value: 1 },
      { type: EV_KEY, code: BTN_SIDE, value: 0 },
      { type: EV_KEY, code: BTN_EXTRA, value: 1 },
      { type: EV_KEY, code: BTN_EXTRA, value: 0 },
      { type: EV_REL, code: REL_WHEEL, value: -1 },
    ]);
    // one pointer device took them all
    expect(new Set(got.map((e) => e.dev)).size).toBe(1);
  }, 30_000);

  test("a burst of 150 key taps in one tick arrives whole: batches fit the guest's virtio queue", async () => {
    const taps: InputEvent[] = [];
    for (let i = 0; i < 150; i++) {
      taps.push({ kind: "key", down: true, vk: 0x42, keyCode: 0x42, modifiers: 0, flags: 0 });
      taps.push({ kind: "key", down: false, vk: 0x42, keyCode: 0x42, modifiers: 0, flags: 0 });
    }
    const got = await send(taps, 300, 60_000);
    expect(got.filter((e) => e.code === KEY_B).length).toBe(300);
    const overflow = existsSync(tracePath) ? readFileSync(tracePath, "utf8").split("\n").filter((l) => l.includes("queue_full")) : [];
    expect(overflow).toEqual([]);
  }, 90_000);
});
