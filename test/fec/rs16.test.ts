/**
 * Rs16Codec (ffi/rs16.ts) over the real libneuron: round trips through the native GF(2^16)
 * codec, loss patterns up to m, more than m losses, hostile parameters and indices.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { FecParameterError, RS16_ISAS, Rs16Codec, rs16TransformSize, type Rs16Isa } from "../../ffi/rs16.ts";
import { NativeCallError } from "../../ffi/native.ts";

const root = join(import.meta.dir, "..", "..");

beforeAll(() => {
  const r = Bun.spawnSync(["make", "-C", join(root, "native"), "-s"], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`make -C native failed: ${r.stderr.toString()}`);
});

/* Deterministic xorshift so failures reproduce. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

function fillData(codec: Rs16Codec, next: () => number): void {
  const data = codec.block.subarray(0, codec.k * codec.shardSize);
  for (let i = 0; i < data.length; i += 4) {
    const v = next();
    data[i] = v;
    data[i + 1] = v >>> 8;
    data[i + 2] = v >>> 16;
    data[i + 3] = v >>> 24;
  }
}

function pickLost(count: number, total: number, next: () => number): number[] {
  const set = new Set<number>();
  while (set.size < count) set.add(next() % total);
  return [...set];
}

/** Encodes random data, then for each pattern wipes the lost shards and checks exact recovery. */
function roundTrip(k: number, m: number, shardSize: number, patterns: number, seed: number): void {
  const next = rng(seed);
  using codec = Rs16Codec.create({ k, m, shardSize });
  fillData(codec, next);
  codec.encode();
  const original = codec.block.slice();
  for (let p = 0; p < patterns; p++) {
    const count = p === 0 ? m : 1 + (next() % m);
    const lost = pickLost(count, k + m, next);
    for (const i of lost) codec.shard(i).fill(0x5a);
    codec.decode(lost);
    expect(Buffer.compare(codec.block, original)).toBe(0);
  }
}

describe("Rs16Codec round trips", () => {
  test("smallest blocks: k=1 m=1, k=1 m=4, k=4 m=1", () => {
    roundTrip(1, 1, 64, 3, 1);
    roundTrip(1, 4, 128, 6, 2);
    roundTrip(4, 1, 64, 6, 3);
  });

  test("k + m just over powers of two", () => {
    roundTrip(60, 5, 64, 6, 4); // 65
    roundTrip(120, 9, 128, 6, 5); // 129
    roundTrip(250, 7, 64, 6, 6); // 257
    roundTrip(1000, 25, 64, 3, 7); // 1025
  });

  test("random shapes and loss patterns", () => {
    const next = rng(99);
    for (let i = 0; i < 25; i++) {
      const k = 1 + (next() % 400);
      const m = 1 + (next() % 120);
      const size = 64 * (1 + (next() % 8));
      roundTrip(k, m, size, 4, next());
    }
  });

  test("4000 + 800 shards of 1,408 bytes", () => {
    roundTrip(4000, 800, 1408, 2, 11);
  });

  test("the largest blocks: 65,535 shards, and parity counts whose power of two does not fit beside k", () => {
    roundTrip(65534, 1, 64, 1, 13);
    roundTrip(1, 32769, 64, 1, 14);
    roundTrip(30000, 35535, 64, 1, 15);
  });

  test("all data shards lost when m >= k; all parity lost", () => {
    using codec = Rs16Codec.create({ k: 8, m: 12, shardSize: 64 });
    fillData(codec, rng(12));
    codec.encode();
    const original = codec.block.slice();
    const dataLost = [0, 1, 2, 3, 4, 5, 6, 7];
    for (const i of dataLost) codec.shard(i).fill(0);
    codec.decode(dataLost);
    expect(Buffer.compare(codec.block, original)).toBe(0);
    const parityLost = Array.from({ length: 12 }, (_, j) => 8 + j);
    for (const i of parityLost) codec.shard(i).fill(0);
    codec.decode(parityLost);
    expect(Buffer.compare(codec.block, original)).toBe(0);
  });

  test("the encoding is systematic and deterministic; parity depends on every data byte", () => {
    using a = Rs16Codec.create({ k: 30, m: 6, shardSize: 128 });
    using b = Rs16Codec.create({ k: 30, m: 6, shardSize: 128 });
    fillData(a, rng(5));
    b.block.set(a.block.subarray(0, 30 * 128));
    a.encode();
    b.encode();
    expect(Buffer.compare(a.block, b.block)).toBe(0);
    b.block[17 * 128 + 33]! ^= 1;
    b.encode();
    for (let j = 0; j < 6; j++) expect(Buffer.compare(a.shard(30 + j), b.shard(30 + j))).not.toBe(0);
    expect(["gfni", "avx2", "portable"]).toContain(a.isa);
  });
});

