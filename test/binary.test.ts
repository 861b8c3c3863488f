/**
 * The single executable: built with build/compile.ts, copied alone into an
 * empty directory (no node_modules, no source, no libneuron.so beside it),
 * started on a fresh state dir; it must serve health and the OpenAPI spec.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BUN, REPO_ROOT, tempDir } from "./helpers/env.ts";
import { freeBasePort } from "./gamestream/helpers.ts";

let build: ReturnType<typeof tempDir>;
let run: ReturnType<typeof tempDir>;
let exe: string;

beforeAll(() => {
  build = tempDir("neuron-build-");
  run = tempDir("neuron-run-");
  const out = join(build.path, "neuron-appliance");
  const r = Bun.spawnSync([BUN, join(REPO_ROOT, "build", "compile.ts"), "--outfile", out], { cwd: REPO_ROOT, stderr: "pipe", stdout: "pipe" });
  if (r.exitCode !== 0) throw new Error(`compile failed: ${r.stderr.toString()}`);
  exe = join(run.path, "neuron-appliance");
  copyFileSync(out, exe);
});
afterAll(() => {
  build?.cleanup();
  run?.cleanup();
});

async function waitForListening(proc: Bun.Subprocess<"ignore", "pipe", "pipe">): Promise<string> {
  const reader = proc.stderr.getReader();
  let text = "";
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const { value, done } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
    const m = text.match(/"url":"(http:\/\/127\.0\.0\.1:\d+)"/);
    if (m) {
      reader.releaseLock();
      return m[1]!;
    }
  }
  throw new Error(`binary did not start: ${text}`);
}

describe("compiled executable", () => {
  test("runs alone in an empty directory: serve, health, OpenAPI JSON", async () => {
    expect(readdirSync(run.path)).toEqual(["neuron-appliance"]);
    const stateDir = join(run.path, "state");
    const proc = Bun.spawn([exe, "serve", "--port", "0", "--state-dir", stateDir, "--log-format", "json"], {
      cwd: run.path,
      env: { PATH: "/usr/bin:/bin", HOME: run.path, NEURON_CONFIG: join(REPO_ROOT, "test", "fixtures", "config", "test.json") },
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    try {
      const url = await waitForListening(proc);
      const health = await fetch(`${url}/api/v1/health`);
      expect(health.status).toBe(200);
      expect(await health.json()).toEqual({ status: "ok" });
      const spec = (await (await fetch(`${url}/swagger/json`)).json()) as any;
      expect(spec.paths["/api/v1/health"]).toBeDefined();
      // over TCP it needs credentials; over the local socket root's peer credentials suffice
      expect((await fetch(`${url}/api/v1/system`)).status).toBe(401);
      const system = (await (await fetch("http://localhost/api/v1/system", { unix: join(stateDir, "api.sock") })).json()) as any;
      expect(system.native.loaded).toBe(true);
      expect(system.native.path).toMatch(/^\/\$bunfs\//); // the embedded copy
      expect(system.db.schemaVersion).toBeGreaterThan(0);
      expect((await fetch(`${url}/swagger/assets/swagger-ui-bundle.js`)).status).toBe(200);
      expect(existsSync(join(stateDir, "neuron.db"))).toBe(true);
    } finally {
      proc.kill("SIGTERM");
      expect(await proc.exited).toBe(0);
    }
    expect(existsSync(join(stateDir, "api.sock"))).toBe(false);
  });

  test("the GameStream host starts without libneuron; the library loads on first use", async () => {
    const stateDir = join(run.path, "state-gs");
    const config = join(run.path, "gs.json");
    writeFileSync(config, JSON.stringify({ gamestreamEnabled: true, gamestreamHost: "127.0.0.1", gamestreamPort: freeBasePort(), mdns: false }));
    const proc = Bun.spawn([exe, "serve", "--port", "0", "--state-dir", stateDir, "--log-format", "json"], {
      cwd: run.path,
      env: { PATH: "/usr/bin:/bin", HOME: run.path, NEURON_CONFIG: config },
      stdin: "ignore",
      stdout: "ignore",
      stderr: "pipe",
    });
    const mapped = () => readFileSync(`/proc/${proc.pid}/maps`, "utf8");
    try {
      const reader = proc.stderr.getReader();
      let text = "";
      const deadline = Date.now() + 20_000;
      while (!text.includes("GameStream host listening")) {
        const left = deadline - Date.now();
        const next = await Promise.race([reader.read(), Bun.sleep(Math.max(left, 0)).then(() => null)]);
        if (!next || next.done) throw new Error(`the GameStream host did not start: ${text}`);
        text += new TextDecoder().decode(next.value);
      }
      reader.releaseLock();
      expect(mapped()).not.toContain("libavcodec");
      expect(mapped()).not.toMatch(/libneuron/);
      const system = (await (await fetch("http://localhost/api/v1/system", { unix: join(stateDir, "api.sock") })).json()) as any;
      expect(system.native.loaded).toBe(true);
      expect(mapped()).toContain("libavcodec");
    } finally {
      proc.kill("SIGTERM");
      expect(await proc.exited).toBe(0);
    }
  });

  test("one-shot commands work from the binary too", () => {
    const r = Bun.spawnSync([exe, "version", "--json"], { cwd: run.path, env: { PATH: "/usr/bin:/bin" } });
    expect(r.exitCode).toBe(0);
    expect(JSON.parse(r.stdout.toString()).native.error).toBeNull();
    expect(statSync(exe).size).toBeGreaterThan(10_000_000);
  });
});
