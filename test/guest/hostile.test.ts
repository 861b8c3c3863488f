/** Hostile and broken peers on both ends of the agent channel: bounded memory, clear errors, connection kept. */
import { afterAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import net from "node:net";
import { join } from "node:path";
import { AgentClient } from "../../src/guest/client.ts";
import { guestAnswer, hostPreamble, PREAMBLE_MAGIC } from "../../src/guest/preamble.ts";

const PREAMBLE = hostPreamble("0123456789abcdef0123456789abcdef");
import { encodeFrame, ETX, FrameDecoder, STX } from "../../src/guest/framing.ts";
import { tempDir } from "../helpers/env.ts";
import { captureLogger, rawPeer, serveAgent, waitFor } from "./agent-env.ts";

// Real subprocesses and sockets: generous under load (CI runs on 2 cores).
setDefaultTimeout(30_000);

const tmp = tempDir("neuron-hostile-");
afterAll(() => tmp.cleanup());
let n = 0;
const sock = () => join(tmp.path, `h${++n}.sock`);

/** A fake guest that answers hello, then lets the test script the rest. */
function scriptedGuest(onRequest: (s: net.Socket, req: Record<string, unknown>) => void) {
  return (s: net.Socket) => {
    const d = new FrameDecoder({
      onFrame: (req) => {
        if (req.type === "hello") s.write(encodeFrame({ request_id: req.request_id, success: true, data: { protocol: 1, agent_version: "fake", os: "linux" } }));
        else onRequest(s, req);
      },
      onDrop: () => {},
    });
    // Answer the host's preamble as the agent does, after what an earlier session left in the pipe:
    // a TLS record, a frame, and an answer with another session's nonce — the host must skip all of it.
    let head = Buffer.alloc(0);
    let answered = false;
    s.on("data", (b: Buffer) => {
      if (answered) return d.push(b);
      head = Buffer.concat([head, b]);
      const end = head.indexOf("\r\n");
      if (end < 0) return;
      const nonce = head.subarray(PREAMBLE_MAGIC.length, end).toString();
      s.write(Buffer.concat([Buffer.from([0x16, 0x03, 0x03, 0x00]), encodeFrame({ request_id: "h1", success: true, data: {} }), guestAnswer("f".repeat(32)), guestAnswer(nonce)]));
      answered = true;
      if (head.length > end + 2) d.push(head.subarray(end + 2));
    });
  };
}

describe("host client against a hostile guest", () => {
  test("garbage, nested STX, bad UTF-8/JSON, unknown events, wrong ids and oversized frames are dropped; the connection lives", async () => {
    const path = sock();
    const junk = [
      Buffer.from("stray bytes before any frame"),
      Buffer.from([STX, ...Buffer.from('{"half":'), STX, ...Buffer.from('{"type":"app_exited","data":{"pid":1,"code":0,"signal":null}}'), ETX]),
      Buffer.from([STX, 0xc3, 0x28, ETX]),
      Buffer.from([STX, ...Buffer.from("{nope"), ETX]),
      encodeFrame({ type: "no_such_event", data: {} }),
      encodeFrame({ type: "resolution_changed", data: { width: -5 } }),
      encodeFrame({ request_id: "h999", success: true, data: {} }),
      encodeFrame({ request_id: "x", success: "yes" }),
      Buffer.concat([Buffer.from([STX]), Buffer.alloc(5 * 1024 * 1024, 0x61), Buffer.from([ETX])]),
    ];
    const peer = await rawPeer(
      path,
      scriptedGuest((s, req) => {
        if (req.type !== "ping") return;
        for (const j of junk) s.write(j);
        s.write(encodeFrame({ request_id: req.request_id, success: true, data: { pong: true, time: 1 } }));
      }),
    );
    const { log, lines } = captureLogger();
    const c = new AgentClient({ socketPath: path, tls: null, log, requestTimeoutMs: 5000 });
    const events: unknown[] = [];
    c.on("event", (e) => events.push(e));
    try {
      await c.connectOnce();
      expect(await c.request("ping")).toEqual({ pong: true, time: 1 });
      expect(c.state).toBe("connected");
      // The one valid event (inside the nested-STX frame) arrived; the invalid ones did not.
      expect(events).toEqual([{ type: "app_exited", data: { pid: 1, code: 0, signal: null } }]);
      const reasons = lines.filter((l) => l.level === "error" || l.level === "warn").map((l) => String(l.fields.reason ?? l.msg));
      expect(reasons).toEqual(
        expect.arrayContaining(["stray_bytes", "nested_stx", "invalid_utf8", "invalid_json", "invalid_message", "oversized", "agent response for an unknown request id dropped"]),
      );
      expect(lines.some((l) => l.msg === "agent event dropped")).toBe(true);
    } finally {
      c.stop();
      await peer.close();
    }
  });

  test("a guest that never answers gives AGENT_TIMEOUT; its late answer is dropped", async () => {
    const path = sock();
    let late: (() => void) | null = null;
    const peer = await rawPeer(
      path,
      scriptedGuest((s, req) => {
        late = () => s.write(encodeFrame({ request_id: req.request_id, success: true, data: {} }));
      }),
    );
    const { log, lines } = captureLogger();
    const c = new AgentClient({ socketPath: path, tls: null, log });
    try {
      await c.connectOnce();
      const err = await c.request("get_info", {}, 150).catch((e: unknown) => e);
      expect((err as { errorCode: string }).errorCode).toBe("AGENT_TIMEOUT");
      late!();
      await waitFor(() => lines.some((l) => l.msg.includes("unknown request id")));
      expect(c.state).toBe("connected");
    } finally {
      c.stop();
      await peer.close();
    }
  });

  test("an answer that fails the command's schema is AGENT_BAD_RESPONSE", async () => {
    const path = sock();
    const peer = await rawPeer(path, scriptedGuest((s, req) => s.write(encodeFrame({ request_id: req.request_id, success: true, data: { os: 42 } }))));
    const c = new AgentClient({ socketPath: path, tls: null, log: captureLogger().log });
    try {
      await c.connectOnce();
      const err = await c.request("get_info").catch((e: unknown) => e);
      expect((err as { errorCode: string }).errorCode).toBe("AGENT_BAD_RESPONSE");
    } finally {
      c.stop();
      await peer.close();
    }
  });

  test("a peer that accepts but never says hello times out the handshake", async () => {
    const path = sock();
    const peer = await rawPeer(path, () => {});
    const c = new AgentClient({ socketPath: path, tls: null, log: captureLogger().log, connectTimeoutMs: 200 });
    try {
      await expect(c.connectOnce()).rejects.toThrow("no handshake within 200 ms");
    } finally {
      c.stop();
      await peer.close();
    }
  });
});

/** A raw host that writes bytes to the guest agent and collects its responses. */
async function rawHost(path: string) {
  const s = net.createConnection({ path });
  await new Promise<void>((r) => s.once("connect", () => r()));
  s.write(PREAMBLE);
  const replies: Record<string, unknown>[] = [];
  const d = new FrameDecoder({ onFrame: (f) => replies.push(f), onDrop: () => {} });
  s.on("data", (b: Buffer) => d.push(b));
  return { s, replies };
}

describe("guest agent against a hostile host", () => {
  test("100 MiB without ETX: bounded buffering, then the next frame is served", async () => {
    const dir = tempDir();
    const path = sock();
    const { log, lines } = captureLogger();
    const served = await serveAgent({ socketPath: path, dir: dir.path, tls: null, log });
    const { s, replies } = await rawHost(path);
    try {
      s.write(Buffer.from([STX]));
      const chunk = Buffer.alloc(1024 * 1024, 0x7b);
      let maxBuffered = 0;
      for (let i = 0; i < 100; i++) {
        if (!s.write(chunk)) await new Promise((r) => s.once("drain", r));
        maxBuffered = Math.max(maxBuffered, served.agent.bufferedBytes);
      }
      s.write(Buffer.from([ETX]));
      s.write(encodeFrame({ type: "ping", request_id: "p1", data: {} }));
      await waitFor(() => replies.find((r) => r.request_id === "p1"), 10_000, "ping reply");
      expect(maxBuffered).toBeLessThanOrEqual(4 * 1024 * 1024);
      expect(lines.some((l) => l.fields.reason === "oversized")).toBe(true);
      expect(served.agent.connected).toBe(true);
    } finally {
      s.destroy();
      await served.close();
      dir.cleanup();
    }
  });

  test("unknown commands, bad arguments, bad envelopes and broken frames get clear errors or are dropped", async () => {
    const dir = tempDir();
    const path = sock();
    const { log, lines } = captureLogger();
    const served = await serveAgent({ socketPath: path, dir: dir.path, tls: null, log });
    const { s, replies } = await rawHost(path);
    try {
      s.write(encodeFrame({ type: "format_c_drive", request_id: "r1", data: {} }));
      s.write(encodeFrame({ type: "launch_app", request_id: "r2", data: { path: 5 } }));
      s.write(encodeFrame({ type: "clipboard_set", request_id: "r3", data: { mime: "text/plain", text: "x".repeat(1024 * 1024 + 1) } }));
      s.write(encodeFrame({ type: "ping", request_id: "x".repeat(65), data: {} }));
      s.write(Buffer.from([STX, ...Buffer.from('{"type":"ping",'), STX, 0xff, ETX, 0x01, 0x02]));
      s.write(Buffer.from([STX, ...Buffer.from('["ping"]'), ETX]));
      s.write(encodeFrame({ type: "ping", request_id: "r4" }));
      await waitFor(() => replies.length >= 4, 5000, "replies");
      const byId = Object.fromEntries(replies.map((r) => [r.request_id, r]));
      expect(byId.r1).toMatchObject({ success: false, error: { code: "UNKNOWN_COMMAND" } });
      expect(byId.r2).toMatchObject({ success: false, error: { code: "INVALID_ARGUMENT" } });
      expect(byId.r3).toMatchObject({ success: false, error: { code: "INVALID_ARGUMENT" } });
      expect(byId.r4).toMatchObject({ success: true, data: { pong: true } });
      const reasons = lines.filter((l) => l.level === "error").map((l) => l.fields.reason);
      expect(reasons).toEqual(expect.arrayContaining(["invalid_message", "nested_stx", "invalid_utf8", "not_an_object"]));
      expect(served.agent.connected).toBe(true);
    } finally {
      s.destroy();
      await served.close();
      dir.cleanup();
    }
  });

  test("display names with quotes or spaces never reach an OS command", async () => {
    const dir = tempDir();
    const path = sock();
    const served = await serveAgent({ socketPath: path, dir: dir.path, tls: null });
    writeFileSync(join(dir.path, "displays"), "Evil';$(reboot) 1024x768 primary\n");
    const { s, replies } = await rawHost(path);
    try {
      s.write(encodeFrame({ type: "set_resolution", request_id: "d1", data: { width: 800, height: 600 } }));
      s.write(encodeFrame({ type: "set_resolution", request_id: "d2", data: { width: 800, height: 600, display: "a'b" } }));
      await waitFor(() => replies.length >= 2, 5000, "replies");
      for (const r of replies) expect(r).toMatchObject({ success: false, error: { code: "INVALID_ARGUMENT" } });
      expect(readFileSync(join(dir.path, "displays"), "utf8")).toBe("Evil';$(reboot) 1024x768 primary\n");
    } finally {
      s.destroy();
      await served.close();
      dir.cleanup();
    }
  });

  test("stale bytes before the session preamble (a broken earlier session) are discarded, bounded", async () => {
    const dir = tempDir();
    const path = sock();
    const { log, lines } = captureLogger();
    const served = await serveAgent({ socketPath: path, dir: dir.path, tls: null, log });
    const s = net.createConnection({ path });
    await new Promise<void>((r) => s.once("connect", () => r()));
    const replies: Record<string, unknown>[] = [];
    const d = new FrameDecoder({ onFrame: (f) => replies.push(f), onDrop: () => {} });
    s.on("data", (b: Buffer) => d.push(b));
    try {
      // Leftovers: half a TLS record, a frame, and the preamble split across writes.
      s.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]));
      s.write(encodeFrame({ type: "ping", request_id: "stale", data: {} }));
      s.write(Buffer.alloc(3 * 1024 * 1024, 0x55));
      s.write(PREAMBLE.subarray(0, 7));
      await Bun.sleep(20);
      s.write(PREAMBLE.subarray(7));
      s.write(encodeFrame({ type: "ping", request_id: "fresh", data: {} }));
      await waitFor(() => replies.find((r) => r.request_id === "fresh"), 5000, "fresh reply");
      expect(replies.map((r) => r.request_id)).toEqual(["fresh"]);
      const discarded = lines.find((l) => l.msg === "bytes before the session preamble discarded");
      expect(discarded?.fields.bytes).toBe(6 + encodeFrame({ type: "ping", request_id: "stale", data: {} }).length + 3 * 1024 * 1024);
    } finally {
      s.destroy();
      await served.close();
      dir.cleanup();
    }
  });

  test("slow-loris: a frame trickled byte by byte is still served, and holds only its own bytes", async () => {
    const dir = tempDir();
    const path = sock();
    const served = await serveAgent({ socketPath: path, dir: dir.path, tls: null });
    const { s, replies } = await rawHost(path);
    try {
      const f = encodeFrame({ type: "ping", request_id: "slow", data: {} });
      let maxBuffered = 0;
      for (const b of f) {
        s.write(Buffer.from([b]));
        await Bun.sleep(2);
        maxBuffered = Math.max(maxBuffered, served.agent.bufferedBytes);
      }
      await waitFor(() => replies.find((r) => r.request_id === "slow"), 5000, "slow reply");
      expect(maxBuffered).toBeLessThanOrEqual(f.length);
    } finally {
      s.destroy();
      await served.close();
      dir.cleanup();
    }
  });
});
