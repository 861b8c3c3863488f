/**
 * SPAKE2 (RFC 9382) over P-256 with SHA-256, HKDF and HMAC, for lumen/1 PIN pairing: the PIN
 * never crosses the wire, an eavesdropper or a man in the middle gets one online guess per
 * attempt, and both identities are bound into the transcript — A is the client's id, B the
 * SHA-256 fingerprint of the host certificate the client sees, so a man in the middle with
 * another certificate ends with different keys and fails the confirmation.
 *
 * M and N are the RFC 9382 P-256 constants. w = SHA-256("lumen/1 pin" ‖ PIN) mod n.
 *   client: x random, pA = x·G + w·M;   host: y random, pB = y·G + w·N
 *   K = h·x·(pB − w·N) = h·y·(pA − w·M)   (cofactor h = 1)
 *   TT = len(A)‖A‖len(B)‖B‖len(pA)‖pA‖len(pB)‖pB‖len(K)‖K‖len(w)‖w   (8-byte LE lengths)
 *   Ke ‖ Ka = SHA-256(TT);  KcA ‖ KcB = HKDF(Ka, salt "", info "ConfirmationKeys", 32)
 *   cA = HMAC(KcA, TT), cB = HMAC(KcB, TT);  pairing key = HKDF(Ke, info "lumen/1 pairing key", 32)
 */
import { createHash, createHmac, hkdfSync, randomBytes, timingSafeEqual } from "node:crypto";
import * as ec from "./p256.ts";

const M = ec.decode(Buffer.from("02886e2f97ace46e55ba9dd7242579f2993b64e16ef3dcab95afd497333d8fa12f", "hex"))!;
const Nn = ec.decode(Buffer.from("03d8bbd6c639c62937b04d997f38c3770719c629d7014d49a24b4f98baa1292b49", "hex"))!;

export class Spake2Error extends Error {
  readonly errorCode = "LUMEN_PAKE_FAILED";
  constructor(message: string) {
    super(message);
    this.name = "Spake2Error";
  }
}

function pinScalar(pin: string): bigint {
  return ec.scalarFromBytes(createHash("sha256").update("lumen/1 pin").update(pin).digest());
}

function le64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
}

function scalarBytes(v: bigint): Buffer {
  return Buffer.from(v.toString(16).padStart(64, "0"), "hex");
}

export interface Spake2Result {
  /** Confirmation this side sends. */
  confirm: Buffer;
  /** Confirmation expected from the peer. */
  expect: Buffer;
  /** Long-term pairing key both sides keep. */
  pairingKey: Buffer;
}

/** One side of an exchange. */
export class Spake2 {
  private readonly w: bigint;
  private readonly x: bigint;
  readonly share: Uint8Array;

  constructor(
    private readonly role: "client" | "host",
    pin: string,
    private readonly idA: string,
    private readonly idB: string,
    random: () => Uint8Array = () => randomBytes(32),
  ) {
    this.w = pinScalar(pin);
    let x = 0n;
    while (x === 0n) x = ec.scalarFromBytes(random());
    this.x = x;
    const blind = role === "client" ? M : Nn;
    this.share = ec.encode(ec.add(ec.mul(x, ec.G), ec.mul(this.w, blind)));
  }

  /** Takes the peer's share; throws Spake2Error for a share that is not a valid point. */
  finish(peerShare: Uint8Array): Spake2Result {
    const peer = ec.decode(peerShare);
    if (!peer) throw new Spake2Error("the peer's SPAKE2 share is not a P-256 point");
    const unblind = this.role === "client" ? Nn : M;
    const k = ec.mul(this.x, ec.add(peer, ec.negate(ec.mul(this.w, unblind))));
    if (!k) throw new Spake2Error("SPAKE2 produced the point at infinity");
    const pA = this.role === "client" ? this.share : peerShare;
    const pB = this.role === "client" ? peerShare : this.share;
    const parts = [Buffer.from(this.idA, "utf8"), Buffer.from(this.idB, "utf8"), Buffer.from(pA), Buffer.from(pB), Buffer.from(ec.encode(k)), scalarBytes(this.w)];
    const tt = Buffer.concat(parts.flatMap((p) => [le64(p.length), p]));
    const hash = createHash("sha256").update(tt).digest();
    const ke = hash.subarray(0, 16), ka = hash.subarray(16);
    const kc = Buffer.from(hkdfSync("sha256", ka, Buffer.alloc(0), "ConfirmationKeys", 32));
    const cA = createHmac("sha256", kc.subarray(0, 16)).update(tt).digest();
    const cB = createHmac("sha256", kc.subarray(16)).update(tt).digest();
    const pairingKey = Buffer.from(hkdfSync("sha256", ke, Buffer.alloc(0), "lumen/1 pairing key", 32));
    return this.role === "client" ? { confirm: cA, expect: cB, pairingKey } : { confirm: cB, expect: cA, pairingKey };
  }
}

/** Constant-time comparison of a received confirmation. */
export function confirmMatches(expected: Uint8Array, got: Uint8Array): boolean {
  return expected.length === got.length && timingSafeEqual(expected, got);
}
