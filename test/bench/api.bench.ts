/**
 * Benchmark of the compiled appliance (prints figures, asserts nothing):
 *  - spawn → first 200 from /api/v1/health: on a fresh state dir (includes the first
 *    migration) and on a migrated one; median and p90 over N runs;
 *  - idle RSS of the serving process;
 *  - /api/v1/health throughput (bounded: a fixed request count, loopback only), with a bare
 *    Bun.serve answering the same JSON measured in the same run as the baseline.
 *
 *   npm run bench:api   (builds dist/neuron-appliance first if missing)
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "..", "..");
const EXE = join(ROOT, "dist", "neuron-appliance");
const RUNS = Number(process.env.BENCH_RUNS ?? 15);
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 20_000);
const CONCURRENCY = 32;

if (!existsSync(EXE)) {
  const r = Bun.spawnSync([process.execPath, join(ROOT, "build", "compile.ts")], { stdout: "inherit", stderr: "inherit" });
  if (r.exitCode !== 0) process.exit(1);
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

function freePort(): number {
  const s = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response() });
  const p = s.port!;
  s.stop(true);
  return p;
}

async function startAndTime(stateDir: string): Promise<{ ms: number; proc: Bun.Subprocess; port: number }> {
  const port = freePort();
  const t0 = performance.now();
  const proc = Bun.spawn([EXE, "serve", "--port", String(port), "--state-dir", stateDir, "--log-format", "json"], {
    env: { PATH: "/usr/bin:/bin", HOME: stateDir, NEURON_CONFIG: join(ROOT, "test", "fixtures", "config", "test.json") },
    stdout: "ignore",
    stderr: "ignore",
  });
  for (;;) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/api/v1/health`);
      if (res.status === 200) {
        await res.arrayBuffer();
        return { ms: performance.now() - t0, proc, port };
      }
    } catch {
      /* not listening yet */
    }
    if (performance.now() - t0 > 10_000) throw new Error("appliance did not start within 10 s");
    await Bun.sleep(1);
  }
}

async function stop(proc: Bun.Subprocess) {
  proc.kill("SIGTERM");
  await proc.exited;
}

async function throughput(url: string): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < REQUESTS) {
        next++;
        const res = await fetch(url);
        await res.arrayBuffer();
      }
    }),
  );
  return REQUESTS / ((performance.now() - t0) / 1000);
}

const base = mkdtempSync(join(tmpdir(), "neuron-bench-"));
try {
  const cold: number[] = [];
  const warm: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const dir = join(base, `s${i}`);
    const first = await startAndTime(dir);
    cold.push(first.ms);
    await stop(first.proc);
    const second = await startAndTime(dir);
    warm.push(second.ms);
    await stop(second.proc);
  }
  console.log(JSON.stringify({ case: "startup-fresh-state", runs: RUNS, p50Ms: round(pct(cold, 50)), p90Ms: round(pct(cold, 90)) }));
  console.log(JSON.stringify({ case: "startup-migrated-state", runs: RUNS, p50Ms: round(pct(warm, 50)), p90Ms: round(pct(warm, 90)), goalMs: 60 }));

  const s = await startAndTime(join(base, "tp"));
  await Bun.sleep(500);
  const rssKiB = Number(readFileSync(`/proc/${s.proc.pid}/status`, "utf8").match(/VmRSS:\s+(\d+)/)![1]);
  console.log(JSON.stringify({ case: "idle-rss", rssMiB: round(rssKiB / 1024, 1) }));
  const appRps = await throughput(`http://127.0.0.1:${s.port}/api/v1/health`);
  await stop(s.proc);

  const bare = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => Response.json({ status: "ok" }) });
  const bareRps = await throughput(`http://127.0.0.1:${bare.port}/api/v1/health`);
  bare.stop(true);
  console.log(
    JSON.stringify({ case: "health-throughput", requests: REQUESTS, concurrency: CONCURRENCY, rps: Math.round(appRps), baseline: "bare Bun.serve", baselineRps: Math.round(bareRps), ratio: round(appRps / bareRps) }),
  );
} finally {
  rmSync(base, { recursive: true, force: true });
}
