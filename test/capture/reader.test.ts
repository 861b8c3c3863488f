/** The LGMP/KVMFR reader against the synthetic producer running in another process. */
import { afterAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { KvmfrReader } from "../../ffi/capture.ts";
import { loadCaptureNative, patternPixel, removeFile, shmPath, spawnProducer } from "./helpers.ts";

const native = loadCaptureNative();
afterAll(() => native.close());

const W = 320;
const H = 240;

interface ReadResult {
  frames: number;
  restarted: number;
  rejected: number;
  errors: number[];
}

/** Reads until `want` frames arrived; verifies every frame's pixels, order and counter. */
function readFrames(reader: KvmfrReader, want: number, maxCalls = want * 30): ReadResult {
  const buf = new Uint8Array(W * H * 4);
  const expected = new Uint8Array(W * H * 4);
  const out: ReadResult = { frames: 0, restarted: 0, rejected: 0, errors: [] };
  let lastSerial = 0;
  let lastCounter = -1;
  for (let i = 0; i < maxCalls && out.frames < want; i++) {
    const r = reader.nextFrame(buf, 200, 500);
    if (r.event === "restarted") {
      out.restarted++;
      lastSerial = 0;
      lastCounter = -1;
    } else if (r.event === "rejected") out.rejected++;
    else if (r.event === "error") out.errors.push(r.status);
    if (r.event !== "frame" || !r.info) continue;
    const info = r.info;
    expect(info.type).toBe(1);
    expect(info.dataWidth).toBe(W);
    expect(info.outPitch).toBe(W * 4);
    const counter = native.testpatternCounter(buf, W, info.dataHeight, W * 4);
    native.testpatternFill(expected, W, info.dataHeight, W * 4, counter);
    expect(native.checksum(buf, info.bytes)).toBe(native.checksum(expected, info.bytes));
    // spot-check pixels against an independent formula (rows below the counter squares)
    for (const [x, y] of [[5, 20], [300, 100], [W - 1, info.dataHeight - 1]] as const) {
      const o = y * W * 4 + x * 4;
      expect([...buf.subarray(o, o + 4)]).toEqual(patternPixel(x, y, counter));
    }
    if (lastSerial) {
      expect(info.frameSerial).toBeGreaterThan(lastSerial);
      expect(counter).toBeGreaterThan(lastCounter);
    }
    lastSerial = info.frameSerial;
    lastCounter = counter;
    out.frames++;
  }
  return out;
}

async function withProducer(
  tag: string,
  opts: Parameters<typeof spawnProducer>[1],
  fn: (reader: KvmfrReader) => void | Promise<void>,
): Promise<void> {
  const path = shmPath(tag);
  const producer = await spawnProducer(path, opts);
  const reader = KvmfrReader.open(native, path);
  try {
    await fn(reader);
  } finally {
    reader.close();
    await producer.stop();
    removeFile(path);
  }
}

describe("KVMFR reader vs a producer process", () => {
  test("attaches, reads frames in order with the right pixels, follows the cursor", async () => {
    await withProducer("normal", { width: W, height: H, fps: 200 }, (reader) => {
      expect(reader.attach(2000)).toBe(0);
      const res = readFrames(reader, 40);
      expect(res.frames).toBe(40);
      expect(res.rejected).toBe(0);
      const shape = new Uint8Array(512 * 512 * 4);
      const { info, shapeBytes } = reader.cursor(shape);
      expect(info.visible).toBe(true);
      expect(info.updates).toBeGreaterThan(0);
      expect(info.shapeWidth).toBe(32);
      expect(shapeBytes).toBe(32 * 32 * 4);
      const stats = reader.stats();
      expect(stats).toMatchObject({ frames: 40, lgmpVersion: 6, kvmfrVersion: 20, attached: true });
      // a buffer too small: the frame is released, the size needed is reported
      const small = reader.nextFrame(new Uint8Array(16), 500);
      expect(small.event).toBe("too-small");
      expect(small.info?.bytes).toBe(W * H * 4);
    });
  });

  test("a version it does not speak is refused naming both versions", async () => {
    await withProducer("version", { width: W, height: H, fps: 60, fault: "wrongVersion" }, (reader) => {
      expect(reader.attach(1000)).toBe(-8);
      expect(reader.error()).toContain("LGMP protocol version 7");
      expect(reader.error()).toContain("speaks version 6");
    });
  });

  test("a new session id is detected and re-attached", async () => {
    await withProducer("session", { width: W, height: H, fps: 200, fault: "newSession", faultAfter: 15 }, (reader) => {
      expect(reader.attach(2000)).toBe(0);
      const first = reader.stats().sessionId;
      const res = readFrames(reader, 40);
      expect(res.frames).toBe(40);
      expect(res.restarted).toBeGreaterThanOrEqual(1);
      expect(reader.stats().sessionId).not.toBe(first);
    });
  });

  test("a stalled heartbeat (>1 s) is detected and the reader re-attaches when it resumes", async () => {
    await withProducer("stall", { width: W, height: H, fps: 200, fault: "stallHeartbeat", faultAfter: 10 }, (reader) => {
      expect(reader.attach(2000)).toBe(0);
      const res = readFrames(reader, 30);
      expect(res.frames).toBe(30);
      expect(res.restarted).toBeGreaterThanOrEqual(1);
      expect(reader.stats().restarts).toBeGreaterThanOrEqual(1);
    });
  });

  test("hostile frames and cursor shapes are rejected; good frames keep flowing", async () => {
    await withProducer("hostile", { width: W, height: H, fps: 200, fault: "hostile", faultAfter: 2 }, (reader) => {
      expect(reader.attach(2000)).toBe(0);
      const res = readFrames(reader, 30);
      expect(res.frames).toBe(30);
      expect(res.rejected).toBeGreaterThanOrEqual(10);
      expect(res.errors).toEqual([]);
    });
  });

  test("TRUNCATED frames report the rows that fit and the flag", async () => {
    await withProducer("trunc", { width: W, height: H, fps: 120, fault: "truncated" }, (reader) => {
      expect(reader.attach(2000)).toBe(0);
      const res = readFrames(reader, 3);
      expect(res.frames).toBe(3);
      const r = reader.nextFrame(new Uint8Array(W * H * 4), 500);
      expect(r.event).toBe("frame");
      expect(r.info!.flags & 0x4).toBe(0x4);
      expect(r.info!.dataHeight).toBe(H / 2);
      expect(r.info!.frameHeight).toBe(H);
    });
  });

  test("B6 (LGMP 5 / KVMFR 19) frames are read too", async () => {
    await withProducer("b6", { width: W, height: H, fps: 120, fault: "b6" }, (reader) => {
      expect(reader.attach(2000)).toBe(0);
      expect(readFrames(reader, 5).frames).toBe(5);
      expect(reader.stats()).toMatchObject({ lgmpVersion: 5, kvmfrVersion: 19 });
    });
  });

  test("a lagging reader is evicted by the producer and recovers by resubscribing", async () => {
    await withProducer("evict", { width: W, height: H, fps: 200 }, async (reader) => {
      expect(reader.attach(2000)).toBe(0);
      await Bun.sleep(1300); // hold the head past the 1 s queue timeout
      const res = readFrames(reader, 10);
      expect(res.frames).toBe(10);
      expect(reader.stats().resubscribes).toBeGreaterThanOrEqual(1);
    });
  });

  test("bad paths and garbage regions give clear errors", () => {
    expect(() => KvmfrReader.open(native, "/nonexistent/neuron-region")).toThrow("NEURON_EIO");
    const path = shmPath("garbage");
    writeFileSync(path, new Uint8Array(1 << 20).fill(0x5a));
    try {
      const reader = KvmfrReader.open(native, path);
      expect(reader.attach(50)).toBe(-7);
      expect(reader.error()).toContain("no LGMP header");
      reader.close();
    } finally {
      removeFile(path);
    }
  });
});
