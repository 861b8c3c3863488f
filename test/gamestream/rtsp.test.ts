/**
 * The RTSP handshake against the GameStream host on 127.0.0.1: a client pairs
 * and launches over nvhttp, then runs OPTIONS … PLAY with a client written
 * from the spec (encrypted with the launch's rikey, and plain).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { CODEC } from "../../src/gamestream/constants.ts";
import type { SessionEvent } from "../../src/gamestream/sessions.ts";
import { tempDir } from "../helpers/env.ts";
import { GameStreamTestClient, makeClientIdentity } from "./client.ts";
import { gameStreamHost } from "./helpers.ts";
import { RtspTestClient } from "./rtsp-client.ts";
import { launchDirect, SAMPLE_SDP } from "./rtsp-fixtures.ts";

describe("RTSP after pairing and /launch", () => {
  let host: ReturnType<typeof gameStreamHost>;
  let keys: ReturnType<typeof tempDir>;
  let gs: GameStreamTestClient;
  let rtspPort: number;
  const events: SessionEvent[] = [];

  beforeAll(async () => {
    keys = tempDir("neuron-rtsp-keys-");
    host = gameStreamHost();
    const ports = await host.service.start();
    rtspPort = ports.rtsp;
    expect(rtspPort).toBe(host.config.gamestreamPort + 21);
    host.service.sessions.subscribe((e) => events.push(e));
    gs = new GameStreamTestClient("127.0.0.1", ports.http, ports.https, makeClientIdentity(keys.path));
    const paired = await gs.pair("4321", async () => {
      for (let i = 0; i < 200 && host.service.pendingPairings().length === 0; i++) await Bun.sleep(5);
      host.service.submitPin("4321");
    });
    expect(paired.ok).toBe(true);
  });
  afterAll(async () => {
    await host.close();
    keys.cleanup();
  });

  test("encrypted (rtspenc://): the whole sequence, replies sealed with host sequence numbers 1..7", async () => {
    const rikey = "000102030405060708090a0b0c0d0e0f";
    const launch = await gs.httpsXml("/launch", { appid: "1", mode: "1280x720x60", additionalStates: "1", sops: "0", rikey, rikeyid: "42", localAudioPlayMode: "0", surroundAudioInfo: String((3 << 16) | 2), corever: "1" });
    expect(launch.fields.sessionUrl0).toBe(`rtspenc://127.0.0.1:${rtspPort}`);
    const session = host.service.sessions.active!;
    const c = new RtspTestClient(rtspPort, Buffer.from(rikey, "hex"), launch.fields.sessionUrl0);

    const opt = await c.options();
    expect(opt).toMatchObject({ status: 200, hostSeq: 1 });
    expect(opt.headers.get("cseq")).toBe("1");

    const desc = await c.describe();
    expect(desc.status).toBe(200);
    expect(desc.headers.get("cseq")).toBe("2");
    expect(desc.body).toContain("a=x-ss-general.encryptionSupported:7\r\n");
    expect(desc.body).toContain("a=x-ss-general.encryptionRequested:1\r\n");
    expect(desc.body).toContain("a=x-ss-general.featureFlags:0\r\n");
    expect(desc.body).toContain("a=x-nv-video[0].refPicInvalidation:1");
    expect(desc.body).toContain("a=fmtp:97 surround-params=642014523\r\n");
    expect(desc.body).toContain("a=fmtp:97 surround-params=85301456723\r\n");
    // H.264 only: neither the HEVC marker nor AV1
    expect(desc.body).not.toContain("sprop-parameter-sets=AAAAAU");
    expect(desc.body).not.toContain("AV1/90000");

    const audio = await c.setup("audio/0/0");
    expect(audio.status).toBe(200);
    expect(audio.headers.get("session")).toMatch(/^[0-9A-F]{16};timeout = 90$/);
    expect(audio.headers.get("transport")).toBe(`server_port=${host.service.ports.audio}`);
    const audioPing = audio.headers.get("x-ss-ping-payload")!;
    expect(audioPing).toMatch(/^[A-Za-z0-9]{16}$/);
    expect(audioPing).toBe(session.rtsp.audioPingPayload);

    const video = await c.setup("video/0/0");
    expect(video.headers.get("transport")).toBe(`server_port=${host.service.ports.video}`);
    expect(video.headers.get("x-ss-ping-payload")).toBe(session.rtsp.videoPingPayload);
    expect(session.rtsp.videoPingPayload).not.toBe(audioPing);
    expect(video.headers.get("session")).toBe(audio.headers.get("session"));

    const control = await c.setup("control/13/0");
    expect(control.headers.get("transport")).toBe(`server_port=${host.service.ports.control}`);
    expect(control.headers.get("x-ss-connect-data")).toBe(String(session.connectData));
    expect(session.rtsp.setup).toEqual({ audio: true, video: true, control: true });

    expect(session.playing).toBe(false);
    const ann = await c.announce(SAMPLE_SDP);
    expect(ann.status).toBe(200);
    expect(session.stream).toEqual({
      width: 1280, height: 720, fps: 60, packetSize: 992, bitStreamFormat: 0, codec: "h264", dynamicRangeMode: 0,
      encoderCscMode: 0, colorspace: "rec601", fullRange: false, chromaSamplingType: 0, bitrateKbps: 10000,
      fec: { minRequiredFecPackets: 2 }, maxNumReferenceFrames: 1, slicesPerFrame: 1,
      audio: { channels: 2, channelMask: 3, highQuality: false, packetDurationMs: 5 },
      encryption: { mask: 7, control: true, video: true, audio: true }, clientFeatureFlags: 3,
    });

    const play = await c.play();
    expect(play).toMatchObject({ status: 200, hostSeq: 7 });
    expect(play.headers.get("cseq")).toBe("7");
    expect(session.playing).toBe(true);
    expect(events.filter((e) => e.type === "playing")).toEqual([{ type: "playing", session }]);
    // a repeated PLAY is answered but does not start the stream twice
    expect((await c.play()).status).toBe(200);
    expect(events.filter((e) => e.type === "playing")).toHaveLength(1);

    // /cancel ends it: RTSP now answers 454 (plain: there is no key any more)
    await gs.httpsXml("/cancel");
    expect(events.at(-1)).toEqual({ type: "ended", session, reason: "cancelled", detail: undefined });
    const after = await new RtspTestClient(rtspPort, null).options();
    expect(after.status).toBe(454);
  });

  test("plain (rtsp://, launched without corever): the whole sequence, control/1/0 accepted", async () => {
    const launch = await gs.httpsXml("/launch", { appid: "1", mode: "1920x1080x60", rikey: "ff".repeat(16), rikeyid: "1", localAudioPlayMode: "0" });
    expect(launch.fields.sessionUrl0).toBe(`rtsp://127.0.0.1:${rtspPort}`);
    const c = new RtspTestClient(rtspPort, null);
    expect((await c.options()).status).toBe(200);
    expect((await c.describe()).status).toBe(200);
    for (const s of ["audio/0/0", "video/0/0", "control/1/0"]) expect((await c.setup(s)).status).toBe(200);
    const sdp = SAMPLE_SDP.replace("clientViewportWd:1280", "clientViewportWd:1920").replace("clientViewportHt:720", "clientViewportHt:1080").replace("encryptionEnabled:7", "encryptionEnabled:1");
    expect((await c.announce(sdp)).status).toBe(200);
    expect((await c.play()).status).toBe(200);
    const s = host.service.sessions.active!;
    expect(s.playing).toBe(true);
    expect(s.stream).toMatchObject({ width: 1920, height: 1080, encryption: { mask: 1, control: true, video: false, audio: false } });
    await gs.httpsXml("/cancel");
  });

  test("/resume with new keys starts a fresh handshake: the old key no longer opens anything", async () => {
    await gs.httpsXml("/launch", { appid: "1", mode: "1280x720x60", rikey: "11".repeat(16), rikeyid: "1", localAudioPlayMode: "0", corever: "1" });
    const first = new RtspTestClient(rtspPort, Buffer.from("11".repeat(16), "hex"));
    expect((await first.setup("audio/0/0")).status).toBe(200);
    const oldId = first.sessionId;
    await gs.httpsXml("/resume", { rikey: "22".repeat(16), rikeyid: "2", localAudioPlayMode: "0", corever: "1" });
    const s = host.service.sessions.active!;
    expect(s.rtsp.setup.audio).toBe(false);
    await expect(first.options()).rejects.toThrow(); // host closes without a reply
    const second = new RtspTestClient(rtspPort, Buffer.from("22".repeat(16), "hex"));
    const r = await second.setup("audio/0/0");
    expect(r.status).toBe(200);
    expect(second.sessionId).not.toBe(oldId);
    expect(r.hostSeq).toBe(1);
    await gs.httpsXml("/cancel");
  });
});

describe("RTSP codec advertisement follows the encoders", () => {
  test("HEVC (Main10) host: DESCRIBE carries the HEVC marker; HEVC 10-bit ANNOUNCE accepted", async () => {
    const host = gameStreamHost({ codecModeSupport: CODEC.H264 | CODEC.HEVC | CODEC.HEVC_MAIN10 });
    try {
      const { rtsp } = await host.service.start();
      const { key, session } = launchDirect(host, true);
      const c = new RtspTestClient(rtsp, key);
      const d = await c.describe();
      expect(d.body).toContain("sprop-parameter-sets=AAAAAU");
      expect(d.body).not.toContain("AV1/90000");
      await c.setup("audio/0/0");
      const sdp = SAMPLE_SDP.replace("bitStreamFormat:0", "bitStreamFormat:1").replace("dynamicRangeMode:0", "dynamicRangeMode:1").replace("encoderCscMode:0", "encoderCscMode:5");
      expect((await c.announce(sdp)).status).toBe(200);
      expect(session.stream).toMatchObject({ codec: "hevc", dynamicRangeMode: 1, colorspace: "bt2020", fullRange: true });
    } finally {
      await host.close();
    }
  });

  test("AV1 host: DESCRIBE carries AV1/90000; H.264-only host refuses an HEVC ANNOUNCE with 400", async () => {
    const av1 = gameStreamHost({ codecModeSupport: CODEC.H264 | CODEC.AV1_MAIN8 });
    try {
      const { rtsp } = await av1.service.start();
      const { key } = launchDirect(av1, true);
      const d = await new RtspTestClient(rtsp, key).describe();
      expect(d.body).toContain("a=rtpmap:98 AV1/90000");
      expect(d.body).not.toContain("sprop-parameter-sets");
    } finally {
      await av1.close();
    }
    const h264 = gameStreamHost();
    try {
      const { rtsp } = await h264.service.start();
      const { key, session } = launchDirect(h264, true);
      const c = new RtspTestClient(rtsp, key);
      await c.setup("audio/0/0");
      const r = await c.announce(SAMPLE_SDP.replace("bitStreamFormat:0", "bitStreamFormat:1"));
      expect(r.status).toBe(400);
      expect(r.headers.get("x-neuron-reason")).toContain("hevc");
      expect(session.stream).toBeNull();
    } finally {
      await h264.close();
    }
  });
});
