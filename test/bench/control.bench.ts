/**
 * Control stream benchmark (prints figures, asserts nothing), against the GameStream host on
 * 127.0.0.1 with the libenet test peer, all in this process (both poll loops share one thread):
 *   - IDR request → "idr-request" event latency (client send to host event), p50/p99;
 *   - sustained encrypted ping throughput handled by the host (messages/s) under the rate bound;
 *   - host CPU while idle with one connected client pinging every 100 ms (the poll loop's cost).
 *
 *   npm run bench:control     (BENCH_IDR, default 500)
 */
import { ControlType } from "../../src/gamestream/control/envelope.ts";
import { ControlTestClient } from "../gamestream/control-client.ts";
import { controlHost, launchSession } from "../gamestream/control-helpers.ts";

const N = Math.min(Number(process.env.BENCH_IDR ?? 500), 5000);
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;

const host = controlHost({ peerTimeoutMs: 10_000 });
let client: ControlTestClient | null = null;
try {
  await host.service.start();
  const { key, session } = launchSession(host);
  client = new ControlTestClient(key);
  if (!(await client.connect(host.service.ports.control, session.connectData))) throw new Error("control connect failed");
  const control = host.service.control!;

  let idrAt = 0;
  control.subscribe((e) => {
    if (e.type === "idr-request") idrAt = performance.now();
  });
  const lat: number[] = [];
  for (let i = 0; i < N; i++) {
    idrAt = 0;
    const t0 = performance.now();
    client.send(ControlType.IDR_REQUEST);
    while (idrAt === 0) await Bun.sleep(0);
    lat.push(idrAt - t0);
  }
  console.log(JSON.stringify({ case: "idr-request-to-event", n: N, p50Ms: round(pct(lat, 50)), p99Ms: round(pct(lat, 99)) }));

  // Throughput: 3,000 pings per 1 s window (under the 4,000/s bound) for 3 s.
  const before = control.stats(session.id)!.pings;
  const t0 = performance.now();
  for (let s = 0; s < 3; s++) {
    for (let i = 0; i < 3000; i++) client.ping();
    await Bun.sleep(1000);
  }
  const handled = control.stats(session.id)!.pings - before;
  console.log(JSON.stringify({ case: "ping-throughput", sent: 9000, handled, seconds: round((performance.now() - t0) / 1000, 2), dropped: control.stats(session.id)!.dropped }));

  // Idle cost: one ping per 100 ms for 5 s (what a client sends), CPU of this whole process.
  const cpu0 = process.cpuUsage();
  const w0 = performance.now();
  for (let i = 0; i < 50; i++) {
    client.ping();
    await Bun.sleep(100);
  }
  const cpu = process.cpuUsage(cpu0);
  const wall = performance.now() - w0;
  console.log(JSON.stringify({ case: "idle-session-cpu", seconds: round(wall / 1000, 2), cpuPct: round(((cpu.user + cpu.system) / 1000 / wall) * 100, 2), note: "host and test peer poll loops together" }));
} finally {
  client?.close();
  await host.close();
}
