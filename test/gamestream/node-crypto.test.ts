/**
 * The host's node:crypto GameStreamCrypto against libneuron's (the reference): the same bytes
 * out, certificates each side accepts from the other, the same errors on bad input.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NativeCrypto } from "../../ffi/crypto.ts";
import { gameStreamCrypto } from "../../src/gamestream/native-crypto.ts";
import { nodeGameStreamCrypto } from "../../src/gamestream/node-crypto.ts";

const lib = NativeCrypto.load();
const native = gameStreamCrypto(lib);
const node = nodeGameStreamCrypto((key) => native.aesGcm(key));
afterAll(() => lib.close());

const rnd = (n: number) => native.randomBytes(n);
const errorOf = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    return `${(err as Error).name}: ${(err as Error).message}`;
  }
  return "no error";
};

/** A client certificate as `openssl req -x509` makes it (serial 0 given), PEM. */
function opensslCert(serial: number): string {
  const dir = mkdtempSync(join(tmpdir(), "neuron-nc-"));
  try {
    const r = Bun.spawnSync(
      ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", join(dir, "k"), "-out", join(dir, "c"), "-days", "30", "-subj", "/CN=NVIDIA GameStream Client", "-set_serial", String(serial)],
      { stdout: "ignore", stderr: "pipe", timeout: 30_000 },
    );
    if (r.exitCode !== 0) throw new Error(`openssl req failed: ${r.stderr.toString()}`);
    return readFileSync(join(dir, "c"), "utf8");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("node:crypto GameStreamCrypto", () => {
  test("SHA-256 and AES-128-ECB give libneuron's bytes", () => {
    for (const n of [0, 1, 55, 4096]) {
      const d = rnd(n);
      expect(node.sha256(d)).toEqual(native.sha256(d));
    }
    const key = rnd(16);
    for (const n of [0, 16, 64, 1024]) {
      const d = rnd(n);
      const enc = node.aesEcbEncrypt(key, d);
      expect(enc).toEqual(native.aesEcbEncrypt(key, d));
      expect(node.aesEcbDecrypt(key, enc)).toEqual(d);
    }
  });

  test("an identity it makes: libneuron parses the certificate, which pins the key; signatures cross-verify", () => {
    const id = node.createIdentity("NeuronOS GameStream Host", 7300);
    const n = native.parseCert(id.certPem);
    const o = node.parseCert(id.certPem);
    expect(o).toEqual(n);
    expect(o.pem).toBe(id.certPem);
    const c = lib.parseCertificate(id.certPem);
    const k = lib.rsaKeyFromPrivate(id.keyPem);
    try {
      expect(c.matchesKey(k)).toBe(true);
      expect(c.commonName).toBe("NeuronOS GameStream Host");
      const { notBefore, notAfter } = c.validity;
      const days = (notAfter.getTime() - notBefore.getTime()) / 86_400_000;
      expect(days).toBe(7301);
      expect(Math.abs(notBefore.getTime() - (Date.now() - 86_400_000))).toBeLessThan(120_000);
      expect(c.serial).toBeGreaterThan(0n);
    } finally {
      c.close();
      k.close();
    }
    const x = new X509Certificate(id.certPem);
    expect(x.verify(x.publicKey)).toBe(true);
    const data = rnd(16);
    expect(native.verifyWithCert(id.certPem, data, node.sign(id.keyPem, data))).toBe(true);
    expect(node.verifyWithCert(id.certPem, data, native.sign(id.keyPem, data))).toBe(true);
    expect(node.sign(id.keyPem, data)).toEqual(native.sign(id.keyPem, data)); // PKCS#1 v1.5 is deterministic
    const bad = node.sign(id.keyPem, data);
    bad[5]! ^= 1;
    expect(node.verifyWithCert(id.certPem, data, bad)).toBe(false);
    expect(node.verifyWithCert(id.certPem, data, bad.subarray(0, 100))).toBe(false);
  });

  test("with the key given (openssl genrsa), and a validity past 2049", () => {
    const r = Bun.spawnSync(["openssl", "genrsa", "2048"], { stdout: "pipe", stderr: "ignore", timeout: 30_000 });
    const keyPem = r.stdout.toString();
    const id = node.createIdentity("host", 365 * 40, keyPem);
    expect(native.parseCert(id.certPem)).toEqual(node.parseCert(id.certPem));
    const c = lib.parseCertificate(id.certPem);
    try {
      expect(c.validity.notAfter.getUTCFullYear()).toBeGreaterThan(2049);
    } finally {
      c.close();
    }
    const data = rnd(32);
    expect(native.verifyWithCert(id.certPem, data, native.sign(keyPem, data))).toBe(true);
    expect(node.sign(id.keyPem, data)).toEqual(native.sign(keyPem, data));
  });

  test("client certificates (serial 0 and not) parse as libneuron parses them", () => {
    for (const serial of [0, 12345]) {
      const pem = opensslCert(serial);
      expect(node.parseCert(pem)).toEqual(native.parseCert(pem));
      // CRLF and surrounding text, as some clients send
      const loose = `\n${pem.replaceAll("\n", "\r\n")}`;
      expect(node.parseCert(loose)).toEqual(native.parseCert(loose));
    }
  });

  test("bad input: libneuron's errors", () => {
    const pem = native.createIdentity("x", 1).certPem;
    for (const bad of ["", "garbage", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", pem.slice(0, 200)])
      expect(errorOf(() => node.parseCert(bad))).toBe(errorOf(() => native.parseCert(bad)));
    expect(errorOf(() => node.verifyWithCert("garbage", rnd(4), rnd(256)))).toBe(errorOf(() => native.verifyWithCert("garbage", rnd(4), rnd(256))));
    expect(errorOf(() => node.sign("nope", rnd(3)))).toBe(errorOf(() => native.sign("nope", rnd(3))));
    expect(errorOf(() => node.aesEcbEncrypt(rnd(16), rnd(15)))).toBe(errorOf(() => native.aesEcbEncrypt(rnd(16), rnd(15))));
    expect(errorOf(() => node.aesEcbDecrypt(rnd(15), rnd(16)))).toBe(errorOf(() => native.aesEcbDecrypt(rnd(15), rnd(16))));
  });
});
