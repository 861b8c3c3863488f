/**
 * Benchmark of the VM input API (prints figures, asserts nothing):
 *  - events/s through POST inject-input (in-process app.handle, batches of key taps) and
 *    through the input WebSocket (binary records over a real loopback socket), each as a
 *    ratio against the best baseline in the same run: the QMP backend fed directly;
 *  - injection latency from the API call to the guest's evdev (the line evprint prints on
 *    the serial console) per sink — PS/2, USB, virtio — in a real TCG guest, p50/p99,
 *    against the backend fed directly on the same guest.
 * Bounded: fixed counts, everything on 127.0.0.1 and a temp dir.
 *
 *   npm run bench:input-api
 */
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { resolveNativePath } from "../../ffi/native.ts";
import { createApp } from "../../src/api/app.ts";
import { startServer } from "../../src/api/server.ts";
import { usageKey } from "../../src/input/inject-convert.ts";
import { loadKeyTable } from "../../src/input/keymap.ts";
import { QmpInputBackend } from "../../src/input/qmp-backend.ts";
import { concat, encodeRecord } from "../../src/input/ws-codec.ts";
import { asRoot } from "../helpers/api.ts";
import { tempDir, testCore } from "../helpers/env.ts";
import { inputGuest } from "../input/guest.ts";
import { bootGuest } from "../input/guest-vm.ts";
import { QEMU, waitFor } from "../input/qemu.ts";

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] ?? 0;
const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;
const print = (o: Record<string, unknown>) => console.log(JSON.stringify(o));
const table = loadKeyTable(resolveNativePath({}));
const A = table.byName("KEY_A")!;

const dir = tempDir("neuron-input-api-bench-");
const qmpDir = join(dir.path, "qmp");
mkdirSync(qmpDir, { recursive: true });

// ---- throughput: a QEMU with only a virtio keyboard (no i8042: no PS/2 pacing), no guest
{
  const sock = join(qmpDir, "tp.qmp");
  const proc = Bun.spawn([QEMU, "-accel", "tcg", "-machine", "q35,i8042=off", "-nodefaults", "-display", "none", "-m", "64", "-qmp", `unix:${sock},server=on,wait=off`, "-device", "virtio-keyboard-pci"], { stdout: "ignore", stderr: "ignore" });
  await waitFor(() => existsSync(sock), 10_000, "QEMU");
  await Bun.sleep(100);
  const BATCH = 512;
  const ROUNDS = 40;
  const taps = (n: number) => Array.from({ length: n }, (_, i) => ({ type: "key" as const, usage: 0x04, down: i % 2 === 0 }));

  // baseline: the backend fed directly (the QMP cost alone)
  const direct = new QmpInputBackend({ socketPath: sock, reconnect: false });
  await direct.open();
  const evs = Array.from({ length: BATCH }, (_, i) => usageKey(A, i % 2 === 0));
  let t0 = performance.now();
  for (let r = 0; r < ROUNDS; r++) {
    direct.submit(evs);
    await direct.flush();
  }
  const directMs = performance.now() - t0;
  await direct.close();
  const directRate = (BATCH * ROUNDS) / (directMs / 1000);
  print({ case: "direct-qmp", events: BATCH * ROUNDS, eventsPerS: Math.round(directRate) });

  const ctx = testCore({ qmpDir, port: 0, gamestreamEnabled: false });
  const app = createApp(ctx.core);
  const body = JSON.stringify({ events: taps(BATCH) });
  const post = () => app.handle(asRoot(new Request("http://localhost/api/v1/vms/tp/inject-input", { method: "POST", headers: { "content-type": "application/json" }, body })));
  await post();
  t0 = performance.now();
  for (let r = 0; r < ROUNDS; r++) {
    const res = await post();
    if (res.status !== 200) throw new Error(`inject-input answered ${res.status}: ${await res.text()}`);
  }
  const apiMs = performance.now() - t0;
  const apiRate = (BATCH * ROUNDS) / (apiMs / 1000);
  print({ case: "api-inject-input", events: BATCH * ROUNDS, batch: BATCH, eventsPerS: Math.round(apiRate), vsDirect: round(apiRate / directRate, 2), msPerBatch: round(apiMs / ROUNDS, 2) });

  // the WebSocket: binary 8-byte key records, 512 a message, over loopback
  const server = await startServer(ctx.core);
  const token = ctx.core.auth.createToken("bench", "admin", "bench").token;
  const ws = new WebSocket(`${server.url.replace("http", "ws")}/api/v1/vms/tp/input`, { headers: { authorization: `Bearer ${token}` } } as unknown as string[]);
  await new Promise<void>((resolve, reject) => ((ws.onopen = () => resolve()), (ws.onerror = () => reject(new Error("ws")))));
  const msg = concat(Array.from({ length: BATCH }, (_, i) => encodeRecord.key(0x04, i % 2 === 0)));
  const hub = await ctx.core.input.hub("tp");
  const before = hub.backend.stats().delivered;
  t0 = performance.now();
  // the socket refuses a message whole while the queue is full (INPUT_BUSY): send as it drains
  for (let r = 0; r < ROUNDS; r++) {
    await waitFor(() => hub.qmp.queuedEvents + 2 * BATCH <= hub.qmp.queueCapacity, 60_000, "the queue to drain");
    ws.send(msg);
    await Bun.sleep(1);
  }
  await waitFor(() => hub.backend.stats().delivered - before >= BATCH * ROUNDS, 60_000, "WebSocket events delivered");
  await hub.backend.flush();
  const wsMs = performance.now() - t0;
  const wsRate = (BATCH * ROUNDS) / (wsMs / 1000);
  print({ case: "websocket-binary", events: BATCH * ROUNDS, perMessage: BATCH, eventsPerS: Math.round(wsRate), vsDirect: round(wsRate / directRate, 2) });
  ws.close();
  await server.stop();
  ctx.cleanup();
  proc.kill();
  await proc.exited;
}

