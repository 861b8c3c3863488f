/**
 * What Bun's experimental node:quic does here (the measurement behind PROTOCOL.md "Control"):
 * a bidirectional stream's body, a reply on it, and DATAGRAM frames both ways, on 127.0.0.1.
 * lumen/1 runs its QUIC on ngtcp2 (native/lumen/quic.c); this test keeps the facts about the
 * alternative current as Bun changes.
 */
import { describe, expect, test } from "bun:test";
import { createPrivateKey } from "node:crypto";
import { testIdentity } from "./helpers.ts";

type Any = any; // eslint-disable-line @typescript-eslint/no-explicit-any -- node:quic has no types in this Bun

describe("node:quic in this Bun", () => {
  test("a stream body, its reply and datagrams both ways arrive intact (the stream yields arrays of chunks)", async () => {
    const quic: Any = await import("node:quic");
    const id = testIdentity();
    const seen: { body?: number[]; chunkShape?: string; srvDgram?: number[]; cliDgram?: number[]; reply?: string } = {};
    const ep: Any = await quic.listen((session: Any) => {
      session.onstream = async (stream: Any) => {
        const bytes: number[] = [];
        stream.setBody(new TextEncoder().encode("welcome"));
        for await (const c of stream) {
          seen.chunkShape ??= Array.isArray(c) ? "array of Uint8Array" : "Uint8Array";
          for (const x of Array.isArray(c) ? c : [c]) bytes.push(...x);
        }
        seen.body = bytes;
      };
      session.ondatagram = (d: Uint8Array) => {
        seen.srvDgram = [...d];
        session.sendDatagram(new Uint8Array([9, 9]));
      };
    }, { sni: { "*": { keys: [createPrivateKey(id.keyPem)], certs: [Buffer.from(id.certPem)] } }, alpn: "lumen/1", endpoint: { address: { address: "127.0.0.1", port: 0 } }, transportParams: { maxDatagramFrameSize: 1200 } });
    const s: Any = await quic.connect(ep.address, { alpn: "lumen/1", servername: "localhost", verifyPeer: "manual", transportParams: { maxDatagramFrameSize: 1200 } });
    try {
      s.ondatagram = (d: Uint8Array) => (seen.cliDgram = [...d]);
      await s.opened;
      const body = new TextEncoder().encode("lumen/1 control"); // 15 bytes
      const st: Any = await s.createBidirectionalStream({ body });
      s.sendDatagram(new Uint8Array([1, 2, 3]));
      const reply: number[] = [];
      const reading = (async () => {
        for await (const c of st) for (const x of Array.isArray(c) ? c : [c]) reply.push(...x);
      })();
      const deadline = Date.now() + 3000;
      while (Date.now() < deadline && !(seen.body && seen.cliDgram && reply.length >= 7)) await Bun.sleep(10);
      void reading.catch(() => {});
      seen.reply = new TextDecoder().decode(new Uint8Array(reply));
      // Reading a chunk (an array) as bytes, e.g. Buffer.from(chunk), gives one 0 byte per array:
      // that is how "a 15-byte body arrives as one NUL byte" was once observed here.
      expect(seen.chunkShape).toBe("array of Uint8Array");
      expect(seen.body).toEqual([...body]);
      expect(seen.reply).toBe("welcome");
      expect(seen.srvDgram).toEqual([1, 2, 3]);
      expect(seen.cliDgram).toEqual([9, 9]);
    } finally {
      s.destroy?.();
      ep.destroy?.();
    }
  }, 15_000);
});
