/**
 * What GameStream pairing and the host identity need from cryptography.
 * Implemented over libneuron (ffi/crypto.ts → OpenSSL); injected so the
 * pairing state machine stays free of pointers and buffers.
 */
import type { RtspCipher } from "./rtsp/record.ts";

export interface GameStreamCrypto {
  sha256(data: Uint8Array): Uint8Array;
  randomBytes(n: number): Uint8Array;
  /** AES-128-ECB, no padding; data length a multiple of 16. */
  aesEcbEncrypt(key: Uint8Array, data: Uint8Array): Uint8Array;
  aesEcbDecrypt(key: Uint8Array, data: Uint8Array): Uint8Array;
  /** RSA PKCS#1 v1.5 with SHA-256 by a private key (PEM). */
  sign(privateKeyPem: string, data: Uint8Array): Uint8Array;
  /** Verifies a PKCS#1 v1.5 SHA-256 signature with the public key of a certificate (PEM). */
  verifyWithCert(certPem: string, data: Uint8Array, signature: Uint8Array): boolean;
  /** Parses a PEM certificate (serial 0, no extensions accepted); throws on garbage. */
  parseCert(certPem: string): ParsedCert;
  /** AES-128-GCM with one key (encrypted RTSP); close() frees it and zeroes the key schedule. */
  aesGcm(key: Uint8Array): RtspCipher;
  /** RSA-2048 key (generated, or the PEM given) + self-signed SHA-256 certificate. */
  createIdentity(commonName: string, validityDays: number, keyPem?: string): { keyPem: string; certPem: string };
}

export interface ParsedCert {
  /** Normalised PEM. */
  pem: string;
  der: Uint8Array;
  /** The raw bytes of the certificate's signatureValue. */
  signature: Uint8Array;
  /** SHA-256 of the DER, lowercase hex. */
  fingerprint: string;
}
