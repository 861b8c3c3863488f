/**
 * The web console in a real headless Chromium against a running appliance (API + GameStream host
 * on 127.0.0.1): `console open` gives a one-time URL with the code after `#`; the page logs in,
 * drops the code from the address bar and sends the CSRF header on mutations; a Moonlight pairing
 * started by the spec client shows up live and the PIN typed in the page completes it; a wrong PIN,
 * a cancel and an expiry show their outcome in words; every page renders under the strict CSP,
 * is saved as a screenshot and has no serious axe-core violation.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { encodePng } from "../../src/gamestream/boxart.ts";
import type { Browser, Page } from "puppeteer-core";
import { startServer, type RunningServer } from "../../src/api/server.ts";
import { CONSOLE_CSP } from "../../src/console/routes.ts";
import { createCore, type Core } from "../../src/core.ts";
import { createLogger } from "../../src/log.ts";
import { GameStreamTestClient, makeClientIdentity, type ClientIdentity } from "../gamestream/client.ts";
import { freeBasePort } from "../gamestream/helpers.ts";
import { BUN, REPO_ROOT, tempDir, testConfig } from "../helpers/env.ts";
import { CHROMIUM, launchBrowser, screenshot, seriousViolations, until, watchPage } from "./browser.ts";

const PIN = "4821";
const PAGES = ["dashboard", "setup", "vms", "streaming", "apps", "updates", "migration", "audit"];
const NAV = ["Dashboard", "Setup", "VMs", "Streaming", "Apps", "Updates", "Migration", "Audit log"];

/** A free TCP port on 127.0.0.1 (the CLI finds the API by the port in its config). */
function freePort(): number {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const p = s.port;
  s.stop(true);
  return p;
}

