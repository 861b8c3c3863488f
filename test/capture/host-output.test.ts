/**
 * The host's own desktop through a per-session virtual output: mutter --headless with
 * pipewire and wireplumber in a private D-Bus session this test starts. A virtual output at
 * the client's mode is created, captured through PipeWire, encoded by the native pipeline
 * and decoded by ffprobe, and gone after the session. The FrameSource contract runs on it.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { CapturePipeline } from "../../ffi/capture.ts";
import { HostOutputNative, MutterScreenCast, PwVideoStream } from "../../ffi/hostout.ts";
import { resolveNativePath } from "../../ffi/native.ts";
import { chooseHostOutputBackend, hostOutputBackends, HostVirtualOutputSource, MutterBackend } from "../../src/capture/host-output.ts";
import { tempDir } from "../helpers/env.ts";
import { HAVE_MUTTER, MISSING_MUTTER, startMutterSession, type DesktopSession } from "./desktop-session.ts";
import { probeStream } from "./ffmpeg.ts";
import { loadCaptureNative, collectAccessUnits } from "./helpers.ts";
import { frameSourceContract } from "./source-contract.ts";
import { AppCreate } from "../../src/apps/model.ts";
import { openVideoSource } from "../../src/gamestream/video/source.ts";
import { hostDesktopOpener, hostInputCapability } from "../../src/capture/host-output.ts";

if (!HAVE_MUTTER) console.warn(`skip: host desktop tests need ${MISSING_MUTTER.join(", ")} (not installed)`);
const HAVE_CLIENT = Bun.which("weston-simple-shm") !== null;
const native = new HostOutputNative(resolveNativePath({}));
const capture = loadCaptureNative();
const dir = tempDir("neuron-hostout-");
afterAll(() => {
  native.close();
  capture.close();
  dir.cleanup();
});

const RUN = HAVE_MUTTER && HAVE_CLIENT;

if (RUN)
  frameSourceContract("host virtual output (mutter)", async () => {
    const s = await startMutterSession();
    const backend = new MutterBackend(native, { busAddress: s.busAddress, pipewireSocket: s.pipewireSocket });
    const source = new HostVirtualOutputSource(native, backend, { width: 320, height: 240, fps: 60 }, s.pipewireSocket);
    const origAttach = source.attach.bind(source);
    // an animating client on the output once it exists: Mutter sends frames on damage only
    source.attach = (ms: number) => {
      origAttach(ms);
      s.client(["weston-simple-shm"]);
    };
    return {
      source,
      width: 320,
      height: 240,
      stopProducer: () => s.killCompositor(),
      async cleanup() {
        source.close();
        await s.stop();
      },
    };
  });

describe.skipIf(!RUN)("host desktop through Mutter's RecordVirtual", () => {
  let s: DesktopSession;
  beforeAll(async () => {
    s = await startMutterSession();
  }, 30_000);
  afterAll(async () => {
    await s?.stop();
  });

  test("a virtual output at the client's mode: created, captured, encoded, decoded by ffprobe, gone after", async () => {
    const before = await s.monitors();
    const backend = new MutterBackend(native, { busAddress: s.busAddress, pipewireSocket: s.pipewireSocket });
    const source = new HostVirtualOutputSource(native, backend, { width: 640, height: 480, fps: 30 }, s.pipewireSocket);
    let pipeline: CapturePipeline | null = null;
    const client = s.client(["weston-simple-shm"]);
    try {
      source.attach(5000);
      const during = await s.monitors();
      expect(during.length).toBe(before.length + 1);
      expect(during.map((m) => m.mode)).toContain("640x480");
      expect(source.pwStats()).toMatchObject({ width: 640, height: 480, fpsNum: 30, state: "streaming" });
      pipeline = CapturePipeline.startFromStream(capture, source.pwStream.nativeHandle, { codec: "h264", fps: 30, bitrateKbps: 4000, threads: 2, ringSlots: 16 });
      const chunks = await collectAccessUnits(pipeline, 15, 20_000);
      expect(chunks.length).toBe(15);
      expect(pipeline.stats()).toMatchObject({ width: 640, height: 480 });
      const file = join(dir.path, "host.h264");
      writeFileSync(file, Buffer.concat(chunks));
      const probed = await probeStream(file, "h264");
      expect(probed).toMatchObject({ codec: "h264", width: 640, height: 480, frames: 15 });
      expect(probed.keyFrames[0]).toBe(0);
      expect(["shm", "dmabuf"]).toContain(source.pwStats()!.memory);
      expect(source.input).not.toBeNull(); // Mutter's RemoteDesktop linked to the output
      source.input!.pointerAbsolute(10, 10);
    } finally {
      pipeline?.stop();
      source.close();
      client.kill();
    }
    // RAII: the output is gone with the session
    const end = Date.now() + 3000;
    let after = await s.monitors();
    while (after.length !== before.length && Date.now() < end) {
      await Bun.sleep(50);
      after = await s.monitors();
    }
    expect(after).toEqual(before);
  }, 40_000);

  test("a host-desktop app's video: the session's source opens an output at the client's mode and removes it on stop", async () => {
    const before = await s.monitors();
    const open = hostDesktopOpener(resolveNativePath({}), () => ({ busAddress: s.busAddress, pipewireSocket: s.pipewireSocket }));
    const client = s.client(["weston-simple-shm"]);
    const src = openVideoSource(capture, {
      shmDir: dir.path,
      vmName: null,
      appKind: "host-desktop",
      hostDesktop: open,
      encode: { width: 800, height: 600, fps: 30, codec: "h264", bitrateKbps: 4000, threads: 2 },
    });
    try {
      expect(src.kind).toBe("host-desktop");
      expect((await s.monitors()).map((m) => m.mode)).toContain("800x600");
      const buf = new Uint8Array(src.slotBytes);
      let aus = 0;
      const deadline = Date.now() + 15_000;
      while (aus < 5 && Date.now() < deadline) {
        if (src.pipeline.poll(buf)) aus++;
        else await Bun.sleep(5);
      }
      expect(aus).toBe(5);
    } finally {
      src.stop();
      client.kill();
    }
    const end = Date.now() + 3000;
    while ((await s.monitors()).length !== before.length && Date.now() < end) await Bun.sleep(50);
    expect(await s.monitors()).toEqual(before);
  }, 30_000);

  test("input for the host session: Mutter's RemoteDesktop where offered, else uinput, else none with reasons", () => {
    const cap = hostInputCapability(native, { busAddress: s.busAddress, pipewireSocket: s.pipewireSocket }, "/nonexistent/uinput");
    expect(cap.backend).toBe("remote-desktop");
    expect(cap.candidates.map((c) => c.backend)).toEqual(["remote-desktop", "libei", "uinput"]);
    expect(cap.candidates[1]!.reason).toContain("portal");
    const none = hostInputCapability(native, { busAddress: null, pipewireSocket: null }, "/nonexistent/uinput");
    expect(none.backend).toBe("none");
    expect(none.reason).toContain("uinput: no /nonexistent/uinput");
    const dev = join(dir.path, "uinput");
    writeFileSync(dev, "");
    expect(hostInputCapability(native, { busAddress: null, pipewireSocket: null }, dev).backend).toBe("uinput");
  });

  test.skipIf(!Bun.which("weston-eventdemo") || !Bun.which("stdbuf"))("input into the host session through the linked RemoteDesktop session reaches a client", async () => {
    const sc = MutterScreenCast.open(native, s.busAddress);
    let stream: PwVideoStream | null = null;
    const c = Bun.spawn(["stdbuf", "-oL", "weston-eventdemo", "--log-key", "--log-button", "--log-motion"], {
      env: { ...s.env, WAYLAND_DISPLAY: "wayland-neuron" },
      stdout: "pipe",
      stderr: "ignore",
    });
    try {
      expect(() => sc.pointerAbsolute(1, 1)).toThrow("input not enabled");
      sc.enableInput(5000);
      const node = sc.recordVirtual(1, 5000);
      stream = PwVideoStream.open(native, { remote: s.pipewireSocket, nodeId: node, width: 640, height: 480, fps: 30, negotiateTimeoutMs: 5000 });
      await Bun.sleep(1000); // the client's window maps on the new output
      for (let y = 20; y < 480; y += 60) for (let x = 20; x < 640; x += 60) {
        sc.pointerAbsolute(x, y);
        await Bun.sleep(5);
      }
      sc.pointerAbsolute(320, 240);
      sc.button(0x110, true); // BTN_LEFT: also gives the window keyboard focus
      sc.button(0x110, false);
      await Bun.sleep(500);
      sc.key(30, true); // KEY_A
      sc.key(30, false);
      await Bun.sleep(500);
    } finally {
      c.kill();
      stream?.close();
      sc.close();
    }
    const out = await new Response(c.stdout).text();
    expect(out).toMatch(/motion time: \d+, x: [\d.]+, y: [\d.]+/);
    expect(out).toMatch(/button time: \d+, button: 272, state: pressed/);
    if (process.env.NEURON_TEST_VERBOSE) console.log(out.split("\n").filter((l) => /key|button/.test(l)).join("\n"));
  }, 30_000);

  test("a link that never negotiates is torn down within its timeout, with the reason", () => {
    // a node that does not exist: the stream ends at once
    let t0 = performance.now();
    expect(() => PwVideoStream.open(native, { remote: s.pipewireSocket, nodeId: 999_999, width: 320, height: 240, fps: 30, negotiateTimeoutMs: 2000 })).toThrow("node 999999");
    expect(performance.now() - t0).toBeLessThan(2500);
    // a virtual output's node that is already taken at another mode: no format is agreed in time
    const backend = new MutterBackend(native, { busAddress: s.busAddress, pipewireSocket: s.pipewireSocket });
    const source = new HostVirtualOutputSource(native, backend, { width: 320, height: 240, fps: 30 }, s.pipewireSocket);
    try {
      source.attach(5000);
      t0 = performance.now();
      let message = "";
      try {
        PwVideoStream.open(native, { remote: s.pipewireSocket, nodeId: source.nodeId!, width: 800, height: 600, fps: 30, negotiateTimeoutMs: 500 }).close();
      } catch (err) {
        message = (err as Error).message;
      }
      if (process.env.NEURON_TEST_VERBOSE) console.log("second link:", message);
      expect(message).toMatch(/negotiated 320x240 format \d+, asked for 800x600|format negotiation did not finish within 500 ms/);
      expect(performance.now() - t0).toBeLessThan(2500);
      expect(source.pwStats()?.state).toBe("streaming");
    } finally {
      source.close();
    }
  });

  test("backends are probed behind one interface; Mutter is chosen, every other says why not", () => {
    const backends = hostOutputBackends(native, { busAddress: s.busAddress, pipewireSocket: s.pipewireSocket });
    const choice = chooseHostOutputBackend(backends);
    expect(choice.backend?.name).toBe("mutter");
    expect(choice.candidates.map((c) => c.name)).toEqual(["mutter", "weston", "kwin", "gamescope", "wlroots"]);
    for (const c of choice.candidates.slice(1)) {
      expect(c.available).toBe(false);
      expect(c.reason!.length).toBeGreaterThan(10);
    }
    const none = chooseHostOutputBackend(hostOutputBackends(native, { busAddress: null, pipewireSocket: null }));
    expect(none.backend).toBeNull();
    expect(none.reason).toContain("mutter: no desktop session bus");
  });
});

describe("host-desktop in the app catalog", () => {
  test("takes neither a command nor a VM", () => {
    expect(AppCreate.safeParse({ name: "This PC", kind: "host-desktop" }).success).toBe(true);
    const withCmd = AppCreate.safeParse({ name: "x", kind: "host-desktop", command: "ls" });
    expect(withCmd.success).toBe(false);
    expect(JSON.stringify(withCmd.error?.issues)).toContain("not allowed for kind host-desktop");
    expect(AppCreate.safeParse({ name: "x", kind: "host-desktop", vmName: "win11" }).success).toBe(false);
  });

  test("without a compositor the session's source says why", () => {
    const open = hostDesktopOpener(resolveNativePath({}), () => ({ busAddress: null, pipewireSocket: null }));
    expect(() =>
      openVideoSource(capture, { shmDir: dir.path, vmName: null, appKind: "host-desktop", hostDesktop: open, encode: { width: 640, height: 480, fps: 30, codec: "h264", bitrateKbps: 2000, threads: 1 } }),
    ).toThrow("no compositor offers a virtual output");
  });
});
