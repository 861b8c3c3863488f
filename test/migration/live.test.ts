/**
 * The live path over the real agent channel (preamble, mutual TLS, frames) on a unix socket: the
 * Linux agent serves a fixture tree read-only; the host mirrors a profile (chunked, checksummed,
 * resumable), then migrates it like a folder. Bad paths are refused by the agent.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, truncateSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { ensureAgentCertificates, type AgentCertificates } from "../../src/guest/certs.ts";
import { AgentClient } from "../../src/guest/client.ts";
import { silentLogger } from "../../src/log.ts";
import { mirrorFromAgent, type AgentRequest } from "../../src/migration/vm-source.ts";
import { serveAgent } from "../guest/agent-env.ts";
import { tempDir, testCore } from "../helpers/env.ts";
import { writeWindowsTree } from "./windows-tree.ts";

describe("migration from a running VM through the guest agent", () => {
  let dir: ReturnType<typeof tempDir>;
  let certs: AgentCertificates;
  let served: Awaited<ReturnType<typeof serveAgent>>;
  let client: AgentClient;
  let request: AgentRequest;
  let guestRoot = "";
  beforeAll(async () => {
    dir = tempDir("neuron-migrate-live-");
    guestRoot = join(dir.path, "guest");
    mkdirSync(guestRoot);
    await writeWindowsTree(guestRoot, { ntfs: false, bulkFiles: 20, bulkBytes: 3 << 20 });
    certs = await ensureAgentCertificates({ stateDir: dir.path, openssl: "openssl" }, "win11");
    const sock = join(dir.path, "agent.sock");
    mkdirSync(join(dir.path, "os"));
    served = await serveAgent({ socketPath: sock, dir: join(dir.path, "os"), tls: certs.guest, usersDir: join(guestRoot, "Users") });
    client = new AgentClient({ socketPath: sock, tls: certs.host, log: silentLogger, requestTimeoutMs: 10_000, connectTimeoutMs: 5000, backoff: { initialMs: 20, maxMs: 200 } });
    await client.connectOnce();
    request = (cmd, data) => client.request(cmd, data);
  }, 60_000);
  afterAll(async () => {
    client?.stop();
    await served?.close();
    dir?.cleanup();
  });

  test("the agent lists profiles, refuses paths that leave the users folder or go through a link", async () => {
    const p = (await request("fs_profiles", {})) as { profiles: { name: string }[] };
    expect(p.profiles.map((x) => x.name)).toEqual(["Default", "Public", "alice", "bob"]);
    await expect(request("fs_list", { path: "../.." })).rejects.toThrow(/leaves/);
    await expect(request("fs_read", { path: "/etc/passwd", offset: 0, length: 10 })).rejects.toThrow(/relative/);
    await expect(request("fs_list", { path: "alice/Documents/Eigene Dateien" })).rejects.toThrow(/link/);
    await expect(request("fs_read", { path: "alice/Documents/CON.txt", offset: 0, length: 2 << 20 })).rejects.toThrow();
  });

  test("mirror: chunked and checksummed; a cut transfer resumes; a second pass fetches nothing; then it migrates like a folder", async () => {
    const staging = join(dir.path, "staging");
    const first = await mirrorFromAgent(request, staging, { user: "alice" });
    expect(first.files).toBeGreaterThan(20);
    expect(first.links).toContain("alice/Documents/Eigene Dateien");
    const big = "Users/alice/Documents/bulk/0/file-3.bin";
    expect(readFileSync(join(staging, big)).equals(readFileSync(join(guestRoot, big)))).toBe(true);
    // a transfer cut half way (its part waits in .partial): the next pass continues from it
    const part = join(staging, ".partial", createHash("sha256").update(big.slice("Users/".length)).digest("hex"));
    mkdirSync(dirname(part), { recursive: true });
    renameSync(join(staging, big), part);
    truncateSync(part, 1 << 20);
    const again = await mirrorFromAgent(request, staging, { user: "alice" });
    expect(again.fetchedBytes).toBe((3 << 20) - (1 << 20));
    expect(readFileSync(join(staging, big)).equals(readFileSync(join(guestRoot, big)))).toBe(true);
    expect(existsSync(part)).toBe(false);
    // a complete copy that differs from the VM's file is fetched whole, never continued
    truncateSync(join(staging, big), 1 << 20);
    const whole = await mirrorFromAgent(request, staging, { user: "alice" });
    expect(whole.fetchedBytes).toBe(3 << 20);
    expect(readFileSync(join(staging, big)).equals(readFileSync(join(guestRoot, big)))).toBe(true);
    const third = await mirrorFromAgent(request, staging, { user: "alice" });
    expect(third.fetchedBytes).toBe(0);
    expect(existsSync(join(staging, "Users/alice/AppData/Local/Google/Chrome/User Data/Default/Cache"))).toBe(false);
    expect(existsSync(join(staging, "Users/bob"))).toBe(false);

    const home = join(dir.path, "home");
    mkdirSync(home);
    const env = testCore({ etcDir: join(dir.path, "os") });
    writeFileSync(join(dir.path, "os", "passwd"), "");
    try {
      const plan = await env.core.migration.plan({ source: staging, user: "alice", target: home });
      const report = await env.core.migration.run(plan.id);
      expect(report.status).toBe("done");
      expect(report.failed).toEqual([]);
      expect(readFileSync(join(home, "Documents/bulk/0/file-3.bin")).equals(readFileSync(join(guestRoot, big)))).toBe(true);
      expect(readFileSync(join(home, ".gitconfig"), "utf8")).toContain("autocrlf = input");
    } finally {
      env.cleanup();
    }
  }, 60_000);
});
