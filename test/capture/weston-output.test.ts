/**
 * weston as a second compositor: weston 10 headless runs here, but its pipewire-plugin is a
 * libweston plugin that only the DRM backend loads (outputs from weston.ini, not per session),
 * so no PipeWire node appears and the weston backend reports exactly that. Real weston and
 * pipewire, started by the test in their own runtime dir and stopped by PID.
 */
import { afterAll, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hostOutputBackends } from "../../src/capture/host-output.ts";

const HAVE = ["weston", "pipewire", "pw-dump"].every((b) => Bun.which(b) !== null);
const MODULE_DIR = "/usr/lib/x86_64-linux-gnu/libweston-10";
const rt = mkdtempSync(join(tmpdir(), "neuron-weston-"));
afterAll(() => rmSync(rt, { recursive: true, force: true }));

async function stop(p: Bun.Subprocess) {
  if (p.exitCode !== null) return;
  p.kill("SIGTERM");
  const t = setTimeout(() => p.kill("SIGKILL"), 3000);
  await p.exited;
  clearTimeout(t);
}

test.skipIf(!HAVE)("weston headless offers no per-session PipeWire output; the backend says why", async () => {
  const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: rt, XDG_RUNTIME_DIR: rt, PIPEWIRE_RUNTIME_DIR: rt };
  const pw = Bun.spawn(["pipewire"], { env, stdout: "ignore", stderr: "ignore" });
  const ini = join(rt, "weston.ini");
  writeFileSync(ini, `[core]\nmodules=${MODULE_DIR}/pipewire-plugin.so\n[output]\nname=pipewire\nmode=640x480\n`);
  const log = join(rt, "weston.log");
  let weston: Bun.Subprocess | null = null;
  try {
    const end = Date.now() + 5000;
    while (!existsSync(join(rt, "pipewire-0")) && Date.now() < end) await Bun.sleep(50);
    weston = Bun.spawn(["weston", "--backend=headless-backend.so", `--config=${ini}`, "--socket=wl-neuron", `--log=${log}`], { env, stdout: "ignore", stderr: "ignore" });
    const exitEnd = Date.now() + 8000;
    while (weston.exitCode === null && Date.now() < exitEnd) await Bun.sleep(50);
    const text = existsSync(log) ? readFileSync(log, "utf8") : "";
    // the plugin is not a frontend module: headless weston refuses it (or runs without it)
    expect(weston.exitCode !== null || !text.includes("pipewire output")).toBe(true);
    if (existsSync(join(MODULE_DIR, "pipewire-plugin.so"))) expect(text).toMatch(/pipewire-plugin\.so/);
    const dump = Bun.spawn(["pw-dump"], { env, stdout: "pipe", stderr: "ignore" });
    const t = setTimeout(() => dump.kill("SIGKILL"), 5000);
    const nodes = await new Response(dump.stdout).text();
    clearTimeout(t);
    expect(nodes).not.toMatch(/"node\.name": "weston/);
  } finally {
    if (weston) await stop(weston);
    await stop(pw);
  }
  const weston_ = hostOutputBackends(null, { busAddress: null, pipewireSocket: null }).find((b) => b.name === "weston")!;
  const a = weston_.probe();
  expect(a.available).toBe(false);
  expect(a.reason).toContain("DRM backend");
}, 30_000);
