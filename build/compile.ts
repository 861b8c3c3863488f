/**
 * Builds the single executable: dist/neuron-appliance (code-split chunks inside), with libneuron.so, the
 * SQL migrations and the Swagger UI assets embedded. Also copies the library
 * beside it (dist/libneuron.so) for packaging.
 *
 * Two passes: the first build is started once (`serve` on loopback, free ports, a throwaway state
 * dir, up to its GameStream host listening and one health answer) with BUN_BYTECODE_ORDER_OUT, and
 * the second lays the bytecode out in the order that start touched it, so the pages a running
 * appliance maps are the few it uses. Where that start cannot run here, the first build stays (it
 * is the same program, its bytecode in bundle order) and the reason is printed.
 *
 *   bun build/compile.ts [--outfile dist/neuron-appliance] [--no-bytecode-order]
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";

const root = resolve(import.meta.dir, "..");
const { values } = parseArgs({ options: { outfile: { type: "string" }, "no-bytecode-order": { type: "boolean" } } });
const outfile = resolve(values.outfile ?? join(root, "dist", "neuron-appliance"));
const lib = join(root, "native", "build", "libneuron.so");
if (!existsSync(lib)) {
  console.error(`compile: ${lib} is missing; run \`make -C native\` first`);
  process.exit(1);
}
mkdirSync(dirname(outfile), { recursive: true });
copyFileSync(lib, join(dirname(outfile), "libneuron.so"));

function build(extra: string[]): void {
  const proc = Bun.spawnSync(
    [
      process.execPath,
      "build",
      "--compile",
      // code splitting: each lazily imported module (the CLI commands, the API, the GameStream
      // host) is its own chunk, so starting `serve` loads the bytecode of what it runs, not all of it
      "--splitting",
      "--minify",
      "--bytecode",
      "--format=esm",
      "--no-compile-autoload-dotenv",
      "--no-compile-autoload-bunfig",
      // the JIT tiers up 1000× later than by default: start-up code and the idle pollers run in
      // the interpreter and baseline tier instead of pulling the optimizing compilers (their code
      // pages and what they allocate) into an idle appliance; request paths under load still tier up
      "--compile-jit-policy=1000",
      // Bun's small-heap mode: the heap grows in smaller steps and is collected sooner (an idle
      // appliance holds a few MB less; start and request times measured unchanged, test/bench/api.bench.ts)
      "--compile-exec-argv=--smol",
      ...extra,
      join(root, "build", "entry.ts"),
      "--outfile",
      outfile,
    ],
    { cwd: root, stdout: "inherit", stderr: "inherit" },
  );
  if (proc.exitCode !== 0) process.exit(proc.exitCode ?? 1);
}

/** A GameStream base port whose HTTP, HTTPS, RTSP and UDP ports are free on 127.0.0.1 now. */
function freeBase(): number {
  for (let i = 0; ; i++) {
    const base = 20000 + Math.floor(Math.random() * 40000);
    const held: { stop(force?: boolean): void }[] = [];
    try {
      for (const p of [base, base - 5, base + 21]) held.push(Bun.listen({ hostname: "127.0.0.1", port: p, socket: { data() {} } }));
      return base;
    } catch (err) {
      if (i > 50) throw err;
    } finally {
      for (const h of held) h.stop(true);
    }
  }
}

/** Starts `exe serve` once with BUN_BYTECODE_ORDER_OUT; the order file, or why there is none. */
async function recordStartOrder(exe: string, dir: string): Promise<string> {
  const order = join(dir, "bytecode-order.txt");
  const config = join(dir, "config.json");
  writeFileSync(config, JSON.stringify({ gamestreamEnabled: true, gamestreamHost: "127.0.0.1", gamestreamPort: freeBase(), mdns: false }));
  const proc = Bun.spawn([exe, "serve", "--port", "0", "--state-dir", join(dir, "state"), "--log-format", "json"], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir, NEURON_CONFIG: config, BUN_BYTECODE_ORDER_OUT: order },
    stdin: "ignore",
    stdout: "ignore",
    stderr: "pipe",
  });
  const killer = setTimeout(() => proc.kill("SIGKILL"), 30_000);
  let log = "";
  try {
    const decoder = new TextDecoder();
    const reader = proc.stderr.getReader();
    while (!log.includes("GameStream host listening")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`serve exited before its GameStream host listened: ${log.trim().split("\n").at(-1) ?? ""}`);
      log += decoder.decode(value, { stream: true });
    }
    void (async () => {
      for (;;) if ((await reader.read()).done) break;
    })();
    const url = /"msg":"listening","url":"([^"]+)"/.exec(log)?.[1];
    if (url) await (await fetch(`${url}/api/v1/health`)).arrayBuffer();
    proc.kill("SIGTERM");
    if ((await proc.exited) !== 0) throw new Error(`serve exited with ${proc.exitCode} on SIGTERM`);
  } finally {
    clearTimeout(killer);
    proc.kill("SIGKILL");
  }
  if (!existsSync(order) || statSync(order).size === 0) throw new Error("no bytecode order was written");
  return order;
}

build([]);
if (!values["no-bytecode-order"]) {
  const dir = mkdtempSync(join(tmpdir(), "neuron-compile-"));
  try {
    const order = await recordStartOrder(outfile, dir);
    build([`--bytecode-order=${order}`]);
  } catch (err) {
    console.warn(`compile: bytecode left in bundle order (${(err as Error).message})`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
console.log(`compile: ${outfile}`);
