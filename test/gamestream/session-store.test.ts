/**
 * The session store on its own: one session per client fingerprint, the limit, unique
 * connect data, resume keeping the id, ending with a reason into a bounded history; and
 * which plain-RTSP session a request belongs to when several share the port.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { plainSessionFor } from "../../src/gamestream/rtsp/server.ts";
import { LaunchQuery, SessionLimitError, SessionStore, type NewSession, type SessionEvent } from "../../src/gamestream/sessions.ts";
import { gameStreamHost } from "./helpers.ts";
import { exchange, RtspTestClient, sealRecord } from "./rtsp-client.ts";

const launch = (fp: string, over: Partial<NewSession> = {}): NewSession => ({
  appId: 1, appName: "Desktop", vmName: null, width: 1280, height: 720, fps: 60, riKey: crypto.getRandomValues(new Uint8Array(16)), riKeyId: 1,
  localAudioPlayMode: 0, surroundAudioInfo: 0x30002, remoteControllersBitmap: 0, gcmap: 0, hdr: false, encryptedRtsp: true, clientFingerprint: fp,
  ...over,
});

describe("SessionStore", () => {
  test("one session per client; other clients up to the limit; the limit refuses, changes nothing", () => {
    const events: SessionEvent[] = [];
    const store = new SessionStore(() => {}, 2);
    store.subscribe((e) => events.push(e));
    const a = store.start(launch("a"));
    const b = store.start(launch("b"));
    expect(store.size).toBe(2);
    expect(store.wouldExceed("c")).toBe(true);
    expect(store.wouldExceed("a")).toBe(false);
    expect(() => store.start(launch("c"))).toThrow(SessionLimitError);
    expect(store.list()).toEqual([a, b]);
    expect(events).toEqual([]);
    // a's second launch replaces its own session (a fresh id, handshake and connect data)
    const a2 = store.start(launch("a", { width: 640 }));
    expect(a2.id).not.toBe(a.id);
    expect(store.ofClient("a")).toBe(a2);
    expect(store.size).toBe(2);
    expect(events).toEqual([{ type: "ended", session: a, reason: "replaced", detail: undefined }]);
    expect([...a.riKey].every((x) => x === 0)).toBe(true); // the old key is wiped
    expect(store.history()[0]).toMatchObject({ id: a.id, reason: "replaced", clientFingerprint: "a" });
  });

  test("connect data is unique among live sessions and finds its session", () => {
    const store = new SessionStore(() => {}, 16);
    const all = Array.from({ length: 16 }, (_, i) => store.start(launch(`c${i}`)));
    expect(new Set(all.map((s) => s.connectData)).size).toBe(16);
    for (const s of all) expect(store.byConnectData(s.connectData)).toBe(s);
    expect(store.byConnectData(0)).toBeNull();
  });

  test("resume keeps the id and connect data, re-keys, restarts the handshake; the old object is no longer live", () => {
    const store = new SessionStore();
    const s = store.start(launch("a"));
    s.rtsp.setup.audio = true;
    store.markPlaying(s);
    const oldKey = s.riKey;
    const r = store.rekey(s, new Uint8Array(16).fill(7), 9)!;
    expect(r).toMatchObject({ id: s.id, connectData: s.connectData, riKeyId: 9, playing: false, stream: null });
    expect(r.rtsp.sessionId).not.toBe(s.rtsp.sessionId);
    expect([...oldKey].every((x) => x === 0)).toBe(true);
    expect(store.isLive(s)).toBe(false);
    expect(store.isLive(r)).toBe(true);
    expect(store.rekey(s, new Uint8Array(16), 1)).toBeNull();
    // PLAY on the stale object does nothing; on the live one it is announced once
    const events: SessionEvent[] = [];
    store.subscribe((e) => events.push(e));
    store.markPlaying(s);
    store.markPlaying(r);
    store.markPlaying(r);
    expect(events).toEqual([{ type: "playing", session: r }]);
  });

  test("end by id or object with a reason; unknown ids change nothing; the history is bounded, newest first", () => {
    const store = new SessionStore(() => {}, 4);
    expect(store.end(crypto.randomUUID(), "ended-by-api")).toBeNull();
    for (let i = 0; i < 40; i++) {
      const s = store.start(launch(`x${i}`));
      expect(store.end(i % 2 ? s.id : s, "source-ended", `round ${i}`)).toBe(s);
      expect(store.end(s, "source-ended")).toBeNull();
    }
    const h = store.history();
    expect(h).toHaveLength(32);
    expect(h[0]).toMatchObject({ reason: "source-ended", detail: "round 39", clientFingerprint: "x39" });
    expect(store.size).toBe(0);
    const a = store.start(launch("a"));
    const b = store.start(launch("b"));
    expect(store.endAll("host-stopped")).toEqual([a, b]);
  });

  test("a throwing subscriber does not stop the lifecycle", () => {
    const heard: string[] = [];
    const store = new SessionStore((_err, e) => heard.push(e.type));
    store.subscribe(() => {
      throw new Error("boom");
    });
    const s = store.start(launch("a"));
    store.markPlaying(s);
    expect(store.end(s, "cancelled")).toBe(s);
    expect(heard).toEqual(["playing", "ended"]);
  });

  test("/launch's uniqueid is shown, never trusted: an odd one is dropped, the launch still parses", () => {
    const q = { appid: "1", mode: "1280x720x60", rikey: "00".repeat(16), rikeyid: "1", localAudioPlayMode: "0" };
    expect(LaunchQuery.parse({ ...q, uniqueid: "0123456789ABCDEF" }).uniqueid).toBe("0123456789ABCDEF");
    expect(LaunchQuery.parse({ ...q, uniqueid: "x".repeat(65) }).uniqueid).toBeUndefined();
    expect(LaunchQuery.parse({ ...q, uniqueid: "a\u0000b" }).uniqueid).toBeUndefined();
  });

  test("the limit is at least 1", () => {
    expect(() => new SessionStore(() => {}, 0)).toThrow(RangeError);
  });
});

describe("plain RTSP requests among several sessions", () => {
  const store = new SessionStore(() => {}, 4);
  const a = store.start(launch("a", { encryptedRtsp: false, clientAddress: "10.0.0.2" }));
  const b = store.start(launch("b", { encryptedRtsp: false, clientAddress: "10.0.0.3" }));
  const enc = store.start(launch("e", { encryptedRtsp: true, clientAddress: "10.0.0.2" }));
  const req = (session?: string) => ({ method: "SETUP", target: "streamid=video/0/0", cseq: 1, headers: new Map(session ? [["session", session]] : []), body: new Uint8Array(0) });

  test("by the Session header, else by the launching address; never an encrypted session", () => {
    expect(plainSessionFor(store.list(), req(), "10.0.0.2")).toBe(a);
    expect(plainSessionFor(store.list(), req(), "::ffff:10.0.0.3")).toBe(b);
    expect(plainSessionFor(store.list(), req(`${b.rtsp.sessionId};timeout = 90`), "10.0.0.2")).toBe(b);
    expect(plainSessionFor(store.list(), req(), "10.0.0.9")).toBeNull();
    expect(plainSessionFor(store.list(), req(enc.rtsp.sessionId), "10.0.0.9")).toBeNull();
  });

  test("two plain sessions from one address: the one not yet set up takes the first SETUP", () => {
    const s2 = new SessionStore(() => {}, 4);
    const first = s2.start(launch("a", { encryptedRtsp: false, clientAddress: "10.0.0.2" }));
    first.rtsp.setup.audio = true;
    const second = s2.start(launch("b", { encryptedRtsp: false, clientAddress: "10.0.0.2" }));
    expect(plainSessionFor(s2.list(), req(), "10.0.0.2")).toBe(second);
    expect(plainSessionFor(s2.list(), req(first.rtsp.sessionId), "10.0.0.2")).toBe(first);
  });
});

describe("encrypted RTSP with two sessions on one port", () => {
  let host: ReturnType<typeof gameStreamHost>;
  let port: number;
  beforeAll(async () => {
    host = gameStreamHost();
    port = (await host.service.start()).rtsp;
  });
  afterAll(() => host.close());

  test("each client's records open with its own key only; a foreign key or a replay is cut off and changes nothing", async () => {
    const keys = [0, 1].map(() => Buffer.from(crypto.getRandomValues(new Uint8Array(16))));
    const sessions = keys.map((k, i) => host.service.sessions.start(launch(`client-${i}`, { riKey: new Uint8Array(k) })));
    const clients = keys.map((k) => new RtspTestClient(port, k));
    const setups = await Promise.all(clients.map((c) => c.setup("video/0/0")));
    setups.forEach((r, i) => expect(r.headers.get("x-ss-ping-payload")).toBe(sessions[i]!.rtsp.videoPingPayload));
    expect(sessions.map((s) => s.rtsp.clientSeq)).toEqual([1, 1]);
    // a record under a key no session has: cut off, no reply, neither session moves
    const stranger = await exchange(port, sealRecord(Buffer.alloc(16, 0x42), 5, Buffer.from("OPTIONS / RTSP/1.0\r\nCSeq: 1\r\n\r\n")));
    expect(stranger.bytes.length).toBe(0);
    // client 1 replays its sequence number: cut off, session 1 unchanged
    const replay = await exchange(port, sealRecord(keys[1]!, 1, Buffer.from("OPTIONS / RTSP/1.0\r\nCSeq: 9\r\n\r\n")));
    expect(replay.bytes.length).toBe(0);
    expect(sessions.map((s) => [s.rtsp.clientSeq, s.rtsp.hostSeq])).toEqual([[1, 1], [1, 1]]);
    // and both go on
    expect((await clients[0]!.options()).status).toBe(200);
    expect((await clients[1]!.options()).status).toBe(200);
    expect(sessions.map((s) => s.rtsp.clientSeq)).toEqual([2, 2]);
    host.service.sessions.endAll("host-stopped");
  });
});
