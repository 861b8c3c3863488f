import { and, asc, desc, eq, inArray, sql } from "drizzle-orm";
import type { Database } from "bun:sqlite";
import type { Db } from "../client.ts";
import { migrationEntries, migrations } from "../schema.ts";

export type MigrationRow = typeof migrations.$inferSelect;
export type MigrationInsert = typeof migrations.$inferInsert;
export type EntryRow = typeof migrationEntries.$inferSelect;
export type EntryInsert = typeof migrationEntries.$inferInsert;

export function migrationsRepo(db: Db) {
  // the run's per-file journal updates: one prepared statement (drizzle's query building costs
  // more than the copy of a small file)
  const sqlite = (db as unknown as { $client: Database }).$client;
  const addEntry = sqlite.prepare(
    "insert into migration_entries (migration_id, item, kind, source_path, target_path, size, state, digest, note, moved_to, mode, meta) values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
  );
  const setEntry = sqlite.prepare(
    "update migration_entries set state = coalesce(?1, state), digest = coalesce(?2, digest), target_path = coalesce(?3, target_path), size = coalesce(?4, size), note = coalesce(?5, note), moved_to = coalesce(?6, moved_to), meta = coalesce(?8, meta) where id = ?7",
  );
  return {
    insert: (row: MigrationInsert): MigrationRow => db.insert(migrations).values(row).returning().get(),
    get: (id: number): MigrationRow | undefined => db.select().from(migrations).where(eq(migrations.id, id)).get(),
    update: (id: number, set: Partial<MigrationInsert>): MigrationRow => db.update(migrations).set(set).where(eq(migrations.id, id)).returning().get()!,
    list: (limit = 200): MigrationRow[] => db.select().from(migrations).orderBy(desc(migrations.id)).limit(limit).all(),
    running: (): MigrationRow[] => db.select().from(migrations).where(eq(migrations.status, "running")).all(),
    entryCount: (id: number): number => db.select({ n: sql<number>`count(*)` }).from(migrationEntries).where(eq(migrationEntries.migrationId, id)).get()?.n ?? 0,
    insertEntries: (rows: EntryInsert[]): void => {
      sqlite.transaction(() => {
        for (const r of rows) addEntry.run(r.migrationId, r.item, r.kind, r.sourcePath, r.targetPath, r.size ?? 0, r.state ?? "pending", r.digest ?? null, r.note ?? null, r.movedTo ?? null, r.mode ?? null, r.meta ?? null);
      })();
    },
    /** Drops a journal no run has started on (its plan's scan went stale). */
    clearEntries: (id: number): void => void db.delete(migrationEntries).where(eq(migrationEntries.migrationId, id)).run(),
    entries: (id: number, states?: EntryRow["state"][]): EntryRow[] =>
      db
        .select()
        .from(migrationEntries)
        .where(states ? and(eq(migrationEntries.migrationId, id), inArray(migrationEntries.state, states)) : eq(migrationEntries.migrationId, id))
        .orderBy(asc(migrationEntries.id))
        .all(),
    /** Several entry updates in one transaction. */
    updateEntries: (updates: { id: number; set: Partial<EntryInsert> }[]): void => {
      if (!updates.length) return;
      sqlite.transaction(() => {
        for (const { id, set: s } of updates) setEntry.run(s.state ?? null, s.digest ?? null, s.targetPath ?? null, s.size ?? null, s.note ?? null, s.movedTo ?? null, id, s.meta ?? null);
      })();
    },
  };
}
export type MigrationsRepo = ReturnType<typeof migrationsRepo>;