describe("Rs16Codec work area", () => {
  test("sized N × shardSize with N the transform size of the layout", () => {
    // high rate: m' = 64, N = pow2(64 + 200) = 512
    using a = Rs16Codec.create({ k: 200, m: 40, shardSize: 1408 });
    expect(a.workBytes).toBe(512 * 1408);
    // low rate: k' = 8 < m' = 16, N = pow2(8 + 12) = 32
    using b = Rs16Codec.create({ k: 8, m: 12, shardSize: 64 });
    expect(b.workBytes).toBe(32 * 64);
    // neither fits: N = pow2(30000 + 35535) = 65536
    using c = Rs16Codec.create({ k: 30000, m: 35535, shardSize: 64 });
    expect(c.workBytes).toBe(65536 * 64);
    // the TypeScript pre-check computes the same size as the library
    for (const [k, m] of [[200, 40], [8, 12], [30000, 35535], [1, 1], [4000, 800], [1, 32769], [33, 31]] as const) {
      using codec = Rs16Codec.create({ k, m, shardSize: 64 });
      expect(codec.workBytes).toBe(rs16TransformSize(k, m) * 64);
    }
  });

  test("a work area over 1 GiB is refused before any native call, with the size in the message", () => {
    expect(() => Rs16Codec.create({ k: 60000, m: 100, shardSize: 1 << 20 })).toThrow(/work area of \d+ bytes/);
  });
});

describe("Rs16Codec kernel sets", () => {
  test("every kernel set this CPU runs gives the same parity and the same recovery", () => {
    const runnable: Rs16Isa[] = [];
    let reference: Uint8Array | null = null;
    for (const isa of RS16_ISAS) {
      let codec: Rs16Codec;
      try {
        codec = Rs16Codec.create({ k: 70, m: 21, shardSize: 192, isa });
      } catch (e) {
        expect((e as NativeCallError).errorCode).toBe("NEURON_EUNSUPPORTED");
        continue;
      }
      using c = codec;
      expect(c.isa).toBe(isa);
      runnable.push(isa);
      fillData(c, rng(77));
      c.encode();
      if (!reference) reference = c.block.slice();
      expect(Buffer.compare(c.block, reference)).toBe(0);
      const lost = pickLost(21, 91, rng(78));
      for (const i of lost) c.shard(i).fill(0);
      c.decode(lost);
      expect(Buffer.compare(c.block, reference)).toBe(0);
    }
    expect(runnable).toContain("portable");
  });

  test("an unknown kernel set is refused", () => {
    expect(() => Rs16Codec.create({ k: 2, m: 2, shardSize: 64, isa: "sse9" as Rs16Isa })).toThrow(FecParameterError);
  });
});

describe("Rs16Codec refusals", () => {
  test("more than m losses: NEURON_EUNRECOVERABLE and no shard written", () => {
    using codec = Rs16Codec.create({ k: 20, m: 5, shardSize: 64 });
    fillData(codec, rng(21));
    codec.encode();
    const lost = [0, 3, 7, 20, 22, 24];
    for (const i of lost) codec.shard(i).fill(0);
    const before = codec.block.slice();
    let err: unknown;
    try {
      codec.decode(lost);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NativeCallError);
    expect((err as NativeCallError).errorCode).toBe("NEURON_EUNRECOVERABLE");
    expect(Buffer.compare(codec.block, before)).toBe(0);
  });

  test("bad and duplicate indices are refused and change nothing", () => {
    using codec = Rs16Codec.create({ k: 10, m: 4, shardSize: 64 });
    fillData(codec, rng(31));
    codec.encode();
    const before = codec.block.slice();
    expect(() => codec.decode([14])).toThrow(FecParameterError);
    expect(() => codec.decode([-1])).toThrow(FecParameterError);
    expect(() => codec.decode([1.5])).toThrow(FecParameterError);
    expect(() => codec.decode([Number.NaN])).toThrow(FecParameterError);
    expect(() => codec.decode(new Array(15).fill(0))).toThrow(FecParameterError);
    let err: unknown;
    try {
      codec.decode([2, 3, 2]);
    } catch (e) {
      err = e;
    }
    expect((err as NativeCallError).errorCode).toBe("NEURON_EINVAL");
    expect(Buffer.compare(codec.block, before)).toBe(0);
    // still usable afterwards
    codec.shard(2).fill(0);
    codec.decode([2]);
    expect(Buffer.compare(codec.block, before)).toBe(0);
    codec.decode([]);
  });

  test("bad parameters: zero/huge sizes, not a multiple of 64, k + m over 65,535", () => {
    const bad: Array<[number, number, number]> = [
      [0, 4, 64],
      [4, 0, 64],
      [65535, 1, 64],
      [40000, 30000, 64],
      [4, 4, 0],
      [4, 4, 100],
      [4, 4, 1408 + 32],
      [4, 4, -64],
      [4.5, 4, 64],
      [4, 4, 2 ** 40],
    ];
    for (const [k, m, shardSize] of bad) expect(() => Rs16Codec.create({ k, m, shardSize })).toThrow(FecParameterError);
  });

  test("use after close is refused", () => {
    const codec = Rs16Codec.create({ k: 2, m: 2, shardSize: 64 });
    codec.close();
    codec.close();
    expect(() => codec.encode()).toThrow(FecParameterError);
    expect(() => codec.decode([0])).toThrow(FecParameterError);
  });
});
