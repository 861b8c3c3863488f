/**
 * GuestService through the management API and the CLI: a real guest agent on
 * a unix socket with the service's own per-VM certificates, a real qemu-ga for
 * the fallback, and libvirt's test driver for the VM → socket mapping.
 */
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createApp } from "../../src/api/app.ts";
import { startServer } from "../../src/api/server.ts";
import { ensureAgentCertificates } from "../../src/guest/certs.ts";
import { ClipboardSync, commandClipboard } from "../../src/guest/clipboard.ts";
import { AgentClient } from "../../src/guest/client.ts";
import { agentSocketsFromDomainXml, virshSocketResolver, type AgentSockets } from "../../src/guest/resolver.ts";
import { GuestService } from "../../src/guest/service.ts";
import { GuestAgentSettingsSchema } from "../../src/guest/settings.ts";
import { silentLogger } from "../../src/log.ts";
import { createCore, type Core } from "../../src/core.ts";
import { AppError } from "../../src/errors.ts";
import { BUN, REPO_ROOT, tempDir, testConfig } from "../helpers/env.ts";
import { replaceFile, serveAgent, waitFor } from "./agent-env.ts";
import { asRoot } from "../helpers/api.ts";

// Real subprocesses and sockets: generous under load (CI runs on 2 cores).
setDefaultTimeout(30_000);

describe("domain XML → agent sockets", () => {
  test("finds both channels, unescapes paths, ignores the rest", () => {
    const xml = `<domain type='kvm'><name>w</name><devices>
      <channel type='spicevmc'><target type='virtio' name='com.redhat.spice.0'/></channel>
      <channel type="unix"><source mode="bind" path="/run/a&amp;b/org.neuronos.agent.0"/><target type="virtio" name="org.neuronos.agent.0" state="connected"/></channel>
      <channel type='unix'>
        <source mode='bind' path='/var/lib/libvirt/qemu/channel/target/domain-3-w/org.qemu.guest_agent.0'/>
        <target type='virtio' name='org.qemu.guest_agent.0'/>
      </channel>
      <channel type='unix'><source mode='bind' path='relative/x'/><target type='virtio' name='org.neuronos.agent.0'/></channel>
    </devices></domain>`;
    expect(agentSocketsFromDomainXml(xml)).toEqual({
      agent: "/run/a&b/org.neuronos.agent.0",
      qga: "/var/lib/libvirt/qemu/channel/target/domain-3-w/org.qemu.guest_agent.0",
    });
    expect(agentSocketsFromDomainXml("<domain/>")).toEqual({ agent: null, qga: null });
    expect(() => agentSocketsFromDomainXml("x".repeat(5 * 1024 * 1024))).toThrow("exceeds 4 MiB");
  });

  const virsh = Bun.which("virsh");
  test.skipIf(!virsh)("through real virsh on libvirt's test driver", async () => {
    const d = tempDir();
    try {
      const node = join(d.path, "node.xml");
      writeFileSync(
        node,
        `<node><domain type='test'><name>win11</name><memory>524288</memory><os><type>hvm</type></os><devices>
          <channel type='unix'><source mode='bind' path='${d.path}/win11.agent'/><target type='virtio' name='org.neuronos.agent.0'/></channel>
          <channel type='unix'><source mode='bind' path='${d.path}/win11.qga'/><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
        </devices></domain></node>`,
      );
      const resolve = virshSocketResolver({ virsh: virsh!, uri: `test://${node}` });
      expect(await resolve("win11")).toEqual({ agent: `${d.path}/win11.agent`, qga: `${d.path}/win11.qga` });
      await expect(resolve("nope")).rejects.toMatchObject({ errorCode: "NOT_FOUND", status: 404 });
      await expect(resolve("--help")).rejects.toMatchObject({ errorCode: "INVALID_VM_NAME" });
      await expect(virshSocketResolver({ virsh: "/nonexistent/virsh", uri: "test:///default" })("x")).rejects.toMatchObject({ errorCode: "LIBVIRT_UNAVAILABLE" });
    } finally {
      d.cleanup();
    }
  });
});

