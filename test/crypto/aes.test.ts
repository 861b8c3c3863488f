import { afterAll, describe, expect, test } from "bun:test";
import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";
import {
  CryptoArgumentError,
  CryptoClosedError,
  GcmIvMode,
  GcmLayout,
  NativeCrypto,
  audioIv,
} from "../../ffi/crypto.ts";
import { NativeCallError } from "../../ffi/native.ts";
import { hex, openssl, unhex, workDir } from "./helpers.ts";

const crypto = NativeCrypto.load();
afterAll(() => crypto.close());

function nodeGcmSeal(key: Uint8Array, iv: Uint8Array, pt: Uint8Array, aad?: Uint8Array) {
  const c = createCipheriv("aes-128-gcm", key, iv);
  if (aad) c.setAAD(aad);
  const ct = Buffer.concat([c.update(pt), c.final()]);
  return { ct, tag: c.getAuthTag() };
}

describe("AES-128-GCM", () => {
  test("NIST/McGrew–Viega test cases 1, 2 and 4", () => {
    using g = crypto.aesGcm(unhex("feffe9928665731c6d6a8f9467308308"));
    const pt = unhex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39");
    const aad = unhex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
    const iv = unhex("cafebabefacedbaddecaf888");
    const rec = g.seal(pt, iv, aad);
    expect(hex(rec.subarray(0, 16))).toBe("5bc94fbc3221a5db94fae95ae7121a47");
    expect(hex(rec.subarray(16))).toBe(
      "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091",
    );
    expect(hex(g.open(rec, iv, aad))).toBe(hex(pt));
    using z = crypto.aesGcm(new Uint8Array(16));
    const r2 = z.seal(new Uint8Array(16), new Uint8Array(12));
    expect(hex(r2)).toBe("ab6e47d42cec13bdf53a67b21257bddf" + "0388dace60b6a392f328c2b971b2fe78");
    expect(hex(z.seal(new Uint8Array(0), new Uint8Array(12)))).toBe("58e2fccefa7e3061367f1d57a4e7455a");
  });

  test("agrees with node:crypto on random packets, AAD and lengths", () => {
    const key = randomBytes(16);
    using g = crypto.aesGcm(key);
    for (const len of [0, 1, 15, 16, 17, 100, 1024, 1400, 1424, 4096]) {
      const iv = randomBytes(12);
      const pt = randomBytes(len);
      const aad = len % 2 ? randomBytes(len % 37) : undefined;
      const ours = g.seal(pt, iv, aad);
      const theirs = nodeGcmSeal(key, iv, pt, aad);
      expect(hex(ours.subarray(16))).toBe(theirs.ct.toString("hex"));
      expect(hex(ours.subarray(0, 16))).toBe(theirs.tag.toString("hex"));
      // and node opens what node sealed through our open
      expect(hex(g.open(Buffer.concat([theirs.tag, theirs.ct]), iv, aad))).toBe(hex(pt));
    }
  });

  test("video batch: iv[12] ‖ LE32 frameIndex ‖ tag ‖ ct with LE64 counter IVs ending in 'V', as a client decrypts it", () => {
    const key = randomBytes(16);
    using g = crypto.aesGcm(key);
    const N = 64, PLEN = 1424, REC = 32 + PLEN;
    const layout = new GcmLayout({ inStride: PLEN, outStride: REC, ctOffset: 32, tagOffset: 16, ivOffset: 0, ivMode: GcmIvMode.Counter64 });
    const input = randomBytes(N * PLEN);
    const lens = new Uint32Array(N).map((_, i) => PLEN - (i % 3));
    const output = new Uint8Array(N * REC);
    const status = new Int32Array(N).fill(1);
    const template = new Uint8Array(12);
    template[11] = "V".charCodeAt(0);
    const counter = 2n ** 40n + 5n;
    expect(g.sealBatch(layout, { count: N, input, lens, output, iv: template, counter, status })).toBe(N);
    expect([...status].every((s) => s === 0)).toBe(true);
    for (const i of [0, 1, 31, 63]) {
      const rec = output.subarray(i * REC, (i + 1) * REC);
      const iv = rec.subarray(0, 12);
      const dv = new DataView(iv.buffer, iv.byteOffset, 12);
      expect(dv.getBigUint64(0, true)).toBe(counter + BigInt(i));
      expect(hex(iv.subarray(8))).toBe("00000056");
      const d = createDecipheriv("aes-128-gcm", key, iv);
      d.setAuthTag(rec.subarray(16, 32));
      const pt = Buffer.concat([d.update(rec.subarray(32, 32 + lens[i]!)), d.final()]);
      expect(pt.equals(input.subarray(i * PLEN, i * PLEN + lens[i]!))).toBe(true);
    }
    // open the whole batch reading IVs from the records
    const open = new GcmLayout({ inStride: REC, outStride: PLEN, ctOffset: 32, tagOffset: 16, ivOffset: 0, ivMode: GcmIvMode.InRecord });
    const back = new Uint8Array(N * PLEN);
    const rlens = lens.map((l) => l + 32);
    expect(g.openBatch(open, { count: N, input: output, lens: rlens, output: back, status })).toBe(N);
    for (let i = 0; i < N; i++) expect(back.subarray(i * PLEN, i * PLEN + lens[i]!)).toEqual(input.subarray(i * PLEN, i * PLEN + lens[i]!));
    // a tampered packet fails alone, with its plaintext zeroed
    output[7 * REC + 500]! ^= 1;
    back.fill(0xee);
    expect(g.openBatch(open, { count: N, input: output, lens: rlens, output: back, status })).toBe(N - 1);
    expect(status[7]).toBe(-4);
    expect(status[6]).toBe(0);
    expect(back.subarray(7 * PLEN, 7 * PLEN + lens[7]!).every((b) => b === 0)).toBe(true);
    // a truncated record (shorter than its header) is a format error
    rlens[3] = 20;
    g.openBatch(open, { count: N, input: output, lens: rlens, output: back, status });
    expect(status[3]).toBe(-7);
  });

  test("in place: plaintext already at the ciphertext offset of its record, sealed and opened there", () => {
    const key = randomBytes(16);
    using g = crypto.aesGcm(key);
    const N = 8, PLEN = 200, REC = 32 + PLEN;
    const records = new Uint8Array(N * REC);
    const plain = randomBytes(N * PLEN);
    for (let i = 0; i < N; i++) records.set(plain.subarray(i * PLEN, (i + 1) * PLEN), i * REC + 32);
    const template = new Uint8Array(12);
    template[11] = 0x56;
    const status = new Int32Array(N);
    const lens = new Uint32Array(N).fill(PLEN);
    const seal = new GcmLayout({ inStride: REC, outStride: REC, ctOffset: 32, tagOffset: 16, ivOffset: 0, ivMode: GcmIvMode.Counter64 });
    expect(g.sealBatch(seal, { count: N, input: records.subarray(32), lens, output: records, iv: template, counter: 9, status })).toBe(N);
    const iv3 = records.subarray(3 * REC, 3 * REC + 12);
    const d = createDecipheriv("aes-128-gcm", key, iv3);
    d.setAuthTag(records.subarray(3 * REC + 16, 3 * REC + 32));
    expect(Buffer.concat([d.update(records.subarray(3 * REC + 32, 4 * REC)), d.final()]).equals(plain.subarray(3 * PLEN, 4 * PLEN))).toBe(true);
    const open = new GcmLayout({ inStride: REC, outStride: REC, ctOffset: 32, tagOffset: 16, ivOffset: 0, ivMode: GcmIvMode.InRecord });
    expect(g.openBatch(open, { count: N, input: records, lens: new Uint32Array(N).fill(REC), output: records.subarray(32), status })).toBe(N);
    for (let i = 0; i < N; i++) expect(records.subarray(i * REC + 32, (i + 1) * REC)).toEqual(plain.subarray(i * PLEN, (i + 1) * PLEN));
    // one byte short of what the last packet needs is refused
    expect(() => g.sealBatch(seal, { count: N, input: records.subarray(33), lens, output: records, iv: template, status })).toThrow(CryptoArgumentError);
  });

  test("control and RTSP layouts: LE32 sequence IVs with 'H','C' / 'H','R' match node:crypto", () => {
    const key = randomBytes(16);
    using g = crypto.aesGcm(key);
    for (const [b10, b11, ctOff, tagOff] of [["H", "C", 24, 8], ["H", "R", 24, 8]] as const) {
      const N = 5, PLEN = 64, REC = ctOff + PLEN;
      const template = new Uint8Array(12);
      template[10] = b10.charCodeAt(0);
      template[11] = b11.charCodeAt(0);
      const layout = new GcmLayout({ inStride: PLEN, outStride: REC, ctOffset: ctOff, tagOffset: tagOff, ivMode: GcmIvMode.Counter32 });
      const input = randomBytes(N * PLEN);
      const output = new Uint8Array(N * REC);
      const status = new Int32Array(N);
      expect(g.sealBatch(layout, { count: N, input, lens: new Uint32Array(N).fill(PLEN), output, iv: template, counter: 0xfffffffe, status })).toBe(N);
      for (let i = 0; i < N; i++) {
        const iv = new Uint8Array(template);
        new DataView(iv.buffer).setUint32(0, (0xfffffffe + i) >>> 0, true);
        const want = nodeGcmSeal(key, iv, input.subarray(i * PLEN, (i + 1) * PLEN));
        expect(hex(output.subarray(i * REC + tagOff, i * REC + tagOff + 16))).toBe(want.tag.toString("hex"));
        expect(hex(output.subarray(i * REC + ctOff, (i + 1) * REC))).toBe(want.ct.toString("hex"));
      }
    }
  });

  test("bad tag, truncated ciphertext, wrong key and wrong IV are NEURON_EAUTH", () => {
    const key = randomBytes(16), iv = randomBytes(12);
    using g = crypto.aesGcm(key);
    const rec = g.seal(randomBytes(100), iv);
    const bad = new Uint8Array(rec);
    bad[0]! ^= 0x80;
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return (e as { errorCode?: string }).errorCode;
      }
      return "no error";
    };
    expect(code(() => g.open(bad, iv))).toBe("NEURON_EAUTH");
    expect(code(() => g.open(rec.subarray(0, rec.length - 1), iv))).toBe("NEURON_EAUTH");
    expect(code(() => g.open(rec.subarray(0, 10), iv))).toBe("NEURON_EFORMAT");
    expect(code(() => g.open(rec, randomBytes(12)))).toBe("NEURON_EAUTH");
    using other = crypto.aesGcm(randomBytes(16));
    expect(code(() => other.open(rec, iv))).toBe("NEURON_EAUTH");
  });

  test("invalid keys, layouts and buffer sizes are refused before anything is written", () => {
    expect(() => crypto.aesGcm(new Uint8Array(15))).toThrow(CryptoArgumentError);
    expect(() => crypto.aesGcm(new Uint8Array(32))).toThrow(CryptoArgumentError);
    using g = crypto.aesGcm(randomBytes(16));
    const ok = new GcmLayout({ inStride: 100, outStride: 132, ctOffset: 32, tagOffset: 16, ivOffset: 0, ivMode: GcmIvMode.Counter64 });
    const batch = { count: 4, input: new Uint8Array(400), lens: new Uint32Array(4).fill(100), output: new Uint8Array(528), iv: new Uint8Array(12), status: new Int32Array(4) };
    expect(() => g.sealBatch(ok, { ...batch, output: new Uint8Array(527) })).toThrow(CryptoArgumentError);
    expect(() => g.sealBatch(ok, { ...batch, input: new Uint8Array(399) })).toThrow(CryptoArgumentError);
    expect(() => g.sealBatch(ok, { ...batch, lens: new Uint32Array(3) })).toThrow(CryptoArgumentError);
    expect(() => g.sealBatch(ok, { ...batch, status: new Int32Array(3) })).toThrow(CryptoArgumentError);
    expect(() => g.sealBatch(ok, { ...batch, iv: new Uint8Array(11) })).toThrow(CryptoArgumentError);
    expect(() => g.sealBatch(ok, { ...batch, count: 70000 })).toThrow(CryptoArgumentError);
    expect(() => g.sealBatch(ok, { ...batch, counter: -1 })).toThrow(CryptoArgumentError);
    expect(() => g.sealBatch(ok, { ...batch, counter: 2n ** 64n })).toThrow(CryptoArgumentError);
    expect(() => new GcmLayout({ inStride: -1, outStride: 0, ctOffset: 0, tagOffset: 0, ivMode: GcmIvMode.Explicit })).toThrow(CryptoArgumentError);
    expect(() => new GcmLayout({ inStride: 2 ** 25, outStride: 0, ctOffset: 0, tagOffset: 0, ivMode: GcmIvMode.Explicit })).toThrow(CryptoArgumentError);
    // layouts only the native side can judge: tag overlapping the ciphertext, IV over the tag
    const out = new Uint8Array(528);
    for (const spec of [
      { inStride: 100, outStride: 132, ctOffset: 16, tagOffset: 8, ivMode: GcmIvMode.Counter64 },
      { inStride: 100, outStride: 132, ctOffset: 32, tagOffset: 16, ivOffset: 8, ivMode: GcmIvMode.Counter64 },
      { inStride: 100, outStride: 132, ctOffset: 32, tagOffset: 16, ivOffset: 0, ivMode: GcmIvMode.Explicit, ivStride: 4 },
    ]) {
      const e = (() => {
        try {
          g.sealBatch(new GcmLayout(spec), { ...batch, output: out, iv: new Uint8Array(64) });
        } catch (err) {
          return err;
        }
      })();
      expect(e).toBeInstanceOf(NativeCallError);
      expect((e as NativeCallError).errorCode).toBe("NEURON_EINVAL");
      expect(out.every((b) => b === 0)).toBe(true);
    }
    // InRecord IVs cannot seal
    expect(() => g.sealBatch(new GcmLayout({ inStride: 100, outStride: 132, ctOffset: 32, tagOffset: 16, ivOffset: 0, ivMode: GcmIvMode.InRecord }), batch)).toThrow(CryptoArgumentError);
    // a packet longer than its stride fails alone with NEURON_ERANGE
    const lens = Uint32Array.of(100, 101, 0xffffffff, 5);
    expect(g.sealBatch(ok, { ...batch, lens })).toBe(2);
    expect([...batch.status]).toEqual([0, -5, -5, 0]);
  });

  test("use after close is a clear error; close is idempotent", () => {
    const g = crypto.aesGcm(randomBytes(16));
    g.close();
    g.close();
    expect(g.closed).toBe(true);
    expect(() => g.seal(new Uint8Array(1), new Uint8Array(12))).toThrow(CryptoClosedError);
  });
});

