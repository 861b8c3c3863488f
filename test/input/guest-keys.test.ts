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
  ps2: { devices: [] as string[], nevents: 2, name: /AT Translated Set 2 keyboard/ },
  usb: { devices: ["qemu-xhci", "usb-kbd"], nevents: 3, name: /QEMU.*USB Keyboard/ },
  virtio: { devices: ["virtio-keyboard-pci"], nevents: 3, name: /QEMU Virtio Keyboard/ },
} as const;

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

  test("the sinks report matches where keys went", () => {
    const kb = (s: Sink) => backends.get(s)!.sinks().find((x) => x.eventClass === "keyboard")!.sink;
    expect({ ps2: kb("ps2"), usb: kb("usb"), virtio: kb("virtio") }).toEqual({ ps2: "ps2", usb: "usb", virtio: "virtio" });
  });
});
