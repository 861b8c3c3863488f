/**
 * The live path: a running Windows VM's profiles, pulled through the guest agent (fs_* commands,
 * src/guest/PROTOCOL.md) into a staging folder that the migration then reads as a directory.
 * Bounded (1 MiB chunks, 1000 entries a listing), checksummed (each chunk's SHA-256, then the
 * whole file's against fs_hash) and resumable (a file in transfer waits in <dest>/.partial and a
 * cut transfer continues from its size; a file already complete with the same size and time is
 * not fetched again, one that differs is fetched whole). Links are never followed.
 */
import { createHash } from "node:crypto";
import { closeSync, existsSync, mkdirSync, openSync, readSync, renameSync, statSync, truncateSync, utimesSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { AppError } from "../errors.ts";

export type AgentRequest = (command: "fs_profiles" | "fs_list" | "fs_read" | "fs_hash", data: Record<string, unknown>) => Promise<unknown>;

interface Entry {
  name: string;
  kind: "file" | "dir" | "link" | "other";
  size: number;
  mtime_ms: number;
}

/** What the rule table reads under a profile; everything else stays in the VM. */
export const PROFILE_ROOTS = [
  "Documents", "Pictures", "Music", "Videos", "Desktop", "Downloads",
  "AppData/Local/Google/Chrome/User Data", "AppData/Local/Microsoft/Edge/User Data", "AppData/Local/BraveSoftware/Brave-Browser/User Data", "AppData/Local/Vivaldi/User Data",
  "AppData/Roaming/Mozilla/Firefox", "AppData/Roaming/Code/User", ".vscode/extensions", ".gitconfig", ".ssh", ".npmrc", "AppData/Local/Microsoft/Windows/Fonts",
];
const SKIP_DIRS = new Set(["cache", "code cache", "gpucache", "service worker", "cache2", "startupcache", "shadercache", "grshadercache"]);
const SYSTEM = new Set(["default", "default user", "public", "all users", "defaultuser0", "wdagutilityaccount"]);

export interface MirrorResult {
  files: number;
  bytes: number;
  fetchedBytes: number;
  skipped: number;
  links: string[];
}

function sha256File(path: string): string {
  const h = createHash("sha256");
  const fd = openSync(path, "r");
  try {
    const buf = Buffer.alloc(1 << 20);
    for (let off = 0; ; ) {
      const n = readSync(fd, buf, 0, buf.length, off);
      if (n <= 0) break;
      h.update(buf.subarray(0, n));
      off += n;
    }
  } finally {
    closeSync(fd);
  }
  return h.digest("hex");
}

export async function mirrorFromAgent(request: AgentRequest, dest: string, opts: { user?: string } = {}): Promise<MirrorResult> {
  const out: MirrorResult = { files: 0, bytes: 0, fetchedBytes: 0, skipped: 0, links: [] };
  const { profiles } = (await request("fs_profiles", {})) as { profiles: { name: string }[] };
  const chosen = profiles.filter((p) => !SYSTEM.has(p.name.toLowerCase()) && (!opts.user || p.name.toLowerCase() === opts.user.toLowerCase()));
  if (!chosen.length) throw new AppError("MIGRATION_NO_PROFILE", `the VM has no profile ${opts.user ? JSON.stringify(opts.user) : "of a person"}; profiles: ${profiles.map((p) => p.name).join(", ")}`, { status: 422 });
  const list = async (path: string): Promise<Entry[]> => {
    const all: Entry[] = [];
    let cursor: number | null = 0;
    while (cursor !== null) {
      const r = (await request("fs_list", { path, cursor, limit: 1000 })) as { entries: Entry[]; next: number | null };
      all.push(...r.entries);
      cursor = r.next;
    }
    return all;
  };
  // a file in transfer lives in <dest>/.partial until its whole-file hash matched: a cut transfer
  // resumes from it, and a complete copy in Users/ is never mistaken for the start of a newer file
  const partialDir = join(dest, ".partial");
  const fetchFile = async (rel: string, e: Entry) => {
    const local = join(dest, "Users", rel);
    out.files++;
    out.bytes += e.size;
    if (existsSync(local)) {
      const st = statSync(local);
      if (st.size === e.size && Math.round(st.mtimeMs) === e.mtime_ms) {
        out.skipped++;
        return;
      }
    }
    mkdirSync(partialDir, { recursive: true });
    const part = join(partialDir, createHash("sha256").update(rel).digest("hex"));
    if (existsSync(part) && statSync(part).size > e.size) truncateSync(part, 0);
    const fd = openSync(part, existsSync(part) ? "r+" : "w+");
    try {
      let off = statSync(part).size;
      while (off < e.size) {
        const r = (await request("fs_read", { path: rel, offset: off, length: 1 << 20 })) as { data: string; sha256: string; eof: boolean; size: number };
        const chunk = Buffer.from(r.data, "base64");
        if (createHash("sha256").update(chunk).digest("hex") !== r.sha256) throw new AppError("MIGRATION_TRANSFER_CORRUPT", `${rel}: a chunk at ${off} arrived damaged`, { status: 502 });
        if (!chunk.length) break;
        writeSync(fd, chunk, 0, chunk.length, off);
        off += chunk.length;
        out.fetchedBytes += chunk.length;
        if (r.eof) break;
      }
    } finally {
      closeSync(fd);
    }
    const whole = (await request("fs_hash", { path: rel })) as { sha256: string; size: number };
    if (whole.sha256 !== sha256File(part)) {
      truncateSync(part, 0);
      throw new AppError("MIGRATION_TRANSFER_CORRUPT", `${rel}: the file changed in the VM during the transfer; run again`, { status: 409 });
    }
    utimesSync(part, new Date(), new Date(e.mtime_ms));
    mkdirSync(dirname(local), { recursive: true });
    renameSync(part, local);
  };
  const walk = async (rel: string, depth: number) => {
    if (depth > 64) return;
    for (const e of await list(rel)) {
      const child = `${rel}/${e.name}`;
      if (e.kind === "link") out.links.push(child);
      else if (e.kind === "dir") {
        if (!SKIP_DIRS.has(e.name.toLowerCase())) await walk(child, depth + 1);
      } else if (e.kind === "file") await fetchFile(child, e);
    }
  };
  for (const p of chosen) {
    mkdirSync(join(dest, "Users", p.name), { recursive: true });
    for (const root of PROFILE_ROOTS) {
      const parent = root.includes("/") ? root.slice(0, root.lastIndexOf("/")) : "";
      const name = root.slice(root.lastIndexOf("/") + 1);
      let entries: Entry[];
      try {
        entries = await list(parent ? `${p.name}/${parent}` : p.name);
      } catch {
        continue; // not there in this profile
      }
      const e = entries.find((x) => x.name.toLowerCase() === name.toLowerCase());
      if (!e) continue;
      const rel = `${p.name}/${parent ? parent + "/" : ""}${e.name}`;
      if (e.kind === "link") out.links.push(rel);
      else if (e.kind === "dir") await walk(rel, 0);
      else if (e.kind === "file") await fetchFile(rel, e);
    }
  }
  return out;
}
