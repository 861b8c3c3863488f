/**
 * The listeners for real: the local socket judged by the kernel's peer
 * credentials of a real non-root user (made here with useradd, run with
 * setpriv), TLS required beyond loopback, tokens over TCP, and hostile bodies
 * and headers answered fast while a health loop keeps going.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { connect as netConnect } from "node:net";
import { join } from "node:path";
import { startServer, type RunningServer } from "../../src/api/server.ts";
import { BUN, REPO_ROOT, runCli, tempDir, testCore } from "../helpers/env.ts";

const isRoot = process.getuid?.() === 0;
const haveUserTools = ["/usr/sbin/useradd", "/usr/sbin/groupadd", "/usr/bin/setpriv", "/usr/bin/curl"].every((p) => existsSync(p));

function sh(cmd: string[]): { code: number; out: string; err: string } {
  const r = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe", timeout: 30_000 });
  return { code: r.exitCode ?? -1, out: r.stdout.toString(), err: r.stderr.toString() };
}

/** For commands that talk to a server in this process: its event loop must keep running meanwhile. */
async function shAsync(cmd: string[]): Promise<{ code: number; out: string; err: string }> {
  const p = Bun.spawn(cmd, { stdout: "pipe", stderr: "pipe", timeout: 30_000 });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, out, err };
}

describe.skipIf(!isRoot || !haveUserTools)("local socket and a real non-root user (needs root, useradd, setpriv, curl)", () => {
  const suffix = `${process.pid % 100000}`;
  const user = `nat-u${suffix}`;
  const group = `nat-g${suffix}`;
  let ctx: ReturnType<typeof testCore>;
  let server: RunningServer;
  let uid = 0;
  let gid = 0;

  beforeAll(async () => {
    expect(sh(["groupadd", group]).code).toBe(0);
    expect(sh(["useradd", "--no-create-home", "--shell", "/bin/sh", user]).code).toBe(0);
    uid = Number(sh(["id", "-u", user]).out.trim());
    gid = Number(sh(["id", "-g", user]).out.trim());
    ctx = testCore({ port: 0, adminGroup: group, gamestreamEnabled: false });
    chmodSync(ctx.core.config.stateDir, 0o755); // the test user must reach the socket inside
    server = await startServer(ctx.core);
  });
  afterAll(async () => {
    await server?.stop();
    ctx?.cleanup();
    sh(["userdel", user]);
    sh(["groupdel", group]);
  });

  const asUser = (...cmd: string[]) => shAsync(["setpriv", "--reuid", String(uid), "--regid", String(gid), "--init-groups", ...cmd]);
  const curl = (...args: string[]) => asUser("curl", "-s", "-w", "\\n%{http_code}", "--max-time", "10", "--unix-socket", server.socketPath, ...args);

  test("the socket is 0660 to the admin group; a user outside it cannot even connect", async () => {
    const st = statSync(server.socketPath);
    expect(st.mode & 0o777).toBe(0o660);
    expect(st.gid).toBe(Number(sh(["getent", "group", group]).out.split(":")[2]));
    const r = await curl("http://localhost/api/v1/apps");
    expect(r.code).toBe(7); // curl: failed to connect (EACCES)
  });

  test("with the socket opened to everyone, peer credentials still refuse that user (403) and change nothing", async () => {
    chmodSync(server.socketPath, 0o666);
    try {
      const before = ctx.core.apps.list().length;
      const get = await curl("http://localhost/api/v1/apps");
      expect(get.out.trim().split("\n").pop()).toBe("403");
      expect(get.out).toContain(`local user ${user} (uid ${uid}) is neither root nor in the group ${group}`);
      const post = await curl("-X", "POST", "-H", "content-type: application/json", "-d", '{"name":"Not yours","kind":"desktop"}', "http://localhost/api/v1/apps");
      expect(post.out.trim().split("\n").pop()).toBe("403");
      expect(ctx.core.apps.list().length).toBe(before);
    } finally {
      chmodSync(server.socketPath, 0o660);
    }
  });

  test("once in the admin group the same user gets full access, the CLI works without sudo, and the audit names the uid", async () => {
    expect(sh(["gpasswd", "-a", user, group]).code).toBe(0);
    const get = await curl("http://localhost/api/v1/auth/whoami");
    expect(get.out.trim().split("\n").pop()).toBe("200");
    expect(JSON.parse(get.out.trim().split("\n")[0]!)).toEqual({ kind: "local", caller: `uid ${uid} (${user})`, scope: "admin" });
    const post = await curl("-X", "POST", "-H", "content-type: application/json", "-d", '{"name":"Group member app","kind":"desktop"}', "http://localhost/api/v1/apps");
    expect(post.out.trim().split("\n").pop()).toBe("201");
    // the CLI as that user: bun and the bundled CLI in a directory it can read (the checkout may sit under a 0700 directory)
    const cliDir = join(ctx.core.config.stateDir, "cli");
    mkdirSync(cliDir, { mode: 0o755 });
    copyFileSync(BUN, join(cliDir, "bun"));
    chmodSync(join(cliDir, "bun"), 0o755);
    const built = await Bun.build({ entrypoints: [join(REPO_ROOT, "src", "main.ts")], target: "bun", outdir: cliDir });
    expect(built.success).toBe(true);
    writeFileSync(join(cliDir, "config.json"), JSON.stringify({ gamestreamEnabled: false, mdns: false }), { mode: 0o644 });
    const cli = await asUser("env", `HOME=${cliDir}`, `NEURON_CONFIG=${join(cliDir, "config.json")}`, join(cliDir, "bun"), join(cliDir, "main.js"), "token", "create", "--name", "from-desktop", "--scope", "read", "--state-dir", ctx.core.config.stateDir, "--json");
    expect(cli.err).toBe("");
    expect(cli.code).toBe(0);
    expect(JSON.parse(cli.out).token).toMatch(/^nat_/);
    const audit = ctx.core.auth.audit({ limit: 10, action: "api.call" });
    expect(audit.find((r) => r.target === "POST /api/v1/apps")?.actor).toBe(`uid ${uid} (${user})`);
    expect(audit.find((r) => r.target === "POST /api/v1/tokens")?.actor).toBe(`uid ${uid} (${user})`);
  });
});

