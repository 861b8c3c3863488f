/**
 * GF(2^8) Reed–Solomon through ffi/rs8.ts against the real libneuron: known vectors, an
 * independent TypeScript reference of the Moonlight matrix definition, erasure properties for
 * every kernel this machine runs, and hostile input.
 */
import { describe, expect, test } from "bun:test";
import { Rs8Codec, Rs8Error, rs8Library, type Rs8KernelName } from "../../ffi/rs8.ts";

const lib = rs8Library();
const kernels: Rs8KernelName[] = lib.availableKernels();

/* ---- independent reference: shift-and-add multiply under 0x11D, brute-force inverse ---- */
function refMul(a: number, b: number): number {
  let r = 0;
  while (b) {
    if (b & 1) r ^= a;
    a <<= 1;
    if (a & 0x100) a ^= 0x11d;
    b >>= 1;
  }
  return r;
}
const refInv: number[] = [0];
for (let a = 1; a < 256; a++) {
  for (let x = 1; x < 256; x++) if (refMul(a, x) === 1) refInv[a] = x;
}
function refMatrix(k: number, m: number): number[][] {
  return Array.from({ length: m }, (_, j) => Array.from({ length: k }, (_, i) => refInv[(m + i) ^ j]!));
}
function refEncode(matrix: number[][], block: Uint8Array, k: number, size: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(matrix.length * size);
  matrix.forEach((row, j) => {
    for (let i = 0; i < k; i++) {
      const c = row[i]!;
      for (let b = 0; b < size; b++) out[j * size + b]! ^= refMul(c, block[i * size + b]!);
    }
  });
  return out;
}

let seed = 0x12345678;
function rnd(n: number): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) % n;
}
function randomBlock(k: number, m: number, size: number): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array((k + m) * size);
  for (let i = 0; i < k * size; i++) b[i] = rnd(256);
  return b;
}
function errorCode(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof Rs8Error) return e.errorCode;
    throw e;
  }
  return "no error";
}

describe("field and matrix", () => {
  test("INV[2..5] = 8e f4 47 a7 and the whole inverse table", () => {
    expect([2, 3, 4, 5].map((a) => lib.gfInv(a))).toEqual([0x8e, 0xf4, 0x47, 0xa7]);
    for (let a = 0; a < 256; a++) expect(lib.gfInv(a)).toBe(refInv[a]!);
    expect(lib.gfMul(0x80, 2)).toBe(0x1d);
  });

  test("parity matrix is INV[(m + i) XOR j] for several shapes", () => {
    for (const [k, m] of [[3, 2], [10, 4], [128, 32], [200, 55], [1, 254]] as const) {
      using codec = Rs8Codec.create(k, m);
      expect(Array.from(codec.matrix())).toEqual(refMatrix(k, m).flat());
    }
  });

  test("kernel names", () => {
    expect([0, 1, 2, 3, 4, 5, 99].map((id) => lib.kernelName(id))).toEqual([
      "auto",
      "portable",
      "avx2",
      "gfni-avx2",
      "gfni-avx512",
      "isal",
      "unknown",
    ]);
    expect(kernels).toContain("portable");
  });

  test("auto picks the fastest own kernel this CPU runs (never the ISA-L baseline)", () => {
    using codec = Rs8Codec.create(4, 2);
    expect(codec.kernel).toBe(kernels.filter((k) => k !== "isal").at(-1)!);
  });

  test("audio codec uses {77 40 38 0e / c7 a7 0d 6c}", () => {
    using codec = Rs8Codec.audio();
    expect(Array.from(codec.matrix())).toEqual([0x77, 0x40, 0x38, 0x0e, 0xc7, 0xa7, 0x0d, 0x6c]);
  });
});

for (const k of ["portable", "avx2", "gfni-avx2", "gfni-avx512", "isal"] as const) {
  if (!kernels.includes(k))
    test.skip(`kernel ${k}: this machine lacks it (${k === "isal" ? "libisal.so.2 not installed" : "CPU has no such ISA"})`, () => {});
}

