/** Shared test scaffolding: temp dirs, a config that reads no system file, a core on a fresh state dir. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { loadConfig, type Config } from "../../src/config.ts";
import { createCore, type Core } from "../../src/core.ts";
import { silentLogger } from "../../src/log.ts";

export const REPO_ROOT = resolve(import.meta.dir, "..", "..");
export const BUN = process.execPath;

export function tempDir(prefix = "neuron-test-"): { path: string; cleanup(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

export function testConfig(overrides: Record<string, unknown> = {}, env: Record<string, string> = {}): Config {
  return loadConfig({ configPath: null, env, flags: overrides });
}

export function testCore(overrides: Record<string, unknown> = {}): { core: Core; cleanup(): void } {
  const dir = tempDir("neuron-core-");
  // qmpDir and spiceDir inside the test's own directory: starting a VM never creates the system's
  const core = createCore(testConfig({ stateDir: dir.path, qmpDir: join(dir.path, "qmp"), spiceDir: join(dir.path, "spice"), ...overrides }), { logger: silentLogger });
  return {
    core,
    cleanup() {
      core.close();
      dir.cleanup();
    },
  };
}

/** Runs the CLI from source in a child process (real argv, real exit code). */
export function runCli(args: string[], env: Record<string, string> = {}) {
  const proc = Bun.spawnSync([BUN, join(REPO_ROOT, "src", "main.ts"), ...args], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root", NEURON_CONFIG: join(REPO_ROOT, "test", "fixtures", "config", "test.json"), ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  return { code: proc.exitCode, stdout: proc.stdout.toString(), stderr: proc.stderr.toString() };
}
