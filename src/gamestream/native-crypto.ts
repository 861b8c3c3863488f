/** GameStreamCrypto over libneuron's OpenSSL-backed crypto (ffi/crypto.ts). */
import { randomBytes } from "node:crypto";
import type { NativeCrypto } from "../../ffi/crypto.ts";
import type { GameStreamCrypto, ParsedCert } from "./crypto.ts";
import { encodeHex } from "./hex.ts";

function withClose<T extends { close(): void }, R>(obj: T, fn: (o: T) => R): R {
  try {
    return fn(obj);
  } finally {
    obj.close();
  }
}

export function gameStreamCrypto(native: NativeCrypto): GameStreamCrypto {
  return {
    sha256: (data) => native.sha256(data),
    randomBytes: (n) => new Uint8Array(randomBytes(n)),
    aesEcbEncrypt: (key, data) => native.aesEcbEncrypt(key, data),
    aesEcbDecrypt: (key, data) => native.aesEcbDecrypt(key, data),
    aesGcm(key) {
      const gcm = native.aesGcm(key);
      return { seal: (pt, iv) => gcm.seal(pt, iv), open: (sealed, iv) => gcm.open(sealed, iv), close: () => gcm.close() };
    },
    sign: (keyPem, data) => withClose(native.rsaKeyFromPrivate(keyPem), (k) => k.sign(data)),
    verifyWithCert: (certPem, data, signature) => withClose(native.parseCertificate(certPem), (c) => c.verify(data, signature)),
    parseCert: (certPem): ParsedCert =>
      withClose(native.parseCertificate(certPem), (c) => ({
        pem: c.toPem(),
        der: c.toDer(),
        signature: c.signature(),
        fingerprint: encodeHex(c.fingerprint()),
      })),
    createIdentity(commonName, validityDays, keyPem) {
      return withClose(keyPem ? native.rsaKeyFromPrivate(keyPem) : native.generateRsaKey(2048), (key) => {
        const now = Date.now();
        const cert = native.createCertificate(key, {
          commonName,
          serial: BigInt(now) * 1000n + BigInt(Math.floor(Math.random() * 1000)),
          notBefore: new Date(now - 24 * 3600 * 1000),
          notAfter: new Date(now + validityDays * 24 * 3600 * 1000),
        });
        return withClose(cert, (c) => ({ keyPem: key.privateKeyPem(), certPem: c.toPem() }));
      });
    },
  };
}