describe("AES-128-CBC (PKCS#7)", () => {
  const key = unhex("2b7e151628aed2a6abf7158809cf4f3c");
  const iv = unhex("000102030405060708090a0b0c0d0e0f");
  const pt = unhex(
    "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710",
  );

  test("NIST SP 800-38A F.2.1 (plus one padding block) and round trip", () => {
    using c = crypto.aesCbc(key);
    const ct = c.encrypt(iv, pt);
    expect(ct.length).toBe(80);
    expect(hex(ct.subarray(0, 64))).toBe(
      "7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b273bed6b8e3c1743b7116e69e222295163ff1caa1681fac09120eca307586e1a7",
    );
    expect(hex(c.decrypt(iv, ct))).toBe(hex(pt));
  });

  test("agrees with node:crypto for audio packets with BE32(rikeyid + seq) IVs", () => {
    const k = randomBytes(16);
    using c = crypto.aesCbc(k);
    expect(hex(audioIv(0x7fffffff, 2))).toBe("80000001" + "00".repeat(12));
    expect(hex(audioIv(-1, 1))).toBe("00000000" + "00".repeat(12));
    for (const [len, seq] of [[0, 1], [1, 2], [15, 3], [16, 4], [240, 5], [1000, 65535]] as const) {
      const iv2 = audioIv(123456, seq);
      const data = randomBytes(len);
      const ours = c.encrypt(iv2, data);
      const e = createCipheriv("aes-128-cbc", k, iv2);
      expect(hex(ours)).toBe(Buffer.concat([e.update(data), e.final()]).toString("hex"));
      const d = createDecipheriv("aes-128-cbc", k, iv2);
      expect(Buffer.concat([d.update(ours), d.final()]).equals(data)).toBe(true);
      expect(hex(c.decrypt(iv2, ours))).toBe(hex(data));
    }
  });

  test("bad padding, partial blocks and short buffers are clear errors", () => {
    using c = crypto.aesCbc(key);
    const e = createCipheriv("aes-128-cbc", key, iv).setAutoPadding(false);
    const badPad = Buffer.concat([e.update(Buffer.alloc(16)), e.final()]); // plaintext ends in 0x00
    expect(() => c.decrypt(iv, badPad)).toThrow(/NEURON_EFORMAT/);
    expect(() => c.decrypt(iv, new Uint8Array(15))).toThrow(/NEURON_EFORMAT/);
    expect(() => c.decrypt(iv, new Uint8Array(0))).toThrow(/NEURON_EFORMAT/);
    expect(() => c.encryptInto(iv, new Uint8Array(16), new Uint8Array(16))).toThrow(/NEURON_ERANGE/);
    expect(() => c.encrypt(new Uint8Array(8), pt)).toThrow(CryptoArgumentError);
    expect(() => c.encrypt(iv, new Uint8Array((1 << 20) + 1))).toThrow(CryptoArgumentError);
    expect(() => crypto.aesCbc(new Uint8Array(24))).toThrow(CryptoArgumentError);
  });
});

