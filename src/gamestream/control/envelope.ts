/**
 * The encrypted control-stream envelope (specs/gamestream.md, "Control"):
 *   LE16 0x0001 ‖ LE16 len ‖ LE32 seq ‖ tag[16] ‖ AES-128-GCM(rikey, LE16 type ‖ LE16 payloadLen ‖ payload)
 * with len = 4 + 16 + plaintext length; IV = LE32(seq) ‖ zeros ‖ 'C','C' (client→host) or 'H','C'
 * (host→client); no AAD. Only whole, well-formed envelopes open; anything else is a typed rejection.
 */
import type { RtspCipher } from "../rtsp/record.ts";

export const ENCRYPTED_TYPE = 0x0001;
export const ENVELOPE_HEADER_BYTES = 8;
export const TAG_BYTES = 16;
/** Largest plaintext (type + length + payload) accepted or sent. */
export const MAX_PLAINTEXT_BYTES = 4096;

export const ControlType = {
  TERMINATION: 0x0109,
  RUMBLE: 0x010b,
  HDR_MODE: 0x010e,
  PING: 0x0200,
  LOSS_STATS: 0x0201,
  INPUT: 0x0206,
  INVALIDATE_REFS: 0x0301,
  IDR_REQUEST: 0x0302,
  START_B: 0x0307,
  LTR_ACK: 0x0350,
  FEC_STATUS: 0x5502,
} as const;

/** BE32 reason of a graceful termination. */
export const TERMINATION_GRACEFUL = 0x80030023;

export type Origin = "client" | "host";

export function controlIv(seq: number, origin: Origin): Uint8Array {
  const iv = new Uint8Array(12);
  new DataView(iv.buffer).setUint32(0, seq >>> 0, true);
  iv[10] = origin === "host" ? 0x48 : 0x43; // 'H' / 'C'
  iv[11] = 0x43; // 'C'
  return iv;
}

export interface ControlMessage {
  type: number;
  payload: Uint8Array;
}

export type OpenResult =
  | { ok: true; seq: number; message: ControlMessage }
  | { ok: false; reason: "unencrypted" | "malformed" | "bad-tag"; detail: string };

/** Seals one host→client (or, for test peers, client→host) message. */
export function sealControl(cipher: RtspCipher, seq: number, message: ControlMessage, origin: Origin = "host"): Uint8Array {
  const plainLen = 4 + message.payload.length;
  if (message.payload.length > 0xffff || plainLen > MAX_PLAINTEXT_BYTES) throw new RangeError(`control payload of ${message.payload.length} bytes is too large`);
  const plain = new Uint8Array(plainLen);
  const pv = new DataView(plain.buffer);
  pv.setUint16(0, message.type, true);
  pv.setUint16(2, message.payload.length, true);
  plain.set(message.payload, 4);
  const sealed = cipher.seal(plain, controlIv(seq, origin)); // tag ‖ ciphertext
  plain.fill(0);
  const out = new Uint8Array(ENVELOPE_HEADER_BYTES + sealed.length);
  const v = new DataView(out.buffer);
  v.setUint16(0, ENCRYPTED_TYPE, true);
  v.setUint16(2, 4 + sealed.length, true);
  v.setUint32(4, seq >>> 0, true);
  out.set(sealed, ENVELOPE_HEADER_BYTES);
  return out;
}

/** Opens one client→host envelope; never throws. */
export function openControl(cipher: RtspCipher, data: Uint8Array, origin: Origin = "client"): OpenResult {
  if (data.length < 2) return { ok: false, reason: "malformed", detail: `${data.length}-byte message` };
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (v.getUint16(0, true) !== ENCRYPTED_TYPE) return { ok: false, reason: "unencrypted", detail: `type 0x${v.getUint16(0, true).toString(16)}` };
  if (data.length < ENVELOPE_HEADER_BYTES + TAG_BYTES + 4) return { ok: false, reason: "malformed", detail: `${data.length}-byte envelope` };
  const len = v.getUint16(2, true);
  if (len !== data.length - 4) return { ok: false, reason: "malformed", detail: `length field ${len} for ${data.length} bytes` };
  if (len - 4 - TAG_BYTES > MAX_PLAINTEXT_BYTES) return { ok: false, reason: "malformed", detail: `plaintext of ${len - 20} bytes` };
  const seq = v.getUint32(4, true);
  let plain: Uint8Array;
  try {
    plain = cipher.open(data.subarray(ENVELOPE_HEADER_BYTES), controlIv(seq, origin));
  } catch {
    return { ok: false, reason: "bad-tag", detail: `seq ${seq}` };
  }
  const pv = new DataView(plain.buffer, plain.byteOffset, plain.byteLength);
  const type = pv.getUint16(0, true);
  const payloadLen = pv.getUint16(2, true);
  if (payloadLen !== plain.length - 4) return { ok: false, reason: "malformed", detail: `payload length ${payloadLen} for ${plain.length - 4} bytes` };
  return { ok: true, seq, message: { type, payload: plain.subarray(4) } };
}

/**
 * Replay filter over client sequence numbers: accepts each number once, within a window of
 * WINDOW below the highest seen (ENet may reorder unsequenced messages across channels).
 */
export class ReplayWindow {
  static readonly WINDOW = 256;
  private highest = -1;
  private readonly seen = new Set<number>();

  accept(seq: number): boolean {
    if (seq <= this.highest - ReplayWindow.WINDOW) return false;
    if (this.seen.has(seq)) return false;
    this.seen.add(seq);
    if (seq > this.highest) {
      this.highest = seq;
      const floor = seq - ReplayWindow.WINDOW;
      if (this.seen.size > 2 * ReplayWindow.WINDOW) for (const s of this.seen) if (s <= floor) this.seen.delete(s);
    }
    return true;
  }
}
