/**
 * Session boundaries on a connection-less port: the preamble scanner, the
 * splitter that cuts the agent port's byte stream into sessions, and an
 * emulated virtio-serial port that behaves like QEMU's (no EOF seen by the
 * guest when the host reconnects quickly; guest output kept for the next host
 * connection) carrying a real TLS agent session after a broken one.
 */
import { afterAll, describe, expect, test } from "bun:test";
import net from "node:net";
import { join } from "node:path";
import { Duplex, PassThrough } from "node:stream";
import tls from "node:tls";
import { ensureAgentCertificates, type TlsMaterial } from "../../src/guest/certs.ts";
import { AgentClient } from "../../src/guest/client.ts";
import { guestAnswer, hostPreamble, NeedleScanner, newNonce, PREAMBLE_MAGIC, readUntilPreamble } from "../../src/guest/preamble.ts";
import { loadAgentConfig } from "../../src/guest-agent/config.ts";
import { OsBackend } from "../../src/guest-agent/os.ts";
import { PortSession, PortWriter, SessionSplitter } from "../../src/guest-agent/port.ts";
import { AgentServer } from "../../src/guest-agent/server.ts";
import { silentLogger } from "../../src/log.ts";
import { tempDir } from "../helpers/env.ts";
import { fileCommands, waitFor } from "./agent-env.ts";

const tmp = tempDir("neuron-preamble-");
afterAll(() => tmp.cleanup());

const collect = (s: PortSession) => {
  const chunks: Buffer[] = [];
  let ended = false;
  s.on("data", (b: Buffer) => chunks.push(b));
  s.on("close", () => (ended = true));
  return { bytes: () => Buffer.concat(chunks), ended: () => ended };
};

describe("NeedleScanner", () => {
  test("finds every occurrence, also split across chunks at every position", () => {
    const needle = PREAMBLE_MAGIC;
    const stream = Buffer.concat([Buffer.from("xx"), needle, Buffer.from("yyy"), needle, needle, Buffer.from("z")]);
    const expected = [2, 2 + needle.length + 3, 2 + 2 * needle.length + 3];
    for (let cut = 0; cut <= stream.length; cut++) {
      for (let cut2 = cut; cut2 <= stream.length; cut2 += 5) {
        const sc = new NeedleScanner(needle);
        const found = [
          ...sc.scan(stream.subarray(0, cut)),
          ...sc.scan(stream.subarray(cut, cut2)).map((o) => o + cut),
          ...sc.scan(stream.subarray(cut2)).map((o) => o + cut2),
        ];
        expect(found).toEqual(expected);
      }
    }
  });
});

describe("NeedleScanner over random chunkings", () => {
  test("a long stream with many occurrences cut into chunks of 1 byte to 64 KiB gives every offset once", () => {
    const needle = PREAMBLE_MAGIC;
    const parts: Buffer[] = [];
    const expected: number[] = [];
    let size = 0;
    let seed = 7;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    for (let i = 0; i < 100; i++) {
      const gap = Buffer.alloc(rnd(3) === 0 ? rnd(4) : rnd(3_000), 0x4e); // 'N' runs: partial matches everywhere
      parts.push(gap, needle);
      expected.push(size + gap.length);
      size += gap.length + needle.length;
    }
    const stream = Buffer.concat(parts);
    for (const maxChunk of [1, 7, 17, 100, 65_536]) {
      const sc = new NeedleScanner(needle);
      const found: number[] = [];
      for (let off = 0; off < stream.length; ) {
        const n = Math.min(stream.length - off, 1 + rnd(maxChunk));
        for (const at of sc.scan(stream.subarray(off, off + n))) found.push(off + at);
        off += n;
      }
      expect(found).toEqual(expected);
    }
  });
});

