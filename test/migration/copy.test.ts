/** The native copy (ffi/migrate.ts): holes, data regions, digests independent of layout, batches that never replace. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { closeSync, mkdirSync, openSync, readFileSync, statSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { NativeCopier } from "../../ffi/migrate.ts";
import { resolveNativePath } from "../../ffi/native.ts";
import { tempDir } from "../helpers/env.ts";

describe("native copy", () => {
  let dir: ReturnType<typeof tempDir>;
  let c: NativeCopier;
  beforeAll(() => {
    dir = tempDir("neuron-copy-");
    c = new NativeCopier(resolveNativePath({}));
  });
  afterAll(() => {
    c?.close();
    dir?.cleanup();
  });

  const sparse = (name: string) => {
    const p = join(dir.path, name);
    const fd = openSync(p, "w");
    writeSync(fd, Buffer.alloc(70_000, 0xab), 0, 70_000, 5 << 20);
    writeSync(fd, Buffer.from("tail"), 0, 4, (16 << 20) - 4);
    closeSync(fd);
    return p;
  };

  test("holes stay holes, content is byte-exact, the digests of source and read-back agree", () => {
    const src = sparse("s1");
    const s = openSync(src, "r");
    const d = openSync(join(dir.path, "d1"), "wx+");
    const r = c.copy(s, d, { verify: true, times: true });
    closeSync(s);
    closeSync(d);
    expect(r.ok).toBe(true);
    expect(r.digest).toMatch(/^[0-9a-f]{32}$/);
    expect(r.verifyDigest).toBe(r.digest);
    expect(r.readBytes).toBeLessThan(1 << 20);
    expect(readFileSync(join(dir.path, "d1")).equals(readFileSync(src))).toBe(true);
    expect(statSync(join(dir.path, "d1")).blocks * 512).toBeLessThan(1 << 20);
    expect(statSync(join(dir.path, "d1")).mtimeMs).toBe(statSync(src).mtimeMs);
  });

  test("the digest does not depend on where the holes are: a fully written copy has the same one", () => {
    const src = sparse("s2");
    const dense = join(dir.path, "dense");
    writeFileSync(dense, readFileSync(src));
    const a = openSync(src, "r");
    const b = openSync(dense, "r");
    expect(c.digest(a).digest).toBe(c.digest(b).digest);
    writeFileSync(dense, Buffer.concat([readFileSync(src).subarray(0, 100), Buffer.from([1]), readFileSync(src).subarray(101)]));
    expect(c.digest(openSync(dense, "r")).digest).not.toBe(c.digest(a).digest);
    closeSync(a);
    closeSync(b);
  });

  test("explicit regions: only those are read, the rest is a hole", () => {
    const src = sparse("s3");
    const s = openSync(src, "r");
    const d = openSync(join(dir.path, "d3"), "wx+");
    const r = c.copy(s, d, { verify: true, regions: [[5 << 20, 70_000]] });
    closeSync(s);
    closeSync(d);
    expect(r.ok).toBe(true);
    const out = readFileSync(join(dir.path, "d3"));
    expect(out.subarray(5 << 20, (5 << 20) + 70_000).every((x) => x === 0xab)).toBe(true);
    expect(out.subarray(out.length - 4).toString()).toBe("\0\0\0\0");
  });

  test("a batch copies on two threads, never replaces an existing target, reports an unreadable source", () => {
    const out = join(dir.path, "batch");
    mkdirSync(out);
    const srcs = Array.from({ length: 40 }, (_, i) => {
      const p = join(dir.path, `b${i}`);
      writeFileSync(p, Buffer.alloc(1000 + i * 5000, i));
      return p;
    });
    writeFileSync(join(out, "t5"), "mine");
    const jobs = srcs.map((p, i) => ({ src: p, part: join(out, `.part-${i}`), target: join(out, `t${i}`), mode: 0o640 }));
    jobs.push({ src: join(dir.path, "missing"), part: join(out, ".part-x"), target: join(out, "tx"), mode: 0o644 });
    const res = c.copyBatch(jobs, 2);
    expect(res[5]!.linkErrno).toBe(17);
    expect(readFileSync(join(out, "t5"), "utf8")).toBe("mine");
    expect(res.at(-1)!.ok).toBe(false);
    expect(res.at(-1)!.openErrno).toBe(2);
    for (const i of [0, 7, 39]) {
      expect(res[i]!.ok).toBe(true);
      expect(readFileSync(join(out, `t${i}`)).equals(readFileSync(srcs[i]!))).toBe(true);
      expect(statSync(join(out, `t${i}`)).mode & 0o777).toBe(0o640);
    }
  });

  test("bad arguments are refused", () => {
    expect(() => new NativeCopier(resolveNativePath({}), 1000)).toThrow("64 KiB");
    const r = c.copy(-1, -1);
    expect(r.ok).toBe(false);
    expect(r.status).toBe(-1);
  });
});

describe("extended attributes (Windows attributes and streams)", () => {
  let dir: ReturnType<typeof tempDir>;
  let c: NativeCopier;
  beforeAll(() => {
    dir = tempDir("neuron-xattr-");
    c = new NativeCopier(resolveNativePath({}));
  });
  afterAll(() => {
    c?.close();
    dir?.cleanup();
  });
  const get = (path: string, name: string) => {
    const r = Bun.spawnSync(["getfattr", "--only-values", "-h", "-n", name, path], { stdout: "pipe", stderr: "pipe" });
    return r.exitCode === 0 ? Buffer.from(r.stdout) : null;
  };

  test.skipIf(!Bun.which("setfattr"))("copy, read back, never replace; what cannot be kept says why", async () => {
    const { carryMeta } = await import("../../src/migration/ntfs-meta.ts");
    const src = join(dir.path, "src.txt");
    const dst = join(dir.path, "dst.txt");
    writeFileSync(src, "x");
    writeFileSync(dst, "x");
    expect(Bun.spawnSync(["setfattr", "-n", "user.Zone.Identifier", "-v", "[ZoneTransfer]", src]).exitCode).toBe(0);
    expect(c.copyXattr(src, "user.Zone.Identifier", dst, "user.ntfs.ads.Zone.Identifier")).toMatchObject({ ok: true, size: 14 });
    expect(get(dst, "user.ntfs.ads.Zone.Identifier")?.toString()).toBe("[ZoneTransfer]");
    // already there: not replaced
    expect(c.copyXattr(src, "user.Zone.Identifier", dst, "user.ntfs.ads.Zone.Identifier")).toMatchObject({ ok: false, stage: "write", errno: 17 });
    expect(c.copyXattr(src, "user.missing", dst, "user.ntfs.ads.missing")).toMatchObject({ ok: false, stage: "read", errno: 61 });
    expect(c.setXattr(dst, "user.ntfs.attrib", new Uint8Array([0, 0, 0, 2]))).toBe(0);
    expect(get(dst, "user.ntfs.attrib")?.toString("hex")).toBe("00000002");
    // a link: user attributes are refused there (EPERM), reported as not kept
    const link = join(dir.path, "link");
    Bun.spawnSync(["ln", "-s", "dst.txt", link]);
    const out = carryMeta(c, src, link, { attrib: 6, streams: [{ name: "Zone.Identifier", size: 14 }, { name: "big", size: 70_000 }] }, true);
    expect(out.attribKept).toBe(false);
    expect(out.attribWhy).toContain("EPERM");
    expect(out.streamsKept.map((s) => [s.name, s.kept])).toEqual([["Zone.Identifier", false], ["big", false]]);
    expect(out.streamsKept[1]!.why).toContain("64 KiB");
    // a driver that does not show streams (ntfs3): each one reported lost, with the reason
    const n3 = carryMeta(c, src, join(dir.path, "dst.txt"), { attrib: 0, streams: [{ name: "Zone.Identifier", size: 14 }] }, false);
    expect(n3.attribKept).toBeNull();
    expect(n3.streamsKept[0]).toMatchObject({ kept: false, why: expect.stringContaining("ntfs3") });
    expect(() => c.setXattr(dst, "user.big", new Uint8Array(70_000))).toThrow(RangeError);
  });
});
