/**
 * Bounded, failure-tolerant reads of sysfs/procfs files. sysfs is trusted to be
 * sysfs on a real host, but a fixture tree, a broken driver or a hostile mount
 * can hold anything: every read has a size cap, every failure becomes a
 * message instead of an exception, and symlinks are resolved with a hop limit.
 */
import { lstatSync, openSync, readSync, closeSync, readdirSync, readlinkSync, statSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";

/** sysfs attributes are at most a page; /proc/cpuinfo and /proc/modules are larger. */
export const SMALL_FILE_MAX = 4096;
export const PROC_FILE_MAX = 4 * 1024 * 1024;
export const MAX_DIR_ENTRIES = 4096;
const MAX_LINK_HOPS = 16;

export type ReadResult = { ok: true; text: string } | { ok: false; missing: boolean; error: string };

function errnoText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e.code ? `${e.code}` : String((err as Error).message ?? err);
}

/** Reads at most `max` bytes of a regular file (after following links with a hop limit). */
export function readBounded(path: string, max = SMALL_FILE_MAX): ReadResult {
  const real = resolveLink(path);
  if (!real.ok) return real;
  let st;
  try {
    st = statSync(real.path);
  } catch (err) {
    return { ok: false, missing: (err as NodeJS.ErrnoException).code === "ENOENT", error: errnoText(err) };
  }
  if (!st.isFile()) return { ok: false, missing: false, error: st.isDirectory() ? "is a directory" : "not a regular file" };
  let fd: number;
  try {
    fd = openSync(real.path, "r");
  } catch (err) {
    return { ok: false, missing: false, error: errnoText(err) };
  }
  try {
    const buf = Buffer.alloc(max + 1);
    let used = 0;
    while (used < buf.length) {
      const n = readSync(fd, buf, used, buf.length - used, null);
      if (n === 0) break;
      used += n;
    }
    if (used > max) return { ok: false, missing: false, error: `larger than ${max} bytes` };
    return { ok: true, text: buf.subarray(0, used).toString("utf8") };
  } catch (err) {
    return { ok: false, missing: false, error: errnoText(err) };
  } finally {
    closeSync(fd);
  }
}

/** Follows symlinks one hop at a time; a loop or a chain longer than MAX_LINK_HOPS is an error. */
export function resolveLink(path: string): { ok: true; path: string } | { ok: false; missing: boolean; error: string } {
  let current = path;
  for (let hop = 0; hop <= MAX_LINK_HOPS; hop++) {
    let st;
    try {
      st = lstatSync(current);
    } catch (err) {
      return { ok: false, missing: (err as NodeJS.ErrnoException).code === "ENOENT", error: errnoText(err) };
    }
    if (!st.isSymbolicLink()) return { ok: true, path: current };
    try {
      current = resolve(dirname(current), readlinkSync(current));
    } catch (err) {
      return { ok: false, missing: false, error: errnoText(err) };
    }
  }
  return { ok: false, missing: false, error: "symlink loop (ELOOP)" };
}

/** The last path component a symlink points at (driver → "vfio-pci", iommu_group → "12"). */
export function linkTarget(path: string): { ok: true; name: string } | { ok: false; missing: boolean; error: string } {
  try {
    const st = lstatSync(path);
    if (!st.isSymbolicLink()) return { ok: false, missing: false, error: "not a symlink" };
    return { ok: true, name: basename(readlinkSync(path)) };
  } catch (err) {
    return { ok: false, missing: (err as NodeJS.ErrnoException).code === "ENOENT", error: errnoText(err) };
  }
}

/** Directory entries, sorted, capped; a missing directory is an empty list with missing=true. */
export function listDir(path: string): { ok: true; names: string[] } | { ok: false; missing: boolean; error: string } {
  try {
    const names = readdirSync(path);
    if (names.length > MAX_DIR_ENTRIES) return { ok: false, missing: false, error: `more than ${MAX_DIR_ENTRIES} entries` };
    return { ok: true, names: names.sort() };
  } catch (err) {
    return { ok: false, missing: (err as NodeJS.ErrnoException).code === "ENOENT", error: errnoText(err) };
  }
}

export function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

export const under = (root: string, ...parts: string[]) => join(root, ...parts);

/** Parses a sysfs hex attribute such as "0x10de\n" with an exact digit count. */
export function parseHex(text: string, digits: number): number | null {
  const t = text.trim();
  const re = new RegExp(`^0x[0-9a-fA-F]{1,${digits}}$`);
  if (!re.test(t)) return null;
  return Number.parseInt(t.slice(2), 16);
}
