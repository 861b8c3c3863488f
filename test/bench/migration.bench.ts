/**
 * Migration copy throughput against `rsync -a` of the same tree in the same run:
 * `bun test/bench/migration.bench.ts`. Sources: a folder on the local file system, and (as root,
 * with ntfs-3g) the same tree in an NTFS image: mounted read-only already (both read that mount),
 * and not mounted (ours mounts it; rsync gets a fresh mount each round, the faster of two ways). Our run verifies every file
 * (digest of the source as read and of the target read back); rsync checks its transfer only.
 * Targets are on tmpfs (BENCH_DEST to change), so the figures are the tools' own cost rather than
 * the shared disk's writeback. Figures: MB/s (median of rounds, rounds alternate) and ours / rsync.
 */
import { mkdirSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDatabase } from "../../src/db/client.ts";
import { migrationsRepo } from "../../src/db/repos/migrations.ts";
import { MigrationSettingsSchema } from "../../src/migration/settings.ts";
import { MigrationService } from "../../src/migration/service.ts";
import { NTFS3G_ENV, NTFS3G_OPTIONS } from "../../src/migration/source.ts";
import { resolveNativePath } from "../../ffi/native.ts";

const SMALL = Number(process.env.BENCH_SMALL ?? 2000);
const SMALL_BYTES = 16 * 1024;
const LARGE = Number(process.env.BENCH_LARGE ?? 24);
const LARGE_BYTES = 8 * 1024 * 1024;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

if (!Bun.which("rsync")) {
  console.log("migration bench skipped: rsync is not installed (apt rsync)");
  process.exit(0);
}

const dir = mkdtempSync(join(tmpdir(), "neuron-bench-mig-"));
// targets on tmpfs by default: the figures are the tools' own cost, not the shared disk's writeback
const dest = mkdtempSync(join(process.env.BENCH_DEST ?? "/dev/shm", "neuron-bench-mig-dst-"));
const sh = (argv: string[], env?: Record<string, string>) => {
  const r = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe", env: env ? { ...process.env, ...env } : undefined });
  if (r.exitCode !== 0) throw new Error(`${argv.join(" ")}: ${r.stderr.toString()}`);
};

function fillTree(root: string): number {
  let bytes = 0;
  const docs = join(root, "Users/bench/Documents");
  for (let i = 0; i < SMALL; i++) {
    const d = join(docs, `small/${Math.floor(i / 200)}`);
    if (i % 200 === 0) mkdirSync(d, { recursive: true });
    const b = Buffer.alloc(SMALL_BYTES);
    for (let j = 0; j < b.length; j += 4) b.writeUInt32LE((i * 2654435761 + j) >>> 0, j);
    writeFileSync(join(d, `f${i}.dat`), b);
    bytes += b.length;
  }
  mkdirSync(join(docs, "large"), { recursive: true });
  const big = Buffer.alloc(LARGE_BYTES);
  for (let j = 0; j < big.length; j += 4) big.writeUInt32LE((j * 2246822519) >>> 0, j);
  for (let i = 0; i < LARGE; i++) {
    big.writeUInt32LE(i, 0);
    writeFileSync(join(docs, `large/l${i}.bin`), big);
    bytes += big.length;
  }
  return bytes;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const nativePath = resolveNativePath({});

async function oursOnce(source: string, round: number): Promise<{ planS: number; runS: number; files: number; cpuS: number }> {
  const home = join(dest, `home-${round}`);
  mkdirSync(home, { recursive: true });
  const state = join(dir, `state-${round}`);
  mkdirSync(state, { recursive: true });
  const database = openDatabase(join(state, "neuron.db"));
  const svc = new MigrationService({ repo: migrationsRepo(database.db), settings: MigrationSettingsSchema.parse(process.env.BENCH_THREADS ? { copyThreads: Number(process.env.BENCH_THREADS) } : {}), stateDir: state, etcDir: join(dir, "no-etc"), nativePath: () => nativePath });
  try {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const plan = await svc.plan({ source, user: "bench", target: home });
    const t1 = performance.now();
    const report = await svc.run(plan.id);
    const t2 = performance.now();
    if (report.failed.length || report.copied.files !== report.verified) throw new Error(`run failed: ${JSON.stringify(report.failed.slice(0, 3))}`);
    const c = process.cpuUsage(c0);
    return { planS: (t1 - t0) / 1000, runS: (t2 - t1) / 1000, files: report.copied.files, cpuS: (c.user + c.system) / 1e6 };
  } finally {
    svc.close();
    database.close();
    rmSync(home, { recursive: true, force: true });
    rmSync(state, { recursive: true, force: true });
  }
}

/** Wall seconds and CPU seconds (rsync's processes together, from /usr/bin/time-like rusage of the child tree). */
function rsyncOnce(tree: string, round: number): { wall: number; cpu: number } {
  const dst = join(dest, `rsync-${round}`);
  mkdirSync(dst, { recursive: true });
  const t0 = performance.now();
  const r = Bun.spawnSync(["sh", "-c", 'rsync -a "$0" "$1"; times', `${tree}/Users/bench/Documents/`, `${dst}/Documents/`], { stdout: "pipe", stderr: "pipe" });
  const wall = (performance.now() - t0) / 1000;
  if (r.exitCode !== 0) throw new Error(`rsync: ${r.stderr.toString()}`);
  // `times` prints the shell's and its children's user/system time: the second line is rsync's
  const child = r.stdout.toString().trim().split("\n").at(-1) ?? "";
  const cpu = child.split(/\s+/).map((t) => {
    const m = /^(\d+)m([\d.]+)s$/.exec(t);
    return m ? Number(m[1]) * 60 + Number(m[2]) : 0;
  }).reduce((a, b) => a + b, 0);
  rmSync(dst, { recursive: true, force: true });
  return { wall, cpu };
}

/** One way of giving rsync the tree: where it reads, and what happens (untimed) before each round. */
interface RsyncVariant {
  label: string;
  tree: string;
  before?: () => void;
  after?: () => void;
}

/** rsync's variants and ours alternate round by round; the ratios are against the best rsync variant. */
async function measure(label: string, source: string, bytes: number, variants: RsyncVariant[]) {
  // warm every reader once (page cache, FUSE), then alternate
  for (const v of variants) {
    v.before?.();
    rsyncOnce(v.tree, -1);
    v.after?.();
  }
  await oursOnce(source, -1);
  const rs = variants.map(() => [] as number[]);
  const rsCpu = variants.map(() => [] as number[]);
  const ours: number[] = [];
  const oursCpu: number[] = [];
  const runs: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    variants.forEach((v, k) => {
      v.before?.();
      const x = rsyncOnce(v.tree, r);
      v.after?.();
      rs[k]!.push(x.wall);
      rsCpu[k]!.push(x.cpu);
    });
    const o = await oursOnce(source, r);
    ours.push(o.planS + o.runS);
    oursCpu.push(o.cpuS);
    runs.push(o.runS);
  }
  const mb = bytes / 1e6;
  const rates = rs.map((x) => mb / median(x));
  const best = rates.indexOf(Math.max(...rates));
  const rsync = rates[best]!;
  const whole = mb / median(ours);
  const runOnly = mb / median(runs);
  const cpuRatio = median(rsCpu[best]!) / median(oursCpu);
  if (variants.length > 1) for (const [k, v] of variants.entries()) console.log(`${label.padEnd(22)} rsync -a ${rates[k]!.toFixed(0).padStart(5)} MB/s  (${v.label})${k === best ? "  best: the baseline" : ""}`);
  console.log(`${label.padEnd(22)} rsync -a ${rsync.toFixed(0).padStart(5)} MB/s   ours (plan+run, verified) ${whole.toFixed(0).padStart(5)} MB/s = ${(whole / rsync).toFixed(2)}x   run alone ${runOnly.toFixed(0).padStart(5)} MB/s = ${(runOnly / rsync).toFixed(2)}x   MB per CPU-second: rsync ${(mb / median(rsCpu[best]!)).toFixed(0)}, ours ${(mb / median(oursCpu)).toFixed(0)} = ${cpuRatio.toFixed(2)}x`);
}

