/**
 * Every key of the native table through each keyboard QEMU offers — PS/2 (i8042), USB
 * (usb-kbd) and virtio — into a real Linux guest: each must arrive as the row's evdev code.
 * Keys a device cannot carry (sinks.ts SINK_KEY_GAPS, found by this test) are never sent to it.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { resolveNativePath } from "../../ffi/native.ts";
import { loadKeyTable } from "../../src/input/keymap.ts";
import { usageKey } from "../../src/input/inject-convert.ts";
import { QmpInputBackend } from "../../src/input/qmp-backend.ts";
import { SINK_KEY_GAPS } from "../../src/input/sinks.ts";
import { VmInputService } from "../../src/input/vm-input.ts";
import { silentLogger } from "../../src/log.ts";
import { tempDir } from "../helpers/env.ts";
import { inputGuest } from "./guest.ts";
import { bootGuest, type BootedGuest } from "./guest-vm.ts";
import { qemuAvailable, waitFor } from "./qemu.ts";

const EV_KEY = 1;
const guest = qemuAvailable() ? inputGuest() : "qemu-system-x86_64 is not installed";
const skip = typeof guest === "string" ? guest : undefined;
if (skip) console.warn(`skipping guest key tests: ${skip}`);

const table = loadKeyTable(resolveNativePath({}));
const sendable = table.rows.filter((r) => r.qcode !== null);

const SINKS = {
  ps2: { devices: [] as string[], nevents: 2, name: /AT Translated Set 2 keyboard/, mouse: /PS\/2/, tablet: null },
  usb: { devices: ["qemu-xhci", "usb-kbd", "usb-mouse", "usb-tablet"], nevents: 5, name: /QEMU.*USB Keyboard/, mouse: /QEMU USB Mouse/, tablet: /QEMU USB Tablet/ },
  virtio: { devices: ["virtio-keyboard-pci", "virtio-mouse-pci", "virtio-tablet-pci"], nevents: 5, name: /QEMU Virtio Keyboard/, mouse: /QEMU Virtio Mouse/, tablet: /QEMU Virtio Tablet/ },
} as const;
const EV_REL = 2, EV_ABS = 3, BTN_LEFT = 0x110, BTN_RIGHT = 0x111, REL_X = 0, REL_Y = 1, REL_WHEEL = 8, ABS_X = 0, ABS_Y = 1;

type Sink = keyof typeof SINKS;

describe.skipIf(skip !== undefined)("every key of the table reaches a Linux guest through PS/2, USB and virtio", () => {
  const dir = tempDir("neuron-guest-keys-");
  const guests = new Map<Sink, BootedGuest>();
  const backends = new Map<Sink, QmpInputBackend>();

  beforeAll(async () => {
    if (typeof guest === "string") return;
    const booted = await Promise.all((Object.keys(SINKS) as Sink[]).map(async (s) => [s, await bootGuest(guest, dir.path, s, [...SINKS[s].devices], SINKS[s].nevents)] as const));
    for (const [s, g] of booted) {
      guests.set(s, g);
      const keyBytes = new Map(table.rows.flatMap((r) => (r.qcode ? [[r.qcode, r.set1.make.split(" ").length] as const] : [])));
      const b = new QmpInputBackend({ socketPath: g.socketPath, reconnect: false, keyBytes });
      await b.open();
      backends.set(s, b);
    }
  }, 180_000);

  afterAll(async () => {
    for (const b of backends.values()) await b.close();
    for (const g of guests.values()) await g.stop();
    dir.cleanup();
  });

  for (const sink of Object.keys(SINKS) as Sink[]) {
    test(`${sink}: every key the device can carry arrives as its evdev code, in order, from one burst`, async () => {
      const g = guests.get(sink)!;
      const b = backends.get(sink)!;
      const gaps = SINK_KEY_GAPS[sink];
      const keys = () => g.events().filter((e) => e.type === EV_KEY);
      const before = keys().length;
      const unmappedBefore = b.stats().unmappedKeys;
      // one submit: the backend paces PS/2 and USB so their 16-entry queues never overflow
      b.submit(sendable.flatMap((r) => [usageKey(r, true), usageKey(r, false)]));
      await b.flush();
      const want = sendable.filter((r) => !gaps.has(r.evdev)).flatMap((r) => [`${r.name}=1`, `${r.name}=0`]);
      await waitFor(() => keys().length >= before + want.length, 30_000, `${sink}: ${want.length} key events`).catch(() => {});
      await Bun.sleep(200); // anything extra shows up
      const got = keys().slice(before);
      const name = (code: number) => table.byEvdev(code)?.name ?? `code ${code}`;
      expect(got.map((e) => `${name(e.code)}=${e.value}`)).toEqual(want);
      expect(got.every((e) => SINKS[sink].name.test(e.dev))).toBe(true);
      // the keys the device cannot carry were counted, never sent
      expect(b.stats().unmappedKeys - unmappedBefore).toBe(2 * sendable.filter((r) => gaps.has(r.evdev)).length);
    }, 60_000);
  }

  for (const sink of Object.keys(SINKS) as Sink[]) {
    test(`${sink}: relative motion reaches its mouse, buttons and the wheel the active pointer, absolute motion its tablet`, async () => {
      const g = guests.get(sink)!;
      const b = backends.get(sink)!;
      const spec = SINKS[sink];
      const before = g.events().length;
      b.submit([
        { kind: "mouseMoveRel", dx: 7, dy: -4 },
        { kind: "mouseButton", button: "right", down: true },
        { kind: "mouseButton", button: "right", down: false },
        { kind: "scroll", amount: 120 },
      ]);
      await b.flush();
      await waitFor(() => g.events().filter((e) => spec.mouse.test(e.dev)).length - 0 >= 1 && g.events().length >= before + 5, 10_000, `${sink} pointer events`).catch(() => {});
      await Bun.sleep(300);
      const got = g.events().slice(before).filter((e) => spec.mouse.test(e.dev)).map(({ type, code, value }) => ({ type, code, value }));
      // PS/2 motion arrives in the mouse's own steps; its sum is the delta
      const sum = (code: number) => got.filter((e) => e.type === EV_REL && e.code === code).reduce((n, e) => n + e.value, 0);
      expect({ x: sum(REL_X), y: sum(REL_Y) }).toEqual({ x: 7, y: -4 });
      // the wheel, like the buttons, goes to the active pointer
      const wheel = g.events().slice(before).filter((e) => e.type === EV_REL && e.code === REL_WHEEL && (spec.mouse.test(e.dev) || (spec.tablet !== null && spec.tablet.test(e.dev))));
      expect(wheel.reduce((n, e) => n + e.value, 0)).toBe(1);
      // buttons go to the pointer QEMU activated last (the tablet, once its driver runs), not
      // necessarily the one that moves: QEMU routes each event class to its own active handler
      const pointer = (d: string) => spec.mouse.test(d) || (spec.tablet !== null && spec.tablet.test(d));
      const buttons = g.events().slice(before).filter((e) => e.type === EV_KEY && pointer(e.dev)).map(({ code, value }) => [code, value]);
      expect(buttons).toEqual([[BTN_RIGHT, 1], [BTN_RIGHT, 0]]);
      if (spec.tablet) {
        const t0 = g.events().length;
        b.submit([{ kind: "mouseMoveAbs", x: 16384, y: 32767, width: 32768, height: 32768 }]);
        await b.flush();
        await waitFor(() => g.events().slice(t0).filter((e) => e.type === EV_ABS).length >= 2, 10_000, `${sink} tablet`);
        const abs = g.events().slice(t0).filter((e) => e.type === EV_ABS);
        expect(abs.every((e) => spec.tablet!.test(e.dev))).toBe(true);
        expect(abs.map((e) => [e.code, e.value])).toEqual([[ABS_X, 16384], [ABS_Y, 32767]]);
      }
    }, 30_000);
  }

  test("a connection that ends releases what it held, in the guest (no stuck keys or buttons)", async () => {
    const g = guests.get("virtio")!;
    const svc = new VmInputService({ qmpDir: dir.path, settings: { keymapDir: "/usr/share/qemu/keymaps", layouts: {}, frameMs: 0, keyRepeat: "guest", pins: {} }, nativePath: () => resolveNativePath({}), log: silentLogger });
    // the suite's own backend holds the monitor: free it for the service's hub
    await backends.get("virtio")!.close();
    try {
      const { conn } = await svc.connect("virtio");
      const before = g.events().length;
      const a = table.byName("KEY_A")!;
      conn.apply([usageKey(a, true), { kind: "mouseButton", button: "left", down: true }]);
      await waitFor(() => g.events().length >= before + 2, 10_000, "the presses");
      await conn.end();
      await waitFor(() => g.events().length >= before + 4, 10_000, "the releases");
      // per device in order (evprint interleaves devices as it polls them)
      const of = (code: number) => g.events().slice(before).filter((e) => e.type === EV_KEY && e.code === code).map((e) => e.value);
      expect({ key: of(a.evdev), button: of(BTN_LEFT) }).toEqual({ key: [1, 0], button: [1, 0] });
    } finally {
      await svc.close();
    }
  }, 30_000);

  test("the sinks report matches where keys went", () => {
    const kb = (s: Sink) => backends.get(s)!.sinks().find((x) => x.eventClass === "keyboard")!.sink;
    expect({ ps2: kb("ps2"), usb: kb("usb"), virtio: kb("virtio") }).toEqual({ ps2: "ps2", usb: "usb", virtio: "virtio" });
  });
});
