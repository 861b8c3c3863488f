/**
 * Hostile RTSP peers: garbage, oversized headers and bodies, records that do
 * not authenticate or replay a sequence number, unknown sessions, requests out
 * of order, slowloris. Each is refused or cut off, changes nothing, and the
 * listener keeps answering a well-behaved client afterwards.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { StreamSession } from "../../src/gamestream/sessions.ts";
import { gameStreamHost } from "./helpers.ts";
import { exchange, parseReply, RtspTestClient, sealRecord } from "./rtsp-client.ts";
import { launchDirect, SAMPLE_SDP } from "./rtsp-fixtures.ts";

let host: ReturnType<typeof gameStreamHost>;
let port: number;
beforeAll(async () => {
  host = gameStreamHost({ rtspRequestTimeoutMs: 400 });
  port = (await host.service.start()).rtsp;
});
afterAll(() => host.close());

/** A well-behaved client (its record numbers above those accepted so far) still gets its answer. */
async function stillServes(key: Buffer | null) {
  const c = new RtspTestClient(port, key);
  c.seq = host.service.sessions.active?.rtsp.clientSeq ?? 0;
  const r = await c.options();
  expect(r.status).toBe(200);
}

describe("RTSP without a session", () => {
  test("before /launch every request gets 454 with its CSeq; an encrypted record is cut off", async () => {
    host.service.sessions.endAll("host-stopped");
    const c = new RtspTestClient(port, null);
    for (const r of [await c.options(), await c.describe(), await c.setup("audio/0/0")]) expect(r.status).toBe(454);
    const { bytes } = await exchange(port, Buffer.from("OPTIONS rtsp://x RTSP/1.0\r\nCSeq: 77\r\n\r\n"));
    expect(parseReply(bytes.toString())).toMatchObject({ status: 454 });
    expect(parseReply(bytes.toString()).headers.get("cseq")).toBe("77");
    const rec = await exchange(port, sealRecord(Buffer.alloc(16), 1, Buffer.from("OPTIONS / RTSP/1.0\r\nCSeq: 1\r\n\r\n")));
    expect(rec).toMatchObject({ closedBy: "host" });
    expect(rec.bytes.length).toBe(0);
  });
});

