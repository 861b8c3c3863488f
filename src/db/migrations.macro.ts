/**
 * Bun macro: runs at bundle time (and at transpile time under `bun test`),
 * reading migrations/ (drizzle-kit output) so that the SQL is embedded in the
 * compiled binary. Import it with `with { type: "macro" }`.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";

export interface EmbeddedMigration {
  tag: string;
  /** drizzle's folderMillis: the journal's `when`. */
  when: number;
  /** sha256 of the SQL file, as drizzle records it in __drizzle_migrations.hash. */
  hash: string;
  /** Statements, split at drizzle's `--> statement-breakpoint`. */
  statements: string[];
}

export function readMigrations(dir: string): EmbeddedMigration[] {
  const journal = JSON.parse(readFileSync(join(dir, "meta", "_journal.json"), "utf8")) as {
    entries: { tag: string; when: number }[];
  };
  return journal.entries.map((e) => {
    const sqlText = readFileSync(join(dir, `${e.tag}.sql`), "utf8");
    return {
      tag: e.tag,
      when: e.when,
      hash: createHash("sha256").update(sqlText).digest("hex"),
      statements: sqlText
        .split("--> statement-breakpoint")
        .map((s) => s.trim())
        .filter((s) => s.length > 0),
    };
  });
}

export function embeddedMigrations(): EmbeddedMigration[] {
  return readMigrations(join(import.meta.dir, "..", "..", "migrations"));
}
