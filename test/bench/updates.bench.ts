/**
 * Snapshot create and rollback time on btrfs at 1k (baseline), 10k and 100k
 * files in the root: `bun test/bench/updates.bench.ts` (root, loop devices).
 * btrfs snapshots are copy-on-write, so both must stay flat; a plain copy of
 * the same tree is printed beside them for contrast. Prints figures only.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BtrfsBackend } from "../../src/snapshots/btrfs.ts";
import { btrfsMissing, loopMount, sh } from "../updates/fixture.ts";
import { rollbackTo } from "../../src/updates/rollback.ts";
import type { SnapshotRow } from "../../src/db/repos/updates.ts";

const why = btrfsMissing();
if (why) {
  console.log(`updates bench skipped: ${why}`);
  process.exit(0);
}

const SIZES = [1_000, 10_000, 100_000];
const ROUNDS = 7;
const dir = sh(["mktemp", "-d", "/tmp/neuron-bench-upd-XXXXXX"]).stdout.trim();
const fs = loopMount("btrfs", 4096, join(dir, "mnt"), dir);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const rows: { n: number; create: number; rollback: number; copy: number | null }[] = [];
try {
  for (const n of SIZES) {
    const root = join(fs.mnt, `root-${n}`);
    sh(["btrfs", "subvolume", "create", root]);
    for (let d = 0; d < n / 1000; d++) {
      const sub = join(root, "usr", "share", `d${d}`);
      mkdirSync(sub, { recursive: true });
      for (let i = 0; i < 1000; i++) writeFileSync(join(sub, `f${i}`), `file ${d}/${i}\n`);
    }
    sh(["sync"]);
    const backend = new BtrfsBackend(root, "btrfs");
    await backend.create({ kind: "manual", description: "warm-up" });
    const create: number[] = [];
    const rollback: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      let t0 = performance.now();
      const s = await backend.create({ kind: "pre", description: `round ${r}` });
      create.push(performance.now() - t0);
      const row = { id: r + 1, backendRef: s.ref, deletedAt: null, bootFiles: "[]", bootStore: null } as unknown as SnapshotRow;
      t0 = performance.now();
      await rollbackTo({ backend, target: row, root, bootDir: join(root, "boot"), keepOut: [], description: "bench" });
      rollback.push(performance.now() - t0);
    }
    sh(["btrfs", "subvolume", "set-default", "5", root]);
    let copy: number | null = null;
    if (n <= 10_000) {
      const t0 = performance.now();
      sh(["cp", "-a", "--reflink=never", join(root, "usr"), join(fs.mnt, `copy-${n}`)]);
      copy = performance.now() - t0;
    }
    rows.push({ n, create: median(create), rollback: median(rollback), copy });
  }
} finally {
  fs.cleanup();
  sh(["rm", "-rf", dir]);
}

const base = rows[0]!;
console.log(`btrfs snapshot create / rollback (median of ${ROUNDS}; ratio against ${base.n} files in the same run)`);
console.log(`${"files".padStart(8)}  ${"create ms".padStart(10)} ${"x".padStart(6)}  ${"rollback ms".padStart(12)} ${"x".padStart(6)}  ${"cp -a ms".padStart(10)}`);
for (const r of rows)
  console.log(
    `${String(r.n).padStart(8)}  ${r.create.toFixed(1).padStart(10)} ${(r.create / base.create).toFixed(2).padStart(6)}  ${r.rollback.toFixed(1).padStart(12)} ${(r.rollback / base.rollback).toFixed(2).padStart(6)}  ${r.copy === null ? "-".padStart(10) : r.copy.toFixed(1).padStart(10)}`,
  );
