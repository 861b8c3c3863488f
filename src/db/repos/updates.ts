import { and, asc, desc, eq, isNull } from "drizzle-orm";
import type { Db } from "../client.ts";
import { snapshots, updateHistory } from "../schema.ts";

export type SnapshotRow = typeof snapshots.$inferSelect;
export type SnapshotInsert = typeof snapshots.$inferInsert;
export type UpdateRow = typeof updateHistory.$inferSelect;
export type UpdateInsert = typeof updateHistory.$inferInsert;

export function snapshotsRepo(db: Db) {
  return {
    insert: (row: SnapshotInsert): SnapshotRow => db.insert(snapshots).values(row).returning().get(),
    get: (id: number): SnapshotRow | undefined => db.select().from(snapshots).where(eq(snapshots.id, id)).get(),
    /** Snapshots of a root that still exist, oldest first. */
    live: (root: string): SnapshotRow[] =>
      db.select().from(snapshots).where(and(eq(snapshots.root, root), isNull(snapshots.deletedAt))).orderBy(asc(snapshots.id)).all(),
    byRef: (root: string, backend: string, ref: string): SnapshotRow | undefined =>
      db.select().from(snapshots).where(and(eq(snapshots.root, root), eq(snapshots.backend, backend), eq(snapshots.backendRef, ref), isNull(snapshots.deletedAt))).get(),
    markDeleted: (id: number): void => void db.update(snapshots).set({ deletedAt: new Date() }).where(eq(snapshots.id, id)).run(),
    setUpdate: (id: number, updateId: number): void => void db.update(snapshots).set({ parentUpdateId: updateId }).where(eq(snapshots.id, id)).run(),
  };
}
export type SnapshotsRepo = ReturnType<typeof snapshotsRepo>;

export function updatesRepo(db: Db) {
  return {
    insert: (row: UpdateInsert): UpdateRow => db.insert(updateHistory).values(row).returning().get(),
    get: (id: number): UpdateRow | undefined => db.select().from(updateHistory).where(eq(updateHistory.id, id)).get(),
    update: (id: number, set: Partial<UpdateInsert>): UpdateRow => db.update(updateHistory).set(set).where(eq(updateHistory.id, id)).returning().get()!,
    list: (limit = 100): UpdateRow[] => db.select().from(updateHistory).orderBy(desc(updateHistory.id)).limit(limit).all(),
    running: (): UpdateRow[] => db.select().from(updateHistory).where(eq(updateHistory.status, "running")).orderBy(asc(updateHistory.id)).all(),
    pendingBoot: (): UpdateRow | undefined =>
      db.select().from(updateHistory).where(eq(updateHistory.bootState, "pending")).orderBy(desc(updateHistory.id)).get(),
  };
}
export type UpdatesRepo = ReturnType<typeof updatesRepo>;
