/**
 * Benchmark of the input path (prints figures, asserts nothing):
 *  - decoder throughput over a mix of every packet type;
 *  - QMP delivery into a real QEMU (TCG, virtio keyboard/mouse/tablet):
 *    one event per command, awaited (latency of one command, p50/p99);
 *    bursts of key events submitted together (batching);
 *    a flood of relative motions submitted together (merging);
 *    and the QEMU-side count of input events from its trace, to check delivery.
 * Bounded: fixed counts, one QEMU, everything on 127.0.0.1 / a temp dir.
 *
 *   npm run bench:input
 */
import { decodeInputPacket } from "../../src/input/decode.ts";
import { encodeInputEvent } from "../../src/input/encode.ts";
import type { InputEvent } from "../../src/input/model.ts";
import { QmpInputBackend } from "../../src/input/qmp-backend.ts";
import { tempDir } from "../helpers/env.ts";
import { ONE_OF_EACH } from "../input/backend-contract.ts";
import { startQemu } from "../input/qemu.ts";

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] ?? 0;
const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;
const print = (o: Record<string, unknown>) => console.log(JSON.stringify(o));

// ---- decoder
{
  const events: InputEvent[] = [
    ...ONE_OF_EACH,
    { kind: "key", down: true, vk: 0x41, keyCode: 0x8041, modifiers: 0, flags: 0 },
    { kind: "key", down: false, vk: 0x41, keyCode: 0x8041, modifiers: 0, flags: 0 },
  ];
  const packets = events.map((e) => encodeInputEvent(e));
  const N = 1_000_000;
  for (let i = 0; i < 50_000; i++) decodeInputPacket(packets[i % packets.length] as Uint8Array);
  const t0 = performance.now();
  let accepted = 0;
  for (let i = 0; i < N; i++) if (decodeInputPacket(packets[i % packets.length] as Uint8Array).kind !== "rejected") accepted++;
  const ms = performance.now() - t0;
  print({ case: "decode-mix", packets: N, accepted, nsPerPacket: round((ms * 1e6) / N, 1), mPacketsPerS: round(N / ms / 1000, 2) });
}

// ---- QMP delivery
const dir = tempDir("neuron-input-bench-");
const vm = await startQemu(dir.path);
const backend = new QmpInputBackend({ socketPath: vm.socketPath });
try {
  await backend.open();
  const key = (down: boolean): InputEvent => ({ kind: "key", down, vk: 0x41, keyCode: 0x41, modifiers: 0, flags: 0 });

  // one event per command, each awaited
  const lat: number[] = [];
  const ONE = 2000;
  for (let i = 0; i < ONE; i++) {
    const t = performance.now();
    backend.submit([key(i % 2 === 0)]);
    await backend.flush();
    lat.push(performance.now() - t);
  }
  const total = lat.reduce((a, b) => a + b, 0);
  print({ case: "qmp-one-event-per-command", events: ONE, p50Ms: round(pct(lat, 50)), p99Ms: round(pct(lat, 99)), eventsPerS: Math.round(ONE / (total / 1000)) });

  // bursts of 32 key events submitted in one tick
  for (const burst of [8, 32, 128]) {
    const before = backend.stats();
    const BURSTS = 200;
    const t0 = performance.now();
    for (let b = 0; b < BURSTS; b++) {
      backend.submit(Array.from({ length: burst }, (_, i) => key(i % 2 === 0)));
      await backend.flush();
    }
    const ms = performance.now() - t0;
    const after = backend.stats();
    print({
      case: "qmp-key-bursts",
      burst,
      events: BURSTS * burst,
      commands: after.batches - before.batches,
      eventsPerS: Math.round((BURSTS * burst) / (ms / 1000)),
      msPerBurst: round(ms / BURSTS),
    });
  }

  // a flood of relative motions, submitted as they would arrive (several per tick) while commands are in flight
  {
    const before = backend.stats();
    const MOVES = 20_000;
    const t0 = performance.now();
    for (let i = 0; i < MOVES; i += 10) {
      backend.submit(Array.from({ length: 10 }, () => ({ kind: "mouseMoveRel" as const, dx: 1, dy: -1 })));
      if (i % 1000 === 0) await Bun.sleep(0);
    }
    await backend.flush();
    const ms = performance.now() - t0;
    const after = backend.stats();
    print({ case: "qmp-rel-flood-merged", moves: MOVES, commands: after.batches - before.batches, qmpEvents: after.delivered - before.delivered, ms: round(ms, 1) });
  }

  await backend.close();
  await Bun.sleep(50);
  const trace = vm.trace().filter((e) => e.ev !== "sync");
  const s = backend.stats();
  print({ case: "qmp-delivery-check", deliveredByBackend: s.delivered, seenByQemu: trace.length, refused: s.refusedBatches, dropped: s.dropped });
} finally {
  await backend.close();
  await vm.stop();
  dir.cleanup();
}
