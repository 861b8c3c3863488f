/**
 * lumen/1 control over QUIC (native/lumen/quic.c: ngtcp2 + GnuTLS on a native thread), on
 * 127.0.0.1: the endpoints through ffi, the host and reference client over it (pairing, datagram
 * side planes, a relay with another certificate), the TLS-on-TCP fallback.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { createSocket } from "node:dgram";
import { QuicEndpoint, type QuicEvent } from "../../ffi/lumen-quic.ts";
import { LumenClient, loadClientState } from "../../src/lumen/client.ts";
import type { LumenHost } from "../../src/lumen/host.ts";
import { buildNative, enterPinWhenAsked, loadNatives, startHost, tempDir, testIdentity } from "./helpers.ts";

let host: LumenHost;
const inputs: number[] = [];

beforeAll(async () => {
  buildNative();
  // a stand-in audio source: 10 ms packets of fixed bytes (the plane carries them whatever they are)
  host = await startHost({ onInput: (s) => inputs.push(s), audio: () => ({ nextPacket: () => new Uint8Array(120).fill(0x5a), intervalMs: 10 }) });
});
afterAll(async () => {
  await host?.stop();
});

/** Polls an endpoint until `want` holds for the events seen so far (bounded). */
async function until(ep: QuicEndpoint, seen: QuicEvent[], want: (s: QuicEvent[]) => boolean, ms = 3000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!want(seen)) {
    if (performance.now() > deadline) throw new Error(`QUIC events not seen in time: ${JSON.stringify(seen.map((e) => e.kind))}`);
    seen.push(...ep.poll(2));
    await Bun.sleep(1); // the host in this process runs on this event loop
  }
}

describe("QUIC endpoints (ffi)", () => {
  test("handshake, control stream both ways, datagrams both ways; the client gets the host certificate's DER", async () => {
    const n = loadNatives(), id = testIdentity();
    const srv = QuicEndpoint.listen(n.lumen, { host: "127.0.0.1", port: 0, certPem: id.certPem, keyPem: id.keyPem, maxConns: 4 });
    const cli = QuicEndpoint.connect(n.lumen, "127.0.0.1", srv.stats().port);
    try {
      const cs: QuicEvent[] = [], ss: QuicEvent[] = [];
      await until(cli, cs, (s) => s.some((e) => e.kind === "open"));
      const open = cs.find((e) => e.kind === "open")!;
      expect(createHash("sha256").update(open.data).digest("hex")).toBe(id.fingerprint);
      const big = new Uint8Array(300_000).map((_, i) => (i * 31) & 0xff); // many packets, flow control, acks
      expect(cli.write(1, big)).toBe(true);
      expect(cli.sendDatagram(1, new Uint8Array([0x49, 1, 2, 3]))).toBe(true);
      const got = () => ss.filter((e) => e.kind === "stream").reduce((a, e) => a + e.data.length, 0);
      await until(srv, ss, () => got() >= big.length && ss.some((e) => e.kind === "datagram"));
      const streamBytes = Buffer.concat(ss.filter((e) => e.kind === "stream").map((e) => e.data));
      expect(streamBytes.equals(Buffer.from(big))).toBe(true);
      expect([...ss.find((e) => e.kind === "datagram")!.data]).toEqual([0x49, 1, 2, 3]);
      const conn = ss.find((e) => e.kind === "open")!;
      expect(new TextDecoder().decode(conn.data)).toBe("127.0.0.1");
      srv.write(conn.conn, new TextEncoder().encode("welcome"));
      srv.sendDatagram(conn.conn, new Uint8Array([0x41, 9]));
      await until(cli, cs, (s) => s.some((e) => e.kind === "stream") && s.some((e) => e.kind === "datagram"));
      expect(new TextDecoder().decode(cs.find((e) => e.kind === "stream")!.data)).toBe("welcome");
      expect([...cs.find((e) => e.kind === "datagram")!.data]).toEqual([0x41, 9]);
      // bad arguments: a clear refusal, nothing queued
      expect(() => cli.sendDatagram(1, new Uint8Array(1201))).toThrow(RangeError);
      expect(srv.write(999, new Uint8Array(1))).toBe(false);
      // the host closes with an application code: the client sees it
      srv.closeConn(conn.conn, 7);
      await until(cli, cs, (s) => s.some((e) => e.kind === "closed"));
      expect(cs.find((e) => e.kind === "closed")).toMatchObject({ code: 7 });
    } finally {
      cli.close();
      srv.close();
    }
  });

  test("junk at the QUIC port is refused and the host keeps serving; a client to a closed port fails clearly", async () => {
    const n = loadNatives();
    const before = host["server"]!.quicStats()!;
    const sock = createSocket("udp4");
    const junk = [new Uint8Array(3), new Uint8Array(1200).fill(0xc3), new Uint8Array(40).fill(0x41)];
    for (const j of junk) sock.send(j, host.port, "127.0.0.1");
    await Bun.sleep(100);
    sock.close();
    const after = host["server"]!.quicStats()!;
    expect(after.refused - before.refused).toBeGreaterThanOrEqual(3);
    expect(after.conns).toBe(before.conns);
    // a lumen client still connects
    using dir = tempDir();
    const c = new LumenClient({ host: "127.0.0.1", port: host.port, stateDir: dir.path, pin: "4242", mode: { width: 160, height: 120, fps: 30 }, natives: n });
    await Promise.all([c.connect(), enterPinWhenAsked(host, "4242")]);
    c.close();
    expect(() => QuicEndpoint.connect(n.lumen, "not-an-address", 1)).toThrow(/NEURON_EINVAL/);
    const dead = new LumenClient({ host: "127.0.0.1", port: 9, stateDir: dir.path, mode: { width: 160, height: 120, fps: 30 }, natives: n, timeoutMs: 500 });
    await expect(dead.connect()).rejects.toMatchObject({ errorCode: expect.stringMatching(/LUMEN_(TIMEOUT|CONNECT)/) });
  }, 20_000);
});