async function cli(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  const proc = Bun.spawn([BUN, join(REPO_ROOT, "src", "main.ts"), ...args], { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root", ...env }, stdout: "pipe", stderr: "pipe" });
  const killer = setTimeout(() => proc.kill("SIGKILL"), 20_000);
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(killer);
  return { code, stdout, stderr };
}

describe.skipIf(!CHROMIUM)("the web console in headless Chromium (needs Debian's chromium)", () => {
  let dir: ReturnType<typeof tempDir>;
  let keys: ReturnType<typeof tempDir>;
  let core: Core;
  let server: RunningServer;
  let browser: Browser;
  let page: Page;
  let problems: string[];
  let id: ClientIdentity;
  let port: number;

  beforeAll(async () => {
    dir = tempDir("neuron-console-");
    keys = tempDir("neuron-console-keys-");
    port = freePort();
    const config = testConfig({ stateDir: dir.path, port, qmpDir: join(dir.path, "qmp"), spiceDir: join(dir.path, "spice"), gamestreamEnabled: true, gamestreamHost: "127.0.0.1", gamestreamPort: freeBasePort(), mdns: false, hostname: "neuron-test", pairingPinTimeoutMs: 8000, pairingAttemptsPerMinute: 100 });
    core = createCore(config, { logger: createLogger({ level: "error", format: "json", write: () => {} }) });
    server = await startServer(core);
    await core.gamestream().start();
    id = makeClientIdentity(keys.path);
    browser = await launchBrowser();
    page = await browser.newPage();
    await page.setViewport({ width: 1100, height: 800 });
    problems = watchPage(page);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await core?.gamestream().stop();
    await server?.stop();
    core?.close();
    dir?.cleanup();
    keys?.cleanup();
  });

  const client = (name: string) => new GameStreamTestClient("127.0.0.1", core.gamestream().ports.http, core.gamestream().ports.https, id, "0123456789ABCDEF", name);

  test("console open prints a one-time URL, the code after #; the page logs in and forgets the code", async () => {
    const r = await cli(["console", "open", "--state-dir", dir.path, "--json"], { NEURON_PORT: String(port), NEURON_STATE_DIR: dir.path });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const { url, scope } = JSON.parse(r.stdout) as { url: string; scope: string };
    expect(scope).toBe("admin");
    expect(url).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${port}/console/#code=[A-Za-z0-9_-]{20,}$`));
    expect(new URL(url).search).toBe("");

    const res = await page.goto(url, { timeout: 15_000 });
    expect(res!.headers()["content-security-policy"]).toBe(CONSOLE_CSP);
    await until(page, `document.querySelectorAll("nav a").length === ${NAV.length}`);
    expect(await page.$$eval("nav a", (as) => as.map((a) => a.textContent))).toEqual(NAV);
    // the code left the address bar and the history entry
    expect(page.url()).not.toContain("code=");
    const cookies = await browser.cookies();
    expect(cookies.find((c) => c.name === "neuron_session")).toMatchObject({ httpOnly: true, sameSite: "Strict" });
    // a used code does not work twice
    const again = await browser.newPage();
    await again.goto(url, { timeout: 15_000 });
    await until(again, `document.querySelector("main.login") !== null`);
    expect(await again.$eval("main.login", (m) => m.textContent)).toContain("did not work");
    await again.close();
    // the live connection is up
    await until(page, `document.querySelector(".live")?.textContent === "live"`);
  }, 40_000);

  test("a pairing started by a Moonlight client pops up live; the PIN typed in the page completes it", async () => {
    await page.goto(`${server.url}/console/#/streaming`);
    await until(page, `document.querySelector("main h1")?.textContent === "Streaming"`);
    const result = await client("Living room TV").pair(PIN, async () => {
      await until(page, `document.querySelector("input.pin") !== null`);
      const text = await page.$eval(".pair-card", (c) => c.textContent ?? "");
      expect(text).toContain("Living room TV wants to pair");
      expect(text).toMatch(/\d+ s left/);
      await page.type("input.pin", PIN);
      await page.click(".pair-card button[type=submit]");
    });
    expect(result.ok).toBe(true);
    await until(page, `document.querySelector(".outcome.ok")?.textContent?.startsWith("Paired") === true`);
    expect(core.gamestream().listPairings().map((p) => p.name)).toEqual(["Living room TV"]);
    // the paired-clients list reloaded from the event, no polling
    await until(page, `[...document.querySelectorAll("td")].some((t) => t.textContent === "Living room TV")`);
    // the audit log names the browser session
    const pin = core.auth.audit({ limit: 50 }).find((a) => a.target === "POST /api/v1/pairing/pin" || (a.action === "api.call" && String(a.target).includes("/pairing/pin")));
    expect(pin?.actor).toMatch(/^session /);
  }, 40_000);

  test("a wrong PIN shows its reason; nothing is stored", async () => {
    const before = core.gamestream().listPairings().length;
    const result = await client("Phone").pair(
      PIN,
      async () => {
        await until(page, `[...document.querySelectorAll(".pair-card h2")].some((h) => h.textContent === "Phone wants to pair")`);
        await page.type("input.pin", "1111");
        await page.click(".pair-card button[type=submit]");
      },
      { checkHostHash: true },
    );
    expect(result.ok).toBe(false);
    await until(page, `document.querySelector(".outcome.fail")?.textContent?.startsWith("Wrong PIN") === true`);
    expect(await page.$eval(".outcome.fail", (e) => e.textContent)).toContain("is not the one Phone shows");
    expect(core.gamestream().listPairings()).toHaveLength(before);
  }, 40_000);

  test("cancel ends a waiting pairing at once: the client is answered, the page says cancelled", async () => {
    const result = await client("Tablet").pair(PIN, async () => {
      await until(page, `[...document.querySelectorAll(".pair-card h2")].some((h) => h.textContent === "Tablet wants to pair")`);
      await page.click(".pair-card button.danger");
    });
    expect(result).toMatchObject({ ok: false, phase: 1 });
    await until(page, `[...document.querySelectorAll(".outcome")].some((o) => o.textContent?.startsWith("Cancelled: the pairing with Tablet"))`);
    expect(core.gamestream().pendingPairings()).toEqual([]);
  }, 40_000);

  test("outcomes do not stack up: past three they fold; a success fades by itself; a failure says what to do until dismissed", async () => {
    // a fresh page: the failures of the tests before stay until dismissed
    await page.goto(`${server.url}/console/#/dashboard`);
    await page.reload();
    await until(page, `document.querySelector("main h1")?.textContent === "Dashboard" && document.querySelector(".outcome") === null`);
    await Bun.sleep(300); // the event stream connects
    const bus = core.events!;
    const outcome = (attemptId: string, outcome: string, deviceName: string) => bus.publish("pairing.outcome", { attemptId, outcome, address: "127.0.0.1", deviceName, detail: "" });
    outcome("a1", "wrong-pin", "Deck");
    outcome("a2", "expired", "Laptop");
    outcome("a3", "wrong-pin", "Phone 3");
    outcome("a4", "paired", "Tablet 2");
    outcome("a5", "expired", "TV");
    await until(page, `document.querySelectorAll(".outcomes > .outcome").length === 3 && document.querySelector("details.earlier summary")?.textContent === "2 earlier outcomes"`);
    // newest first; a failure is what happened and what to do
    const first = await page.$eval(".outcomes > .outcome", (e) => ({ what: e.querySelector(".what")?.textContent, todo: e.querySelector(".todo")?.textContent, role: e.getAttribute("role") }));
    expect(first).toEqual({ what: "Expired: no PIN was entered in time for TV.", todo: "What to do: Start the pairing again on the client.", role: "alert" });
    await screenshot(page, "outcomes-folded");
    expect((await seriousViolations(page)).map((v) => v.id)).toEqual([]);
    // the success fades and is gone without a click; the failures stay
    await until(page, `![...document.querySelectorAll(".outcome")].some((o) => o.textContent?.startsWith("Paired: Tablet 2"))`, 12_000);
    expect(await page.$$eval(".outcome", (l) => l.length)).toBe(4);
    // dismissing takes one away; the folded ones move up
    await page.click(".outcomes > .outcome .btn");
    await until(page, `document.querySelectorAll(".outcome").length === 3 && document.querySelector("details.earlier") === null`);
    for (let i = 0; i < 3; i++) await page.click(".outcomes > .outcome .btn");
    await until(page, `document.querySelector(".outcomes") === null`);
    expect(problems).toEqual([]);
  }, 30_000);

  test("mutations without the CSRF header are refused; the page's own carry it", async () => {
    const status = await page.evaluate(async () => (await fetch("/api/v1/apps", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: "no csrf", kind: "desktop" }) })).status);
    expect(status).toBe(403);
    expect(core.apps.list().some((a) => a.name === "no csrf")).toBe(false);
  });

  test("a live session is charted from session.stats; its bitrate changes live from the page; End session asks, then ends it", async () => {
    const gs = core.gamestream();
    const fp = core.gamestream().listPairings()[0]!.fingerprint;
    const s = gs.sessions.start({ appId: 1, appName: "Desktop", vmName: null, width: 1280, height: 720, fps: 60, riKey: crypto.getRandomValues(new Uint8Array(16)), riKeyId: 1, localAudioPlayMode: 0, surroundAudioInfo: 0x30002, remoteControllersBitmap: 0, gcmap: 0, hdr: false, encryptedRtsp: true, clientFingerprint: fp, clientName: "Living room TV" });
    gs.sessions.markPlaying(s);
    await page.goto(`${server.url}/console/#/streaming`);
    await until(page, `document.querySelector("[data-session] .spark-value")?.textContent !== "—" && document.querySelectorAll("[data-session] canvas").length === 5`, 10_000);
    expect(await page.$eval("[data-session] .facts", (e) => e.textContent ?? "")).toContain("mode 1280x720@60");
    // the bitrate, changed live: a bad value is refused in the page, a good one reaches the encoder
    await until(page, `document.querySelector("[data-session] input.bitrate")?.placeholder === "20000"`, 10_000);
    await page.type("[data-session] input.bitrate", "100");
    await page.click("[data-session] .bitrate-form button[type=submit]");
    await until(page, `document.querySelector("[data-session] .bitrate-form .note")?.textContent?.includes("500 to 500000") === true`);
    expect(gs.sessionInfo(s.id).bitrateKbps).toBe(20000);
    await page.$eval("[data-session] input.bitrate", (e) => ((e as unknown as { value: string }).value = ""));
    await page.type("[data-session] input.bitrate", "3000");
    await page.click("[data-session] .bitrate-form button[type=submit]");
    await until(page, `document.querySelector("[data-session] .bitrate-form .note")?.textContent === "Now 3000 kbit/s."`, 10_000);
    expect(gs.sessionInfo(s.id).bitrateKbps).toBe(3000);
    expect(core.events!.since(0).some((e) => e.type === "session.bitrate" && (e.data as { bitrateKbps: number }).bitrateKbps === 3000)).toBe(true);
    await until(page, `document.querySelector("[data-session] .facts")?.textContent?.includes("bitrate 3000 kbit/s") === true`, 10_000);
    await screenshot(page, "streaming-session");
    await page.click("[data-session] .btn.danger");
    await until(page, `document.querySelector("dialog.confirm[open]") !== null`);
    await page.click("dialog.confirm .btn.danger");
    await until(page, `document.querySelector("[data-session]") === null && document.querySelector(".ended")?.textContent?.includes("ended-by-api") === true`, 10_000);
    expect(gs.sessions.size).toBe(0);
  }, 30_000);

  test("box art uploaded in the Apps page becomes the app's image", async () => {
    const png = join(dir.path, "art.png");
    writeFileSync(png, encodePng(30, 40, new Uint8Array(30 * 40 * 3).fill(90)));
    await page.goto(`${server.url}/console/#/apps`);
    await until(page, `document.querySelector("input[type=file]") !== null`);
    const input = await page.$("input[type=file]");
    await (input as unknown as { uploadFile(p: string): Promise<void> }).uploadFile(png);
    await until(page, `[...document.querySelectorAll(".boxart")].some((b) => b.textContent?.startsWith("custom"))`);
    const desktop = core.apps.list().find((a) => a.name === "Desktop")!;
    expect(desktop.boxArtPath).toBe(join(dir.path, "boxart", `app-${desktop.id}.png`));
  });

  test("every page renders under the CSP, is saved as a screenshot, and has no serious axe violation", async () => {
    const report: Record<string, string[]> = {};
    for (const [i, p] of PAGES.entries()) {
      await page.goto(`${server.url}/console/#/${p}`);
      await until(page, `document.querySelector("main h1")?.textContent === ${JSON.stringify(NAV[i])} && document.querySelector(".page-body[aria-busy=true]") === null`, 20_000);
      await screenshot(page, p);
      report[p] = (await seriousViolations(page)).map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`);
    }
    // and the pairing panel, on a phone-sized screen
    await page.setViewport({ width: 390, height: 844, isMobile: true, hasTouch: true });
    const waiting = client("Phone 2").pair(PIN, async () => {
      await until(page, `document.querySelector("input.pin") !== null`);
      await screenshot(page, "pairing-phone");
      report["pairing-phone"] = (await seriousViolations(page)).map((v) => `${v.id}: ${v.help}`);
      await page.type("input.pin", PIN);
      await page.click(".pair-card button[type=submit]");
    });
    expect((await waiting).ok).toBe(true);
    await page.setViewport({ width: 1100, height: 800 });
    expect(report).toEqual(Object.fromEntries(Object.keys(report).map((k) => [k, []])));
    expect(problems).toEqual([]);
  }, 120_000);
});
