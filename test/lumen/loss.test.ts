/**
 * Adaptive FEC goals of lumen/1: every frame at 20 % random loss, and at 10 % loss in bursts of
 * 10 datagrams (simulated by the client's receiver), then 20 % random loss by netfilter inside
 * a network namespace the test makes (iptables statistic match; no netem on this kernel).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { LumenClient } from "../../src/lumen/client.ts";
import type { LumenHost } from "../../src/lumen/host.ts";
import { buildNative, enterPinWhenAsked, loadNatives, startHost, tempDir } from "./helpers.ts";

let host: LumenHost;
let state: ReturnType<typeof tempDir>;

beforeAll(async () => {
  buildNative();
  host = await startHost();
  state = tempDir();
  const c = new LumenClient({ host: "127.0.0.1", port: host.port, stateDir: state.path, pin: "8642", mode: { width: 320, height: 240, fps: 60 }, natives: loadNatives() });
  await Promise.all([c.connect(), enterPinWhenAsked(host, "8642")]);
  c.close();
});
afterAll(async () => {
  await host?.stop();
  state?.[Symbol.dispose]();
});

async function lossy(loss: number, burst: number) {
  const c = new LumenClient({ host: "127.0.0.1", port: host.port, stateDir: state.path, mode: { width: 320, height: 240, fps: 60 }, natives: loadNatives(), loss, burst, seed: 42 });
  await c.connect();
  const r = await c.stream(2);
  c.close();
  return r;
}

describe("adaptive FEC", () => {
  test("20 % random loss: every frame reassembled, many by FEC", async () => {
    const r = await lossy(0.2, 1);
    expect(r.droppedSim).toBeGreaterThan(100);
    expect(r.framesReceived).toBe(r.framesSent);
    expect(r.framesRecovered).toBeGreaterThan(r.framesSent / 4);
    expect(r.framesDecodable).toBe(r.framesReceived);
  }, 30_000);

  test("10 % loss in bursts of 10: every frame reassembled", async () => {
    const r = await lossy(0.1, 10);
    expect(r.droppedSim).toBeGreaterThan(100);
    expect(r.framesReceived).toBe(r.framesSent);
    expect(r.framesRecovered).toBeGreaterThan(0);
  }, 30_000);

  const netns = Bun.spawnSync(["ip", "netns", "add", `lumen-probe-${process.pid}`], { stderr: "pipe" });
  if (netns.exitCode === 0) Bun.spawnSync(["ip", "netns", "del", `lumen-probe-${process.pid}`]);
  test.skipIf(netns.exitCode !== 0)("20 % random loss by netfilter in a network namespace (skipped where `ip netns add` is refused: it needs root)", async () => {
    const ns = `lumen-${process.pid}`;
    expect(Bun.spawnSync(["ip", "netns", "add", ns]).exitCode).toBe(0);
    try {
      const p = Bun.spawn(["ip", "netns", "exec", ns, process.execPath, join(import.meta.dir, "netns-child.ts"), "0.2", "2"], { stdout: "pipe", stderr: "pipe" });
      const killer = setTimeout(() => p.kill("SIGKILL"), 40_000);
      const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
      clearTimeout(killer);
      expect(code, err).toBe(0);
      const r = JSON.parse(out.trim().split("\n").at(-1)!);
      expect(r.droppedSim).toBe(0);
      expect(r.framesRecovered).toBeGreaterThan(10);
      expect(r.framesReceived).toBe(r.framesSent);
    } finally {
      Bun.spawnSync(["ip", "netns", "del", ns]);
    }
  }, 60_000);
});
