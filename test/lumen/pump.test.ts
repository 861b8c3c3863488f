/**
 * The lumen/1 frame pump (native/lumen/pump.c through ffi/lumen.ts) on real UDP sockets on
 * 127.0.0.1: unpaced frames leave on the caller's thread, paced ones on the pump's thread while
 * the caller goes on (and side datagrams interleave), a full queue refuses a frame, results come
 * back by serial; and the host's loss figure on a clean path falls instead of feeding on its own
 * late parity.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { LumenPump, LumenReceiver, LumenSender } from "../../ffi/lumen.ts";
import { UdpSocket } from "../../ffi/stream.ts";
import { LumenClient } from "../../src/lumen/client.ts";
import type { LumenHost } from "../../src/lumen/host.ts";
import { buildNative, enterPinWhenAsked, loadNatives, startHost, tempDir } from "./helpers.ts";

beforeAll(() => buildNative());

describe("frame pump (ffi)", () => {
  test("unpaced at once on the caller's thread; paced on the pump's thread while side datagrams interleave; a full queue refuses", async () => {
    const n = loadNatives();
    const keys = { key: new Uint8Array(16).fill(1), salt: new Uint8Array(4).fill(2), sessionId: 77 };
    const sink = UdpSocket.open(n.stream, "127.0.0.1", 0, { rcvbuf: 16 << 20 });
    const out = UdpSocket.open(n.stream, "127.0.0.1", 0, { sndbuf: 8 << 20 });
    const tx = LumenSender.create(n.lumen, out, keys, { shardBytes: 1344, maxFrameBytes: 1 << 20 });
    tx.setPeer({ family: 4, address: "127.0.0.1", port: sink.port });
    const rx = LumenReceiver.create(n.lumen, keys, { shardBytes: 1344, maxFrameBytes: 1 << 20, slots: 4, readyFrames: 8 });
    const pump = LumenPump.start(n.lumen, tx, { slots: 2, auCap: 512 * 1024 });
    try {
      const au = new Uint8Array(200 * 1024).map((_, i) => (i * 7) & 0xff);
      const f = { captureNs: n.stream.monotonicNs(), idr: true, codec: 0 as const, epoch: 0, lossPpm: 0, burst: 1, minPctX100: 1000 };
      // unpaced: sent before submit returns
      const s1 = pump.submit(au, 5000, f)!;
      const r1 = pump.results();
      expect(r1.map((r) => r.serial)).toEqual([s1]);
      expect(r1[0]!.status).toBe(0);
      expect(pump.stats().direct).toBe(1);
      // paced over 300 ms: submit returns at once, the frame is still being sent
      const s2 = pump.submit(au, au.length, { ...f, paceNs: 300e6 })!;
      expect(s2).toBe(s1 + 1);
      expect(pump.stats().pending).toBe(1);
      expect(pump.results()).toEqual([]);
      // a side datagram from this thread meanwhile: not held back by the paced frame
      tx.sendDatagram("audio", new Uint8Array([1, 2, 3]));
      // the paced frame keeps its slot while it is sent: a third frame takes the other slot, a fourth is refused
      const s3 = pump.submit(au, 9000, { ...f, paceNs: 1e6 });
      expect(s3).toBe(s2 + 1);
      expect(pump.submit(au, 9000, { ...f, paceNs: 1e6 })).toBeNull();
      expect(pump.stats().dropped).toBe(1);
      expect(() => pump.submit(new Uint8Array(600 * 1024), 600 * 1024, f)).toThrow(/NEURON_EINVAL/);
      // the audio datagram arrives before the paced frame is complete
      let audioBeforeFrame2 = false, frames = 0;
      const deadline = Date.now() + 5000;
      const got = new Uint8Array(1 << 20);
      while (frames < 3 && Date.now() < deadline) {
        rx.recv(sink, 5);
        const side = rx.nextSide();
        if (side?.plane === "audio" && frames < 2) audioBeforeFrame2 = true;
        while (rx.nextFrame(got)) frames++;
        await Bun.sleep(1);
      }
      expect(frames).toBe(3);
      expect(audioBeforeFrame2).toBe(true);
      const rest = pump.results();
      expect(rest.map((r) => r.serial)).toEqual([s2, s3!]);
      expect(rest.every((r) => r.status === 0 && r.dataShards > 0)).toBe(true);
      expect(pump.stats()).toMatchObject({ framesSent: 3, queued: 2, direct: 1, pending: 0 });
    } finally {
      pump.close();
      tx.close();
      rx.close();
      sink.close();
      out.close();
    }
  }, 15_000);
});

describe("the host's loss figure on a clean path", () => {
  let host: LumenHost;
  beforeAll(async () => {
    host = await startHost();
  });
  afterAll(async () => {
    await host?.stop();
  });

  test("late parity counts as received: the estimates fall from their cautious start", async () => {
    using dir = tempDir();
    const c = new LumenClient({ host: "127.0.0.1", port: host.port, stateDir: dir.path, pin: "9191", mode: { width: 320, height: 240, fps: 60 }, natives: loadNatives() });
    await Promise.all([c.connect(), enterPinWhenAsked(host, "9191")]);
    const session = host.sessions.get(c.sessionId)!;
    await c.stream(2.0);
    const s = session.snapshot();
    // 0.98 per clean 50 ms report: from 100,000 ppm and bursts of 8 to ~45,000 and ~4 in 2 s
    expect(s.lossPpm).toBeLessThan(60_000);
    expect(s.burst).toBeLessThan(6);
    const rx = c.rxStats()!;
    expect(rx.seqReceived).toBe(rx.accepted);
    expect(rx.highestSeq - rx.seqReceived).toBeLessThan(rx.highestSeq * 0.01); // what was sent arrived and was counted
    c.close();
  }, 20_000);
});
