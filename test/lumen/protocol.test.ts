/**
 * lumen/1 pieces without a network: the control message reader under random and hostile
 * input (a fuzz loop, deterministic), SPAKE2 on P-256 against OpenSSL's point arithmetic,
 * the adaptive FEC rule, and the native receiver's bounds seen through ffi.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { createECDH } from "node:crypto";
import { LumenReceiver, LumenSender } from "../../ffi/lumen.ts";
import { UdpSocket } from "../../ffi/stream.ts";
import { ClientMessage, encodeMessage, HostMessage, LumenProtocolError, MAX_MESSAGE_BYTES, MessageReader } from "../../src/lumen/messages.ts";
import * as ec from "../../src/lumen/p256.ts";
import { confirmMatches, Spake2, Spake2Error } from "../../src/lumen/spake2.ts";
import { buildNative, loadNatives } from "./helpers.ts";

beforeAll(() => buildNative());

function rng(seed: number) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

describe("control messages", () => {
  test("round trip, split at every byte", () => {
    const m = { type: "reconfigure", width: 1280, height: 720, fps: 120 } as const;
    const wire = encodeMessage(m);
    for (let cut = 0; cut <= wire.length; cut++) {
      const r = new MessageReader(ClientMessage);
      const got = [...r.push(wire.subarray(0, cut)), ...r.push(wire.subarray(cut))];
      expect(got).toEqual([m]);
    }
  });

  test("fuzz: random bytes and mutated messages only ever yield valid messages or LumenProtocolError", () => {
    const next = rng(7);
    const seeds = [
      encodeMessage({ type: "hello", version: 1, clientId: "c-1", name: "n", modes: [{ width: 1280, height: 720, fps: 60 }], codecs: ["h264"], capabilities: ["input"] }),
      encodeMessage({ type: "pair-start", share: Buffer.from(ec.encode(ec.G)).toString("hex") }),
      encodeMessage({ type: "auth", mac: "00".repeat(32) }),
    ];
    let valid = 0, refused = 0;
    for (let i = 0; i < 3000; i++) {
      const base = Buffer.from(seeds[i % seeds.length]!);
      const flips = next() % 4;
      for (let f = 0; f < flips; f++) base[next() % base.length] = next() & 0xff;
      const bytes = i % 5 === 0 ? Buffer.from(Array.from({ length: next() % 64 }, () => next() & 0xff)) : base;
      const r = new MessageReader(ClientMessage);
      try {
        const out = r.push(bytes);
        for (const m of out) expect(ClientMessage.safeParse(m).success).toBe(true);
        valid += out.length;
        expect(r.pending).toBeLessThanOrEqual(MAX_MESSAGE_BYTES + 4);
      } catch (err) {
        expect(err).toBeInstanceOf(LumenProtocolError);
        refused++;
      }
    }
    expect(valid).toBeGreaterThan(0);
    expect(refused).toBeGreaterThan(0);
  });

  test("a length over the bound is refused before its bytes arrive", () => {
    const r = new MessageReader(HostMessage);
    expect(() => r.push(Uint8Array.from([0x00, 0x01, 0x00, 0x01]))).toThrow(/outside 1\.\.65536/);
    expect(() => new MessageReader(HostMessage).push(Uint8Array.from([0, 0, 0, 0]))).toThrow(LumenProtocolError);
  });
});

describe("SPAKE2 on P-256", () => {
  test("scalar multiplication agrees with OpenSSL", () => {
    const next = rng(3);
    for (let i = 0; i < 4; i++) {
      const k = BigInt("0x" + Array.from({ length: 8 }, () => next().toString(16).padStart(8, "0")).join("")) % ec.N;
      const e = createECDH("prime256v1");
      e.setPrivateKey(Buffer.from(k.toString(16).padStart(64, "0"), "hex"));
      expect(Buffer.from(ec.encode(ec.mul(k, ec.G))).equals(e.getPublicKey())).toBe(true);
    }
  });

  test("same PIN and identities: both confirm and agree on the key; any difference fails", () => {
    const c = new Spake2("client", "0420", "c-1", "fp");
    const h = new Spake2("host", "0420", "c-1", "fp");
    const rc = c.finish(h.share), rh = h.finish(c.share);
    expect(confirmMatches(rh.expect, rc.confirm) && confirmMatches(rc.expect, rh.confirm)).toBe(true);
    expect(rc.pairingKey.equals(rh.pairingKey)).toBe(true);
    for (const [pin, fp] of [["0421", "fp"], ["0420", "other-fp"]] as const) {
      const h2 = new Spake2("host", pin, "c-1", fp);
      const c2 = new Spake2("client", "0420", "c-1", "fp");
      expect(confirmMatches(h2.finish(c2.share).expect, c2.finish(h2.share).confirm)).toBe(false);
    }
  });

  test("a share that is not a curve point is refused", () => {
    const h = new Spake2("host", "1234", "a", "b");
    const bad = Buffer.from(ec.encode(ec.G));
    bad[64]! ^= 1;
    expect(() => h.finish(bad)).toThrow(Spake2Error);
  });
});

describe("native data plane through ffi", () => {
  test("adaptive parity: loss × 1.4 + 1 point, clamped, plus the tail bound", () => {
    const n = loadNatives().lumen;
    expect(n.parity(1000, 0)).toBe(10); // 1 % floor
    expect(n.parity(1000, 100_000)).toBeGreaterThanOrEqual(150); // 10 % × 1.4 + 1 = 15 %
    expect(n.parity(100, 300_000)).toBeLessThanOrEqual(114); // k/2 + 64 ceiling
    expect(n.parity(4, 200_000)).toBeGreaterThanOrEqual(7);
  });

  test("hostile shard headers (sealed with the right key) never grow the receiver", () => {
    const { lumen, stream } = loadNatives();
    const keys = { key: new Uint8Array(16).fill(1), salt: new Uint8Array(4).fill(2), sessionId: 9 };
    const rx = LumenReceiver.create(lumen, keys, { shardBytes: 1344, maxFrameBytes: 1 << 20 });
    const footprint = rx.footprint();
    expect(footprint).toBeLessThan(16 << 20);
    const sock = UdpSocket.open(stream, "127.0.0.1", 0);
    const tx = LumenSender.create(lumen, sock, keys, { shardBytes: 64, maxFrameBytes: 64 });
    // side-plane datagrams with every plane byte, and runts: refused or delivered, never crash
    for (let plane = 0; plane < 256; plane++) {
      if (plane === 0x56 || plane === 0) continue;
      const d = tx.sealDatagram(plane, new Uint8Array(plane % 40));
      const r = rx.push(d);
      expect(r === null || (r !== "video" && r.payload.length === plane % 40)).toBe(true);
      d[0] = 0x56; // claims video with a side-plane length
      expect(rx.push(d)).toBeNull();
    }
    for (let len = 0; len < 80; len++) expect(rx.push(new Uint8Array(len).fill(0x56))).toBeNull();
    expect(rx.footprint()).toBe(footprint);
    expect(rx.codecBytes()).toBe(0);
    const st = rx.stats();
    expect(st.badFormat).toBeGreaterThan(300);
    tx.close();
    rx.close();
    sock.close();
  });
});