// ---- latency API → guest evdev, per sink
const guest = inputGuest();
if (typeof guest === "string") {
  print({ case: "latency", skipped: guest });
} else {
  const sinks = {
    ps2: { devices: [] as string[], nevents: 2, machine: "q35" },
    usb: { devices: ["qemu-xhci", "usb-kbd"], nevents: 1, machine: "q35,i8042=off" },
    virtio: { devices: ["virtio-keyboard-pci"], nevents: 1, machine: "q35,i8042=off" },
  };
  const N = 30;
  for (const [sink, spec] of Object.entries(sinks)) {
    const g = await bootGuest(guest, qmpDir, `lat-${sink}`, spec.devices, spec.nevents, spec.machine);
    const ctx = testCore({ qmpDir, gamestreamEnabled: false });
    const app = createApp(ctx.core);
    const keys = () => g.events().filter((e) => e.type === 1 && e.code === A.evdev).length;
    const measure = async (send: (down: boolean) => Promise<unknown>) => {
      // warm-up tap: the first call opens the VM's input connection (QMP connect and probe)
      for (const down of [true, false]) {
        const n = keys();
        await send(down);
        await waitFor(() => keys() > n, 10_000, `${sink} warm-up`);
      }
      const lat: number[] = [];
      for (let i = 0; i < N; i++) {
        for (const down of [true, false]) {
          const n = keys();
          const t = performance.now();
          await send(down);
          await waitFor(() => keys() > n, 5000, `${sink} key`);
          lat.push(performance.now() - t);
        }
        await Bun.sleep(20);
      }
      return { p50: round(pct(lat, 50), 2), p99: round(pct(lat, 99), 2) };
    };
    const api = await measure((down) =>
      app.handle(asRoot(new Request(`http://localhost/api/v1/vms/lat-${sink}/inject-input`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ events: [{ type: "key", usage: 0x04, down }] }) }))),
    );
    await ctx.core.input.close();
    const direct = new QmpInputBackend({ socketPath: g.socketPath, reconnect: false });
    await direct.open();
    const base = await measure(async (down) => {
      direct.submit([usageKey(A, down)]);
      await direct.flush();
    });
    await direct.close();
    print({ case: `latency-${sink}`, samples: N * 2, apiP50Ms: api.p50, apiP99Ms: api.p99, directP50Ms: base.p50, directP99Ms: base.p99, p50VsDirect: round(api.p50 / base.p50, 2), note: "to the guest's evprint line on the serial console (TCG guest)" });
    ctx.cleanup();
    await g.stop();
  }
}
dir.cleanup();
