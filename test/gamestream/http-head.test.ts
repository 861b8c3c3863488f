/** The bounded request-head reader: the same verdict however the bytes are split; the Host parser. */
import { describe, expect, test } from "bun:test";
import { hostHeaderCheck, hostOf } from "../../src/gamestream/host-check.ts";
import { MAX_HEADERS, MAX_REQUEST_LINE, RequestHeadReader, type HeadResult } from "../../src/gamestream/http-head.ts";

function feed(bytes: Buffer, cuts: number[]): HeadResult {
  const r = new RequestHeadReader();
  let last: HeadResult = { kind: "incomplete" };
  let at = 0;
  for (const c of [...cuts, bytes.length]) {
    last = r.push(bytes.subarray(at, c));
    at = c;
    if (last.kind !== "incomplete") break;
  }
  return last;
}

/** A seeded generator, so a failure names its seed. */
function rng(seed: number) {
  let x = seed >>> 0 || 1;
  return () => ((x ^= x << 13), (x ^= x >>> 17), (x ^= x << 5), (x >>> 0) / 2 ** 32);
}

const verdict = (r: HeadResult) => (r.kind === "head" ? { kind: r.kind, method: r.head.method, target: r.head.target, headers: [...r.head.headers] } : r.kind === "invalid" ? { kind: r.kind, status: r.status } : r);

const cases: [string, Buffer][] = [
  ["a Moonlight request", Buffer.from(`GET /pair?uniqueid=0123456789ABCDEF&devicename=roth&updateState=1&phrase=getservercert&salt=${"ab".repeat(16)}&clientcert=${"41".repeat(1500)} HTTP/1.1\r\nHost: 192.168.1.20:47989\r\nUser-Agent: Mozilla/5.0\r\nConnection: Keep-Alive\r\nAccept-Encoding: gzip, deflate\r\nAccept-Language: en-US,*\r\n\r\n`)],
  ["a long request line", Buffer.from(`GET /x?${"a".repeat(MAX_REQUEST_LINE)} HTTP/1.1\r\nHost: h\r\n\r\n`)],
  ["too many headers", Buffer.from(`GET / HTTP/1.1\r\n${Array.from({ length: MAX_HEADERS + 1 }, (_, i) => `A${i}: b`).join("\r\n")}\r\n\r\n`)],
  ["exactly the most headers", Buffer.from(`GET / HTTP/1.1\r\n${Array.from({ length: MAX_HEADERS }, (_, i) => `A${i}: b`).join("\r\n")}\r\n\r\n`)],
  ["a body", Buffer.from("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc")],
  ["Content-Length 0", Buffer.from("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 000\r\n\r\n")],
];

describe("RequestHeadReader", () => {
  for (const [name, bytes] of cases) {
    test(`${name}: one verdict for every split (200 random splittings, byte by byte)`, () => {
      const whole = verdict(feed(bytes, []));
      expect(whole.kind).not.toBe("incomplete");
      expect(verdict(feed(bytes, Array.from({ length: bytes.length - 1 }, (_, i) => i + 1)))).toEqual(whole);
      for (let seed = 1; seed <= 200; seed++) {
        const next = rng(seed);
        const cuts = Array.from({ length: 1 + Math.floor(next() * 8) }, () => Math.floor(next() * bytes.length)).sort((a, b) => a - b);
        expect({ seed, v: verdict(feed(bytes, cuts)) }).toEqual({ seed, v: whole });
      }
    });
  }

  test("the verdicts", () => {
    expect(verdict(feed(cases[0]![1], []))).toMatchObject({ kind: "head", method: "GET" });
    expect(verdict(feed(cases[1]![1], []))).toEqual({ kind: "invalid", status: 414 });
    expect(verdict(feed(cases[2]![1], []))).toEqual({ kind: "invalid", status: 431 });
    expect(verdict(feed(cases[3]![1], []))).toMatchObject({ kind: "head" });
    expect(verdict(feed(cases[4]![1], []))).toEqual({ kind: "invalid", status: 413 });
    expect(verdict(feed(cases[5]![1], []))).toMatchObject({ kind: "head" });
  });

  test("an incomplete head stays incomplete under the bounds; the verdict is fixed once given", () => {
    const r = new RequestHeadReader();
    expect(r.push(Buffer.from("GET / HTTP/1.1\r\nHost: h\r\n"))).toEqual({ kind: "incomplete" });
    const done = r.push(Buffer.from("\r\n"));
    expect(done.kind).toBe("head");
    expect(r.push(Buffer.from("GARBAGE"))).toBe(done);
  });
});

describe("Host header", () => {
  test("hostOf", () => {
    expect(hostOf("192.168.1.20:47989")).toEqual({ ip: true, host: "192.168.1.20" });
    expect(hostOf("[fe80::1%25wlan0]:47984")).toEqual({ ip: true, host: "fe80::1%25wlan0" });
    expect(hostOf("[::ffff:10.0.0.2]")).toEqual({ ip: true, host: "::ffff:10.0.0.2" });
    expect(hostOf("Gaming-PC.local.:47989")).toEqual({ ip: false, host: "gaming-pc.local" });
    for (const bad of ["", "a b", "[::1", "[zz]:1", "h:port", "h:123456", "a..b", "-"]) expect(hostOf(bad)).toBeNull();
  });

  test("the check", () => {
    const check = hostHeaderCheck({ hostname: "neuron", names: ["play.example.org"], machineHostname: "box" });
    for (const ok of [undefined, "10.1.2.3", "[2001:db8::5]:47989", "neuron", "NEURON.local", "box:47989", "box.local", "localhost:47989", "play.example.org", "x.localhost"]) expect({ ok, v: check(ok) }).toEqual({ ok, v: { ok: true } });
    for (const bad of ["evil.example", "neuron.evil.example", "play.example.org.evil", "boxx"]) expect(check(bad)).toEqual({ ok: false, name: bad });
  });
});