describe("management API: /api/v1/vms/{name}/agent", () => {
  const dir = tempDir("neuron-guest-api-");
  const sockets: Record<string, AgentSockets> = {};
  let served: Awaited<ReturnType<typeof serveAgent>>;
  let env: { core: Core; cleanup(): void };
  let app: ReturnType<typeof createApp>;
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await app.handle(
      asRoot(new Request(`http://localhost/api/v1${path}`, {
        method,
        headers: body === undefined ? {} : { "content-type": "application/json" },
        body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
      })),
    );
    return { status: res.status, body: (await res.json()) as any };
  };

  beforeAll(async () => {
    const state = tempDir("neuron-guest-state-");
    // The route is real; the libvirt lookup is injected through createCore.
    const core = createCore(testConfig({ stateDir: state.path, guestAgent: { connectWaitMs: 500, requestTimeoutMs: 3000 } }), {
      logger: silentLogger,
      agentSocketResolver: async (vm) => {
        const s = sockets[vm];
        if (!s) throw new AppError("NOT_FOUND", `VM ${vm} not found`, { status: 404 });
        return s;
      },
    });
    env = { core, cleanup: () => (core.close(), state.cleanup()) };
    // The certificates the service will use; the guest gets its half (as provisioning would).
    const certs = await ensureAgentCertificates({ stateDir: env.core.config.stateDir, openssl: "openssl" }, "win11");
    sockets.win11 = { agent: join(dir.path, "win11.sock"), qga: null };
    sockets.bare = { agent: null, qga: null };
    sockets.gone = { agent: join(dir.path, "gone.sock"), qga: null };
    served = await serveAgent({ socketPath: sockets.win11.agent!, dir: dir.path, tls: certs.guest });
    app = createApp(env.core);
  });
  afterAll(async () => {
    env.cleanup();
    await served.close();
    dir.cleanup();
  });

  test("GET reports a connected agent with the guest's info", async () => {
    const r = await call("GET", "/vms/win11/agent");
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ vm: "win11", connected: true, state: "connected", hello: { protocol: 1 }, info: { os: { family: "linux" } } });
    expect(r.body.info.displays[0]).toMatchObject({ name: "Virtual-1", primary: true });
  });

  test("POST runs commands over TLS", async () => {
    const ping = await call("POST", "/vms/win11/agent/ping");
    expect(ping).toMatchObject({ status: 200, body: { via: "agent", command: "ping", data: { pong: true } } });
    const set = await call("POST", "/vms/win11/agent/clipboard_set", { mime: "text/plain", text: "from the API" });
    expect(set.status).toBe(200);
    expect(readFileSync(join(dir.path, "clip"), "utf8")).toBe("from the API");
    const get = await call("POST", "/vms/win11/agent/clipboard_get");
    expect(get.body.data).toEqual({ mime: "text/plain", text: "from the API" });
    const launch = await call("POST", "/vms/win11/agent/launch_app", { path: "/bin/true" });
    expect(launch.body.data.pid).toBeGreaterThan(0);
  });

  test("a burst of resizes: the last size wins and earlier ones are coalesced", async () => {
    const sizes = [1024, 1152, 1280, 1366, 1600, 1920].map((w) => ({ width: w, height: 900 }));
    const results = await Promise.all(sizes.map((s) => call("POST", "/vms/win11/agent/set_resolution", s)));
    expect(results.every((r) => r.status === 200)).toBe(true);
    expect(readFileSync(join(dir.path, "displays"), "utf8")).toBe("Virtual-1 1920x900 primary\n");
    expect(results.filter((r) => r.body.data.superseded).length).toBeGreaterThan(0);
  });

  test("bad input is refused before anything reaches the guest", async () => {
    const before = readFileSync(join(dir.path, "clip"), "utf8");
    expect((await call("POST", "/vms/win11/agent/format_disk")).status).toBe(422);
    expect((await call("POST", "/vms/win11/agent/hello")).status).toBe(422);
    expect((await call("POST", "/vms/win11/agent/set_resolution", { width: "big" })).body.error.code).toBe("INVALID_INPUT");
    expect((await call("POST", "/vms/win11/agent/clipboard_set", { mime: "text/html", text: "<b>" })).status).toBe(422);
    expect((await call("POST", "/vms/win11/agent/launch_app", { path: "/bin/true", args: Array(65).fill("a") })).status).toBe(422);
    expect((await call("POST", "/vms/win11/agent/ping", "{broken")).status).toBe(400);
    expect((await call("GET", "/vms/..%2Fetc/agent")).status).toBe(422);
    expect((await call("GET", `/vms/${"a".repeat(65)}/agent`)).status).toBe(422);
    expect(readFileSync(join(dir.path, "clip"), "utf8")).toBe(before);
  });

  test("an unknown VM is 404; a VM without an agent channel or with a dead socket: 503 / not connected, with the reason", async () => {
    expect((await call("GET", "/vms/nosuchvm/agent")).status).toBe(404);
    const bare = await call("POST", "/vms/bare/agent/ping");
    expect(bare).toMatchObject({ status: 503, body: { error: { code: "AGENT_NOT_CONNECTED" } } });
    expect(bare.body.error.message).toContain("no agent channel");
    const gone = await call("GET", "/vms/gone/agent");
    expect(gone.status).toBe(200);
    expect(gone.body).toMatchObject({ connected: false });
    expect(gone.body.error).toContain("ENOENT");
  });
});

