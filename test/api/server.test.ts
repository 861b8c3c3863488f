import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { statSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { startServer, type RunningServer } from "../../src/api/server.ts";
import { testCore } from "../helpers/env.ts";

let ctx: ReturnType<typeof testCore>;
let server: RunningServer;
let auth: Record<string, string>;
beforeAll(async () => {
  ctx = testCore({ port: 0, maxBodyBytes: 2048 });
  server = await startServer(ctx.core);
  auth = { authorization: `Bearer ${ctx.core.auth.createToken("server-test", "admin", "test").token}` };
});
afterAll(async () => {
  await server.stop();
  ctx.cleanup();
});

describe("API server on real sockets", () => {
  test("listens on loopback by default", async () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const res = await fetch(`${server.url}/api/v1/health`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "ok" });
  });

  test("the local API socket answers too and is private (0600 without the admin group)", async () => {
    expect(statSync(server.socketPath).mode & 0o777).toBe(ctx.core.users.groupId(ctx.core.config.adminGroup) === null ? 0o600 : 0o660);
    const res = await fetch("http://localhost/api/v1/health", { unix: server.socketPath });
    expect(await res.json()).toEqual({ status: "ok" });
  });

  test("a chunked body over the limit is refused with 413 and changes nothing", async () => {
    const before = await (await fetch(`${server.url}/api/v1/apps`, { headers: auth })).json();
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(
        `${server.url}/api/v1/apps`,
        { method: "POST", headers: { ...auth, "content-type": "application/json", "transfer-encoding": "chunked" } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on("error", reject);
      req.write('{"name":"Big","kind":"command","command":"');
      for (let i = 0; i < 8; i++) req.write("x".repeat(1024));
      req.end('"}');
    });
    expect(status).toBe(413);
    expect(await (await fetch(`${server.url}/api/v1/apps`, { headers: auth })).json()).toEqual(before);
  });

  test("the system endpoint reports version, native library, schema and doctor", async () => {
    const info = (await (await fetch(`${server.url}/api/v1/system`, { headers: auth })).json()) as any;
    expect(info.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(info.native).toMatchObject({ loaded: true });
    expect(info.native.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(info.db.schemaVersion).toBeGreaterThan(0);
    expect(info.doctor.checks.map((c: { id: string }) => c.id)).toEqual([
      "kvm",
      "iommu",
      "libvirt",
      "qemu",
      "win11",
      "uinput",
      "shm",
      "vm-shm",
      "vm-qmp",
      "vm-graphics",
      "native",
      "encoder",
      "codecs",
      "db",
    ]);
  });
});
