/** /api/v1/migrations over a directory source: plan, run with SSE progress, report, undo, bad input. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { createApp } from "../../src/api/app.ts";
import type { ApplianceEvent } from "../../src/events/bus.ts";
import { asRoot, overTcp } from "../helpers/api.ts";
import { tempDir, testCore } from "../helpers/env.ts";
import { writeWindowsTree } from "./windows-tree.ts";

describe("migrations API (directory source)", () => {
  let dir: ReturnType<typeof tempDir>;
  let env: ReturnType<typeof testCore>;
  let app: ReturnType<typeof createApp>;
  let src = "";
  let home = "";
  const call = (method: string, path: string, body?: unknown, wrap = asRoot) =>
    app.handle(wrap(new Request(`http://localhost/api/v1${path}`, { method, headers: body === undefined ? {} : { "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) })));

  beforeAll(async () => {
    dir = tempDir("neuron-migrate-api-");
    src = join(dir.path, "C");
    mkdirSync(src);
    await writeWindowsTree(src, { ntfs: false, bulkFiles: 50 });
    // a sparse file with holes the source file system reports (SEEK_DATA)
    mkdirSync(join(src, "Users/alice/Videos"));
    const fd = openSync(join(src, "Users/alice/Videos/sparse.bin"), "w");
    writeSync(fd, Buffer.alloc(1 << 20, 7), 0, 1 << 20, 32 << 20);
    writeSync(fd, Buffer.alloc(100, 1), 0, 100, (64 << 20) - 100);
    closeSync(fd);
    home = join(dir.path, "home");
    mkdirSync(home);
    const etc = join(dir.path, "etc");
    mkdirSync(etc);
    writeFileSync(join(etc, "passwd"), `alice:x:1000:1000::${home}:/bin/sh\n`);
    writeFileSync(join(etc, "group"), "");
    env = testCore({ etcDir: etc });
    app = createApp(env.core);
  }, 60_000);
  afterAll(() => {
    env?.cleanup();
    dir?.cleanup();
  });

  let id = 0;
  test("POST /migrations/inspect: the source's state and its profiles", async () => {
    const res = await call("POST", "/migrations/inspect", { source: src });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { source: { kind: string; hibernated: boolean }; profiles: { name: string; skipped: string | null; linuxUser: string; target: string }[] };
    expect(body.source).toMatchObject({ kind: "directory", hibernated: true });
    expect(body.profiles.find((p) => p.name === "alice")).toMatchObject({ skipped: null, linuxUser: "alice", target: home });
    expect(body.profiles.find((p) => p.name === "Public")?.skipped).toContain("Public");
    expect(body.profiles.some((p) => p.name === "Default User")).toBe(false);
  });

  test("POST /migrations/plan saves a plan; nothing is written", async () => {
    const res = await call("POST", "/migrations/plan", { source: src, user: "alice", acceptUnsafeSource: true });
    expect(res.status).toBe(201);
    const plan = (await res.json()) as { id: number; status: string; items: { rule: string; fidelity: string }[]; totals: { files: number } };
    id = plan.id;
    expect(plan.status).toBe("planned");
    expect(plan.items.find((i) => i.rule === "chrome.passwords")?.fidelity).toBe("cannot");
    expect(plan.totals.files).toBeGreaterThan(50);
    expect(readdirSync(home)).toEqual([]);
    const list = (await (await call("GET", "/migrations")).json()) as { migrations: { id: number; status: string }[] };
    expect(list.migrations[0]).toMatchObject({ id, status: "planned" });
  });

  test("POST /migrations/:id/run answers 202; its events stream progress and end with the report; the bus gets migration.progress", async () => {
    const seen: ApplianceEvent[] = [];
    const off = env.core.events.subscribe((e) => void (e.type.startsWith("migration.") && seen.push(e)));
    const res = await call("POST", `/migrations/${id}/run`, {});
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ id, events: `/api/v1/migrations/${id}/events` });
    const sse = await call("GET", `/migrations/${id}/events`);
    expect(sse.headers.get("content-type")).toContain("text/event-stream");
    const text = await Promise.race([sse.text(), Bun.sleep(30_000).then(() => "timeout")]);
    off();
    expect(text).toContain("event: done");
    const done = JSON.parse(text.split("event: done\ndata: ")[1]!.split("\n")[0]!) as { status: string; copied: { files: number }; verified: number };
    expect(done.status).toBe("done");
    expect(done.copied.files).toBe(done.verified);
    expect(seen.some((e) => e.type === "migration.progress")).toBe(true);
    expect(seen.some((e) => e.type === "migration.state" && (e.data as { status: string }).status === "done")).toBe(true);
    const sparse = statSync(join(home, "Videos/sparse.bin"));
    expect(sparse.size).toBe(64 << 20);
    expect(sparse.blocks * 512).toBeLessThan(4 << 20);
    expect(readFileSync(join(home, "Videos/sparse.bin")).equals(readFileSync(join(src, "Users/alice/Videos/sparse.bin")))).toBe(true);
    // symlinks in the source are never followed
    expect(existsSync(join(home, "Documents/Eigene Dateien"))).toBe(false);
  }, 60_000);

  test("GET /migrations/:id/report: the report in JSON and in words", async () => {
    const r = (await (await call("GET", `/migrations/${id}/report`)).json()) as { words: string; notFollowed: { path: string }[]; reinstall: { ids: string[] }[] };
    expect(r.words).toContain("verified by checksum");
    expect(r.notFollowed.map((n) => n.path)).toContain("Users/alice/Documents/Eigene Dateien");
    expect(r.reinstall.flatMap((x) => x.ids)).toContain("ms-python.python");
  });

  test("POST /migrations/:id/undo removes what the run created", async () => {
    const res = await call("POST", `/migrations/${id}/undo`, {});
    expect(res.status).toBe(200);
    const u = (await res.json()) as { removed: number; refused: unknown[]; status: string };
    expect(u).toMatchObject({ refused: [], status: "undone" });
    expect(u.removed).toBeGreaterThan(50);
    expect(readdirSync(home)).toEqual([]);
  });

  test("bad input: a clear error, nothing changes", async () => {
    const before = (await (await call("GET", "/migrations")).json()) as { migrations: unknown[] };
    const missing = await call("POST", "/migrations/plan", { source: join(dir.path, "nope") });
    expect(missing.status).toBe(422);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe("MIGRATION_SOURCE_INVALID");
    writeFileSync(join(dir.path, "random.img"), Buffer.alloc(4096, 0x5a));
    const random = await call("POST", "/migrations/plan", { source: join(dir.path, "random.img") });
    expect(random.status).toBe(422);
    const user = await call("POST", "/migrations/plan", { source: src, user: "mallory" });
    expect(user.status).toBe(422);
    expect(((await user.json()) as { error: { message: string } }).error.message).toContain("alice");
    expect((await call("POST", "/migrations/plan", { source: src, policy: "overwrite" })).status).toBe(422);
    expect((await call("POST", "/migrations/plan", { source: src, extra: 1 })).status).toBe(422);
    expect((await call("POST", "/migrations/plan", { source: src, recoveryKey: "123" })).status).toBe(422);
    expect((await call("GET", "/migrations/9999")).status).toBe(404);
    expect((await call("POST", "/migrations/9999/undo", {})).status).toBe(404);
    expect((await call("POST", `/migrations/${id}/run`, {})).status).toBe(409);
    expect((await call("POST", "/migrations/plan", { source: src }, overTcp)).status).toBe(401);
    const after = (await (await call("GET", "/migrations")).json()) as { migrations: unknown[] };
    expect(after.migrations.length).toBe(before.migrations.length);
    expect(readdirSync(home)).toEqual([]);
  });
});
