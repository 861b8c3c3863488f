/**
 * bun:ffi symbol table of libneuron's crypto module (native/crypto.h) and the small helpers the
 * crypto wrappers share. Only ffi/ touches these.
 */
import { FFIType, ptr, type FFIFunction, type Library, type Pointer } from "bun:ffi";
import { NativeCallError } from "./native.ts";

const { ptr: P, i32, u32, u64, i64, void: V } = FFIType;
const usize = "usize" as const;

export const cryptoSymbols = {
  neuron_sha256: { args: [P, usize, P], returns: i32 },
  neuron_aes_gcm_new: { args: [P, usize, P], returns: i32 },
  neuron_aes_gcm_free: { args: [P], returns: V },
  neuron_aes_gcm_seal_batch: { args: [P, P, u32, P, P, P, P, u64, P, P], returns: i32 },
  neuron_aes_gcm_open_batch: { args: [P, P, u32, P, P, P, P, u64, P, P], returns: i32 },
  neuron_aes_cbc_new: { args: [P, usize, P], returns: i32 },
  neuron_aes_cbc_free: { args: [P], returns: V },
  neuron_aes_cbc_encrypt: { args: [P, P, P, usize, P, usize], returns: i32 },
  neuron_aes_cbc_decrypt: { args: [P, P, P, usize, P, usize], returns: i32 },
  neuron_aes_ecb_encrypt: { args: [P, usize, P, usize, P], returns: i32 },
  neuron_aes_ecb_decrypt: { args: [P, usize, P, usize, P], returns: i32 },
  neuron_rsa_generate: { args: [u32, P], returns: i32 },
  neuron_rsa_from_private: { args: [P, usize, P], returns: i32 },
  neuron_rsa_free: { args: [P], returns: V },
  neuron_rsa_bits: { args: [P], returns: i32 },
  neuron_rsa_private_pem: { args: [P, P, usize], returns: i32 },
  neuron_rsa_public_pem: { args: [P, P, usize], returns: i32 },
  neuron_rsa_sign_sha256: { args: [P, P, usize, P, usize], returns: i32 },
  neuron_rsa_verify_sha256: { args: [P, P, usize, P, usize], returns: i32 },
  neuron_cert_create: { args: [P, P, usize, u64, i64, i64, P], returns: i32 },
  neuron_cert_parse: { args: [P, usize, P], returns: i32 },
  neuron_cert_free: { args: [P], returns: V },
  neuron_cert_to_pem: { args: [P, P, usize], returns: i32 },
  neuron_cert_to_der: { args: [P, P, usize], returns: i32 },
  neuron_cert_signature: { args: [P, P, usize], returns: i32 },
  neuron_cert_fingerprint_sha256: { args: [P, P], returns: i32 },
  neuron_cert_serial: { args: [P, P, usize], returns: i32 },
  neuron_cert_subject_cn: { args: [P, P, usize], returns: i32 },
  neuron_cert_validity: { args: [P, P, P], returns: i32 },
  neuron_cert_verify_sha256: { args: [P, P, usize, P, usize], returns: i32 },
  neuron_cert_matches_key: { args: [P, P], returns: i32 },
} as const satisfies Record<string, FFIFunction>;

export type CryptoLib = Library<typeof cryptoSymbols>;
export type CryptoSymbols = CryptoLib["symbols"];

/** Bounds mirrored from native/crypto.h. */
export const CRYPTO_MAX_INPUT = 1 << 20;
export const GCM_MAX_BATCH = 65536;
export const GCM_MAX_STRIDE = 1 << 24;
export const GCM_TAG_BYTES = 16;
export const GCM_IV_BYTES = 12;
export const AES128_KEY_BYTES = 16;

/** Stands in for empty buffers: bun:ffi cannot point at zero bytes, and the library reads and
 * writes nothing through a pointer whose length is 0. */
const EMPTY_SCRATCH = new Uint8Array(16);

/** A buffer's pointer (a valid non-null pointer also for an empty buffer). */
export function bufPtr(buf: Uint8Array | Uint32Array | Int32Array | BigInt64Array | BigUint64Array): Pointer {
  return ptr(buf.byteLength > 0 ? buf : EMPTY_SCRATCH);
}

/** Throws NativeCallError for a negative status; returns the value otherwise. */
export function check(fn: string, rc: number): number {
  if (rc < 0) throw new NativeCallError(fn, rc);
  return rc;
}

/** Calls a constructor of the form `int32_t f(..., T **out)` and returns the new object pointer. */
export function construct(fn: string, call: (out: Pointer) => number): Pointer {
  const slot = new BigUint64Array(1);
  check(fn, call(ptr(slot)));
  const handle = Number(slot[0]);
  if (handle === 0) throw new NativeCallError(fn, -3);
  return handle as Pointer;
}

/**
 * Keeps the library loaded while any object made from it is alive: NativeCrypto.close() unloads
 * it only once the last object is freed (closed or collected), so a late free never calls into
 * unmapped code.
 */
export class CryptoLease {
  #live = 0;
  #closing = false;
  constructor(private readonly lib: CryptoLib) {}

  get sym(): CryptoSymbols {
    if (this.#closing) throw new CryptoClosedError("NativeCrypto");
    return this.lib.symbols;
  }

  acquire(): void {
    if (this.#closing) throw new CryptoClosedError("NativeCrypto");
    this.#live++;
  }

  release(): void {
    this.#live--;
    if (this.#closing && this.#live === 0) this.lib.close();
  }

  close(): void {
    if (this.#closing) return;
    this.#closing = true;
    if (this.#live === 0) this.lib.close();
  }
}

/**
 * Base of the wrappers that own one native object: `close()` frees it exactly once (the native
 * free zeroes key material); a FinalizationRegistry frees objects that were never closed.
 */
export abstract class NativeHandle {
  #handle: Pointer | null;
  readonly #token = {};
  readonly #free: (handle: Pointer) => void;
  readonly #lease: CryptoLease;
  static readonly #registry = new FinalizationRegistry<() => void>((free) => free());

  protected constructor(lease: CryptoLease, handle: Pointer, free: (handle: Pointer) => void) {
    lease.acquire();
    this.#handle = handle;
    this.#free = free;
    this.#lease = lease;
    NativeHandle.#registry.register(this, () => {
      free(handle);
      lease.release();
    }, this.#token);
  }

  /** The live native pointer; throws once closed. */
  protected get handle(): Pointer {
    if (this.#handle === null) throw new CryptoClosedError(this.constructor.name);
    return this.#handle;
  }

  get closed(): boolean {
    return this.#handle === null;
  }

  close(): void {
    if (this.#handle === null) return;
    const h = this.#handle;
    this.#handle = null;
    NativeHandle.#registry.unregister(this.#token);
    this.#free(h);
    this.#lease.release();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

export class CryptoClosedError extends Error {
  readonly errorCode = "CRYPTO_OBJECT_CLOSED";
  constructor(what: string) {
    super(`${what} was used after close()`);
    this.name = "CryptoClosedError";
  }
}

/** Argument errors caught before the native call (sizes the native side cannot see). */
export class CryptoArgumentError extends Error {
  readonly errorCode = "CRYPTO_INVALID_ARGUMENT";
  constructor(message: string) {
    super(message);
    this.name = "CryptoArgumentError";
  }
}

export function requireLength(what: string, buf: { byteLength: number }, need: number): void {
  if (buf.byteLength < need) throw new CryptoArgumentError(`${what} holds ${buf.byteLength} bytes, needs ${need}`);
}
