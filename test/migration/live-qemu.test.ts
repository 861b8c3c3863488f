/**
 * The live path against a real guest: the compiled Linux guest agent runs inside the tiny QEMU
 * guest (TCG, busybox initramfs) and serves a fixture profile tree from the guest's own file
 * system; the host pulls it over the real agent channel (virtio-serial, mutual TLS), byte-exact,
 * resumes a pull cut mid-file, and plans and runs it through POST /api/v1/migrations { fromVm }
 * (the auth layer in front, as every mutating route).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createApp } from "../../src/api/app.ts";
import { createCore, type Core } from "../../src/core.ts";
import type { AgentClient } from "../../src/guest/client.ts";
import { silentLogger } from "../../src/log.ts";
import { stagingDir } from "../../src/migration/live.ts";
import type { Plan, Report } from "../../src/migration/model.ts";
import { mirrorFromAgent, type AgentRequest } from "../../src/migration/vm-source.ts";
import { asRoot, overTcp } from "../helpers/api.ts";
import { BUN, REPO_ROOT, tempDir, testConfig } from "../helpers/env.ts";
import { bootAgentGuest, guestAgentClient, type AgentGuest } from "../guest/agent-guest.ts";
import { findKernel, tinyGuestUnavailable, type Kernel } from "../guest/tiny-guest.ts";

const skipReason = tinyGuestUnavailable();
if (skipReason) console.warn(`skipping the live-path QEMU test: ${skipReason}`);

const VM = "tiny";
const BIG = 3 * (1 << 20) + 12345;
const pattern = (n: number, seed: number) => {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i += 4) b.writeUInt32LE(((i + seed) * 2654435761) >>> 0, Math.min(i, n - 4));
  return b;
};
/** Guest path (under /data/Users) → content. */
const TREE: Record<string, Buffer> = {
  "alice/Documents/big.bin": pattern(BIG, 1),
  "alice/Documents/report.txt": Buffer.from("quarterly report\r\n"),
  "alice/Documents/Ünïcödé 文档.txt": Buffer.from("unicode name\n"),
  "alice/Documents/sub/deeper/note.md": Buffer.from("# note\n"),
  "alice/Documents/empty.dat": Buffer.alloc(0),
  "alice/Pictures/photo.jpg": pattern(200_000, 7),
  "alice/.gitconfig": Buffer.from("[core]\r\n\tautocrlf = true\r\n"),
  "bob/Documents/bob.txt": Buffer.from("bob's\n"),
};

