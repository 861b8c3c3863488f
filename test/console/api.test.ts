/**
 * The console's server side without a browser: its page and assets (public, strict CSP, embedded),
 * the event stream (Last-Event-ID catch-up, type filter, reset when too much was missed, only for
 * an authenticated caller), cancelling a pending pairing (bad input refused, nothing changes) and
 * `console open`'s usage errors.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createApp } from "../../src/api/app.ts";
import { encodePng, loadBoxArt } from "../../src/gamestream/boxart.ts";
import { CONSOLE_CSP } from "../../src/console/routes.ts";
import { EventBus } from "../../src/events/bus.ts";
import { eventStream } from "../../src/events/routes.ts";
import { apiBaseUrl } from "../../src/cli/console.ts";
import { consoleLoginUrl } from "../../src/console/url.ts";
import { asRoot, overTcp } from "../helpers/api.ts";
import { runCli, testCore } from "../helpers/env.ts";
import { freeBasePort } from "../gamestream/helpers.ts";

/** Reads SSE text from a response until `want` frames with data arrived (bounded). */
async function frames(res: Response, want: number, timeoutMs = 3000): Promise<{ text: string; data: { id: number | null; type: string; data: unknown }[] }> {
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  let text = "";
  const deadline = Date.now() + timeoutMs;
  while ((text.match(/^data: /gm) ?? []).length < want && Date.now() < deadline) {
    const r = await Promise.race([reader.read(), Bun.sleep(Math.max(1, deadline - Date.now())).then(() => null)]);
    if (!r || r.done) break;
    text += dec.decode(r.value, { stream: true });
  }
  void reader.cancel().catch(() => undefined);
  return { text, data: [...text.matchAll(/^data: (.*)$/gm)].map((m) => JSON.parse(m[1]!)) };
}

describe("console page and assets", () => {
  let env: ReturnType<typeof testCore>;
  let app: ReturnType<typeof createApp>;
  beforeAll(() => {
    env = testCore({ gamestreamEnabled: false });
    app = createApp(env.core);
  });
  afterAll(() => env.cleanup());

  test("the page and its assets answer without credentials, with the strict CSP; the assets are immutable", async () => {
    const page = await app.handle(overTcp(new Request("http://localhost/console/")));
    expect(page.status).toBe(200);
    expect(page.headers.get("content-security-policy")).toBe(CONSOLE_CSP);
    expect(CONSOLE_CSP).toContain("script-src 'self'");
    expect(CONSOLE_CSP).not.toContain("unsafe");
    expect(page.headers.get("x-frame-options")).toBe("DENY");
    expect(page.headers.get("cache-control")).toBe("no-store");
    const html = await page.text();
    const js = /src="(\/console\/app\.[0-9a-f]{12}\.js)"/.exec(html)?.[1];
    const css = /href="(\/console\/app\.[0-9a-f]{12}\.css)"/.exec(html)?.[1];
    expect(js).toBeDefined();
    expect(html).not.toMatch(/<script>|style=/);
    for (const [path, type] of [[js!, "text/javascript"], [css!, "text/css"]] as const) {
      const r = await app.handle(overTcp(new Request(`http://localhost${path}`)));
      expect(r.status).toBe(200);
      expect(r.headers.get("content-type")).toStartWith(type);
      expect(r.headers.get("cache-control")).toContain("immutable");
      expect((await r.text()).length).toBeGreaterThan(500);
    }
    const root = await app.handle(overTcp(new Request("http://localhost/")));
    expect([root.status, root.headers.get("location")]).toEqual([302, "/console/"]);
    // an unknown asset and a foreign Host are refused
    expect((await app.handle(overTcp(new Request("http://localhost/console/app.000000000000.js")))).status).toBe(404);
    expect((await app.handle(overTcp(new Request("http://evil.example/console/")))).status).toBe(403);
  });

  test("the event stream needs credentials", async () => {
    const r = await app.handle(overTcp(new Request("http://localhost/api/v1/events")));
    expect(r.status).toBe(401);
  });

  test("Last-Event-ID catches up on what was missed, then live events follow; ?types filters", async () => {
    const bus = env.core.events;
    const first = bus.publish("vm.state", { name: "a", state: "running" });
    bus.publish("pairing.request", { attemptId: "x" });
    bus.publish("vm.state", { name: "a", state: "shut off" });
    const ac = new AbortController();
    const res = await app.handle(asRoot(new Request("http://localhost/api/v1/events?types=vm.", { headers: { "last-event-id": String(first.id) }, signal: ac.signal })));
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toStartWith("text/event-stream");
    setTimeout(() => bus.publish("vm.state", { name: "b", state: "running" }), 50);
    const got = await frames(res, 2);
    ac.abort();
    expect(got.data.map((d) => d.data)).toEqual([
      { name: "a", state: "shut off" },
      { name: "b", state: "running" },
    ]);
    expect(got.text).toMatch(/^id: \d+\nevent: vm\.state\n/m);
    expect(got.text).toContain("retry: 2000");
  });

  test("as=message frames carry no event line (one onmessage hears every type); a bad query is refused", async () => {
    const ac = new AbortController();
    const before = env.core.events.lastId;
    env.core.events.publish("update.progress", { id: 1, type: "phase" });
    const res = await app.handle(asRoot(new Request(`http://localhost/api/v1/events?as=message&lastEventId=${before}`, { signal: ac.signal })));
    const got = await frames(res, 1);
    ac.abort();
    expect(got.text).not.toContain("event:");
    expect(got.data[0]).toMatchObject({ type: "update.progress", data: { id: 1 } });
    expect((await app.handle(asRoot(new Request("http://localhost/api/v1/events?types=%3Cscript%3E")))).status).toBe(422);
  });

  test("an id older than what the bus keeps gets a reset first; the subscription ends with the reader or the request", async () => {
    const bus = new EventBus(4);
    for (let i = 0; i < 10; i++) bus.publish("vm.state", { i });
    const ac = new AbortController();
    const got = await frames(eventStream(bus, { lastId: 2, prefixes: [], signal: ac.signal }), 5);
    expect(got.text).toContain("event: reset");
    expect(got.data.slice(1).map((d) => (d.data as { i: number }).i)).toEqual([6, 7, 8, 9]);
    // the reader went away: the subscription is gone
    expect(bus.subscriberCount).toBe(0);
    // and a request that ends (abort) unsubscribes too
    const ac2 = new AbortController();
    eventStream(bus, { lastId: null, prefixes: [], signal: ac2.signal });
    expect(bus.subscriberCount).toBe(1);
    ac2.abort();
    expect(bus.subscriberCount).toBe(0);
    ac.abort();
  });
});

