import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createApp } from "../../src/api/app.ts";
import { attachTransport } from "../../src/auth/caller.ts";
import { checkJsonLimits } from "../../src/auth/json-limits.ts";
import { hostName, hostPolicy } from "../../src/auth/hosts.ts";
import { testCore } from "../helpers/env.ts";

// A passwd/group pair of our own: uid 1500 is in the admin group "ops", 1600 is not.
let ctx: ReturnType<typeof testCore>;
let app: ReturnType<typeof createApp>;
let admin: string;
let reader: string;

beforeAll(() => {
  ctx = testCore({ adminGroup: "ops" });
  const etc = join(ctx.core.config.stateDir, "etc");
  mkdirSync(etc);
  writeFileSync(join(etc, "passwd"), "root:x:0:0::/root:/bin/sh\nalice:x:1500:1500::/home/alice:/bin/sh\nbob:x:1600:1600::/home/bob:/bin/sh\n");
  writeFileSync(join(etc, "group"), "root:x:0:\nops:x:990:alice\nalice:x:1500:\nbob:x:1600:\n");
  ctx.core.close();
  ctx = testCore({ adminGroup: "ops", stateDir: ctx.core.config.stateDir, etcDir: etc });
  app = createApp(ctx.core);
  admin = ctx.core.auth.createToken("admin-test", "admin", "test").token;
  reader = ctx.core.auth.createToken("reader-test", "read", "test").token;
});
afterAll(() => ctx.cleanup());

type Via = { unix: number; gid?: number } | { tcp: string; tls?: boolean };
async function call(path: string, init: RequestInit & { via?: Via; url?: string } = {}) {
  const req = new Request(init.url ?? `http://127.0.0.1:8547${path}`, init);
  const via = init.via ?? { tcp: "127.0.0.1" };
  if ("unix" in via) attachTransport(req, { kind: "unix", uid: via.unix, gid: via.gid ?? via.unix, pid: 1 });
  else attachTransport(req, { kind: "tcp", remoteIp: via.tcp, tls: via.tls ?? false });
  const res = await app.handle(req);
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? (JSON.parse(text) as any) : null };
}
const json = (body: unknown, headers: Record<string, string> = {}) => ({
  method: "POST",
  headers: { "content-type": "application/json", ...headers },
  body: JSON.stringify(body),
});
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
const appCount = () => ctx.core.apps.list().length;

