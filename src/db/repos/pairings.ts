import { asc, count, eq } from "drizzle-orm";
import type { Db } from "../client.ts";
import { pairings } from "../schema.ts";

export type PairingRow = typeof pairings.$inferSelect;

export function pairingsRepo(db: Db) {
  return {
    list: (): PairingRow[] => db.select().from(pairings).orderBy(asc(pairings.id)).all(),
    get: (id: number): PairingRow | undefined => db.select().from(pairings).where(eq(pairings.id, id)).get(),
    byFingerprint: (fp: string): PairingRow | undefined => db.select().from(pairings).where(eq(pairings.fingerprint, fp)).get(),
    count: (): number => db.select({ n: count() }).from(pairings).get()?.n ?? 0,
    /**
     * Stores a paired client; pairing the same certificate again renames it and keeps its
     * permissions. `permissions` is what a new row gets (decided by the caller in the same
     * synchronous step as count(), so two pairings cannot both be "the first").
     */
    upsert: (row: { name: string; certPem: string; fingerprint: string; permissions?: (isFirst: boolean) => string[] }): PairingRow =>
      db.transaction((tx) => {
        const first = (tx.select({ n: count() }).from(pairings).get()?.n ?? 0) === 0;
        const { permissions, ...values } = row;
        return tx
          .insert(pairings)
          .values({ ...values, ...(permissions ? { permissions: permissions(first) } : {}) })
          .onConflictDoUpdate({ target: pairings.fingerprint, set: { name: row.name, certPem: row.certPem } })
          .returning()
          .get();
      }),
    setPermissions: (id: number, permissions: string[]): PairingRow | undefined =>
      db.update(pairings).set({ permissions }).where(eq(pairings.id, id)).returning().get(),
    touch: (id: number, at: Date): void => void db.update(pairings).set({ lastSeenAt: at }).where(eq(pairings.id, id)).run(),
    remove: (id: number): boolean => db.delete(pairings).where(eq(pairings.id, id)).returning({ id: pairings.id }).all().length > 0,
    removeByFingerprint: (fp: string): boolean =>
      db.delete(pairings).where(eq(pairings.fingerprint, fp)).returning({ id: pairings.id }).all().length > 0,
  };
}
export type PairingsRepo = ReturnType<typeof pairingsRepo>;