describe("RTSP plain session: malformed and oversized requests", () => {
  let session: StreamSession;
  beforeAll(() => {
    session = launchDirect(host, false).session;
  });

  test("garbage bytes and a malformed request line → 400, connection closed", async () => {
    const bin = await exchange(port, Buffer.from([0x01, 0x02, 0x03, 0x00, 0x0d, 0x0a, 0x0d, 0x0a]));
    expect(parseReply(bin.bytes.toString("latin1")).status).toBe(400);
    const line = await exchange(port, Buffer.from("HELLO\r\nCSeq: 1\r\n\r\n"));
    expect(parseReply(line.bytes.toString()).status).toBe(400);
    const noCseq = await exchange(port, Buffer.from("OPTIONS rtsp://h RTSP/1.0\r\n\r\n"));
    expect(parseReply(noCseq.bytes.toString())).toMatchObject({ status: 400 });
    const http = await exchange(port, Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    expect(parseReply(http.bytes.toString()).status).toBe(400);
    await stillServes(null);
  });

  test("headers over 8 KiB → 400 as soon as they pass the limit; a body over 64 KiB → 413 before it is sent", async () => {
    const big = await exchange(port, Buffer.from(`OPTIONS rtsp://h RTSP/1.0\r\nCSeq: 1\r\nX-Pad: ${"a".repeat(9000)}`));
    expect(big.closedBy).toBe("host");
    expect(parseReply(big.bytes.toString()).headers.get("x-neuron-reason")).toContain("exceed");
    const body = await exchange(port, Buffer.from(`ANNOUNCE streamid=control/13/0 RTSP/1.0\r\nCSeq: 9\r\nSession: ${session.rtsp.sessionId}\r\nContent-length: 70000\r\n\r\n`));
    expect(parseReply(body.bytes.toString())).toMatchObject({ status: 413 });
    expect(parseReply(body.bytes.toString()).headers.get("cseq")).toBe("9");
    // the peer that keeps sending after the limit is cut off, not buffered
    const flood = await exchange(port, [Buffer.from("OPTIONS rtsp://h RTSP/1.0\r\nCSeq: 1\r\nX: "), ...Array.from({ length: 40 }, () => Buffer.alloc(4096, 0x61))]);
    expect(flood.closedBy).toBe("host");
    expect(session.stream).toBeNull();
    await stillServes(null);
  });

  test("a request split anywhere across TCP segments is put together (headers and body in pieces)", async () => {
    const c = new RtspTestClient(port, null);
    await c.setup("audio/0/0");
    const msg = c.serialize("ANNOUNCE", "streamid=control/13/0", [["Session", c.sessionId!]], SAMPLE_SDP);
    const cuts = [1, 2, 30, msg.indexOf("\r\n\r\n") + 2, msg.indexOf("\r\n\r\n") + 5, msg.length - 1];
    const pieces = cuts.map((end, i) => msg.subarray(i === 0 ? 0 : cuts[i - 1]!, end)).concat([msg.subarray(msg.length - 1)]);
    const r = await exchange(port, pieces, { pauseMs: 15 });
    expect(parseReply(r.bytes.toString()).status).toBe(200);
    expect(session.stream?.width).toBe(1280);
    session.stream = null;
  });

  test("slowloris: a request dribbled in slower than the timeout is cut off without a reply", async () => {
    const text = Buffer.from("OPTIONS rtsp://h RTSP/1.0\r\nCSeq: 1\r\n\r\n");
    // 40 ms a byte: the whole request would take ~1.5 s, the host allows 0.4 s; had it waited, it would have answered 200
    const slow = await exchange(port, [...text].map((b) => Buffer.from([b])), { pauseMs: 40 });
    expect(slow.closedBy).toBe("host");
    expect(slow.bytes.length).toBe(0);
    // a silent peer likewise
    expect((await exchange(port, Buffer.alloc(0))).closedBy).toBe("host");
    await stillServes(null);
  });

  test("unknown stream, unknown session, out-of-order ANNOUNCE/PLAY, unknown method", async () => {
    const c = new RtspTestClient(port, null);
    expect((await c.setup("video/1/0")).status).toBe(404);
    expect((await c.setup("mouse/0/0")).status).toBe(404);
    const r = await c.request("SETUP", "streamid=video/0/0", [["Session", "DEADBEEFCAFE"]]);
    expect(r.status).toBe(454);
    expect((await c.announce(SAMPLE_SDP)).status).toBe(454); // no Session header
    expect((await c.play()).status).toBe(454);
    expect((await c.request("TEARDOWN", "/")).status).toBe(501);
    await c.setup("audio/0/0");
    expect((await c.play()).status).toBe(455); // before ANNOUNCE
    expect((await c.announce(SAMPLE_SDP, "streamid=audio/0/0")).status).toBe(404);
    expect(session.playing).toBe(false);
  });

  test("ANNOUNCE with missing or bad attributes → 400 naming them; the stream configuration is untouched", async () => {
    const c = new RtspTestClient(port, null);
    await c.setup("audio/0/0");
    const cases: [string, string][] = [
      [SAMPLE_SDP.replace(/a=x-nv-video\[0\]\.maxFPS:60 \r?\n/, ""), "missing attribute x-nv-video[0].maxFPS"],
      [SAMPLE_SDP.replace("packetSize:992", "packetSize:99999"), "x-nv-video[0].packetSize"],
      [SAMPLE_SDP.replace("numChannels:2", "numChannels:3"), "numChannels"],
      [SAMPLE_SDP.replace("channelMask:3", "channelMask:7"), "channelMask 7"],
      [SAMPLE_SDP.replace("packetDuration:5", "packetDuration:-5"), "packetDuration"],
      [SAMPLE_SDP.replace(/a=x-ml-video.configuredBitrateKbps:10000 \r?\n/, "").replace(/a=x-nv-video\[0\]\.initialBitrateKbps:7500 \r?\n/, ""), "configuredBitrateKbps"],
      [SAMPLE_SDP.replace("dynamicRangeMode:0", "dynamicRangeMode:1"), "dynamicRangeMode"],
      [SAMPLE_SDP.replace("chromaSamplingType:0", "chromaSamplingType:1"), "4:4:4"],
      [SAMPLE_SDP + `a=${"x".repeat(2000)}:1\n`, "longer than"],
      ["v=0\n", "missing attribute"],
    ];
    for (const [sdp, reason] of cases) {
      const r = await c.announce(sdp);
      expect(r.status).toBe(400);
      expect(r.headers.get("x-neuron-reason")).toContain(reason);
    }
    expect((await c.request("ANNOUNCE", "streamid=control/13/0", [["Session", c.sessionId!]])).status).toBe(400); // no body
    expect(session.stream).toBeNull();
    // a valid one after all that
    expect((await c.announce(SAMPLE_SDP)).status).toBe(200);
    expect(session.stream?.packetSize).toBe(992);
  });
});

describe("RTSP encrypted session: records", () => {
  let key: Buffer;
  let session: StreamSession;
  beforeAll(() => {
    ({ key, session } = launchDirect(host, true));
  });

  test("a record with a bad tag, a wrong key, or a replayed/zero sequence is cut off without a reply and changes nothing", async () => {
    const c = new RtspTestClient(port, key);
    expect((await c.setup("audio/0/0")).status).toBe(200);
    const seqBefore = session.rtsp.clientSeq;
    const hostSeqBefore = session.rtsp.hostSeq;
    const msg = c.serialize("SETUP", "streamid=video/0/0", [["Session", c.sessionId!]]);

    const tampered = sealRecord(key, seqBefore + 1, msg);
    tampered[10]! ^= 0x01; // tag
    const flipped = sealRecord(key, seqBefore + 1, msg);
    flipped[flipped.length - 1]! ^= 0x80; // ciphertext
    const lied = sealRecord(key, seqBefore + 1, msg);
    lied.writeUInt32BE(seqBefore + 2, 4); // sequence number not the one sealed with
    const wrongKey = sealRecord(Buffer.alloc(16, 7), seqBefore + 1, msg);
    const replay = sealRecord(key, seqBefore, msg);
    const zero = sealRecord(key, 0, msg);
    for (const bad of [tampered, flipped, lied, wrongKey, replay, zero]) {
      const r = await exchange(port, bad);
      expect(r).toMatchObject({ closedBy: "host" });
      expect(r.bytes.length).toBe(0);
    }
    expect(session.rtsp.clientSeq).toBe(seqBefore);
    expect(session.rtsp.hostSeq).toBe(hostSeqBefore);
    expect(session.rtsp.setup.video).toBe(false);
    // the client's own next record (seq above the last accepted) still works
    expect((await c.setup("video/0/0")).status).toBe(200);
  });

  test("a record split across TCP segments (inside the header, the tag and the ciphertext) is put together", async () => {
    const c = new RtspTestClient(port, key);
    c.seq = session.rtsp.clientSeq;
    const rec = c.wrap(c.serialize("OPTIONS", "rtsp://h"));
    const pieces = [rec.subarray(0, 3), rec.subarray(3, 12), rec.subarray(12, 30), rec.subarray(30)];
    const r = await exchange(port, pieces, { pauseMs: 15 });
    expect(c.unwrap(r.bytes).status).toBe(200);
  });

  test("a plain request, a record claiming 1 MiB, a truncated or padded record → cut off", async () => {
    const plain = await exchange(port, Buffer.from("OPTIONS rtsp://h RTSP/1.0\r\nCSeq: 1\r\n\r\n"));
    expect(plain.bytes.length).toBe(0);
    const huge = Buffer.alloc(24);
    huge.writeUInt32BE((0x80000000 | (1 << 20)) >>> 0, 0);
    huge.writeUInt32BE(1000, 4);
    expect(await exchange(port, huge)).toMatchObject({ closedBy: "host", bytes: Buffer.alloc(0) });
    const rec = sealRecord(key, 1000, Buffer.from("OPTIONS rtsp://h RTSP/1.0\r\nCSeq: 1\r\n\r\n"));
    expect((await exchange(port, rec.subarray(0, rec.length - 3))).bytes.length).toBe(0); // waits, then timeout
    expect((await exchange(port, Buffer.concat([rec, Buffer.from("x")]))).bytes.length).toBe(0);
    const empty = Buffer.alloc(24);
    empty.writeUInt32BE(0x80000000, 0);
    expect((await exchange(port, empty)).bytes.length).toBe(0);
    await stillServes(key);
  });

  test("an authentic record holding garbage or an oversized body gets a sealed 400/413", async () => {
    const c = new RtspTestClient(port, key);
    c.seq = session.rtsp.clientSeq;
    const garbage = c.unwrap((await exchange(port, c.wrap(Buffer.from("\x01\x02 not rtsp\r\n\r\n")))).bytes);
    expect(garbage.status).toBe(400);
    const partial = c.unwrap((await exchange(port, c.wrap(Buffer.from("OPTIONS rtsp://h RTSP/1.0\r\nCSeq: 3\r\n")))).bytes);
    expect(partial.status).toBe(400);
    const big = c.unwrap((await exchange(port, c.wrap(Buffer.from("ANNOUNCE streamid=control/13/0 RTSP/1.0\r\nCSeq: 4\r\nContent-Length: 65537\r\n\r\n")))).bytes);
    expect(big).toMatchObject({ status: 413 });
    await stillServes(key);
  });

  test("a crowd of silent connections: each closed by the host (over the connection limit at once, the rest at the timeout); then served again", async () => {
    const results = await Promise.all(Array.from({ length: 24 }, () => exchange(port, Buffer.alloc(0), { timeoutMs: 4000 })));
    expect(results.map((r) => r.closedBy)).toEqual(Array(24).fill("host"));
    expect(results.every((r) => r.bytes.length === 0)).toBe(true);
    await stillServes(key);
  });
});

describe("RTSP: one address cannot take every connection slot", () => {
  test("silent connections from one address are capped at once; another address is still answered meanwhile", async () => {
    const { connect } = await import("node:net");
    const held: import("node:net").Socket[] = [];
    const closedAt: number[] = [];
    const t0 = performance.now();
    try {
      for (let i = 0; i < 16; i++) {
        const s = connect({ host: "127.0.0.1", port, localAddress: "127.0.0.2" });
        s.on("error", () => {});
        s.on("close", () => closedAt.push(performance.now() - t0));
        held.push(s);
      }
      await Bun.sleep(100);
      // 4 held open (until the request timeout), the other 12 closed at once
      expect(closedAt.length).toBe(12);
      host.service.endSession();
      const r = await exchange(port, Buffer.from("OPTIONS rtsp://127.0.0.1 RTSP/1.0\r\nCSeq: 9\r\n\r\n"), { timeoutMs: 300 });
      expect(r.closedBy).toBe("host");
      expect(parseReply(r.bytes.toString()).status).toBe(454); // answered (no session is launched)
      expect(closedAt.length).toBe(12); // answered while the 4 were still held
    } finally {
      for (const s of held) s.destroy();
    }
  });
});
