/**
 * RTSP wire pieces on their own: record framing and IVs against node:crypto,
 * request framing bounds, the DESCRIBE body, ANNOUNCE parsing.
 */
import { describe, expect, test } from "bun:test";
import { NativeCrypto } from "../../ffi/crypto.ts";
import { CODEC } from "../../src/gamestream/constants.ts";
import { gameStreamCrypto } from "../../src/gamestream/native-crypto.ts";
import { AnnounceError, parseAnnounce, sdpAttributes } from "../../src/gamestream/rtsp/announce.ts";
import { describeBody, ENCRYPTION } from "../../src/gamestream/rtsp/describe.ts";
import { setupStream } from "../../src/gamestream/rtsp/handler.ts";
import { frameRequest, MAX_BODY_BYTES, serializeResponse } from "../../src/gamestream/rtsp/message.ts";
import { frameRecord, rtspIv, sealRecord as hostSeal } from "../../src/gamestream/rtsp/record.ts";
import { randomToken } from "../../src/gamestream/rtsp/state.ts";
import { openRecord, sealRecord as clientSeal } from "./rtsp-client.ts";
import { SAMPLE_SDP } from "./rtsp-fixtures.ts";

const crypto = gameStreamCrypto(NativeCrypto.load());
const offer = { codecModeSupport: CODEC.H264, encryptionSupported: 7 };

describe("encrypted RTSP records", () => {
  test("IV: LE32(seq), zeros, origin byte and 'R' at 10–11", () => {
    expect([...rtspIv(0x01020304, "C")]).toEqual([4, 3, 2, 1, 0, 0, 0, 0, 0, 0, 0x43, 0x52]);
    expect([...rtspIv(0xfffffffe, "H")]).toEqual([0xfe, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0x48, 0x52]);
  });

  test("host records (libneuron) open with node:crypto and client records (node:crypto) frame and open on the host", () => {
    const key = Buffer.from("00112233445566778899aabbccddeeff", "hex");
    const cipher = crypto.aesGcm(key);
    try {
      const msg = Buffer.from("RTSP/1.0 200 OK\r\nCSeq: 1\r\n\r\n");
      const rec = hostSeal(cipher, 5, msg, "H");
      const opened = openRecord(key, Buffer.from(rec));
      expect(opened.seq).toBe(5);
      expect(opened.plaintext.equals(msg)).toBe(true);
      // a host-sealed record does not open as a client one (IV direction differs)
      expect(() => openRecord(key, Buffer.from(rec), "C")).toThrow();

      const req = Buffer.from("OPTIONS rtsp://h RTSP/1.0\r\nCSeq: 1\r\n\r\n");
      const framed = frameRecord(clientSeal(key, 9, req), 1000);
      expect(framed.kind).toBe("record");
      if (framed.kind !== "record") return;
      expect(framed.seq).toBe(9);
      expect(Buffer.from(cipher.open(framed.sealed, rtspIv(9, "C"))).equals(req)).toBe(true);
      expect(() => cipher.open(framed.sealed, rtspIv(9, "H"))).toThrow();
    } finally {
      cipher.close();
    }
  });

  test("framing: partial → incomplete; plain byte, zero or oversized length, trailing bytes → invalid", () => {
    const rec = clientSeal(Buffer.alloc(16), 1, Buffer.from("hello"));
    expect(frameRecord(rec.subarray(0, 5), 100).kind).toBe("incomplete");
    expect(frameRecord(rec.subarray(0, rec.length - 1), 100).kind).toBe("incomplete");
    expect(frameRecord(Buffer.from("OPTIONS"), 100).kind).toBe("invalid");
    expect(frameRecord(rec, 4)).toMatchObject({ kind: "invalid", reason: "record length 5 outside 1..4" });
    expect(frameRecord(Buffer.concat([rec, Buffer.from([0])]), 100).kind).toBe("invalid");
    const zero = Buffer.alloc(24);
    zero.writeUInt32BE(0x80000000, 0);
    expect(frameRecord(zero, 100).kind).toBe("invalid");
  });
});

