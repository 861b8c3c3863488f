import { afterAll, describe, expect, test } from "bun:test";
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { CryptoArgumentError, gameStreamIv, ivTemplate, NativeCrypto, openLayout, sealLayout } from "../../ffi/crypto.ts";
import { hex } from "./helpers.ts";

const crypto = NativeCrypto.load();
afterAll(() => crypto.close());

describe("GameStream IV layouts", () => {
  test("IVs are byte for byte what the spec describes", () => {
    expect(hex(gameStreamIv("video", "host", 0x0102030405060708n))).toBe("0807060504030201" + "000000" + "56");
    expect(hex(gameStreamIv("control", "host", 0x01020304))).toBe("04030201" + "00".repeat(6) + "4843");
    expect(hex(gameStreamIv("control", "client", 1))).toBe("01000000" + "00".repeat(6) + "4343");
    expect(hex(gameStreamIv("rtsp", "host", 1))).toBe("01000000" + "00".repeat(6) + "4852");
    expect(hex(gameStreamIv("rtsp", "client", 2))).toBe("02000000" + "00".repeat(6) + "4352");
    expect(hex(ivTemplate("control", "host"))).toBe("00".repeat(10) + "4843");
    expect(() => gameStreamIv("control", "host", 2 ** 32)).toThrow(CryptoArgumentError);
    expect(() => gameStreamIv("video", "host", -1)).toThrow(CryptoArgumentError);
  });

  test("a host control batch opens with per-message IVs as a client (node:crypto) would", () => {
    const key = randomBytes(16);
    using g = crypto.aesGcm(key);
    const N = 4, MAX = 64;
    const seal = sealLayout("control", MAX);
    const input = randomBytes(N * MAX);
    const output = new Uint8Array(N * (24 + MAX));
    const status = new Int32Array(N);
    expect(g.sealBatch(seal, { count: N, input, lens: new Uint32Array(N).fill(MAX), output, iv: ivTemplate("control", "host"), counter: 10, status })).toBe(N);
    for (let i = 0; i < N; i++) {
      const rec = output.subarray(i * 88, (i + 1) * 88);
      const d = createDecipheriv("aes-128-gcm", key, gameStreamIv("control", "host", 10 + i));
      d.setAuthTag(rec.subarray(8, 24));
      expect(Buffer.concat([d.update(rec.subarray(24)), d.final()]).equals(input.subarray(i * MAX, (i + 1) * MAX))).toBe(true);
    }
    // client → host messages: sealed by node with 'C','C' IVs, opened here in one batch
    const ivs = new Uint8Array(N * 12);
    const recs = new Uint8Array(N * 88);
    for (let i = 0; i < N; i++) {
      const iv = gameStreamIv("control", "client", 100 + 3 * i); // sequence numbers need not be contiguous
      ivs.set(iv, i * 12);
      const c = createCipheriv("aes-128-gcm", key, iv);
      const ct = Buffer.concat([c.update(input.subarray(i * MAX, (i + 1) * MAX)), c.final()]);
      recs.set(c.getAuthTag(), i * 88 + 8);
      recs.set(ct, i * 88 + 24);
    }
    const plain = new Uint8Array(N * MAX);
    expect(g.openBatch(openLayout("control", MAX), { count: N, input: recs, lens: new Uint32Array(N).fill(88), output: plain, iv: ivs, status })).toBe(N);
    expect(hex(plain)).toBe(hex(input));
    // a message with the host's own direction byte does not authenticate (no reflection)
    ivs.set(gameStreamIv("control", "host", 100), 0);
    expect(g.openBatch(openLayout("control", MAX), { count: N, input: recs, lens: new Uint32Array(N).fill(88), output: plain, iv: ivs, status })).toBe(N - 1);
    expect(status[0]).toBe(-4);
  });

  test("video records carry their IV and open from it", () => {
    using g = crypto.aesGcm(randomBytes(16));
    const N = 3, MAX = 1040;
    const input = randomBytes(N * MAX);
    const output = new Uint8Array(N * (32 + MAX));
    const status = new Int32Array(N);
    g.sealBatch(sealLayout("video", MAX), { count: N, input, lens: new Uint32Array(N).fill(MAX), output, iv: ivTemplate("video", "host"), counter: 7n, status });
    expect(hex(output.subarray(32 + MAX, 32 + MAX + 12))).toBe(hex(gameStreamIv("video", "host", 8)));
    const plain = new Uint8Array(N * MAX);
    expect(g.openBatch(openLayout("video", MAX), { count: N, input: output, lens: new Uint32Array(N).fill(32 + MAX), output: plain, status })).toBe(N);
    expect(hex(plain)).toBe(hex(input));
  });
});
