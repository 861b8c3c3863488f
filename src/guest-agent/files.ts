/**
 * Read-only file access for migrating a person's data out of a running VM: the profiles under
 * the users folder, one folder level at a time, and bounded, checksummed chunks of a file (a host
 * resumes a transfer by asking for the next offset). Paths are relative to the users folder;
 * anything that would leave it (.., absolute paths, links) is refused, and links are listed,
 * never followed.
 */
import { createHash } from "node:crypto";
import { closeSync, fstatSync, lstatSync, openSync, readdirSync, readSync, constants } from "node:fs";
import { isAbsolute, join, normalize, sep } from "node:path";
import { GuestCommandError } from "./os.ts";

export const FS_MAX_CHUNK = 1 << 20;
export const FS_MAX_LIST = 1000;

export interface FsEntry {
  name: string;
  kind: "file" | "dir" | "link" | "other";
  size: number;
  mtime_ms: number;
}

export class UserFiles {
  constructor(private readonly root: string | null) {}

  private resolve(rel: string): string {
    if (!this.root) throw new GuestCommandError("NOT_SUPPORTED", "no users folder is configured (usersDir)");
    if (rel.includes("\0") || isAbsolute(rel) || /^[A-Za-z]:/.test(rel)) throw new GuestCommandError("INVALID_ARGUMENT", "path must be relative to the users folder");
    const n = normalize(rel.replace(/\\/g, "/"));
    if (n === ".." || n.startsWith(`..${sep}`) || n.split(sep).includes("..")) throw new GuestCommandError("INVALID_ARGUMENT", "path leaves the users folder");
    const abs = join(this.root, n);
    // no link anywhere on the way
    let p = this.root;
    for (const part of n.split(sep).filter((x) => x && x !== ".")) {
      p = join(p, part);
      let st;
      try {
        st = lstatSync(p);
      } catch {
        throw new GuestCommandError("INVALID_ARGUMENT", `no such file: ${rel}`);
      }
      if (st.isSymbolicLink()) throw new GuestCommandError("INVALID_ARGUMENT", `${rel} goes through a link`);
    }
    return abs;
  }

  profiles(): { profiles: { name: string }[] } {
    if (!this.root) throw new GuestCommandError("NOT_SUPPORTED", "no users folder is configured (usersDir)");
    const out: { name: string }[] = [];
    for (const name of readdirSync(this.root).sort()) {
      try {
        const st = lstatSync(join(this.root, name));
        if (st.isDirectory() && !st.isSymbolicLink()) out.push({ name });
      } catch {
        // gone
      }
    }
    return { profiles: out };
  }

  list(path: string, cursor = 0, limit = FS_MAX_LIST): { entries: FsEntry[]; next: number | null } {
    const dir = this.resolve(path);
    let names: string[];
    try {
      names = readdirSync(dir).sort();
    } catch (err) {
      throw new GuestCommandError("COMMAND_FAILED", `cannot list ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    const slice = names.slice(cursor, cursor + limit);
    const entries = slice.map((name): FsEntry => {
      try {
        const st = lstatSync(join(dir, name));
        const kind = st.isSymbolicLink() ? "link" : st.isDirectory() ? "dir" : st.isFile() ? "file" : "other";
        return { name, kind, size: kind === "file" ? st.size : 0, mtime_ms: Math.round(st.mtimeMs) };
      } catch {
        return { name, kind: "other", size: 0, mtime_ms: 0 };
      }
    });
    return { entries, next: cursor + limit < names.length ? cursor + limit : null };
  }

  read(path: string, offset: number, length: number): { data: string; size: number; mtime_ms: number; sha256: string; eof: boolean } {
    const abs = this.resolve(path);
    let fd: number;
    try {
      fd = openSync(abs, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch (err) {
      throw new GuestCommandError("COMMAND_FAILED", `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    try {
      const st = fstatSync(fd);
      if (!st.isFile()) throw new GuestCommandError("INVALID_ARGUMENT", `${path} is not a file`);
      const want = Math.max(0, Math.min(length, FS_MAX_CHUNK, st.size - offset));
      const buf = Buffer.alloc(want);
      let got = 0;
      while (got < want) {
        const n = readSync(fd, buf, got, want - got, offset + got);
        if (n <= 0) break;
        got += n;
      }
      const chunk = buf.subarray(0, got);
      return { data: chunk.toString("base64"), size: st.size, mtime_ms: Math.round(st.mtimeMs), sha256: createHash("sha256").update(chunk).digest("hex"), eof: offset + got >= st.size };
    } finally {
      closeSync(fd);
    }
  }

  hash(path: string): { sha256: string; size: number } {
    const abs = this.resolve(path);
    const fd = openSync(abs, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      const h = createHash("sha256");
      const buf = Buffer.alloc(FS_MAX_CHUNK);
      let off = 0;
      for (;;) {
        const n = readSync(fd, buf, 0, buf.length, off);
        if (n <= 0) break;
        h.update(buf.subarray(0, n));
        off += n;
      }
      return { sha256: h.digest("hex"), size: off };
    } finally {
      closeSync(fd);
    }
  }
}
