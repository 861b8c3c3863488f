import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash, createPublicKey, createSign, createVerify, generateKeyPairSync, randomBytes, X509Certificate } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { CryptoArgumentError, CryptoClosedError, NativeCrypto, type RsaKey } from "../../ffi/crypto.ts";
import { NativeCallError } from "../../ffi/native.ts";
import { hex, openssl, unhex, workDir } from "./helpers.ts";

const crypto = NativeCrypto.load();
const w = workDir();
let key: RsaKey;

beforeAll(() => {
  key = crypto.generateRsaKey();
});
afterAll(() => {
  key.close();
  w.cleanup();
  crypto.close();
});

function errorCode(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return (e as { errorCode?: string }).errorCode ?? String(e);
  }
  return "no error";
}

/** The "Signature Value" hex block at the end of `openssl x509 -text`. */
function cliSignature(text: string): string {
  const tail = text.slice(text.lastIndexOf("Signature Value:") + "Signature Value:".length);
  return tail.replace(/[\s:]/g, "").toLowerCase();
}

describe("RSA keys", () => {
  test("a generated 2048-bit key signs what node:crypto and openssl verify, and nothing else", () => {
    expect(key.bits).toBe(2048);
    const data = randomBytes(300);
    const sig = key.sign(data);
    expect(sig.length).toBe(256);
    expect(key.verify(data, sig)).toBe(true);
    const pub = key.publicKeyPem();
    expect(pub).toStartWith("-----BEGIN PUBLIC KEY-----");
    expect(createVerify("sha256").update(data).verify(pub, sig)).toBe(true);
    writeFileSync(w.file("pub.pem"), pub);
    writeFileSync(w.file("data.bin"), data);
    writeFileSync(w.file("sig.bin"), sig);
    expect(openssl(w.path, ["dgst", "-sha256", "-verify", "pub.pem", "-signature", "sig.bin", "data.bin"]).stdout.toString()).toContain("Verified OK");
    const bad = new Uint8Array(sig);
    bad[10]! ^= 1;
    expect(key.verify(data, bad)).toBe(false);
    expect(key.verify(data.subarray(1), sig)).toBe(false);
    expect(key.verify(data, sig.subarray(0, 255))).toBe(false);
    expect(key.verify(data, new Uint8Array(0))).toBe(false);
  });

  test("keys from node:crypto (PKCS#1 PEM, PKCS#8 DER) load and sign byte-identically; PEM export round-trips", () => {
    const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const pkcs1 = privateKey.export({ type: "pkcs1", format: "pem" }) as string;
    const der = privateKey.export({ type: "pkcs8", format: "der" });
    using k1 = crypto.rsaKeyFromPrivate(pkcs1);
    using k2 = crypto.rsaKeyFromPrivate(new Uint8Array(der));
    const data = new TextEncoder().encode("pairing secret");
    const theirs = createSign("sha256").update(data).sign(privateKey);
    expect(hex(k1.sign(data))).toBe(theirs.toString("hex"));
    expect(hex(k2.sign(data))).toBe(theirs.toString("hex"));
    expect(k1.verify(data, theirs)).toBe(true);
    const pem = k1.privateKeyPem();
    expect(pem).toStartWith("-----BEGIN PRIVATE KEY-----");
    writeFileSync(w.file("k1.pem"), pem, { mode: 0o600 });
    expect(openssl(w.path, ["rsa", "-in", "k1.pem", "-check", "-noout"]).stdout.toString()).toContain("RSA key ok");
    using k3 = crypto.rsaKeyFromPrivate(pem);
    expect(hex(k3.sign(data))).toBe(theirs.toString("hex"));
  });

  test("encrypted, non-RSA, too small, public-only and garbage keys are refused without prompting", () => {
    openssl(w.path, ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-aes-128-cbc", "-pass", "pass:secret", "-out", "enc.pem"]);
    expect(errorCode(() => crypto.rsaKeyFromPrivate(readFileSync(w.file("enc.pem"))))).toBe("NEURON_EFORMAT");
    openssl(w.path, ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "ec.pem"]);
    expect(errorCode(() => crypto.rsaKeyFromPrivate(readFileSync(w.file("ec.pem"))))).toBe("NEURON_EUNSUPPORTED");
    openssl(w.path, ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024", "-out", "small.pem"]);
    expect(errorCode(() => crypto.rsaKeyFromPrivate(readFileSync(w.file("small.pem"))))).toBe("NEURON_EUNSUPPORTED");
    expect(errorCode(() => crypto.rsaKeyFromPrivate(key.publicKeyPem()))).toBe("NEURON_EFORMAT");
    expect(errorCode(() => crypto.rsaKeyFromPrivate("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))).toBe("NEURON_EFORMAT");
    expect(errorCode(() => crypto.rsaKeyFromPrivate(randomBytes(600)))).toBe("NEURON_EFORMAT");
    expect(() => crypto.rsaKeyFromPrivate("")).toThrow(CryptoArgumentError);
    expect(() => crypto.rsaKeyFromPrivate(new Uint8Array((1 << 20) + 1))).toThrow(CryptoArgumentError);
    expect(errorCode(() => crypto.generateRsaKey(1024 as 2048))).toBe("NEURON_EINVAL");
  });
});

const notBefore = new Date("2026-01-01T00:00:00Z");
const notAfter = new Date("2046-01-01T00:00:00Z");

describe("X.509 certificates", () => {
  test("a created certificate reads back the same through openssl x509 and node:crypto", () => {
    using cert = crypto.createCertificate(key, { commonName: "NeuronOS host", serial: 0, notBefore, notAfter });
    const pem = cert.toPem();
    writeFileSync(w.file("host.pem"), pem);
    const text = openssl(w.path, ["x509", "-in", "host.pem", "-noout", "-text"]).stdout.toString();
    expect(text).toContain("Version: 3 (0x2)");
    expect(text).toMatch(/Serial Number: 0 \(0x0\)/);
    expect(text).toContain("Subject: CN = NeuronOS host");
    expect(text).toContain("Issuer: CN = NeuronOS host");
    expect(text).toContain("Not Before: Jan  1 00:00:00 2026 GMT");
    expect(text).toContain("Not After : Jan  1 00:00:00 2046 GMT");
    expect(text).toContain("Signature Algorithm: sha256WithRSAEncryption");
    expect(text).toContain("Public-Key: (2048 bit)");
    expect(text).not.toContain("X509v3 extensions");
    expect(hex(cert.signature())).toBe(cliSignature(text));
    const fp = openssl(w.path, ["x509", "-in", "host.pem", "-noout", "-fingerprint", "-sha256"]).stdout.toString();
    expect(hex(cert.fingerprint())).toBe(fp.split("=")[1]!.replace(/[:\s]/g, "").toLowerCase());
    const x = new X509Certificate(pem);
    expect(x.verify(createPublicKey(key.publicKeyPem()))).toBe(true);
    expect(x.fingerprint256.replace(/:/g, "").toLowerCase()).toBe(hex(cert.fingerprint()));
    expect(Buffer.from(cert.toDer()).equals(x.raw)).toBe(true);
    // the DER goes through openssl too
    writeFileSync(w.file("host.der"), cert.toDer());
    expect(openssl(w.path, ["x509", "-inform", "DER", "-in", "host.der", "-noout", "-subject"]).stdout.toString()).toContain("CN = NeuronOS host");
    expect(cert.matchesKey(key)).toBe(true);
    expect(cert.serial).toBe(0n);
    expect(cert.commonName).toBe("NeuronOS host");
    expect(cert.validity).toEqual({ notBefore, notAfter });
  });

  test("serials up to 2^64-1 and UTF-8 common names", () => {
    using cert = crypto.createCertificate(key, { commonName: "Gäste-PC ✓", serial: 2n ** 64n - 1n, notBefore, notAfter });
    writeFileSync(w.file("big.pem"), cert.toPem());
    const serial = openssl(w.path, ["x509", "-in", "big.pem", "-noout", "-serial"]).stdout.toString().trim();
    expect(serial).toBe("serial=FFFFFFFFFFFFFFFF");
    expect(cert.serial).toBe(2n ** 64n - 1n);
    expect(cert.commonName).toBe("Gäste-PC ✓");
    using back = crypto.parseCertificate(cert.toDer());
    expect(back.commonName).toBe("Gäste-PC ✓");
  });

  test("a serial-0 certificate without extensions made by the openssl CLI parses, as PEM and as DER", () => {
    openssl(w.path, ["req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", "client.key", "-subj", "/CN=NVIDIA GameStream Client", "-out", "client.csr"]);
    openssl(w.path, ["x509", "-req", "-in", "client.csr", "-signkey", "client.key", "-set_serial", "0", "-days", "7300", "-sha256", "-out", "client.pem"]);
    openssl(w.path, ["x509", "-in", "client.pem", "-outform", "DER", "-out", "client.der"]);
    const text = openssl(w.path, ["x509", "-in", "client.pem", "-noout", "-text"]).stdout.toString();
    expect(text).toMatch(/Serial Number: 0 \(0x0\)/);
    expect(text).not.toContain("X509v3 extensions");
    const pem = readFileSync(w.file("client.pem"), "utf8");
    using a = crypto.parseCertificate(pem);
    using b = crypto.parseCertificate(new Uint8Array(readFileSync(w.file("client.der"))));
    for (const c of [a, b]) {
      expect(c.serial).toBe(0n);
      expect(c.commonName).toBe("NVIDIA GameStream Client");
      expect(hex(c.signature())).toBe(cliSignature(text));
      expect(Buffer.from(c.toDer()).equals(readFileSync(w.file("client.der")))).toBe(true);
    }
    expect(a.toPem()).toBe(pem);
    // what the client signs with its key (openssl dgst) verifies against its certificate
    const secret = randomBytes(16);
    writeFileSync(w.file("secret.bin"), secret);
    const sig = openssl(w.path, ["dgst", "-sha256", "-sign", "client.key", "secret.bin"]).stdout;
    expect(a.verify(secret, new Uint8Array(sig))).toBe(true);
    expect(a.verify(randomBytes(16), new Uint8Array(sig))).toBe(false);
    expect(a.matchesKey(key)).toBe(false);
    using ck = crypto.rsaKeyFromPrivate(readFileSync(w.file("client.key")));
    expect(a.matchesKey(ck)).toBe(true);
  });

  test("the first certificate of a PEM bundle with other blocks before it is taken", () => {
    using cert = crypto.createCertificate(key, { commonName: "bundle", serial: 7, notBefore, notAfter });
    const bundle = `junk\n${key.publicKeyPem()}${cert.toPem()}`;
    using parsed = crypto.parseCertificate(bundle);
    expect(parsed.commonName).toBe("bundle");
  });

  test("an EC certificate parses but its key is not used for RSA verification", () => {
    openssl(w.path, ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ec.key", "-subj", "/CN=ec", "-days", "1", "-out", "ec.pem"]);
    using c = crypto.parseCertificate(readFileSync(w.file("ec.pem"), "utf8"));
    expect(c.commonName).toBe("ec");
    expect(errorCode(() => c.verify(randomBytes(4), randomBytes(64)))).toBe("NEURON_EUNSUPPORTED");
  });

  test("garbage, truncated, padded and oversized inputs are clear errors", () => {
    using cert = crypto.createCertificate(key, { commonName: "x", serial: 1, notBefore, notAfter });
    const der = cert.toDer();
    expect(errorCode(() => crypto.parseCertificate(der.subarray(0, der.length - 1)))).toBe("NEURON_EFORMAT");
    expect(errorCode(() => crypto.parseCertificate(new Uint8Array([...der, 0])))).toBe("NEURON_EFORMAT");
    expect(errorCode(() => crypto.parseCertificate(randomBytes(1000)))).toBe("NEURON_EFORMAT");
    expect(errorCode(() => crypto.parseCertificate(unhex("3082ffff")))).toBe("NEURON_EFORMAT");
    expect(errorCode(() => crypto.parseCertificate("-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n"))).toBe("NEURON_EFORMAT");
    expect(errorCode(() => crypto.parseCertificate(cert.toPem().slice(0, 200)))).toBe("NEURON_EFORMAT");
    expect(errorCode(() => crypto.parseCertificate(key.publicKeyPem()))).toBe("NEURON_EFORMAT");
    expect(() => crypto.parseCertificate(new Uint8Array(0))).toThrow(CryptoArgumentError);
    expect(() => crypto.parseCertificate(new Uint8Array((1 << 20) + 1))).toThrow(CryptoArgumentError);
    // byte-level corruption anywhere: parsed or refused, never a crash
    for (let i = 0; i < 300; i++) {
      const bad = new Uint8Array(der);
      bad[Math.floor(Math.random() * bad.length)] = Math.floor(Math.random() * 256);
      try {
        crypto.parseCertificate(bad).close();
      } catch (e) {
        expect((e as NativeCallError).errorCode).toBe("NEURON_EFORMAT");
      }
    }
  });

  test("invalid certificate parameters are refused", () => {
    const base = { commonName: "x", serial: 1, notBefore, notAfter };
    expect(() => crypto.createCertificate(key, { ...base, commonName: "" })).toThrow(CryptoArgumentError);
    expect(() => crypto.createCertificate(key, { ...base, commonName: "a".repeat(65) })).toThrow(CryptoArgumentError);
    expect(() => crypto.createCertificate(key, { ...base, commonName: "a\0b" })).toThrow(CryptoArgumentError);
    expect(() => crypto.createCertificate(key, { ...base, serial: -1 })).toThrow(CryptoArgumentError);
    expect(() => crypto.createCertificate(key, { ...base, serial: 2n ** 64n })).toThrow(CryptoArgumentError);
    expect(() => crypto.createCertificate(key, { ...base, notBefore: notAfter, notAfter: notBefore })).toThrow(CryptoArgumentError);
    expect(() => crypto.createCertificate(key, { ...base, notAfter: new Date("invalid") })).toThrow(CryptoArgumentError);
    expect(errorCode(() => crypto.createCertificate(key, { ...base, notAfter: new Date("+010000-01-01T00:00:00Z") }))).toBe("NEURON_EINVAL");
  });

  test("objects refuse use after close", () => {
    const k = crypto.generateRsaKey();
    const c = crypto.createCertificate(k, { commonName: "x", serial: 1, notBefore, notAfter });
    c.close();
    k.close();
    expect(() => c.toDer()).toThrow(CryptoClosedError);
    expect(() => k.sign(new Uint8Array(1))).toThrow(CryptoClosedError);
    expect(() => crypto.createCertificate(k, { commonName: "x", serial: 1, notBefore, notAfter })).toThrow(CryptoClosedError);
  });
});

describe("GameStream pairing, host side, with a client built on node:crypto", () => {
  test("the challenge hashes over certificate signatures and the pairing secret verify on both sides", () => {
    // client identity made by openssl (serial 0, no extensions), as moonlight clients make theirs
    openssl(w.path, ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "pc.key", "-subj", "/CN=NVIDIA GameStream Client", "-days", "7300", "-set_serial", "0", "-out", "pc.pem"]);
    const clientKeyPem = readFileSync(w.file("pc.key"), "utf8");
    using clientCert = crypto.parseCertificate(readFileSync(w.file("pc.pem"), "utf8"));
    using hostCert = crypto.createCertificate(key, { commonName: "NeuronOS", serial: 0, notBefore, notAfter });
    const salt = randomBytes(16);
    const aesKey = crypto.sha256(new Uint8Array([...salt, ...new TextEncoder().encode("4821")])).subarray(0, 16);
    // step 2: client challenge → host reply
    const clientChallenge = randomBytes(16);
    const c = crypto.aesEcbDecrypt(aesKey, crypto.aesEcbEncrypt(aesKey, clientChallenge));
    const serverSecret = randomBytes(16), serverChallenge = randomBytes(16);
    const hostHash = crypto.sha256(new Uint8Array([...c, ...hostCert.signature(), ...serverSecret]));
    const reply = crypto.aesEcbEncrypt(aesKey, new Uint8Array([...hostHash, ...serverChallenge]));
    // the client checks the host's hash with the host certificate's signature as openssl reads it
    const seen = crypto.aesEcbDecrypt(aesKey, reply);
    writeFileSync(w.file("hostpair.pem"), hostCert.toPem());
    const hostSigCli = unhex(cliSignature(openssl(w.path, ["x509", "-in", "hostpair.pem", "-noout", "-text"]).stdout.toString()));
    const expected = createHash("sha256").update(clientChallenge).update(hostSigCli).update(serverSecret).digest();
    expect(hex(seen.subarray(0, 32))).toBe(expected.toString("hex"));
    const hostX509 = new X509Certificate(hostCert.toPem());
    // step 3/4: pairing secret signed by the host; client secret signed by the client
    const pairingSig = key.sign(serverSecret);
    expect(createVerify("sha256").update(serverSecret).verify(hostX509.publicKey, Buffer.from(pairingSig))).toBe(true);
    const clientSecret = randomBytes(16);
    const clientHash = crypto.sha256(new Uint8Array([...serverChallenge, ...clientCert.signature(), ...clientSecret]));
    const clientSig = createSign("sha256").update(clientSecret).sign(clientKeyPem);
    expect(clientCert.verify(clientSecret, new Uint8Array(clientSig))).toBe(true);
    const pcSigCli = unhex(cliSignature(openssl(w.path, ["x509", "-in", "pc.pem", "-noout", "-text"]).stdout.toString()));
    expect(hex(clientHash)).toBe(createHash("sha256").update(serverChallenge).update(pcSigCli).update(clientSecret).digest("hex"));
    expect(hex(seen.subarray(32))).toBe(hex(serverChallenge));
    expect(hex(seen.subarray(0, 32))).toBe(hex(hostHash));
    // a wrong PIN gives another key: the client's hash no longer matches
    const wrong = crypto.sha256(new Uint8Array([...salt, ...new TextEncoder().encode("0000")])).subarray(0, 16);
    expect(hex(crypto.aesEcbDecrypt(wrong, reply))).not.toBe(hex(seen));
  });
});