describe("who is calling", () => {
  test("health and the OpenAPI document need no credentials; everything else does (401 with a Bearer challenge)", async () => {
    expect((await call("/api/v1/health")).status).toBe(200);
    expect((await call("/swagger/json")).status).toBe(200);
    for (const path of ["/api/v1/apps", "/api/v1/system", "/api/v1/pairings", "/api/v1/audit", "/api/v1/tokens"]) {
      const r = await call(path);
      expect(r.status).toBe(401);
      expect(r.body.error.code).toBe("UNAUTHENTICATED");
      expect(r.headers.get("www-authenticate")).toContain("Bearer");
    }
  });

  test("local socket: root and the admin group (by membership or primary group) get everything, others nothing", async () => {
    expect((await call("/api/v1/apps", { via: { unix: 0 } })).status).toBe(200);
    expect((await call("/api/v1/apps", { via: { unix: 1500 } })).status).toBe(200);
    expect((await call("/api/v1/apps", { via: { unix: 1600, gid: 990 } })).status).toBe(200);
    const bob = await call("/api/v1/apps", { via: { unix: 1600 } });
    expect(bob.status).toBe(403);
    expect(bob.body.error.message).toContain("bob");
    expect(bob.body.error.message).toContain("ops");
    const before = appCount();
    expect((await call("/api/v1/apps", { ...json({ name: "Bob's", kind: "desktop" }), via: { unix: 1600 } })).status).toBe(403);
    expect(appCount()).toBe(before);
    expect((await call("/api/v1/auth/whoami", { via: { unix: 1500 } })).body).toEqual({ kind: "local", caller: "uid 1500 (alice)", scope: "admin" });
  });

  test("tokens: read may GET only, admin everything, unknown and revoked ones get 401", async () => {
    expect((await call("/api/v1/apps", { headers: bearer(reader) })).status).toBe(200);
    const before = appCount();
    const denied = await call("/api/v1/apps", json({ name: "Reader's", kind: "desktop" }, bearer(reader)));
    expect(denied.status).toBe(403);
    expect(denied.body.error.code).toBe("READ_ONLY");
    expect(appCount()).toBe(before);
    const made = await call("/api/v1/apps", json({ name: "Admin's", kind: "desktop" }, bearer(admin)));
    expect(made.status).toBe(201);
    expect(appCount()).toBe(before + 1);
    expect((await call("/api/v1/apps", { headers: bearer("nat_" + "x".repeat(43)) })).status).toBe(401);
    expect((await call("/api/v1/apps", { headers: { authorization: "Basic YWxhZGRpbjpvcGVu" } })).status).toBe(401);
    // a presented token is checked even on a public route
    expect((await call("/api/v1/health", { headers: bearer("nat_bogus") })).status).toBe(401);

    const temp = await call("/api/v1/tokens", json({ name: "temp", scope: "admin" }, bearer(admin)));
    expect(temp.status).toBe(201);
    expect(temp.body.token).toMatch(/^nat_[A-Za-z0-9_-]{43}$/);
    expect((await call("/api/v1/auth/whoami", { headers: bearer(temp.body.token) })).body.caller).toBe("token temp");
    const list = await call("/api/v1/tokens", { headers: bearer(reader) });
    expect(list.body.map((t: { name: string }) => t.name)).toEqual(["admin-test", "reader-test", "temp"]);
    expect(JSON.stringify(list.body)).not.toContain(temp.body.token);
    expect(JSON.stringify(list.body)).not.toContain("Hash");
    expect((await call("/api/v1/tokens", json({ name: "temp" }, bearer(admin)))).status).toBe(409);
    expect((await call("/api/v1/tokens", json({ name: "bad name!" }, bearer(admin)))).status).toBe(422);
    expect((await call("/api/v1/tokens/temp", { method: "DELETE", headers: bearer(admin) })).status).toBe(204);
    expect((await call("/api/v1/apps", { headers: bearer(temp.body.token) })).status).toBe(401);
    expect((await call("/api/v1/tokens/temp", { method: "DELETE", headers: bearer(admin) })).status).toBe(404);
  });

  test("browser sessions: a one-time login code → HttpOnly SameSite=Strict cookie; mutations need the CSRF header", async () => {
    const code = await call("/api/v1/auth/login-codes", json({ scope: "admin" }, bearer(admin)));
    expect(code.status).toBe(201);
    const login = await call("/api/v1/auth/session", json({ code: code.body.code }));
    expect(login.status).toBe(200);
    const cookie = login.headers.get("set-cookie")!;
    expect(cookie).toMatch(/^neuron_session=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=\d+$/);
    const session = { cookie: cookie.split(";")[0]! };
    // the code works once
    expect((await call("/api/v1/auth/session", json({ code: code.body.code }))).status).toBe(401);
    expect((await call("/api/v1/apps", { headers: session })).status).toBe(200);
    const before = appCount();
    const noCsrf = await call("/api/v1/apps", json({ name: "Cookie only", kind: "desktop" }, session));
    expect(noCsrf.status).toBe(403);
    expect(noCsrf.body.error.code).toBe("CSRF_TOKEN_MISSING");
    expect((await call("/api/v1/apps", json({ name: "Wrong CSRF", kind: "desktop" }, { ...session, "x-csrf-token": "x".repeat(43) }))).status).toBe(403);
    expect(appCount()).toBe(before);
    const ok = await call("/api/v1/apps", json({ name: "With CSRF", kind: "desktop" }, { ...session, "x-csrf-token": login.body.csrfToken }));
    expect(ok.status).toBe(201);
    const who = await call("/api/v1/auth/whoami", { headers: session });
    expect(who.body.kind).toBe("session");
    expect(who.body.caller).toContain("token admin-test");
    // logout ends it
    expect((await call("/api/v1/auth/session", { method: "DELETE", headers: { ...session, "x-csrf-token": login.body.csrfToken } })).status).toBe(204);
    expect((await call("/api/v1/apps", { headers: session })).status).toBe(401);
  });

  test("wrong login codes are refused and an address that keeps guessing is rate-limited", async () => {
    for (let i = 0; i < 10; i++) expect((await call("/api/v1/auth/session", { ...json({ code: `guess-${i}` }), via: { tcp: "192.0.2.7" } })).status).toBe(401);
    const limited = await call("/api/v1/auth/session", { ...json({ code: "guess-11" }), via: { tcp: "192.0.2.7" } });
    expect(limited.status).toBe(429);
    // another address is unaffected
    expect((await call("/api/v1/auth/session", { ...json({ code: "other" }), via: { tcp: "192.0.2.8" } })).status).toBe(401);
  });
});

