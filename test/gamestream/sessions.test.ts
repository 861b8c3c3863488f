/**
 * Several clients at once: three paired test clients against one host limited to two
 * sessions. Two launch and stream at the same time from the test pattern, each at its own
 * mode (video decoded by ffprobe, audio decoded from Opus), interleaving their RTSP
 * requests on the shared port; the third is refused over the limit. The session API lists
 * both; DELETE of one sends its client the graceful termination while the other keeps
 * receiving frames; /cancel ends the caller's session only; a client that goes silent on
 * the control stream is timed out and no longer listed. Hostile: a ping with an unknown
 * payload gets nothing and changes nothing; a control peer with unknown connect data is
 * refused.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createSocket } from "node:dgram";
import { join } from "node:path";
import { Elysia } from "elysia";
import { AudioNative } from "../../ffi/audio.ts";
import { NativeCrypto, type AesCbc, type AesGcm } from "../../ffi/crypto.ts";
import { enetAvailable } from "../../ffi/enet.ts";
import { resolveNativePath } from "../../ffi/native.ts";
import { Rs8Codec } from "../../ffi/rs8.ts";
import { errorHandler } from "../../src/api/errors.ts";
import { AppsService } from "../../src/apps/service.ts";
import { openDatabase } from "../../src/db/client.ts";
import { appsRepo } from "../../src/db/repos/apps.ts";
import { pairingsRepo } from "../../src/db/repos/pairings.ts";
import { ControlType, TERMINATION_GRACEFUL } from "../../src/gamestream/control/envelope.ts";
import { EndedSessionInfo, StreamSessionInfo } from "../../src/gamestream/model.ts";
import { gameStreamCrypto } from "../../src/gamestream/native-crypto.ts";
import { CODEC } from "../../src/gamestream/constants.ts";
import { gameStreamRoutes } from "../../src/gamestream/routes.ts";
import { GameStreamService } from "../../src/gamestream/service.ts";
import { silentLogger } from "../../src/log.ts";
import { probeStream } from "../capture/ffmpeg.ts";
import { tempDir, testConfig } from "../helpers/env.ts";
import { AudioTestClient, decodeAll, layoutFromDescribe, recoverBlocks, tonePower } from "./audio-client.ts";
import { GameStreamTestClient, makeClientIdentity } from "./client.ts";
import { ControlTestClient } from "./control-client.ts";
import { freeBasePort } from "./helpers.ts";
import { RtspTestClient } from "./rtsp-client.ts";
import { SAMPLE_SDP } from "./rtsp-fixtures.ts";
import { VideoTestClient } from "./video-client.ts";
import { asRoot } from "../helpers/api.ts";

const skip = !enetAvailable();
if (skip) console.warn("skipping multi-session test: libenet.so.7 is not installed (apt-get install libenet-dev)");

const CONTROL_TIMEOUT_MS = 1500;

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(10);
  }
}

function sdpFor(mode: { width: number; height: number; fps: number; packetSize: number }): string {
  return SAMPLE_SDP.replace(/clientViewportWd:\d+/, `clientViewportWd:${mode.width}`)
    .replace(/clientViewportHt:\d+/, `clientViewportHt:${mode.height}`)
    .replace(/maxFPS:\d+/, `maxFPS:${mode.fps}`)
    .replace(/packetSize:\d+/, `packetSize:${mode.packetSize}`);
}

/** One streaming client: nvhttp identity, then RTSP, control, video and audio peers. */
interface Streamer {
  gs: GameStreamTestClient;
  key: Buffer;
  rtsp: RtspTestClient;
  describe: string;
  control: ControlTestClient;
  video: VideoTestClient;
  audio: AudioTestClient;
  gcm: AesGcm;
  pinger: ReturnType<typeof setInterval>;
  sessionId: string;
}

