/**
 * The plan's scan, kept for the run: the plan writes the journal (one row per file and folder)
 * and a scan record (the folders it read and their times, the links it did not follow, what it
 * could not read). A run reuses them instead of walking the source again while every folder the
 * scan read still has its time: adding, removing or renaming an entry changes its folder's time
 * (NTFS and Linux file systems alike), and a file changed in place is read as it is at copy time.
 * A source that changed gets a fresh scan and a fresh journal, if no run has started on it yet.
 */
import { lstatSync } from "node:fs";
import { join } from "node:path";
import type { EntryRow } from "../db/repos/migrations.ts";
import type { PlanItem, Profile } from "./model.ts";
import { profileHomes, type Expanded, type FileEntry } from "./plan.ts";
import type { TransformName } from "./rules.ts";
import type { EntryMeta } from "./ntfs-meta.ts";

export interface ScanRecord {
  dirs: [string, number][];
  notFollowed: Expanded["notFollowed"];
  unreadable: Expanded["unreadable"];
}

export function scanRecord(exp: Expanded): ScanRecord {
  return { dirs: exp.dirs, notFollowed: exp.notFollowed, unreadable: exp.unreadable };
}

/** True while every folder the scan read is there with the same modification time. */
export function scanStillValid(root: string, rec: ScanRecord): boolean {
  for (const [rel, mtime] of rec.dirs) {
    let now = -1;
    try {
      now = lstatSync(join(root, rel)).mtimeMs;
    } catch {
      // gone (or unreadable): -1, as the scan records a folder it could not stat
    }
    if (now !== mtime) return false;
  }
  return true;
}

/** The plan's expansion rebuilt from its journal and scan record (no walk of the source). */
export function expandedFromJournal(rows: EntryRow[], items: PlanItem[], profiles: Profile[], rec: ScanRecord): Expanded {
  const entries: FileEntry[] = [];
  for (const r of rows) {
    // folders a run made above a target and files it moved aside are not the plan's
    if (r.kind === "displaced" || !r.sourcePath) continue;
    const transform = /^transform:(.+)$/.exec(r.note ?? "")?.[1] as TransformName | undefined;
    const renamed = /^renamed: (.+)$/.exec(r.note ?? "")?.[1] ?? null;
    const dir = r.kind === "dir";
    entries.push({ item: r.item, kind: dir ? "dir" : "file", source: r.sourcePath, target: r.targetPath, size: r.size, mtimeMs: 0, mode: r.mode ?? (dir ? 0o755 : 0o644), transform: transform ?? null, renamed, meta: r.meta ? (JSON.parse(r.meta) as EntryMeta) : null });
  }
  return { items, entries, notFollowed: rec.notFollowed, unreadable: rec.unreadable, homes: profileHomes(profiles), dirs: rec.dirs };
}
