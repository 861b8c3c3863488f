/**
 * The control envelope byte for byte, checked against node:crypto's AES-128-GCM (an independent
 * implementation), plus the replay window and the payload parsers' bounds.
 */
import { describe, expect, test } from "bun:test";
import { createCipheriv, createDecipheriv } from "node:crypto";
import { NativeCrypto } from "../../ffi/crypto.ts";
import { controlIv, ControlType, openControl, ReplayWindow, sealControl } from "../../src/gamestream/control/envelope.ts";
import { encodeFecStatus, parseFecStatus, parseInvalidation, rumblePayload, terminationPayload } from "../../src/gamestream/control/messages.ts";
import { gameStreamCrypto } from "../../src/gamestream/native-crypto.ts";

const gs = gameStreamCrypto(NativeCrypto.load());
const key = Uint8Array.from({ length: 16 }, (_, i) => i * 7 + 1);

describe("control envelope", () => {
  test("IV layout: LE32 seq, zeros, 'C','C' from the client and 'H','C' from the host", () => {
    expect([...controlIv(0x01020304, "client")]).toEqual([4, 3, 2, 1, 0, 0, 0, 0, 0, 0, 0x43, 0x43]);
    expect([...controlIv(5, "host")]).toEqual([5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x48, 0x43]);
  });

  test("sealed by us = sealed by node:crypto, and node:crypto opens it", () => {
    const cipher = gs.aesGcm(key);
    const payload = Uint8Array.from([0xaa, 0xbb, 0xcc]);
    const env = sealControl(cipher, 77, { type: ControlType.RUMBLE, payload }, "host");
    const v = new DataView(env.buffer);
    expect(v.getUint16(0, true)).toBe(0x0001);
    expect(v.getUint16(2, true)).toBe(4 + 16 + 4 + 3);
    expect(v.getUint32(4, true)).toBe(77);
    const d = createDecipheriv("aes-128-gcm", key, controlIv(77, "host"));
    d.setAuthTag(env.subarray(8, 24));
    const plain = Buffer.concat([d.update(env.subarray(24)), d.final()]);
    expect([...plain]).toEqual([0x0b, 0x01, 3, 0, 0xaa, 0xbb, 0xcc]);
    // node:crypto seals a client message; we open it.
    const c = createCipheriv("aes-128-gcm", key, controlIv(9, "client"));
    const ct = Buffer.concat([c.update(Uint8Array.from([0x02, 0x03, 0, 0])), c.final()]);
    const msg = new Uint8Array(8 + 16 + ct.length);
    const mv = new DataView(msg.buffer);
    mv.setUint16(0, 1, true);
    mv.setUint16(2, 4 + 16 + ct.length, true);
    mv.setUint32(4, 9, true);
    msg.set(c.getAuthTag(), 8);
    msg.set(ct, 24);
    const r = openControl(cipher, msg);
    expect(r).toMatchObject({ ok: true, seq: 9, message: { type: ControlType.IDR_REQUEST } });
    cipher.close();
  });

  test("rejections: unencrypted, short, lying lengths, wrong key, wrong direction", () => {
    const cipher = gs.aesGcm(key);
    const other = gs.aesGcm(new Uint8Array(16));
    const good = sealControl(cipher, 1, { type: ControlType.PING, payload: new Uint8Array(0) }, "client");
    expect(openControl(cipher, good).ok).toBe(true);
    expect(openControl(cipher, Uint8Array.from([0x00, 0x02, 0, 0]))).toMatchObject({ ok: false, reason: "unencrypted" });
    expect(openControl(cipher, new Uint8Array(0))).toMatchObject({ ok: false, reason: "malformed" });
    expect(openControl(cipher, good.subarray(0, 20))).toMatchObject({ ok: false, reason: "malformed" });
    const lie = good.slice();
    lie[2] = 0x7f;
    expect(openControl(cipher, lie)).toMatchObject({ ok: false, reason: "malformed" });
    expect(openControl(other, good)).toMatchObject({ ok: false, reason: "bad-tag" });
    expect(openControl(cipher, good, "host")).toMatchObject({ ok: false, reason: "bad-tag" });
    // inner payload length that disagrees with the ciphertext
    const inner = new Uint8Array(8 + 16 + 6);
    const c = createCipheriv("aes-128-gcm", key, controlIv(2, "client"));
    const ct = Buffer.concat([c.update(Uint8Array.from([0x00, 0x02, 9, 0, 1, 2])), c.final()]);
    new DataView(inner.buffer).setUint16(0, 1, true);
    new DataView(inner.buffer).setUint16(2, 4 + 16 + 6, true);
    new DataView(inner.buffer).setUint32(4, 2, true);
    inner.set(c.getAuthTag(), 8);
    inner.set(ct, 24);
    expect(openControl(cipher, inner)).toMatchObject({ ok: false, reason: "malformed" });
    expect(() => sealControl(cipher, 3, { type: 1, payload: new Uint8Array(70_000) })).toThrow(RangeError);
    cipher.close();
    other.close();
  });

  test("replay window: each sequence once, reordering within the window, nothing far behind", () => {
    const w = new ReplayWindow();
    expect(w.accept(5)).toBe(true);
    expect(w.accept(5)).toBe(false);
    expect(w.accept(3)).toBe(true);
    expect(w.accept(3)).toBe(false);
    expect(w.accept(1000)).toBe(true);
    expect(w.accept(1000 - ReplayWindow.WINDOW)).toBe(false);
    expect(w.accept(1000 - ReplayWindow.WINDOW + 1)).toBe(true);
    for (let s = 1001; s < 5000; s++) expect(w.accept(s)).toBe(true);
    expect(w.accept(4000)).toBe(false);
  });
});

describe("control payloads", () => {
  test("invalidation ranges: LE64 first/last, bounded, ordered", () => {
    const p = new Uint8Array(24);
    const v = new DataView(p.buffer);
    v.setBigUint64(0, 10n, true);
    v.setBigUint64(8, 12n, true);
    expect(parseInvalidation(p)).toEqual({ first: 10, last: 12 });
    expect(parseInvalidation(p.subarray(0, 15))).toBeNull();
    v.setBigUint64(8, 1n << 40n, true);
    expect(parseInvalidation(p)).toBeNull();
    v.setBigUint64(8, 9n, true);
    expect(parseInvalidation(p)).toBeNull();
  });

  test("FEC status: 21 big-endian bytes; impossible counts rejected", () => {
    const s = { frameIndex: 0x01020304, highestReceivedSeq: 9, nextContiguousSeq: 4, missingBeforeHighest: 2, totalData: 30, totalParity: 6, receivedData: 28, receivedParity: 6, fecPercentage: 20, blockIndex: 1, blockCount: 2 };
    const b = encodeFecStatus(s);
    expect(b.length).toBe(21);
    expect([...b.subarray(0, 4)]).toEqual([1, 2, 3, 4]);
    expect(parseFecStatus(b)).toEqual(s);
    expect(parseFecStatus(b.subarray(0, 20))).toBeNull();
    expect(parseFecStatus(encodeFecStatus({ ...s, receivedData: 31 }))).toBeNull();
  });

  test("termination and rumble payloads", () => {
    expect([...terminationPayload()]).toEqual([0x80, 0x03, 0x00, 0x23]);
    expect([...rumblePayload({ controller: 2, lowFreq: 0x0102, highFreq: 0x0304 })]).toEqual([0, 0, 0, 0, 2, 0, 2, 1, 4, 3]);
  });
});
