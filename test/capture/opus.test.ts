/** The Opus encoder through ffi: CBR 5 ms packets, surround layouts, a tone survives the round trip. */
import { afterAll, describe, expect, test } from "bun:test";
import { AudioNative, OpusDecoder, OpusEncoder } from "../../ffi/audio.ts";
import { resolveNativePath } from "../../ffi/native.ts";

const native = new AudioNative(resolveNativePath({}));
afterAll(() => native.close());

function tone(frame: number, samples: number, channels: number): Int16Array {
  const pcm = new Int16Array(samples * channels);
  for (let s = 0; s < samples; s++)
    for (let c = 0; c < channels; c++) pcm[s * channels + c] = Math.round(8000 * Math.sin((2 * Math.PI * 440 * (frame * samples + s)) / 48000));
  return pcm;
}

describe("Opus encoder", () => {
  test("stereo 128 kb/s, 5 ms frames: constant 80-byte packets that decode back to the tone", () => {
    const enc = OpusEncoder.open(native, { channels: 2, bitrateBps: 128000, frameSamples: 240 });
    const dec = OpusDecoder.open(native, 2, enc.layout);
    try {
      expect(enc.layout).toEqual({ streams: 1, coupled: 1, mapping: [0, 1] });
      const out = new Uint8Array(1500);
      const pcm = new Int16Array(5760 * 2);
      const sizes: number[] = [];
      let energy = 0;
      for (let f = 0; f < 200; f++) {
        const n = enc.encode(tone(f, 240, 2), out);
        sizes.push(n);
        expect(dec.decode(out.subarray(0, n), pcm)).toBe(240);
        if (f > 20) for (let i = 0; i < 480; i++) energy += pcm[i]! * pcm[i]!;
      }
      expect(new Set(sizes.slice(5))).toEqual(new Set([80])); // 128000 b/s * 5 ms / 8
      const rms = Math.sqrt(energy / (179 * 480));
      expect(rms).toBeGreaterThan(4000); // the 8000-peak tone has an RMS of ~5657
      expect(rms).toBeLessThan(7500);
    } finally {
      enc.close();
      dec.close();
    }
  });

  test("5.1 and 7.1 use the multistream layouts", () => {
    const six = OpusEncoder.open(native, { channels: 6, bitrateBps: 256000 });
    const eight = OpusEncoder.open(native, { channels: 8, bitrateBps: 450000 });
    try {
      expect(six.layout).toMatchObject({ streams: 4, coupled: 2 });
      expect(eight.layout).toMatchObject({ streams: 5, coupled: 3 });
      expect(six.encode(tone(0, 240, 6), new Uint8Array(1500))).toBeGreaterThan(0);
    } finally {
      six.close();
      eight.close();
    }
  });

  test("bad settings and bad frames are refused", () => {
    expect(() => OpusEncoder.open(native, { channels: 2, bitrateBps: 10 })).toThrow("NEURON_EINVAL");
    const enc = OpusEncoder.open(native, { channels: 2, bitrateBps: 96000 });
    try {
      expect(() => enc.encode(new Int16Array(10), new Uint8Array(100))).toThrow(RangeError);
      expect(() => OpusDecoder.open(native, 2, { streams: 1, coupled: 1, mapping: [0, 7] })).toThrow("NEURON_EINVAL");
    } finally {
      enc.close();
    }
  });
});
