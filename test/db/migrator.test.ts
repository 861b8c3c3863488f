import { Database } from "bun:sqlite";
import { afterEach, describe, expect, test } from "bun:test";
import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { MIGRATIONS, openDatabase } from "../../src/db/client.ts";
import { readMigrations } from "../../src/db/migrations.macro.ts";
import { migrate, schemaVersion } from "../../src/db/migrator.ts";
import { AppError } from "../../src/errors.ts";
import { REPO_ROOT, tempDir } from "../helpers/env.ts";

const FIXTURE = readMigrations(join(REPO_ROOT, "test", "fixtures", "migrations-rebuild"));
const [m0, m1, m2] = FIXTURE as [(typeof FIXTURE)[0], (typeof FIXTURE)[0], (typeof FIXTURE)[0]];

const dirs: { cleanup(): void }[] = [];
afterEach(() => dirs.splice(0).forEach((d) => d.cleanup()));
function dbFile(): string {
  const d = tempDir("neuron-db-");
  dirs.push(d);
  return join(d.path, "state.db");
}

function seed(db: Database) {
  db.run("PRAGMA foreign_keys = ON");
  for (let p = 1; p <= 3; p++) {
    db.query("INSERT INTO parents (id, name) VALUES (?, ?)").run(p, `parent ${p}`);
    for (let c = 0; c < 4; c++) db.query("INSERT INTO children (parent_id, label) VALUES (?, ?)").run(p, `child ${p}.${c}`);
  }
}

describe("migrator", () => {
  test("the embedded migrations are drizzle-kit's, with hashes and statements", () => {
    expect(MIGRATIONS.length).toBeGreaterThan(0);
    expect(MIGRATIONS[0]!.tag).toBe("0000_init");
    const sqlText = readFileSync(join(REPO_ROOT, "migrations", "0000_init.sql"), "utf8");
    expect(MIGRATIONS[0]!.hash).toBe(new Bun.CryptoHasher("sha256").update(sqlText).digest("hex"));
  });

  test("a fresh database gets every table; a second run applies nothing", () => {
    const path = dbFile();
    const first = openDatabase(path);
    expect(first.migration.applied).toEqual(MIGRATIONS.map((m) => m.tag));
    const tables = first.sqlite.query("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name").all() as { name: string }[];
    expect(tables.map((t) => t.name)).toEqual(
      expect.arrayContaining(["apps", "audit_log", "pairings", "snapshots", "update_history", "__drizzle_migrations"]),
    );
    expect((first.sqlite.query("PRAGMA journal_mode").get() as { journal_mode: string }).journal_mode).toBe("wal");
    expect((first.sqlite.query("PRAGMA foreign_keys").get() as { foreign_keys: number }).foreign_keys).toBe(1);
    first.close();
    const second = openDatabase(path);
    expect(second.migration.applied).toEqual([]);
    expect(second.migration.schemaVersion).toBe(MIGRATIONS.length);
    second.close();
  });

  test("a table-rebuild migration keeps every row and its children", () => {
    const db = new Database(dbFile());
    migrate(db, [m0]);
    seed(db);
    const before = db.query("SELECT * FROM children ORDER BY id").all();
    expect(before.length).toBe(12);
    const result = migrate(db, [m0, m1]);
    expect(result.applied).toEqual(["0001_rebuild_parents"]);
    expect(db.query("SELECT id, name, rank FROM parents ORDER BY id").all()).toEqual([
      { id: 1, name: "parent 1", rank: 0 },
      { id: 2, name: "parent 2", rank: 0 },
      { id: 3, name: "parent 3", rank: 0 },
    ]);
    expect(db.query("SELECT * FROM children ORDER BY id").all()).toEqual(before);
    expect((db.query("PRAGMA foreign_keys").get() as { foreign_keys: number }).foreign_keys).toBe(1);
    db.close();
  });

  test("the same migration run drizzle's way (inside a transaction, foreign keys on) loses the children", () => {
    // The contrast that makes the test above meaningful: PRAGMA foreign_keys=OFF is a no-op inside a transaction.
    const db = new Database(dbFile());
    migrate(db, [m0]);
    seed(db);
    db.run("PRAGMA foreign_keys = ON");
    db.transaction(() => {
      for (const s of m1.statements) db.run(s);
    })();
    expect((db.query("SELECT count(*) AS n FROM children").get() as { n: number }).n).toBe(0);
    db.close();
  });

  test("a migration that leaves a foreign key violation is rolled back whole", () => {
    const db = new Database(dbFile());
    migrate(db, [m0, m1]);
    seed(db);
    let err: unknown;
    try {
      migrate(db, [m0, m1, m2]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).errorCode).toBe("DB_MIGRATION_FAILED");
    expect((err as Error).message).toMatch(/foreign key violation/);
    expect(schemaVersion(db)).toBe(2);
    expect((db.query("SELECT count(*) AS n FROM children WHERE label = 'orphan'").get() as { n: number }).n).toBe(0);
    db.close();
  });

  test("a failing statement rolls back every pending migration of the run", () => {
    const db = new Database(dbFile());
    const broken = { ...m1, tag: "0001_broken", statements: ["CREATE TABLE ok_table (id integer)", "CREATE TABLE parents (x)"] };
    expect(() => migrate(db, [m0, broken])).toThrow(/0001_broken failed/);
    expect(schemaVersion(db)).toBe(0);
    expect(db.query("SELECT name FROM sqlite_master WHERE name IN ('parents', 'ok_table')").all()).toEqual([]);
    db.close();
  });

  test("a database migrated by a newer build is refused, not touched", () => {
    const db = new Database(dbFile());
    migrate(db, [m0, m1]);
    expect(() => migrate(db, [m0])).toThrow(/newer than this appliance/);
    expect(schemaVersion(db)).toBe(2);
    db.close();
  });

  test("a corrupt database file is refused with a clear error and left as it was", () => {
    const path = dbFile();
    const garbage = Buffer.alloc(8192, 0x5a);
    garbage.write("SQLite format 3\0", 0);
    writeFileSync(path, garbage);
    let err: unknown;
    try {
      openDatabase(path).close();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).errorCode).toBe("DB_UNAVAILABLE");
    expect((err as Error).message).toContain(path);
    expect(readFileSync(path).equals(garbage)).toBe(true);
  });

  test("a read-only database file is refused with a clear error and left as it was", () => {
    const path = dbFile();
    openDatabase(path).close();
    const db = new Database(path);
    db.run("PRAGMA wal_checkpoint(TRUNCATE)");
    db.close();
    const before = readFileSync(path);
    chmodSync(path, 0o444);
    // root bypasses file modes: open it read-only through SQLite's own flag to get the same refusal
    const asRoot = process.getuid?.() === 0;
    let err: unknown;
    try {
      if (asRoot) {
        const ro = new Database(path, { readonly: true });
        try {
          migrate(ro, [...MIGRATIONS, { tag: "9999_next", when: Date.now() + 1e9, hash: "x", statements: ["CREATE TABLE t9 (id integer)"] }]);
        } finally {
          ro.close();
        }
      } else openDatabase(path).close();
    } catch (e) {
      err = e;
    }
    expect(err).toBeDefined();
    expect((err as Error).message).toMatch(/readonly|not writable|not usable|read-only|attempt to write/i);
    expect(readFileSync(path).equals(before)).toBe(true);
  });
});