describe("box art upload", () => {
  let env: ReturnType<typeof testCore>;
  let app: ReturnType<typeof createApp>;
  beforeAll(() => {
    env = testCore({ gamestreamEnabled: false });
    app = createApp(env.core);
  });
  afterAll(() => env.cleanup());
  const put = (id: number, body: unknown) => app.handle(asRoot(new Request(`http://localhost/api/v1/apps/${id}/boxart`, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })));

  test("a PNG is stored and becomes the app's box art; anything else is refused and changes nothing", async () => {
    const desktop = env.core.apps.list()[0]!;
    expect(desktop.boxArtPath).toBeNull();
    expect((await put(desktop.id, { pngBase64: "not base64!" })).status).toBe(422);
    const jpeg = await put(desktop.id, { pngBase64: Buffer.from("\xff\xd8\xff\xe0 not a png at all").toString("base64") });
    expect(jpeg.status).toBe(422);
    expect(((await jpeg.json()) as { error: { message: string } }).error.message).toContain("PNG");
    expect(env.core.apps.get(desktop.id).boxArtPath).toBeNull();
    expect((await put(99999, { pngBase64: Buffer.from(encodePng(2, 2, new Uint8Array(12))).toString("base64") })).status).toBe(404);
    const png = encodePng(4, 3, new Uint8Array(36).fill(200));
    const ok = await put(desktop.id, { pngBase64: Buffer.from(png).toString("base64") });
    expect(ok.status).toBe(200);
    const path = ((await ok.json()) as { boxArtPath: string }).boxArtPath;
    expect(path).toBe(join(env.core.config.stateDir, "boxart", `app-${desktop.id}.png`));
    expect(Buffer.from(readFileSync(path)).equals(Buffer.from(png))).toBe(true);
    expect(loadBoxArt(path).source).toBe("app");
  });
});

describe("cancelling a pending pairing", () => {
  let env: ReturnType<typeof testCore>;
  let app: ReturnType<typeof createApp>;
  beforeAll(() => {
    env = testCore({ gamestreamEnabled: true, gamestreamHost: "127.0.0.1", gamestreamPort: freeBasePort(), mdns: false, hostname: "neuron-test" });
    app = createApp(env.core);
  });
  afterAll(() => env.cleanup());

  test("a malformed id is 422, an unknown one 404; nothing is audited as cancelled", async () => {
    const bad = await app.handle(asRoot(new Request("http://localhost/api/v1/pairing/pending/not-a-uuid", { method: "DELETE" })));
    expect(bad.status).toBe(422);
    const unknown = await app.handle(asRoot(new Request(`http://localhost/api/v1/pairing/pending/${crypto.randomUUID()}`, { method: "DELETE" })));
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: { code: string } }).error.code).toBe("PAIRING_NOT_PENDING");
    expect(env.core.auth.audit({ limit: 100, action: "gamestream.pairing.cancelled" })).toEqual([]);
  });
});

