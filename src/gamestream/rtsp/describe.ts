/**
 * The DESCRIBE reply body: SDP attributes clients search for by substring to
 * learn what this host supports (codecs, encryption, reference-frame
 * invalidation, surround Opus layouts). Only what the host really offers.
 */
import { CODEC } from "../constants.ts";

/** x-ss-general.encryption* bits. */
export const ENCRYPTION = { CONTROL: 0x1, VIDEO: 0x2, AUDIO: 0x4 } as const;

/** x-ss-general.featureFlags bits. */
export const HOST_FEATURE = { PEN_TOUCH: 0x1, CONTROLLER_TOUCH: 0x2 } as const;

export interface HostCapabilities {
  /** ServerCodecModeSupport bits of the encoders this machine has. */
  codecModeSupport: number;
  /** Streams this host can encrypt (ENCRYPTION bits). */
  encryptionSupported: number;
  /** Streams this host asks clients to encrypt even if they would rather not. */
  encryptionRequested: number;
  /** HOST_FEATURE bits. */
  featureFlags: number;
  /** The encoder honours reference-frame invalidation (else clients ask for IDR frames). */
  refPicInvalidation: boolean;
}

/**
 * Opus multistream layouts per channel count, normal then high quality:
 * streams, coupled streams, and the channel mapping as sent (clients move the
 * last entry of a normal-quality 5.1/7.1 mapping to position 3, LFE after C,
 * so the order sent here becomes FL FR C LFE RL RR [SL SR] on their side).
 */
export const OPUS_LAYOUTS: Record<6 | 8, { streams: number; coupled: number; mapping: number[] }[]> = {
  6: [
    { streams: 4, coupled: 2, mapping: [0, 1, 4, 5, 2, 3] },
    { streams: 6, coupled: 0, mapping: [0, 1, 2, 3, 4, 5] },
  ],
  8: [
    { streams: 5, coupled: 3, mapping: [0, 1, 4, 5, 6, 7, 2, 3] },
    { streams: 8, coupled: 0, mapping: [0, 1, 2, 3, 4, 5, 6, 7] },
  ],
};

export function describeBody(caps: HostCapabilities): string {
  const lines = [
    "v=0",
    "o=- 0 0 IN IP4 0.0.0.0",
    "s=NeuronOS",
    `a=x-ss-general.featureFlags:${caps.featureFlags}`,
    `a=x-ss-general.encryptionSupported:${caps.encryptionSupported}`,
    `a=x-ss-general.encryptionRequested:${caps.encryptionRequested & caps.encryptionSupported}`,
  ];
  if (caps.codecModeSupport & (CODEC.HEVC | CODEC.HEVC_MAIN10)) lines.push("a=fmtp:96 sprop-parameter-sets=AAAAAU");
  if (caps.codecModeSupport & (CODEC.AV1_MAIN8 | CODEC.AV1_MAIN10)) lines.push("a=rtpmap:98 AV1/90000");
  if (caps.refPicInvalidation) lines.push("a=x-nv-video[0].refPicInvalidation:1");
  for (const channels of [6, 8] as const) {
    for (const l of OPUS_LAYOUTS[channels]) lines.push(`a=fmtp:97 surround-params=${channels}${l.streams}${l.coupled}${l.mapping.join("")}`);
  }
  lines.push("t=0 0", "m=video 0 RTP/AVP 96", "");
  return lines.join("\r\n");
}