describe.each(kernels)("kernel %s", (kernel) => {
  test("hand-derived vectors", () => {
    // k=3, m=2, d0 = 01 02, d1 = 01 00, d2 = 00 01 (see native/tests/test_rs8.c for the arithmetic)
    using codec = Rs8Codec.create(3, 2, { kernel });
    expect(codec.kernel).toBe(kernel);
    const block = new Uint8Array([0x01, 0x02, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0]);
    codec.encodeBlock(block, 2);
    expect(Array.from(block.subarray(6))).toEqual([0x7a, 0x46, 0x7a, 0x52]);
    // audio: d = 01 | 02 | 00 | 00 -> p0 = 77 ^ 40*2 = f7, p1 = c7 ^ a7*2 = 94
    using audio = Rs8Codec.audio({ kernel });
    const a = new Uint8Array([0x01, 0x02, 0x00, 0x00, 0, 0]);
    audio.encodeBlock(a, 1);
    expect(Array.from(a.subarray(4))).toEqual([0xf7, 0x94]);
  });

  test("parity equals the reference for random k, m and sizes", () => {
    for (let iter = 0; iter < 12; iter++) {
      const k = 1 + rnd(60);
      const m = 1 + rnd(20);
      const size = [1, 17, 63, 64, 65, 200, 1408][rnd(7)]!;
      using codec = Rs8Codec.create(k, m, { kernel });
      const block = randomBlock(k, m, size);
      codec.encodeBlock(block, size);
      expect(block.subarray(k * size)).toEqual(refEncode(refMatrix(k, m), block, k, size));
    }
  });

  test("every loss pattern up to m recovers the exact bytes; more than m is refused", () => {
    for (const [k, m, size] of [[4, 2, 33], [3, 4, 64], [6, 3, 100]] as const) {
      using codec = Rs8Codec.create(k, m, { kernel });
      const orig = randomBlock(k, m, size);
      codec.encodeBlock(orig, size);
      const n = k + m;
      for (let mask = 1; mask < 1 << n; mask++) {
        const lost: number[] = [];
        for (let i = 0; i < n; i++) if (mask & (1 << i)) lost.push(i);
        const block = orig.slice();
        for (const i of lost) block.fill(0x5a, i * size, (i + 1) * size);
        const damaged = block.slice();
        if (lost.length <= m) {
          codec.decodeBlock(block, size, lost.reverse());
          expect(block).toEqual(orig);
        } else {
          expect(errorCode(() => codec.decodeBlock(block, size, lost))).toBe("RS8_UNRECOVERABLE");
          expect(block).toEqual(damaged);
        }
      }
    }
  });

  test("random large blocks and loss sets", () => {
    for (let iter = 0; iter < 8; iter++) {
      const k = 1 + rnd(200);
      const m = 1 + rnd(Math.min(55, 255 - k));
      const size = 1 + rnd(1500);
      using codec = Rs8Codec.create(k, m, { kernel });
      const orig = randomBlock(k, m, size);
      codec.encodeBlock(orig, size);
      const order = Array.from({ length: k + m }, (_, i) => i).sort(() => rnd(3) - 1);
      const lost = order.slice(0, rnd(m + 1));
      const block = orig.slice();
      for (const i of lost) block.fill(0, i * size, (i + 1) * size);
      codec.decodeBlock(block, size, lost);
      expect(block).toEqual(orig);
    }
  });
});

describe("layouts", () => {
  test("separate shard arrays", () => {
    using codec = Rs8Codec.create(5, 3);
    const shards = Array.from({ length: 8 }, (_, i) => new Uint8Array(77).map(() => (i < 5 ? rnd(256) : 0)));
    codec.encode(shards);
    const orig = shards.map((s) => s.slice());
    for (const i of [0, 4, 6]) shards[i]!.fill(0);
    codec.decode(shards, [6, 0, 4]);
    expect(shards).toEqual(orig);
  });

  test("shards inside packets (stride > shard size) leave the bytes between them alone", () => {
    using codec = Rs8Codec.create(6, 2);
    const stride = 120;
    const size = 100;
    const block = new Uint8Array(8 * stride).map(() => rnd(256));
    codec.encodeBlock(block, size, stride);
    const orig = block.slice();
    block.fill(0, 3 * stride, 3 * stride + size);
    block.fill(0, 7 * stride, 7 * stride + size);
    codec.decodeBlock(block, size, [3, 7], stride);
    expect(block).toEqual(orig);
  });

  test("audio codec recovers any two losses", () => {
    using codec = Rs8Codec.audio();
    const orig = randomBlock(4, 2, 240);
    codec.encodeBlock(orig, 240);
    for (let a = 0; a < 6; a++)
      for (let b = a + 1; b < 6; b++) {
        const block = orig.slice();
        block.fill(0, a * 240, (a + 1) * 240);
        block.fill(0, b * 240, (b + 1) * 240);
        codec.decodeBlock(block, 240, [b, a]);
        expect(block).toEqual(orig);
      }
  });
});

