/**
 * Our own migrator, compatible with drizzle's `__drizzle_migrations` table.
 *
 * drizzle's stock migrator runs table-rebuild migrations (which start with
 * `PRAGMA foreign_keys=OFF`) inside a transaction, where that pragma is a
 * no-op, so `DROP TABLE` cascades deletes into child tables. Here:
 *   foreign keys OFF (outside any transaction)
 *   → all pending migrations in ONE transaction
 *   → PRAGMA foreign_key_check (throw, rolling back, on any violation)
 *   → commit → foreign keys ON.
 */
import type { Database } from "bun:sqlite";
import { AppError } from "../errors.ts";
import type { EmbeddedMigration } from "./migrations.macro.ts";

export interface MigrationResult {
  applied: string[];
  /** Number of migrations recorded after the run (the schema version). */
  schemaVersion: number;
}

const TABLE = "__drizzle_migrations";

export function schemaVersion(db: Database): number {
  const exists = db.query(`SELECT 1 FROM sqlite_master WHERE type='table' AND name=?`).get(TABLE);
  if (!exists) return 0;
  return (db.query(`SELECT count(*) AS n FROM "${TABLE}"`).get() as { n: number }).n;
}

export function migrate(db: Database, migrations: EmbeddedMigration[]): MigrationResult {
  db.run(`CREATE TABLE IF NOT EXISTS "${TABLE}" (id INTEGER PRIMARY KEY, hash text NOT NULL, created_at numeric)`);
  const last = db.query(`SELECT created_at AS at FROM "${TABLE}" ORDER BY created_at DESC LIMIT 1`).get() as {
    at: number;
  } | null;
  const known = migrations.length ? Math.max(...migrations.map((m) => m.when)) : 0;
  if (last && Number(last.at) > known) {
    throw new AppError(
      "DB_SCHEMA_NEWER",
      `database schema is newer than this appliance (last migration at ${last.at}); refusing to run an older build on it`,
      { status: 500 },
    );
  }
  const pending = migrations.filter((m) => !last || Number(last.at) < m.when);
  if (pending.length === 0) return { applied: [], schemaVersion: schemaVersion(db) };

  db.run("PRAGMA foreign_keys = OFF");
  try {
    db.transaction(() => {
      for (const m of pending) {
        for (const stmt of m.statements) {
          try {
            db.run(stmt);
          } catch (err) {
            throw new AppError("DB_MIGRATION_FAILED", `migration ${m.tag} failed: ${(err as Error).message}`, {
              cause: err,
            });
          }
        }
        db.query(`INSERT INTO "${TABLE}" (hash, created_at) VALUES (?, ?)`).run(m.hash, m.when);
      }
      const violations = db.query("PRAGMA foreign_key_check").all();
      if (violations.length > 0) {
        throw new AppError(
          "DB_MIGRATION_FAILED",
          `migration left ${violations.length} foreign key violation(s): ${JSON.stringify(violations.slice(0, 5))}`,
        );
      }
    })();
  } finally {
    db.run("PRAGMA foreign_keys = ON");
  }
  return { applied: pending.map((m) => m.tag), schemaVersion: schemaVersion(db) };
}
