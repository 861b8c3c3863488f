/**
 * GameStreamCrypto over the runtime's own crypto (node:crypto), for what the host needs before
 * any stream: the identity (RSA key, self-signed certificate), pairing (SHA-256, AES-128-ECB,
 * PKCS#1 v1.5 SHA-256 signatures) and client certificates. Starting the host so loads no native
 * library; AES-128-GCM (encrypted RTSP, during sessions) comes from `aesGcm`, given by the caller
 * (libneuron, loaded then).
 *
 * The certificates it makes are what libneuron's neuron_cert_create makes: X.509 v3, no
 * extensions, the serial given, subject = issuer = CN (UTF8String), validity as UTCTime up to
 * 2049 and GeneralizedTime after, signed sha256WithRSAEncryption. Errors keep libneuron's
 * messages, so what the host answers (e.g. a pairing's 400) reads the same.
 */
import { X509Certificate, createCipheriv, createDecipheriv, createHash, createPrivateKey, generateKeyPairSync, createPublicKey, randomBytes, sign, verify, type KeyObject } from "node:crypto";
import type { RtspCipher } from "./rtsp/record.ts";
import type { GameStreamCrypto, ParsedCert } from "./crypto.ts";
import { encodeHex } from "./hex.ts";

const MAX_INPUT = 1 << 20;

/** A libneuron-style failure: same name and message as ffi's NativeCallError. */
class CryptoCallError extends Error {
  constructor(fn: string, code: string) {
    super(`${fn} failed: ${code}`);
    this.name = "NativeCallError";
  }
}

class CryptoArgumentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CryptoArgumentError";
  }
}

// --- DER -----------------------------------------------------------------------------------

function der(tag: number, ...parts: Uint8Array[]): Uint8Array {
  const len = parts.reduce((n, p) => n + p.length, 0);
  const head: number[] = [tag];
  if (len < 0x80) head.push(len);
  else {
    const bytes: number[] = [];
    for (let n = len; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
    head.push(0x80 | bytes.length, ...bytes);
  }
  const out = new Uint8Array(head.length + len);
  out.set(head);
  let off = head.length;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

const seq = (...parts: Uint8Array[]) => der(0x30, ...parts);

function derUint(n: bigint): Uint8Array {
  const bytes: number[] = [];
  for (let v = n; v > 0n; v >>= 8n) bytes.unshift(Number(v & 0xffn));
  if (bytes.length === 0 || bytes[0]! & 0x80) bytes.unshift(0);
  return der(0x02, Uint8Array.from(bytes));
}

/** ASN1_TIME_set's choice: UTCTime for 1950–2049, GeneralizedTime otherwise; whole seconds, Z. */
function derTime(d: Date): Uint8Array {
  const y = d.getUTCFullYear();
  const p2 = (n: number) => String(n).padStart(2, "0");
  const rest = `${p2(d.getUTCMonth() + 1)}${p2(d.getUTCDate())}${p2(d.getUTCHours())}${p2(d.getUTCMinutes())}${p2(d.getUTCSeconds())}Z`;
  const utc = y >= 1950 && y <= 2049;
  return der(utc ? 0x17 : 0x18, new TextEncoder().encode((utc ? p2(y % 100) : String(y).padStart(4, "0")) + rest));
}

const OID_CN = Uint8Array.of(0x06, 0x03, 0x55, 0x04, 0x03);
const SHA256_WITH_RSA = seq(Uint8Array.of(0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b), Uint8Array.of(0x05, 0x00));
const V3 = Uint8Array.of(0xa0, 0x03, 0x02, 0x01, 0x02);

const cnName = (cn: string) => seq(der(0x31, seq(OID_CN, der(0x0c, new TextEncoder().encode(cn)))));

/** One TLV at `off` of `buf`: where its content starts and ends. */
function readTlv(buf: Uint8Array, off: number): { tag: number; start: number; end: number } {
  if (off + 2 > buf.length) throw new Error("truncated DER");
  const tag = buf[off]!;
  let len = buf[off + 1]!;
  let start = off + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || start + n > buf.length) throw new Error("bad DER length");
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[start + i]!;
    start += n;
  }
  if (start + len > buf.length) throw new Error("truncated DER");
  return { tag, start, end: start + len };
}

/** The raw bytes of a DER certificate's signatureValue (its BIT STRING, less the unused-bits byte). */
function certSignature(certDer: Uint8Array): Uint8Array {
  const outer = readTlv(certDer, 0);
  const tbs = readTlv(certDer, outer.start);
  const alg = readTlv(certDer, tbs.end);
  const sig = readTlv(certDer, alg.end);
  if (sig.tag !== 0x03 || sig.end <= sig.start) throw new Error("no signature");
  return certDer.slice(sig.start + 1, sig.end);
}

