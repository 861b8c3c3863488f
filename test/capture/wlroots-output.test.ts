/**
 * The wlroots backend against a real headless sway (WLR_BACKENDS=headless), pipewire and
 * wireplumber the test starts: per session a HEADLESS-N output at exactly the client's mode
 * through sway's IPC, its PipeWire node from a private xdg-desktop-portal-wlr picking that
 * output without asking, the output unplugged after. Capturing frames needs a DRM render node
 * (see RENDER_NODE); without one the portal's own refusal is what the backend reports.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CapturePipeline } from "../../ffi/capture.ts";
import { HostOutputNative, PortalScreenCast } from "../../ffi/hostout.ts";
import { resolveNativePath } from "../../ffi/native.ts";
import { hostOutputBackends, HostVirtualOutputSource } from "../../src/capture/host-output.ts";
import { createSwayOutput, PORTAL_WLR_NAME, SwayIpc, WlrootsBackend, type SwayOutputEnd } from "../../src/capture/wlroots-output.ts";
import { desktopSessionEnv, swaySessionIn } from "../../src/capture/service.ts";
import { tempDir } from "../helpers/env.ts";
import { probeStream } from "./ffmpeg.ts";
import { loadCaptureNative, collectAccessUnits } from "./helpers.ts";
import { HAVE_SWAY, MISSING_SWAY, RENDER_NODE, startSwaySession, type SwaySession } from "./sway-session.ts";

if (!HAVE_SWAY) console.warn(`skip: wlroots backend tests need ${MISSING_SWAY.join(", ")} (not installed)`);
if (HAVE_SWAY && !RENDER_NODE)
  console.warn("skip: capturing a sway output needs a DRM render node (/dev/dri/renderD*): without one wlroots renders with pixman, whose screencopy has no dmabuf format, which xdg-desktop-portal-wlr 0.7 requires");

const native = new HostOutputNative(resolveNativePath({}));
const capture = loadCaptureNative();
const dir = tempDir("neuron-wlr-");
afterAll(() => {
  native.close();
  capture.close();
  dir.cleanup();
});

describe.skipIf(!HAVE_SWAY)("wlroots backend on a headless sway", () => {
  let s: SwaySession;
  let ipc: SwayIpc;
  const env = () => ({ busAddress: null, pipewireSocket: s.pipewireSocket, swaySocket: s.swaySocket, waylandDisplay: s.waylandDisplay, runtimeDir: dir.path });
  const active = () => ipc.outputs().filter((o) => o.active).map((o) => o.name);
  beforeAll(async () => {
    s = await startSwaySession();
    ipc = new SwayIpc(s.swaySocket);
  }, 30_000);
  afterAll(async () => {
    await s?.stop();
  });

  /** What closing an output did on this sway: checked against get_outputs each time. */
  let removal: SwayOutputEnd | null = null;
  const expectEnded = (name: string, end: SwayOutputEnd, before: string[]) => {
    const listed = ipc.outputs().find((o) => o.name === name);
    if (end.result === "unplugged") expect(listed).toBeUndefined();
    if (end.result === "disabled") expect(listed?.active).toBe(false);
    if (end.result === "left") {
      expect(listed?.active).toBe(true);
      expect(end.reason).toContain("did not commit");
      expect(active().filter((n) => !before.includes(n))).toEqual([name]);
    } else expect(active()).toEqual(before);
    if (!removal && end.result === "left") console.warn(`skip: the output cannot be removed after the session on this sway (${ipc.version()}): ${end.reason}`);
    removal ??= end;
  };

  test("create_output gives a new HEADLESS-N at exactly the mode; removed on close where sway can", () => {
    const before = active();
    const out = createSwayOutput(ipc, { width: 640, height: 480, fps: 30 });
    let end: SwayOutputEnd;
    try {
      expect(out.name).toMatch(/^HEADLESS-\d+$/);
      expect(before).not.toContain(out.name);
      expect(ipc.outputs().find((o) => o.name === out.name)).toEqual({ name: out.name, width: 640, height: 480, refresh: 30000, active: true });
    } finally {
      end = out.close();
    }
    expectEnded(out.name, end, before);
    expect(out.close()).toBe(end); // idempotent
    // two sessions at once: two outputs, each at its own mode
    const before2 = active();
    const a = createSwayOutput(ipc, { width: 1280, height: 720, fps: 60 });
    const b = createSwayOutput(ipc, { width: 800, height: 600, fps: 75 });
    expect(a.name).not.toBe(b.name);
    try {
      const now = ipc.outputs();
      expect(now.find((o) => o.name === a.name)).toMatchObject({ width: 1280, height: 720, refresh: 60000, active: true });
      expect(now.find((o) => o.name === b.name)).toMatchObject({ width: 800, height: 600, refresh: 75000, active: true });
    } finally {
      const ea = a.close();
      expectEnded(b.name, b.close(), [...before2, ...(ea.result === "left" ? [a.name] : [])]);
    }
  });

  test("a mode sway refuses is a clear error, and the output goes where sway can remove it", () => {
    const before = active();
    expect(() => createSwayOutput(ipc, { width: 0, height: 480, fps: 30 })).toThrow(/sway: output HEADLESS-\d+ mode --custom 0x480@30Hz|asked for 0x480@30/);
    const added = active().filter((n) => !before.includes(n));
    expect(added).toEqual(removal?.result === "left" ? [expect.stringMatching(/^HEADLESS-\d+$/)] : []);
  });

  test("the probe says what it measured; without sway's IPC it says so", () => {
    const p = new WlrootsBackend(native, env()).probe();
    if (RENDER_NODE) expect(p).toEqual({ available: true });
    else {
      expect(p.available).toBe(false);
      expect(p.reason).toContain("no DRM render node in /dev/dri");
      expect(p.reason).toContain("xdg-desktop-portal-wlr 0.7");
    }
    expect(new WlrootsBackend(native, { ...env(), swaySocket: null }).probe().reason).toContain("no sway IPC socket is known");
    expect(new WlrootsBackend(native, { ...env(), swaySocket: join(dir.path, "nope.sock") }).probe().reason).toContain("does not answer");
    expect(new WlrootsBackend(null, env()).probe().reason).toBe("the native library is not loaded");
    // a render-node directory with a node: the probe passes everything else it checks
    const dri = join(dir.path, "dri");
    Bun.spawnSync(["mkdir", "-p", dri]);
    writeFileSync(join(dri, "renderD128"), "");
    expect(new WlrootsBackend(native, { ...env(), driDir: dri }).probe()).toEqual({ available: true });
    // the portal binding refuses what it cannot use
    expect(() => PortalScreenCast.open(native, `unix:path=${join(dir.path, "no-bus")}`, PORTAL_WLR_NAME)).toThrow("cannot connect to the bus");
    expect(() => PortalScreenCast.open(native, `unix:path=${join(dir.path, "no-bus")}`, "not a bus name")).toThrow("cannot connect to the bus");
    const listed = hostOutputBackends(native, env()).find((b) => b.name === "wlroots")!;
    expect(listed).toBeInstanceOf(WlrootsBackend);
  });

  test.skipIf(RENDER_NODE)("without a render node the portal refuses the output: the backend reports the portal's reason and leaves nothing behind", () => {
    const before = active();
    const t0 = performance.now();
    let message = "";
    try {
      new WlrootsBackend(native, env()).create({ width: 640, height: 480, fps: 30 }, 5000).close();
    } catch (err) {
      message = (err as Error).message;
    }
    if (process.env.NEURON_TEST_VERBOSE) console.log("wlroots create:", message, `${Math.round(performance.now() - t0)} ms`);
    expect(message).toContain("wlroots: ");
    expect(message).toContain("org.freedesktop.impl.portal.ScreenCast.Start");
    expect(message).toContain("unable to receive a valid format from wlr_screencopy");
    const added = active().filter((n) => !before.includes(n));
    expect(added).toEqual(removal?.result === "left" ? [expect.stringMatching(/^HEADLESS-\d+$/)] : []);
    expect(readdirSync(dir.path).filter((n) => n.startsWith("neuron-xdpw-"))).toEqual([]);
  }, 20_000);

  test.skipIf(!RENDER_NODE)("a virtual output at the client's mode: captured, encoded, decoded by ffprobe, gone after", async () => {
    const before = active();
    const backend = new WlrootsBackend(native, env());
    const source = new HostVirtualOutputSource(native, backend, { width: 640, height: 480, fps: 30 }, s.pipewireSocket);
    let pipeline: CapturePipeline | null = null;
    try {
      source.attach(5000);
      expect(active().length).toBe(before.length + 1);
      expect(source.pwStats()).toMatchObject({ width: 640, height: 480, state: "streaming" });
      pipeline = CapturePipeline.startFromStream(capture, source.pwStream.nativeHandle, { codec: "h264", fps: 30, bitrateKbps: 4000, threads: 2, ringSlots: 16 });
      const chunks = await collectAccessUnits(pipeline, 15, 20_000);
      expect(chunks.length).toBe(15);
      const file = join(dir.path, "wlr.h264");
      writeFileSync(file, Buffer.concat(chunks));
      expect(await probeStream(file, "h264")).toMatchObject({ codec: "h264", width: 640, height: 480, frames: 15 });
    } finally {
      pipeline?.stop();
      source.close();
    }
    expect(active()).toEqual(before);
    expect(existsSync(join(dir.path, "wlr.h264"))).toBe(true);
  }, 40_000);
});