describe("lumen/1 over QUIC", () => {
  test("pairs by PIN over QUIC, Hello → Welcome → Start; input and audio travel as QUIC datagrams", async () => {
    using dir = tempDir();
    const c = new LumenClient({ host: "127.0.0.1", port: host.port, stateDir: dir.path, pin: "8080", name: "quic-client", mode: { width: 320, height: 240, fps: 30 }, natives: loadNatives() });
    await Promise.all([c.connect(), enterPinWhenAsked(host, "8080")]);
    expect(c.transport).toBe("quic");
    expect(loadClientState(dir.path).hosts[`127.0.0.1:${host.port}`]!.fingerprint).toBe(testIdentity().fingerprint);
    const session = host.sessions.get(c.sessionId)!;
    let sent = 0;
    const r = await c.stream(1.0, () => {
      if (sent < 20) {
        c.sendInput({ kind: "mouseMoveRel", dx: 1, dy: 1 });
        sent++;
      }
    });
    expect(r.framesReceived).toBeGreaterThan(10);
    expect(session.stats.inputEvents).toBe(20);
    expect(inputs.filter((s) => s === c.sessionId).length).toBe(20);
    // audio arrived over the control channel's datagrams, not the UDP data plane
    expect(r.controlDatagrams).toBeGreaterThan(30);
    expect(r.audioPackets).toBe(r.controlDatagrams);
    c.close();
    // later: the pairing key, over QUIC again
    const again = new LumenClient({ host: "127.0.0.1", port: host.port, stateDir: dir.path, mode: { width: 320, height: 240, fps: 30 }, natives: loadNatives() });
    await again.connect();
    expect(again.sessionId).toBeGreaterThan(0);
    again.close();
  }, 20_000);

  test("a QUIC relay with its own certificate: the PIN pairing through it fails, nothing is stored", async () => {
    const n = loadNatives(), mitm = testIdentity(true);
    const relay = QuicEndpoint.listen(n.lumen, { host: "127.0.0.1", port: 0, certPem: mitm.certPem, keyPem: mitm.keyPem, maxConns: 2 });
    let up: QuicEndpoint | null = null;
    let upOpen = false;
    const pending: Uint8Array[] = [];
    const pump = setInterval(() => {
      for (const e of relay.poll(0)) {
        if (e.kind === "open") up = QuicEndpoint.connect(n.lumen, "127.0.0.1", host.port);
        else if (e.kind === "stream") {
          if (upOpen) up!.write(1, e.data);
          else pending.push(e.data);
        }
      }
      if (up) for (const e of up.poll(0)) {
        if (e.kind === "open") {
          upOpen = true;
          for (const p of pending.splice(0)) up.write(1, p);
        } else if (e.kind === "stream") relay.write(1, e.data);
      }
    }, 1);
    try {
      using dir = tempDir();
      const c = new LumenClient({ host: "127.0.0.1", port: relay.stats().port, stateDir: dir.path, mode: { width: 320, height: 240, fps: 30 }, natives: n, pin: "6060", name: "via-quic-relay" });
      const [r] = await Promise.allSettled([c.connect(), enterPinWhenAsked(host, "6060")]);
      c.close();
      expect(r.status).toBe("rejected");
      expect((r as PromiseRejectedResult).reason.errorCode).toBe("PAIRING_PIN_MISMATCH");
      expect(host["o"].store.list().some((p) => p.name === "via-quic-relay")).toBe(false);
      expect(loadClientState(dir.path).hosts).toEqual({});
    } finally {
      clearInterval(pump);
      (up as QuicEndpoint | null)?.close();
      relay.close();
    }
  }, 20_000);

  test("hostile control streams over QUIC: a lying length, junk — an error message, the connection closed, host unchanged", async () => {
    const n = loadNatives();
    const raw = async (bytes: Uint8Array): Promise<string> => {
      const ep = QuicEndpoint.connect(n.lumen, "127.0.0.1", host.port);
      try {
        const seen: QuicEvent[] = [];
        await until(ep, seen, (s) => s.some((e) => e.kind === "open"));
        ep.write(1, bytes);
        await until(ep, seen, (s) => s.some((e) => e.kind === "closed"));
        const got = Buffer.concat(seen.filter((e) => e.kind === "stream").map((e) => e.data));
        if (got.length <= 4) return "closed";
        return (JSON.parse(got.subarray(4, 4 + got.readUInt32BE(0)).toString()) as { code: string }).code;
      } finally {
        ep.close();
      }
    };
    const errors = host.counters.protocolErrors, sessions = host.sessions.size;
    expect(await raw(new Uint8Array([0xff, 0xff, 0xff, 0xff, 1, 2, 3]))).toBe("LUMEN_MESSAGE_TOO_LARGE");
    expect(await raw(new Uint8Array([0, 0, 0, 5, 0xc3, 0x28, 0xff, 0xfe, 0x00]))).toBe("LUMEN_MESSAGE_MALFORMED");
    expect(host.counters.protocolErrors - errors).toBe(2);
    expect(host.sessions.size).toBe(sessions);
  }, 20_000);

  test("a host name is resolved for QUIC and the data plane (localhost)", async () => {
    using dir = tempDir();
    const c = new LumenClient({ host: "localhost", port: host.port, stateDir: dir.path, pin: "5151", mode: { width: 160, height: 120, fps: 30 }, natives: loadNatives() });
    await Promise.all([c.connect(), enterPinWhenAsked(host, "5151")]);
    const r = await c.stream(0.4);
    expect(r.framesReceived).toBeGreaterThan(3);
    c.close();
    const bad = new LumenClient({ host: "no-such-host.invalid", port: host.port, stateDir: dir.path, mode: { width: 160, height: 120, fps: 30 }, natives: loadNatives(), timeoutMs: 2000 });
    await expect(bad.connect()).rejects.toMatchObject({ errorCode: "LUMEN_CONNECT" });
  }, 20_000);

  test("the TLS-on-TCP fallback still pairs and streams", async () => {
    using dir = tempDir();
    const c = new LumenClient({ host: "127.0.0.1", port: host.port, stateDir: dir.path, pin: "3131", mode: { width: 160, height: 120, fps: 30 }, natives: loadNatives(), transport: "tls" });
    await Promise.all([c.connect(), enterPinWhenAsked(host, "3131")]);
    const r = await c.stream(0.5);
    expect(r.framesReceived).toBeGreaterThan(5);
    expect(r.controlDatagrams).toBe(0); // side planes on the UDP data plane there
    expect(r.audioPackets).toBeGreaterThan(10);
    c.close();
  }, 20_000);
});
