/**
 * lumen/1 control transports on 127.0.0.1, one JSON line per case: round trips of a 200-byte
 * message on the control stream and of a 40-byte datagram, echoed by a server in this process.
 *
 *   - ngtcp2: native/lumen/quic.c through ffi (what lumen/1 uses): "notified" as host and client
 *     run it (the QUIC thread signals JS through a threadsafe JSCallback, JS then polls), "polled
 *     1 ms" (fixed-interval polling, the first design), "back to back" (polling in a tight loop:
 *     the transport's own floor);
 *   - tls: node:tls on TCP (the fallback; the baseline of the ratios);
 *   - node:quic: Bun's experimental module: a stream per request (body out, reply read to its
 *     end) and datagrams — its streams are one-shot here, not one long control stream.
 * Ratios: p50 round trip over the TLS round trip of the same run.
 *
 *   bun test/bench/lumen-control.bench.ts [--rounds N]
 */
import { createPrivateKey } from "node:crypto";
import { connect as tlsConnect, createServer } from "node:tls";
import { loadavg } from "node:os";
import { QuicEndpoint } from "../../ffi/lumen-quic.ts";
import { percentile } from "../../src/lumen/client.ts";
import { buildNative, loadNatives, testIdentity } from "../lumen/helpers.ts";

const arg = (name: string, def: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : def;
};
const rounds = Number(arg("rounds", "300"));
const r3 = (v: number) => Math.round(v * 1000) / 1000;
buildNative();
const n = loadNatives();
const id = testIdentity();
const msg = new Uint8Array(200).fill(0x61);
const dgram = new Uint8Array(40).fill(0x49);
const results: Record<string, { streamP50Ms: number; streamP99Ms: number; datagramP50Ms?: number }> = {};

// --- TLS on TCP (baseline)
{
  const server = createServer({ key: id.keyPem, cert: id.certPem, minVersion: "TLSv1.3" }, (s) => s.on("data", (d: Buffer) => s.write(d)));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as { port: number }).port;
  const s = await new Promise<ReturnType<typeof tlsConnect>>((resolve) => {
    const c = tlsConnect({ host: "127.0.0.1", port, rejectUnauthorized: false }, () => resolve(c));
  });
  s.setNoDelay(true);
  const rtt: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const t0 = performance.now();
    await new Promise<void>((resolve) => {
      let got = 0;
      const on = (d: Buffer) => {
        got += d.length;
        if (got >= msg.length) {
          s.off("data", on);
          resolve();
        }
      };
      s.on("data", on);
      s.write(msg);
    });
    rtt.push(performance.now() - t0);
  }
  s.destroy();
  server.close();
  results.tls = { streamP50Ms: percentile(rtt, 50), streamP99Ms: percentile(rtt, 99) };
}

// --- ngtcp2 through ffi
for (const mode of ["notified", "polled-1ms", "back-to-back"] as const) {
  const srv = QuicEndpoint.listen(n.lumen, { host: "127.0.0.1", port: 0, certPem: id.certPem, keyPem: id.keyPem, maxConns: 2 });
  const cli = QuicEndpoint.connect(n.lumen, "127.0.0.1", srv.stats().port);
  let srvConn = 0;
  const serve = () => {
    for (const e of srv.poll(0)) {
      if (e.kind === "open") srvConn = e.conn;
      else if (e.kind === "stream") srv.write(e.conn, e.data);
      else if (e.kind === "datagram") srv.sendDatagram(e.conn, e.data);
    }
  };
  const timer = mode === "polled-1ms" ? setInterval(serve, 1) : null;
  let wake: (() => void) | null = null;
  if (mode === "notified") {
    srv.onEvents(serve);
    cli.onEvents(() => wake?.());
  }
  const wait = async (want: (k: string, len: number) => boolean) => {
    for (;;) {
      for (const e of cli.poll(0)) if (want(e.kind, e.kind === "closed" ? 0 : e.data.length)) return;
      if (mode === "polled-1ms") await Bun.sleep(1);
      else if (mode === "notified") await Promise.race([new Promise<void>((r) => (wake = r)), Bun.sleep(50)]);
      else serve();
    }
  };
  await wait((k) => k === "open");
  while (!srvConn) mode === "back-to-back" ? serve() : await Bun.sleep(1);
  const s: number[] = [], d: number[] = [];
  for (let i = 0; i < rounds; i++) {
    let t0 = performance.now();
    cli.write(1, msg);
    let got = 0;
    await wait((k, len) => k === "stream" && (got += len) >= msg.length);
    s.push(performance.now() - t0);
    t0 = performance.now();
    cli.sendDatagram(1, dgram);
    await wait((k) => k === "datagram");
    d.push(performance.now() - t0);
  }
  if (timer) clearInterval(timer);
  cli.close();
  srv.close();
  results[`ngtcp2 ${mode}`] = { streamP50Ms: percentile(s, 50), streamP99Ms: percentile(s, 99), datagramP50Ms: percentile(d, 50) };
}

