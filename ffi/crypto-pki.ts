/**
 * RSA keys and X.509 certificates through libneuron (OpenSSL): generation, PEM/DER in and out,
 * PKCS#1 v1.5 SHA-256 signatures, certificate signatureValue bytes and fingerprints.
 */
import { ptr, type Pointer } from "bun:ffi";
import {
  CRYPTO_MAX_INPUT,
  CryptoArgumentError,
  NativeHandle,
  bufPtr,
  check,
  construct,
  type CryptoLease,
  type CryptoSymbols,
} from "./crypto-symbols.ts";
import { NativeCallError, NativeStatus } from "./native.ts";

const PEM_CAP = 16 * 1024;
const SIG_CAP = 1024;

function boundedInput(what: string, data: Uint8Array): void {
  if (data.byteLength === 0) throw new CryptoArgumentError(`${what} is empty`);
  if (data.byteLength > CRYPTO_MAX_INPUT) throw new CryptoArgumentError(`${what} is over ${CRYPTO_MAX_INPUT} bytes`);
}

/** Reads a variable-length output into a fresh buffer of `cap` bytes. */
function readOut(fn: string, cap: number, call: (out: Pointer, cap: number) => number): Uint8Array {
  const buf = new Uint8Array(cap);
  const n = check(fn, call(ptr(buf), cap));
  return buf.slice(0, n);
}

/** An RSA key pair; the private key never leaves native memory except through privateKeyPem(). */
export class RsaKey extends NativeHandle {
  /** @internal use NativeCrypto.generateRsaKey / rsaKeyFromPrivate */
  private readonly sym: CryptoSymbols;
  constructor(lease: CryptoLease, handle: Pointer) {
    const sym = lease.sym;
    super(lease, handle, (h) => sym.neuron_rsa_free(h));
    this.sym = sym;
  }

  /** @internal */
  get nativeHandle(): Pointer {
    return this.handle;
  }

  get bits(): number {
    return check("neuron_rsa_bits", this.sym.neuron_rsa_bits(this.handle));
  }

  /** PKCS#8 PEM of the private key (a secret: store it 0600; the scratch buffer is zeroed). */
  privateKeyPem(): string {
    const buf = new Uint8Array(PEM_CAP);
    try {
      const n = check("neuron_rsa_private_pem", this.sym.neuron_rsa_private_pem(this.handle, ptr(buf), PEM_CAP));
      return new TextDecoder().decode(buf.subarray(0, n));
    } finally {
      buf.fill(0);
    }
  }

  publicKeyPem(): string {
    const out = readOut("neuron_rsa_public_pem", PEM_CAP, (p, c) => this.sym.neuron_rsa_public_pem(this.handle, p, c));
    return new TextDecoder().decode(out);
  }

  /** RSASSA-PKCS1-v1_5 with SHA-256. */
  sign(data: Uint8Array): Uint8Array {
    return readOut("neuron_rsa_sign_sha256", SIG_CAP, (p, c) =>
      this.sym.neuron_rsa_sign_sha256(this.handle, bufPtr(data), data.byteLength, p, c));
  }

  verify(data: Uint8Array, signature: Uint8Array): boolean {
    return verifyResult("neuron_rsa_verify_sha256",
      this.sym.neuron_rsa_verify_sha256(this.handle, bufPtr(data), data.byteLength, bufPtr(signature), signature.byteLength));
  }
}

function verifyResult(fn: string, rc: number): boolean {
  if (rc === NativeStatus.OK) return true;
  if (rc === NativeStatus.EAUTH) return false;
  throw new NativeCallError(fn, rc);
}

export interface CertificateSpec {
  commonName: string;
  /** 0 allowed; up to 2^64 - 1 */
  serial: number | bigint;
  notBefore: Date;
  notAfter: Date;
}

/** A parsed or created X.509 certificate. */
export class Certificate extends NativeHandle {
  /** @internal use NativeCrypto.createCertificate / parseCertificate */
  private readonly sym: CryptoSymbols;
  constructor(lease: CryptoLease, handle: Pointer) {
    const sym = lease.sym;
    super(lease, handle, (h) => sym.neuron_cert_free(h));
    this.sym = sym;
  }