describe("clipboard sync host ↔ guest", () => {
  test("both directions, no echo loops", async () => {
    const d = tempDir();
    const path = join(d.path, "c.sock");
    const hostClip = join(d.path, "host-clip");
    writeFileSync(hostClip, "host start");
    const served = await serveAgent({ socketPath: path, dir: d.path, tls: null, pollMs: 30 });
    const client = new AgentClient({ socketPath: path, tls: null, log: silentLogger });
    const sent: string[] = [];
    const origRequest = client.request.bind(client);
    client.request = (async (cmd: never, data?: unknown, t?: number) => {
      if (cmd === "clipboard_set") sent.push((data as { text: string }).text);
      return origRequest(cmd, data, t);
    }) as typeof client.request;
    const sync = new ClipboardSync(client, commandClipboard(["cat", hostClip], ["sh", "-c", 'cat > "$0"', hostClip]), silentLogger, 30);
    try {
      await client.connectOnce();
      sync.start();
      await waitFor(() => sync.primed, 5000, "the host side's first look");
      await Bun.sleep(100); // the guest's first look
      replaceFile(hostClip, "copied on the host");
      await waitFor(() => readFileSync(join(d.path, "clip"), "utf8") === "copied on the host", 5000, "host → guest");
      replaceFile(join(d.path, "clip"), "copied in the guest");
      await waitFor(() => readFileSync(hostClip, "utf8") === "copied in the guest", 5000, "guest → host");
      await Bun.sleep(300); // several poll rounds on both sides: nothing may bounce
      expect(sent).toEqual(["copied on the host"]);
      expect(sync.stats).toMatchObject({ toGuest: 1, toHost: 1, errors: 0 });
    } finally {
      sync.stop();
      client.stop();
      await served.close();
      d.cleanup();
    }
  });
});

describe("GuestService with host clipboard commands configured", () => {
  test("attach starts the sync; a host copy reaches the guest", async () => {
    const d = tempDir();
    const path = join(d.path, "s.sock");
    const hostClip = join(d.path, "host-clip");
    writeFileSync(hostClip, "");
    const served = await serveAgent({ socketPath: path, dir: d.path, tls: null, pollMs: 30 });
    const service = new GuestService({
      stateDir: d.path,
      openssl: "openssl",
      settings: GuestAgentSettingsSchema.parse({ tls: false, clipboard: { getCommand: ["cat", hostClip], setCommand: ["sh", "-c", 'cat > "$0"', hostClip], pollMs: 50 } }),
      resolve: async () => ({ agent: path, qga: null }),
      log: silentLogger,
    });
    try {
      expect(await service.attach("vm1")).toBe(true);
      await waitFor(() => service.connectionState("vm1") === "connected", 5000, "connection");
      expect(service.clipboardStats("vm1")).not.toBeNull();
      await waitFor(() => service.clipboardPrimed("vm1"), 5000, "the host side's first look");
      replaceFile(hostClip, "sync me");
      await waitFor(() => readFileSync(join(d.path, "clip"), "utf8") === "sync me", 5000, "host → guest through the service");
      await waitFor(() => service.clipboardStats("vm1")?.toGuest === 1, 5000, "sync counted");
    } finally {
      service.close();
      await served.close();
      d.cleanup();
    }
  });
});