describe("hostile input", () => {
  test("bad shapes and kernels are refused at creation", () => {
    expect(errorCode(() => Rs8Codec.create(0, 2))).toBe("RS8_INVALID_ARGUMENT");
    expect(errorCode(() => Rs8Codec.create(2, 0))).toBe("RS8_INVALID_ARGUMENT");
    expect(errorCode(() => Rs8Codec.create(200, 56))).toBe("RS8_INVALID_ARGUMENT");
    expect(errorCode(() => Rs8Codec.create(1.5, 2))).toBe("RS8_INVALID_ARGUMENT");
    expect(errorCode(() => Rs8Codec.create(Number.NaN, 2))).toBe("RS8_INVALID_ARGUMENT");
    expect(errorCode(() => Rs8Codec.create(2 ** 32 + 3, 2))).toBe("RS8_INVALID_ARGUMENT");
    expect(errorCode(() => Rs8Codec.create(4, 2, { kernel: "sse9" as Rs8KernelName }))).toBe("RS8_INVALID_ARGUMENT");
    expect(errorCode(() => Rs8Codec.audio({ kernel: "nope" as Rs8KernelName }))).toBe("RS8_INVALID_ARGUMENT");
    expect(errorCode(() => Rs8Codec.create(4, 2, { kernel: "constructor" as Rs8KernelName }))).toBe("RS8_INVALID_ARGUMENT");
    expect(errorCode(() => Rs8Codec.create(4, 2, { kernel: 3 as unknown as Rs8KernelName }))).toBe("RS8_INVALID_ARGUMENT");
  });

  test("bad blocks, sizes and loss lists: clear error, block unchanged", () => {
    using codec = Rs8Codec.create(4, 3);
    const block = randomBlock(4, 3, 64);
    codec.encodeBlock(block, 64);
    const before = block.slice();
    const cases: [string, () => void][] = [
      ["size 0", () => codec.encodeBlock(block, 0)],
      ["huge size", () => codec.encodeBlock(block, 2 ** 40)],
      ["fractional size", () => codec.encodeBlock(block, 6.5)],
      ["block too short", () => codec.encodeBlock(block.subarray(1), 64)],
      ["stride < size", () => codec.encodeBlock(block, 64, 32)],
      ["stride overflows", () => codec.encodeBlock(block, 64, 2 ** 60)],
      ["index out of range", () => codec.decodeBlock(block, 64, [7])],
      ["negative index", () => codec.decodeBlock(block, 64, [-1])],
      ["fractional index", () => codec.decodeBlock(block, 64, [1.5])],
      ["NaN index", () => codec.decodeBlock(block, 64, [Number.NaN])],
      ["duplicate index", () => codec.decodeBlock(block, 64, [2, 5, 2])],
      ["too many indices", () => codec.decodeBlock(block, 64, new Array(300).fill(0))],
      ["not an array", () => codec.decodeBlock(block, 64, 3 as unknown as number[])],
      ["wrong shard count", () => codec.encode([new Uint8Array(4)])],
      ["uneven shards", () => codec.encode(Array.from({ length: 7 }, (_, i) => new Uint8Array(i === 3 ? 5 : 4)))],
      ["empty shards", () => codec.encode(Array.from({ length: 7 }, () => new Uint8Array(0)))],
    ];
    for (const [what, fn] of cases) {
      expect(errorCode(fn), what).toBe("RS8_INVALID_ARGUMENT");
      expect(block, what).toEqual(before);
    }
    expect(errorCode(() => codec.decodeBlock(block, 64, [0, 1, 2, 3]))).toBe("RS8_UNRECOVERABLE");
    expect(block).toEqual(before);
    codec.decodeBlock(block, 64, []); // nothing lost: no-op
    expect(block).toEqual(before);
  });

  test("a closed codec refuses work; close is idempotent", () => {
    const codec = Rs8Codec.create(2, 2);
    codec.close();
    codec.close();
    expect(codec.closed).toBe(true);
    expect(errorCode(() => codec.encodeBlock(new Uint8Array(4), 1))).toBe("RS8_CLOSED");
    expect(errorCode(() => codec.matrix())).toBe("RS8_CLOSED");
  });
});