describe("cross-site and rebinding", () => {
  test("a Host that is not the appliance's is refused before any handler runs, on every method", async () => {
    for (const method of ["GET", "POST", "DELETE", "PATCH"]) {
      const r = await call("/api/v1/apps", { method, url: "http://rebind.example:8547/api/v1/apps", headers: { ...bearer(admin), "content-type": "application/json" }, body: method === "GET" ? undefined : "{}" });
      expect(r.status).toBe(403);
      expect(r.body.error.code).toBe("HOST_NOT_ALLOWED");
    }
    const spoofed = await call("/api/v1/health", { headers: { host: "evil.example" } });
    expect(spoofed.status).toBe(403);
    expect(spoofed.body.error.message).toContain("evil.example");
    for (const host of ["localhost:8547", "127.0.0.1", "[::1]:8547"]) expect((await call("/api/v1/health", { url: `http://${host}/api/v1/health` })).status).toBe(200);
  });

  test("a foreign Origin gets 403, the appliance's own passes; cross-site fetch metadata cannot mutate", async () => {
    const before = appCount();
    for (const origin of ["http://evil.example", "null", "http://127.0.0.1:9999", "https://127.0.0.1:8547"]) {
      const r = await call("/api/v1/apps", json({ name: "x", kind: "desktop" }, { ...bearer(admin), origin }));
      expect(r.status).toBe(403);
      expect(r.body.error.code).toBe("ORIGIN_NOT_ALLOWED");
    }
    expect((await call("/api/v1/apps", { headers: { ...bearer(admin), origin: "http://evil.example" } })).status).toBe(403);
    expect((await call("/api/v1/apps", json({ name: "x", kind: "desktop" }, { ...bearer(admin), "sec-fetch-site": "cross-site" }))).status).toBe(403);
    expect((await call("/api/v1/apps", json({ name: "x", kind: "desktop" }, { ...bearer(admin), "sec-fetch-site": "same-site" }))).status).toBe(403);
    expect(appCount()).toBe(before);
    const own = await call("/api/v1/apps", json({ name: "Own origin", kind: "desktop" }, { ...bearer(admin), origin: "http://127.0.0.1:8547", "sec-fetch-site": "same-origin" }));
    expect(own.status).toBe(201);
  });

  test("mutations take application/json only: forms, multipart and text/plain get 415 and change nothing", async () => {
    const before = appCount();
    const form = new FormData();
    form.set("name", "Form");
    form.set("kind", "desktop");
    const bodies: RequestInit[] = [
      { body: "name=Form&kind=desktop", headers: { "content-type": "application/x-www-form-urlencoded" } },
      { body: form },
      { body: '{"name":"Plain","kind":"desktop"}', headers: { "content-type": "text/plain" } },
      { body: '{"name":"None","kind":"desktop"}', headers: { "content-type": "" } },
    ];
    for (const b of bodies) {
      const r = await call("/api/v1/apps", { method: "POST", ...b, headers: { ...bearer(admin), ...(b.headers as Record<string, string>) } });
      expect(r.status).toBe(415);
    }
    expect(appCount()).toBe(before);
    expect((await call("/api/v1/apps", json({ name: "Charset", kind: "desktop" }, { ...bearer(admin), "content-type": "application/json; charset=utf-8" }))).status).toBe(201);
  });
});

