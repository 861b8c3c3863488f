/**
 * Transactional file edits under a target root. Every file is written to a
 * temporary file in its directory, fsynced and renamed over the original, so a
 * reader sees the old or the new bytes, never a mix. Before anything is
 * written the previous bytes are saved in a backup directory with a manifest;
 * a failure half-way restores what was already written; rollback puts back
 * exactly the previous bytes (and removes files and directories that did not
 * exist) after checking nobody changed them since.
 */
import { createHash, randomBytes } from "node:crypto";
import {
  closeSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmdirSync,
  statSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { dirname, join, relative, sep } from "node:path";
import { z } from "zod";
import { AppError } from "../errors.ts";

export interface FileEdit {
  /** Absolute path on the target system ("/etc/modprobe.d/vfio.conf"). */
  path: string;
  before: string | null;
  after: string | null;
  mode: number;
}

const ManifestEntry = z.object({
  path: z.string().regex(/^\/[^\0]*$/),
  existed: z.boolean(),
  mode: z.number().int().min(0).max(0o7777),
  sha256Before: z.string().nullable(),
  sha256After: z.string().nullable(),
  /** File in the backup directory holding the previous bytes. */
  backupFile: z.string().nullable(),
});
export const Manifest = z.object({
  version: z.literal(1),
  targetRoot: z.string(),
  createdAt: z.string(),
  files: z.array(ManifestEntry),
  /** Directories created for new files (deepest last), removed on rollback when empty. */
  createdDirs: z.array(z.string()),
});
export type Manifest = z.infer<typeof Manifest>;

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

function currentBytes(abs: string): string | null {
  try {
    const st = lstatSync(abs);
    if (!st.isFile()) throw new AppError("UNSUPPORTED_CONFIG", `${abs} is not a regular file`, { status: 422 });
    return readFileSync(abs, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return null;
    throw err;
  }
}

/** Resolves a target path and refuses anything that escapes the root through symlinked directories. */
export function targetPath(targetRoot: string, path: string): string {
  if (!path.startsWith("/") || path.split("/").some((p) => p === ".." || p === "."))
    throw new AppError("INVALID_INPUT", `bad target path ${JSON.stringify(path)}`, { status: 422 });
  const abs = join(targetRoot, path);
  let dir = dirname(abs);
  while (true) {
    try {
      const real = realpathSync(dir);
      const rootReal = realpathSync(targetRoot);
      const rel = relative(rootReal, real);
      if (rel.startsWith("..") || rel.startsWith(sep))
        throw new AppError("UNSUPPORTED_CONFIG", `${path}: its directory resolves outside the target root`, { status: 422 });
      return abs;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      const up = dirname(dir);
      if (up === dir) return abs;
      dir = up;
    }
  }
}

/** Atomic replace: temp file in the same directory, fsync, chmod, rename, fsync the directory. */
export function writeAtomic(abs: string, text: string, mode: number): void {
  const tmp = join(dirname(abs), `.${abs.split("/").pop()}.neuron-${randomBytes(6).toString("hex")}.tmp`);
  const fd = openSync(tmp, "wx", mode);
  try {
    const buf = Buffer.from(text, "utf8");
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    unlinkSync(tmp);
    throw err;
  }
  closeSync(fd);
  try {
    renameSync(tmp, abs);
  } catch (err) {
    unlinkSync(tmp);
    throw err;
  }
  syncDir(dirname(abs));
}

function syncDir(dir: string) {
  try {
    const fd = openSync(dir, "r");
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    /* some filesystems refuse directory fsync; the rename is still atomic */
  }
}

function mkdirs(abs: string, created: string[]) {
  const missing: string[] = [];
  let d = dirname(abs);
  while (true) {
    try {
      if (!statSync(d).isDirectory()) throw new AppError("UNSUPPORTED_CONFIG", `${d} is not a directory`, { status: 422 });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      missing.unshift(d);
      d = dirname(d);
    }
  }
  for (const m of missing) {
    mkdirSync(m, { mode: 0o755 });
    created.push(m);
  }
}

export interface ApplyOutcome {
  backupDir: string;
  manifest: Manifest;
}

/**
 * Applies `edits` under `targetRoot`. Refuses (changing nothing) when a file no
 * longer holds the bytes the plan was computed from.
 */
export function applyEdits(targetRoot: string, backupBase: string, edits: FileEdit[]): ApplyOutcome {
  const abs = edits.map((e) => targetPath(targetRoot, e.path));
  edits.forEach((e, i) => {
    if (currentBytes(abs[i]!) !== e.before)
      throw new AppError("CONFLICT", `${e.path} changed since the plan was computed; plan again`, { status: 409 });
  });
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const backupDir = join(backupBase, `${stamp}-${randomBytes(4).toString("hex")}`);
  mkdirSync(backupDir, { recursive: true, mode: 0o700 });
  const manifest: Manifest = { version: 1, targetRoot, createdAt: new Date().toISOString(), files: [], createdDirs: [] };
  edits.forEach((e, i) => {
    let mode = e.mode;
    let backupFile: string | null = null;
    if (e.before !== null) {
      mode = lstatSync(abs[i]!).mode & 0o7777;
      backupFile = `file-${i}`;
      writeAtomic(join(backupDir, backupFile), e.before, 0o600);
    }
    manifest.files.push({
      path: e.path,
      existed: e.before !== null,
      mode,
      sha256Before: e.before === null ? null : sha256(e.before),
      sha256After: e.after === null ? null : sha256(e.after),
      backupFile,
    });
  });
  writeAtomic(join(backupDir, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n", 0o600);

  const done: number[] = [];
  try {
    edits.forEach((e, i) => {
      if (e.after === null) unlinkSync(abs[i]!);
      else {
        mkdirs(abs[i]!, manifest.createdDirs);
        writeAtomic(abs[i]!, e.after, manifest.files[i]!.mode);
      }
      done.push(i);
    });
  } catch (err) {
    // Undo what was written, newest first, then report the original failure.
    for (const i of done.reverse()) restoreOne(targetRoot, backupDir, manifest.files[i]!);
    removeCreatedDirs(manifest.createdDirs);
    throw new AppError("APPLY_FAILED", `writing the configuration failed and was undone: ${(err as Error).message}`, { status: 500, cause: err });
  }
  writeAtomic(join(backupDir, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n", 0o600);
  return { backupDir, manifest };
}

function restoreOne(targetRoot: string, backupDir: string, f: Manifest["files"][number]) {
  const abs = targetPath(targetRoot, f.path);
  if (f.existed) writeAtomic(abs, readFileSync(join(backupDir, f.backupFile!), "utf8"), f.mode);
  else if (currentBytes(abs) !== null) unlinkSync(abs);
}

function removeCreatedDirs(dirs: string[]) {
  for (const d of [...dirs].reverse()) {
    try {
      rmdirSync(d);
    } catch {
      /* not empty: something else lives there now; keep it */
    }
  }
}

export function readManifest(backupDir: string): Manifest {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(join(backupDir, "manifest.json"), "utf8"));
  } catch (err) {
    throw new AppError("BACKUP_INVALID", `backup ${backupDir}: cannot read its manifest (${(err as Error).message})`, { status: 409 });
  }
  const m = Manifest.safeParse(raw);
  if (!m.success) throw new AppError("BACKUP_INVALID", `backup ${backupDir}: malformed manifest`, { status: 409 });
  for (const f of m.data.files)
    if (f.backupFile !== null && !/^file-\d+$/.test(f.backupFile))
      throw new AppError("BACKUP_INVALID", `backup ${backupDir}: malformed manifest`, { status: 409 });
  return m.data;
}

/** Restores the bytes saved in `backupDir`; refuses (changing nothing) if a file changed after the apply. */
export function rollbackEdits(backupDir: string, targetRoot: string): Manifest {
  const manifest = readManifest(backupDir);
  const changed: string[] = [];
  for (const f of manifest.files) {
    const now = currentBytes(targetPath(targetRoot, f.path));
    const hash = now === null ? null : sha256(now);
    if (hash !== f.sha256After) changed.push(f.path);
    if (f.existed) {
      const saved = readFileSync(join(backupDir, f.backupFile!), "utf8");
      if (sha256(saved) !== f.sha256Before) throw new AppError("BACKUP_INVALID", `backup of ${f.path} is corrupt`, { status: 409 });
    }
  }
  if (changed.length)
    throw new AppError("CONFLICT", `changed since the apply, not rolled back: ${changed.join(", ")}`, { status: 409, details: { changed } });
  for (const f of [...manifest.files].reverse()) restoreOne(targetRoot, backupDir, f);
  removeCreatedDirs(manifest.createdDirs);
  return manifest;
}
