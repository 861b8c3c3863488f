/** Host client ↔ guest agent over real unix sockets, plain and mutual TLS (certificates from the real openssl). */
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ensureAgentCertificates, type AgentCertificates } from "../../src/guest/certs.ts";
import { AgentClient } from "../../src/guest/client.ts";
import type { GuestInfo } from "../../src/guest/model.ts";
import { silentLogger } from "../../src/log.ts";
import { tempDir } from "../helpers/env.ts";
import { captureLogger, replaceFile, serveAgent, tinyPng, waitFor } from "./agent-env.ts";

// Real subprocesses and sockets: generous under load (CI runs on 2 cores).
setDefaultTimeout(30_000);

const tmp = tempDir("neuron-agent-");
let certs: AgentCertificates;
let otherCerts: AgentCertificates;
let n = 0;
const sock = () => join(tmp.path, `a${++n}.sock`);

beforeAll(async () => {
  certs = await ensureAgentCertificates({ stateDir: tmp.path, openssl: "openssl" }, "win11");
  otherCerts = await ensureAgentCertificates({ stateDir: tmp.path, openssl: "openssl" }, "other-vm");
});
afterAll(() => tmp.cleanup());

function client(socketPath: string, tls: AgentCertificates["host"] | null, extra: Partial<ConstructorParameters<typeof AgentClient>[0]> = {}) {
  return new AgentClient({ socketPath, tls, log: silentLogger, requestTimeoutMs: 3000, connectTimeoutMs: 3000, backoff: { initialMs: 20, maxMs: 200 }, ...extra });
}

describe("certificates", () => {
  test("per-VM CA, host (clientAuth) and guest (serverAuth) certificates, 0600, verified by openssl", async () => {
    for (const f of ["ca.crt", "ca.key", "host.key", "guest.key", "host.crt"]) expect(statSync(join(certs.dir, f)).mode & 0o777).toBe(0o600);
    expect(statSync(certs.dir).mode & 0o777).toBe(0o700);
    for (const [role, purpose] of [["host", "sslclient"], ["guest", "sslserver"]] as const) {
      const ok = Bun.spawnSync(["openssl", "verify", "-purpose", purpose, "-CAfile", join(certs.dir, "ca.crt"), join(certs.dir, `${role}.crt`)]);
      expect(ok.exitCode).toBe(0);
    }
    const wrong = Bun.spawnSync(["openssl", "verify", "-purpose", "sslserver", "-CAfile", join(certs.dir, "ca.crt"), join(certs.dir, "host.crt")]);
    expect(wrong.exitCode).not.toBe(0);
    // A second call reuses them.
    const again = await ensureAgentCertificates({ stateDir: tmp.path, openssl: "openssl" }, "win11");
    expect(again.host.cert).toBe(certs.host.cert);
  });

  test("hostile VM names are refused before touching the disk", async () => {
    for (const bad of ["../etc", "a/b", "", ".hidden", "x".repeat(65), "vm\n"])
      await expect(ensureAgentCertificates({ stateDir: tmp.path, openssl: "openssl" }, bad)).rejects.toThrow("invalid VM name");
  });

  test("a missing openssl is a clear error and leaves nothing behind", async () => {
    const d = tempDir();
    try {
      await expect(ensureAgentCertificates({ stateDir: d.path, openssl: "/nonexistent/openssl" }, "vm1")).rejects.toThrow("cannot run");
      expect(Bun.spawnSync(["ls", "-A", join(d.path, "agent-certs")]).stdout.toString()).toBe("");
    } finally {
      d.cleanup();
    }
  });
});

