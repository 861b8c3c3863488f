/**
 * The Opus configuration of a session's audio, from what the client's ANNOUNCE
 * asked for: channel count, high quality, packet duration. Surround layouts are
 * the ones RTSP DESCRIBE advertises (OPUS_LAYOUTS: first normal, second high
 * quality), so the client decodes with exactly the layout we encode with.
 * PCM is interleaved s16 in the client's channel order: FL FR FC LFE BL BR SL SR.
 */
import type { OpusLayout } from "../../../ffi/audio.ts";
import type { StreamConfig } from "../rtsp/announce.ts";
import { OPUS_LAYOUTS } from "../rtsp/describe.ts";

export interface AudioParams {
  channels: 2 | 6 | 8;
  highQuality: boolean;
  packetDurationMs: 5 | 10;
  /** Samples per channel per packet (48 kHz). */
  frameSamples: 240 | 480;
  bitrateBps: number;
  layout: OpusLayout;
  encrypted: boolean;
}

const BITRATE: Record<2 | 6 | 8, { normal: number; high: number }> = {
  2: { normal: 96_000, high: 512_000 },
  6: { normal: 256_000, high: 1_536_000 },
  8: { normal: 450_000, high: 2_048_000 },
};

export const CHANNEL_NAMES = ["FL", "FR", "FC", "LFE", "BL", "BR", "SL", "SR"] as const;

export function audioParams(stream: Pick<StreamConfig, "audio" | "encryption">): AudioParams {
  const { channels, highQuality, packetDurationMs } = stream.audio;
  const layout: OpusLayout =
    channels === 2 ? { streams: 1, coupled: 1, mapping: [0, 1] } : { ...OPUS_LAYOUTS[channels][highQuality ? 1 : 0]! };
  return {
    channels,
    highQuality,
    packetDurationMs,
    frameSamples: packetDurationMs === 5 ? 240 : 480,
    bitrateBps: highQuality ? BITRATE[channels].high : BITRATE[channels].normal,
    layout: { streams: layout.streams, coupled: layout.coupled, mapping: [...layout.mapping] },
    encrypted: stream.encryption.audio,
  };
}