describe("bounded parsing", () => {
  test("depth, keys, values and string length are refused before parsing with 400", async () => {
    const deep = "[".repeat(100_000) + "]".repeat(100_000);
    const manyKeys = "{" + Array.from({ length: 5000 }, (_, i) => `"k${i}":0`).join(",") + "}";
    const manyValues = "[" + "0,".repeat(150_000) + "0]";
    for (const body of [deep, manyKeys, manyValues]) {
      const before = appCount();
      const r = await call("/api/v1/apps", { method: "POST", headers: { ...bearer(admin), "content-type": "application/json" }, body });
      expect(r.status).toBe(r.status === 413 ? 413 : 400);
      if (r.status === 400) expect(r.body.error.code).toBe("BODY_LIMIT");
      expect(appCount()).toBe(before);
    }
  });

  test("the scanner itself: strings with escapes, nesting inside strings, per-object key counts", () => {
    const limits = { depth: 3, keysPerObject: 2, values: 100, stringBytes: 8 };
    expect(checkJsonLimits(Buffer.from('{"a":[1,2],"b":{"c":"[[[[[["}}'), limits)).toBeNull();
    expect(checkJsonLimits(Buffer.from('[[[[1]]]]'), limits)?.limit).toBe("depth");
    expect(checkJsonLimits(Buffer.from('{"a":1,"b":2,"c":3}'), limits)?.limit).toBe("keysPerObject");
    expect(checkJsonLimits(Buffer.from('{"a":{"x":1,"y":2},"b":{"x":1,"y":2}}'), limits)).toBeNull();
    expect(checkJsonLimits(Buffer.from('"123456789"'), limits)?.limit).toBe("stringBytes");
    expect(checkJsonLimits(Buffer.from('"a\\"b\\"c\\"d"'), { ...limits, stringBytes: 12 })).toBeNull();
    expect(checkJsonLimits(Buffer.from("[" + "1,".repeat(200) + "1]"), limits)?.limit).toBe("values");
    // an unterminated string cannot run past the end
    expect(checkJsonLimits(Buffer.from('"abc\\'), { ...limits, stringBytes: 100 })).toBeNull();
  });

  test("hostPolicy: ports and brackets, wildcard binds accept interface addresses, names are case-blind", () => {
    expect(hostName("LocalHost:8547")).toBe("localhost");
    expect(hostName("[::1]:8547")).toBe("::1");
    expect(hostName("a:b:c")).toBeNull();
    expect(hostName("host:99999999")).toBeNull();
    const p = hostPolicy({ bindHost: "0.0.0.0", extraNames: ["neuron.lan"], machineName: "box" });
    expect(p.allows("127.0.0.1:1")).toBe(true);
    expect(p.allows("NEURON.lan")).toBe(true);
    expect(p.allows("box.local:8547")).toBe(true);
    expect(p.allows("0.0.0.0")).toBe(false);
    expect(p.allows("evil.example")).toBe(false);
    const q = hostPolicy({ bindHost: "127.0.0.1", extraNames: [], machineName: "box" });
    expect(q.allows("192.0.2.1")).toBe(false);
  });
});

describe("audit", () => {
  test("every mutating call that got past authentication leaves who and what; GET /audit lists them newest first", async () => {
    await call("/api/v1/apps", { ...json({ name: "Audited", kind: "desktop" }), via: { unix: 1500 } });
    await call("/api/v1/apps", json({ name: "Refused", kind: "desktop" }, bearer(reader)));
    const rows = (await call("/api/v1/audit?limit=5&action=api.call", { headers: bearer(reader) })).body as { actor: string; target: string; status: string; details: { status: number } }[];
    expect(rows[0]).toMatchObject({ actor: "token reader-test", target: "POST /api/v1/apps", status: "failed", details: { status: 403 } });
    expect(rows[1]).toMatchObject({ actor: "uid 1500 (alice)", target: "POST /api/v1/apps", status: "applied", details: { status: 201 } });
    const byAlice = (await call("/api/v1/audit?actor=uid%201500", { headers: bearer(reader) })).body as { actor: string }[];
    expect(byAlice.length).toBeGreaterThan(0);
    expect(byAlice.every((r) => r.actor.startsWith("uid 1500"))).toBe(true);
    expect((await call("/api/v1/audit?limit=0", { headers: bearer(reader) })).status).toBe(422);
  });
});
