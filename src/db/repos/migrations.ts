import { and, asc, desc, eq, inArray, sql } from "drizzle-orm";
import type { Db } from "../client.ts";
import { migrationEntries, migrations } from "../schema.ts";

export type MigrationRow = typeof migrations.$inferSelect;
export type MigrationInsert = typeof migrations.$inferInsert;
export type EntryRow = typeof migrationEntries.$inferSelect;
export type EntryInsert = typeof migrationEntries.$inferInsert;

export function migrationsRepo(db: Db) {
  return {
    insert: (row: MigrationInsert): MigrationRow => db.insert(migrations).values(row).returning().get(),
    get: (id: number): MigrationRow | undefined => db.select().from(migrations).where(eq(migrations.id, id)).get(),
    update: (id: number, set: Partial<MigrationInsert>): MigrationRow => db.update(migrations).set(set).where(eq(migrations.id, id)).returning().get()!,
    list: (limit = 200): MigrationRow[] => db.select().from(migrations).orderBy(desc(migrations.id)).limit(limit).all(),
    running: (): MigrationRow[] => db.select().from(migrations).where(eq(migrations.status, "running")).all(),
    entryCount: (id: number): number => db.select({ n: sql<number>`count(*)` }).from(migrationEntries).where(eq(migrationEntries.migrationId, id)).get()?.n ?? 0,
    insertEntries: (rows: EntryInsert[]): void => {
      db.transaction((tx) => {
        for (let i = 0; i < rows.length; i += 500) tx.insert(migrationEntries).values(rows.slice(i, i + 500)).run();
      });
    },
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
      db.transaction((tx) => {
        for (const u of updates) tx.update(migrationEntries).set(u.set).where(eq(migrationEntries.id, u.id)).run();
      });
    },
  };
}
export type MigrationsRepo = ReturnType<typeof migrationsRepo>;
