/**
 * lumen/1 as a user runs it: `serve` with lumenEnabled on loopback, the reference client
 * `neuron-appliance lumen connect --pin` in its own process, the PIN entered on the host with
 * `neuron-appliance pair --pin` through the local API (as for Moonlight); the client's JSON.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createServer } from "node:net";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { BUN, REPO_ROOT, runCli, tempDir } from "../helpers/env.ts";
import { buildNative } from "./helpers.ts";

let dir: ReturnType<typeof tempDir>;
let proc: Bun.Subprocess<"ignore", "ignore", "pipe">;
let port = 0;
const env = () => ({ NEURON_STATE_DIR: join(dir.path, "state"), NEURON_GAMESTREAM_ENABLED: "false", NEURON_LUMEN_ENABLED: "true", NEURON_LUMEN_HOST: "127.0.0.1", NEURON_LUMEN_PORT: String(port), NEURON_PORT: "0" });

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
  const p = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return p;
}

beforeAll(async () => {
  buildNative();
  dir = tempDir("neuron-serve-lumen-");
  port = await freePort();
  proc = Bun.spawn([BUN, join(REPO_ROOT, "src", "main.ts"), "serve", "--log-format", "json"], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir.path, NEURON_CONFIG: join(REPO_ROOT, "test", "fixtures", "config", "test.json"), ...env() },
    stdin: "ignore",
    stdout: "ignore",
    stderr: "pipe",
  });
  const reader = proc.stderr.getReader();
  let log = "";
  const deadline = Date.now() + 30_000;
  while (!log.includes("lumen/1 host listening")) {
    if (Date.now() > deadline) throw new Error(`serve did not start lumen/1: ${log}`);
    const { value, done } = await reader.read();
    if (done) throw new Error(`serve exited: ${log}`);
    log += new TextDecoder().decode(value);
  }
  reader.releaseLock();
}, 40_000);

afterAll(async () => {
  proc?.kill("SIGTERM");
  await proc?.exited;
  dir?.cleanup();
});

describe("serve + lumen connect", () => {
  test("pairs with the PIN entered by `pair --pin`, streams, prints the counts as JSON", async () => {
    const clientDir = join(dir.path, "client");
    const client = Bun.spawn([BUN, join(REPO_ROOT, "src", "main.ts"), "lumen", "connect", "127.0.0.1", "--port", String(port), "--pin", "2468", "--mode", "320x240x30", "--seconds", "1.5", "--json", "--client-dir", clientDir], {
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir.path, NEURON_CONFIG: join(REPO_ROOT, "test", "fixtures", "config", "test.json") },
      stdout: "pipe",
      stderr: "pipe",
    });
    const killer = setTimeout(() => client.kill("SIGKILL"), 40_000);
    let entered = false;
    for (let i = 0; i < 300 && !entered; i++) {
      const pending = JSON.parse(runCli(["pair", "pending", "--json"], env()).stdout || "[]") as { deviceName: string }[];
      if (pending.some((p) => p.deviceName === "neuron-appliance lumen")) {
        const r = runCli(["pair", "--pin", "2468"], env());
        expect(r.stderr).toBe("");
        entered = true;
      } else await Bun.sleep(50);
    }
    expect(entered).toBe(true);
    const [out, err, code] = await Promise.all([new Response(client.stdout).text(), new Response(client.stderr).text(), client.exited]);
    clearTimeout(killer);
    expect(err).toBe("");
    expect(code).toBe(0);
    const r = JSON.parse(out);
    expect(r.framesReceived).toBeGreaterThan(20);
    expect(r.framesSent).toBeGreaterThanOrEqual(r.framesReceived);
    expect(r.framesDecoded).toBe(r.framesReceived);
    expect(r.framesRecovered).toBe(0);
    expect(typeof r.p50Ms).toBe("number");
    expect(r.p99Ms).toBeGreaterThanOrEqual(r.p50Ms);
    expect(r.mode).toBe("320x240x30");
    expect(r.transport).toBe("quic");
    // `pair list` shows the lumen/1 pairing beside Moonlight ones; `pair remove CLIENTID` forgets it
    const clientId = (JSON.parse(readFileSync(join(clientDir, "lumen-client.json"), "utf8")) as { clientId: string }).clientId;
    const listed = JSON.parse(runCli(["pair", "list", "--json"], env()).stdout) as { protocol: string; id: string | number; name: string }[];
    expect(listed).toContainEqual(expect.objectContaining({ protocol: "lumen", id: clientId, name: "neuron-appliance lumen" }));
    expect(runCli(["pair", "list"], env()).stdout).toContain(`lumen/1 clients:\n  ${clientId}`);
    const removed = runCli(["pair", "remove", clientId], env());
    expect(removed.stdout).toContain(`unpaired lumen/1 client ${clientId}`);
    expect(runCli(["pair", "remove", clientId], env()).code).not.toBe(0); // a second time: not found
    expect((JSON.parse(runCli(["pair", "list", "--json"], env()).stdout) as { protocol: string }[]).filter((p) => p.protocol === "lumen")).toEqual([]);
  }, 60_000);

  test("bad flags get a clear error and change nothing", () => {
    const r = runCli(["lumen", "connect", "127.0.0.1", "--mode", "huge"], env());
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--mode must look like 1280x720x60");
    const t = runCli(["lumen", "connect", "127.0.0.1", "--transport", "tcp"], env());
    expect(t.code).toBe(2);
    expect(t.stderr).toContain("--transport is quic or tls");
    const p = runCli(["lumen", "connect", "127.0.0.1", "--pin", "12"], env());
    expect(p.stderr).toContain("--pin must be 4 digits");
  });
});
