/**
 * Cost of the auth layer per request (prints figures, asserts nothing). The service runs in
 * its own process (`serve` from source); this process is the load generator on loopback:
 * bounded rounds of a fixed request count, interleaved, best round of each kind reported.
 *
 *   - GET /api/v1/health, no credentials, and with a header of the Bearer header's size that
 *     the server ignores (the baseline: same server, same bytes, no credential to verify);
 *   - GET /api/v1/health with a Bearer token (the token is verified even on a public route);
 *   - GET /api/v1/auth/whoami with a Bearer token and with a browser-session cookie;
 *   - the JSON bounds scanner on hostile bodies, in-process (µs per body).
 *
 *   npm run bench:auth     (BENCH_REQUESTS=20000 BENCH_ROUNDS=5)
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { checkJsonLimits } from "../../src/auth/json-limits.ts";

const ROOT = resolve(import.meta.dir, "..", "..");
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 20_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const CONCURRENCY = 32;

const stateDir = mkdtempSync(join(tmpdir(), "neuron-bench-auth-"));
const probe = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response() });
const port = probe.port!;
probe.stop(true);
const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: stateDir, NEURON_CONFIG: join(ROOT, "test", "fixtures", "config", "test.json"), NEURON_GAMESTREAM_ENABLED: "false", NEURON_LOG_LEVEL: "error" };
const proc = Bun.spawn([process.execPath, join(ROOT, "src", "main.ts"), "serve", "--port", String(port), "--state-dir", stateDir, "--log-format", "json"], { env, stdout: "ignore", stderr: "ignore" });
const base = `http://127.0.0.1:${port}`;

try {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const ok = await fetch(`${base}/api/v1/health`).then((r) => r.ok, () => false);
    if (ok) break;
    if (Date.now() > deadline) throw new Error("serve did not answer within 20 s");
    await Bun.sleep(50);
  }
  await Bun.sleep(300); // the local socket comes up right after TCP
  const cli = (...args: string[]) => {
    const r = Bun.spawnSync([process.execPath, join(ROOT, "src", "main.ts"), ...args, "--state-dir", stateDir, "--json"], { env, stdout: "pipe", stderr: "pipe" });
    if (r.exitCode !== 0) throw new Error(r.stderr.toString());
    return JSON.parse(r.stdout.toString());
  };
  const token: string = cli("token", "create", "--name", "bench", "--scope", "admin").token;
  const code: string = cli("token", "login-code").code;
  const login = await fetch(`${base}/api/v1/auth/session`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ code }) });
  const cookie = login.headers.get("set-cookie")!.split(";")[0]!;

  const kinds: Record<string, { path: string; headers: Record<string, string> }> = {
    "health, no credentials": { path: "/api/v1/health", headers: {} },
    // the same bytes on the wire as the Bearer case, in a header the server ignores: like with like
    "health, same-size unrelated header": { path: "/api/v1/health", headers: { "x-bench-pad": `Bearer ${token}` } },
    "health, Bearer token": { path: "/api/v1/health", headers: { authorization: `Bearer ${token}` } },
    "whoami, Bearer token": { path: "/api/v1/auth/whoami", headers: { authorization: `Bearer ${token}` } },
    "whoami, session cookie": { path: "/api/v1/auth/whoami", headers: { cookie } },
  };
  for (const k of Object.values(kinds)) {
    const r = await fetch(base + k.path, { headers: k.headers });
    if (r.status !== 200) throw new Error(`${k.path}: ${r.status}`);
  }

  async function round(path: string, headers: Record<string, string>): Promise<number> {
    let left = REQUESTS;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (left-- > 0) await (await fetch(base + path, { headers })).arrayBuffer();
      }),
    );
    return ((performance.now() - t0) * 1000) / REQUESTS;
  }

  const best: Record<string, number> = {};
  for (let i = 0; i < ROUNDS; i++)
    for (const [name, k] of Object.entries(kinds)) {
      const us = await round(k.path, k.headers);
      best[name] = Math.min(best[name] ?? Infinity, us);
    }
  const baseline = best["health, same-size unrelated header"]!;
  for (const [name, us] of Object.entries(best))
    console.log(JSON.stringify({ bench: "auth", case: name, usPerRequest: Math.round(us * 100) / 100, reqPerS: Math.round(1e6 / us), vsHealthSameSizeHeader: Math.round((us / baseline) * 1000) / 1000 }));

  // The same comparison without the network in between: app.handle on an in-process core, best of
  // interleaved rounds, so the auth layer's own cost per request shows apart from loopback noise.
  {
    const { testCore } = await import("../helpers/env.ts");
    const { createApp } = await import("../../src/api/app.ts");
    const { attachTransport } = await import("../../src/auth/caller.ts");
    const ctx = testCore({ gamestreamEnabled: false });
    try {
      const app = createApp(ctx.core);
      const tok = ctx.core.auth.createToken("inproc", "admin", "bench").token;
      const variants: Record<string, Record<string, string>> = {
        "in-process health, same-size unrelated header": { "x-bench-pad": `Bearer ${tok}` },
        "in-process health, Bearer token": { authorization: `Bearer ${tok}` },
      };
      const N = 20_000;
      const bestIn: Record<string, number> = {};
      for (let r = 0; r < ROUNDS * 2; r++)
        for (const [name, headers] of Object.entries(variants)) {
          const t0 = performance.now();
          for (let i = 0; i < N; i++) {
            const req = attachTransport(new Request("http://127.0.0.1:8547/api/v1/health", { headers }), { kind: "tcp", remoteIp: "127.0.0.1", tls: false });
            await (await app.handle(req)).arrayBuffer();
          }
          bestIn[name] = Math.min(bestIn[name] ?? Infinity, ((performance.now() - t0) * 1000) / N);
        }
      const base = bestIn["in-process health, same-size unrelated header"]!;
      const authUs = bestIn["in-process health, Bearer token"]! - base;
      for (const [name, us] of Object.entries(bestIn)) console.log(JSON.stringify({ bench: "auth", case: name, usPerRequest: Math.round(us * 1000) / 1000, vsSameSizeHeader: Math.round((us / base) * 1000) / 1000 }));
      console.log(JSON.stringify({ bench: "auth", case: "Bearer verification cost over a loopback request", authUs: Math.round(authUs * 1000) / 1000, loopbackUsPerRequest: Math.round(baseline * 100) / 100, impliedRatio: Math.round(((baseline + authUs) / baseline) * 1000) / 1000 }));
    } finally {
      ctx.cleanup();
    }
  }

  const limits = { depth: 32, keysPerObject: 1000, values: 100_000, stringBytes: 8 * 1024 * 1024 };
  const bodies: Record<string, Uint8Array> = {
    "depth 100,000": Buffer.from("[".repeat(100_000) + "]".repeat(100_000)),
    "1M keys": Buffer.from("{" + Array.from({ length: 1_000_000 }, (_, i) => `"${i}":0`).join(",") + "}"),
    "10 MB string": Buffer.from(`{"name":"${"x".repeat(10 * 1024 * 1024)}"}`),
    "ordinary 1 KB app": Buffer.from(JSON.stringify({ name: "A".repeat(900), kind: "command", command: "/usr/bin/true" })),
  };
  for (const [name, body] of Object.entries(bodies)) {
    let bestUs = Infinity;
    for (let i = 0; i < 20; i++) {
      const t0 = performance.now();
      checkJsonLimits(body, limits);
      bestUs = Math.min(bestUs, (performance.now() - t0) * 1000);
    }
    console.log(JSON.stringify({ bench: "auth", case: `json bounds scan: ${name}`, bytes: body.length, refused: checkJsonLimits(body, limits)?.limit ?? null, usBest: Math.round(bestUs * 10) / 10 }));
  }
} finally {
  proc.kill("SIGTERM");
  await Promise.race([proc.exited, Bun.sleep(5000)]);
  rmSync(stateDir, { recursive: true, force: true });
}