for (const mode of ["plain", "tls"] as const) {
  describe(`commands (${mode})`, () => {
    const dir = tempDir("neuron-guest-os-");
    const path = sock();
    let served: Awaited<ReturnType<typeof serveAgent>>;
    let c: AgentClient;
    beforeAll(async () => {
      served = await serveAgent({ socketPath: path, dir: dir.path, tls: mode === "tls" ? certs.guest : null });
      c = client(path, mode === "tls" ? certs.host : null);
      await c.connectOnce();
    });
    afterAll(async () => {
      c.stop();
      await served.close();
      dir.cleanup();
    });

    test("hello and ping", async () => {
      expect(c.state).toBe("connected");
      expect(c.hello).toMatchObject({ protocol: 1, os: "linux" });
      const pong = await c.request<{ pong: boolean; time: number }>("ping");
      expect(pong.pong).toBe(true);
      expect(Math.abs(pong.time - Date.now())).toBeLessThan(60_000);
    });

    test("get_info reports the OS and the displays", async () => {
      const info = await c.request<GuestInfo>("get_info");
      expect(info.os.family).toBe("linux");
      expect(info.displays).toEqual([
        { name: "Virtual-1", width: 1280, height: 800, primary: true },
        { name: "Virtual-2", width: 1024, height: 768, primary: false },
      ]);
    });

    test("set_resolution runs the guest's command; bad sizes are refused by the guest", async () => {
      const r = await c.request("set_resolution", { width: 1920, height: 1080 });
      expect(r).toMatchObject({ display: "Virtual-1", width: 1920, height: 1080 });
      expect(readFileSync(join(dir.path, "displays"), "utf8")).toBe("Virtual-1 1920x1080 primary\n");
      await expect(c.request("set_resolution", { width: 10, height: 1080 })).rejects.toThrow("INVALID_ARGUMENT");
      await expect(c.request("set_resolution", { width: 1920, height: 1080, display: "HDMI-9" })).rejects.toThrow("NO_SUCH_DISPLAY");
    });

    test("clipboard text round trip, including STX/ETX and non-ASCII", async () => {
      const text = "copied \u0002in\u0003 the host — ünïcödé 📋";
      await c.request("clipboard_set", { mime: "text/plain", text });
      expect(readFileSync(join(dir.path, "clip"), "utf8")).toBe(text);
      expect(await c.request("clipboard_get")).toEqual({ mime: "text/plain", text });
    });

    test("clipboard image must be a PNG", async () => {
      await c.request("clipboard_set", { mime: "image/png", data: tinyPng().toString("base64") });
      expect(readFileSync(join(dir.path, "clip.png")).equals(tinyPng())).toBe(true);
      await expect(c.request("clipboard_set", { mime: "image/png", data: Buffer.from("GIF89a").toString("base64") })).rejects.toThrow("INVALID_PNG");
    });

    test("screenshot returns the PNG", async () => {
      const shot = await c.request<{ data: string }>("screenshot");
      expect(Buffer.from(shot.data, "base64").equals(tinyPng())).toBe(true);
    });

    test("launch_app starts the process and reports its exit as an event", async () => {
      const exited = new Promise<{ pid: number; code: number | null }>((r) => c.once("app_exited", r));
      const { pid } = await c.request<{ pid: number }>("launch_app", { path: "/bin/sh", args: ["-c", "exit 7"] });
      const ev = await exited;
      expect(ev).toMatchObject({ pid, code: 7 });
      await expect(c.request("launch_app", { path: "/nonexistent/app" })).rejects.toThrow("LAUNCH_FAILED");
    });

    test("shutdown runs the configured power command after replying", async () => {
      await c.request("shutdown", { mode: "reboot" });
      await waitFor(() => {
        try {
          return readFileSync(join(dir.path, "power"), "utf8") === "reboot\n";
        } catch {
          return false;
        }
      });
    });
  });
}