describe.skipIf(skipReason !== null)("live path: the guest agent in a real QEMU guest serves a profile tree", () => {
  const work = tempDir("neuron-migrate-live-qemu-");
  let guest: AgentGuest | null = null;
  let core: Core;
  let etc = "";
  const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

  beforeAll(async () => {
    const files: Record<string, { text: Uint8Array }> = {};
    for (const [rel, data] of Object.entries(TREE)) files[`data/Users/${rel}`] = { text: data };
    guest = await bootAgentGuest({
      work: work.path,
      kernel: findKernel() as Kernel,
      config: { certDir: "/agent/certs", pollMs: 500, commandTimeoutMs: 20_000, usersDir: "/data/Users" },
      files,
      // a link inside the profile: listed, never followed
      init: ["ln -s /etc /data/Users/alice/Documents/etc-link", "mkdir -p /data/Users/Public /data/Users/Default"],
    });
    etc = join(work.path, "etc");
    mkdirSync(etc);
    writeFileSync(join(etc, "passwd"), "");
    // the core's state dir holds the certificates the guest was given (agent-certs/tiny)
    core = createCore(testConfig({ stateDir: work.path, etcDir: etc, qmpDir: join(work.path, "qmp"), spiceDir: join(work.path, "spice") }), {
      logger: silentLogger,
      agentSocketResolver: async (vm) => ({ agent: vm === VM ? guest!.socketPath : null, qga: null }),
    });
  }, 180_000);

  afterAll(async () => {
    core?.close();
    await guest?.stop();
    work.cleanup();
  });

  test("a pull cut mid-file resumes from what arrived; the result is byte-exact; links are not followed", async () => {
    const client = guest!.client;
    const dest = join(work.path, "pull");
    let reads = 0;
    // the connection drops after the second chunk of the big file
    const cut: AgentRequest = async (command, data) => {
      if (command === "fs_read" && String(data.path).endsWith("big.bin") && ++reads === 3) {
        client.stop();
        throw new Error("connection cut");
      }
      return client.request(command, data, 30_000);
    };
    await expect(mirrorFromAgent(cut, dest, { user: "alice" })).rejects.toThrow(/cut/);
    // the part that arrived waits outside Users/ (never taken for a complete file)
    expect(existsSync(join(dest, "Users/alice/Documents/big.bin"))).toBe(false);
    const partial = statSync(join(dest, ".partial", createHash("sha256").update("alice/Documents/big.bin").digest("hex"))).size;
    expect(partial).toBe(2 << 20);
    // a new connection over the same channel
    const again: AgentClient = guestAgentClient(guest!.socketPath, guest!.certs, 10_000);
    try {
      again.start();
      const deadline = Date.now() + 60_000;
      while (again.state !== "connected" && Date.now() < deadline) await Bun.sleep(100);
      expect(again.state).toBe("connected");
      const r = await mirrorFromAgent((c, d) => again.request(c, d, 30_000), dest, { user: "alice" });
      expect(r.links).toEqual(["alice/Documents/etc-link"]);
      // only the rest of the big file travelled again, plus the files not reached before the cut
      const notReached = Object.entries(TREE).filter(([rel]) => rel.startsWith("alice/") && !rel.endsWith("big.bin"));
      expect(r.fetchedBytes).toBeLessThanOrEqual(BIG - partial + notReached.reduce((a, [, b]) => a + b.length, 0));
      expect(r.fetchedBytes).toBeGreaterThanOrEqual(BIG - partial);
      for (const [rel, data] of Object.entries(TREE)) {
        if (!rel.startsWith("alice/")) continue;
        expect(sha(readFileSync(join(dest, "Users", rel)))).toBe(sha(data));
      }
      const third = await mirrorFromAgent((c, d) => again.request(c, d, 30_000), dest, { user: "alice" });
      expect(third.fetchedBytes).toBe(0);
    } finally {
      again.stop();
    }
  }, 180_000);

  test("POST /api/v1/migrations { fromVm }: pulled over the agent channel, planned, run, byte-exact; refused without an identity", async () => {
    const app = createApp(core);
    const call = (method: string, path: string, body?: unknown, wrap = asRoot) =>
      app.handle(wrap(new Request(`http://localhost/api/v1${path}`, { method, headers: body === undefined ? {} : { "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) })));
    const home = join(work.path, "home");
    mkdirSync(home);
    expect((await call("POST", "/migrations", { fromVm: VM, user: "alice", target: home }, (r) => overTcp(r))).status).toBe(401);
    expect((await call("POST", "/migrations", { fromVm: "../x", user: "alice" })).status).toBe(422);
    expect((await call("POST", "/migrations", { fromVm: "nosuchvm", user: "alice", target: home })).status).toBe(409);
    const res = await call("POST", "/migrations", { fromVm: VM, user: "alice", target: home });
    expect(res.status).toBe(201);
    const plan = (await res.json()) as Plan;
    expect(plan.source.input).toBe(stagingDir(work.path, VM));
    expect(plan.totals.files).toBeGreaterThanOrEqual(6);
    const report = await core.migration.run(plan.id);
    expect(report.status).toBe("done");
    expect(report.failed).toEqual([]);
    expect(sha(readFileSync(join(home, "Documents/big.bin")))).toBe(sha(TREE["alice/Documents/big.bin"]!));
    expect(readFileSync(join(home, "Documents/sub/deeper/note.md"), "utf8")).toBe("# note\n");
    expect(readFileSync(join(home, "Pictures/photo.jpg")).equals(TREE["alice/Pictures/photo.jpg"]!)).toBe(true);
    expect(readFileSync(join(home, ".gitconfig"), "utf8")).toContain("autocrlf = input");
    expect((report as Report).copied.files).toBe(plan.totals.files);
  }, 180_000);

  test("migrate run --from-vm NAME (the CLI, the VM found through libvirt): a file changed in the guest is pulled again", async () => {
    // change a file inside the guest, through the agent
    const client = (await core.guest.client(VM))!;
    const exited = new Promise<{ code: number | null }>((r) => client.once("app_exited", r));
    await client.request("launch_app", { path: "/bin/sh", args: ["-c", "echo 'changed in the VM' >> /data/Users/alice/Documents/report.txt; printf 'REWRITTEN, longer than before' > /data/Users/alice/Documents/sub/deeper/note.md"] });
    expect((await exited).code).toBe(0);
    // the guest's port takes one host connection: the CLI's
    core.guest.forget(VM);
    const node = join(work.path, "libvirt-node.xml");
    writeFileSync(node, `<node><domain type="test"><name>${VM}</name><memory>262144</memory><os><type>hvm</type></os><devices><channel type="unix"><source mode="bind" path="${guest!.socketPath}"/><target type="virtio" name="org.neuronos.agent.0"/></channel></devices></domain></node>`);
    const home = join(work.path, "home-cli");
    mkdirSync(home);
    const proc = Bun.spawn([BUN, join(REPO_ROOT, "src/main.ts"), "migrate", "run", "--from-vm", VM, "--user", "alice", "--target", home, "--state-dir", work.path, "--json"], {
      stdout: "pipe",
      stderr: "pipe",
      env: { ...process.env, NEURON_LIBVIRT_URI: `test://${node}`, NEURON_ETC_DIR: etc },
    });
    const timer = setTimeout(() => proc.kill(), 120_000);
    const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    clearTimeout(timer);
    expect(err).toBe("");
    expect(code).toBe(0);
    const report = JSON.parse(out) as Report;
    expect(report.status).toBe("done");
    expect(readFileSync(join(home, "Documents/report.txt"), "utf8")).toBe("quarterly report\r\nchanged in the VM\n");
    expect(readFileSync(join(home, "Documents/sub/deeper/note.md"), "utf8")).toBe("REWRITTEN, longer than before");
    expect(sha(readFileSync(join(home, "Documents/big.bin")))).toBe(sha(TREE["alice/Documents/big.bin"]!));
  }, 180_000);
});