describe("a stream session's bitrate", () => {
  let env: ReturnType<typeof testCore>;
  let app: ReturnType<typeof createApp>;
  beforeAll(() => {
    env = testCore({ gamestreamEnabled: true, gamestreamHost: "127.0.0.1", gamestreamPort: freeBasePort(), mdns: false, hostname: "neuron-test" });
    app = createApp(env.core);
  });
  afterAll(() => env.cleanup());
  const patch = (id: string, body: unknown) => app.handle(asRoot(new Request(`http://localhost/api/v1/sessions/${id}`, { method: "PATCH", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })));

  test("out of range, malformed or unknown is refused; a session without video is 409; nothing changes", async () => {
    const gs = env.core.gamestream();
    const s = gs.sessions.start({ appId: 1, appName: "Desktop", vmName: null, width: 640, height: 360, fps: 30, riKey: new Uint8Array(16), riKeyId: 1, localAudioPlayMode: 0, surroundAudioInfo: 0x30002, remoteControllersBitmap: 0, gcmap: 0, hdr: false, encryptedRtsp: true, clientFingerprint: "f" });
    for (const body of [{ bitrateKbps: 100 }, { bitrateKbps: 600_000 }, { bitrateKbps: 1500.5 }, { bitrateKbps: "2000" }, {}, { bitrateKbps: 2000, fps: 10 }]) expect((await patch(s.id, body)).status).toBe(422);
    expect((await patch("not-a-uuid", { bitrateKbps: 2000 })).status).toBe(422);
    expect((await patch(crypto.randomUUID(), { bitrateKbps: 2000 })).status).toBe(404);
    // launched, not playing: no encoder runs yet
    const early = await patch(s.id, { bitrateKbps: 2000 });
    expect(early.status).toBe(409);
    expect(((await early.json()) as { error: { code: string } }).error.code).toBe("SESSION_NO_VIDEO");
    expect(gs.sessionInfo(s.id).bitrateKbps).toBeNull();
    gs.endSession(s.id);
  });

  test("through the auth layer: no identity 401, a read token 403, neither reaches the session", async () => {
    const gs = env.core.gamestream();
    const s = gs.sessions.start({ appId: 1, appName: "Desktop", vmName: null, width: 640, height: 360, fps: 30, riKey: new Uint8Array(16), riKeyId: 1, localAudioPlayMode: 0, surroundAudioInfo: 0x30002, remoteControllersBitmap: 0, gcmap: 0, hdr: false, encryptedRtsp: true, clientFingerprint: "f" });
    const reader = env.core.auth.createToken("bitrate-reader", "read", "test").token;
    const tcp = (headers: Record<string, string>) =>
      app.handle(overTcp(new Request(`http://localhost/api/v1/sessions/${s.id}`, { method: "PATCH", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify({ bitrateKbps: 2000 }) })));
    expect((await tcp({})).status).toBe(401);
    expect((await tcp({ authorization: `Bearer ${reader}` })).status).toBe(403);
    expect(gs.sessionInfo(s.id).bitrateKbps).toBeNull();
    gs.endSession(s.id);
  });
});

describe("console open", () => {
  test("the login URL carries the code in the fragment, never the query", () => {
    const url = consoleLoginUrl(apiBaseUrl({ host: "0.0.0.0", port: 8547 }), "abc_DEF-123");
    expect(url).toBe("http://127.0.0.1:8547/console/#code=abc_DEF-123");
    expect(apiBaseUrl({ host: "192.168.1.5", port: 8547 })).toBe("https://192.168.1.5:8547");
    expect(apiBaseUrl({ host: "::1", port: 9 })).toBe("http://[::1]:9");
  });

  test("usage errors exit 2 and say what is expected; no service is a clear error", () => {
    expect(runCli(["console"])).toMatchObject({ code: 2, stderr: expect.stringContaining("console: give open") });
    expect(runCli(["console", "shut"])).toMatchObject({ code: 2, stderr: expect.stringContaining('unknown subcommand "shut"') });
    const r = runCli(["console", "open", "--state-dir", "/nonexistent-neuron-state"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("the appliance service is not running");
  });
});
