import { asc, eq } from "drizzle-orm";
import type { Db } from "../client.ts";
import { lumenPairings } from "../schema.ts";
import type { LumenPairingStore } from "../../lumen/pairing.ts";

/** lumen/1 paired clients in the lumen_pairings table. */
export function lumenPairingsRepo(db: Db): LumenPairingStore {
  return {
    byClientId: (clientId) => db.select().from(lumenPairings).where(eq(lumenPairings.clientId, clientId)).get(),
    upsert: (row) =>
      db
        .insert(lumenPairings)
        .values(row)
        .onConflictDoUpdate({ target: lumenPairings.clientId, set: { name: row.name, pairingKey: row.pairingKey } })
        .returning()
        .get(),
    touch: (clientId, at) => void db.update(lumenPairings).set({ lastSeenAt: at }).where(eq(lumenPairings.clientId, clientId)).run(),
    list: () => db.select().from(lumenPairings).orderBy(asc(lumenPairings.id)).all(),
    remove: (clientId) => db.delete(lumenPairings).where(eq(lumenPairings.clientId, clientId)).returning({ id: lumenPairings.id }).all().length > 0,
  };
}