// --- node:quic (experimental in this Bun)
try {
  const quic: any = await import("node:quic"); // eslint-disable-line @typescript-eslint/no-explicit-any
  let dgramWaiter: (() => void) | null = null;
  const ep: any = await quic.listen((session: any) => { // eslint-disable-line @typescript-eslint/no-explicit-any
    session.onstream = (stream: any) => { // eslint-disable-line @typescript-eslint/no-explicit-any
      stream.setBody(msg); // the reply: 200 bytes back on the same stream
      void (async () => {
        for await (const c of stream) void c;
      })().catch(() => {});
    };
    session.ondatagram = (x: Uint8Array) => session.sendDatagram(x);
  }, { sni: { "*": { keys: [createPrivateKey(id.keyPem)], certs: [Buffer.from(id.certPem)] } }, alpn: "lumen/1", endpoint: { address: { address: "127.0.0.1", port: 0 } }, transportParams: { maxDatagramFrameSize: 1200 } });
  const s: any = await quic.connect(ep.address, { alpn: "lumen/1", servername: "localhost", verifyPeer: "manual", transportParams: { maxDatagramFrameSize: 1200 } }); // eslint-disable-line @typescript-eslint/no-explicit-any
  s.ondatagram = () => dgramWaiter?.();
  await s.opened;
  const d: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const t0 = performance.now();
    await Promise.race([new Promise<void>((r) => { dgramWaiter = r; s.sendDatagram(dgram); }), Bun.sleep(1000)]);
    d.push(performance.now() - t0);
  }
  // a stream per request: a 200-byte body out, the 200-byte reply (setBody) read to its end
  const st: number[] = [];
  for (let i = 0; i < Math.min(rounds, 100); i++) {
    const t0 = performance.now();
    const stream: any = await s.createBidirectionalStream({ body: msg }); // eslint-disable-line @typescript-eslint/no-explicit-any
    let got = 0;
    await Promise.race([(async () => {
      for await (const c of stream) for (const x of Array.isArray(c) ? c : [c]) if ((got += x.length) >= msg.length) return;
    })(), Bun.sleep(1000)]);
    st.push(performance.now() - t0);
  }
  results["node:quic"] = { streamP50Ms: percentile(st, 50), streamP99Ms: percentile(st, 99), datagramP50Ms: percentile(d, 50) };
  s.destroy?.();
  ep.destroy?.();
} catch (err) {
  console.log(JSON.stringify({ case: "node:quic", error: (err as Error).message }));
}

const base = results.tls!.streamP50Ms;
for (const [name, r] of Object.entries(results))
  console.log(JSON.stringify({
    case: "control round trip", transport: name, rounds, streamP50Ms: r3(r.streamP50Ms), streamP99Ms: r3(r.streamP99Ms),
    ...(r.datagramP50Ms !== undefined ? { datagramP50Ms: r3(r.datagramP50Ms) } : {}), streamVsTls: r3(r.streamP50Ms / base), loadAvg1m: r3(loadavg()[0]!),
  }));
process.exit(0);
