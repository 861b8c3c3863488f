/**
 * Audio for a lumen/1 session: 48 kHz stereo Opus (native/encode/opus.c through ffi/audio.ts),
 * one packet per 10 ms on the audio plane. The source here is a 440 Hz test tone; a session's
 * real sound source plugs in through the same `nextPacket` shape.
 */
import { AudioNative, OpusEncoder } from "../../ffi/audio.ts";

export const AUDIO_FRAME_SAMPLES = 480; // 10 ms at 48 kHz

export function toneAudio(n: AudioNative): { nextPacket(): Uint8Array | null; intervalMs: number; close(): void } {
  const enc = OpusEncoder.open(n, { channels: 2, bitrateBps: 96_000, frameSamples: AUDIO_FRAME_SAMPLES });
  const pcm = new Int16Array(AUDIO_FRAME_SAMPLES * 2);
  const out = new Uint8Array(1400);
  let t = 0;
  return {
    intervalMs: 10,
    nextPacket() {
      for (let i = 0; i < AUDIO_FRAME_SAMPLES; i++, t++) {
        const v = Math.round(Math.sin((2 * Math.PI * 440 * t) / 48_000) * 8000);
        pcm[2 * i] = v;
        pcm[2 * i + 1] = v;
      }
      const len = enc.encode(pcm, out);
      return len > 0 ? out.slice(0, len) : null;
    },
    close: () => enc.close(),
  };
}