describe("SessionSplitter", () => {
  const make = () => {
    const written: Buffer[] = [];
    const sessions: ReturnType<typeof collect>[] = [];
    const raw: PortSession[] = [];
    const splitter = new SessionSplitter(
      new PortWriter(async (d) => void written.push(Buffer.from(d))),
      (s) => {
        raw.push(s);
        sessions.push(collect(s));
      },
    );
    return { splitter, sessions, raw, written };
  };

  test("bytes before the first preamble are discarded; each preamble starts a session and ends the previous one", async () => {
    const { splitter, sessions } = make();
    const p1 = hostPreamble(newNonce());
    const p2 = hostPreamble(newNonce());
    splitter.push(Buffer.from("stale-bytes"));
    expect(sessions.length).toBe(0);
    expect(splitter.discarded).toBe(11);
    splitter.push(Buffer.concat([p1, Buffer.from("one"), p2.subarray(0, 5)]));
    splitter.push(Buffer.concat([p2.subarray(5), Buffer.from("two")]));
    await Bun.sleep(0);
    expect(sessions.length).toBe(2);
    // The first session got its preamble and bytes, plus the split preamble's first 5 bytes before it was superseded.
    expect(sessions[0]!.bytes().toString()).toBe(Buffer.concat([p1, Buffer.from("one"), p2.subarray(0, 5)]).toString());
    expect(sessions[0]!.ended()).toBe(true);
    // The second begins with the whole preamble.
    expect(sessions[1]!.bytes().toString()).toBe(Buffer.concat([p2, Buffer.from("two")]).toString());
    expect(sessions[1]!.ended()).toBe(false);
    expect(splitter.hostGone()).toBe(true);
    await Bun.sleep(0);
    expect(sessions[1]!.ended()).toBe(true);
    expect(splitter.hostGone()).toBe(false);
  });

  test("a superseded session's writes never reach the port; writes go out in order", async () => {
    const { splitter, raw, written } = make();
    splitter.push(hostPreamble(newNonce()));
    const first = raw[0]!;
    await new Promise((r) => first.write(Buffer.from("a1"), r));
    await new Promise((r) => first.write(Buffer.from("a2"), r));
    splitter.push(hostPreamble(newNonce()));
    first.write(Buffer.from("late")); // after it was superseded
    raw[1]!.write(Buffer.from("b1"));
    await waitFor(() => written.length >= 3, 5000, "writes");
    await Bun.sleep(10);
    expect(written.map(String)).toEqual(["a1", "a2", "b1"]);
  });
});

describe("readUntilPreamble", () => {
  test("the host skips stale bytes, other sessions' answers and damaged lines up to its own answer", async () => {
    const nonce = newNonce();
    const s = new PassThrough();
    const found = readUntilPreamble(s, { answerFor: nonce });
    s.write(Buffer.from([0x16, 0x03, 0x03, 0x00, 0x40]));
    s.write(guestAnswer(newNonce()));
    s.write(Buffer.concat([PREAMBLE_MAGIC, Buffer.from("OK nothex-nothex-nothex-nothex-xx\r\n")]));
    const own = guestAnswer(nonce);
    s.write(own.subarray(0, 20));
    s.write(Buffer.concat([own.subarray(20), Buffer.from("tls")]));
    const r = await found;
    expect(r?.nonce).toBe(nonce);
    const rest = await new Promise<Buffer>((res) => r!.stream.once("data", res));
    expect(rest.toString()).toBe("tls");
  });

  test("the agent takes any well-formed preamble; a stream that ends first, or too much junk, gives null", async () => {
    const a = new PassThrough();
    const pa = readUntilPreamble(a);
    a.write(Buffer.concat([Buffer.from("junk"), PREAMBLE_MAGIC, Buffer.from("short\r\n"), hostPreamble("ab".repeat(16))]));
    expect((await pa)?.nonce).toBe("ab".repeat(16));

    const b = new PassThrough();
    const pb = readUntilPreamble(b);
    b.end(PREAMBLE_MAGIC.subarray(0, 10));
    expect(await pb).toBeNull();

    const c = new PassThrough();
    let discarded = 0;
    const pc = readUntilPreamble(c, { answerFor: newNonce(), maxDiscard: 64 * 1024, onDiscard: (n) => (discarded = n) });
    for (let i = 0; i < 4; i++) c.write(Buffer.alloc(32 * 1024, 0x41));
    expect(await pc).toBeNull();
    expect(discarded).toBeGreaterThan(64 * 1024);
  });
});

