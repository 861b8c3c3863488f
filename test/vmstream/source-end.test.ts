/**
 * The source side of "a VM that stops ends the stream", without a guest: the real
 * capture → encode → send path reads a VM's region written by the native producer
 * (another thread standing in for the guest); the VM state comes from a probe that
 * follows that producer's life the way libvirt follows QEMU's (the real libvirt is
 * exercised by vm-stream.test.ts). Stopping the producer while the "VM" is down ends
 * the session with the reason; while it is still up, the stream waits, and a new
 * guest session (producer restarted) brings frames back.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { CaptureNative, SyntheticProducer } from "../../ffi/capture.ts";
import { NativeLibrary } from "../../ffi/native.ts";
import type { SourceEnd } from "../../src/gamestream/video/stream.ts";
import type { VmState } from "../../src/vm/model.ts";
import { shmPath } from "../../src/vm/shm.ts";
import { freeBasePort } from "../gamestream/helpers.ts";
import { gameStreamTestService, launchSession, setTestStream } from "../gamestream/control-helpers.ts";
import { VideoTestClient } from "../gamestream/video-client.ts";
import { tempDir, testConfig } from "../helpers/env.ts";
import { waitFor } from "../input/qemu.ts";

const W = 320;
const H = 240;

describe("a VM source that stops", () => {
  const dir = tempDir("neuron-srcend-");
  const nativePath = NativeLibrary.load().path;
  const capture = new CaptureNative(nativePath);
  const config = testConfig({ stateDir: dir.path, shmDir: dir.path, gamestreamHost: "127.0.0.1", gamestreamPort: freeBasePort(), mdns: false, hostname: "neuron-test" });
  let vmState: VmState = "running";
  const probes: string[] = [];
  const ended: { session: string; end: SourceEnd }[] = [];
  const { db, service } = gameStreamTestService(config, {
    nativePath,
    vmState: async (name) => {
      probes.push(name);
      return vmState;
    },
    sourceLiveness: { stallMs: 2000, checkIntervalMs: 300 },
    onSourceEnded: (s, end) => void ended.push({ session: s.id, end }),
  });
  let producer: SyntheticProducer | null = null;

  afterAll(async () => {
    producer?.stop();
    await service.stop();
    capture.close();
    db.close();
    dir.cleanup();
  });

  test(
    "heartbeat gone + VM up: the stream waits; a new guest session streams again; VM down: the session ends with the reason",
    async () => {
      await service.start();
      producer = SyntheticProducer.start(capture, shmPath(dir.path, "synth"), { width: W, height: H, fps: 30 });
      const { session } = launchSession({ service }, "synth", { appId: 2, appName: "synth", width: W, height: H, fps: 30 });
      setTestStream(session, { bitrateKbps: 1000, encryptVideo: false });
      service.sessions.markPlaying(session);
      expect(service.video!.stream.get(session.id)!.stats().source).toBe("vm");
      const video = new VideoTestClient({ port: service.ports.video, pingPayload: session.rtsp.videoPingPayload, packetSize: 1024 });
      try {
        await video.start();
        await waitFor(() => video.frames.length >= 15, 15_000, "frames from the VM's region");
        expect(probes).toEqual([]); // frames flowing: libvirt is never asked

        // the guest's producer goes away, the VM still runs (a guest rebooting): asked, and waiting
        producer.stop();
        producer = null;
        await waitFor(() => probes.length >= 2, 10_000, "libvirt to be asked");
        expect(ended).toEqual([]);
        expect(service.sessions.active?.id).toBe(session.id);

        // a new guest session: frames again, the same stream
        const before = video.frames.length;
        producer = SyntheticProducer.start(capture, shmPath(dir.path, "synth"), { width: W, height: H, fps: 30 });
        await waitFor(() => video.frames.length >= before + 10, 15_000, "frames after the guest came back");
        expect(ended).toEqual([]);

        // the VM shuts down: the producer stops with it, libvirt says "shut off"
        vmState = "shut off";
        producer.stop();
        producer = null;
        await waitFor(() => ended.length > 0, 10_000, "the source to end");
        expect(ended).toEqual([{ session: session.id, end: { reason: "VM synth shut down", lastError: expect.any(Number) } }]);
        expect(service.sessions.active).toBeNull();
        // the session's record keeps why it ended
        expect(service.sessions.history()[0]).toMatchObject({ id: session.id, reason: "source-ended", detail: `VM synth shut down` });
        expect(service.video!.stream.get(session.id)).toBeUndefined();
        expect(video.errors).toEqual([]);
      } finally {
        await video.close();
        service.sessions.endAll("ended-by-api");
      }
    },
    60_000,
  );
});
