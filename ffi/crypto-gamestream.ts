/**
 * The AES-GCM IV layouts of the GameStream protocols (specs/gamestream.md), as 12-byte templates
 * for the batch Counter modes and as single IVs, plus the batch layouts of their records.
 *
 *   video   : IV = LE64 counter ‖ 0 0 0 ‖ 'V'            record = iv[12] ‖ LE32 frameIndex ‖ tag ‖ ct
 *   control : IV = LE32 seq ‖ 0… ‖ 'H','C' (host→client) / 'C','C' (client→host)
 *             record = LE16 0x0001 ‖ LE16 len ‖ LE32 seq ‖ tag ‖ ct
 *   rtsp    : IV = LE32 seq ‖ 0… ‖ 'H','R' (host) / 'C','R' (client)
 *             record = BE32 (0x80000000 | len) ‖ BE32 seq ‖ tag ‖ ct
 * No stream uses AAD.
 */
import { GcmIvMode, GcmLayout } from "./crypto-aes.ts";
import { CryptoArgumentError, GCM_TAG_BYTES } from "./crypto-symbols.ts";

export type GameStreamChannel = "video" | "control" | "rtsp";
export type GameStreamSender = "host" | "client";

/** The 12-byte IV template of a channel: the counter bytes are zero. */
export function ivTemplate(channel: GameStreamChannel, sender: GameStreamSender): Uint8Array {
  const iv = new Uint8Array(12);
  if (channel === "video") {
    iv[11] = 0x56; // 'V' (only the host sends video)
  } else {
    iv[10] = (sender === "host" ? "H" : "C").charCodeAt(0);
    iv[11] = (channel === "control" ? "C" : "R").charCodeAt(0);
  }
  return iv;
}

/** One IV: the template with its counter (LE64 for video, LE32 sequence otherwise). */
export function gameStreamIv(channel: GameStreamChannel, sender: GameStreamSender, counter: number | bigint): Uint8Array {
  const iv = ivTemplate(channel, sender);
  const v = new DataView(iv.buffer);
  const c = BigInt(counter);
  if (channel === "video") {
    if (c < 0n || c >= 1n << 64n) throw new CryptoArgumentError("video IV counter must fit 64 bits");
    v.setBigUint64(0, c, true);
  } else {
    if (c < 0n || c >= 1n << 32n) throw new CryptoArgumentError(`${channel} sequence must fit 32 bits`);
    v.setUint32(0, Number(c), true);
  }
  return iv;
}

/** Header bytes before the tag in each channel's record, and the ciphertext offset. */
export const RECORD_LAYOUT = {
  video: { tagOffset: 16, ctOffset: 32, ivOffset: 0 },
  control: { tagOffset: 8, ctOffset: 8 + GCM_TAG_BYTES, ivOffset: -1 },
  rtsp: { tagOffset: 8, ctOffset: 8 + GCM_TAG_BYTES, ivOffset: -1 },
} as const;

/**
 * Batch layout to seal `maxPayload`-byte payloads (strided by `inStride`, default maxPayload)
 * into records of the channel: counter IVs (LE64 for video, written into the record; LE32 for
 * control and RTSP). The caller fills the header fields around the tag.
 */
export function sealLayout(channel: GameStreamChannel, maxPayload: number, inStride = maxPayload): GcmLayout {
  const r = RECORD_LAYOUT[channel];
  return new GcmLayout({
    inStride, outStride: r.ctOffset + maxPayload, ctOffset: r.ctOffset, tagOffset: r.tagOffset, ivOffset: r.ivOffset,
    ivMode: channel === "video" ? GcmIvMode.Counter64 : GcmIvMode.Counter32,
  });
}

/**
 * Batch layout to open records of the channel (strided by `inStride`, default the largest record)
 * into `maxPayload`-byte slots: video reads the IV from the record, the others take explicit IVs
 * (built from each record's sequence number with gameStreamIv) 12 bytes apart.
 */
export function openLayout(channel: GameStreamChannel, maxPayload: number, inStride?: number): GcmLayout {
  const r = RECORD_LAYOUT[channel];
  return new GcmLayout({
    inStride: inStride ?? r.ctOffset + maxPayload, outStride: maxPayload, ctOffset: r.ctOffset, tagOffset: r.tagOffset,
    ivOffset: r.ivOffset, ivMode: channel === "video" ? GcmIvMode.InRecord : GcmIvMode.Explicit, ivStride: 12,
  });
}