describe("TLS is mutual", () => {
  test("a host with another VM's certificate is refused, and vice versa", async () => {
    const dir = tempDir();
    const path = sock();
    const { log, lines } = captureLogger();
    const served = await serveAgent({ socketPath: path, dir: dir.path, tls: certs.guest, log });
    try {
      const wrongHost = client(path, otherCerts.host);
      await expect(wrongHost.connectOnce()).rejects.toThrow();
      wrongHost.stop();
      await waitFor(() => lines.some((l) => l.msg === "TLS handshake with the host failed"));
      const plain = client(path, null, { connectTimeoutMs: 500 });
      await expect(plain.connectOnce()).rejects.toThrow();
      plain.stop();
      const good = client(path, certs.host);
      await good.connectOnce();
      good.stop();
    } finally {
      await served.close();
      dir.cleanup();
    }
    const dir2 = tempDir();
    const path2 = sock();
    const impostor = await serveAgent({ socketPath: path2, dir: dir2.path, tls: otherCerts.guest });
    try {
      const c = client(path2, certs.host);
      await expect(c.connectOnce()).rejects.toThrow("TLS with the guest agent failed");
      c.stop();
    } finally {
      await impostor.close();
      dir2.cleanup();
    }
  });
});

describe("connection lifecycle", () => {
  test("reconnects with backoff after the guest agent restarts, and events flow again", async () => {
    const dir = tempDir();
    const path = sock();
    let served = await serveAgent({ socketPath: path, dir: dir.path, tls: certs.guest, pollMs: 50 });
    const c = client(path, certs.host);
    const states: string[] = [];
    c.on("connected", () => states.push("connected"));
    c.on("disconnected", () => states.push("disconnected"));
    try {
      c.start();
      await waitFor(() => c.state === "connected", 5000, "first connection");
      await served.close();
      await waitFor(() => c.state !== "connected", 5000, "disconnect");
      await expect(c.request("ping")).rejects.toThrow("not connected");
      await Bun.sleep(100); // a few failed attempts (socket gone)
      served = await serveAgent({ socketPath: path, dir: dir.path, tls: certs.guest, pollMs: 50 });
      await waitFor(() => c.state === "connected", 5000, "reconnection");
      expect(states).toEqual(["connected", "disconnected", "connected"]);
      // A guest-side clipboard change becomes an event.
      const changed = new Promise((r) => c.once("clipboard_changed", r));
      await Bun.sleep(120); // let the agent take its first clipboard snapshot
      replaceFile(join(dir.path, "clip"), "typed in the guest");
      expect(await changed).toEqual({ mime: "text/plain", text: "typed in the guest" });
    } finally {
      c.stop();
      await served.close();
      dir.cleanup();
    }
  });

  test("connectOnce to a missing socket fails with a clear error", async () => {
    const c = client(join(tmp.path, "nope.sock"), null);
    await expect(c.connectOnce()).rejects.toThrow("guest agent not connected");
    expect(c.state).toBe("stopped");
  });

  test("requests before connecting are refused", async () => {
    const c = client(join(tmp.path, "nope2.sock"), null);
    await expect(c.request("ping")).rejects.toThrow("not connected");
  });
});

describe("events report only changes the host did not make", () => {
  test("host resizes and clipboard writes are not echoed; guest-side changes are", async () => {
    const dir = tempDir();
    const path = sock();
    const served = await serveAgent({ socketPath: path, dir: dir.path, tls: null, pollMs: 5 });
    const c = client(path, null);
    const events: { type: string }[] = [];
    c.on("event", (e: { type: string }) => events.push(e));
    try {
      await c.connectOnce();
      await Bun.sleep(50);
      for (let i = 0; i < 10; i++) {
        await c.request("set_resolution", { width: 1000 + i * 10, height: 700 });
        await c.request("clipboard_set", { mime: "text/plain", text: `host ${i}` });
      }
      await Bun.sleep(100);
      expect(events).toEqual([]);
      replaceFile(join(dir.path, "displays"), "Virtual-1 800x600 primary\n");
      replaceFile(join(dir.path, "clip"), "guest text");
      await waitFor(() => events.length >= 2, 5000, "guest events");
      expect(events).toEqual(
        expect.arrayContaining([
          { type: "resolution_changed", data: { name: "Virtual-1", width: 800, height: 600, primary: true } },
          { type: "clipboard_changed", data: { mime: "text/plain", text: "guest text" } },
        ]),
      );
    } finally {
      c.stop();
      await served.close();
      dir.cleanup();
    }
  });
});
