/**
 * Benchmark of the compiled appliance (prints figures, asserts nothing), against a bare
 * compiled `Bun.serve` answering the same JSON, built in the same run with the same flags:
 *  - cold start (fresh state dir: first migration, GameStream identity) and warm start
 *    (the same dir again): spawn → first 200 from /api/v1/health, p50/p90 over N runs;
 *  - idle RSS once started, and once the background encoder measurement has finished;
 *  - /api/v1/health throughput (bounded: a fixed request count, loopback only).
 * The appliance runs with its GameStream host on (loopback, free ports, no mDNS), as shipped.
 *
 *   npm run bench:api   (builds dist/neuron-appliance first, with build/compile.ts)
 *   BENCH_RUNS=N BENCH_REQUESTS=N   GAMESTREAM=0 to run the appliance without its GameStream host
 *   BENCH_SKIP_BUILD=1 to measure the dist/ binary as it is
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "..", "..");
const EXE = join(ROOT, "dist", "neuron-appliance");
const RUNS = Number(process.env.BENCH_RUNS ?? 11);
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 20_000);
const GAMESTREAM = process.env.GAMESTREAM !== "0";
const CONCURRENCY = 32;

// built from the tree as it is (BENCH_SKIP_BUILD=1: the dist/ binary as it is, if there is one)
if (process.env.BENCH_SKIP_BUILD !== "1" || !existsSync(EXE)) {
  const r = Bun.spawnSync([process.execPath, join(ROOT, "build", "compile.ts")], { stdout: "ignore", stderr: "inherit" });
  if (r.exitCode !== 0) process.exit(1);
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;
const rssMiB = (pid: number) => round(Number(readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+)/)![1]) / 1024, 1);

function freePort(): number {
  const s = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response() });
  const p = s.port!;
  s.stop(true);
  return p;
}

/** A GameStream base port whose HTTP, HTTPS, RTSP and UDP ports are free on 127.0.0.1 now. */
function freeBase(): number {
  for (;;) {
    const base = 20000 + Math.floor(Math.random() * 40000);
    const held: { stop(force?: boolean): void }[] = [];
    try {
      for (const p of [base, base - 5, base + 21]) held.push(Bun.listen({ hostname: "127.0.0.1", port: p, socket: { data() {} } }));
      return base;
    } catch {
      /* taken */
    } finally {
      for (const h of held) h.stop(true);
    }
  }
}

const base = mkdtempSync(join(tmpdir(), "neuron-bench-"));

// the baseline: a bare Bun.serve, compiled with the appliance's flags
const bareSrc = join(base, "bare.ts");
const bareExe = join(base, "bare");
writeFileSync(
  bareSrc,
  'const port = Number(process.argv[2]); Bun.serve({ hostname: "127.0.0.1", port, fetch: () => Response.json({ status: "ok" }) });\n',
);
const built = Bun.spawnSync(
  [process.execPath, "build", "--compile", "--minify", "--bytecode", "--format=esm", "--no-compile-autoload-dotenv", "--no-compile-autoload-bunfig", "--compile-jit-policy=1000", "--compile-exec-argv=--smol", bareSrc, "--outfile", bareExe],
  { stdout: "ignore", stderr: "inherit" },
);
if (built.exitCode !== 0) process.exit(1);

interface Started {
  ms: number;
  proc: Bun.Subprocess<"ignore", "ignore", "pipe">;
  port: number;
  log: () => string;
}

