/**
 * The QEMU guest agent client against a real qemu-ga running on this host in
 * unix-listen mode (restarted for every test: it exits when a client leaves
 * with answers unread). guest-shutdown is blocked with -b so nothing here can
 * power the machine off.
 */
import { afterEach, beforeEach, describe, expect, test, setDefaultTimeout } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { release } from "node:os";
import { join } from "node:path";
import { QgaClient } from "../../src/guest/qga.ts";
import { GuestService } from "../../src/guest/service.ts";
import { GuestAgentSettingsSchema } from "../../src/guest/settings.ts";
import { silentLogger } from "../../src/log.ts";
import { tempDir } from "../helpers/env.ts";
import { rawPeer, waitFor, waitForListener } from "./agent-env.ts";

// Real subprocesses and sockets: generous under load (CI runs on 2 cores).
setDefaultTimeout(30_000);

const QGA = Bun.which("qemu-ga") ?? Bun.which("qemu-ga", { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" });
const skip = QGA === null;
if (skip) console.warn("skipping qemu-ga tests: qemu-ga is not installed (Debian package qemu-guest-agent)");

let dir: ReturnType<typeof tempDir>;
let proc: Bun.Subprocess | null = null;
let sockPath = "";

async function startQga(): Promise<void> {
  dir = tempDir("neuron-qga-");
  sockPath = join(dir.path, "qga.sock");
  proc = Bun.spawn([QGA!, "--method", "unix-listen", "--path", sockPath, "--statedir", dir.path, "--pidfile", join(dir.path, "qga.pid"), "--block-rpcs", "guest-shutdown,guest-suspend-disk,guest-suspend-ram,guest-suspend-hybrid,guest-fsfreeze-freeze,guest-set-time,guest-set-user-password"], {
    stdout: "ignore",
    stderr: "pipe",
  });
  await waitFor(() => existsSync(sockPath), 5000, "qemu-ga socket");
  await waitForListener(sockPath, 5000, "qemu-ga to listen");
}

describe.skipIf(skip)("QEMU guest agent (real qemu-ga)", () => {
  beforeEach(startQga);
  afterEach(async () => {
    if (proc) {
      proc.kill();
      await proc.exited;
      proc = null;
    }
    dir.cleanup();
  });

  test("guest-sync-delimited, guest-ping, guest-info, guest-get-osinfo", async () => {
    const c = new QgaClient({ socketPath: sockPath });
    await c.connect();
    await c.ping();
    const info = await c.info();
    expect(info.version).toMatch(/^\d+\.\d+/);
    expect(info.supported_commands.find((x) => x.name === "guest-ping")?.enabled).toBe(true);
    expect(info.supported_commands.find((x) => x.name === "guest-shutdown")?.enabled).toBe(false);
    const os = await c.osInfo();
    const id = /^ID=(.*)$/m.exec(readFileSync("/etc/os-release", "utf8"))?.[1]?.replace(/"/g, "");
    expect(os.id).toBe(id);
    expect(os["kernel-release"]).toBe(release());
    await c.sync(); // a second resync mid-session works too
    await c.close();
    expect(proc!.exitCode).toBeNull(); // still serving: we drained every answer
  });

  test("guest-exec + guest-exec-status: output, stdin, exit codes, errors", async () => {
    const c = new QgaClient({ socketPath: sockPath });
    await c.connect();
    const r = await c.exec("/bin/sh", ["-c", "echo out; echo err >&2; cat; exit 3"], { input: "from stdin" });
    expect(r).toMatchObject({ exitCode: 3, stdout: "out\nfrom stdin", stderr: "err\n", truncated: false });
    await expect(c.exec("/nonexistent/binary")).rejects.toThrow("guest-exec");
    await expect(c.execute("guest-no-such-command")).rejects.toThrow("CommandNotFound");
    await expect(c.shutdown()).rejects.toThrow("disabled");
    await expect(c.exec("", [])).rejects.toThrow("exec: path");
    await c.ping();
    await c.close();
  });

  test("GuestService falls back to qemu-ga for ping, get_info and shutdown when the VM has no agent channel", async () => {
    const service = new GuestService({
      stateDir: dir.path,
      openssl: "openssl",
      settings: GuestAgentSettingsSchema.parse(undefined),
      resolve: async () => ({ agent: null, qga: sockPath }),
      log: silentLogger,
    });
    try {
      expect(await service.command("vm1", "ping", {})).toMatchObject({ via: "qga", data: { pong: true } });
      const info = await service.command("vm1", "get_info", {});
      expect((info.data as { os: { id: string } }).os.id).toBeTruthy();
      const status = await service.status("vm1");
      expect(status).toMatchObject({ connected: false, qga: { available: true } });
      await expect(service.command("vm1", "launch_app", { path: "/bin/true" })).rejects.toMatchObject({ errorCode: "AGENT_NOT_CONNECTED" });
      await expect(service.command("vm1", "shutdown", {})).rejects.toMatchObject({ errorCode: "QGA_COMMAND_FAILED" });
      expect(proc!.exitCode).toBeNull();
    } finally {
      service.close();
    }
  });

  test("the same client API through the appliance CLI: agent ping --protocol qga --json", async () => {
    const { runCli } = await import("../helpers/env.ts");
    const r = runCli(["agent", "ping", "--socket", sockPath, "--protocol", "qga", "--json"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ protocol: "qga", ok: true });
    expect(out.os.id).toBeTruthy();
  });
});

describe("QEMU guest agent client against a broken peer", () => {
  test("stale answers before the sync sentinel are discarded; a wrong sync id is refused", async () => {
    const d = tempDir();
    const path = join(d.path, "fake.sock");
    let id = 0;
    const peer = await rawPeer(path, (s) =>
      s.on("data", (b: Buffer) => {
        const text = b.toString("latin1");
        const m = /"id":\s*(\d+)/.exec(text);
        if (m) {
          id++;
          // Stale answers, then the sentinel, then the echo (wrong on the second connection).
          s.write('{"return": {}}\n{"error": {"class": "GenericError", "desc": "stray"}}\n');
          s.write(Buffer.concat([Buffer.from([0xff]), Buffer.from(`{"return": ${id === 1 ? m[1] : 7}}\n`)]));
        } else if (text.includes("guest-ping")) s.write('{"return": {}}\n');
      }),
    );
    try {
      const c = new QgaClient({ socketPath: path });
      await c.connect();
      await c.ping();
      await c.close();
      const c2 = new QgaClient({ socketPath: path });
      await expect(c2.connect()).rejects.toThrow("instead of");
      await c2.close();
    } finally {
      await peer.close();
      d.cleanup();
    }
  });

  test("an answer line over 4 MiB closes the connection with a clear error; silence times out", async () => {
    const d = tempDir();
    const path = join(d.path, "fake2.sock");
    const peer = await rawPeer(path, (s) =>
      s.on("data", (b: Buffer) => {
        const m = /"id":\s*(\d+)/.exec(b.toString("latin1"));
        if (m) s.write(Buffer.concat([Buffer.from([0xff]), Buffer.from(`{"return": ${m[1]}}\n`)]));
        else if (b.includes("guest-info")) s.write(Buffer.alloc(5 * 1024 * 1024, 0x61));
      }),
    );
    try {
      const c = new QgaClient({ socketPath: path, timeoutMs: 300 });
      await c.connect();
      await expect(c.execute("guest-ping")).rejects.toThrow("did not answer guest-ping");
      await expect(c.info()).rejects.toThrow("longer than");
      await c.close();
    } finally {
      await peer.close();
      d.cleanup();
    }
  });

  test("after a timeout the next command resyncs, so a late answer is never taken for the next one", async () => {
    const d = tempDir();
    const path = join(d.path, "late.sock");
    // Like qemu-ga, one command at a time, in order; guest-ping is slow here.
    const peer = await rawPeer(path, (s) => {
      let queue = Promise.resolve();
      s.on("data", (b: Buffer) => {
        for (const line of b.toString("latin1").split("\n").filter((l) => l.trim())) {
          queue = queue.then(async () => {
            const m = /"id":\s*(\d+)/.exec(line);
            if (m) s.write(Buffer.concat([Buffer.from([0xff]), Buffer.from(`{"return": ${m[1]}}\n`)]));
            else if (line.includes("guest-ping")) {
              await Bun.sleep(150);
              s.write('{"return": {"late": true}}\n');
            } else if (line.includes("guest-info")) s.write('{"return": {"version": "9.9", "supported_commands": []}}\n');
          });
        }
      });
    });
    try {
      const c = new QgaClient({ socketPath: path, timeoutMs: 100 });
      await c.connect();
      await expect(c.execute("guest-ping")).rejects.toThrow("did not answer");
      // Sent while the ping's answer is still to come: without the resync it would take that answer.
      expect(await c.info()).toEqual({ version: "9.9", supported_commands: [] });
      await c.close();
    } finally {
      await peer.close();
      d.cleanup();
    }
  });

  test("no socket: a clear error", async () => {
    const c = new QgaClient({ socketPath: "/nonexistent/qga.sock" });
    await expect(c.connect()).rejects.toThrow("QEMU guest agent not reachable");
  });
});
