/**
 * lumen/1 sessions on 127.0.0.1: renegotiation mid-stream (mode, then codec), two sessions at
 * once, a pinned fingerprint that no longer matches, a man in the middle during pairing,
 * replayed client datagrams, and hostile clients (lying lengths, huge modes, junk datagrams).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { connect, createServer } from "node:tls";
import { join } from "node:path";
import { createSocket } from "node:dgram";
import { LumenClient, loadClientState, saveClientState } from "../../src/lumen/client.ts";
import type { LumenHost } from "../../src/lumen/host.ts";
import { encodeMessage } from "../../src/lumen/messages.ts";
import { probeStream } from "../capture/ffmpeg.ts";
import { buildNative, enterPinWhenAsked, loadNatives, startHost, tempDir, testIdentity } from "./helpers.ts";

let host: LumenHost;

beforeAll(async () => {
  buildNative();
  host = await startHost();
});
afterAll(async () => {
  await host?.stop();
});

function client(dir: string, over: Partial<ConstructorParameters<typeof LumenClient>[0]> = {}) {
  return new LumenClient({ host: "127.0.0.1", port: host.port, stateDir: dir, mode: { width: 320, height: 240, fps: 60 }, natives: loadNatives(), codecs: ["h264", "hevc"], ...over });
}

async function paired(dir: string, name: string, over: Partial<ConstructorParameters<typeof LumenClient>[0]> = {}): Promise<LumenClient> {
  const c = client(dir, { pin: "7777", name, ...over });
  await Promise.all([c.connect(), enterPinWhenAsked(host, "7777")]);
  expect(c.transport).toBe(over.transport ?? "quic"); // these suites run over QUIC unless they say otherwise
  return c;
}

describe("lumen/1 sessions", () => {
  test("renegotiates resolution, then codec, mid-stream without reconnecting; every epoch decodes", async () => {
    using dir = tempDir();
    const c = await paired(dir.path, "reneg");
    // each step once the current epoch has frames (a loaded machine opens x265 slowly), bounded by 20 s
    let step = 0;
    const frames = (epoch: number) => c.streams.get(epoch)?.frames ?? 0;
    const counters = await c.stream(
      20,
      () => {
        if (step === 0 && frames(0) >= 8) {
          c.reconfigure({ width: 480, height: 272, fps: 30 });
          step = 1;
        } else if (step === 1 && frames(1) >= 8) {
          c.reconfigure({ codec: "hevc", bitrateKbps: 3000 });
          step = 2;
        }
      },
      () => step === 2 && frames(2) >= 8,
    );
    c.close();
    expect(counters.reconfigurations).toBe(2);
    expect([...c.streams.keys()].sort()).toEqual([0, 1, 2]);
    const sizes: Record<number, [string, number, number, number]> = {};
    for (const [epoch, s] of c.streams) {
      const file = join(dir.path, `e${epoch}.${s.codec}`);
      writeFileSync(file, Buffer.concat(s.chunks));
      const p = await probeStream(file, s.codec);
      sizes[epoch] = [p.codec, p.width, p.height, p.frames === s.frames ? 1 : 0];
      expect(s.frames).toBeGreaterThan(3);
    }
    expect(sizes[0]).toEqual(["h264", 320, 240, 1]);
    expect(sizes[1]).toEqual(["h264", 480, 272, 1]);
    expect(sizes[2]).toEqual(["hevc", 480, 272, 1]);
  }, 40_000);

  test("two sessions stream at once, each with its own keys and frames", async () => {
    using a = tempDir();
    using b = tempDir();
    const ca = await paired(a.path, "first");
    const cb = await paired(b.path, "second", { mode: { width: 256, height: 144, fps: 30 } });
    expect(ca.sessionId).not.toBe(cb.sessionId);
    expect(host.sessions.size).toBe(2);
    const [ra, rb] = await Promise.all([ca.stream(1.2), cb.stream(1.2)]);
    ca.close();
    cb.close();
    expect(ra.framesReceived).toBeGreaterThan(20);
    expect(rb.framesReceived).toBeGreaterThan(10);
    expect(ra.badAuth + rb.badAuth).toBe(0);
    expect(ca.config.width).toBe(320);
    expect(cb.config.width).toBe(256);
  }, 30_000);

  test("a pinned fingerprint that does not match is refused before anything is sent (QUIC and TLS)", async () => {
    for (const transport of ["quic", "tls"] as const) {
      using dir = tempDir();
      const s = loadClientState(dir.path);
      s.hosts[`127.0.0.1:${host.port}`] = { fingerprint: "ab".repeat(32), pairingKey: "00".repeat(32) };
      saveClientState(dir.path, s);
      const c = client(dir.path, { pin: "1234", transport });
      await expect(c.connect()).rejects.toMatchObject({ errorCode: "LUMEN_FINGERPRINT_MISMATCH" });
      c.close();
      expect(host.pending()).toEqual([]);
    }
  }, 20_000);

  test("a client whose pairing key is wrong is refused by the host", async () => {
    using dir = tempDir();
    const c = await paired(dir.path, "forgetful");
    c.close();
    const s = loadClientState(dir.path);
    const k = `127.0.0.1:${host.port}`;
    s.hosts[k] = { ...s.hosts[k]!, pairingKey: "11".repeat(32) };
    saveClientState(dir.path, s);
    const again = client(dir.path);
    await expect(again.connect()).rejects.toMatchObject({ errorCode: "LUMEN_AUTH_FAILED" });
    again.close();
  }, 20_000);

  test("a session whose client falls silent on UDP is ended by the host", async () => {
    const quiet = await startHost({ silenceMs: 300 });
    try {
      using dir = tempDir();
      const c = new LumenClient({ host: "127.0.0.1", port: quiet.port, stateDir: dir.path, pin: "2222", mode: { width: 160, height: 120, fps: 30 }, natives: loadNatives() });
      await Promise.all([c.connect(), enterPinWhenAsked(quiet, "2222")]);
      expect(quiet.sessions.size).toBe(1);
      // welcomed, then nothing on UDP: ended within a couple of stats ticks
      const deadline = Date.now() + 5000;
      while (quiet.sessions.size > 0 && Date.now() < deadline) await Bun.sleep(50);
      expect(quiet.sessions.size).toBe(0);
      c.close();
    } finally {
      await quiet.stop();
    }
  }, 20_000);

  test("a man in the middle relaying the pairing with its own certificate fails it (the PIN is right)", async () => {
    using dir = tempDir();
    const mitmId = testIdentity(true);
    const relay = createServer({ key: mitmId.keyPem, cert: mitmId.certPem }, (inbound) => {
      const out = connect({ host: "127.0.0.1", port: host.port, rejectUnauthorized: false });
      inbound.pipe(out).pipe(inbound);
      inbound.on("error", () => out.destroy());
      out.on("error", () => inbound.destroy());
    });
    await new Promise<void>((r) => relay.listen(0, "127.0.0.1", () => r()));
    const port = (relay.address() as { port: number }).port;
    // a TLS relay: the client takes the TLS fallback to reach it (QUIC's relay: test/lumen/quic.test.ts)
    const c = new LumenClient({ host: "127.0.0.1", port, stateDir: dir.path, mode: { width: 320, height: 240, fps: 30 }, natives: loadNatives(), pin: "5555", name: "via-mitm", transport: "tls" });
    const [r] = await Promise.allSettled([c.connect(), enterPinWhenAsked(host, "5555")]);
    c.close();
    relay.close();
    expect(r.status).toBe("rejected");
    expect((r as PromiseRejectedResult).reason.errorCode).toBe("PAIRING_PIN_MISMATCH");
    expect(host["o"].store.list().some((p) => p.name === "via-mitm")).toBe(false);
    expect(loadClientState(dir.path).hosts).toEqual({});
  }, 20_000);

  test("replayed and forged client datagrams are dropped; unknown sessions ignored", async () => {
    using dir = tempDir();
    const c = await paired(dir.path, "replay");
    const sid = c.sessionId;
    const session = host.sessions.get(sid)!;
    const sock = createSocket("udp4");
    let before = { ...host.counters };
    let probes = 0, phase = 0;
    await c.stream(0.8, (ms) => {
      if (phase === 0 && ms > 200) {
        phase = 1;
        before = { ...host.counters };
        probes = session.stats.probes;
        // a real probe sealed by the client's own sender, sent three times, a forgery, another session, a runt
        const tx = (c as unknown as { tx: { sealDatagram(p: string, b: Uint8Array): Uint8Array } }).tx;
        const sealed = tx.sealDatagram("probe", new Uint8Array(8));
        const forged = sealed.slice();
        forged[forged.length - 1]! ^= 1;
        const unknown = sealed.slice();
        unknown[4]! ^= 0xff;
        for (const d of [sealed, sealed, sealed, forged, unknown, new Uint8Array(3)]) sock.send(d, host.dataPort, "127.0.0.1");
      }
      if (phase === 1 && ms > 600) {
        phase = 2;
        // the client's own probes continue (every 250 ms): count only what the test sent
        const own = Math.floor(600 / 250) - Math.floor(200 / 250);
        expect(session.stats.probes - probes).toBeGreaterThanOrEqual(1);
        expect(session.stats.probes - probes).toBeLessThanOrEqual(1 + own + 1);
        expect(host.counters.dropped - before.dropped).toBe(4); // two replays, one forgery, one runt
        expect(host.counters.unknownSession - before.unknownSession).toBe(1);
      }
    });
    sock.close();
    expect(phase).toBe(2);
    c.close();
  }, 20_000);

  test("hostile control streams (TLS fallback): a lying length, junk, a huge mode — refused, host unchanged", async () => {
    const raw = (bytes: Uint8Array[]) =>
      new Promise<string>((resolve) => {
        const s = connect({ host: "127.0.0.1", port: host.port, rejectUnauthorized: false }, () => {
          for (const b of bytes) s.write(b);
        });
        let got = Buffer.alloc(0);
        s.on("data", (d: Buffer) => (got = Buffer.concat([got, d])));
        s.on("close", () => {
          if (got.length <= 4) return resolve("closed");
          const m = JSON.parse(got.subarray(4, 4 + got.readUInt32BE(0)).toString());
          resolve(m.code ?? m.type);
        });
        s.on("error", () => {});
        setTimeout(() => s.destroy(), 1000);
      });
    const errors = host.counters.protocolErrors;
    const huge = Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3]);
    expect(await raw([huge])).toBe("LUMEN_MESSAGE_TOO_LARGE");
    const junk = Buffer.concat([Buffer.from([0, 0, 0, 5]), Buffer.from([0xc3, 0x28, 0xff, 0xfe, 0x00])]);
    expect(await raw([junk])).toBe("LUMEN_MESSAGE_MALFORMED");
    const notHello = encodeMessage({ type: "start" });
    expect(await raw([notHello])).toBe("LUMEN_UNEXPECTED");
    const bigMode = encodeMessage({ type: "hello", version: 1, clientId: "x", name: "x", modes: [{ width: 8192, height: 8192, fps: 240 }], codecs: ["h264"], capabilities: [] });
    // an unpaired client with a huge mode is first asked to pair: it never gets a session either
    expect(await raw([bigMode])).toBe("pair-required");
    const tooMany = encodeMessage({ type: "hello", version: 1, clientId: "x", name: "x", modes: Array.from({ length: 33 }, () => ({ width: 64, height: 64, fps: 30 })), codecs: ["h264"], capabilities: [] } as never);
    expect(await raw([tooMany])).toBe("LUMEN_MESSAGE_INVALID");
    expect(host.counters.protocolErrors - errors).toBeGreaterThanOrEqual(4);
    expect(host.sessions.size).toBe(0);
  }, 30_000);

  test("a paired client asking for a mode over the host's bound is refused", async () => {
    using dir = tempDir();
    const c = await paired(dir.path, "small");
    await c.stream(0.2);
    c.close();
    const big = client(dir.path, { mode: { width: 8192, height: 8192, fps: 60 } });
    await expect(big.connect()).rejects.toMatchObject({ errorCode: "LUMEN_MODE_REFUSED" });
    big.close();
  }, 20_000);
});
void readFileSync;
