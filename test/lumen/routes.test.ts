/**
 * lumen/1 management routes through the real app and auth layer: status, paired clients
 * (without their keys), unpairing; a caller without an identity changes nothing.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createApp, type ApiApp } from "../../src/api/app.ts";
import { lumenPairingsRepo } from "../../src/db/repos/lumen.ts";
import { asRoot, overTcp } from "../helpers/api.ts";
import { testCore } from "../helpers/env.ts";

let ctx: ReturnType<typeof testCore>;
let app: ApiApp;

beforeAll(() => {
  ctx = testCore();
  app = createApp(ctx.core);
  lumenPairingsRepo(ctx.core.database.db).upsert({ clientId: "c-phone", name: "phone", pairingKey: "ab".repeat(32) });
});
afterAll(() => ctx.cleanup());

const call = (method: string, path: string, root = true) => {
  const req = new Request(`http://localhost/api/v1${path}`, { method });
  return app.handle(root ? asRoot(req) : overTcp(req));
};

describe("lumen routes", () => {
  test("status: not running here, no sessions", async () => {
    const r = await call("GET", "/lumen");
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ enabled: false, port: null, sessions: [] });
  });

  test("pairings are listed without their keys; unpair removes one, a second time is 404", async () => {
    const list = (await (await call("GET", "/lumen/pairings")).json()) as { clientId: string; name: string }[];
    expect(list).toHaveLength(1);
    expect(list[0]).toMatchObject({ clientId: "c-phone", name: "phone" });
    expect(JSON.stringify(list)).not.toContain("abab");
    expect((await call("DELETE", "/lumen/pairings/c-phone", false)).status).toBe(401);
    expect(lumenPairingsRepo(ctx.core.database.db).list()).toHaveLength(1);
    expect((await call("DELETE", "/lumen/pairings/c-phone")).status).toBe(204);
    expect((await call("DELETE", "/lumen/pairings/c-phone")).status).toBe(404);
    expect((await call("DELETE", "/lumen/pairings/bad%20id")).status).toBe(422);
    expect(lumenPairingsRepo(ctx.core.database.db).list()).toHaveLength(0);
  });
});
