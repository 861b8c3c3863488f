/** The native capture → convert → encode pipeline against a producer process; output checked by ffmpeg. */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CapturePipeline, type AccessUnitInfo } from "../../ffi/capture.ts";
import { decodeBgra, probeStream } from "./ffmpeg.ts";
import { loadCaptureNative, removeFile, shmPath, spawnProducer, until, collectAccessUnits } from "./helpers.ts";

const native = loadCaptureNative();
const dir = mkdtempSync(join(tmpdir(), "neuron-pipeline-"));
afterAll(() => {
  native.close();
  rmSync(dir, { recursive: true, force: true });
});

const W = 480;
const H = 272;

async function drain(p: CapturePipeline, want: number, onAu?: (i: number, info: AccessUnitInfo) => void) {
  const buf = new Uint8Array(W * H * 2);
  const aus: { info: AccessUnitInfo; data: Uint8Array }[] = [];
  const end = Date.now() + 15_000;
  while (aus.length < want && Date.now() < end) {
    const info = p.poll(buf);
    if (!info) {
      await Bun.sleep(2);
      continue;
    }
    aus.push({ info, data: buf.slice(0, info.size) });
    onAu?.(aus.length - 1, info);
  }
  return aus;
}

describe("capture pipeline", () => {
  test("frames from another process become decodable access units, in order, IDR on request", async () => {
    const path = shmPath("pipeline");
    const producer = await spawnProducer(path, { width: W, height: H, fps: 120 });
    const p = CapturePipeline.start(native, path, { codec: "h264", fps: 60, bitrateKbps: 4000, threads: 2, ringSlots: 16 });
    try {
      let requestedAt = -1;
      const aus = await drain(p, 40, (i) => {
        if (i === 20) {
          p.requestIdr();
          requestedAt = i;
        }
        if (i === 25) p.setBitrate(2000);
      });
      expect(aus.length).toBe(40);
      expect(aus[0]!.info.idr).toBe(true);
      const idrs = aus.flatMap((a, i) => (a.info.idr ? [i] : []));
      expect(idrs[0]).toBe(0);
      // units already in the ring when the request came are delivered first; the IDR follows them
      expect(idrs.some((i) => i > requestedAt)).toBe(true);
      for (let i = 1; i < aus.length; i++) {
        expect(aus[i]!.info.frameSerial).toBeGreaterThan(aus[i - 1]!.info.frameSerial);
        expect(aus[i]!.info.frameIndex).toBeGreaterThan(aus[i - 1]!.info.frameIndex);
      }
      // a gap in the encoder's frame index is an access unit dropped on a full ring, and counted
      const gaps = aus[aus.length - 1]!.info.frameIndex - aus[0]!.info.frameIndex + 1 - aus.length;
      expect(p.stats().dropped).toBeGreaterThanOrEqual(gaps);
      for (let i = 1; i < aus.length; i++)
        if (aus[i]!.info.frameIndex !== aus[i - 1]!.info.frameIndex + 1) expect(aus[i]!.info.idr).toBe(true);
      for (const a of aus) {
        expect(a.info).toMatchObject({ width: W, height: H });
        expect(a.info.doneNs).toBeGreaterThanOrEqual(a.info.captureNs);
      }
      expect(p.encoderReport()).toContain("libx264: chosen");
      // one timing record per unit put in the ring, in ring order: the same serials and sizes
      const timings = p.timings();
      expect(timings.length).toBeGreaterThanOrEqual(40);
      expect(timings.slice(0, 40).map((t) => [t.frameSerial, t.size, t.idr])).toEqual(
        aus.map((a) => [a.info.frameSerial, a.info.size, a.info.idr]),
      );
      for (const [i, t] of timings.slice(0, 40).entries()) {
        expect(t.encodeUs).toBe(aus[i]!.info.encodeUs);
        expect(t.convertUs).toBe(aus[i]!.info.convertUs);
        expect(t.waitUs).toBe(aus[i]!.info.copyUs);
        expect(t.encodedUs + 3).toBeGreaterThanOrEqual(t.waitUs + t.convertUs + t.encodeUs);
      }
      expect(p.timings().length).toBeLessThanOrEqual(timings.length); // drained: only newer frames remain
      const stats = p.stats();
      expect(stats).toMatchObject({ running: true, width: W, height: H, idrRequests: 1, lastError: 0 });
      expect(stats.framesIn).toBeGreaterThanOrEqual(40);

      const file = join(dir, "pipeline.h264");
      writeFileSync(file, Buffer.concat(aus.map((a) => a.data)));
      const probed = await probeStream(file, "h264");
      expect(probed).toMatchObject({ width: W, height: H, frames: 40 });
      const raw = join(dir, "pipeline.bgra");
      await decodeBgra(file, "h264", raw);
      const decoded = readFileSync(raw);
      const size = W * H * 4;
      let last = -1;
      for (let i = 0; i < 40; i++) {
        const counter = native.testpatternCounter(decoded.subarray(i * size, (i + 1) * size), W, H, W * 4);
        expect(counter).toBeGreaterThan(last); // frames in order, none repeated
        last = counter;
      }
    } finally {
      p.stop();
      await producer.stop();
      removeFile(path);
    }
  });

  test("HEVC through the pipeline decodes to the right size and count", async () => {
    const path = shmPath("pipeline-hevc");
    const producer = await spawnProducer(path, { width: 320, height: 240, fps: 120 });
    const p = CapturePipeline.start(native, path, { codec: "hevc", fps: 60, bitrateKbps: 2000, threads: 2 });
    try {
      const chunks = await collectAccessUnits(p, 12, 15_000, 320 * 240 * 2);
      expect(chunks.length).toBe(12);
      expect(p.encoderReport()).toContain("libx265: chosen");
      const file = join(dir, "pipeline.hevc");
      writeFileSync(file, Buffer.concat(chunks));
      expect(await probeStream(file, "hevc")).toMatchObject({ codec: "hevc", width: 320, height: 240, frames: 12 });
    } finally {
      p.stop();
      await producer.stop();
      removeFile(path);
    }
  });

  test("a guest speaking another version yields no units and a reported error; stop is clean", async () => {
    const path = shmPath("pipeline-version");
    const producer = await spawnProducer(path, { width: 320, height: 240, fps: 60, fault: "wrongVersion" });
    const p = CapturePipeline.start(native, path, { codec: "h264", fps: 60, bitrateKbps: 2000, threads: 1 });
    try {
      expect(await until(() => p.stats().lastError === -8, 3000)).toBe(true);
      expect(p.poll(new Uint8Array(1024))).toBeNull();
    } finally {
      p.stop();
      await producer.stop();
      removeFile(path);
    }
    expect(() => p.stats()).toThrow("stopped");
  });

  test("a hostile producer's frames are rejected while the good ones keep encoding", async () => {
    const path = shmPath("pipeline-hostile");
    const producer = await spawnProducer(path, { width: 320, height: 240, fps: 120, fault: "hostile" });
    const p = CapturePipeline.start(native, path, { codec: "h264", fps: 60, bitrateKbps: 2000, threads: 1 });
    try {
      const buf = new Uint8Array(320 * 240 * 2);
      let units = 0;
      const end = Date.now() + 10_000;
      while (units < 10 && Date.now() < end) {
        if (p.poll(buf)) units++;
        else await Bun.sleep(2);
      }
      expect(units).toBe(10);
      expect(p.stats().rejected).toBeGreaterThan(0);
      expect(p.stats().running).toBe(true);
    } finally {
      p.stop();
      await producer.stop();
      removeFile(path);
    }
  });

  test("invalid options and missing regions are refused", () => {
    expect(() => CapturePipeline.start(native, "/nonexistent/region", { codec: "h264", fps: 60, bitrateKbps: 2000, threads: 2 })).toThrow(
      "NEURON_EIO",
    );
    expect(() =>
      CapturePipeline.start(native, "/dev/null", { codec: "h264", fps: 60, bitrateKbps: 2000, threads: 2, ringSlots: 1 }),
    ).toThrow("NEURON_EINVAL");
  });
});