describe("AES-128-ECB (no padding) and the pairing vectors", () => {
  test("NIST SP 800-38A F.1.1 and the openssl CLI agree", () => {
    const key = unhex("2b7e151628aed2a6abf7158809cf4f3c");
    const pt = unhex("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51");
    const ct = crypto.aesEcbEncrypt(key, pt);
    expect(hex(ct)).toBe("3ad77bb40d7a3660a89ecaf32466ef97f5d3d58503b9699de785895a96fdbaaf");
    expect(hex(crypto.aesEcbDecrypt(key, ct))).toBe(hex(pt));
    const w = workDir();
    try {
      const k2 = randomBytes(16), data = randomBytes(64);
      const cli = openssl(w.path, ["enc", "-aes-128-ecb", "-nopad", "-K", hex(k2)], data).stdout;
      expect(hex(crypto.aesEcbEncrypt(k2, data))).toBe(cli.toString("hex"));
      const dec = openssl(w.path, ["enc", "-d", "-aes-128-ecb", "-nopad", "-K", hex(k2)], crypto.aesEcbEncrypt(k2, data)).stdout;
      expect(dec.equals(data)).toBe(true);
    } finally {
      w.cleanup();
    }
  });

  test("salt 000102…0f + PIN 1234 → key bad0b4f7…; ECB(key, 101112…1f) = 5febcdc9…", () => {
    const salt = new Uint8Array(16).map((_, i) => i);
    const salted = new Uint8Array([...salt, ...new TextEncoder().encode("1234")]);
    const key = crypto.sha256(salted).subarray(0, 16);
    expect(hex(key)).toBe("bad0b4f7cae08eb7c1b5acc763a8ed25");
    expect(hex(createHash("sha256").update(salted).digest().subarray(0, 16))).toBe(hex(key));
    const msg = new Uint8Array(16).map((_, i) => 0x10 + i);
    expect(hex(crypto.aesEcbEncrypt(key, msg))).toBe("5febcdc985b2baddd65925da162380eb");
    expect(hex(crypto.aesEcbDecrypt(key, unhex("5febcdc985b2baddd65925da162380eb")))).toBe(hex(msg));
  });

  test("non-block lengths and wrong key sizes are refused", () => {
    expect(() => crypto.aesEcbEncrypt(new Uint8Array(16), new Uint8Array(17))).toThrow(CryptoArgumentError);
    expect(() => crypto.aesEcbEncrypt(new Uint8Array(8), new Uint8Array(16))).toThrow(CryptoArgumentError);
    expect(() => crypto.aesEcbDecrypt(new Uint8Array(16), new Uint8Array((1 << 20) + 16))).toThrow(CryptoArgumentError);
    expect(crypto.aesEcbEncrypt(new Uint8Array(16), new Uint8Array(0)).length).toBe(0);
  });
});

describe("object and library lifetimes", () => {
  test("closing the loader keeps the library while objects live, then refuses new work", () => {
    const c2 = NativeCrypto.load();
    const g = c2.aesGcm(new Uint8Array(16));
    const key = c2.generateRsaKey();
    c2.close();
    c2.close();
    expect(() => c2.aesGcm(new Uint8Array(16))).toThrow(CryptoClosedError);
    expect(() => c2.sha256(new Uint8Array(1))).toThrow(CryptoClosedError);
    expect(hex(g.seal(new Uint8Array(16), new Uint8Array(12)))).toBe("ab6e47d42cec13bdf53a67b21257bddf0388dace60b6a392f328c2b971b2fe78");
    expect(key.sign(new Uint8Array(3)).length).toBe(256);
    g.close();
    key.close(); // the last object: the library is unloaded now
  });

  test("objects that are never closed are freed by the garbage collector without harm", () => {
    for (let i = 0; i < 2000; i++) crypto.aesGcm(randomBytes(16)).seal(new Uint8Array(8), new Uint8Array(12));
    Bun.gc(true);
    using g = crypto.aesGcm(new Uint8Array(16));
    expect(g.seal(new Uint8Array(0), new Uint8Array(12)).length).toBe(16);
  });
});
