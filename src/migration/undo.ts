/**
 * Undo by journal and checksum: removes exactly the files and folders a run created, each file
 * only while its checksum still matches what was written; a changed or missing file is left
 * alone and listed. Files moved aside by the `newer` policy go back.
 */
import { closeSync, constants, lstatSync, openSync, renameSync, rmdirSync, unlinkSync } from "node:fs";
import type { NativeCopier } from "../../ffi/migrate.ts";
import type { MigrationsRepo } from "../db/repos/migrations.ts";

export interface UndoOutcome {
  removed: number;
  restored: number;
  refused: { path: string; reason: "changed" | "missing" }[];
}

export function undoJournal(repo: MigrationsRepo, copier: NativeCopier, id: number): UndoOutcome {
  const rows = repo.entries(id, ["done"]);
  const out: UndoOutcome = { removed: 0, restored: 0, refused: [] };
  const updates: { id: number; set: { state: "undone" | "kept"; note?: string } }[] = [];
  for (const row of rows) {
    if (row.kind !== "file" && row.kind !== "generated") continue;
    let fd: number | null = null;
    try {
      const st = lstatSync(row.targetPath);
      if (!st.isFile()) {
        out.refused.push({ path: row.targetPath, reason: "changed" });
        continue;
      }
      fd = openSync(row.targetPath, constants.O_RDONLY | constants.O_NOFOLLOW);
      const d = copier.digest(fd).digest;
      closeSync(fd);
      fd = null;
      if (d !== row.digest) {
        out.refused.push({ path: row.targetPath, reason: "changed" });
        continue;
      }
      unlinkSync(row.targetPath);
      updates.push({ id: row.id, set: { state: "undone" } });
      out.removed++;
    } catch (err) {
      if (fd !== null) closeSync(fd);
      if ((err as NodeJS.ErrnoException).code === "ENOENT") out.refused.push({ path: row.targetPath, reason: "missing" });
      else throw err;
    }
  }
  for (const row of rows) {
    if (row.kind !== "displaced" || !row.movedTo) continue;
    try {
      lstatSync(row.targetPath);
      continue; // the place is taken (a refused file): the older file stays aside
    } catch {
      // free
    }
    try {
      renameSync(row.movedTo, row.targetPath);
      updates.push({ id: row.id, set: { state: "undone" } });
      out.restored++;
    } catch {
      // moved away meanwhile: leave it
    }
  }
  const dirs = rows.filter((r) => r.kind === "dir").sort((a, b) => b.targetPath.length - a.targetPath.length);
  for (const row of dirs) {
    try {
      rmdirSync(row.targetPath);
      updates.push({ id: row.id, set: { state: "undone" } });
    } catch {
      updates.push({ id: row.id, set: { state: "kept", note: "not empty at undo" } });
    }
  }
  repo.updateEntries(updates);
  return out;
}