/** PEM as OpenSSL writes it: base64 in lines of 64. */
function certPem(certDer: Uint8Array): string {
  const b64 = Buffer.from(certDer).toString("base64");
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return `-----BEGIN CERTIFICATE-----\n${lines.join("\n")}\n-----END CERTIFICATE-----\n`;
}

// --- the interface ---------------------------------------------------------------------------

function parseX509(certPemText: string): X509Certificate {
  if (certPemText.length === 0) throw new CryptoArgumentError("certificate is empty");
  if (certPemText.length > MAX_INPUT) throw new CryptoArgumentError("certificate must be at most 1 MiB");
  try {
    return new X509Certificate(certPemText);
  } catch {
    throw new CryptoCallError("neuron_cert_parse", "NEURON_EFORMAT");
  }
}

function privateKey(keyPem: string): KeyObject {
  if (keyPem.length === 0 || keyPem.length > MAX_INPUT) throw new CryptoArgumentError("private key must be 1 byte..1 MiB");
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch {
    throw new CryptoCallError("neuron_rsa_from_private", "NEURON_EFORMAT");
  }
  if (key.asymmetricKeyType !== "rsa") throw new CryptoCallError("neuron_rsa_from_private", "NEURON_EUNSUPPORTED");
  return key;
}

function aesEcb(encrypt: boolean, key: Uint8Array, data: Uint8Array): Uint8Array {
  if (key.byteLength !== 16) throw new CryptoArgumentError("AES-128-ECB key must be 16 bytes");
  if (data.byteLength % 16 !== 0 || data.byteLength > MAX_INPUT)
    throw new CryptoArgumentError("AES-128-ECB data must be a multiple of 16 bytes (no padding), at most 1 MiB");
  const c = encrypt ? createCipheriv("aes-128-ecb", key, null) : createDecipheriv("aes-128-ecb", key, null);
  c.setAutoPadding(false);
  const out = Buffer.concat([c.update(data), c.final()]);
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

const bytes = (b: Buffer) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength);

/** A self-signed certificate of `key` (see the file's comment for its shape), DER. */
export function selfSignedCertDer(key: KeyObject, spec: { commonName: string; serial: bigint; notBefore: Date; notAfter: Date }): Uint8Array {
  const spki = bytes(createPublicKey(key).export({ type: "spki", format: "der" }));
  const name = cnName(spec.commonName);
  const tbs = seq(V3, derUint(spec.serial), SHA256_WITH_RSA, name, seq(derTime(spec.notBefore), derTime(spec.notAfter)), name, spki);
  const signature = sign("sha256", tbs, key);
  return seq(tbs, SHA256_WITH_RSA, der(0x03, Uint8Array.of(0), signature));
}

export function nodeGameStreamCrypto(aesGcm: (key: Uint8Array) => RtspCipher): GameStreamCrypto {
  return {
    sha256: (data) => bytes(createHash("sha256").update(data).digest()),
    randomBytes: (n) => new Uint8Array(randomBytes(n)),
    aesEcbEncrypt: (key, data) => aesEcb(true, key, data),
    aesEcbDecrypt: (key, data) => aesEcb(false, key, data),
    aesGcm,
    sign: (keyPem, data) => bytes(sign("sha256", data, privateKey(keyPem))),
    verifyWithCert(certPemText, data, signature) {
      const pub = parseX509(certPemText).publicKey;
      if (pub.asymmetricKeyType !== "rsa") throw new CryptoCallError("neuron_cert_verify_sha256", "NEURON_EUNSUPPORTED");
      return verify("sha256", data, pub, signature);
    },
    parseCert(certPemText): ParsedCert {
      const x = parseX509(certPemText);
      const derBytes = new Uint8Array(x.raw);
      let signature: Uint8Array;
      try {
        signature = certSignature(derBytes);
      } catch {
        throw new CryptoCallError("neuron_cert_parse", "NEURON_EFORMAT");
      }
      return { pem: certPem(derBytes), der: derBytes, signature, fingerprint: encodeHex(bytes(createHash("sha256").update(derBytes).digest())) };
    },
    createIdentity(commonName, validityDays, keyPem) {
      const key = keyPem ? privateKey(keyPem) : generateKeyPairSync("rsa", { modulusLength: 2048, publicExponent: 65537 }).privateKey;
      const now = Date.now();
      const certDer = selfSignedCertDer(key, {
        commonName,
        serial: BigInt(now) * 1000n + BigInt(Math.floor(Math.random() * 1000)),
        notBefore: new Date(now - 24 * 3600 * 1000),
        notAfter: new Date(now + validityDays * 24 * 3600 * 1000),
      });
      return { keyPem: key.export({ type: "pkcs8", format: "pem" }) as string, certPem: certPem(certDer) };
    },
  };
}
