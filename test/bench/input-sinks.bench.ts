/**
 * Benchmark of input per sink into one real TCG guest (prints figures, asserts nothing):
 * PS/2 (i8042), USB (usb-kbd), virtio (virtio-keyboard) through the VM's QMP monitor, and
 * the agent sink (a uhid keyboard the guest agent creates):
 *  - injection latency from the API call to the guest's evdev timestamp, p50/p99: the
 *    guest's CLOCK_REALTIME is related to the host's by agent pings (offset from the
 *    fastest of 20 round trips; its error bound is printed), then each tap's evdev time
 *    is compared with the moment the host sent it;
 *  - events/s through POST inject-input and through the input WebSocket (binary records),
 *    until the events reached the guest's device;
 * each as a ratio against the best sink of the same run. The sinks take turns in the same
 * guest: USB first (QEMU activates usb-kbd at creation), PS/2 once usb-kbd is unplugged,
 * virtio once its driver is loaded, then the agent's keyboard; last the pads' latency through
 * the agent: its uinput pad and its uhid DualSense.
 *
 *   npm run bench:input-sinks
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { resolveNativePath } from "../../ffi/native.ts";
import type { Core } from "../../src/core.ts";
import { createApp } from "../../src/api/app.ts";
import { startServer } from "../../src/api/server.ts";
import { agentClientLink } from "../../src/input/agent-link.ts";
import { QmpClient } from "../../src/input/qmp-client.ts";
import type { PadDevice, SinkPins } from "../../src/input/sinks.ts";
import { VmInputService } from "../../src/input/vm-input.ts";
import { concat, encodeRecord } from "../../src/input/ws-codec.ts";
import { silentLogger } from "../../src/log.ts";
import { asRoot } from "../helpers/api.ts";
import { tempDir, testCore } from "../helpers/env.ts";
import { bootAgentGuest } from "../guest/agent-guest.ts";
import { capture, CAPTURE_AGENT_CONFIG, readNodes } from "../guest/evdev-capture.ts";
import { hidModules } from "../guest/hid-modules.ts";
import { findKernel, tinyGuestUnavailable } from "../guest/tiny-guest.ts";

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] ?? 0;
const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;
const print = (o: Record<string, unknown>) => console.log(JSON.stringify(o));
const nowMs = () => performance.timeOrigin + performance.now();
const EV_KEY = 1, KEY_A = 30, BTN_SOUTH = 0x130;
const TAPS = 30;
const BATCH = 64;
const ROUNDS = 2;

const kernel = findKernel();
const mods = typeof kernel === "string" ? kernel : (tinyGuestUnavailable() ?? hidModules(kernel, { usb: true }));
if (typeof mods === "string" || typeof kernel === "string") {
  print({ case: "input-sinks", skipped: typeof mods === "string" ? mods : kernel });
  process.exit(0);
}
if (!kernel.modules.virtio_input) {
  print({ case: "input-sinks", skipped: "the test kernel lacks virtio_input.ko" });
  process.exit(0);
}

const dir = tempDir("neuron-input-sinks-bench-");
const qmpDir = join(dir.path, "qmp");
mkdirSync(qmpDir);
const VM = "sinks";
const guest = await bootAgentGuest({
  work: dir.path,
  kernel,
  config: CAPTURE_AGENT_CONFIG,
  files: { ...mods.files, "modules/virtio_input.ko": { host: kernel.modules.virtio_input }, ...(kernel.modules.uinput ? { "modules/uinput.ko": { host: kernel.modules.uinput } } : {}) },
  init: [...mods.init, ...(kernel.modules.uinput ? ["insmod /modules/uinput.ko"] : [])],
  qemu: ["-qmp", `unix:${join(qmpDir, `${VM}.qmp`)},server=on,wait=off`, "-device", "qemu-xhci", "-device", "usb-kbd,id=ukbd", "-device", "virtio-keyboard-pci,id=vkbd"],
});
const client = guest.client;
const ctx = testCore({ qmpDir, port: 0, gamestreamEnabled: false });
const token = ctx.core.auth.createToken("bench", "admin", "bench").token;

/** guest clock − host clock (ms), from the fastest of n agent pings. */
async function clockOffset(n = 20): Promise<{ offset: number; errorMs: number }> {
  let best = { rtt: Infinity, offset: 0 };
  for (let i = 0; i < n; i++) {
    const t0 = nowMs();
    const { time } = await client.request<{ time: number }>("ping");
    const t1 = nowMs();
    if (t1 - t0 < best.rtt) best = { rtt: t1 - t0, offset: time + 0.5 - (t0 + t1) / 2 }; // Date.now() truncates: +0.5 ms
  }
  return { offset: best.offset, errorMs: round(best.rtt / 2 + 0.5) };
}

