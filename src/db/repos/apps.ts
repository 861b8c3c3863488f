import { asc, eq } from "drizzle-orm";
import type { Db } from "../client.ts";
import { apps } from "../schema.ts";

export type AppRow = typeof apps.$inferSelect;
export type AppInsert = typeof apps.$inferInsert;

export function appsRepo(db: Db) {
  return {
    list: (): AppRow[] => db.select().from(apps).orderBy(asc(apps.sortOrder), asc(apps.id)).all(),
    get: (id: number): AppRow | undefined => db.select().from(apps).where(eq(apps.id, id)).get(),
    getByName: (name: string): AppRow | undefined => db.select().from(apps).where(eq(apps.name, name)).get(),
    isEmpty: (): boolean => db.select({ id: apps.id }).from(apps).limit(1).all().length === 0,
    insert: (row: AppInsert): AppRow => db.insert(apps).values(row).returning().get(),
    update: (id: number, patch: Partial<AppInsert>): AppRow | undefined =>
      db.update(apps).set(patch).where(eq(apps.id, id)).returning().get(),
    remove: (id: number): boolean => db.delete(apps).where(eq(apps.id, id)).returning({ id: apps.id }).all().length > 0,
  };
}
export type AppsRepo = ReturnType<typeof appsRepo>;
