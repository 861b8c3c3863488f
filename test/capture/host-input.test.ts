/**
 * A host-desktop session's input, end to end: the GameStream host opens a virtual output of
 * the private mutter --headless session at the client's mode (PLAY), the spec control client
 * sends Moonlight input packets (absolute and relative motion, a click, a key, wheel clicks),
 * and they reach a Wayland client on that output (weston-eventdemo logs what it receives)
 * through Mutter's RemoteDesktop session linked to the stream.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { enetAvailable } from "../../ffi/enet.ts";
import { NativeLibrary } from "../../ffi/native.ts";
import { ControlType } from "../../src/gamestream/control/envelope.ts";
import { encodeInputEvent } from "../../src/input/encode.ts";
import { ControlTestClient } from "../gamestream/control-client.ts";
import { gameStreamTestService, launchSession, setTestStream } from "../gamestream/control-helpers.ts";
import { freeBasePort } from "../gamestream/helpers.ts";
import { tempDir, testConfig } from "../helpers/env.ts";
import { waitFor } from "../input/qemu.ts";
import { HAVE_MUTTER, MISSING_MUTTER, startMutterSession, type DesktopSession } from "./desktop-session.ts";

const SKIP = !HAVE_MUTTER
  ? `needs ${MISSING_MUTTER.join(", ")}`
  : !Bun.which("weston-eventdemo") || !Bun.which("stdbuf")
    ? "needs weston-eventdemo (weston) and stdbuf"
    : enetAvailable()
      ? null
      : "libenet.so.7 is not installed";
if (SKIP) console.warn(`skip: host-desktop input test ${SKIP}`);

const W = 640;
const H = 480;

describe.skipIf(SKIP !== null)("host-desktop input: Moonlight's control stream → Mutter RemoteDesktop → a Wayland client", () => {
  const dir = tempDir("neuron-hostinput-");
  let s: DesktopSession;
  let svc: ReturnType<typeof gameStreamTestService>;
  beforeAll(async () => {
    s = await startMutterSession();
    const config = testConfig({ stateDir: dir.path, gamestreamHost: "127.0.0.1", gamestreamPort: freeBasePort(), mdns: false, hostname: "neuron-test" });
    svc = gameStreamTestService(config, { nativePath: NativeLibrary.load().path, hostSession: () => ({ busAddress: s.busAddress, pipewireSocket: s.pipewireSocket }) });
    await svc.service.start();
  }, 40_000);
  afterAll(async () => {
    await svc?.service.stop();
    svc?.db.close();
    await s?.stop();
    dir.cleanup();
  });

  test("keys, pointer, buttons and wheel reach the client; the backend says what it is", async () => {
    const { service } = svc;
    const { key, session } = launchSession({ service }, null, { appId: 3, appName: "This PC", width: W, height: H, fps: 30, appKind: "host-desktop" });
    setTestStream(session, { bitrateKbps: 2000, encryptVideo: false });
    service.sessions.markPlaying(session);
    const vs = service.video?.stream.get(session.id);
    expect(vs?.stats().source).toBe("host-desktop");
    expect(vs?.hostInput).toMatchObject({ width: W, height: H });
    expect((await s.monitors()).map((m) => m.mode)).toContain(`${W}x${H}`);

    const client = Bun.spawn(["stdbuf", "-oL", "weston-eventdemo", "--log-key", "--log-button", "--log-motion", "--log-axis", "--log-focus", `--width=${W - 40}`, `--height=${H - 40}`], {
      env: { ...s.env, WAYLAND_DISPLAY: "wayland-neuron" },
      stdout: "pipe",
      stderr: "ignore",
    });
    let out = "";
    const reader = (async () => {
      for await (const chunk of client.stdout) out += new TextDecoder().decode(chunk);
    })();
    const control = new ControlTestClient(key);
    try {
      expect(await control.connect(service.ports.control, session.connectData)).toBe(true);
      await waitFor(() => service.control.inputBackendOf(session.id) !== null, 10_000, "the session's input backend");
      expect(service.control.inputBackendOf(session.id)?.name).toBe("host-session");
      expect(service.control.stats(session.id)?.input?.backend).toBe("host-session"); // as the API reports it
      await Bun.sleep(800); // the client's window maps on the output
      const send = (ev: Parameters<typeof encodeInputEvent>[0]) => control.send(ControlType.INPUT, encodeInputEvent(ev), { channel: 2 });
      // absolute motion on a 1280x960 reference surface, swept over the output (where the window is)
      for (let y = 40; y < 960; y += 120)
        for (let x = 40; x < 1280; x += 120) {
          send({ kind: "mouseMoveAbs", x, y, width: 1280, height: 960 });
          await Bun.sleep(3);
        }
      await waitFor(() => /motion time: \d+, x: [\d.]+, y: [\d.]+/.test(out), 5000, `motion in the client (${out.slice(-300)})`);
      send({ kind: "mouseMoveAbs", x: 640, y: 480, width: 1280, height: 960 }); // the output's centre
      await Bun.sleep(100);
      const before = out.length;
      send({ kind: "mouseMoveRel", dx: 7, dy: 5 });
      await waitFor(() => /motion time: \d+, x: [\d.]+, y: [\d.]+/.test(out.slice(before)), 5000, "relative motion in the client");
      send({ kind: "mouseButton", down: true, button: "left" });
      send({ kind: "mouseButton", down: false, button: "left" });
      await waitFor(() => /button time: \d+, button: 272, state: released/.test(out), 5000, `the click in the client (${out.slice(-300)})`);
      // a headless compositor has no keyboard until the session's virtual one takes its first key:
      // the client binds it then (that key goes nowhere), and gets the keyboard focus
      send({ kind: "key", down: true, vk: 0x10, keyCode: 0x10, modifiers: 0, flags: 0 });
      send({ kind: "key", down: false, vk: 0x10, keyCode: 0x10, modifiers: 0, flags: 0 });
      await waitFor(() => /^focus x: \d+, y: \d+$/m.test(out), 5000, `keyboard focus in the client (${out.slice(-300)})`);
      send({ kind: "key", down: true, vk: 0x41, keyCode: 0x41, modifiers: 0, flags: 0 });
      send({ kind: "key", down: false, vk: 0x41, keyCode: 0x41, modifiers: 0, flags: 0 });
      send({ kind: "scroll", amount: -240 }); // two clicks towards the user: down
      send({ kind: "hscroll", amount: 60 }); // half a click to the right (a high-resolution wheel): smooth
      await waitFor(() => /key: 30, unicode: \d+, state: released/.test(out) && /axis/.test(out), 5000, `key A and the wheel in the client (${out.slice(-400)}; backend ${JSON.stringify(service.control.inputBackendOf(session.id)?.stats)})`);
      if (process.env.NEURON_TEST_VERBOSE) console.log(out.split("\n").filter((l) => /key|button|axis/.test(l)).join("\n"));
      expect(out).toMatch(/key: 30, unicode: 97, state: pressed/);
      // wl_pointer axis 0 (vertical), a positive value: scrolled down
      expect(out).toMatch(/axis discrete axis: 0 value: 1/);
      expect(out).toMatch(/axis time: \d+, axis: vertical, value: 10\.0+/);
      await waitFor(() => /axis time: \d+, axis: horizontal, value: 5\.0+/.test(out), 5000, `the smooth horizontal scroll (${out.slice(-300)})`);
      const st = service.control.inputBackendOf(session.id)!.stats;
      expect(st.delivered).toBeGreaterThanOrEqual(5);
      expect(st.refusedBatches).toBe(0);
    } finally {
      control.close();
      client.kill();
      await client.exited;
      await reader.catch(() => undefined);
      service.sessions.endAll("ended-by-api");
    }
  }, 40_000);
});
