/** The libavcodec encoder: output decodes with the real ffprobe/ffmpeg, IDR on request, reported choice. */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EncoderUnavailableError, VideoEncoder, type CodecName } from "../../ffi/capture.ts";
import { decodeBgra, probeStream } from "./ffmpeg.ts";
import { loadCaptureNative } from "./helpers.ts";

const native = loadCaptureNative();
const dir = mkdtempSync(join(tmpdir(), "neuron-encode-"));
afterAll(() => {
  native.close();
  rmSync(dir, { recursive: true, force: true });
});

/** NAL unit types present in an Annex-B buffer (H.264: 5 bits; HEVC: 6 bits after the start code). */
function nalTypes(buf: Uint8Array, codec: CodecName): Set<number> {
  const types = new Set<number>();
  for (let i = 0; i + 3 < buf.length; i++)
    if (buf[i] === 0 && buf[i + 1] === 0 && buf[i + 2] === 1)
      types.add(codec === "h264" ? buf[i + 3]! & 0x1f : (buf[i + 3]! >> 1) & 0x3f);
  return types;
}

async function encodeClip(codec: CodecName, width: number, height: number, frames: number, idrAt: number[]) {
  const enc = VideoEncoder.open(native, { codec, width, height, fps: 60, bitrateKbps: 3000, threads: 2 });
  const pitch = width * 4;
  const src = new Uint8Array(pitch * height);
  const out = new Uint8Array(width * height * 2);
  const chunks: Uint8Array[] = [];
  const infos = [];
  try {
    for (let i = 0; i < frames; i++) {
      native.testpatternFill(src, width, height, pitch, i);
      const info = enc.encode(src, pitch, idrAt.includes(i), out);
      expect(info.size).toBeGreaterThan(0);
      chunks.push(out.slice(0, info.size));
      infos.push(info);
    }
  } finally {
    enc.close();
  }
  const file = join(dir, `clip-${codec}-${width}x${height}.${codec === "h264" ? "h264" : "hevc"}`);
  writeFileSync(file, Buffer.concat(chunks));
  return { enc, file, chunks, infos };
}

describe("video encoder", () => {
  test("H.264 (libx264) Annex-B decodes to the right size and frame count; IDR on request only", async () => {
    const { enc, file, chunks, infos } = await encodeClip("h264", 320, 240, 30, [17]);
    expect(enc.name).toBe("libx264");
    expect(enc.report).toContain("libx264: chosen");
    expect(enc.report).toMatch(/h264_nvenc: (unavailable|skipped)/);
    expect(infos.map((i) => i.idr)).toEqual(infos.map((_, i) => i === 0 || i === 17));
    for (const i of [0, 17]) {
      const t = nalTypes(chunks[i]!, "h264");
      expect(t.has(7) && t.has(8) && t.has(5)).toBe(true); // SPS, PPS, IDR slice
      expect([...chunks[i]!.subarray(0, 3)]).toEqual([0, 0, 0]);
    }
    expect(nalTypes(chunks[5]!, "h264").has(5)).toBe(false);
    const probed = await probeStream(file, "h264");
    expect(probed).toMatchObject({ codec: "h264", width: 320, height: 240, frames: 30 });
    expect(probed.keyFrames).toEqual([0, 17]);
    // the burned-in counter survives coding: decoded frame i shows counter i
    const raw = join(dir, "decoded.bgra");
    await decodeBgra(file, "h264", raw);
    const decoded = readFileSync(raw);
    const size = 320 * 240 * 4;
    expect(decoded.length).toBe(size * 30);
    for (const i of [0, 1, 16, 17, 29])
      expect(native.testpatternCounter(decoded.subarray(i * size, (i + 1) * size), 320, 240, 320 * 4)).toBe(i);
  });

  test("HEVC (libx265) with VPS/SPS/PPS on IDR decodes to the right size and count", async () => {
    const { enc, file, chunks, infos } = await encodeClip("hevc", 256, 144, 12, [6]);
    expect(enc.name).toBe("libx265");
    expect(infos.filter((i) => i.idr).map((i) => i.frameIndex)).toEqual([0, 6]);
    const t = nalTypes(chunks[6]!, "hevc");
    expect(t.has(32) && t.has(33) && t.has(34)).toBe(true);
    const probed = await probeStream(file, "hevc");
    expect(probed).toMatchObject({ codec: "hevc", width: 256, height: 144, frames: 12 });
  });

  test("intra refresh: no further IDR frames, the stream still decodes", async () => {
    const enc = VideoEncoder.open(native, { codec: "h264", width: 320, height: 240, fps: 60, bitrateKbps: 3000, threads: 2, intraRefresh: true });
    const src = new Uint8Array(320 * 240 * 4);
    const out = new Uint8Array(320 * 240 * 2);
    const chunks: Uint8Array[] = [];
    try {
      for (let i = 0; i < 90; i++) {
        native.testpatternFill(src, 320, 240, 320 * 4, i);
        const info = enc.encode(src, 320 * 4, false, out);
        if (i > 0) expect(nalTypes(out.subarray(0, info.size), "h264").has(5)).toBe(false);
        chunks.push(out.slice(0, info.size));
      }
    } finally {
      enc.close();
    }
    const file = join(dir, "intra-refresh.h264");
    writeFileSync(file, Buffer.concat(chunks));
    expect(await probeStream(file, "h264")).toMatchObject({ width: 320, height: 240, frames: 90 });
  });

  test("odd sizes are cropped to even; bitrate changes apply", async () => {
    const enc = VideoEncoder.open(native, { codec: "h264", width: 321, height: 179, fps: 30, bitrateKbps: 1000, threads: 1 });
    try {
      const src = new Uint8Array(321 * 4 * 179);
      const out = new Uint8Array(321 * 179 * 2);
      native.testpatternFill(src, 321, 179, 321 * 4, 1);
      const info = enc.encode(src, 321 * 4, false, out);
      expect([info.width, info.height]).toEqual([320, 178]);
      enc.setBitrate(5000);
      expect(() => enc.setBitrate(10)).toThrow("NEURON_EINVAL");
      expect(() => enc.encode(src, 4, false, out)).toThrow("NEURON_EINVAL");
      expect(() => enc.encode(src, 321 * 4, false, new Uint8Array(4))).toThrow("NEURON_ERANGE");
    } finally {
      enc.close();
    }
  });

  test("a named encoder that cannot open is an error with its reason, never a fallback", () => {
    const attempt = () =>
      VideoEncoder.open(native, { codec: "h264", width: 320, height: 240, fps: 60, bitrateKbps: 2000, threads: 2, encoder: "h264_nvenc" });
    expect(attempt).toThrow(EncoderUnavailableError);
    try {
      attempt();
    } catch (err) {
      expect((err as EncoderUnavailableError).report).toContain("h264_nvenc: unavailable");
      expect((err as EncoderUnavailableError).report).not.toContain("libx264");
    }
    expect(() => VideoEncoder.open(native, { codec: "h264", width: 8, height: 8, fps: 60, bitrateKbps: 2000, threads: 2 })).toThrow(
      EncoderUnavailableError,
    );
  });
});
