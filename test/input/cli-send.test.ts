/**
 * `input send` and `input probe VM` against the running service: the CLI posts to the local
 * API (the service holds the VM's QMP connection), checked in a real QEMU's input trace.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { startServer, type RunningServer } from "../../src/api/server.ts";
import { BUN, REPO_ROOT, tempDir, testCore } from "../helpers/env.ts";
import { qemuAvailable, startQemu, waitFor, type TestQemu } from "./qemu.ts";

/** The CLI in a child process, awaited asynchronously (the server runs in this process). */
async function cli(args: string[], env: Record<string, string>) {
  const proc = Bun.spawn([BUN, join(REPO_ROOT, "src", "main.ts"), ...args], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root", NEURON_CONFIG: join(REPO_ROOT, "test", "fixtures", "config", "test.json"), ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  const timer = setTimeout(() => proc.kill(), 30_000);
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  return { code, stdout, stderr };
}

describe.skipIf(!qemuAvailable())("neuron-appliance input send / probe VM through the running service", () => {
  const dir = tempDir("neuron-input-send-");
  const qmpDir = join(dir.path, "qmp");
  const stateDir = join(dir.path, "state");
  let vm: TestQemu;
  let ctx: ReturnType<typeof testCore>;
  let server: RunningServer;
  const env = () => ({ NEURON_STATE_DIR: stateDir, NEURON_QMP_DIR: qmpDir });

  beforeAll(async () => {
    mkdirSync(qmpDir, { recursive: true });
    mkdirSync(stateDir, { recursive: true });
    vm = await startQemu(qmpDir, "vm1");
    ctx = testCore({ qmpDir, stateDir, port: 0, gamestreamEnabled: false });
    server = await startServer(ctx.core);
  }, 30_000);

  afterAll(async () => {
    await server?.stop();
    ctx?.cleanup();
    await vm?.stop();
    dir.cleanup();
  });

  const keys = () => vm.trace().filter((e) => e.ev !== "sync");

  test("--keys ctrl+alt+delete presses in order and releases in reverse", async () => {
    const before = keys().length;
    const r = await cli(["input", "send", "vm1", "--keys", "ctrl+alt+delete", "--json"], env());
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ accepted: 6 });
    await waitFor(() => keys().length >= before + 6, 5000, "the chord");
    expect(keys().slice(before)).toEqual(
      ([["ctrl", true], ["alt", true], ["delete", true], ["delete", false], ["alt", false], ["ctrl", false]] as const).map(([qcode, down]) => ({ ev: "key" as const, qcode, down })),
    );
  }, 40_000);

  test("--text, --move, --abs, --click and --wheel", async () => {
    const before = keys().length;
    const r = await cli(["input", "send", "vm1", "--text", "ok", "--move", "3,-4", "--abs", "100,200", "--click", "right", "--wheel=-1"], env());
    expect(r.code).toBe(0);
    await waitFor(() => keys().length >= before + 12, 5000, "the events");
    expect(keys().slice(before)).toEqual([
      { ev: "key", qcode: "o", down: true }, { ev: "key", qcode: "o", down: false },
      { ev: "key", qcode: "k", down: true }, { ev: "key", qcode: "k", down: false },
      { ev: "rel", axis: "x", value: 3 }, { ev: "rel", axis: "y", value: -4 },
      { ev: "abs", axis: "x", value: 100 }, { ev: "abs", axis: "y", value: 200 },
      { ev: "btn", button: "right", down: true }, { ev: "btn", button: "right", down: false },
      { ev: "btn", button: "wheel-down", down: true }, { ev: "btn", button: "wheel-down", down: false },
    ]);
  }, 40_000);

  test("bad input is a usage error that sends nothing; probe VM reports the sinks", async () => {
    const before = vm.trace().length;
    for (const args of [["--keys", "ctrl+nosuchkey"], ["--move", "1"], ["--abs", "40000,1"], ["--click", "9"], ["--wheel", "0"], []]) {
      const r = await cli(["input", "send", "vm1", ...args], env());
      expect(r.code).toBe(2);
    }
    expect(vm.trace().length).toBe(before);
    const p = await cli(["input", "probe", "vm1", "--json"], env());
    expect(p.code).toBe(0);
    const out = JSON.parse(p.stdout) as { sinks: { eventClass: string; sink: string | null }[] };
    expect(out.sinks.map((s) => s.eventClass)).toEqual(["keyboard", "pointer", "absolute", "gamepad"]);
  }, 60_000);
});