describe("the sway session of the desktop user", () => {
  test("the Wayland socket and sway's IPC socket (the newest of the user) in the runtime dir; none without", () => {
    const run = join(dir.path, "run-1000");
    Bun.spawnSync(["mkdir", "-p", run]);
    expect(swaySessionIn(run, 1000)).toEqual({ swaySocket: null, waylandDisplay: null });
    writeFileSync(join(run, "wayland-1"), "");
    writeFileSync(join(run, "wayland-1.lock"), "");
    expect(swaySessionIn(run, 1000)).toEqual({ swaySocket: null, waylandDisplay: join(run, "wayland-1") }); // KWin, Mutter: no sway IPC
    writeFileSync(join(run, "sway-ipc.1000.41.sock"), "");
    writeFileSync(join(run, "sway-ipc.1001.42.sock"), ""); // another user's
    expect(swaySessionIn(run, 1000)).toEqual({ swaySocket: join(run, "sway-ipc.1000.41.sock"), waylandDisplay: join(run, "wayland-1") });
    expect(swaySessionIn(join(dir.path, "missing"), 1000)).toEqual({ swaySocket: null, waylandDisplay: null });
    const own = desktopSessionEnv(null, { SWAYSOCK: "/run/user/5/sway-ipc.5.9.sock", WAYLAND_DISPLAY: "wayland-2", XDG_RUNTIME_DIR: "/run/user/5" });
    expect(own).toMatchObject({ swaySocket: "/run/user/5/sway-ipc.5.9.sock", waylandDisplay: "/run/user/5/wayland-2", pipewireSocket: "/run/user/5/pipewire-0" });
    expect(desktopSessionEnv(null, {})).toMatchObject({ swaySocket: null, waylandDisplay: null });
  });
});
