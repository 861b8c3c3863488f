/** The API's sockets before the app is built: liveness at once, other requests wait, then the app. */
import { describe, expect, test } from "bun:test";
import { statSync } from "node:fs";
import { join } from "node:path";
import { listenApi } from "../../src/api/listen.ts";
import { tempDir, testConfig } from "../helpers/env.ts";

const config = (stateDir: string, socketPath: string, maxBodyBytes = 1024 * 1024) => testConfig({ host: "127.0.0.1", port: 0, maxBodyBytes, stateDir, socketPath });

async function listener() {
  const dir = tempDir("neuron-listen-");
  const l = listenApi(config(dir.path, join(dir.path, "api.sock")));
  await l.listening;
  return { l, dir, get: (path: string, init?: RequestInit) => fetch(`${l.url}${path}`, init) };
}

describe("listenApi", () => {
  test("health answers before the app exists; other requests wait for it and then go through it", async () => {
    const { l, dir, get } = await listener();
    try {
      expect(statSync(l.socketPath).mode & 0o777).toBe(0o600);
      const health = await get("/api/v1/health");
      expect([health.status, await health.json()]).toEqual([200, { status: "ok" }]);
      // even before the app, a Host that is not the appliance's gets no answer but the wait
      const foreign = get("/api/v1/health", { headers: { host: "rebind.example" } });
      let answered = false;
      const waiting = get("/api/v1/apps").then((r) => ((answered = true), r));
      const viaSocket = fetch("http://localhost/api/v1/apps", { unix: l.socketPath });
      await Bun.sleep(50);
      expect(answered).toBe(false);
      l.ready({ handle: (req) => Response.json({ from: "app", path: new URL(req.url).pathname }) });
      expect(await (await waiting).json()).toEqual({ from: "app", path: "/api/v1/apps" });
      expect(await (await viaSocket).json()).toEqual({ from: "app", path: "/api/v1/apps" });
      expect(await (await foreign).json()).toEqual({ from: "app", path: "/api/v1/health" });
      // once ready, health goes through the app as well
      expect(await (await get("/api/v1/health")).json()).toEqual({ from: "app", path: "/api/v1/health" });
    } finally {
      await l.stop();
      dir.cleanup();
    }
  });

  test("a POST to the health path is not answered early; a failed start answers 503 with the reason", async () => {
    const { l, dir, get } = await listener();
    try {
      const post = get("/api/v1/health", { method: "POST" });
      await Bun.sleep(20);
      l.fail(new Error("database is locked"));
      const r = await post;
      expect(r.status).toBe(503);
      expect(((await r.json()) as { error: { message: string } }).error.message).toBe("the service could not start: database is locked");
      expect((await get("/api/v1/apps")).status).toBe(503);
    } finally {
      await l.stop();
      dir.cleanup();
    }
  });

  test("a path that is not a socket is refused and nothing listens", async () => {
    const dir = tempDir("neuron-listen-");
    try {
      const l = listenApi(config(dir.path, dir.path, 1024));
      await expect(l.listening).rejects.toThrow("exists and is not a socket");
      expect(await fetch(`${l.url}/api/v1/health`).then((r) => r.status, () => "refused")).toBe("refused");
    } finally {
      dir.cleanup();
    }
  });
});
