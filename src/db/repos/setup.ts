import { eq } from "drizzle-orm";
import type { Db } from "../client.ts";
import { setupOptions, setupSteps } from "../schema.ts";

export type SetupStepRow = typeof setupSteps.$inferSelect;
export type SetupStepInsert = typeof setupSteps.$inferInsert;

export function setupRepo(db: Db) {
  return {
    steps: (): SetupStepRow[] => db.select().from(setupSteps).all(),
    step: (id: string): SetupStepRow | undefined => db.select().from(setupSteps).where(eq(setupSteps.id, id)).get(),
    /** Writes a step's whole row (insert or replace). */
    putStep: (row: SetupStepInsert): SetupStepRow =>
      db
        .insert(setupSteps)
        .values(row)
        .onConflictDoUpdate({ target: setupSteps.id, set: { ...row, id: undefined } })
        .returning()
        .get(),
    deleteSteps: (ids: string[]): void => {
      db.transaction((tx) => {
        for (const id of ids) tx.delete(setupSteps).where(eq(setupSteps.id, id)).run();
      });
    },
    options: (): Record<string, unknown> => db.select().from(setupOptions).where(eq(setupOptions.id, 1)).get()?.options ?? {},
    putOptions: (options: Record<string, unknown>): void => {
      db.insert(setupOptions)
        .values({ id: 1, options, updatedAt: new Date() })
        .onConflictDoUpdate({ target: setupOptions.id, set: { options, updatedAt: new Date() } })
        .run();
    },
  };
}
export type SetupRepo = ReturnType<typeof setupRepo>;