describe("TLS beyond loopback", () => {
  test("serve --host 0.0.0.0 without TLS refuses to start and names the setting", () => {
    const ctx = testCore();
    try {
      const r = runCli(["serve", "--host", "0.0.0.0", "--port", "0", "--state-dir", ctx.core.config.stateDir]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("apiTls.cert");
      expect(r.stderr).toContain("apiTls.selfSigned");
      expect(existsSync(join(ctx.core.config.stateDir, "api.sock"))).toBe(false);
    } finally {
      ctx.cleanup();
    }
  });

  test("the appliance's own certificate: HTTPS with its names as subjectAltNames; plain HTTP gets no API", async () => {
    const ctx = testCore({ port: 0, host: "0.0.0.0", apiTls: { selfSigned: true }, gamestreamEnabled: false });
    const server = await startServer(ctx.core);
    try {
      expect(server.tls).toBe("self-signed");
      expect(server.url).toStartWith("https://");
      const certPath = join(ctx.core.config.stateDir, "api-tls", "cert.pem");
      expect(statSync(join(ctx.core.config.stateDir, "api-tls", "key.pem")).mode & 0o777).toBe(0o600);
      const text = sh(["openssl", "x509", "-in", certPath, "-noout", "-ext", "subjectAltName"]).out;
      expect(text).toContain("DNS:localhost");
      expect(text).toContain("IP Address:127.0.0.1");
      const res = await fetch(`https://127.0.0.1:${server.port}/api/v1/health`, { tls: { ca: readFileSync(certPath, "utf8") } });
      expect(res.status).toBe(200);
      const token = ctx.core.auth.createToken("tls", "read", "test").token;
      const apps = await fetch(`https://localhost:${server.port}/api/v1/apps`, { headers: { authorization: `Bearer ${token}` }, tls: { ca: readFileSync(certPath, "utf8") } });
      expect(apps.status).toBe(200);
      const plain = await fetch(`http://127.0.0.1:${server.port}/api/v1/health`).then(
        (r) => r.status,
        () => "refused",
      );
      expect(plain).not.toBe(200);
    } finally {
      await server.stop();
      ctx.cleanup();
    }
  });
});

describe("hostile bodies and headers on a real socket", () => {
  // The service runs in its own process, so the bodies this test builds and sends never stall
  // the event loop whose health answers are measured.
  let dir: ReturnType<typeof tempDir>;
  let proc: ReturnType<typeof Bun.spawn>;
  let server: { url: string };
  let token: string;
  beforeAll(async () => {
    dir = tempDir("neuron-bombs-");
    const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const port = probe.port;
    probe.stop(true);
    const env = {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: dir.path,
      NEURON_CONFIG: join(REPO_ROOT, "test", "fixtures", "config", "test.json"),
      // a large body limit, so the JSON bounds (not the size limit) are what refuses the bombs
      NEURON_MAX_BODY_BYTES: String(32 * 1024 * 1024),
      NEURON_GAMESTREAM_ENABLED: "false",
    };
    proc = Bun.spawn([BUN, join(REPO_ROOT, "src", "main.ts"), "serve", "--port", String(port), "--state-dir", dir.path, "--log-format", "json"], { env, stdout: "ignore", stderr: "ignore" });
    server = { url: `http://127.0.0.1:${port}` };
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      const ok = await fetch(`${server.url}/api/v1/health`).then((r) => r.ok, () => false);
      if (ok && existsSync(join(dir.path, "api.sock"))) break;
      await Bun.sleep(50);
    }
    const made = runCli(["token", "create", "--name", "bombs", "--scope", "admin", "--state-dir", dir.path, "--json"], env);
    expect(made.stderr).toBe("");
    token = JSON.parse(made.stdout).token;
  });
  afterAll(async () => {
    proc?.kill("SIGTERM");
    await Promise.race([proc?.exited, Bun.sleep(5000)]);
    if (proc && proc.exitCode === null) proc.kill("SIGKILL");
    dir?.cleanup();
  });

  const appCount = async () => ((await (await fetch(`${server.url}/api/v1/apps`, { headers: { authorization: `Bearer ${token}` } })).json()) as { apps: unknown[] }).apps.length;

  function post(body: string | Uint8Array, headers: Record<string, string> = {}): Promise<{ status: number; ms: number }> {
    const t0 = performance.now();
    return fetch(`${server.url}/api/v1/apps`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json", ...headers }, body }).then(async (r) => {
      await r.arrayBuffer();
      return { status: r.status, ms: performance.now() - t0 };
    });
  }

  function rawRequest(head: string): Promise<string> {
    return new Promise((resolve) => {
      const u = new URL(server.url);
      const s = netConnect(Number(u.port), u.hostname, () => s.write(head));
      let out = "";
      const done = () => resolve(out.split("\r\n")[0] ?? "");
      s.setTimeout(5000, () => s.destroy());
      s.on("data", (d) => (out += d.toString("latin1")));
      s.on("close", done);
      s.on("error", done);
    });
  }

  test("depth 100,000, a million keys, 10 MB strings and header bombs are refused while health keeps answering", async () => {
    const bodies = {
      depth: "[".repeat(100_000) + "]".repeat(100_000),
      keys: "{" + Array.from({ length: 1_000_000 }, (_, i) => `"${i}":0`).join(",") + "}",
      str: `{"name":"${"x".repeat(10 * 1024 * 1024)}","kind":"desktop"}`,
      tooBig: new Uint8Array(40 * 1024 * 1024),
      bigHeader: `GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Bomb: ${"a".repeat(200_000)}\r\n\r\n`,
      manyHeaders: `GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n${Array.from({ length: 5000 }, (_, i) => `X-H${i}: v`).join("\r\n")}\r\n\r\n`,
    };
    const before = await appCount();
    // the health loop runs in a process of its own too: this one is busy building and sending the bombs
    const prober = Bun.spawn(
      [BUN, "-e", `const samples = []; const end = Date.now() + 60000; let stop = false;
        process.stdin.on("data", () => { stop = true; });
        while (!stop && Date.now() < end) { const t0 = performance.now(); await fetch("${server.url}/api/v1/health").then((r) => r.arrayBuffer()); samples.push(performance.now() - t0); await Bun.sleep(2); }
        console.log(JSON.stringify(samples)); process.exit(0);`],
      { stdin: "pipe", stdout: "pipe", stderr: "ignore" },
    );
    await Bun.sleep(300);
    const depth = await post(bodies.depth);
    const keys = await post(bodies.keys);
    const str = await post(bodies.str);
    const tooBig = await post(bodies.tooBig);
    const bigHeader = await rawRequest(bodies.bigHeader);
    const manyHeaders = await rawRequest(bodies.manyHeaders);
    await Bun.sleep(100);
    prober.stdin.write("stop\n");
    prober.stdin.end();
    const samples = JSON.parse(await new Response(prober.stdout).text()) as number[];
    expect([depth.status, keys.status, str.status, tooBig.status]).toEqual([400, 400, 400, 413]);
    expect(bigHeader).toMatch(/^HTTP\/1\.1 4\d\d/);
    expect(manyHeaders).toMatch(/^HTTP\/1\.1 4\d\d/);
    expect(await appCount()).toBe(before);
    samples.sort((a, b) => a - b);
    const p99 = samples[Math.floor(samples.length * 0.99)] ?? 0;
    console.log(`bombs: depth ${depth.ms.toFixed(1)} ms, 1M keys ${keys.ms.toFixed(1)} ms, 10 MB string ${str.ms.toFixed(1)} ms, 40 MB body ${tooBig.ms.toFixed(1)} ms; health during: ${samples.length} answers, p99 ${p99.toFixed(1)} ms`);
    expect(samples.length).toBeGreaterThan(5);
    expect(p99).toBeLessThan(50);
  }, 60_000);
});
