/**
 * The pairings permissions column: pairings made before it existed keep full access (the
 * migration's default); new pairings get every permission when they are the first, `view`
 * otherwise; re-pairing the same certificate keeps what was granted.
 */
import { Database } from "bun:sqlite";
import { afterEach, expect, test } from "bun:test";
import { join } from "node:path";
import { MIGRATIONS, openDatabase } from "../../src/db/client.ts";
import { migrate } from "../../src/db/migrator.ts";
import { pairingsRepo } from "../../src/db/repos/pairings.ts";
import { GS_PERMISSIONS, permissionsForNewPairing } from "../../src/gamestream/permissions.ts";
import { tempDir } from "../helpers/env.ts";

const dirs: { cleanup(): void }[] = [];
afterEach(() => dirs.splice(0).forEach((d) => d.cleanup()));
function dbFile(): string {
  const d = tempDir("neuron-db-perms-");
  dirs.push(d);
  return join(d.path, "state.db");
}

test("rows paired before the permissions column keep every permission; nothing else changes", () => {
  const path = dbFile();
  const old = new Database(path);
  migrate(old, MIGRATIONS.filter((m) => m.tag === "0000_init"));
  old.query("INSERT INTO pairings (name, cert_pem, fingerprint, created_at, last_seen_at) VALUES (?, ?, ?, ?, ?)").run("living room", "PEM-A", "aa", 1_700_000_000_000, 1_700_000_500_000);
  old.query("INSERT INTO pairings (name, cert_pem, fingerprint, created_at) VALUES (?, ?, ?, ?)").run("phone", "PEM-B", "bb", 1_700_000_100_000);
  old.close();

  const db = openDatabase(path);
  try {
    expect(db.migration.applied).toContain("0002_pairing_permissions");
    const repo = pairingsRepo(db.db);
    const rows = repo.list();
    expect(rows.map((r) => ({ name: r.name, certPem: r.certPem, fingerprint: r.fingerprint, permissions: r.permissions, createdAt: r.createdAt.getTime(), lastSeenAt: r.lastSeenAt?.getTime() ?? null }))).toEqual([
      { name: "living room", certPem: "PEM-A", fingerprint: "aa", permissions: [...GS_PERMISSIONS], createdAt: 1_700_000_000_000, lastSeenAt: 1_700_000_500_000 },
      { name: "phone", certPem: "PEM-B", fingerprint: "bb", permissions: [...GS_PERMISSIONS], createdAt: 1_700_000_100_000, lastSeenAt: null },
    ]);
    // a client paired now is not the first: view only
    expect(repo.upsert({ name: "tablet", certPem: "PEM-C", fingerprint: "cc", permissions: permissionsForNewPairing }).permissions).toEqual(["view"]);
  } finally {
    db.close();
  }
});

test("the first pairing gets everything, later ones view; re-pairing keeps granted permissions", () => {
  const db = openDatabase(dbFile());
  try {
    const repo = pairingsRepo(db.db);
    const first = repo.upsert({ name: "tv", certPem: "A", fingerprint: "a1", permissions: permissionsForNewPairing });
    expect(first.permissions).toEqual([...GS_PERMISSIONS]);
    const second = repo.upsert({ name: "phone", certPem: "B", fingerprint: "b1", permissions: permissionsForNewPairing });
    expect(second.permissions).toEqual(["view"]);
    repo.setPermissions(second.id, ["view", "mouse"]);
    const again = repo.upsert({ name: "phone (renamed)", certPem: "B", fingerprint: "b1", permissions: permissionsForNewPairing });
    expect(again).toMatchObject({ id: second.id, name: "phone (renamed)", permissions: ["view", "mouse"] });
  } finally {
    db.close();
  }
});
