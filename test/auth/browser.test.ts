/**
 * A hostile web page in a real headless Chromium against a running appliance:
 * cross-site form posts (urlencoded, multipart, the text/plain JSON trick),
 * no-cors fetches, a CORS DELETE, and a DNS-rebinding page whose own origin is
 * the API's port under another name (Chromium's host resolver maps the name
 * to 127.0.0.1; the document itself is served by interception, as the
 * attacker's server would have served it before the name was rebound).
 * Nothing may change: database, VFIO target tree, audit log.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startServer, type RunningServer } from "../../src/api/server.ts";
import { createCore, type Core } from "../../src/core.ts";
import { createLogger } from "../../src/log.ts";
import { tempDir, testConfig } from "../helpers/env.ts";

const CHROMIUM = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => existsSync(p));
const REBIND_HOST = "rebind.test";

let dir: ReturnType<typeof tempDir>;
let core: Core;
let server: RunningServer;
let hostile: ReturnType<typeof Bun.serve>;
const logLines: string[] = [];

function hostilePage(api: string, report: string): string {
  // Each form posts into its own iframe so all of them go out.
  const forms = [
    { path: "/api/v1/pairing/pin", enctype: "application/x-www-form-urlencoded", fields: { pin: "1234" } },
    { path: "/api/v1/apps", enctype: "application/x-www-form-urlencoded", fields: { name: "Form app", kind: "desktop" } },
    { path: "/api/v1/vfio/apply", enctype: "multipart/form-data", fields: { gpu: "0000:01:00.0" } },
    { path: "/api/v1/vms", enctype: "multipart/form-data", fields: { name: "evil", template: "linux" } },
    // the text/plain trick: the body reads as JSON: {"name":"Plain app","kind":"desktop","x":"="}
    { path: "/api/v1/apps", enctype: "text/plain", fields: { '{"name":"Plain app","kind":"desktop","x":"': '"}' } },
  ];
  const html = forms
    .map(
      (f, i) =>
        `<iframe name="f${i}"></iframe><form id="form${i}" target="f${i}" method="POST" enctype="${f.enctype}" action="${api}${f.path}">` +
        Object.entries(f.fields)
          .map(([k, v]) => `<input type="hidden" name='${k.replaceAll("'", "&#39;")}' value='${v.replaceAll("'", "&#39;")}'>`)
          .join("") +
        `</form>`,
    )
    .join("\n");
  return `<!doctype html><html><body>${html}<script>
    const results = [];
    for (let i = 0; i < ${forms.length}; i++) document.getElementById("form" + i).submit();
    (async () => {
      const tries = [
        ["POST", "/api/v1/apps", '{"name":"no-cors app","kind":"desktop"}', "no-cors", "text/plain"],
        ["POST", "/api/v1/pairing/pin", '{"pin":"1234"}', "no-cors", "text/plain"],
        ["POST", "/api/v1/tokens", '{"name":"stolen","scope":"admin"}', "no-cors", "application/x-www-form-urlencoded"],
        ["POST", "/api/v1/vfio/apply", '{"gpu":"0000:01:00.0"}', "no-cors", "text/plain"],
        ["DELETE", "/api/v1/pairings/1", null, "cors", null],
        ["POST", "/api/v1/apps", '{"name":"cors app","kind":"desktop"}', "cors", "application/json"],
      ];
      for (const [method, path, body, mode, type] of tries) {
        try {
          const r = await fetch("${api}" + path, { method, mode, body, headers: type ? { "content-type": type } : {} });
          results.push({ path, mode, status: r.status, type: r.type });
        } catch (e) { results.push({ path, mode, error: String(e) }); }
      }
      await new Promise((r) => setTimeout(r, 500));
      await fetch("${report}", { method: "POST", body: JSON.stringify(results) });
      document.title = "done";
    })();
  </script></body></html>`;
}

function rebindPage(): string {
  // Same origin as the API (rebind.test:<api port>): the browser lets it read every answer.
  return `<!doctype html><html><body><script>
    (async () => {
      const results = [];
      const tries = [
        ["GET", "/api/v1/apps", null],
        ["GET", "/api/v1/system", null],
        ["POST", "/api/v1/apps", '{"name":"rebound app","kind":"desktop"}'],
        ["POST", "/api/v1/vfio/apply", '{"gpu":"0000:01:00.0"}'],
        ["POST", "/api/v1/tokens", '{"name":"rebound","scope":"admin"}'],
        ["DELETE", "/api/v1/pairings/1", null],
      ];
      for (const [method, path, body] of tries) {
        try {
          const r = await fetch(path, { method, body, headers: body ? { "content-type": "application/json" } : {} });
          let code = null;
          try { code = (await r.json()).error?.code ?? null; } catch {}
          results.push({ method, path, status: r.status, code });
        } catch (e) { results.push({ method, path, error: String(e) }); }
      }
      document.title = JSON.stringify(results);
    })();
  </script></body></html>`;
}

function state() {
  return {
    apps: core.apps.list().map((a) => a.name),
    tokens: core.auth.listTokens().map((t) => t.name),
    audit: core.auth.audit({ limit: 1000 }).length,
    target: readdirSync(core.config.targetRoot, { recursive: true }).sort(),
  };
}

describe.skipIf(!CHROMIUM)("a hostile page in headless Chromium (needs Debian's chromium)", () => {
  let reports: unknown[][] = [];
  beforeAll(async () => {
    dir = tempDir("neuron-browser-");
    const config = testConfig({ stateDir: dir.path, port: 0, targetRoot: join(dir.path, "target"), qmpDir: join(dir.path, "qmp"), gamestreamEnabled: false });
    mkdirSync(join(dir.path, "target", "etc", "modprobe.d"), { recursive: true });
    writeFileSync(join(dir.path, "target", "etc", "default-grub"), 'GRUB_CMDLINE_LINUX_DEFAULT="quiet"\n');
    core = createCore(config, { logger: createLogger({ level: "warn", format: "json", write: (l) => logLines.push(l) }) });
    server = await startServer(core);
    hostile = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      async fetch(req) {
        const url = new URL(req.url);
        if (url.pathname === "/report") {
          reports.push((await req.json()) as unknown[]);
          return new Response("ok");
        }
        return new Response(hostilePage(server.url, `http://127.0.0.1:${hostile.port}/report`), { headers: { "content-type": "text/html" } });
      },
    });
  });
  afterAll(async () => {
    hostile?.stop(true);
    await server?.stop();
    core?.close();
    dir?.cleanup();
  });

  test("forms, no-cors fetches and a rebound name change nothing", async () => {
    const puppeteer = (await import("puppeteer-core")).default;
    const before = state();
    const browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      timeout: 30_000,
      args: [
        "--no-sandbox",
        `--host-resolver-rules=MAP ${REBIND_HOST} 127.0.0.1`,
        // the strongest attacker: a browser without private/local network access checks
        "--disable-features=PrivateNetworkAccessSendPreflights,PrivateNetworkAccessRespectPreflightResults,BlockInsecurePrivateNetworkRequests,LocalNetworkAccessChecks",
      ],
    });
    try {
      const page = await browser.newPage();
      await page.goto(`http://127.0.0.1:${hostile.port}/`, { timeout: 20_000 });
      await page.waitForFunction(() => (globalThis as unknown as { document: { title: string } }).document.title === "done", { timeout: 20_000 });

      const rebound = await browser.newPage();
      await rebound.setRequestInterception(true);
      const docUrl = `http://${REBIND_HOST}:${server.port}/`;
      rebound.on("request", (r) => {
        if (r.url() === docUrl) void r.respond({ status: 200, contentType: "text/html", body: rebindPage() });
        else void r.continue();
      });
      await rebound.goto(docUrl, { timeout: 20_000 });
      await rebound.waitForFunction(() => (globalThis as unknown as { document: { title: string } }).document.title.startsWith("["), { timeout: 20_000 });
      const results = JSON.parse(await rebound.title()) as { method: string; path: string; status?: number; code?: string; error?: string }[];
      // every rebound request reached the appliance and was refused on its Host, reads included
      expect(results).toHaveLength(6);
      for (const r of results) expect({ ...r, status: r.status, code: r.code }).toEqual({ ...r, status: 403, code: "HOST_NOT_ALLOWED" });
    } finally {
      await browser.close();
    }
    if (process.env.SHOW_REPORTS) console.log(JSON.stringify(reports), JSON.stringify(logLines.map((l) => [JSON.parse(l).path, JSON.parse(l).code])));
    expect(reports).toHaveLength(1);
    const after = state();
    expect(after).toEqual(before);
    // the cross-site requests did arrive, and were refused for their Origin before any handler ran
    const refused = logLines.map((l) => JSON.parse(l) as { msg: string; path?: string; code?: string }).filter((l) => l.msg === "API request refused");
    const originRefusals = refused.filter((l) => l.code === "ORIGIN_NOT_ALLOWED").map((l) => l.path);
    for (const path of ["/api/v1/pairing/pin", "/api/v1/apps", "/api/v1/vfio/apply", "/api/v1/vms", "/api/v1/tokens"]) expect(originRefusals).toContain(path);
    expect(refused.filter((l) => l.code === "HOST_NOT_ALLOWED").length).toBeGreaterThanOrEqual(6);
  }, 90_000);
});