describe.skipIf(skip)("several clients at once", () => {
  const dir = tempDir("neuron-multi-");
  const nativePath = resolveNativePath({});
  const native = NativeCrypto.load({ explicit: nativePath });
  const config = testConfig({
    stateDir: dir.path, shmDir: dir.path, gamestreamHost: "127.0.0.1", gamestreamPort: freeBasePort(), mdns: false, hostname: "neuron-test",
    gamestreamMaxSessions: 2, gamestreamControlTimeoutMs: CONTROL_TIMEOUT_MS,
  });
  const db = openDatabase(config.dbPath);
  const apps = new AppsService(appsRepo(db.db));
  apps.seedDefaults();
  const service = new GameStreamService({
    config, apps, pairings: pairingsRepo(db.db), crypto: gameStreamCrypto(native), log: silentLogger, codecModeSupport: () => CODEC.H264, nativePath,
  });
  const api = new Elysia().use(errorHandler(silentLogger)).group("/api/v1", (a) => a.use(gameStreamRoutes(() => service, true)));
  const call = async (method: string, path: string) => {
    const res = await api.handle(asRoot(new Request(`http://localhost/api/v1${path}`, { method })));
    return { status: res.status, body: res.status === 204 ? null : ((await res.json()) as unknown) };
  };
  const clients: GameStreamTestClient[] = [];
  const streamers: Streamer[] = [];

  beforeAll(async () => {
    await service.start();
    for (const name of ["alpha", "beta", "gamma"]) {
      const keys = join(dir.path, `keys-${name}`);
      await Bun.write(join(keys, ".keep"), "");
      const c = new GameStreamTestClient("127.0.0.1", service.ports.http, service.ports.https, makeClientIdentity(keys), "0123456789ABCDEF", name);
      const r = await c.pair("1234", async () => {
        for (let i = 0; i < 200 && service.pendingPairings().length === 0; i++) await Bun.sleep(5);
        service.submitPin("1234");
      });
      expect(r.ok).toBe(true);
      clients.push(c);
    }
    // the first client paired has every permission; the others get launch and input granted
    for (const p of service.listPairings().slice(1)) service.changePermissions(p.id, { grant: ["launch", "keyboard", "mouse", "controller"] });
  });

  afterAll(async () => {
    for (const s of streamers) {
      clearInterval(s.pinger);
      s.control.close();
      await s.video.close();
      s.audio.close();
      s.gcm.close();
    }
    await service.stop();
    db.close();
    native.close();
    dir.cleanup();
  });

  async function launch(gs: GameStreamTestClient, mode: string) {
    const key = Buffer.from(crypto.getRandomValues(new Uint8Array(16)));
    const r = await gs.httpsXml("/launch", { appid: "1", mode, additionalStates: "1", sops: "0", rikey: key.toString("hex"), rikeyid: "7", localAudioPlayMode: "0", surroundAudioInfo: String((3 << 16) | 2), corever: "1" });
    return { key, reply: r };
  }

  test(
    "two clients stream at once at their own modes; the third is refused; DELETE, /cancel and a silent client end one session each",
    async () => {
      const [alpha, beta, gamma] = clients as [GameStreamTestClient, GameStreamTestClient, GameStreamTestClient];
      const modes = [
        { width: 640, height: 360, fps: 30, packetSize: 992 },
        { width: 320, height: 240, fps: 30, packetSize: 1024 },
      ];
      const launched = [await launch(alpha, "640x360x30"), await launch(beta, "320x240x30")];
      for (const l of launched) expect(l.reply.status).toBe(200);

      // the third client is over the limit: a GameStream error the client shows, nothing changes
      const refused = await launch(gamma, "1280x720x60");
      expect(refused.reply.status).toBe(503);
      expect(refused.reply.message).toMatch(/already streams to 2 clients/);
      expect(service.listSessions()).toHaveLength(2);
      // each client sees its own state: alpha is busy (resume), gamma is free
      expect((await alpha.httpsXml("/serverinfo")).fields).toMatchObject({ state: "SUNSHINE_SERVER_BUSY", currentgame: "1" });
      expect((await gamma.httpsXml("/serverinfo")).fields).toMatchObject({ state: "SUNSHINE_SERVER_FREE", currentgame: "0" });

      // RTSP of both, interleaved on the shared port: each record opens only with its client's key
      const rtsp = launched.map((l) => new RtspTestClient(service.ports.rtsp, l.key, l.reply.fields.sessionUrl0));
      const both = <T,>(f: (c: RtspTestClient, i: number) => Promise<T>) => Promise.all(rtsp.map(f));
      expect((await both((c) => c.options())).map((r) => r.status)).toEqual([200, 200]);
      const describes = await both((c) => c.describe());
      const audioSetups = await both((c) => c.setup("audio/0/0"));
      const videoSetups = await both((c) => c.setup("video/0/0"));
      const controlSetups = await both((c) => c.setup("control/13/0"));
      expect(new Set(videoSetups.map((r) => r.headers.get("x-ss-ping-payload"))).size).toBe(2);
      expect(new Set(controlSetups.map((r) => r.headers.get("x-ss-connect-data"))).size).toBe(2);
      expect((await both((c, i) => c.announce(sdpFor(modes[i]!)))).map((r) => r.status)).toEqual([200, 200]);
      expect((await both((c) => c.play())).map((r) => r.status)).toEqual([200, 200]);

      const videoSources = new Set<string>();
      const audioSources = new Set<string>();
      for (let i = 0; i < 2; i++) {
        const key = launched[i]!.key;
        const control = new ControlTestClient(new Uint8Array(key));
        expect(await control.connect(service.ports.control, Number(controlSetups[i]!.headers.get("x-ss-connect-data")))).toBe(true);
        const gcm = native.aesGcm(new Uint8Array(key));
        const video = new VideoTestClient({ port: service.ports.video, pingPayload: videoSetups[i]!.headers.get("x-ss-ping-payload")!, packetSize: modes[i]!.packetSize, gcm, drop: () => 1 });
        await video.start();
        video.socket.on("message", (_m, from) => videoSources.add(`${from.address}:${from.port}`));
        const audio = await AudioTestClient.open();
        audio.socket.on("message", (_m, from) => audioSources.add(`${from.address}:${from.port}`));
        audio.startPinging("127.0.0.1", service.ports.audio, audioSetups[i]!.headers.get("x-ss-ping-payload")!);
        const pinger = setInterval(() => {
          if (!control.disconnected) control.ping();
        }, 100);
        const sessionId = service.listSessions().find((s) => s.client.name === (i === 0 ? "alpha" : "beta"))!.id;
        streamers.push({ gs: i === 0 ? alpha : beta, key, rtsp: rtsp[i]!, describe: describes[i]!.body, control, video, audio, gcm, pinger, sessionId });
      }
      const [a, b] = streamers as [Streamer, Streamer];
      await until(() => a.video.frames.length >= 30 && b.video.frames.length >= 30, 20_000, "30 frames on each client");
      await a.audio.waitForData(100, 5000);
      await b.audio.waitForData(100, 5000);
      // both sessions' shards and audio come from the one shared socket of each port
      expect([...videoSources]).toEqual([`127.0.0.1:${service.ports.video}`]);
      expect([...audioSources]).toEqual([`127.0.0.1:${service.ports.audio}`]);

      // hostile: a ping with an unknown payload gets nothing and moves no client's address
      const rejectedBefore = service.video!.stream.rejectedDatagrams;
      const stranger = createSocket("udp4");
      let strangerGot = 0;
      stranger.on("message", () => strangerGot++);
      await new Promise<void>((r) => stranger.bind(0, "127.0.0.1", () => r()));
      const bogus = Buffer.alloc(20);
      bogus.write("ZZZZZZZZZZZZZZZZ", 0, "latin1");
      for (let i = 0; i < 5; i++) {
        stranger.send(bogus, service.ports.video, "127.0.0.1");
        stranger.send(bogus, service.ports.audio, "127.0.0.1");
        stranger.send(Buffer.from("PING"), service.ports.video, "127.0.0.1");
      }
      await until(() => service.video!.stream.rejectedDatagrams >= rejectedBefore + 10, 2000, "stranger's pings rejected");
      await Bun.sleep(300);
      expect(strangerGot).toBe(0);
      stranger.close();
      for (const s of streamers) expect(service.video!.stream.get(s.sessionId)!.peer!.port).toBe(s.video.socket.address().port);
      // hostile: a control peer with unknown connect data is refused
      const intruder = new ControlTestClient(new Uint8Array(16));
      expect(await intruder.connect(service.ports.control, 0x1234567)).toBe(false);
      intruder.close();

      // the session API: both, each at its own mode, with rates and the client's identity
      await Bun.sleep(1100); // the host fps needs two samples
      const listed = await call("GET", "/sessions");
      expect(listed.status).toBe(200);
      const infos = StreamSessionInfo.array().parse(listed.body);
      expect(infos.map((s) => s.client.name).sort()).toEqual(["alpha", "beta"]);
      for (const [i, s] of streamers.entries()) {
        const info = infos.find((x) => x.id === s.sessionId)!;
        expect(info).toMatchObject({ state: "streaming", codec: "h264", bitrateKbps: 10000, audioSource: "tone", width: modes[i]!.width, height: modes[i]!.height, appName: "Desktop" });
        expect(info.video).toMatchObject({ source: "test-pattern", sendErrors: 0 });
        expect(info.client.address).toBe("127.0.0.1");
        expect(info.client.fingerprint).toMatch(/^[0-9a-f]{64}$/);
        expect(info.framesSent).toBeGreaterThan(30);
        expect(info.hostFps).toBeGreaterThan(10);
        expect(info.latency.p50Ms).toBeGreaterThan(0);
        expect(info.latency.p99Ms).toBeGreaterThanOrEqual(info.latency.p50Ms);
        expect(info.control!.pings).toBeGreaterThan(0);
      }
      // the single-host view keeps working: the newest session, and how many of how many
      const status = (await call("GET", "/gamestream")).body as { sessions: number; maxSessions: number; session: { id: string } | null };
      expect(status).toMatchObject({ sessions: 2, maxSessions: 2 });
      expect(status.session!.id).toBe(b.sessionId);
      const one = await call("GET", `/sessions/${b.sessionId}`);
      expect(one.status).toBe(200);
      expect(StreamSessionInfo.parse(one.body).client.name).toBe("beta");
      expect((await call("GET", `/sessions/${crypto.randomUUID()}`)).status).toBe(404);
      expect((await call("GET", `/sessions/${crypto.randomUUID()}`)).body).toMatchObject({ error: { code: "NOT_FOUND" } });
      expect((await call("DELETE", `/sessions/${crypto.randomUUID()}`)).status).toBe(404);
      expect((await call("DELETE", "/sessions/not-an-id")).status).toBe(422);

      // DELETE alpha: it gets the graceful termination; beta keeps receiving frames
      expect((await call("DELETE", `/sessions/${a.sessionId}`)).status).toBe(204);
      await a.control.waitFor(() => a.control.received.some((m) => m.type === ControlType.TERMINATION), 3000, "termination");
      const t = a.control.received.find((m) => m.type === ControlType.TERMINATION)!;
      expect(new DataView(t.payload.buffer, t.payload.byteOffset).getUint32(0)).toBe(TERMINATION_GRACEFUL);
      const bBefore = b.video.frames.length;
      await Bun.sleep(200);
      const aAfterEnd = a.video.frames.length;
      await until(() => b.video.frames.length >= bBefore + 30, 10_000, "beta's frames after alpha ended");
      expect(a.video.frames.length).toBe(aAfterEnd);
      expect(service.video!.stream.get(a.sessionId)).toBeUndefined();
      expect(service.listSessions().map((s) => s.id)).toEqual([b.sessionId]);
      const ended = EndedSessionInfo.array().parse((await call("GET", "/sessions/ended")).body);
      expect(ended[0]).toMatchObject({ id: a.sessionId, reason: "ended-by-api", client: { name: "alpha" } });

      // the slot is free again: gamma launches; its /cancel ends its own session only
      const g = await launch(gamma, "1280x720x60");
      expect(g.reply.status).toBe(200);
      expect(service.listSessions()).toHaveLength(2);
      expect((await gamma.httpsXml("/cancel")).fields.cancel).toBe("1");
      expect(service.listSessions().map((s) => s.id)).toEqual([b.sessionId]);

      // decodable video at each client's own mode, and audio that decodes to the tone
      for (const [i, s] of streamers.entries()) {
        expect(s.video.errors).toEqual([]);
        expect(s.video.frames[0]!.frameType).toBe(2);
        const file = join(dir.path, `video-${i}.h264`);
        const frames = s.video.frames.slice(); // beta still streams: a snapshot
        await Bun.write(file, Buffer.concat(frames.map((f) => f.au)));
        const probed = await probeStream(file, "h264");
        expect(probed).toMatchObject({ codec: "h264", width: modes[i]!.width, height: modes[i]!.height });
        expect(probed.frames).toBe(frames.length);
        const audioNative = new AudioNative(nativePath);
        const fec = Rs8Codec.audio();
        const cipher: AesCbc = native.aesCbc(new Uint8Array(s.key));
        try {
          const r = recoverBlocks(s.audio.packets, () => false, fec, cipher, 7, 5);
          const pcm = decodeAll(audioNative, 2, layoutFromDescribe(s.describe, 2, false), r.payloads);
          expect(tonePower(pcm, 2, 0, 440, 2400)).toBeGreaterThan(1e6);
        } finally {
          cipher.close();
          fec.close();
          audioNative.close();
        }
      }

      // beta goes silent on the control stream: timed out, cleaned up, no longer listed
      clearInterval(b.pinger);
      await until(() => service.listSessions().length === 0, CONTROL_TIMEOUT_MS + 3000, "beta timed out");
      expect(((await call("GET", "/sessions")).body as unknown[]).length).toBe(0);
      expect(service.video!.stream.get(b.sessionId)).toBeUndefined();
      expect(service.sessionHistory()[0]).toMatchObject({ id: b.sessionId, reason: "control-timeout" });
      expect(service.control.stats(b.sessionId)).toBeNull();
      // nothing of either session is left: no video session, no audio stream, the audio port given back
      expect(service.video!.stream.list()).toHaveLength(0);
      expect((await call("DELETE", "/gamestream/session")).status).toBe(404);
      const sock = createSocket("udp4");
      const free = await new Promise<boolean>((resolve) => {
        sock.once("error", () => resolve(false));
        sock.bind(service.ports.audio, "127.0.0.1", () => resolve(true));
      });
      await new Promise<void>((r) => sock.close(() => r()));
      expect(free).toBe(true);
    },
    90_000,
  );
});