async function waitUntil(fn: () => Promise<boolean> | boolean, ms: number, what: string): Promise<void> {
  for (const until = Date.now() + ms; !(await fn()); await Bun.sleep(50)) if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
}

const nodeOf = async (name: string) => {
  let node: string | undefined;
  await waitUntil(async () => !!(node = [...(await capture(client)).names].find(([, n]) => n === name)?.[0]), 20_000, `the device ${name}`);
  return node!;
};

interface SinkResult {
  sink: string;
  p50: number;
  p99: number;
  apiRate: number;
  wsRate: number;
}
const results: SinkResult[] = [];

async function measure(sink: string, deviceName: string, pins: SinkPins): Promise<void> {
  const input = new VmInputService({
    qmpDir,
    settings: { keymapDir: "/usr/share/qemu/keymaps", layouts: {}, frameMs: 0, keyRepeat: "guest", pins: { [VM]: pins } },
    nativePath: () => resolveNativePath({}),
    log: silentLogger,
    gamepadLink: () => agentClientLink(client),
  });
  const core = { ...ctx.core, input } as Core;
  const app = createApp(core);
  const post = (events: unknown[]) =>
    app.handle(asRoot(new Request(`http://localhost/api/v1/vms/${VM}/inject-input`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ events }) })));
  // the hub's own report says where keys go (a guest driver may take a moment to start)
  let why = "";
  await waitUntil(async () => {
    const routed = (await input.probe(VM)).sinks.find((s) => s.eventClass === "keyboard")!;
    why = `${routed.sink}: ${routed.why}`;
    return routed.sink === sink;
  }, 10_000, `keyboard input to go to ${sink} (it goes to ${why})`);
  const node = await nodeOf(deviceName);
  await readNodes(client, [`/dev/input/${node}`]);
  const keys = async () => ((await capture(client)).events.get(node) ?? []).filter((e) => e.type === EV_KEY && e.code === KEY_A && e.value !== 2);

  // latency: taps 25 ms apart, each timed from the host's send to the guest's evdev stamp
  const { offset, errorMs } = await clockOffset();
  const sent: number[] = [];
  for (let i = 0; i < TAPS; i++) {
    for (const down of [true, false]) {
      sent.push(nowMs());
      const res = await post([{ type: "key", usage: 0x04, down }]);
      if (res.status !== 200) throw new Error(`inject-input answered ${res.status}: ${await res.text()}`);
      await Bun.sleep(25);
    }
  }
  await waitUntil(async () => (await keys()).length >= sent.length, 20_000, `${sink}: the taps in the guest`);
  const got = (await keys()).slice(0, sent.length);
  const lat = got.map((e, i) => e.at / 1000 - offset - sent[i]!);
  const before = (await keys()).length;

  // throughput: inject-input batches, then WebSocket messages, each until the guest has every key
  const taps = Array.from({ length: BATCH }, (_, i) => ({ type: "key" as const, usage: 0x04, down: i % 2 === 0 }));
  let t0 = performance.now();
  for (let r = 0; r < ROUNDS; r++) {
    const res = await post(taps);
    if (res.status !== 200) throw new Error(`inject-input answered ${res.status}: ${await res.text()}`);
  }
  let n = 0;
  await waitUntil(async () => (n = (await keys()).length) >= before + BATCH * ROUNDS, 60_000, `${sink}: the API batches in the guest (${n - before} of ${BATCH * ROUNDS} keys; stats ${JSON.stringify((await input.hub(VM)).backend.stats())})`);
  const apiRate = (BATCH * ROUNDS) / ((performance.now() - t0) / 1000);

  const server = await startServer(core);
  const ws = new WebSocket(`${server.url.replace("http", "ws")}/api/v1/vms/${VM}/input`, { headers: { authorization: `Bearer ${token}` } } as unknown as string[]);
  const errors: string[] = [];
  ws.onmessage = (m) => {
    if (String(m.data).includes('"error"')) errors.push(String(m.data));
  };
  await new Promise<void>((resolve, reject) => ((ws.onopen = () => resolve()), (ws.onerror = () => reject(new Error("ws")))));
  const msg = concat(Array.from({ length: BATCH }, (_, i) => encodeRecord.key(0x04, i % 2 === 0)));
  const mid = (await keys()).length;
  const hub = await input.hub(VM);
  t0 = performance.now();
  for (let r = 0; r < ROUNDS; r++) {
    await waitUntil(() => hub.qmp.queuedEvents + 2 * BATCH <= hub.qmp.queueCapacity, 60_000, "the QMP queue to drain");
    ws.send(msg);
    await hub.backend.flush();
  }
  await waitUntil(async () => (await keys()).length >= mid + BATCH * ROUNDS, 60_000, `${sink}: the WebSocket messages in the guest (${errors.join("; ")})`);
  const wsRate = (BATCH * ROUNDS) / ((performance.now() - t0) / 1000);
  ws.close();
  await server.stop();
  await input.close();
  const r = { sink, p50: round(pct(lat, 50)), p99: round(pct(lat, 99)), apiRate: Math.round(apiRate), wsRate: Math.round(wsRate) };
  results.push(r);
  print({ case: `sink-${sink}`, device: deviceName, samples: lat.length, latencyP50Ms: r.p50, latencyP99Ms: r.p99, clockErrorMs: errorMs, apiEventsPerS: r.apiRate, wsEventsPerS: r.wsRate });
}