async function startAndTime(argv: (port: number) => string[], env: Record<string, string>): Promise<Started> {
  const port = freePort();
  const t0 = performance.now();
  const proc = Bun.spawn(argv(port), { env, stdin: "ignore", stdout: "ignore", stderr: "pipe" });
  let log = "";
  void (async () => {
    for await (const chunk of proc.stderr) log += new TextDecoder().decode(chunk);
  })();
  for (;;) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/api/v1/health`);
      if (res.status === 200) {
        await res.arrayBuffer();
        return { ms: performance.now() - t0, proc, port, log: () => log };
      }
    } catch {
      /* not listening yet */
    }
    if (performance.now() - t0 > 10_000) throw new Error(`did not start within 10 s: ${log}`);
    await Bun.sleep(1);
  }
}

function appliance(stateDir: string) {
  const config = join(stateDir + "-config.json");
  writeFileSync(config, JSON.stringify({ gamestreamEnabled: GAMESTREAM, gamestreamHost: "127.0.0.1", gamestreamPort: freeBase(), mdns: false }));
  return startAndTime((port) => [EXE, "serve", "--port", String(port), "--state-dir", stateDir, "--log-format", "json"], { PATH: "/usr/bin:/bin", HOME: stateDir, NEURON_CONFIG: config });
}
const bare = () => startAndTime((port) => [bareExe, String(port)], { PATH: "/usr/bin:/bin" });

async function stop(s: Started) {
  s.proc.kill("SIGTERM");
  await s.proc.exited;
}

async function waitFor(s: Started, text: string, ms: number): Promise<boolean> {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    if (s.log().includes(text)) return true;
    await Bun.sleep(20);
  }
  return false;
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

const summary = (xs: number[]) => ({ p50Ms: round(pct(xs, 50)), p90Ms: round(pct(xs, 90)) });

try {
  const cold: number[] = [];
  const warm: number[] = [];
  const bareMs: number[] = [];
  // interleaved, so load from elsewhere on the machine hits all three alike
  for (let i = 0; i < RUNS; i++) {
    const dir = join(base, `s${i}`);
    const first = await appliance(dir);
    cold.push(first.ms);
    await waitFor(first, "GameStream host listening", GAMESTREAM ? 10_000 : 0);
    await stop(first);
    const second = await appliance(dir);
    warm.push(second.ms);
    await stop(second);
    const b = await bare();
    bareMs.push(b.ms);
    await stop(b);
  }
  const bareP50 = pct(bareMs, 50);
  console.log(JSON.stringify({ case: "startup-bare-bun-serve", runs: RUNS, ...summary(bareMs) }));
  console.log(JSON.stringify({ case: "startup-cold", gamestream: GAMESTREAM, runs: RUNS, ...summary(cold), ratioToBare: round(pct(cold, 50) / bareP50), goalMs: 60 }));
  console.log(JSON.stringify({ case: "startup-warm", gamestream: GAMESTREAM, runs: RUNS, ...summary(warm), ratioToBare: round(pct(warm, 50) / bareP50), goalMs: 40 }));

  const b = await bare();
  await Bun.sleep(500);
  const bareRss = rssMiB(b.proc.pid);
  const bareRps = await throughput(`http://127.0.0.1:${b.port}/api/v1/health`);
  await stop(b);

  const s = await appliance(join(base, "tp"));
  await Bun.sleep(500);
  const startedRss = rssMiB(s.proc.pid);
  // the encoders are timed a second after the GameStream host is up; idle means after that
  const measured = GAMESTREAM && (await waitFor(s, "codecs offered", 60_000));
  if (measured) await Bun.sleep(500);
  const idleRss = rssMiB(s.proc.pid);
  console.log(JSON.stringify({ case: "idle-rss", gamestream: GAMESTREAM, startedMiB: startedRss, afterCodecMeasurementMiB: measured ? idleRss : null, bareMiB: bareRss, ratioToBare: round(idleRss / bareRss), goalMiB: 60 }));
  const appRps = await throughput(`http://127.0.0.1:${s.port}/api/v1/health`);
  await stop(s);
  console.log(
    JSON.stringify({ case: "health-throughput", requests: REQUESTS, concurrency: CONCURRENCY, rps: Math.round(appRps), baseline: "bare Bun.serve", baselineRps: Math.round(bareRps), ratio: round(appRps / bareRps) }),
  );
} finally {
  rmSync(base, { recursive: true, force: true });
}
