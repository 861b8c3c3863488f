/**
 * Video and control together in the GameStream host: PLAY starts the video, a control
 * client's IDR request (0x0302) makes the next frame the video client receives an IDR.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { NativeCrypto } from "../../ffi/crypto.ts";
import { enetAvailable } from "../../ffi/enet.ts";
import { NativeLibrary } from "../../ffi/native.ts";
import { ControlType } from "../../src/gamestream/control/envelope.ts";
import { StreamSessionInfo } from "../../src/gamestream/model.ts";
import type { StreamConfig } from "../../src/gamestream/rtsp/announce.ts";
import { tempDir, testConfig } from "../helpers/env.ts";
import { ControlTestClient } from "./control-client.ts";
import { launchSession } from "./control-helpers.ts";
import { freeBasePort } from "./helpers.ts";
import { gameStreamTestService } from "./control-helpers.ts";
import { VideoTestClient } from "./video-client.ts";

const skip = !enetAvailable();
if (skip) console.warn("skipping video + control test: libenet.so.7 is not installed (apt-get install libenet-dev)");

async function until(cond: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await Bun.sleep(10);
}

describe.skipIf(skip)("video + control", () => {
  const dir = tempDir("neuron-vc-");
  const config = testConfig({ stateDir: dir.path, shmDir: dir.path, gamestreamHost: "127.0.0.1", gamestreamPort: freeBasePort(), mdns: false, hostname: "neuron-test" });
  const { db, service } = gameStreamTestService(config, { nativePath: NativeLibrary.load().path });

  afterAll(async () => {
    await service.stop();
    db.close();
    dir.cleanup();
  });

  test(
    "an IDR request on the control stream gives the video client an IDR frame",
    async () => {
      await service.start();
      const { key, session } = launchSession({ service });
      session.stream = {
        width: 640, height: 360, fps: 30, packetSize: 1024, bitStreamFormat: 0, codec: "h264", dynamicRangeMode: 0, encoderCscMode: 0,
        colorspace: "rec601", fullRange: false, chromaSamplingType: 0, bitrateKbps: 3000, fec: { minRequiredFecPackets: 2 },
        maxNumReferenceFrames: 1, slicesPerFrame: 1, audio: { channels: 2, channelMask: 3, highQuality: false, packetDurationMs: 5 },
        encryption: { mask: 3, control: true, video: true, audio: false }, clientFeatureFlags: 0,
      } satisfies StreamConfig;
      service.sessions.markPlaying(session);
      const nativeCrypto = NativeCrypto.load();
      const gcm = nativeCrypto.aesGcm(key);
      const video = new VideoTestClient({ port: service.ports.video, pingPayload: session.rtsp.videoPingPayload, packetSize: 1024, gcm, drop: () => 1 });
      const control = new ControlTestClient(key);
      try {
        await video.start();
        expect(await control.connect(service.ports.control, session.connectData)).toBe(true);
        await until(() => video.frames.length >= 10, 10_000);
        const before = video.frames.length;
        control.send(ControlType.IDR_REQUEST);
        await until(() => video.frames.slice(before).some((f) => f.frameType === 2), 5000);
        expect(video.errors).toEqual([]);
        expect(video.frames[0]!.frameType).toBe(2);
        expect(video.frames.slice(before).some((f) => f.frameType === 2)).toBe(true);
        expect(service.video!.stream.get(session.id)!.stats().idrRequests).toBeGreaterThanOrEqual(1);
        // the management API's view of the session carries the video statistics
        const info = StreamSessionInfo.parse(service.session());
        expect(info.video).toMatchObject({ source: "test-pattern", sendErrors: 0 });
        expect(info.video!.frames).toBeGreaterThanOrEqual(10);
        expect(info.video!.peer).toMatch(/^127\.0\.0\.1:\d+$/);
      } finally {
        control.close();
        await video.close();
        service.sessions.endAll("host-stopped");
        gcm.close();
        nativeCrypto.close();
      }
    },
    30_000,
  );
});
