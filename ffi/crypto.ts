/**
 * Crypto of libneuron (native/crypto.h, OpenSSL libcrypto) for TypeScript:
 *
 *   const crypto = NativeCrypto.load();
 *   using gcm = crypto.aesGcm(rikey);            // AES-128-GCM key object, batched seal/open
 *   const key = crypto.generateRsaKey();         // RSA-2048
 *   const cert = crypto.createCertificate(key, { commonName, serial: 0, notBefore, notAfter });
 *
 * Every object owns one native pointer: close() (or `using`) frees it and zeroes key material.
 * Errors: NativeCallError (errorCode NEURON_*) from the library, CryptoArgumentError for sizes
 * refused before any native call, CryptoClosedError for use after close().
 */
import { ptr } from "bun:ffi";
import { openSymbols, resolveNativePath, type NativeLocation } from "./native.ts";
import { AesCbc, AesGcm, aesEcb } from "./crypto-aes.ts";
import { Certificate, RsaKey, type CertificateSpec } from "./crypto-pki.ts";
import { bufPtr, check, construct, CryptoArgumentError, CryptoLease } from "./crypto-symbols.ts";
import { cryptoSymbols } from "./crypto-symbols.ts";

export { AesCbc, AesGcm, GcmIvMode, GcmLayout, audioIv, type GcmBatch, type GcmLayoutSpec } from "./crypto-aes.ts";
export { Certificate, RsaKey, type CertificateSpec } from "./crypto-pki.ts";
export {
  CRYPTO_MAX_INPUT,
  CryptoArgumentError,
  CryptoClosedError,
  GCM_IV_BYTES,
  GCM_MAX_BATCH,
  GCM_TAG_BYTES,
} from "./crypto-symbols.ts";

export class NativeCrypto {
  private constructor(
    readonly path: string,
    private readonly lease: CryptoLease,
  ) {}

  static load(loc: NativeLocation = {}): NativeCrypto {
    const path = resolveNativePath(loc);
    return new NativeCrypto(path, new CryptoLease(openSymbols(path, cryptoSymbols)));
  }

  private get sym() {
    return this.lease.sym;
  }

  sha256(data: Uint8Array): Uint8Array {
    const out = new Uint8Array(32);
    check("neuron_sha256", this.sym.neuron_sha256(bufPtr(data), data.byteLength, ptr(out)));
    return out;
  }

  aesGcm(key: Uint8Array): AesGcm {
    return new AesGcm(this.lease, key);
  }

  aesCbc(key: Uint8Array): AesCbc {
    return new AesCbc(this.lease, key);
  }

  /** AES-128-ECB without padding; data length a multiple of 16. */
  aesEcbEncrypt(key: Uint8Array, data: Uint8Array): Uint8Array {
    return aesEcb(this.sym, true, key, data);
  }

  aesEcbDecrypt(key: Uint8Array, data: Uint8Array): Uint8Array {
    return aesEcb(this.sym, false, key, data);
  }

  /** RSA key pair, e = 65537; bits 2048 (default), 3072 or 4096. */
  generateRsaKey(bits: 2048 | 3072 | 4096 = 2048): RsaKey {
    return new RsaKey(this.lease, construct("neuron_rsa_generate", (out) => this.sym.neuron_rsa_generate(bits, out)));
  }

  /** Loads an unencrypted RSA private key (PKCS#8 / PKCS#1 PEM, or DER). */
  rsaKeyFromPrivate(data: Uint8Array | string): RsaKey {
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
    if (bytes.byteLength === 0 || bytes.byteLength > 1 << 20) throw new CryptoArgumentError("private key must be 1 byte..1 MiB");
    try {
      return new RsaKey(this.lease, construct("neuron_rsa_from_private", (out) =>
        this.sym.neuron_rsa_from_private(ptr(bytes), bytes.byteLength, out)));
    } finally {
      if (typeof data === "string") bytes.fill(0);
    }
  }

  createCertificate(key: RsaKey, spec: CertificateSpec): Certificate {
    return Certificate.create(this.lease, key, spec);
  }

  parseCertificate(data: Uint8Array | string): Certificate {
    return Certificate.parse(this.lease, data);
  }

  /** Refuses new work and unloads the library once every object made from it is freed. */
  close(): void {
    this.lease.close();
  }
}
export { gameStreamIv, ivTemplate, openLayout, sealLayout, RECORD_LAYOUT, type GameStreamChannel, type GameStreamSender } from "./crypto-gamestream.ts";
