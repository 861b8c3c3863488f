/** The NFB1 triple-buffered source against its producer in another process; the FrameSource contract. */
import { afterAll, describe, expect, test } from "bun:test";
import { rmSync, writeFileSync } from "node:fs";
import { FramebufNative } from "../../ffi/framebuf.ts";
import { resolveNativePath } from "../../ffi/native.ts";
import { CaptureError, TripleBufferFrameSource } from "../../src/capture/source.ts";
import { loadCaptureNative, removeFile, shmPath, spawnProducer } from "./helpers.ts";
import { frameSourceContract, producerFixture } from "./source-contract.ts";

const fb = new FramebufNative(resolveNativePath({}));
const capture = loadCaptureNative();
afterAll(() => {
  fb.close();
  capture.close();
});

frameSourceContract("nfb", async () => {
  const path = shmPath("nfb-contract");
  const producer = await spawnProducer(path, { width: 320, height: 240, fps: 120, layout: "nfb" });
  const source = new TripleBufferFrameSource(fb, path);
  return producerFixture(source, producer, path, 320, 240);
});

describe("NFB1 source", () => {
  test("frames carry the right pixels; cursor and audio areas are read", async () => {
    const path = shmPath("nfb");
    const producer = await spawnProducer(path, { width: 320, height: 240, fps: 120, layout: "nfb" });
    const source = new TripleBufferFrameSource(fb, path);
    try {
      source.attach(2000);
      const buf = new Uint8Array(320 * 240 * 4);
      const want = new Uint8Array(buf.length);
      let frames = 0;
      for (let i = 0; i < 100 && frames < 10; i++) {
        const ev = source.next(buf, 200);
        if (ev.kind !== "frame") continue;
        const counter = capture.testpatternCounter(buf, 320, 240, 320 * 4);
        capture.testpatternFill(want, 320, 240, 320 * 4, counter);
        expect(capture.checksum(buf)).toBe(capture.checksum(want));
        expect(ev.info.frameSerial).toBe(counter + 1);
        frames++;
      }
      expect(frames).toBe(10);
      expect(source.cursor()).toMatchObject({ visible: true, shapeWidth: 32, shapeHeight: 32 });
      await Bun.sleep(60);
      const pcm = new Uint8Array(48000);
      const a = source.audio(pcm);
      expect(a.bytes).toBeGreaterThan(0);
      expect(a.bytes % 4).toBe(0);
      expect(pcm.subarray(0, a.bytes).some((b) => b !== 0)).toBe(true);
    } finally {
      source.close();
      await producer.stop();
      removeFile(path);
    }
  });

  test("another layout version and garbage are refused with clear errors", async () => {
    const path = shmPath("nfb-ver");
    const producer = await spawnProducer(path, { width: 320, height: 240, fps: 60, layout: "nfb", fault: "wrongVersion" });
    const source = new TripleBufferFrameSource(fb, path);
    try {
      expect(() => source.attach(500)).toThrow(CaptureError);
      expect(() => source.attach(500)).toThrow("version 2");
    } finally {
      source.close();
      await producer.stop();
      removeFile(path);
    }
    const junk = shmPath("nfb-junk");
    writeFileSync(junk, new Uint8Array(8192).fill(0x33));
    const s2 = new TripleBufferFrameSource(fb, junk);
    try {
      expect(() => s2.attach(50)).toThrow("no NFB1 header");
    } finally {
      s2.close();
      removeFile(junk);
    }
  });
});
