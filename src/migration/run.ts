/**
 * The run: the journal (one row per file and folder, in SQLite) is written first, then each
 * pending row is done in order. A file is copied into a part file beside its target (native:
 * data regions only, zero blocks left as holes, digest of the source and of the target read
 * back), then hard-linked to its name — link(2) fails rather than replace, so nothing is ever
 * overwritten — and its part name removed once the row is committed. A run killed at any point
 * resumes from the journal: a part file still linked to its target was finished.
 */
import { closeSync, constants, fchmodSync, fchownSync, fstatSync, futimesSync, linkSync, lstatSync, mkdirSync, openSync, readdirSync, readSync, renameSync, chownSync, chmodSync, unlinkSync, utimesSync, writeSync } from "node:fs";
import { constants as osConstants } from "node:os";
import { basename, dirname, join } from "node:path";
import type { NativeCopier } from "../../ffi/migrate.ts";
import type { EntryInsert, EntryRow, MigrationsRepo } from "../db/repos/migrations.ts";
import type { ConflictPolicy, Progress } from "./model.ts";
import { renamed } from "./names.ts";
import type { Expanded, FileEntry } from "./plan.ts";
import type { TransformName } from "./rules.ts";
import { applyTransform } from "./transforms.ts";
import { carryMeta, type EntryMeta } from "./ntfs-meta.ts";

export interface RunDeps {
  repo: MigrationsRepo;
  copier: NativeCopier;
  /** Source root (mounted). */
  root: string;
  id: number;
  policy: ConflictPolicy;
  /** Owner for the files written under each home. */
  ownerOf(target: string): { uid: number; gid: number } | null;
  onProgress(p: Progress): void;
  /** Where a NTFS source's sparse files' data is (null: the file system says, or read it whole). */
  dataRegions?(sourceAbs: string, size: number, blocks: number): [number, number][] | null;
  /** Read sources past the page cache (O_DIRECT): a FUSE mount (ntfs-3g), where it saves a copy. */
  directSource?: boolean;
  /** The source shows named streams as user.<name> extended attributes (ntfs-3g). */
  streamsReadable?: boolean;
  /** Copy threads of the native batches (default 2). */
  threads?: number;
  /** Stops the run between files (it stays resumable). */
  signal?: AbortSignal;
}

export interface RunOutcome {
  copiedFiles: number;
  copiedBytes: number;
  verified: number;
  skipped: Record<string, number>;
  renamed: { from: string; to: string; reason: string }[];
  failed: { path: string; error: string }[];
  unreadable: { path: string; error: string }[];
  interrupted: boolean;
}

const MAX_TRANSFORM_BYTES = 16 << 20;
const ERRNO_NAMES = new Map(Object.entries(osConstants.errno).map(([k, v]) => [v, k]));
const errnoName = (n: number) => ERRNO_NAMES.get(n) ?? `errno ${n}`;
const PART = ".neuron-part-";

export function journalRows(id: number, exp: Expanded): EntryInsert[] {
  return exp.entries.map((e) => ({
    migrationId: id,
    item: e.item,
    kind: e.transform && e.kind === "file" ? "generated" : e.kind,
    sourcePath: e.source,
    targetPath: e.target,
    size: e.size,
    mode: e.mode,
    meta: e.meta ? JSON.stringify(e.meta) : null,
    note: e.renamed ? `renamed: ${e.renamed}` : e.transform ? `transform:${e.transform}` : null,
  }));
}

const partPath = (target: string, id: number, row: number) => join(dirname(target), `${PART}${id}-${row}`);

function sameInode(a: string, b: string): boolean {
  try {
    const x = lstatSync(a);
    const y = lstatSync(b);
    return x.ino === y.ino && x.dev === y.dev;
  } catch {
    return false;
  }
}

