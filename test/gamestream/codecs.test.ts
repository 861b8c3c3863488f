/**
 * Codecs offered to Moonlight clients: the real encoders (libx264/libx265 through libneuron)
 * timed on their native thread, the verdict rule with forced settings, serverinfo's
 * ServerCodecModeSupport before and after the measurement, the doctor check and the CLI.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { resolveNativePath } from "../../ffi/native.ts";
import { checkCodecs } from "../../src/capture/doctor.ts";
import type { EncoderSpeedResult } from "../../src/capture/model.ts";
import { CaptureService } from "../../src/capture/service.ts";
import { childSpeedMeter } from "../../src/capture/speed-child.ts";
import { GameStreamCodecSettingsSchema, type GameStreamCodecSettings } from "../../src/gamestream/codec-settings.ts";
import { codecVerdict, CodecSupport, largestMode, supportBits } from "../../src/gamestream/codecs.ts";
import { CODEC } from "../../src/gamestream/nvhttp.ts";
import { silentLogger } from "../../src/log.ts";
import { BUN, REPO_ROOT, runCli, tempDir, testConfig, testCore } from "../helpers/env.ts";
import { GameStreamTestClient, makeClientIdentity, type ClientIdentity } from "./client.ts";
import { freeBasePort } from "./helpers.ts";

const shm = tempDir("neuron-codecs-shm-");
const capture = new CaptureService(shm.path, resolveNativePath({}));
let keys: ReturnType<typeof tempDir>;
let alice: ClientIdentity;
beforeAll(() => {
  keys = tempDir("neuron-codecs-keys-");
  alice = makeClientIdentity(keys.path);
});
afterAll(() => {
  capture.close();
  shm.cleanup();
  keys.cleanup();
});

const settings = (over: Record<string, unknown> = {}): GameStreamCodecSettings => GameStreamCodecSettingsSchema.parse(over);

function result(over: Partial<EncoderSpeedResult> = {}): EncoderSpeedResult {
  return { codec: "hevc", encoder: "libx265", hardware: false, reason: "software encoder", width: 1920, height: 1080, fps: 60, frames: 30, measuredFps: 100, encodeP50Ms: 10, encodeMaxMs: 12, error: null, ...over };
}

describe("the real encoders, timed on a native thread", () => {
  test("libx264 and libx265 at 720p60: frames timed, fps and the chosen encoder", async () => {
    for (const [codec, encoder] of [["h264", "libx264"], ["hevc", "libx265"]] as const) {
      const r = await capture.measureSpeed(codec, { width: 1280, height: 720, fps: 60 }, { maxFrames: 4, maxMs: 5000 });
      expect(r).toMatchObject({ codec, encoder, hardware: false, width: 1280, height: 720, fps: 60, frames: 4, error: null });
      expect(r.measuredFps).toBeGreaterThan(0);
      expect(r.encodeP50Ms).toBeGreaterThan(0);
      expect(r.encodeMaxMs).toBeGreaterThanOrEqual(r.encodeP50Ms);
    }
  });

  test("odd sizes are encoded one smaller; a cancelled run stops with a clear error", async () => {
    const r = await capture.measureSpeed("h264", { width: 321, height: 241, fps: 30 }, { maxFrames: 3 });
    expect(r).toMatchObject({ width: 320, height: 240, frames: 3 });
    let n = 0;
    await expect(capture.measureSpeed("hevc", { width: 1920, height: 1080, fps: 60 }, { maxFrames: 600, maxMs: 60_000, cancelled: () => ++n > 2 })).rejects.toThrow(
      "the encoder measurement was stopped",
    );
  });

  test("bad limits are refused and change nothing", async () => {
    await expect(capture.measureSpeed("h264", { width: 8, height: 8, fps: 60 })).rejects.toThrow();
    await expect(capture.measureSpeed("h264", { width: 320, height: 240, fps: 60 }, { maxFrames: 0 })).rejects.toThrow();
    const ok = await capture.measureSpeed("h264", { width: 320, height: 240, fps: 60 }, { maxFrames: 2 });
    expect(ok.frames).toBe(2);
  });
});

describe("timing in a child process (what serve uses)", () => {
  const meter = childSpeedMeter([BUN, join(REPO_ROOT, "src", "main.ts")], { env: { PATH: process.env.PATH, HOME: process.env.HOME, NEURON_CONFIG: join(REPO_ROOT, "test", "fixtures", "config", "test.json") } });

  test("the same result as in process; a refused mode and a stop are clear errors", async () => {
    const r = await meter.measureSpeed("hevc", { width: 320, height: 192, fps: 30 }, { maxFrames: 3 });
    expect(r).toMatchObject({ codec: "hevc", encoder: "libx265", hardware: false, width: 320, height: 192, fps: 30, frames: 3, error: null });
    expect(r.measuredFps).toBeGreaterThan(0);
    await expect(meter.measureSpeed("h264", { width: 8, height: 8, fps: 30 })).rejects.toThrow("encoder timing process failed (exit 1)");
    let polls = 0;
    await expect(meter.measureSpeed("hevc", { width: 1920, height: 1080, fps: 60 }, { maxFrames: 600, maxMs: 60_000, cancelled: () => ++polls > 3 })).rejects.toThrow("the encoder measurement was stopped");
  });
});

describe("the verdict rule", () => {
  const fast = (hz: number) => [result({ width: 1280, height: 720, measuredFps: hz * 2 }), result({ measuredFps: hz })];

  test("auto: offered when the software speed sustains the largest mode with the margin", () => {
    const s = settings();
    expect(largestMode(s.modes)).toEqual({ width: 1920, height: 1080, fps: 60 });
    const yes = codecVerdict("hevc", s, fast(75));
    expect(yes).toMatchObject({ advertised: true, state: "done", encoder: "libx265", hardware: false });
    expect(yes.modes.map((m) => [m.mode, m.neededFps, m.sustains])).toEqual([["1280x720x60", 75, true], ["1920x1080x60", 75, true]]);
    const no = codecVerdict("hevc", s, fast(74.9));
    expect(no.advertised).toBe(false);
    expect(no.reason).toBe("libx265 is too slow for 1920x1080x60: 74.9 fps measured, 75 needed");
    // the margin is configurable; 0 means the mode's own frame rate
    expect(codecVerdict("hevc", settings({ marginPct: 0 }), fast(60)).advertised).toBe(true);
    // the largest mode decides even when a smaller one is slow
    expect(codecVerdict("hevc", settings({ modes: "1920x1080x30,1280x720x120" }), [result({ measuredFps: 10 }), result({ width: 1280, height: 720, measuredFps: 200 })]).advertised).toBe(true);
  });

  test("hardware is offered without timing; no encoder and failed timing are not", () => {
    expect(codecVerdict("hevc", settings(), [result({ encoder: "hevc_nvenc", hardware: true, measuredFps: null })])).toMatchObject({ advertised: true, hardware: true, modes: [], reason: "hardware encoder hevc_nvenc opens" });
    const none = codecVerdict("hevc", settings(), [result({ encoder: null, reason: "no encoder could be opened", measuredFps: null, frames: 0 })]);
    expect(none).toMatchObject({ advertised: false, encoder: null });
    expect(none.reason).toContain("no hevc encoder opens");
    expect(codecVerdict("hevc", settings(), [result(), result({ measuredFps: null, frames: 0, error: "encoding failed (status -9)" })]).advertised).toBe(false);
  });

  test("forced settings win; H.264 is offered even when slow", () => {
    expect(codecVerdict("hevc", settings({ hevc: "off" }), fast(500))).toMatchObject({ advertised: false, state: "skipped", reason: "off in config (gamestreamCodecs.hevc)" });
    expect(codecVerdict("hevc", settings({ hevc: "on" }), [])).toMatchObject({ advertised: true, state: "skipped" });
    const slow = codecVerdict("h264", settings(), fast(20).map((r) => ({ ...r, codec: "h264" as const, encoder: "libx264" })));
    expect(slow.advertised).toBe(true);
    expect(slow.reason).toContain("offered anyway: every client needs H.264");
  });

  test("bits: pending codecs count as H.264 only", () => {
    const pending = { ...codecVerdict("hevc", settings(), []), state: "pending" as const, advertised: false };
    const h264 = { ...codecVerdict("h264", settings(), []), state: "pending" as const, advertised: true };
    expect(supportBits([h264, pending])).toBe(CODEC.H264);
    expect(supportBits([h264, { ...pending, state: "measuring" }])).toBe(CODEC.H264);
    expect(supportBits([{ ...h264, state: "done" }, codecVerdict("hevc", settings(), fast(100))])).toBe(CODEC.H264 | CODEC.HEVC);
  });

  test("bad settings are refused with the reason", () => {
    expect(() => testConfig({}, { NEURON_GAMESTREAM_CODECS_H264: "off" })).toThrow("h264 is always offered");
    expect(() => testConfig({}, { NEURON_GAMESTREAM_CODECS_MODES: "1920x1080" })).toThrow('mode "1920x1080": expected WIDTHxHEIGHTxFPS');
    expect(() => testConfig({}, { NEURON_GAMESTREAM_CODECS_MODES: "1x1x1" })).toThrow("expected WIDTHxHEIGHTxFPS");
    expect(() => testConfig({}, { NEURON_GAMESTREAM_CODECS_HEVC: "maybe" })).toThrow("gamestreamCodecs.hevc");
    expect(testConfig({}, { NEURON_GAMESTREAM_CODECS_HEVC: "off", NEURON_GAMESTREAM_CODECS_MODES: "640x360x30, 1280x720x60" }).gamestreamCodecs).toMatchObject({
      hevc: "off",
      modes: [{ width: 640, height: 360, fps: 30 }, { width: 1280, height: 720, fps: 60 }],
    });
  });
});

describe("CodecSupport over the real encoders", () => {
  test("H.264 only until measured; then HEVC where libx265 sustains the mode, not where it cannot", async () => {
    // a mode libx265 sustains on any machine (tiny frames, 1 fps) and one it cannot (1080p at 240 fps)
    const easy = new CodecSupport(capture, settings({ modes: "160x96x1" }), silentLogger, { maxFrames: 3 });
    expect(easy.bits()).toBe(CODEC.H264);
    expect(easy.report()).toMatchObject({ measured: false, bits: CODEC.H264 });
    const done = await easy.measure();
    expect(done.measured).toBe(true);
    expect(done.bits).toBe(CODEC.H264 | CODEC.HEVC);
    expect(done.codecs.map((v) => [v.codec, v.encoder, v.advertised])).toEqual([["h264", "libx264", true], ["hevc", "libx265", true]]);
    expect(easy.measure()).resolves.toBe(done); // measured once

    const hard = new CodecSupport(capture, settings({ modes: "1920x1080x240" }), silentLogger, { maxFrames: 2 });
    const r = await hard.measure();
    expect(r.bits).toBe(CODEC.H264);
    expect(r.codecs[1]!.reason).toMatch(/^libx265 is too slow for 1920x1080x240: [\d.]+ fps measured, 300 needed$/);
    expect(checkCodecs(r)).toMatchObject({ id: "codecs", status: "warn" });
    expect(checkCodecs(r).detail).toContain("HEVC not offered: libx265 is too slow for 1920x1080x240");
  });

  test("forced on is offered before any measurement; off never", async () => {
    const on = new CodecSupport(capture, settings({ hevc: "on", modes: "160x96x1" }), silentLogger, { maxFrames: 2 });
    expect(on.bits()).toBe(CODEC.H264 | CODEC.HEVC);
    const off = new CodecSupport(capture, settings({ hevc: "off", modes: "160x96x1" }), silentLogger, { maxFrames: 2 });
    expect((await off.measure()).bits).toBe(CODEC.H264);
    expect(checkCodecs(off.report()).detail).toContain("HEVC not offered: off in config");
    expect(checkCodecs(new CodecSupport(capture, settings(), silentLogger).report()).detail).toBe("still measuring the encoders; H.264 only meanwhile");
  });
});

describe("serverinfo", () => {
  test("ServerCodecModeSupport and MaxLumaPixelsHEVC follow the measurement", async () => {
    const { core, cleanup } = testCore({ gamestreamHost: "127.0.0.1", gamestreamPort: freeBasePort(), mdns: false, gamestreamCodecs: { modes: "160x96x1" } });
    try {
      const ports = await core.gamestream().start();
      const client = new GameStreamTestClient("127.0.0.1", ports.http, ports.https, alice);
      const before = await client.http("/serverinfo");
      expect(before.fields).toMatchObject({ ServerCodecModeSupport: String(CODEC.H264), MaxLumaPixelsHEVC: "0" });
      await core.codecs.measure();
      const after = await client.http("/serverinfo");
      expect(after.fields).toMatchObject({ ServerCodecModeSupport: String(CODEC.H264 | CODEC.HEVC), MaxLumaPixelsHEVC: "1869449984" });
      // the doctor of the running service reports the service's verdicts
      const info = await core.system.info();
      expect(info.doctor.checks.find((c) => c.id === "codecs")?.detail).toContain("HEVC offered: libx265 sustains 160x96x1");
    } finally {
      await core.gamestream().stop();
      cleanup();
    }
  });

  test("hevc off in config: never offered", async () => {
    const { core, cleanup } = testCore({ gamestreamHost: "127.0.0.1", gamestreamPort: freeBasePort(), mdns: false, gamestreamCodecs: { hevc: "off", modes: "160x96x1" } });
    try {
      const ports = await core.gamestream().start();
      await core.codecs.measure();
      const info = await new GameStreamTestClient("127.0.0.1", ports.http, ports.https, alice).http("/serverinfo");
      expect(info.fields.ServerCodecModeSupport).toBe(String(CODEC.H264));
    } finally {
      await core.gamestream().stop();
      cleanup();
    }
  });
});

describe("CLI", () => {
  test("capture encoders prints the speed per mode and the verdict; --json carries them", () => {
    const env = { NEURON_GAMESTREAM_CODECS_MODES: "160x96x1,320x192x1" };
    const text = runCli(["capture", "encoders"], env);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^hevc: libx265/m);
    expect(text.stdout).toMatch(/ {2}320x192x1 +[\d.]+ fps \(p50 [\d.]+ ms\/frame\) {2}sustains \(1\.3 fps needed\)/);
    expect(text.stdout).toContain("offered to clients: yes (libx265 sustains 320x192x1");
    const json = runCli(["capture", "encoders", "--codec", "hevc", "--json"], { ...env, NEURON_GAMESTREAM_CODECS_HEVC: "off" });
    expect(json.code).toBe(0);
    const body = JSON.parse(json.stdout);
    expect(body.codecs.map((c: { codec: string }) => c.codec)).toEqual(["hevc"]);
    expect(body.codecs[0]).toMatchObject({ chosen: "libx265", verdict: { advertised: false, state: "skipped" } });
    const probe = JSON.parse(runCli(["capture", "encoders", "--no-measure", "--json"]).stdout);
    expect(probe.codecs.map((c: { chosen: string; verdict: unknown }) => [c.chosen, c.verdict])).toEqual([["libx264", null], ["libx265", null]]);
  });

  test("doctor measures and reports the codec verdicts", () => {
    const dir = tempDir("neuron-codecs-doctor-");
    try {
      const r = runCli(["doctor", "--json", "--state-dir", join(dir.path, "s")], { NEURON_GAMESTREAM_CODECS_MODES: "160x96x1" });
      const check = JSON.parse(r.stdout).checks.find((c: { id: string }) => c.id === "codecs");
      expect(check.detail).toContain("H264 offered: libx264 sustains 160x96x1");
      expect(check.detail).toContain("HEVC offered: libx265 sustains 160x96x1");
    } finally {
      dir.cleanup();
    }
  });
});
