/**
 * The agent sink's HID side against the real agent server over a unix socket, on a host
 * without uhid (the devices themselves are exercised in a guest by guest-agent-hid.test.ts):
 * an agent that cannot make HID devices says why, the host drops and counts that input
 * without blocking anything else, and hostile HID requests change nothing.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import net from "node:net";
import { join } from "node:path";
import { HidNative } from "../../ffi/hid.ts";
import { resolveNativePath } from "../../ffi/native.ts";
import { AgentClient } from "../../src/guest/client.ts";
import { loadAgentConfig } from "../../src/guest-agent/config.ts";
import { OsBackend } from "../../src/guest-agent/os.ts";
import { AgentServer } from "../../src/guest-agent/server.ts";
import { HidHub, UhidDriver } from "../../src/guest-agent/uhid.ts";
import { AgentHidBackend } from "../../src/input/agent-hid-backend.ts";
import { agentClientLink } from "../../src/input/agent-link.ts";
import { hidCreateRequest } from "../../src/input/hid-devices.ts";
import { silentLogger } from "../../src/log.ts";
import { tempDir } from "../helpers/env.ts";
import { fileCommands, waitFor } from "../guest/agent-env.ts";

describe("AgentHidBackend ↔ an agent without uhid", () => {
  let work: ReturnType<typeof tempDir>;
  let agent: AgentServer;
  let server: net.Server;
  const sockets = new Set<net.Socket>();
  let client: AgentClient;
  const hid = new HidNative(resolveNativePath({}));

  beforeEach(async () => {
    work = tempDir("neuron-agent-hid-");
    const config = loadAgentConfig({ certDir: null, commands: fileCommands(work.path) }, "linux", {});
    // the real uhid driver, pointed at a node that does not exist (this host has no uhid either)
    agent = new AgentServer({ backend: new OsBackend(config), tls: null, log: silentLogger, hid: new HidHub(new UhidDriver(join(work.path, "uhid"), join(work.path, "sys"))) });
    server = net.createServer((s) => {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      void agent.serve(s);
    });
    const sock = join(work.path, "agent.sock");
    await new Promise<void>((r) => server.listen(sock, r));
    client = new AgentClient({ socketPath: sock, tls: null, log: silentLogger, requestTimeoutMs: 5_000, backoff: { initialMs: 50, maxMs: 200 } });
    client.start();
    await waitFor(() => client.state === "connected", 5_000, "agent connection");
  });
  afterEach(async () => {
    client.stop();
    agent.stop();
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
    work.cleanup();
  });

  test("hid_create says why no device can be made; hid_input to an absent device is refused", async () => {
    const err = await client.request("hid_create", hidCreateRequest(hid, "keyboard", 0) as never).then(() => null, (e: Error) => e.message);
    expect(err).toMatch(/HID_UNAVAILABLE.*uhid is missing/);
    await expect(client.request("hid_input", { id: 0, reports: ["AAAA"] })).rejects.toThrow(/HID_NOT_CREATED/);
    await expect(client.request("hid_destroy", { id: 0 })).resolves.toEqual({});
  });

  test("the host drops and counts the input of a device the guest could not make, and is not held up", async () => {
    const b = new AgentHidBackend({ link: agentClientLink(client), hid, log: silentLogger, pads: "dualsense" });
    await b.open();
    b.submit([
      { kind: "usageKey", page: 7, usage: 4, down: true, evdev: 30, qcode: "a" },
      { kind: "usageKey", page: 7, usage: 4, down: false, evdev: 30, qcode: "a" },
      { kind: "mouseMoveRel", dx: 1, dy: 1 },
    ]);
    await b.flush();
    expect(b.created()).toEqual([]);
    const s = b.stats();
    expect(s.accepted).toBe(3);
    expect(s.delivered).toBe(0);
    expect(s.dropped).toBe(3);
    // the failed devices are not asked for again at once: more input is dropped without a request
    b.submit([{ kind: "usageKey", page: 7, usage: 5, down: true, evdev: 48, qcode: "b" }]);
    await b.flush();
    expect(b.stats().dropped).toBe(4);
    // consumer keys have no place on the NKRO keyboard: unsupported, not dropped
    b.submit([{ kind: "usageKey", page: 12, usage: 0xe9, down: true, evdev: 115, qcode: "volumeup" }]);
    expect(b.stats().unsupported.usageKey).toBe(1);
    await b.close();
  });

  test("hostile HID requests are refused by the agent's schema", async () => {
    const good = hidCreateRequest(hid, "mouse", 1);
    const bad: unknown[] = [
      { ...good, id: 32 },
      { ...good, descriptor: "" },
      { ...good, descriptor: "A" },
      { ...good, name: "x".repeat(200) },
      { ...good, features: { "0": "AAAA" } },
      { ...good, features: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [String(i + 1), "AAAA"])) },
      { ...good, extra: 1 },
    ];
    for (const b of bad) await expect(client.request("hid_create", b as never)).rejects.toThrow(/INVALID_ARGUMENT/);
    await expect(client.request("hid_input", { id: 1, reports: [] })).rejects.toThrow(/INVALID_ARGUMENT/);
    await expect(client.request("hid_input", { id: 1, reports: Array.from({ length: 65 }, () => "AAAA") })).rejects.toThrow(/INVALID_ARGUMENT/);
  });
});