/** A pad's latency (API → the guest's evdev stamp of BTN_SOUTH): uinput or uhid pads through the agent. */
async function measurePad(label: string, padDevice: PadDevice, deviceName: string): Promise<void> {
  const input = new VmInputService({
    qmpDir,
    settings: { keymapDir: "/usr/share/qemu/keymaps", layouts: {}, frameMs: 0, keyRepeat: "guest", pins: {}, padDevice: { [VM]: padDevice } },
    nativePath: () => resolveNativePath({}),
    log: silentLogger,
    gamepadLink: () => agentClientLink(client),
  });
  const app = createApp({ ...ctx.core, input } as Core);
  const post = (buttons: number) =>
    app.handle(asRoot(new Request(`http://localhost/api/v1/vms/${VM}/inject-input`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ events: [{ type: "gamepad", pad: 0, buttons }] }) })));
  await post(0); // the pad is made on its first state
  const node = await nodeOf(deviceName);
  await readNodes(client, [`/dev/input/${node}`]);
  const presses = async () => ((await capture(client)).events.get(node) ?? []).filter((e) => e.type === EV_KEY && e.code === BTN_SOUTH);
  const { offset, errorMs } = await clockOffset();
  const sent: number[] = [];
  for (let i = 0; i < TAPS; i++) {
    for (const buttons of [0x1000, 0]) {
      sent.push(nowMs());
      const res = await post(buttons);
      if (res.status !== 200) throw new Error(`inject-input answered ${res.status}: ${await res.text()}`);
      await Bun.sleep(25);
    }
  }
  await waitUntil(async () => (await presses()).length >= sent.length, 20_000, `${label}: the presses in the guest`);
  const lat = (await presses()).slice(0, sent.length).map((e, i) => e.at / 1000 - offset - sent[i]!);
  await input.close();
  print({ case: `pad-${label}`, device: deviceName, samples: lat.length, latencyP50Ms: round(pct(lat, 50)), latencyP99Ms: round(pct(lat, 99)), clockErrorMs: errorMs });
}

try {
  await measure("usb", "QEMU QEMU USB Keyboard", {});
  // unplug the USB keyboard: QEMU's keys go to the i8042 again
  const qmp = new QmpClient({ socketPath: join(qmpDir, `${VM}.qmp`) });
  await qmp.connect();
  await qmp.execute("device_del", { id: "ukbd" });
  qmp.close(); // QEMU's monitor serves one client at a time: the hub's is next
  await waitUntil(async () => ![...(await capture(client)).names.values()].includes("QEMU QEMU USB Keyboard"), 20_000, "usb-kbd to go");
  await measure("ps2", "AT Translated Set 2 keyboard", {});
  // the virtio driver starts: QEMU routes keys to the virtio keyboard
  await client.request("launch_app", { path: "/bin/sh", args: ["-c", "insmod /modules/virtio_input.ko"] });
  await nodeOf("QEMU Virtio Keyboard");
  await measure("virtio", "QEMU Virtio Keyboard", {});
  await measure("agent", "NeuronOS Keyboard", { keyboard: "agent" });
  await measurePad("agent-uinput", "uinput", "NeuronOS Virtual Gamepad 0");
  await measurePad("agent-uhid-dualsense", "dualsense", "Sony Interactive Entertainment DualSense Wireless Controller");
  const bestP50 = Math.min(...results.map((r) => r.p50));
  const bestApi = Math.max(...results.map((r) => r.apiRate));
  const bestWs = Math.max(...results.map((r) => r.wsRate));
  for (const r of results)
    print({ case: `ratios-${r.sink}`, p50VsBest: round(r.p50 / bestP50), apiVsBest: round(r.apiRate / bestApi), wsVsBest: round(r.wsRate / bestWs), note: "latency: lower is better; rates: higher is better; TCG guest" });
} finally {
  await guest.stop();
  ctx.cleanup();
  dir.cleanup();
}
