/** Hand-built GameStream input packets for tests: BE32 size ‖ LE32 magic ‖ body. */

export function packet(magic: number, body: Uint8Array | number[]): Uint8Array {
  const b = body instanceof Uint8Array ? body : Uint8Array.from(body);
  const out = new Uint8Array(8 + b.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, 4 + b.length, false);
  v.setUint32(4, magic >>> 0, true);
  out.set(b, 8);
  return out;
}

/** Little body writer: each call appends one field. */
export class BodyWriter {
  private bytes: number[] = [];
  u8(v: number) {
    this.bytes.push(v & 0xff);
    return this;
  }
  le16(v: number) {
    return this.u8(v).u8(v >> 8);
  }
  be16(v: number) {
    return this.u8(v >> 8).u8(v);
  }
  le32(v: number) {
    return this.le16(v & 0xffff).le16((v >>> 16) & 0xffff);
  }
  f32(v: number) {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    for (const x of b) this.u8(x);
    return this;
  }
  raw(b: Iterable<number>) {
    for (const x of b) this.u8(x);
    return this;
  }
  done(): Uint8Array {
    return Uint8Array.from(this.bytes);
  }
}

export const w = () => new BodyWriter();

/** Deterministic PRNG (mulberry32) for bounded fuzz loops. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