describe("CLI: agent ping --socket", () => {
  async function cli(args: string[], extraEnv: Record<string, string> = {}) {
    const p = Bun.spawn([BUN, join(REPO_ROOT, "src", "main.ts"), ...args], {
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: "/tmp", NEURON_CONFIG: join(REPO_ROOT, "test", "fixtures", "config", "test.json"), ...extraEnv },
      stdout: "pipe",
      stderr: "pipe",
    });
    const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    return { code, stdout, stderr };
  }

  test.skipIf(!Bun.which("virsh"))("agent ping|info|clipboard|resolution|launch VM: socket from libvirt, in-process and through the running service", async () => {
    const d = tempDir();
    const state = join(d.path, "state");
    const certs = await ensureAgentCertificates({ stateDir: state, openssl: "openssl" }, "win11");
    const path = join(d.path, "win11.sock");
    const node = join(d.path, "node.xml");
    writeFileSync(
      node,
      `<node><domain type='test'><name>win11</name><memory>524288</memory><os><type>hvm</type></os><devices>
        <channel type='unix'><source mode='bind' path='${path}'/><target type='virtio' name='org.neuronos.agent.0'/></channel>
      </devices></domain></node>`,
    );
    const served = await serveAgent({ socketPath: path, dir: d.path, tls: certs.guest });
    const env = { NEURON_LIBVIRT_URI: `test://${node}` };
    try {
      // No service running: the CLI resolves the socket through virsh and connects itself.
      const ping = await cli(["agent", "ping", "win11", "--state-dir", state, "--json"], env);
      expect(ping.stderr).toBe("");
      expect(JSON.parse(ping.stdout)).toMatchObject({ vm: "win11", via: "agent", data: { pong: true } });
      const info = await cli(["agent", "info", "win11", "--state-dir", state], env);
      expect(info.stdout).toContain("display Virtual-1 1280x800 primary");
      const nope = await cli(["agent", "ping", "nosuchvm", "--state-dir", state], env);
      expect(nope.code).toBe(1);
      expect(nope.stderr).toContain("not found");
      // With the service running, the same commands go through its local API socket.
      const core = createCore(testConfig({ stateDir: state, port: 0, libvirtUri: `test://${node}` }), { logger: silentLogger });
      const server = await startServer(core);
      try {
        const set = await cli(["agent", "clipboard", "win11", "set", "through the service", "--state-dir", state], env);
        expect(set.code).toBe(0);
        expect(readFileSync(join(d.path, "clip"), "utf8")).toBe("through the service");
        expect(core.guest.connectionState("win11")).toBe("connected"); // the service holds the connection
        const get = await cli(["agent", "clipboard", "win11", "get", "--state-dir", state], env);
        expect(get.stdout).toBe("through the service");
        const res = await cli(["agent", "resolution", "win11", "1600x900", "--state-dir", state], env);
        expect(res.stdout).toBe("win11: 1600x900 on Virtual-1\n");
        const launch = await cli(["agent", "launch", "win11", "/bin/true", "--state-dir", state, "--json"], env);
        expect(JSON.parse(launch.stdout).data.pid).toBeGreaterThan(0);
        const bad = await cli(["agent", "resolution", "win11", "huge", "--state-dir", state], env);
        expect(bad.code).toBe(2);
        const tiny = await cli(["agent", "resolution", "win11", "10x10", "--state-dir", state], env);
        expect(tiny.code).toBe(1);
        expect(tiny.stderr).toContain("set_resolution");
      } finally {
        await server.stop();
        core.close();
      }
    } finally {
      await served.close();
      d.cleanup();
    }
  });

  test("neuron protocol over TLS with --cert-dir, plain, and clear errors", async () => {
    const d = tempDir();
    const certs = await ensureAgentCertificates({ stateDir: d.path, openssl: "openssl" }, "vm1");
    const path = join(d.path, "a.sock");
    const served = await serveAgent({ socketPath: path, dir: d.path, tls: certs.guest });
    try {
      const ok = await cli(["agent", "ping", "--socket", path, "--protocol", "neuron", "--cert-dir", certs.dir, "--json"]);
      expect(ok.stderr).toBe("");
      expect(ok.code).toBe(0);
      expect(JSON.parse(ok.stdout)).toMatchObject({ protocol: "neuron", ok: true, agent: { protocol: 1 }, data: { pong: true } });
      const viaState = await cli(["agent", "info", "--socket", path, "--vm", "vm1", "--state-dir", d.path]);
      expect(viaState.code).toBe(0);
      expect(viaState.stdout).toContain("ok");
      const noTls = await cli(["agent", "ping", "--socket", path]);
      expect(noTls.code).toBe(1);
      expect(noTls.stderr).toContain("guest agent not connected");
      const badProto = await cli(["agent", "ping", "--socket", path, "--protocol", "ssh"]);
      expect(badProto.code).toBe(2);
      const missing = await cli(["agent", "ping", "--socket", join(d.path, "none.sock")]);
      expect(missing.code).toBe(1);
      expect(missing.stderr).toContain("ENOENT");
      const noVm = await cli(["agent", "launch"]);
      expect(noVm.code).toBe(2);
    } finally {
      await served.close();
      d.cleanup();
    }
  });
});
