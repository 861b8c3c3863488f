/**
 * GameStream HTTP port under hostile requests (prints figures, asserts nothing), host on
 * 127.0.0.1 in this process: the time from a request's first byte to the end of its answer for
 * an ordinary /serverinfo (the baseline) and for each parser bomb, as ms and as a ratio to the
 * baseline's p50 measured in the same run; then the ordinary request again while attackers on
 * other addresses keep sending megabyte header bombs (client and host share this process's
 * thread, so the attackers' own writing is in that figure too). Each bomb comes from its own
 * 127.0.1.x address: one address gets at most 16 connections at once, and a refused connection
 * stays up to 1 s for its peer to read the answer, so bombs from one address are closed unread
 * once 16 are lingering (the case "one-address-crowd" shows that).
 *
 *   npm run bench:nvhttp     (BENCH_N, default 200; BENCH_ATTACKERS, default 4)
 */
import { gameStreamHost } from "../gamestream/helpers.ts";
import { rawGet, rawRequest } from "../gamestream/raw-http.ts";

const N = Math.min(Number(process.env.BENCH_N ?? 200), 5000);
const ATTACKERS = Math.min(Number(process.env.BENCH_ATTACKERS ?? 4), 32);
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;

const bombs: [string, string | Buffer][] = [
  ["request-line-40KB", `GET /serverinfo?x=${"a".repeat(40_000)} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`],
  ["headers-100", `GET /serverinfo HTTP/1.1\r\nHost: 127.0.0.1\r\n${Array.from({ length: 100 }, (_, i) => `X-H${i}: v`).join("\r\n")}\r\n\r\n`],
  ["headers-1MB", `GET /serverinfo HTTP/1.1\r\nHost: 127.0.0.1\r\n${"X-A: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n".repeat(18_000)}\r\n`],
  ["content-length-1e15", "GET /serverinfo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000000000000000\r\n\r\n"],
  ["foreign-host", "GET /serverinfo HTTP/1.1\r\nHost: rebind.attacker.example\r\n\r\n"],
];

const host = gameStreamHost();
try {
  const { http } = await host.service.start();
  const ordinary = () => rawGet(http, "/serverinfo?uniqueid=0123456789ABCDEF", `127.0.0.1:${http}`);
  for (let i = 0; i < 20; i++) await ordinary(); // warm-up
  const base: number[] = [];
  for (let i = 0; i < N; i++) base.push((await ordinary()).ms);
  const b50 = pct(base, 50);
  console.log(JSON.stringify({ case: "serverinfo-baseline", n: N, p50Ms: round(b50), p99Ms: round(pct(base, 99)) }));
  const n = Math.min(N, 200); // lingering refused connections stay under the host's cap of 256
  for (const [name, req] of bombs) {
    const ms: number[] = [];
    const statuses = new Set<number>();
    for (let i = 0; i < n; i++) {
      const r = await rawRequest(http, req, { localAddress: `127.0.1.${(i % 250) + 1}` });
      statuses.add(r.status);
      ms.push(r.ms);
    }
    console.log(JSON.stringify({ case: name, statuses: [...statuses], n, p50Ms: round(pct(ms, 50)), p99Ms: round(pct(ms, 99)), p50VsBaseline: round(pct(ms, 50) / b50, 2) }));
    await Bun.sleep(1200);
  }
  {
    const statuses: number[] = [];
    for (let i = 0; i < 40; i++) statuses.push((await rawRequest(http, bombs[0]![1], { localAddress: "127.0.0.2" })).status);
    console.log(JSON.stringify({ case: "one-address-crowd", requests: 40, answered414: statuses.filter((s) => s === 414).length, closedUnread: statuses.filter((s) => s === 0).length }));
    await Bun.sleep(1200);
  }
  let stop = false;
  let bombsAnswered = 0;
  const attackers = Array.from({ length: ATTACKERS }, async (_, a) => {
    while (!stop) {
      await rawRequest(http, bombs[2]![1], { localAddress: `127.0.2.${a + 1}` }).catch(() => null);
      bombsAnswered++;
    }
  });
  const under: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < N; i++) under.push((await ordinary()).ms);
  const secs = (performance.now() - t0) / 1000;
  stop = true;
  await Promise.all(attackers);
  console.log(JSON.stringify({ case: "serverinfo-under-1MB-bombs", attackers: ATTACKERS, n: N, p50Ms: round(pct(under, 50)), p99Ms: round(pct(under, 99)), p50VsBaseline: round(pct(under, 50) / b50, 2), bombsPerSecond: Math.round(bombsAnswered / secs) }));
} finally {
  await host.close();
}