describe("RTSP request framing", () => {
  const req = (s: string) => frameRequest(Buffer.from(s, "latin1"));
  test("a request with a body; header names case-insensitive; the first of a repeated header wins", () => {
    const r = req("ANNOUNCE streamid=control/13/0 RTSP/1.0\r\nCSeq: 6\r\ncseq: 99\r\nContent-length: 4\r\n\r\nv=0\n");
    expect(r.kind).toBe("request");
    if (r.kind !== "request") return;
    expect(r.request).toMatchObject({ method: "ANNOUNCE", target: "streamid=control/13/0", cseq: 6 });
    expect(Buffer.from(r.request.body).toString()).toBe("v=0\n");
  });
  test("incomplete until headers and body are in; bounds and malformed input", () => {
    expect(req("OPTIONS rtsp://h RTSP/1.0\r\nCSeq: 1\r\n").kind).toBe("incomplete");
    expect(req("ANNOUNCE x RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 10\r\n\r\nabc").kind).toBe("incomplete");
    expect(req(`ANNOUNCE x RTSP/1.0\r\nCSeq: 1\r\nContent-Length: ${MAX_BODY_BYTES + 1}\r\n\r\n`)).toMatchObject({ kind: "invalid", status: 413, cseq: 1 });
    expect(req("ANNOUNCE x RTSP/1.0\r\nCSeq: 1\r\nContent-Length: -1\r\n\r\n")).toMatchObject({ kind: "invalid", status: 400 });
    expect(req("OPTIONS rtsp://h RTSP/2.0\r\nCSeq: 1\r\n\r\n")).toMatchObject({ kind: "invalid", status: 400 });
    expect(req("OPTIONS rtsp://h RTSP/1.0\r\nCSeq: one\r\n\r\n")).toMatchObject({ kind: "invalid", reason: "missing or malformed CSeq" });
    expect(req("OPTIONS rtsp://h RTSP/1.0\r\nCSeq: 1\r\nno colon\r\n\r\n")).toMatchObject({ kind: "invalid", reason: "malformed header line" });
    expect(req("OPTIONS rtsp://h RTSP/1.0\r\nCSeq: 1\r\nX: \xff\r\n\r\n")).toMatchObject({ kind: "invalid", reason: "request headers are not ASCII text" });
    expect(req(`OPTIONS rtsp://h RTSP/1.0\r\n${"X: 1\r\n".repeat(70)}CSeq: 1\r\n\r\n`)).toMatchObject({ kind: "invalid", status: 400 });
    expect(req("x".repeat(9000))).toMatchObject({ kind: "invalid", status: 400 });
  });
  test("responses: status line, CSeq, headers, Content-Length of the body", () => {
    const text = Buffer.from(serializeResponse({ status: 200, cseq: 3, headers: [["Session", "AB;timeout = 90"]], body: "v=0\r\n" })).toString();
    expect(text).toBe("RTSP/1.0 200 OK\r\nCSeq: 3\r\nSession: AB;timeout = 90\r\nContent-Length: 5\r\n\r\nv=0\r\n");
  });
  test("SETUP targets", () => {
    expect(["streamid=audio/0/0", "streamid=video/0/0", "streamid=control/13/0", "streamid=control/1/0", "rtspenc://1.2.3.4:48010/streamid=video/0/0"].map(setupStream)).toEqual(["audio", "video", "control", "control", "video"]);
    expect(["streamid=audio", "streamid=video/1/0", "streamid=control/14/0", "streamid=../0/0", ""].map(setupStream)).toEqual([null, null, null, null, null]);
  });
  test("ping payloads: 16 characters of [A-Za-z0-9], different each time", () => {
    const tokens = Array.from({ length: 50 }, () => randomToken(16));
    for (const t of tokens) expect(t).toMatch(/^[A-Za-z0-9]{16}$/);
    expect(new Set(tokens).size).toBe(50);
  });
});

