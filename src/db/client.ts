/**
 * Opens the appliance database: WAL, busy_timeout, synchronous=NORMAL, then
 * foreign keys, then our migrator with the migrations embedded at build time.
 */
import { Database } from "bun:sqlite";
import { drizzle, type BunSQLiteDatabase } from "drizzle-orm/bun-sqlite";
import { accessSync, constants, mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { AppError } from "../errors.ts";
import { embeddedMigrations } from "./migrations.macro.ts" with { type: "macro" };
import type { EmbeddedMigration } from "./migrations.macro.ts";
import { migrate, type MigrationResult } from "./migrator.ts";
import * as schema from "./schema.ts";

export type Db = BunSQLiteDatabase<typeof schema>;

export interface OpenedDb {
  db: Db;
  sqlite: Database;
  migration: MigrationResult;
  close(): void;
}

export const MIGRATIONS: EmbeddedMigration[] = embeddedMigrations();

export function openDatabase(path: string, migrations: EmbeddedMigration[] = MIGRATIONS): OpenedDb {
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new AppError("DB_UNAVAILABLE", `cannot create database directory ${dirname(path)}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  let sqlite: Database;
  try {
    sqlite = new Database(path, { create: true, strict: true });
  } catch (err) {
    throw new AppError("DB_UNAVAILABLE", `cannot open database ${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    accessSync(path, constants.W_OK);
    sqlite.run("PRAGMA journal_mode = WAL");
    sqlite.run("PRAGMA busy_timeout = 5000");
    sqlite.run("PRAGMA synchronous = NORMAL");
    sqlite.run("PRAGMA foreign_keys = ON");
    const check = sqlite.query("PRAGMA quick_check").get() as { quick_check: string } | null;
    if (check?.quick_check !== "ok") throw new Error(`integrity check: ${check?.quick_check ?? "no answer"}`);
    const migration = migrate(sqlite, migrations);
    const db = drizzle(sqlite, { schema });
    return { db, sqlite, migration, close: () => sqlite.close() };
  } catch (err) {
    sqlite.close();
    if (err instanceof AppError) throw err;
    throw new AppError("DB_UNAVAILABLE", `database ${path} is not usable: ${(err as Error).message}`, { cause: err });
  }
}
