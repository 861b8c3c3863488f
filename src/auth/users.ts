/**
 * Local users and groups from passwd(5) and group(5) under config.etcDir:
 * enough to tell whether the uid on the other end of the local socket is
 * root or a member of the admin group (primary group or listed member).
 * Files are re-read when they change (mtime), so `usermod -aG` takes effect
 * without a restart.
 */
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";

interface Cached<T> {
  mtimeMs: number;
  size: number;
  value: T;
}

export interface UserDb {
  userName(uid: number): string;
  /** Root, or in `group` by primary gid (passwd or the peer's own gid) or membership. */
  isAdmin(uid: number, peerGid: number, group: string): boolean;
  /** The gid of a group, or null when it does not exist. */
  groupId(group: string): number | null;
}

type Passwd = Map<number, { name: string; gid: number }>;
type Groups = Map<string, { gid: number; members: Set<string> }>;

/** Larger files are not read (a sane /etc/group is a few KB). */
const MAX_FILE_BYTES = 4 * 1024 * 1024;

function cachedFile<T>(path: string, parse: (text: string) => T, empty: T): () => T {
  let cache: Cached<T> | null = null;
  return () => {
    let st;
    try {
      st = statSync(path);
    } catch {
      return empty;
    }
    if (cache && cache.mtimeMs === st.mtimeMs && cache.size === st.size) return cache.value;
    if (st.size > MAX_FILE_BYTES) return empty;
    let value: T;
    try {
      value = parse(readFileSync(path, "utf8"));
    } catch {
      return empty;
    }
    cache = { mtimeMs: st.mtimeMs, size: st.size, value };
    return value;
  };
}

function parsePasswd(text: string): Passwd {
  const out: Passwd = new Map();
  for (const line of text.split("\n")) {
    const f = line.split(":");
    if (f.length < 4) continue;
    const uid = Number(f[2]);
    const gid = Number(f[3]);
    if (Number.isInteger(uid) && Number.isInteger(gid) && !out.has(uid)) out.set(uid, { name: f[0]!, gid });
  }
  return out;
}

function parseGroups(text: string): Groups {
  const out: Groups = new Map();
  for (const line of text.split("\n")) {
    const f = line.split(":");
    if (f.length < 4) continue;
    const gid = Number(f[2]);
    if (!Number.isInteger(gid) || out.has(f[0]!)) continue;
    out.set(f[0]!, { gid, members: new Set(f[3]!.split(",").map((m) => m.trim()).filter(Boolean)) });
  }
  return out;
}

export function userDb(etcDir: string): UserDb {
  const passwd = cachedFile(join(etcDir, "passwd"), parsePasswd, new Map() as Passwd);
  const groups = cachedFile(join(etcDir, "group"), parseGroups, new Map() as Groups);
  return {
    userName: (uid) => passwd().get(uid)?.name ?? `uid-${uid}`,
    groupId: (group) => groups().get(group)?.gid ?? null,
    isAdmin(uid, peerGid, group) {
      if (uid === 0) return true;
      const g = groups().get(group);
      if (!g) return false;
      if (peerGid === g.gid) return true;
      const user = passwd().get(uid);
      if (!user) return false;
      return user.gid === g.gid || g.members.has(user.name);
    },
  };
}
