/**
 * The control stream against the GameStream host on 127.0.0.1, with a libenet test peer:
 * handshake by connect data, encrypted messages, IDR / invalidation events, FEC statistics,
 * rumble, graceful termination, the peer timeout and hostile peers.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { createSocket } from "node:dgram";
import { NativeCrypto } from "../../ffi/crypto.ts";
import { enetAvailable } from "../../ffi/enet.ts";
import { ControlType, TERMINATION_GRACEFUL, sealControl } from "../../src/gamestream/control/envelope.ts";
import { encodeFecStatus } from "../../src/gamestream/control/messages.ts";
import type { ControlEvent } from "../../src/gamestream/control/server.ts";
import { StreamSessionInfo } from "../../src/gamestream/model.ts";
import { gameStreamCrypto } from "../../src/gamestream/native-crypto.ts";
import { encodeInputEvent } from "../../src/input/encode.ts";
import { ControlTestClient } from "./control-client.ts";
import { controlHost, launchSession } from "./control-helpers.ts";

const gsCrypto = gameStreamCrypto(NativeCrypto.load());
const launchCipher = (key: Uint8Array) => gsCrypto.aesGcm(key);

const skip = !enetAvailable();
if (skip) console.warn("skipping control stream tests: libenet.so.7 is not installed (apt-get install libenet-dev)");

describe.skipIf(skip)("control stream", () => {
  let host: ReturnType<typeof controlHost>;
  let port: number;
  const events: ControlEvent[] = [];
  const clients: ControlTestClient[] = [];

  beforeAll(async () => {
    host = controlHost({ peerTimeoutMs: 1500 });
    await host.service.start();
    port = host.service.ports.control;
    host.service.control!.subscribe((e) => events.push(e));
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
    events.length = 0;
  });
  afterAll(async () => {
    await host.close();
  });

  async function connected() {
    const { key, session } = launchSession(host);
    const c = new ControlTestClient(key);
    clients.push(c);
    expect(await c.connect(port, session.connectData)).toBe(true);
    await c.waitFor(() => events.some((e) => e.type === "connected" && e.sessionId === session.id), 2000, "connected event");
    return { c, session, key };
  }

  test("handshake with the session's connect data; encrypted pings are counted", async () => {
    const { c, session } = await connected();
    for (let i = 0; i < 5; i++) c.ping();
    const stats = () => host.service.control!.stats(session.id);
    await c.waitFor(() => stats()?.pings === 5, 2000, "5 pings");
    expect(stats()).toMatchObject({ sessionId: session.id, messages: 5, dropped: { badTag: 0, unencrypted: 0, replayed: 0 } });
    expect(stats()!.address).toMatch(/^127\.0\.0\.1:\d+$/);
    // The management API's view of the session carries the same statistics.
    expect(host.service.session()!.control).toMatchObject({ pings: 5, messages: 5 });
    const parsed = StreamSessionInfo.safeParse(host.service.session());
    expect(parsed.success).toBe(true);
  });

  test("unknown connect data is refused and the session is untouched", async () => {
    const { session } = launchSession(host);
    const refusedBefore = host.service.control!.refusedConnects;
    const c = new ControlTestClient(new Uint8Array(16));
    clients.push(c);
    expect(await c.connect(port, (session.connectData + 1) >>> 0)).toBe(false);
    expect(host.service.control!.refusedConnects).toBe(refusedBefore + 1);
    expect(host.service.sessions.active?.id).toBe(session.id);
    expect(host.service.control!.stats(session.id)).toBeNull();
  });

  test("hostile: more refused connects at once than peer slots; the right client still gets in", async () => {
    const { key, session } = launchSession(host);
    const refusedBefore = host.service.control!.refusedConnects;
    const intruders = Array.from({ length: 12 }, () => new ControlTestClient(new Uint8Array(16)));
    clients.push(...intruders);
    const results = await Promise.all(intruders.map((c, i) => c.connect(port, (session.connectData + 1 + i) >>> 0)));
    expect(results.every((r) => r === false)).toBe(true);
    expect(host.service.control!.refusedConnects).toBe(refusedBefore + 12);
    const c = new ControlTestClient(key);
    clients.push(c);
    expect(await c.connect(port, session.connectData)).toBe(true);
  });

  test("IDR requests (0x0302, 0x0307) and reference-frame invalidation become events", async () => {
    const { c, session } = await connected();
    c.send(ControlType.IDR_REQUEST);
    c.send(ControlType.START_B);
    const inv = new Uint8Array(24);
    new DataView(inv.buffer).setBigUint64(0, 100n, true);
    new DataView(inv.buffer).setBigUint64(8, 104n, true);
    c.send(ControlType.INVALIDATE_REFS, inv);
    await c.waitFor(() => events.some((e) => e.type === "invalidate-refs"), 2000, "invalidation event");
    const mine = events.filter((e) => e.sessionId === session.id);
    expect(mine.filter((e) => e.type === "idr-request")).toHaveLength(2);
    expect(mine.find((e) => e.type === "invalidate-refs")).toEqual({ type: "invalidate-refs", sessionId: session.id, range: { first: 100, last: 104 } });
    // A reversed range is malformed: dropped, no event.
    new DataView(inv.buffer).setBigUint64(0, 200n, true);
    c.send(ControlType.INVALIDATE_REFS, inv);
    await c.waitFor(() => host.service.control!.stats(session.id)!.dropped.malformed === 1, 2000, "malformed drop");
    expect(events.filter((e) => e.type === "invalidate-refs")).toHaveLength(1);
  });

  test("frame FEC status reports feed the session's loss statistics", async () => {
    const { c, session } = await connected();
    const base = { highestReceivedSeq: 10, nextContiguousSeq: 3, missingBeforeHighest: 2, totalParity: 4, fecPercentage: 20, blockIndex: 0, blockCount: 1 };
    c.send(ControlType.FEC_STATUS, encodeFecStatus({ ...base, frameIndex: 7, totalData: 20, receivedData: 18, receivedParity: 4 }));
    c.send(ControlType.FEC_STATUS, encodeFecStatus({ ...base, frameIndex: 9, totalData: 20, receivedData: 10, receivedParity: 3 }));
    c.send(ControlType.FEC_STATUS, new Uint8Array(5));
    const stats = () => host.service.control!.stats(session.id)!;
    await c.waitFor(() => stats().fec.reports === 2 && stats().dropped.malformed === 1, 2000, "FEC reports");
    expect(stats().fec).toEqual({ reports: 2, lostDataShards: 12, recoveredFrames: 1, unrecoverableFrames: 1, lastFrameIndex: 9 });
    // periodic loss reports (0x0201): LE32 frames lost, then fields the host ignores; too short is malformed
    const report = new Uint8Array(32);
    new DataView(report.buffer).setUint32(0, 3, true);
    c.send(ControlType.LOSS_STATS, report);
    c.send(ControlType.LOSS_STATS, new Uint8Array(2));
    await c.waitFor(() => stats().loss.reports === 1 && stats().dropped.malformed === 2, 2000, "loss report");
    expect(stats().loss).toEqual({ reports: 1, framesLost: 3 });
    expect(host.service.sessionInfo(session.id).loss).toEqual({ framesLostReported: 3, fecReports: 2, lostDataShards: 12, fecRecoveredFrames: 1, fecUnrecoverableFrames: 1 });
  });

  test("rumble reaches the client as 0x010b", async () => {
    const { c, session } = await connected();
    expect(host.service.control!.rumble(session.id, { controller: 1, lowFreq: 0x1234, highFreq: 0xffff })).toBe(true);
    await c.waitFor(() => c.received.some((m) => m.type === ControlType.RUMBLE), 2000, "rumble");
    const m = c.received.find((x) => x.type === ControlType.RUMBLE)!;
    expect([...m.payload]).toEqual([0, 0, 0, 0, 1, 0, 0x34, 0x12, 0xff, 0xff]);
    expect(() => host.service.control!.rumble(session.id, { controller: 16, lowFreq: 0, highFreq: 0 })).toThrow(RangeError);
    expect(host.service.control!.rumble("no-such-session", { controller: 0, lowFreq: 0, highFreq: 0 })).toBe(false);
  });

  test("session end sends a graceful termination (0x0109, BE32 0x80030023) and disconnects", async () => {
    const { c, session } = await connected();
    host.service.endSession();
    await c.waitFor(() => c.received.some((m) => m.type === ControlType.TERMINATION), 2000, "termination");
    const t = c.received.find((m) => m.type === ControlType.TERMINATION)!;
    expect(new DataView(t.payload.buffer, t.payload.byteOffset).getUint32(0)).toBe(TERMINATION_GRACEFUL);
    await c.waitFor(() => c.disconnected, 3000, "disconnect");
    expect(events.some((e) => e.type === "disconnected" && e.sessionId === session.id && e.reason === "session-ended")).toBe(true);
    expect(c.undecodable).toHaveLength(0);
  });

  test("a silent client times out (configured 1.5 s): the session ends cleanly", async () => {
    const { c, session } = await connected();
    c.ping();
    await c.waitFor(() => host.service.sessions.active === null, 4000, "session end by timeout");
    expect(events.some((e) => e.type === "disconnected" && e.sessionId === session.id && e.reason === "timeout")).toBe(true);
  });

  test("a client that disconnects ends its session (client-disconnected); a session never connected to ends after the connect timeout", async () => {
    const { c, session } = await connected();
    c.close();
    clients.splice(clients.indexOf(c), 1);
    await c.waitFor(() => host.service.sessions.get(session.id) === null, 3000, "session end on disconnect");
    expect(host.service.sessionHistory()[0]).toMatchObject({ id: session.id, reason: "client-disconnected" });
    expect(host.service.control!.stats(session.id)).toBeNull();
    // launched, never connected: the slot is given back after the connect timeout (3 × 1.5 s, at least 5 s)
    const { session: idle } = launchSession(host);
    await Bun.sleep(4000);
    expect(host.service.sessions.get(idle.id)).not.toBeNull();
    await c.waitFor(() => host.service.sessions.get(idle.id) === null, 3000, "idle session end");
    expect(host.service.sessionHistory()[0]).toMatchObject({ id: idle.id, reason: "control-timeout" });
  }, 15_000);

  test("hostile: unencrypted, tampered, replayed and truncated messages are dropped; the stream goes on", async () => {
    const { c, session, key } = await connected();
    const stats = () => host.service.control!.stats(session.id)!;
    // unencrypted ping (type 0x0200 in the clear)
    c.sendRaw(Uint8Array.from([0x00, 0x02, 0x00, 0x00]));
    // tampered ciphertext
    const good = sealControl(launchCipher(key), 1000, { type: ControlType.IDR_REQUEST, payload: new Uint8Array(0) }, "client");
    const bad = good.slice();
    bad[bad.length - 1]! ^= 1;
    c.sendRaw(bad);
    // sealed with the host's IV direction: a reflected message must not open
    c.sendRaw(sealControl(launchCipher(key), 1001, { type: ControlType.IDR_REQUEST, payload: new Uint8Array(0) }, "host"));
    // length field lies
    const lie = good.slice();
    lie[2] = 0xff;
    c.sendRaw(lie);
    // replay: the same sealed message twice
    const once = c.send(ControlType.PING);
    c.sendRaw(once);
    // garbage of every small size
    for (let n = 0; n < 40; n++) c.sendRaw(crypto.getRandomValues(new Uint8Array(n + 1)));
    c.ping();
    await c.waitFor(() => stats().pings === 2, 2000, "pings after hostile messages");
    const d = stats().dropped;
    expect(d.badTag).toBeGreaterThanOrEqual(2);
    expect(d.unencrypted + d.malformed + d.badTag).toBeGreaterThanOrEqual(44);
    expect(d.replayed).toBe(1);
    expect(stats().idrRequests).toBe(0);
    expect(host.service.sessions.active?.id).toBe(session.id);
  });

  test("hostile: garbage UDP datagrams and a ping flood are bounded; the host keeps serving", async () => {
    const { c, session } = await connected();
    c.ping();
    const udp = createSocket("udp4");
    const garbage = Array.from({ length: 500 }, (_, i) => crypto.getRandomValues(new Uint8Array(1 + (i % 1400))));
    await Promise.all(garbage.map((g) => new Promise<void>((res) => udp.send(g, port, "127.0.0.1", () => res()))));
    udp.close();
    // 12,000 pings in one burst (well under 2 s): over the 4,000 messages/s bound in any case
    for (let i = 0; i < 12_000; i++) c.send(ControlType.PING, new Uint8Array(0), { channel: 1 });
    const stats = () => host.service.control!.stats(session.id)!;
    await c.waitFor(() => stats().pings + stats().dropped.rateLimited >= 11_000, 8000, "flood handled");
    expect(stats().dropped.rateLimited).toBeGreaterThan(0);
    expect(stats().pings).toBeLessThanOrEqual(2 * 4000 + 1);
    await Bun.sleep(1100);
    c.send(ControlType.IDR_REQUEST);
    await c.waitFor(() => stats().idrRequests === 1, 2000, "IDR after the flood");
    expect(host.service.sessions.active?.id).toBe(session.id);
  });

  test("after /resume (new rikey) a reconnect replaces the old connection", async () => {
    const { c: first, session } = await connected();
    const newKey = crypto.getRandomValues(new Uint8Array(16));
    host.service.sessions.rekey(session, newKey.slice(), 8);
    const second = new ControlTestClient(newKey);
    clients.push(second);
    expect(await second.connect(port, session.connectData)).toBe(true);
    await first.waitFor(() => first.disconnected, 3000, "old connection dropped");
    // dropped gracefully: the termination came first (a bare disconnect is "error -1" to Moonlight)
    const t = first.received.find((m) => m.type === ControlType.TERMINATION);
    expect(t && new DataView(t.payload.buffer, t.payload.byteOffset).getUint32(0)).toBe(TERMINATION_GRACEFUL);
    expect(events.some((e) => e.type === "disconnected" && e.reason === "replaced")).toBe(true);
    second.send(ControlType.IDR_REQUEST);
    await second.waitFor(() => host.service.control!.stats(session.id)?.idrRequests === 1, 2000, "IDR on the new connection");
  });

  test("input messages reach the session's input sink (Desktop: counted)", async () => {
    const { c, session } = await connected();
    await c.waitFor(() => host.service.control!.stats(session.id)!.input !== null, 2000, "input backend");
    c.send(ControlType.INPUT, encodeInputEvent({ kind: "mouseMoveRel", dx: 5, dy: -3 }));
    c.send(ControlType.INPUT, Uint8Array.from([0, 0, 0, 4, 0xde, 0xad, 0xbe, 0xef]));
    await c.waitFor(() => host.service.control!.stats(session.id)!.input!.packets === 2, 2000, "input packets");
    expect(host.service.control!.stats(session.id)!.input).toMatchObject({ packets: 2, events: 1 });
  });
});