  static create(lease: CryptoLease, key: RsaKey, spec: CertificateSpec): Certificate {
    const sym = lease.sym;
    const cn = new TextEncoder().encode(spec.commonName);
    if (cn.byteLength === 0 || cn.byteLength > 64 || cn.includes(0))
      throw new CryptoArgumentError("commonName must be 1..64 bytes of UTF-8 without NUL");
    const serial = BigInt(spec.serial);
    if (serial < 0n || serial >= 1n << 64n) throw new CryptoArgumentError("serial must fit an unsigned 64-bit integer");
    const nb = Math.floor(spec.notBefore.getTime() / 1000);
    const na = Math.floor(spec.notAfter.getTime() / 1000);
    if (!Number.isFinite(nb) || !Number.isFinite(na) || nb > na) throw new CryptoArgumentError("validity must be notBefore <= notAfter");
    const h = construct("neuron_cert_create", (out) =>
      sym.neuron_cert_create(key.nativeHandle, ptr(cn), cn.byteLength, serial, BigInt(nb), BigInt(na), out));
    return new Certificate(lease, h);
  }

  /** PEM ("-----BEGIN CERTIFICATE-----", the first one) or DER. */
  static parse(lease: CryptoLease, data: Uint8Array | string): Certificate {
    const sym = lease.sym;
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
    boundedInput("certificate", bytes);
    return new Certificate(lease, construct("neuron_cert_parse", (out) => sym.neuron_cert_parse(ptr(bytes), bytes.byteLength, out)));
  }

  toPem(): string {
    return new TextDecoder().decode(readOut("neuron_cert_to_pem", PEM_CAP * 4, (p, c) => this.sym.neuron_cert_to_pem(this.handle, p, c)));
  }

  toDer(): Uint8Array {
    return readOut("neuron_cert_to_der", PEM_CAP * 4, (p, c) => this.sym.neuron_cert_to_der(this.handle, p, c));
  }

  /** The raw bytes of the signatureValue BIT STRING (hashed by GameStream pairing). */
  signature(): Uint8Array {
    return readOut("neuron_cert_signature", PEM_CAP * 4, (p, c) => this.sym.neuron_cert_signature(this.handle, p, c));
  }

  /** SHA-256 of the DER encoding. */
  fingerprint(): Uint8Array {
    const out = new Uint8Array(32);
    check("neuron_cert_fingerprint_sha256", this.sym.neuron_cert_fingerprint_sha256(this.handle, ptr(out)));
    return out;
  }

  get serial(): bigint {
    const bytes = readOut("neuron_cert_serial", 64, (p, c) => this.sym.neuron_cert_serial(this.handle, p, c));
    return bytes.reduce((acc, b) => (acc << 8n) | BigInt(b), 0n);
  }

  get commonName(): string {
    return new TextDecoder().decode(readOut("neuron_cert_subject_cn", 1024, (p, c) => this.sym.neuron_cert_subject_cn(this.handle, p, c)));
  }

  get validity(): { notBefore: Date; notAfter: Date } {
    const t = new BigInt64Array(2);
    check("neuron_cert_validity", this.sym.neuron_cert_validity(this.handle, ptr(t), ptr(t, 8)));
    return { notBefore: new Date(Number(t[0]) * 1000), notAfter: new Date(Number(t[1]) * 1000) };
  }

  /** Verifies a PKCS#1 v1.5 SHA-256 signature with the certificate's public key. */
  verify(data: Uint8Array, signature: Uint8Array): boolean {
    return verifyResult("neuron_cert_verify_sha256",
      this.sym.neuron_cert_verify_sha256(this.handle, bufPtr(data), data.byteLength, bufPtr(signature), signature.byteLength));
  }

  /** Whether this certificate carries the public half of `key`. */
  matchesKey(key: RsaKey): boolean {
    return verifyResult("neuron_cert_matches_key", this.sym.neuron_cert_matches_key(this.handle, key.nativeHandle));
  }
}