function exists(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

/** What each target folder holds, by lower-cased name: read once per folder, kept up to date by the run. */
class DirIndex {
  private readonly dirs = new Map<string, Map<string, string[]>>();

  private list(dir: string): Map<string, string[]> {
    let l = this.dirs.get(dir);
    if (!l) {
      l = new Map();
      try {
        for (const n of readdirSync(dir)) {
          if (n.startsWith(PART)) continue;
          const k = n.toLowerCase();
          const v = l.get(k);
          if (v) v.push(n);
          else l.set(k, [n]);
        }
      } catch {
        // absent
      }
      this.dirs.set(dir, l);
    }
    return l;
  }

  /** A folder the run just made: empty, no need to read it. */
  created(dir: string): void {
    this.dirs.set(dir, new Map());
  }

  add(path: string): void {
    const l = this.list(dirname(path));
    const n = basename(path);
    const v = l.get(n.toLowerCase());
    if (v) v.push(n);
    else l.set(n.toLowerCase(), [n]);
  }

  has(path: string): boolean {
    return this.list(dirname(path)).get(basename(path).toLowerCase())?.includes(basename(path)) ?? false;
  }

  /** Another name differing only in case is there. */
  collides(path: string): boolean {
    const n = basename(path);
    return (this.list(dirname(path)).get(n.toLowerCase()) ?? []).some((x) => x !== n);
  }
}


function transformOf(row: EntryRow): TransformName | null {
  const m = /^transform:(.+)$/.exec(row.note ?? "");
  return (m?.[1] as TransformName | undefined) ?? null;
}

export async function runJournal(deps: RunDeps, exp: Expanded): Promise<RunOutcome> {
  const { repo, copier, root, id } = deps;
  /** The row's attributes and streams carried onto target: the outcome for its journal row. */
  const meta = (row: EntryRow, target: string): string | undefined => {
    if (!row.meta) return undefined;
    const m = JSON.parse(row.meta) as EntryMeta;
    return JSON.stringify(carryMeta(copier, join(root, row.sourcePath), target, { attrib: m.attrib, streams: m.streams }, deps.streamsReadable ?? false));
  };
  if (repo.entryCount(id) === 0) repo.insertEntries(journalRows(id, exp));
  const byKey = new Map<string, FileEntry>(exp.entries.map((e) => [`${e.kind === "dir" ? "d" : "f"}:${e.source}:${e.target}`, e]));
  const homeOf = new Map([...exp.homes.values()].map((h) => [h.home, h]));
  const rows = repo.entries(id, ["pending"]);
  const all = repo.entries(id);
  // part files of rows a killed run committed but had not yet cleaned up
  for (const r of all) {
    // a folder journaled just before a kill, not yet made
    if (r.kind === "dir" && r.state === "done" && !exists(r.targetPath)) mkdirSync(r.targetPath, { recursive: true, mode: 0o755 });
    if (r.state === "pending" || r.kind === "dir" || r.kind === "displaced") continue;
    const p = partPath(r.targetPath, id, r.id);
    if (exists(p)) unlinkSync(p);
  }
  const out: RunOutcome = { copiedFiles: 0, copiedBytes: 0, verified: 0, skipped: {}, renamed: [], failed: [], unreadable: [], interrupted: false };
  const total = { files: all.filter((r) => r.kind !== "dir").length, bytes: all.filter((r) => r.kind !== "dir").reduce((a, r) => a + r.size, 0) };
  let filesDone = all.filter((r) => r.kind !== "dir" && r.state !== "pending").length;
  let bytesDone = all.filter((r) => r.kind !== "dir" && r.state !== "pending").reduce((a, r) => a + r.size, 0);
  const started = performance.now();
  const bytesAtStart = bytesDone;
  let lastReport = 0;
  const progress = (phase: Progress["phase"], current: string | null, force = false) => {
    const now = performance.now();
    if (!force && now - lastReport < 250) return;
    lastReport = now;
    const secs = (now - started) / 1000;
    const rate = secs > 0.2 ? (bytesDone - bytesAtStart) / secs : null;
    deps.onProgress({ id, phase, filesDone, filesTotal: total.files, bytesDone, bytesTotal: total.bytes, current, bytesPerSecond: rate, etaSeconds: rate && rate > 0 ? Math.round((total.bytes - bytesDone) / rate) : null });
  };
  const skip = (why: string) => (out.skipped[why] = (out.skipped[why] ?? 0) + 1);
  let pending: { id: number; set: Partial<EntryInsert> }[] = [];
  let parts: string[] = [];
  let lastCommit = performance.now();
  const commit = () => {
    repo.updateEntries(pending);
    pending = [];
    for (const p of parts) {
      try {
        unlinkSync(p);
      } catch {
        // already gone
      }
    }
    parts = [];
    lastCommit = performance.now();
  };
  const done = (row: EntryRow, set: Partial<EntryInsert>, part?: string) => {
    pending.push({ id: row.id, set });
    if (part) parts.push(part);
    if (pending.length >= 256 || performance.now() - lastCommit > 200) commit();
  };
  progress("copying", null, true);
  const index = new DirIndex();
  // plain files without a conflict go to the native batch (copied on several threads)
  const queue: { row: EntryRow; target: string; part: string; mode: number; owner: { uid: number; gid: number } | null; regions: [number, number][] | null }[] = [];
  let queuedBytes = 0;
  const flush = () => {
    if (!queue.length) return;
    const results = copier.copyBatch(
      queue.map((q) => ({ src: join(root, q.row.sourcePath), part: q.part, target: q.target, mode: q.mode, owner: q.owner, regions: q.regions, direct: deps.directSource })),
      deps.threads ?? 2,
    );
    results.forEach((r, i) => {
      const q = queue[i]!;
      filesDone++;
      if (r.ok && r.linkErrno === 0) {
        done(q.row, { state: "done", digest: r.digest, targetPath: q.target, meta: meta(q.row, q.target) }, q.part);
        out.copiedFiles++;
        out.copiedBytes += q.row.size;
        out.verified++;
        bytesDone += q.row.size;
      } else if (r.ok && r.linkErrno === 17) {
        done(q.row, { state: "skipped", note: "exists (EEXIST)" });
        skip("exists");
        bytesDone += q.row.size;
      } else if (r.openErrno || r.failedStage === "read") {
        const code = errnoName(r.openErrno || r.errno);
        done(q.row, { state: "failed", note: `unreadable: ${code}` });
        out.unreadable.push({ path: q.row.sourcePath, error: code });
      } else {
        const msg = r.ok ? `link failed: ${errnoName(r.linkErrno)}` : r.failedStage === "verify" && r.errno === 0 ? "verification failed: the copy's checksum differs" : `${r.failedStage} failed: ${errnoName(r.errno)}`;
        done(q.row, { state: "failed", note: msg });
        out.failed.push({ path: q.row.sourcePath, error: msg });
      }
    });
    progress("copying", queue[queue.length - 1]!.row.sourcePath);
    queue.length = 0;
    queuedBytes = 0;
  };
  try {
    for (const row of rows) {
      if (deps.signal?.aborted) {
        out.interrupted = true;
        break;
      }
      const owner = deps.ownerOf(row.targetPath);
      if (row.kind === "dir") {
        try {
          const st = lstatSync(row.targetPath);
          if (st.isDirectory()) done(row, { state: "kept", note: "existed" });
          else {
            done(row, { state: "failed", note: "a file is in the way" });
            out.failed.push({ path: row.targetPath, error: "a file of that name is in the way of a folder" });
          }
        } catch {
          const e = byKey.get(`d:${row.sourcePath}:${row.targetPath}`);
          try {
            const made: string[] = [];
            for (let p = dirname(row.targetPath); !exists(p); p = dirname(p)) made.unshift(p);
            // journaled before they are made: a run killed in between must not take them for the user's
            if (made.length) repo.insertEntries(made.map((p) => ({ migrationId: id, item: row.item, kind: "dir" as const, sourcePath: "", targetPath: p, state: "done" as const, note: "parent folder" })));
            repo.updateEntries([{ id: row.id, set: { state: "done" } }]);
            for (const p of made) {
              mkdirSync(p, { mode: 0o755 });
              if (owner) chownSync(p, owner.uid, owner.gid);
            }
            mkdirSync(row.targetPath, { mode: e?.mode ?? 0o755 });
            index.created(row.targetPath);
            index.add(row.targetPath);
            chmodSync(row.targetPath, e?.mode ?? 0o755);
            if (owner) chownSync(row.targetPath, owner.uid, owner.gid);
            const m = meta(row, row.targetPath);
            if (m) repo.updateEntries([{ id: row.id, set: { meta: m } }]);
          } catch (err) {
            done(row, { state: "failed", note: (err as Error).message });
            out.failed.push({ path: row.targetPath, error: (err as Error).message });
          }
        }
        continue;
      }
      progress("copying", row.sourcePath);
      const entry = byKey.get(`f:${row.sourcePath}:${row.targetPath}`);
      const mode = entry?.mode ?? 0o644;
      let target = row.targetPath;
      const part = partPath(target, id, row.id);
      // a run killed after the link but before its row was committed: the part is the target
      if (exists(part)) {
        if (sameInode(part, target)) {
          const fd = openSync(target, "r");
          const d = copier.digest(fd);
          closeSync(fd);
          done(row, { state: "done", digest: d.digest, meta: meta(row, target) }, part);
          filesDone++;
          bytesDone += row.size;
          out.copiedFiles++;
          out.copiedBytes += row.size;
          out.verified++;
          continue;
        }
        unlinkSync(part);
      }
      const srcAbs = join(root, row.sourcePath);
      if (row.kind === "file" && !index.has(target) && !index.collides(target)) {
        let regions: [number, number][] | null = null;
        if (deps.dataRegions && row.size > 1 << 20) {
          try {
            const st = lstatSync(srcAbs);
            regions = deps.dataRegions(srcAbs, st.size, st.blocks);
          } catch {
            regions = null;
          }
        }
        queue.push({ row, target, part, mode, owner, regions });
        index.add(target);
        queuedBytes += row.size;
        if (queue.length >= 128 || queuedBytes >= 64 << 20) flush();
        continue;
      }
      let src: number;
      try {
        src = openSync(srcAbs, constants.O_RDONLY | constants.O_NOFOLLOW);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
        done(row, { state: "failed", note: `unreadable: ${code}` });
        out.unreadable.push({ path: row.sourcePath, error: code });
        filesDone++;
        continue;
      }
      try {
        const sst = fstatSync(src);
        const transform = transformOf(row);
        let content: Buffer | null = null;
        let tmode = mode;
        if (transform) {
          if (sst.size > MAX_TRANSFORM_BYTES) throw new Error(`too large for the ${transform} transform`);
          const buf = Buffer.alloc(sst.size);
          let off = 0;
          while (off < buf.length) {
            const n = readSync(src, buf, off, buf.length - off, off);
            if (n <= 0) break;
            off += n;
          }
          const home = [...homeOf.keys()].find((h) => target === h || target.startsWith(h + "/")) ?? dirname(target);
          const h = homeOf.get(home);
          const rel = entry ? entry.source.split("/").slice(-1)[0]! : basename(row.sourcePath);
          const r = applyTransform(transform, buf.subarray(0, off), { windowsHome: h?.windowsHome ?? "C:/", home, downloads: h?.downloads ?? join(home, "Downloads"), rel });
          content = r.data;
          if (r.mode !== undefined) tmode = r.mode;
        }
        // what is there already
        const present = index.has(target) && exists(target);
        const collision = !present && index.collides(target);
        if (present || collision) {
          const identical = !collision && identicalTo(copier, target, src, content);
          if (identical) {
            done(row, { state: "skipped", note: "identical" });
            skip("identical");
            filesDone++;
            bytesDone += row.size;
            continue;
          }
          const policy = collision ? "rename" : deps.policy;
          if (policy === "skip") {
            done(row, { state: "skipped", note: "exists" });
            skip("exists");
            filesDone++;
            bytesDone += row.size;
            continue;
          }
          if (policy === "newer") {
            const tst = lstatSync(target);
            if (!tst.isFile() || tst.mtimeMs >= sst.mtimeMs) {
              done(row, { state: "skipped", note: "target newer" });
              skip("target newer");
              filesDone++;
              bytesDone += row.size;
              continue;
            }
            const aside = join(dirname(target), renamed(`${basename(target)}.before-migration-${id}`, (c) => exists(join(dirname(target), c))));
            renameSync(target, aside);
            repo.insertEntries([{ migrationId: id, item: row.item, kind: "displaced", sourcePath: "", targetPath: target, movedTo: aside, state: "done", note: "older file moved aside" }]);
            out.renamed.push({ from: target, to: aside, reason: "older file kept aside (newer policy)" });
          } else {
            // an earlier run's renamed copy of the same file counts as there already
            let twin = false;
            renamed(basename(target), (c) => {
              const p = join(dirname(target), c);
              if (!exists(p)) return false;
              if (identicalTo(copier, p, src, content)) twin = true;
              return true;
            });
            if (twin) {
              done(row, { state: "skipped", note: "identical" });
              skip("identical");
              filesDone++;
              bytesDone += row.size;
              continue;
            }
            const name = renamed(basename(target), (c) => exists(join(dirname(target), c)) || index.collides(join(dirname(target), c)));
            const to = join(dirname(target), name);
            out.renamed.push({ from: target, to, reason: collision ? "case collision" : "exists" });
            target = to;
          }
        }
        let finished: Partial<EntryInsert> = {};
        const dst = openSync(part, "wx+", tmode);
        try {
          if (content) {
            let off = 0;
            while (off < content.length) off += writeSync(dst, content, off, content.length - off, off);
            fchmodSync(dst, tmode);
            if (owner) fchownSync(dst, owner.uid, owner.gid);
            futimesSync(dst, sst.atime, sst.mtime);
            const d = copier.digest(dst);
            finished = { state: "done", digest: d.digest, targetPath: target, size: content.length };
          } else {
            const regions = deps.dataRegions?.(srcAbs, sst.size, sst.blocks) ?? undefined;
            const r = copier.copy(src, dst, { verify: true, times: true, owner: owner ?? undefined, regions });
            if (!r.ok) throw Object.assign(new Error(`${r.failedStage} failed (errno ${r.errno})`), { stage: r.failedStage });
            if (r.digest !== r.verifyDigest) throw new Error("verification failed: the copy's checksum differs");
            fchmodSync(dst, tmode);
            out.verified++;
            finished = { state: "done", digest: r.digest, targetPath: target };
          }
        } catch (err) {
          closeSync(dst);
          try {
            unlinkSync(part);
          } catch {
            // not there
          }
          throw err;
        }
        closeSync(dst);
        try {
          linkSync(part, target);
        } catch (err) {
          // appeared meanwhile: never replace it
          unlinkSync(part);
          done(row, { state: "skipped", note: `exists (${(err as NodeJS.ErrnoException).code})` });
          skip("exists");
          filesDone++;
          continue;
        }
        done(row, { ...finished, meta: meta(row, target) }, part);
        index.add(target);
        out.copiedFiles++;
        out.copiedBytes += row.size;
        filesDone++;
        bytesDone += row.size;
      } catch (err) {
        const stage = (err as { stage?: string }).stage;
        const msg = (err as Error).message;
        done(row, { state: "failed", note: msg });
        if (stage === "read") out.unreadable.push({ path: row.sourcePath, error: msg });
        else out.failed.push({ path: row.sourcePath, error: msg });
        filesDone++;
      } finally {
        closeSync(src);
      }
    }
    flush();
  } finally {
    commit();
  }
  // folders get their Windows times once their files are in
  progress("finishing", null, true);
  for (const row of repo.entries(id, ["done"])) {
    if (row.kind !== "dir") continue;
    try {
      const st = lstatSync(join(root, row.sourcePath));
      utimesSync(row.targetPath, st.atime, st.mtime);
    } catch {
      // best effort
    }
  }
  return out;
}

/**
 * True when the existing target holds what the copy would write: transformed content compared
 * byte for byte; a plain file by rsync's quick check (same size and nanosecond mtime: the copy
 * keeps the source's), else by digest.
 */
function identicalTo(copier: NativeCopier, target: string, src: number, content: Buffer | null): boolean {
  let t: number | null = null;
  try {
    const tst = lstatSync(target, { bigint: true });
    if (!tst.isFile()) return false;
    const sst = fstatSync(src, { bigint: true });
    const size = content ? BigInt(content.length) : sst.size;
    if (tst.size !== size) return false;
    t = openSync(target, constants.O_RDONLY | constants.O_NOFOLLOW);
    if (content) {
      const buf = Buffer.alloc(content.length);
      readSync(t, buf, 0, buf.length, 0);
      return buf.equals(content);
    }
    if (tst.mtimeNs === sst.mtimeNs) return true;
    return copier.digest(t).digest === copier.digest(src).digest;
  } catch {
    return false;
  } finally {
    if (t !== null) closeSync(t);
  }
}
