/**
 * QmpClient against misbehaving peers (a unix server of the test playing a
 * broken QEMU) and against a real QEMU without an absolute pointer device.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { QmpClient, QmpError } from "../../src/input/qmp-client.ts";
import { QmpInputBackend } from "../../src/input/qmp-backend.ts";
import { tempDir } from "../helpers/env.ts";
import { qemuAvailable, QEMU, waitFor } from "./qemu.ts";

const GREETING = JSON.stringify({ QMP: { version: { qemu: { major: 7, minor: 2, micro: 0 } }, capabilities: [] } }) + "\n";

let cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

/** A unix-socket peer whose behaviour per received line the test scripts. */
async function peer(onConnect: (s: Socket) => void, onLine: (s: Socket, msg: { execute?: string; id?: number }) => void) {
  const dir = tempDir("neuron-qmp-peer-");
  const path = join(dir.path, "peer.qmp");
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => {});
    let buf = "";
    s.on("data", (d) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        onLine(s, JSON.parse(line));
      }
    });
    onConnect(s);
  });
  await new Promise<void>((r) => server.listen(path, r));
  cleanup.push(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
    dir.cleanup();
  });
  return path;
}

const reply = (s: Socket, id: number | undefined, ret: unknown) => s.write(JSON.stringify({ return: ret, id }) + "\n");

describe("QmpClient with a misbehaving peer", () => {
  test("no greeting: bounded wait, typed error", async () => {
    const path = await peer(() => {}, () => {});
    const c = new QmpClient({ socketPath: path, connectTimeoutMs: 150 });
    await expect(c.connect()).rejects.toMatchObject({ errorCode: "QMP_TIMEOUT" });
  });

  test("a line that is not JSON ends the connection with QMP_PROTOCOL", async () => {
    const path = await peer(
      (s) => s.write(GREETING),
      (s, m) => (m.execute === "qmp_capabilities" ? reply(s, m.id, {}) : s.write("{{{ not json\n")),
    );
    const c = new QmpClient({ socketPath: path });
    await c.connect();
    await expect(c.execute("query-status")).rejects.toMatchObject({ errorCode: "QMP_PROTOCOL" });
    expect(c.connected).toBe(false);
  });

  test("an endless line is cut at the bound", async () => {
    const path = await peer(
      (s) => s.write(GREETING),
      (s, m) => {
        if (m.execute === "qmp_capabilities") reply(s, m.id, {});
        else s.write("x".repeat(64 * 1024));
      },
    );
    const c = new QmpClient({ socketPath: path, maxLineBytes: 16 * 1024 });
    await c.connect();
    await expect(c.execute("query-status")).rejects.toMatchObject({ errorCode: "QMP_PROTOCOL" });
  });

  test("an unanswered command times out; errors carry QEMU's class and text", async () => {
    const path = await peer(
      (s) => s.write(GREETING),
      (s, m) => {
        if (m.execute === "qmp_capabilities") reply(s, m.id, {});
        else if (m.execute === "bad") s.write(JSON.stringify({ error: { class: "CommandNotFound", desc: "nope" }, id: m.id }) + "\n");
        // "slow" is never answered
      },
    );
    const c = new QmpClient({ socketPath: path, timeoutMs: 100 });
    await c.connect();
    await expect(c.execute("slow")).rejects.toMatchObject({ errorCode: "QMP_TIMEOUT" });
    const err = await c.execute("bad").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QmpError);
    expect(err).toMatchObject({ qmpClass: "CommandNotFound" });
    c.close();
  });

  test("the peer hanging up fails pending commands at once", async () => {
    const path = await peer(
      (s) => s.write(GREETING),
      (s, m) => (m.execute === "qmp_capabilities" ? reply(s, m.id, {}) : s.destroy()),
    );
    const c = new QmpClient({ socketPath: path, timeoutMs: 5000 });
    await c.connect();
    const t0 = Date.now();
    await expect(c.execute("query-status")).rejects.toMatchObject({ errorCode: "QMP_DISCONNECTED" });
    expect(Date.now() - t0).toBeLessThan(4000);
  });

  test("a QMP peer without input-send-event is not an input backend", async () => {
    const path = await peer(
      (s) => s.write(GREETING),
      (s, m) => reply(s, m.id, m.execute === "query-commands" ? [{ name: "query-status" }] : {}),
    );
    const b = new QmpInputBackend({ socketPath: path, reconnect: false });
    await expect(b.open()).rejects.toMatchObject({ errorCode: "INPUT_BACKEND_UNSUPPORTED" });
    await b.close();
  });
});

describe.skipIf(!qemuAvailable())("QMP backend on a QEMU without an absolute pointer", () => {
  test("absolute events are unsupported; relative ones flow", async () => {
    const dir = tempDir("neuron-qmp-rel-");
    const sock = join(dir.path, "rel.qmp");
    const proc = Bun.spawn(
      [QEMU, "-accel", "tcg", "-machine", "q35", "-nodefaults", "-display", "none", "-m", "64",
        "-qmp", `unix:${sock},server=on,wait=off`, "-device", "virtio-keyboard-pci", "-device", "virtio-mouse-pci"],
      { stdout: "ignore", stderr: "ignore" },
    );
    cleanup.push(async () => {
      proc.kill();
      await proc.exited;
      dir.cleanup();
    });
    const b = new QmpInputBackend({ socketPath: sock, reconnect: false });
    await waitFor(() => existsSync(sock), 10_000, "QMP socket");
    await b.open();
    cleanup.push(() => b.close());
    expect(b.capabilities).toMatchObject({ relativePointer: true, absolutePointer: false, touch: false, keyboard: true });
    b.submit([
      { kind: "mouseMoveAbs", x: 1, y: 1, width: 10, height: 10 },
      { kind: "touch", eventType: "down", pointerId: 1, x: 0, y: 0, pressureOrDistance: 0, rotation: 0, contactAreaMajor: 0, contactAreaMinor: 0 },
      { kind: "mouseMoveRel", dx: 1, dy: 1 },
    ]);
    await b.flush();
    const s = b.stats();
    expect(s.unsupported).toEqual({ mouseMoveAbs: 1, touch: 1 });
    expect(s.delivered).toBe(2);
    expect(s.refusedBatches).toBe(0);
  });
});
