/**
 * The GameStream HTTP(S) ports under hostile requests, over real sockets on 127.0.0.1, while a
 * loop of ordinary /serverinfo requests (another address) keeps running and must keep being
 * answered: the Host check (DNS rebinding), header bombs (long request line, many headers, huge
 * headers, a megabyte of them), bodies (huge Content-Length, chunked), slowloris heads and TLS
 * handshakes that never finish (cut at the head deadline), and the per-address connection cap.
 * The times printed are for the report (no assertion on speed).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect as netConnect, type Socket } from "node:net";
import { hostname } from "node:os";
import { connect as tlsConnect } from "node:tls";
import { tempDir } from "../helpers/env.ts";
import { makeClientIdentity, parseXml, type ClientIdentity } from "./client.ts";
import { gameStreamHost } from "./helpers.ts";
import { rawGet, rawRequest, type RawReply } from "./raw-http.ts";

const HEAD_TIMEOUT_MS = 1500;
const ATTACKER = "127.0.0.2";

describe("GameStream HTTP(S) ports: Host check and bounded parsing", () => {
  const keys = tempDir("neuron-gs-hostile-");
  let host: ReturnType<typeof gameStreamHost>;
  let http: number;
  let https: number;
  let id: ClientIdentity;
  let loop: { stop: boolean; answered: number; failed: string[]; done: Promise<void> };
  const figures: Record<string, number[]> = {};
  const note = (what: string, r: RawReply) => (figures[what] ??= []).push(Math.round(r.ms * 1000) / 1000);

  beforeAll(async () => {
    id = makeClientIdentity(keys.path);
    host = gameStreamHost({ httpHeadTimeoutMs: HEAD_TIMEOUT_MS, config: { gamestreamHostNames: ["stream.example.net"] } });
    const ports = await host.service.start();
    http = ports.http;
    https = ports.https;
    const state = { stop: false, answered: 0, failed: [] as string[], done: Promise.resolve() };
    state.done = (async () => {
      while (!state.stop) {
        try {
          const r = await rawGet(http, "/serverinfo?uniqueid=0123456789ABCDEF", `127.0.0.1:${http}`, [], { timeoutMs: 5000 });
          if (r.status === 200 && parseXml(r.body).status === 200) state.answered++;
          else state.failed.push(`status ${r.status}`);
        } catch (err) {
          state.failed.push((err as Error).message);
        }
        await Bun.sleep(20);
      }
    })();
    loop = state;
  });
  afterAll(async () => {
    if (loop) {
      loop.stop = true;
      await loop.done;
    }
    await host?.close();
    keys.cleanup();
    console.log("nvhttp hostile figures (ms from first byte written to the answer's end):", JSON.stringify(figures));
  });

  describe("Host", () => {
    const accepted = (port: number) => [
      `127.0.0.1:${port}`,
      "127.0.0.1",
      `[::1]:${port}`,
      "[fe80::1%25eth0]:47989",
      "203.0.113.7:47989", // the public address of a port-forwarding router
      "neuron-test",
      `NEURON-TEST.local.:${port}`,
      "localhost",
      `${hostname()}:${port}`,
      "stream.example.net",
    ];
    test("what clients send is accepted: IP literals, this host's names, configured names, no Host", async () => {
      for (const h of [...accepted(http), null]) {
        const r = await rawGet(http, "/serverinfo?uniqueid=x", h, [], { localAddress: ATTACKER });
        expect({ h, status: r.status, xml: parseXml(r.body).status }).toEqual({ h, status: 200, xml: 200 });
      }
    });

    test("a foreign name (a DNS-rebinding page) gets status_code 421 with a message the client shows, and no work is done", async () => {
      for (const h of ["attacker.example", `rebind.attacker.example:${http}`, "neuron-test.attacker.example", "a b", "[::1", "127.0.0.1:x"]) {
        const r = await rawGet(http, `/pair?uniqueid=x&phrase=getservercert&salt=${"00".repeat(16)}&clientcert=${Buffer.from(id.certPem).toString("hex")}`, h, [], { localAddress: ATTACKER });
        note("foreign Host", r);
        expect(r.status).toBe(200);
        const xml = parseXml(r.body);
        expect(xml.status).toBe(421);
        expect(xml.message).toMatch(/this host does not answer to the name/);
      }
      expect(host.service.pendingPairings()).toEqual([]);
    });

    test("over HTTPS too (with a client certificate)", async () => {
      const tlsGet = (h: string) =>
        new Promise<number>((resolve, reject) => {
          const s = tlsConnect({ host: "127.0.0.1", port: https, rejectUnauthorized: false, key: id.keyPem, cert: id.certPem }, () => s.write(`GET /serverinfo?uniqueid=x HTTP/1.1\r\nHost: ${h}\r\nConnection: close\r\n\r\n`));
          const chunks: Buffer[] = [];
          s.on("data", (c: Buffer) => chunks.push(c));
          s.on("error", reject);
          s.on("end", () => resolve(parseXml(Buffer.concat(chunks).toString()).status));
        });
      expect(await tlsGet(`127.0.0.1:${https}`)).toBe(200);
      expect(await tlsGet("neuron-test.local")).toBe(200);
      expect(await tlsGet("evil.example")).toBe(421);
    });
  });

  describe("bounded parsing", () => {
    const bombs: [string, () => string | Buffer | (string | Buffer)[], number][] = [
      ["request line of 40 KB", () => `GET /serverinfo?x=${"a".repeat(40_000)} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`, 414],
      ["40 KB without any line end", () => "G".repeat(40_000), 414],
      ["100 small headers", () => `GET /serverinfo HTTP/1.1\r\nHost: 127.0.0.1\r\n${Array.from({ length: 100 }, (_, i) => `X-H${i}: v`).join("\r\n")}\r\n\r\n`, 431],
      ["one 9 KB header", () => `GET /serverinfo HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${"b".repeat(9 * 1024)}\r\n\r\n`, 431],
      ["1 MB of headers in one write", () => `GET /serverinfo HTTP/1.1\r\nHost: 127.0.0.1\r\n${"X-A: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n".repeat(18_000)}\r\n`, 431],
      ["1 MB of header bytes in 1 KB pieces", () => [`GET /serverinfo HTTP/1.1\r\nHost: 127.0.0.1\r\n`, ...Array.from({ length: 1024 }, () => Buffer.alloc(1024, 0x61))], 431],
      ["Content-Length of 10^15", () => "GET /serverinfo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000000000000000\r\n\r\n", 413],
      ["Content-Length: 5 with a body", () => "GET /serverinfo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n\r\nhello", 413],
      ["chunked body", () => "GET /serverinfo HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400],
      ["two Content-Length headers", () => "GET /serverinfo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n", 400],
      ["two Host headers", () => "GET /serverinfo HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example\r\n\r\n", 400],
      ["a folded header line", () => "GET /serverinfo HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: a\r\n  folded\r\n\r\n", 400],
      ["non-ASCII bytes", () => Buffer.concat([Buffer.from("GET /serverinfo HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: "), Buffer.from([0xff, 0xfe]), Buffer.from("\r\n\r\n")]), 400],
      ["a POST", () => "POST /pair HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 405],
      ["an absolute-form target", () => "GET http://127.0.0.1/serverinfo HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 400],
      ["HTTP/2 preface", () => "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400],
    ];
    for (const [name, request, status] of bombs) {
      test(`${name} → ${status} with an XML root saying so`, async () => {
        const r = await rawRequest(http, request(), { localAddress: ATTACKER });
        note(name, r);
        expect(r.status).toBe(status);
        expect(r.headers.connection).toBe("close");
        expect(parseXml(r.body).status).toBe(status);
      });
    }

    test("slowloris heads (a byte every 100 ms) are answered 408 at the head deadline", async () => {
      const slow = (i: number) =>
        new Promise<{ status: number; ms: number }>((resolve) => {
          const t0 = performance.now();
          const s: Socket = netConnect({ host: "127.0.0.1", port: http, localAddress: ATTACKER });
          const text = `GET /serverinfo?i=${i} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ${"s".repeat(500)}`;
          let at = 0;
          const dribble = setInterval(() => {
            if (at < text.length && !s.destroyed) s.write(text[at++]!);
          }, 100);
          const chunks: Buffer[] = [];
          s.on("data", (c: Buffer) => chunks.push(c));
          s.on("error", () => {});
          s.on("close", () => {
            clearInterval(dribble);
            resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(Buffer.concat(chunks).toString())?.[1] ?? 0), ms: performance.now() - t0 });
          });
          setTimeout(() => s.destroy(), 4 * HEAD_TIMEOUT_MS); // the test's own bound
        });
      const results = await Promise.all(Array.from({ length: 10 }, (_, i) => slow(i)));
      for (const r of results) expect(r.status).toBe(408);
      figures["slowloris cut (head deadline 1500 ms)"] = results.map((r) => Math.round(r.ms));
    });

    test("a TLS connection that never finishes its handshake is closed at the head deadline", async () => {
      const t0 = performance.now();
      const closed = await new Promise<boolean>((resolve) => {
        const s = netConnect({ host: "127.0.0.1", port: https, localAddress: ATTACKER }, () => s.write(Buffer.from([0x16, 0x03, 0x01]))); // a TLS record header, then silence
        s.on("error", () => {});
        s.on("close", () => resolve(true));
        setTimeout(() => (s.destroy(), resolve(false)), 4 * HEAD_TIMEOUT_MS);
      });
      expect(closed).toBe(true);
      figures["TLS handshake never finished: closed after"] = [Math.round(performance.now() - t0)];
    });

    test("connections beyond the per-address cap are closed at once; other addresses are served", async () => {
      const idle: Socket[] = [];
      try {
        for (let i = 0; i < 16; i++) {
          const s = netConnect({ host: "127.0.0.1", port: http, localAddress: ATTACKER });
          s.on("error", () => {});
          idle.push(s);
          await new Promise((r) => s.once("connect", r));
        }
        await Bun.sleep(50);
        const over = await rawGet(http, "/serverinfo", "127.0.0.1", [], { localAddress: ATTACKER, timeoutMs: 3000 });
        expect(over.status).toBe(0);
        note("connection over the per-address cap", over);
        const other = await rawGet(http, "/serverinfo?uniqueid=x", "127.0.0.1", [], { localAddress: "127.0.0.3" });
        expect(other.status).toBe(200);
      } finally {
        for (const s of idle) s.destroy();
      }
    });

    test("the refusals are counted by reason (GET /api/v1/gamestream shows them)", () => {
      const r = host.service.httpRefusals();
      expect(r).toMatchObject({ status414: 2, status431: 4, status413: 2, status405: 1, status400: 7, host: 7, headTimeout: 10 });
      expect(r.connectionsPerAddress).toBeGreaterThanOrEqual(1);
    });

    test("the loop of ordinary requests was answered throughout", async () => {
      loop.stop = true;
      await loop.done;
      expect(loop.failed).toEqual([]);
      expect(loop.answered).toBeGreaterThan(10);
      figures["ordinary requests answered during the test"] = [loop.answered];
    });
  });
});
