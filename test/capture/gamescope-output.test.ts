/**
 * The gamescope backend: a gamescope of its own per session at the client's mode, its output
 * a PipeWire node. gamescope 3.11 (Debian 12) has no --headless, so it runs nested in a real
 * headless sway the test starts; it needs a Vulkan device with DRM format modifiers and
 * VK_EXT_physical_device_drm. Where gamescope cannot start (lavapipe has neither), the probe
 * and create() report gamescope's own words, and nothing is left running.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CapturePipeline } from "../../ffi/capture.ts";
import { HostOutputNative } from "../../ffi/hostout.ts";
import { resolveNativePath } from "../../ffi/native.ts";
import { GamescopeBackend, gamescopeFailure } from "../../src/capture/gamescope-output.ts";
import { hostOutputBackends, HostVirtualOutputSource } from "../../src/capture/host-output.ts";
import { tempDir } from "../helpers/env.ts";
import { probeStream } from "./ffmpeg.ts";
import { loadCaptureNative, collectAccessUnits } from "./helpers.ts";
import { HAVE_SWAY, MISSING_SWAY, startSwaySession, type SwaySession } from "./sway-session.ts";

const GAMESCOPE = Bun.which("gamescope") ?? (Bun.file("/usr/games/gamescope").size > 0 ? "/usr/games/gamescope" : null);
const HAVE = HAVE_SWAY && GAMESCOPE !== null && Bun.which("pw-dump") !== null;
if (!HAVE) console.warn(`skip: gamescope backend tests need ${[...MISSING_SWAY, ...(GAMESCOPE ? [] : ["gamescope"]), ...(Bun.which("pw-dump") ? [] : ["pw-dump"])].join(", ")} (not installed)`);

const native = new HostOutputNative(resolveNativePath({}));
const capture = loadCaptureNative();
const dir = tempDir("neuron-gamescope-test-");
afterAll(() => {
  native.close();
  capture.close();
  dir.cleanup();
});

test("gamescope's reasons are its own lines, without the seat chatter", () => {
  const text = [
    "wlserver: [libseat] [seatd/seat.c:39] Created VT-bound seat seat0",
    "vulkan: selecting physical device 'llvmpipe (LLVM 15.0.6, 256 bits)': queue family 0",
    "vulkan: physical device does not support DRM format modifiers",
    "Failed to initialize Vulkan",
  ].join("\n");
  expect(gamescopeFailure(text)).toBe("vulkan: selecting physical device 'llvmpipe (LLVM 15.0.6, 256 bits)': queue family 0; vulkan: physical device does not support DRM format modifiers; Failed to initialize Vulkan");
  expect(gamescopeFailure("")).toBe("");
});

test("without a PipeWire socket or a display the probe says so, and runs nothing", () => {
  const g = new GamescopeBackend({ busAddress: null, pipewireSocket: null, which: () => GAMESCOPE ?? "/usr/games/gamescope" });
  expect(g.probe().reason).toContain("no PipeWire socket");
  const none = new GamescopeBackend({ busAddress: null, pipewireSocket: null, which: () => null }).probe();
  if (!GAMESCOPE) expect(none).toEqual({ available: false, reason: "gamescope is not installed" });
});

describe.skipIf(!HAVE)("gamescope nested in a headless sway", () => {
  let s: SwaySession;
  const env = () => ({ busAddress: null, pipewireSocket: s.pipewireSocket, waylandDisplay: s.waylandDisplay, runtimeDir: dir.path, gamescopeNested: true });
  beforeAll(async () => {
    s = await startSwaySession();
  }, 30_000);
  afterAll(async () => {
    await s?.stop();
  });

  test("the probe runs gamescope once, bounded, and caches what it said", () => {
    const g = new GamescopeBackend(env());
    const t0 = performance.now();
    const a = g.probe();
    const first = performance.now() - t0;
    const t1 = performance.now();
    expect(g.probe()).toBe(a);
    expect(performance.now() - t1).toBeLessThan(first + 1);
    if (process.env.NEURON_TEST_VERBOSE) console.log("gamescope probe:", a, `${Math.round(first)} ms`);
    if (!a.available) {
      expect(a.reason).toStartWith("gamescope cannot start: ");
      console.warn(`skip: gamescope cannot run here (${a.reason})`);
    }
    expect(hostOutputBackends(native, env()).find((b) => b.name === "gamescope")).toBeInstanceOf(GamescopeBackend);
    const probeWithoutDisplay = new GamescopeBackend({ ...env(), waylandDisplay: null }).probe();
    if (!probeWithoutDisplay.available) expect(probeWithoutDisplay.reason).toMatch(/no Wayland display of the session is known|gamescope cannot start/);
    // without --headless, nested is opt-in: by default the probe runs nothing and says why
    const plain = new GamescopeBackend({ ...env(), gamescopeNested: false }).probe();
    const help = Bun.spawnSync([GAMESCOPE!, "--help"], { stderr: "pipe", stdout: "pipe" });
    const helpText = help.stdout.toString() + help.stderr.toString();
    expect(helpText).toContain("--nested-width");
    if (!/--headless\b/.test(helpText)) expect(plain.reason).toContain("no --headless (added in 3.12)");
  });

  test("create(): a node at the client's mode where gamescope runs; otherwise gamescope's reason, nothing left behind", async () => {
    const g = new GamescopeBackend(env());
    const ok = g.probe().available;
    if (!ok) {
      let message = "";
      try {
        g.create({ width: 640, height: 480, fps: 30 }, 3000).close();
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message).toContain("gamescope: no PipeWire node within 3000 ms");
      expect(message).toContain(g.probe().reason!.replace("gamescope cannot start: ", ""));
      expect(readdirSync(dir.path).filter((n) => n.startsWith("neuron-gamescope-"))).toEqual([]);
      return;
    }
    const source = new HostVirtualOutputSource(native, g, { width: 640, height: 480, fps: 30 }, s.pipewireSocket);
    let pipeline: CapturePipeline | null = null;
    try {
      source.attach(8000);
      expect(source.pwStats()).toMatchObject({ width: 640, height: 480, state: "streaming" });
      pipeline = CapturePipeline.startFromStream(capture, source.pwStream.nativeHandle, { codec: "h264", fps: 30, bitrateKbps: 4000, threads: 2, ringSlots: 16 });
      const chunks = await collectAccessUnits(pipeline, 15, 20_000);
      expect(chunks.length).toBe(15);
      const file = join(dir.path, "gamescope.h264");
      writeFileSync(file, Buffer.concat(chunks));
      expect(await probeStream(file, "h264")).toMatchObject({ codec: "h264", width: 640, height: 480, frames: 15 });
    } finally {
      pipeline?.stop();
      source.close();
    }
  }, 40_000);
});
