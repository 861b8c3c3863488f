/** /api/v1/updates and /api/v1/snapshots over the real stack: btrfs loop device, pacman, SSE progress. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { createApp } from "../../src/api/app.ts";
import { asRoot } from "../helpers/api.ts";
import { testCore } from "../helpers/env.ts";
import { btrfsMissing, buildRepos, installV1, makeRoot, pacmanConf, pacmanMissing, type TestRoot } from "./fixture.ts";

const missing = btrfsMissing() ?? pacmanMissing();
if (missing) console.warn(`skipping updates API tests: ${missing}`);

describe.skipIf(missing !== null)("updates API", () => {
  let t: TestRoot;
  let env: ReturnType<typeof testCore>;
  let app: ReturnType<typeof createApp>;
  const call = (method: string, path: string, body?: unknown) =>
    app.handle(asRoot(new Request(`http://localhost/api/v1${path}`, { method, headers: body === undefined ? {} : { "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) })));

  beforeAll(() => {
    t = makeRoot();
    const repos = buildRepos();
    installV1(t.root, repos);
    pacmanConf(t.root, repos.v2);
    env = testCore({
      updates: {
        root: t.root,
        minFreeMb: 16,
        builtinChecks: ["binaries", "modules"],
        criticalBinaries: ["/usr/bin/neuron-test-svc"],
        checks: [{ name: "libvirtd", command: '"$NEURON_ROOT/usr/bin/neuron-test-svc"' }],
        rebootCommand: null,
      },
    });
    app = createApp(env.core);
  }, 300_000);
  afterAll(() => {
    env?.cleanup();
    t?.cleanup();
  });

  let id: number;
  test("POST /updates starts a run; its events stream pacman's progress, the checks and the verdict (SSE)", async () => {
    const res = await call("POST", "/updates", {});
    expect(res.status).toBe(202);
    const started = (await res.json()) as { id: number; events: string };
    id = started.id;
    expect(started.events).toBe(`/api/v1/updates/${id}/events`);
    const sse = await call("GET", `/updates/${id}/events`);
    expect(sse.headers.get("content-type")).toContain("text/event-stream");
    const text = await Promise.race([sse.text(), Bun.sleep(120_000).then(() => "timeout")]);
    const events = text
      .split("\n\n")
      .filter((b) => b.startsWith("event:"))
      .map((b) => JSON.parse(b.split("\n").find((l) => l.startsWith("data: "))!.slice(6)));
    const progress = events.filter((e) => e.type === "progress");
    expect(progress.at(-1)).toMatchObject({ total: 4, done: 4 });
    expect(progress.map((p) => p.pkg)).toContain("neuron-test-svc");
    expect(events.some((e) => e.type === "output" && /upgrading neuron-test-linux/.test(e.line))).toBe(true);
    expect(events.find((e) => e.type === "check" && e.name === "libvirtd")).toMatchObject({ status: "failed", required: true });
    const done = events.at(-1);
    expect(done.type).toBe("done");
    expect(done.update.verdict).toBe("rolled-back");
    expect(done.update.nextBoot).toContain(join(t.root, ".snapshots"));
  }, 180_000);

  test("history, one update, and a late SSE subscriber gets the whole run", async () => {
    const list = (await (await call("GET", "/updates")).json()) as { updates: { id: number; verdict: string }[] };
    expect(list.updates.map((u) => [u.id, u.verdict])).toEqual([[id, "rolled-back"]]);
    const one = (await (await call("GET", `/updates/${id}`)).json()) as { pre: { path: string }; post: { path: string }; log: string };
    expect(one.pre.path).toContain("/.snapshots/");
    expect(one.log).toContain("upgrading neuron-test-svc");
    const again = await (await call("GET", `/updates/${id}/events`)).text();
    expect(again).toContain("event: done");
    expect((await call("GET", "/updates/999")).status).toBe(404);
    expect((await call("GET", "/updates/abc")).status).toBe(422);
  });

  test("snapshots: list, create, diff, delete; the next boot's tree cannot be deleted", async () => {
    const list = (await (await call("GET", "/snapshots")).json()) as { backend: string; snapshots: { id: number; kind: string }[] };
    expect(list.backend).toBe("btrfs");
    expect(list.snapshots.map((s) => s.kind)).toEqual(["pre", "post", "rollback"]);
    const created = await call("POST", "/snapshots", { description: "before I try something" });
    expect(created.status).toBe(201);
    const snap = (await created.json()) as { id: number; label: string; path: string };
    expect(snap.label).toBe("before I try something");
    const diff = (await (await call("GET", `/snapshots/diff?from=${list.snapshots[0]!.id}&to=${list.snapshots[1]!.id}`)).json()) as { changes: { path: string }[] };
    expect(diff.changes.map((c) => c.path)).toContain("/usr/bin/neuron-test-svc");
    expect((await call("DELETE", `/snapshots/${snap.id}`)).status).toBe(204);
    const inUse = await call("DELETE", `/snapshots/${list.snapshots[2]!.id}`);
    expect(inUse.status).toBe(409);
    expect((await call("POST", "/snapshots", { description: "" })).status).toBe(422);
  });

  test("POST /updates/:id/rollback by hand; GET /updates/checks", async () => {
    const res = await call("POST", `/updates/${id}/rollback`, { reboot: false });
    expect(res.status).toBe(200);
    const u = (await res.json()) as { verdict: string; reason: string; nextBoot: string };
    expect(u.verdict).toBe("rolled-back");
    expect(u.reason).toContain("was rolled back by hand");
    const checks = (await (await call("GET", "/updates/checks")).json()) as { root: string; healthy: boolean; checks: { name: string; status: string }[] };
    expect(checks.root).toBe(t.root);
    expect(checks.checks.find((c) => c.name === "libvirtd")?.status).toBe("failed");
  });
});
