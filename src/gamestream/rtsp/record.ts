/**
 * Encrypted RTSP (`rtspenc://`) records, both directions:
 *   BE32(0x80000000 | plaintext length) ‖ BE32(seq) ‖ tag[16] ‖ AES-128-GCM(rikey, plaintext)
 * IV (12 bytes) = LE32(seq), zeros, byte 10–11 'C','R' (client) or 'H','R' (host); no AAD.
 */

export const RECORD_HEADER_BYTES = 8;
export const RECORD_TAG_BYTES = 16;
export const ENCRYPTED_BIT = 0x80000000;

/** AES-128-GCM with one key: seal → tag ‖ ciphertext; open throws if the tag does not verify. */
export interface RtspCipher {
  seal(plaintext: Uint8Array, iv: Uint8Array): Uint8Array;
  open(tagAndCiphertext: Uint8Array, iv: Uint8Array): Uint8Array;
  close(): void;
}

export function rtspIv(seq: number, origin: "C" | "H"): Uint8Array {
  const iv = new Uint8Array(12);
  new DataView(iv.buffer).setUint32(0, seq >>> 0, true);
  iv[10] = origin.charCodeAt(0);
  iv[11] = 0x52; // 'R'
  return iv;
}

export type FramedRecord =
  | { kind: "incomplete"; /** Total bytes needed before framing again. */ need: number }
  | { kind: "invalid"; reason: string }
  | { kind: "record"; seq: number; sealed: Uint8Array };

/** Reads one record from the bytes received so far; the length is checked against `maxPlaintext` before waiting for it. */
export function frameRecord(buf: Uint8Array, maxPlaintext: number): FramedRecord {
  if (buf.byteLength >= 1 && (buf[0]! & 0x80) === 0) return { kind: "invalid", reason: "not an encrypted RTSP record" };
  if (buf.byteLength < RECORD_HEADER_BYTES) return { kind: "incomplete", need: RECORD_HEADER_BYTES };
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const len = view.getUint32(0) & ~ENCRYPTED_BIT;
  const seq = view.getUint32(4);
  if (len === 0 || len > maxPlaintext) return { kind: "invalid", reason: `record length ${len} outside 1..${maxPlaintext}` };
  const total = RECORD_HEADER_BYTES + RECORD_TAG_BYTES + len;
  if (buf.byteLength < total) return { kind: "incomplete", need: total };
  if (buf.byteLength > total) return { kind: "invalid", reason: "bytes after the record" };
  return { kind: "record", seq, sealed: buf.subarray(RECORD_HEADER_BYTES, total) };
}

export function sealRecord(cipher: RtspCipher, seq: number, plaintext: Uint8Array, origin: "C" | "H" = "H"): Uint8Array {
  const sealed = cipher.seal(plaintext, rtspIv(seq, origin));
  const out = new Uint8Array(RECORD_HEADER_BYTES + sealed.byteLength);
  const view = new DataView(out.buffer);
  view.setUint32(0, (ENCRYPTED_BIT | plaintext.byteLength) >>> 0);
  view.setUint32(4, seq >>> 0);
  out.set(sealed, RECORD_HEADER_BYTES);
  return out;
}
