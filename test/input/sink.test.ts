/**
 * Wire to VM: input packets as a client sends them → InputSink → the backend
 * chosen by probing → a real QEMU, checked on QEMU's input trace. Hostile
 * packets are rejected, counted, logged a bounded number of times, and change
 * nothing on the QEMU side.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { selectInputBackend, type InputBackend } from "../../src/input/backend.ts";
import { InputMagic } from "../../src/input/model.ts";
import { QmpInputBackend } from "../../src/input/qmp-backend.ts";
import { InputSink } from "../../src/input/service.ts";
import { createLogger } from "../../src/log.ts";
import { tempDir } from "../helpers/env.ts";
import { packet, prng, w } from "./packets.ts";
import { qemuAvailable, startQemu, waitFor, type TestQemu } from "./qemu.ts";

const skip = !qemuAvailable();
if (skip) console.warn("skipping input sink tests: qemu-system-x86_64 is not installed");

describe.skipIf(skip)("input packets from the wire reach a real QEMU", () => {
  const dir = tempDir("neuron-input-sink-");
  let vm: TestQemu;
  let backend: InputBackend;
  let sink: InputSink;
  const logLines: string[] = [];

  beforeAll(async () => {
    vm = await startQemu(dir.path);
    const log = createLogger({ level: "debug", format: "json", write: (l) => logLines.push(l) });
    backend = await selectInputBackend(
      [
        { name: "qmp-missing", create: () => new QmpInputBackend({ socketPath: `${dir.path}/absent.qmp`, reconnect: false }) },
        { name: "qmp", create: () => new QmpInputBackend({ socketPath: vm.socketPath, log }) },
      ],
      log,
    );
    sink = new InputSink(backend, log.child({ session: "test" }));
  });

  afterAll(async () => {
    await backend?.close();
    await vm?.stop();
    dir.cleanup();
  });

  const keys = () => vm.trace().filter((e) => e.ev !== "sync");

  test("probing skipped the unusable candidate and picked the working one", () => {
    expect(backend.name).toBe("qmp");
    expect(logLines.some((l) => l.includes("input backend selected") && l.includes('"qmp"'))).toBe(true);
  });

  test("key, motion, button and scroll packets arrive as QEMU input events", async () => {
    const before = keys().length;
    const packets = [
      packet(InputMagic.keyDown, w().u8(0).le16(0x8000 | 0x5a).u8(0).le16(0).done()), // VK_Z
      packet(InputMagic.keyUp, w().u8(0).le16(0x8000 | 0x5a).u8(0).le16(0).done()),
      packet(InputMagic.mouseMoveRel, w().be16(-7).be16(9).done()),
      packet(InputMagic.mouseButtonDown, [3]),
      packet(InputMagic.mouseButtonUp, [3]),
      packet(InputMagic.scroll, w().be16(-120).be16(-120).be16(0).done()),
    ];
    for (const p of packets) expect(sink.deliver(p).kind).not.toBe("rejected");
    await backend.flush();
    await waitFor(() => keys().length >= before + 8, 3000, "8 input events");
    expect(keys().slice(before)).toEqual([
      { ev: "key", qcode: "z", down: true },
      { ev: "key", qcode: "z", down: false },
      { ev: "rel", axis: "x", value: -7 },
      { ev: "rel", axis: "y", value: 9 },
      { ev: "btn", button: "right", down: true },
      { ev: "btn", button: "right", down: false },
      { ev: "btn", button: "wheel-down", down: true },
      { ev: "btn", button: "wheel-down", down: false },
    ]);
    expect(sink.stats()).toMatchObject({ packets: 6, events: 6, rejected: {} });
  });

  test("hostile packets: rejected, counted, logged boundedly, nothing reaches QEMU", async () => {
    const before = keys().length;
    const warnBefore = logLines.filter((l) => l.includes("input packet rejected")).length;
    const rnd = prng(7);
    let rejected = 0;
    const N = 2000;
    for (let i = 0; i < N; i++) {
      // wrong sizes, wrong magics, truncations of a key packet
      const base = packet(InputMagic.keyDown, w().u8(0).le16(0x41).u8(0).le16(0).done());
      const b = base.slice(0, 1 + Math.floor(rnd() * (base.length - 1)));
      const r = sink.deliver(b);
      if (r.kind === "rejected") rejected++;
    }
    expect(rejected).toBe(N);
    expect(sink.deliver(packet(0x99, [1, 2, 3])).kind).toBe("rejected");
    expect(sink.deliver(new Uint8Array(4096)).kind).toBe("rejected");
    await backend.flush();
    expect(keys().length).toBe(before);
    const s = sink.stats();
    expect((s.rejected.TRUNCATED ?? 0) + (s.rejected.BAD_SIZE ?? 0) + (s.rejected.UNKNOWN_MAGIC ?? 0) + (s.rejected.TOO_LARGE ?? 0)).toBe(N + 2);
    const warned = logLines.filter((l) => l.includes("input packet rejected")).length - warnBefore;
    expect(warned).toBeGreaterThan(0);
    expect(warned).toBeLessThanOrEqual(12); // first 10, then every 1000th
    // and the session still works
    sink.deliver(packet(InputMagic.keyDown, w().u8(0).le16(0x20).u8(0).le16(0).done()));
    await backend.flush();
    await waitFor(() => keys().length > before, 3000, "space down");
    expect(keys().slice(before)).toEqual([{ ev: "key", qcode: "spc", down: true }]);
  });

  test("session end releases what the client left pressed", async () => {
    sink.deliver(packet(InputMagic.mouseButtonDown, [1]));
    await backend.flush();
    const before = keys().length;
    await sink.end();
    await waitFor(() => keys().length >= before + 2, 3000, "releases");
    expect(keys().slice(before)).toEqual([
      { ev: "key", qcode: "spc", down: false },
      { ev: "btn", button: "left", down: false },
    ]);
  });
});