try {
  const folder = join(dir, "C");
  const bytes = fillTree(folder);
  console.log(`tree: ${SMALL} x ${SMALL_BYTES / 1024} KiB + ${LARGE} x ${LARGE_BYTES >> 20} MiB = ${(bytes / 1e6).toFixed(0)} MB; median of ${ROUNDS} rounds`);
  await measure("folder (ext4)", folder, bytes, [{ label: "the folder", tree: folder }]);
  if (process.getuid?.() === 0 && Bun.which("mkntfs") && Bun.which("ntfs-3g")) {
    const img = join(dir, "ntfs.img");
    writeFileSync(img, "");
    truncateSync(img, Math.ceil((bytes * 1.3) / 1e6 + 64) * 1e6);
    sh(["mkntfs", "-F", "-Q", "-q", img]);
    const fill = join(dir, "fill");
    mkdirSync(fill);
    sh(["ntfs-3g", img, fill]);
    try {
      fillTree(fill);
    } finally {
      sh(["umount", fill]);
    }
    const view = join(dir, "view");
    mkdirSync(view);
    // 1. the volume mounted read-only already (a plain `ntfs-3g -o ro`, kept for all rounds):
    //    rsync reads it; ours, given the image, finds that mount and reads it there
    const plain = join(dir, "view-plain");
    mkdirSync(plain);
    sh(["ntfs-3g", "-o", "ro", img, plain]);
    try {
      await measure("NTFS, mounted ro", img, bytes, [{ label: "the mount", tree: plain }]);
    } finally {
      sh(["umount", plain]);
    }
    // 2. nothing mounted: ours mounts the image itself for each round's plan and run (kept
    //    between the two); rsync gets a fresh mount each round (untimed, gone before ours runs)
    //    two ways, plain and made as ours (same options and daemon tuning), the faster being the
    //    baseline
    const mount = (options: string, env?: Record<string, string>) => () => sh(["ntfs-3g", "-o", options, img, view], env);
    const unmount = () => sh(["umount", view]);
    await measure("NTFS, ours mounts", img, bytes, [
      { label: "a fresh ntfs-3g -o ro mount each round", tree: view, before: mount("ro"), after: unmount },
      { label: "a fresh mount made as ours each round", tree: view, before: mount(NTFS3G_OPTIONS, NTFS3G_ENV), after: unmount },
    ]);
  } else console.log("NTFS image: skipped (needs root, mkntfs and ntfs-3g)");
} finally {
  rmSync(dir, { recursive: true, force: true });
  rmSync(dest, { recursive: true, force: true });
}
