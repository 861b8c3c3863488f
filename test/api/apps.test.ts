import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createApp, type ApiApp } from "../../src/api/app.ts";
import { testCore } from "../helpers/env.ts";
import { asRoot } from "../helpers/api.ts";

let ctx: ReturnType<typeof testCore>;
let app: ApiApp;
beforeAll(() => {
  ctx = testCore({ maxBodyBytes: 4096 });
  app = createApp(ctx.core);
});
afterAll(() => ctx.cleanup());

async function call(method: string, path: string, body?: unknown, raw?: { body: string; type?: string }) {
  const headers: Record<string, string> = {};
  let payload: string | undefined;
  if (raw) {
    payload = raw.body;
    headers["content-type"] = raw.type ?? "application/json";
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    headers["content-type"] = "application/json";
  }
  if (payload !== undefined) headers["content-length"] = String(Buffer.byteLength(payload));
  const res = await app.handle(asRoot(new Request(`http://localhost${path}`, { method, headers, body: payload })));
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined, text };
}

const appsSnapshot = async () => (await call("GET", "/api/v1/apps")).body;

describe("apps API", () => {
  test("a new database holds the default Desktop app", async () => {
    const r = await call("GET", "/api/v1/apps");
    expect(r.status).toBe(200);
    expect(r.body.apps).toHaveLength(1);
    expect(r.body.apps[0]).toMatchObject({ id: 1, name: "Desktop", kind: "desktop", command: null });
  });

  test("create, read, update, delete", async () => {
    const created = await call("POST", "/api/v1/apps", { name: "Steam", kind: "vm", vmName: "win11", sortOrder: 2 });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: "Steam", kind: "vm", vmName: "win11", sortOrder: 2, updatedAt: null });
    const id = created.body.id;
    expect((await call("GET", `/api/v1/apps/${id}`)).body.name).toBe("Steam");
    const patched = await call("PATCH", `/api/v1/apps/${id}`, { name: "Steam Big Picture", sortOrder: -1 });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ name: "Steam Big Picture", sortOrder: -1 });
    expect(patched.body.updatedAt).not.toBeNull();
    // ordered by sortOrder: the patched app now comes first
    expect((await appsSnapshot()).apps.map((a: { name: string }) => a.name)).toEqual(["Steam Big Picture", "Desktop"]);
    expect((await call("DELETE", `/api/v1/apps/${id}`)).status).toBe(204);
    expect((await call("GET", `/api/v1/apps/${id}`)).status).toBe(404);
  });

  const bad: [string, string, string, unknown, number, string][] = [
    ["a duplicate name", "POST", "/api/v1/apps", { name: "Desktop", kind: "desktop" }, 409, "CONFLICT"],
    ["a vm app without vmName", "POST", "/api/v1/apps", { name: "A", kind: "vm" }, 422, "VALIDATION_FAILED"],
    ["a command app without command", "POST", "/api/v1/apps", { name: "A", kind: "command" }, 422, "VALIDATION_FAILED"],
    ["an unknown field", "POST", "/api/v1/apps", { name: "A", kind: "desktop", admin: true }, 422, "VALIDATION_FAILED"],
    ["a wrong type", "POST", "/api/v1/apps", { name: 5, kind: "desktop" }, 422, "VALIDATION_FAILED"],
    ["an unknown kind", "POST", "/api/v1/apps", { name: "A", kind: "game" }, 422, "VALIDATION_FAILED"],
    ["an empty name", "POST", "/api/v1/apps", { name: "  ", kind: "desktop" }, 422, "VALIDATION_FAILED"],
    ["a relative box-art path", "POST", "/api/v1/apps", { name: "A", kind: "desktop", boxArtPath: "x.png" }, 422, "VALIDATION_FAILED"],
    ["a VM name with a slash", "POST", "/api/v1/apps", { name: "A", kind: "vm", vmName: "../etc" }, 422, "VALIDATION_FAILED"],
    ["a body that is an array", "POST", "/api/v1/apps", [1, 2], 422, "VALIDATION_FAILED"],
    ["an empty patch", "PATCH", "/api/v1/apps/1", {}, 422, "VALIDATION_FAILED"],
    ["a patch that breaks the kind rules", "PATCH", "/api/v1/apps/1", { kind: "vm" }, 422, "INVALID_INPUT"],
    ["a patch to a missing app", "PATCH", "/api/v1/apps/999", { sortOrder: 1 }, 404, "NOT_FOUND"],
    ["a non-numeric id", "GET", "/api/v1/apps/abc", undefined, 422, "VALIDATION_FAILED"],
    ["a zero id", "DELETE", "/api/v1/apps/0", undefined, 422, "VALIDATION_FAILED"],
    ["an unknown route", "GET", "/api/v1/nothing-here", undefined, 404, "NOT_FOUND"],
  ];
  for (const [name, method, path, body, status, code] of bad) {
    test(`${name} → ${status} ${code}, nothing changed`, async () => {
      const before = await appsSnapshot();
      const r = await call(method, path, body);
      expect(r.status).toBe(status);
      expect(r.body.error.code).toBe(code);
      expect(typeof r.body.error.message).toBe("string");
      expect(r.text).not.toMatch(/at \w+ \(|\.ts:\d+/); // no stack trace
      expect(await appsSnapshot()).toEqual(before);
    });
  }

  test("malformed JSON → 400 MALFORMED_BODY, nothing changed", async () => {
    const before = await appsSnapshot();
    const r = await call("POST", "/api/v1/apps", undefined, { body: '{"name": "A", "kind": ' });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe("MALFORMED_BODY");
    expect(await appsSnapshot()).toEqual(before);
  });

  test("an oversized body → 413 BODY_TOO_LARGE, nothing changed", async () => {
    const before = await appsSnapshot();
    const r = await call("POST", "/api/v1/apps", { name: "A", kind: "command", command: "x".repeat(5000) });
    expect(r.status).toBe(413);
    expect(r.body.error.code).toBe("BODY_TOO_LARGE");
    expect(await appsSnapshot()).toEqual(before);
  });
});
