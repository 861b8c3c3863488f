/**
 * The plan's scan is the run's: the plan writes the journal; the run copies from it without
 * walking the source again while every folder the scan read keeps its time, and scans afresh
 * (a new journal) when one changed before any run started.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { migrationsRepo } from "../../src/db/repos/migrations.ts";
import { tempDir, testCore } from "../helpers/env.ts";

describe("migration journal from the plan", () => {
  let dir: ReturnType<typeof tempDir>;
  let env: ReturnType<typeof testCore>;
  let src = "";
  const docs = () => join(src, "Users/alice/Documents");
  beforeAll(() => {
    dir = tempDir("neuron-migrate-journal-");
    src = join(dir.path, "C");
    mkdirSync(join(src, "Users/alice/Documents/sub"), { recursive: true });
    writeFileSync(join(docs(), "a.txt"), "a\n");
    writeFileSync(join(docs(), "sub/b.txt"), "b\n");
    mkdirSync(join(dir.path, "etc"));
    writeFileSync(join(dir.path, "etc/passwd"), "");
    env = testCore({ etcDir: join(dir.path, "etc") });
  });
  afterAll(() => {
    env?.cleanup();
    dir?.cleanup();
  });
  const home = (n: string) => {
    const h = join(dir.path, n);
    mkdirSync(h);
    return h;
  };

  test("the plan journals every file; the run reuses it while the folders keep their times", async () => {
    const h = home("h1");
    const then = new Date("2024-05-01T10:00:00Z");
    utimesSync(join(docs(), "sub"), then, then);
    const plan = await env.core.migration.plan({ source: src, user: "alice", target: h });
    const rows = migrationsRepo(env.core.database.db).entries(plan.id);
    expect(rows.filter((r) => r.kind === "file").map((r) => r.sourcePath).sort()).toEqual(["Users/alice/Documents/a.txt", "Users/alice/Documents/sub/b.txt"]);
    expect(rows.every((r) => r.state === "pending" && r.mode !== null)).toBe(true);
    // a file added after the plan, its folder's time put back: the run cannot tell, so it goes by the plan
    writeFileSync(join(docs(), "sub/late.txt"), "late\n");
    utimesSync(join(docs(), "sub"), then, then);
    // a file changed in place is copied as it is at run time
    writeFileSync(join(docs(), "a.txt"), "a, changed\n");
    const report = await env.core.migration.run(plan.id);
    expect(report.status).toBe("done");
    expect(report.copied.files).toBe(2);
    expect(existsSync(join(h, "Documents/sub/late.txt"))).toBe(false);
    expect(readFileSync(join(h, "Documents/a.txt"), "utf8")).toBe("a, changed\n");
    expect(statSync(join(h, "Documents/a.txt")).mode & 0o777).toBe(rows.find((r) => r.sourcePath.endsWith("a.txt"))!.mode! & 0o777);
  });

  test("a folder whose time changed after the plan: the run scans again and copies what is there now", async () => {
    const h = home("h2");
    const plan = await env.core.migration.plan({ source: src, user: "alice", target: h });
    writeFileSync(join(docs(), "sub/later.txt"), "later\n");
    const report = await env.core.migration.run(plan.id);
    expect(report.status).toBe("done");
    expect(readFileSync(join(h, "Documents/sub/later.txt"), "utf8")).toBe("later\n");
    expect(readFileSync(join(h, "Documents/sub/late.txt"), "utf8")).toBe("late\n");
    const files = migrationsRepo(env.core.database.db).entries(plan.id).filter((r) => r.kind === "file");
    expect(files.length).toBe(4);
    expect(files.every((r) => r.state === "done")).toBe(true);
  });
});
