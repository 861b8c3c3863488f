/**
 * The web console's speed in headless Chromium on loopback (prints figures, asserts nothing):
 *
 *   - first contentful paint of the console (logged in, the Dashboard) against the best
 *     baseline the same browser reaches in the same run: a one-line static page from Bun.serve;
 *   - the delay from a Moonlight client's pairing request (the host publishing pairing.request)
 *     to the PIN entry being visible in the page, p50 and p90, against the delay to the event
 *     merely arriving in the page (a bare EventSource on the same stream).
 *
 *   npm run bench:console     (BENCH_ROUNDS=10 BENCH_PAIRINGS=20)
 */
import { join } from "node:path";
import { startServer } from "../../src/api/server.ts";
import { consoleLoginUrl } from "../../src/console/url.ts";
import { createCore } from "../../src/core.ts";
import { createLogger } from "../../src/log.ts";
import { launchBrowser, CHROMIUM } from "../console/browser.ts";
import { GameStreamTestClient, makeClientIdentity } from "../gamestream/client.ts";
import { freeBasePort } from "../gamestream/helpers.ts";
import { tempDir, testConfig } from "../helpers/env.ts";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 10);
const PAIRINGS = Number(process.env.BENCH_PAIRINGS ?? 20);
if (!CHROMIUM) {
  console.log("bench:console: skipped (needs Debian's chromium)");
  process.exit(0);
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
const dir = tempDir("neuron-bench-console-");
const keys = tempDir("neuron-bench-console-keys-");
const config = testConfig({ stateDir: dir.path, port: 0, qmpDir: join(dir.path, "qmp"), gamestreamEnabled: true, gamestreamHost: "127.0.0.1", gamestreamPort: freeBasePort(), mdns: false, hostname: "neuron-bench", pairingAttemptsPerMinute: 1000, pairingPinTimeoutMs: 10_000 });
const core = createCore(config, { logger: createLogger({ level: "error", format: "json", write: () => {} }) });
const server = await startServer(core);
await core.gamestream().start();
const bare = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("<!doctype html><title>b</title><p>baseline</p>", { headers: { "content-type": "text/html" } }) });
const browser = await launchBrowser();

try {
  const page = await browser.newPage();
  await page.goto(consoleLoginUrl(server.url, core.auth.createLoginCode("admin", "bench").code));
  await page.waitForSelector("nav a", { timeout: 15_000 });
  const fcp = async (url: string) => {
    const p = await browser.newPage();
    await p.goto(url, { waitUntil: "load" });
    const v = await p.waitForFunction(`performance.getEntriesByName("first-contentful-paint")[0]?.startTime`, { timeout: 10_000, polling: 20 });
    const ms = (await v.jsonValue()) as number;
    await p.close();
    return ms;
  };
  const consoleFcp: number[] = [];
  const bareFcp: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    bareFcp.push(await fcp(`http://127.0.0.1:${bare.port}/`));
    consoleFcp.push(await fcp(`${server.url}/console/#/dashboard`));
  }

  // pairing request → PIN entry visible
  await page.goto(`${server.url}/console/#/streaming`);
  await page.waitForSelector("main h1", { timeout: 10_000 });
  // page-side probes (strings: they run in the page, not here)
  await page.evaluate(`
    window.__seen = []; window.__arrived = []; const names = new Set();
    const es = new EventSource("/api/v1/events?as=message&types=pairing.request");
    es.onmessage = () => window.__arrived.push(performance.timeOrigin + performance.now());
    new MutationObserver(() => {
      for (const c of document.querySelectorAll(".pair-card")) {
        const n = c.getAttribute("aria-label");
        if (!names.has(n)) { names.add(n); window.__seen.push(performance.timeOrigin + performance.now()); }
      }
    }).observe(document.getElementById("pairing-panel"), { childList: true, subtree: true });
  `);
  await Bun.sleep(300);
  const published: number[] = [];
  const off = core.events.subscribe((e) => {
    if (e.type === "pairing.request") published.push(performance.timeOrigin + performance.now());
  });
  const id = makeClientIdentity(keys.path);
  const gs = core.gamestream();
  for (let i = 0; i < PAIRINGS; i++) {
    const client = new GameStreamTestClient("127.0.0.1", gs.ports.http, gs.ports.https, id, "0123456789ABCDEF", `bench ${i}`);
    await client.pair("1234", async () => {
      await page.waitForFunction(`window.__seen.length >= ${i + 1}`, { timeout: 10_000, polling: 10 });
      const pending = gs.pendingPairings()[0];
      if (pending) gs.cancelPairing(pending.id);
    });
    // the card goes when the outcome arrives: wait for it, so the next request adds one again
    await page.waitForFunction(`document.querySelectorAll(".pair-card").length === 0`, { timeout: 10_000, polling: 10 });
  }
  off();
  const { seen, arrived } = (await page.evaluate(`({ seen: window.__seen, arrived: window.__arrived })`)) as { seen: number[]; arrived: number[] };
  const visible = published.map((t, i) => seen[i]! - t);
  const delivered = published.map((t, i) => arrived[i]! - t);

  const p50c = pct(consoleFcp, 50);
  const p50b = pct(bareFcp, 50);
  console.log(`console first contentful paint (loopback, ${ROUNDS} loads): p50 ${p50c.toFixed(1)} ms, best ${Math.min(...consoleFcp).toFixed(1)} ms`);
  console.log(`  baseline one-line static page: p50 ${p50b.toFixed(1)} ms, best ${Math.min(...bareFcp).toFixed(1)} ms → console/baseline ${(p50c / p50b).toFixed(2)}×`);
  console.log(`pairing request → PIN entry visible (${PAIRINGS} requests): p50 ${pct(visible, 50).toFixed(1)} ms, p90 ${pct(visible, 90).toFixed(1)} ms`);
  console.log(`  baseline event arrival in the page: p50 ${pct(delivered, 50).toFixed(1)} ms, p90 ${pct(delivered, 90).toFixed(1)} ms → visible/arrival ${(pct(visible, 50) / Math.max(0.1, pct(delivered, 50))).toFixed(2)}×`);
} finally {
  await browser.close();
  bare.stop(true);
  await core.gamestream().stop();
  await server.stop();
  core.close();
  dir.cleanup();
  keys.cleanup();
}
