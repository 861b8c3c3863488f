/**
 * NIST P-256 point arithmetic over BigInt (Jacobian coordinates, one inversion per result),
 * for the SPAKE2 exchange of lumen/1 pairing. node:crypto's ECDH exposes only scalar × G, and
 * SPAKE2 needs w·M + x·G and point subtraction. Not constant-time: it runs only during a
 * PIN pairing, on secrets that live for one exchange.
 */
export const P = 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn;
export const N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
const B = 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn;
const GX = 0x6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296n;
const GY = 0x4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5n;

export interface Point {
  x: bigint;
  y: bigint;
}
/** The point at infinity. */
export const INFINITY: Point | null = null;

const mod = (a: bigint, m = P) => {
  const r = a % m;
  return r < 0n ? r + m : r;
};

function powmod(b: bigint, e: bigint, m: bigint): bigint {
  let r = 1n;
  b = mod(b, m);
  while (e > 0n) {
    if (e & 1n) r = (r * b) % m;
    b = (b * b) % m;
    e >>= 1n;
  }
  return r;
}

const inv = (a: bigint, m = P) => powmod(a, m - 2n, m);

export const G: Point = { x: GX, y: GY };

export function onCurve(pt: Point): boolean {
  if (pt.x < 0n || pt.x >= P || pt.y < 0n || pt.y >= P) return false;
  return mod(pt.y * pt.y - (pt.x * pt.x * pt.x - 3n * pt.x + B)) === 0n;
}

type Jac = [bigint, bigint, bigint];

function jdouble([x, y, z]: Jac): Jac {
  if (y === 0n || z === 0n) return [0n, 1n, 0n];
  const yy = mod(y * y);
  const s = mod(4n * x * yy);
  const zz = mod(z * z);
  const m = mod(3n * (x - zz) * (x + zz));
  const x3 = mod(m * m - 2n * s);
  const y3 = mod(m * (s - x3) - 8n * yy * yy);
  const z3 = mod(2n * y * z);
  return [x3, y3, z3];
}

function jadd(a: Jac, b: Jac): Jac {
  if (a[2] === 0n) return b;
  if (b[2] === 0n) return a;
  const z1z1 = mod(a[2] * a[2]), z2z2 = mod(b[2] * b[2]);
  const u1 = mod(a[0] * z2z2), u2 = mod(b[0] * z1z1);
  const s1 = mod(a[1] * b[2] * z2z2), s2 = mod(b[1] * a[2] * z1z1);
  if (u1 === u2) return s1 === s2 ? jdouble(a) : [0n, 1n, 0n];
  const h = mod(u2 - u1), r = mod(s2 - s1);
  const hh = mod(h * h), hhh = mod(h * hh);
  const x3 = mod(r * r - hhh - 2n * u1 * hh);
  const y3 = mod(r * (u1 * hh - x3) - s1 * hhh);
  const z3 = mod(h * a[2] * b[2]);
  return [x3, y3, z3];
}

const toJac = (p: Point | null): Jac => (p ? [p.x, p.y, 1n] : [0n, 1n, 0n]);
function fromJac([x, y, z]: Jac): Point | null {
  if (z === 0n) return null;
  const zi = inv(z), zi2 = mod(zi * zi);
  return { x: mod(x * zi2), y: mod(y * zi2 * zi) };
}

export function add(a: Point | null, b: Point | null): Point | null {
  return fromJac(jadd(toJac(a), toJac(b)));
}

export function negate(a: Point | null): Point | null {
  return a ? { x: a.x, y: mod(-a.y) } : null;
}

export function mul(k: bigint, pt: Point | null): Point | null {
  k = mod(k, N);
  let r: Jac = [0n, 1n, 0n];
  const base = toJac(pt);
  for (let i = BigInt(k.toString(2).length - 1); i >= 0n; i--) {
    r = jdouble(r);
    if ((k >> i) & 1n) r = jadd(r, base);
  }
  return fromJac(r);
}

const hex32 = (v: bigint) => v.toString(16).padStart(64, "0");

/** SEC1 uncompressed encoding (65 bytes). */
export function encode(pt: Point | null): Uint8Array {
  if (!pt) throw new RangeError("cannot encode the point at infinity");
  return Buffer.from("04" + hex32(pt.x) + hex32(pt.y), "hex");
}

/** Decodes SEC1 compressed (33 bytes) or uncompressed (65 bytes); null when not on the curve. */
export function decode(b: Uint8Array): Point | null {
  const h = Buffer.from(b).toString("hex");
  if (b.length === 65 && b[0] === 4) {
    const pt = { x: BigInt("0x" + h.slice(2, 66)), y: BigInt("0x" + h.slice(66)) };
    return onCurve(pt) ? pt : null;
  }
  if (b.length === 33 && (b[0] === 2 || b[0] === 3)) {
    const x = BigInt("0x" + h.slice(2));
    if (x >= P) return null;
    const rhs = mod(x * x * x - 3n * x + B);
    let y = powmod(rhs, (P + 1n) / 4n, P);
    if (mod(y * y) !== rhs) return null;
    if ((y & 1n) !== BigInt(b[0]! & 1)) y = mod(-y);
    return { x, y };
  }
  return null;
}

export const scalarFromBytes = (b: Uint8Array) => mod(BigInt("0x" + (Buffer.from(b).toString("hex") || "0")), N);