/** The first flight of a real TLS client with the host's certificate: what a host sends before it gives up. */
async function clientHello(material: TlsMaterial): Promise<Buffer> {
  const captured: Buffer[] = [];
  const wire = new Duplex({
    read() {},
    write(chunk: Buffer, _enc, cb) {
      captured.push(Buffer.from(chunk));
      cb();
    },
  });
  const t = tls.connect({ socket: wire, ca: material.ca, cert: material.cert, key: material.key, minVersion: "TLSv1.3", checkServerIdentity: () => undefined });
  t.on("error", () => {});
  await waitFor(() => captured.length > 0, 5000, "a ClientHello");
  t.destroy();
  const hello = Buffer.concat(captured);
  expect(hello[0]).toBe(0x16); // a handshake record
  return hello;
}

/**
 * A virtio-serial port as QEMU and the guest driver present it: one host
 * connection at a time on a unix socket; host bytes go to the guest's reader;
 * guest bytes go to the connected host, or wait for the next one. A host that
 * reconnects quickly is not seen by the guest as a disconnect.
 */
async function emulatedPort(path: string, splitter: () => SessionSplitter) {
  let host: net.Socket | null = null;
  const held: Buffer[] = [];
  const server = net.createServer((s) => {
    host?.destroy();
    host = s;
    s.on("error", () => {});
    for (const b of held.splice(0)) s.write(b);
    // The guest reads a moment later than the host writes (it is busy, or slow under TCG).
    s.on("data", (b: Buffer) => {
      const copy = Buffer.from(b);
      setTimeout(() => splitter().push(copy), 20);
    });
    const gone = () => {
      if (host === s) host = null;
      s.destroy();
    };
    s.on("end", gone);
    s.on("close", gone);
  });
  await new Promise<void>((r) => server.listen(path, r));
  return {
    write: async (d: Buffer) => {
      if (host && !host.destroyed) host.write(d);
      else held.push(Buffer.from(d));
    },
    held: () => Buffer.concat(held),
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

describe("a host session after a broken one, over a port that keeps stale bytes", () => {
  test("the next host connects even though the last session's guest output reaches it first", async () => {
    const dir = tempDir();
    const certs = await ensureAgentCertificates({ stateDir: dir.path, openssl: "openssl" }, "vm1");
    const agent = new AgentServer({
      backend: new OsBackend(loadAgentConfig({ certDir: null, commands: fileCommands(dir.path) }, "linux", {})),
      tls: certs.guest,
      log: silentLogger,
    });
    const path = join(tmp.path, "port.sock");
    let split: SessionSplitter | null = null;
    const port = await emulatedPort(path, () => split!);
    split = new SessionSplitter(new PortWriter(port.write), (s) => void agent.serve(s));
    const client = new AgentClient({ socketPath: path, tls: certs.host, log: silentLogger, connectTimeoutMs: 10_000 });
    try {
      // Two hosts give up in the middle of their handshakes (a real TLS client each time): the agent has
      // answered and sent its ServerHello flight, which the port keeps for whoever connects next.
      for (let i = 0; i < 2; i++) {
        const hello = await clientHello(certs.host);
        const s = net.createConnection({ path });
        await new Promise<void>((r) => s.once("connect", () => r()));
        await new Promise((r) => s.write(Buffer.concat([hostPreamble(newNonce()), hello]), r));
        s.destroy();
        // The agent answered and sent its ServerHello flight after this host left: the port keeps it.
        await waitFor(() => port.held().includes(PREAMBLE_MAGIC) && port.held().length > 1000, 5000, "the agent's answer to a host that left");
      }
      const stale = port.held().length;
      const hello = await client.connectOnce();
      expect(hello.protocol).toBe(1);
      expect(await client.request<{ pong: boolean }>("ping")).toMatchObject({ pong: true });
      expect(stale).toBeGreaterThan(1000); // an answer to another host and its ServerHello flight were skipped
    } finally {
      client.stop();
      agent.stop();
      await port.close();
      dir.cleanup();
    }
  }, 30_000);
});