describe("DESCRIBE and ANNOUNCE", () => {
  test("DESCRIBE masks the requested encryption by the supported one", () => {
    const body = describeBody({ codecModeSupport: CODEC.H264, encryptionSupported: ENCRYPTION.CONTROL, encryptionRequested: ENCRYPTION.VIDEO | ENCRYPTION.CONTROL, featureFlags: 3, refPicInvalidation: false });
    expect(body).toContain("a=x-ss-general.encryptionRequested:1\r\n");
    expect(body).toContain("a=x-ss-general.featureFlags:3\r\n");
    expect(body).not.toContain("refPicInvalidation");
  });

  test("the sample SDP parses; attributes bounded; first occurrence wins", () => {
    expect(parseAnnounce(SAMPLE_SDP, offer)).toMatchObject({ width: 1280, height: 720, fps: 60, bitrateKbps: 10000, audio: { channels: 2 } });
    const twice = SAMPLE_SDP.replace("t=0 0", "a=x-nv-video[0].maxFPS:30\r\nt=0 0");
    expect(parseAnnounce(twice, offer).fps).toBe(60);
    expect(() => sdpAttributes("a=x:1\n".repeat(600))).toThrow(AnnounceError);
    // without the configured bitrate, the initial one is used
    expect(parseAnnounce(SAMPLE_SDP.replace(/a=x-ml-video.configuredBitrateKbps:10000 \r?\n/, ""), offer).bitrateKbps).toBe(7500);
  });

  test("5.1 and 7.1 need a matching channel mask; encryption beyond the offer is refused", () => {
    const surround = SAMPLE_SDP.replace("numChannels:2", "numChannels:6").replace("channelMask:3", "channelMask:63").replace("AudioQuality:0", "AudioQuality:1").replace("packetDuration:5", "packetDuration:10");
    expect(parseAnnounce(surround, offer).audio).toEqual({ channels: 6, channelMask: 63, highQuality: true, packetDurationMs: 10 });
    expect(() => parseAnnounce(surround.replace("channelMask:63", "channelMask:1599"), offer)).toThrow("does not name 6 channels");
    expect(() => parseAnnounce(SAMPLE_SDP, { ...offer, encryptionSupported: 1 })).toThrow("encryptionEnabled 7");
    expect(() => parseAnnounce(SAMPLE_SDP.replace("encoderCscMode:0", "encoderCscMode:6"), offer)).toThrow("encoderCscMode");
  });
});

describe("random input (bounded, seeded)", () => {
  // xorshift32: the same inputs every run
  let x = 0x9e3779b9;
  const rnd = () => ((x ^= x << 13), (x ^= x >>> 17), (x ^= x << 5), x >>> 0);
  const bytes = (n: number) => Uint8Array.from({ length: n }, () => rnd() & 0xff);

  test("framing never throws: every input is a request, incomplete or invalid", () => {
    const head = Buffer.from("ANNOUNCE streamid=control/13/0 RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 12\r\n\r\n");
    for (let i = 0; i < 3000; i++) {
      const base = i % 2 ? bytes(rnd() % 300) : Uint8Array.from(head);
      // flip a few bytes of a valid request, or take pure noise
      for (let k = 0; k < (i % 2 ? 0 : 1 + (rnd() % 4)); k++) base[rnd() % base.length] = rnd() & 0xff;
      expect(["request", "incomplete", "invalid"]).toContain(frameRequest(base).kind);
      expect(["record", "incomplete", "invalid"]).toContain(frameRecord(base, 1000).kind);
    }
  });

  test("ANNOUNCE with mutated values: a configuration within bounds or an AnnounceError, nothing else", () => {
    const lines = SAMPLE_SDP.split("\r\n");
    const junk = ["", "-1", "99999999999", "0x10", "1e3", "abc", " 7", "4294967296", "60\u0000", "½"];
    let accepted = 0;
    for (let i = 0; i < 1000; i++) {
      const mutated = lines.map((l) => (l.startsWith("a=") && rnd() % 8 === 0 ? l.replace(/:.*$/, `:${junk[rnd() % junk.length]}`) : l)).join("\r\n");
      try {
        const c = parseAnnounce(mutated, offer);
        accepted++;
        expect(c.width).toBeGreaterThanOrEqual(64);
        expect(c.packetSize).toBeLessThanOrEqual(8192);
        expect([2, 6, 8]).toContain(c.audio.channels);
      } catch (err) {
        expect(err).toBeInstanceOf(AnnounceError);
      }
    }
    expect(accepted).toBeGreaterThan(0);
  });
});
