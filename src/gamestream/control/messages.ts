/**
 * Payloads of the control messages the host reads and writes (inside the encrypted envelope).
 *
 *   0x0301 reference-frame invalidation: LE64 firstFrame ‖ LE64 lastFrame ‖ 8 reserved bytes
 *          (the spec's "LE32 first, reserved, LE32 last"; frame indices fit 32 bits)
 *   0x5502 frame FEC status (21 bytes, big-endian): BE32 frameIndex, BE16 highestReceivedSeq,
 *          BE16 nextContiguousSeq, BE16 missingBeforeHighest, BE16 totalData, BE16 totalParity,
 *          BE16 receivedData, BE16 receivedParity, u8 fecPercentage, u8 blockIndex, u8 blockCount.
 *          Clients send it only for frames that lost packets.
 *   0x0109 termination: BE32 reason (0x80030023 graceful)
 *   0x010b rumble: LE32 0 ‖ LE16 controller ‖ LE16 lowFreq ‖ LE16 highFreq
 */
import { TERMINATION_GRACEFUL } from "./envelope.ts";

export interface FrameRange {
  first: number;
  last: number;
}

/** A range of frame indices (first ≤ last, 32-bit), or null when malformed. */
export function parseInvalidation(p: Uint8Array): FrameRange | null {
  if (p.length < 16 || p.length > 64) return null;
  const v = new DataView(p.buffer, p.byteOffset, p.byteLength);
  const first = v.getBigUint64(0, true);
  const last = v.getBigUint64(8, true);
  if (first > last || last > 0xffffffffn) return null;
  return { first: Number(first), last: Number(last) };
}

export interface FrameFecStatus {
  frameIndex: number;
  highestReceivedSeq: number;
  nextContiguousSeq: number;
  missingBeforeHighest: number;
  totalData: number;
  totalParity: number;
  receivedData: number;
  receivedParity: number;
  fecPercentage: number;
  blockIndex: number;
  blockCount: number;
}

export const FEC_STATUS_BYTES = 21;

export function parseFecStatus(p: Uint8Array): FrameFecStatus | null {
  if (p.length < FEC_STATUS_BYTES || p.length > 64) return null;
  const v = new DataView(p.buffer, p.byteOffset, p.byteLength);
  const s: FrameFecStatus = {
    frameIndex: v.getUint32(0),
    highestReceivedSeq: v.getUint16(4),
    nextContiguousSeq: v.getUint16(6),
    missingBeforeHighest: v.getUint16(8),
    totalData: v.getUint16(10),
    totalParity: v.getUint16(12),
    receivedData: v.getUint16(14),
    receivedParity: v.getUint16(16),
    fecPercentage: v.getUint8(18),
    blockIndex: v.getUint8(19),
    blockCount: v.getUint8(20),
  };
  if (s.receivedData > s.totalData || s.receivedParity > s.totalParity || s.totalData > 255 || s.totalParity > 255) return null;
  return s;
}

export function encodeFecStatus(s: FrameFecStatus): Uint8Array {
  const p = new Uint8Array(FEC_STATUS_BYTES);
  const v = new DataView(p.buffer);
  v.setUint32(0, s.frameIndex);
  v.setUint16(4, s.highestReceivedSeq);
  v.setUint16(6, s.nextContiguousSeq);
  v.setUint16(8, s.missingBeforeHighest);
  v.setUint16(10, s.totalData);
  v.setUint16(12, s.totalParity);
  v.setUint16(14, s.receivedData);
  v.setUint16(16, s.receivedParity);
  v.setUint8(18, s.fecPercentage);
  v.setUint8(19, s.blockIndex);
  v.setUint8(20, s.blockCount);
  return p;
}

export function terminationPayload(reason = TERMINATION_GRACEFUL): Uint8Array {
  const p = new Uint8Array(4);
  new DataView(p.buffer).setUint32(0, reason >>> 0);
  return p;
}

export interface Rumble {
  /** Controller number 0–15. */
  controller: number;
  /** Motor strengths 0–65535. */
  lowFreq: number;
  highFreq: number;
}

export function rumblePayload(r: Rumble): Uint8Array {
  const p = new Uint8Array(10);
  const v = new DataView(p.buffer);
  v.setUint32(0, 0, true);
  v.setUint16(4, r.controller, true);
  v.setUint16(6, r.lowFreq, true);
  v.setUint16(8, r.highFreq, true);
  return p;
}
