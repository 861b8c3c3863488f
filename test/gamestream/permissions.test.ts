/**
 * Permissions per paired client, end to end with clients written from the spec: real PIN
 * pairing with real certificates, /launch over HTTPS, input over the real ENet control stream
 * into the counting backend (what a session without a VM uses). The first client has every
 * permission; the second may watch only: its launch is refused with an error root the client
 * shows, its keyboard, mouse and controller events are dropped and counted, until the owner
 * grants them through the management API; a revoke applies to the running session at once.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { Elysia } from "elysia";
import { enetAvailable } from "../../ffi/enet.ts";
import { errorHandler } from "../../src/api/errors.ts";
import { ControlType } from "../../src/gamestream/control/envelope.ts";
import { CountingInputBackend } from "../../src/gamestream/control/counting-input.ts";
import { Pairing } from "../../src/gamestream/model.ts";
import { GS_PERMISSIONS } from "../../src/gamestream/permissions.ts";
import { gameStreamRoutes } from "../../src/gamestream/routes.ts";
import { encodeInputEvent } from "../../src/input/encode.ts";
import type { InputEvent } from "../../src/input/model.ts";
import { silentLogger } from "../../src/log.ts";
import { tempDir } from "../helpers/env.ts";
import { GameStreamTestClient, makeClientIdentity } from "./client.ts";
import { ControlTestClient } from "./control-client.ts";
import { gameStreamHost } from "./helpers.ts";

const why = enetAvailable() ? null : "libenet.so.7 is not installed (apt-get install libenet-dev)";
if (why) console.warn(`skipping GameStream permission tests: ${why}`);

describe.skipIf(why !== null)("GameStream permissions per paired client", () => {
  const keys = tempDir("neuron-gs-perm-keys-");
  const backends = new Map<string, CountingInputBackend>();
  let host: ReturnType<typeof gameStreamHost>;
  let owner: GameStreamTestClient;
  let guest: GameStreamTestClient;
  let api: Elysia;
  const controls: ControlTestClient[] = [];

  const call = async (method: string, path: string, body?: unknown) => {
    const res = await api.handle(new Request(`http://localhost${path}`, { method, headers: body === undefined ? {} : { "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) }));
    return { status: res.status, body: (await res.json().catch(() => null)) as Record<string, unknown> | null };
  };

  async function pairAs(name: string): Promise<GameStreamTestClient> {
    const dir = join(keys.path, name);
    await Bun.write(join(dir, ".keep"), "");
    const c = new GameStreamTestClient("127.0.0.1", host.service.ports.http, host.service.ports.https, makeClientIdentity(dir), "0123456789ABCDEF", name);
    const r = await c.pair("4242", async () => {
      for (let i = 0; i < 400 && host.service.pendingPairings().length === 0; i++) await Bun.sleep(5);
      host.service.submitPin("4242");
    });
    expect(r.ok).toBe(true);
    return c;
  }

  const launchQuery = (rikey: string) => ({ appid: "1", mode: "1280x720x60", rikey, rikeyid: "9", localAudioPlayMode: "0", corever: "1" });

  async function streamAs(c: GameStreamTestClient, rikey: string) {
    const session = host.service.sessions.list().find((s) => s.clientName === c.deviceName)!;
    const control = new ControlTestClient(Uint8Array.from(Buffer.from(rikey, "hex")));
    controls.push(control);
    expect(await control.connect(host.service.ports.control, session.connectData)).toBe(true);
    await control.waitFor(() => backends.has(session.id) && (host.service.control.stats(session.id)?.input ?? null) !== null, 5000, "input backend ready");
    const send = (ev: InputEvent) => control.send(ControlType.INPUT, encodeInputEvent(ev), { channel: 2 });
    return { session, control, send, backend: backends.get(session.id)!, input: () => host.service.control.stats(session.id)?.input };
  }

  const key = (down: boolean): InputEvent => ({ kind: "key", down, vk: 0x41, keyCode: 0x41, modifiers: 0, flags: 0 });
  const move: InputEvent = { kind: "mouseMoveRel", dx: 3, dy: -2 };
  const pad: InputEvent = { kind: "controller", controllerNumber: 0, activeGamepadMask: 1, buttonFlags: 0x1000, leftTrigger: 0, rightTrigger: 0, leftStickX: 0, leftStickY: 0, rightStickX: 0, rightStickY: 0 };

  beforeAll(async () => {
    host = gameStreamHost({
      inputBackend: async (s) => {
        const b = new CountingInputBackend(silentLogger);
        backends.set(s.id, b);
        return b;
      },
    });
    await host.service.start();
    api = new Elysia().use(errorHandler(silentLogger)).use(gameStreamRoutes(() => host.service, true)) as unknown as Elysia;
    owner = await pairAs("owner-tv");
    guest = await pairAs("guest-phone");
  });
  afterAll(async () => {
    for (const c of controls) c.close();
    await host?.close();
    keys.cleanup();
  });

  test("the first client paired has every permission, the second view only (API and pairings list)", async () => {
    const list = await call("GET", "/pairings");
    expect(list.status).toBe(200);
    const rows = list.body as unknown as { name: string; permissions: string[] }[];
    expect(rows.map((p) => [p.name, p.permissions])).toEqual([
      ["owner-tv", [...GS_PERMISSIONS]],
      ["guest-phone", ["view"]],
    ]);
    for (const r of rows) expect(Pairing.safeParse(r).success).toBe(true);
    // the host's status (its response schema checked by the route) carries the HTTP refusal counters
    const status = await call("GET", "/gamestream");
    expect(status.status).toBe(200);
    expect(status.body!.httpRefused).toEqual({});
  });

  test("a view-only client may list apps but its launch is refused with a message the client shows", async () => {
    expect((await guest.httpsXml("/applist")).apps.length).toBeGreaterThan(0);
    const r = await guest.httpsXml("/launch", launchQuery("11".repeat(16)));
    expect(r.status).toBe(403);
    expect(r.message).toMatch(/lacks the launch permission; the owner of the host can grant it/);
    expect(r.fields.gamesession).toBe("0");
    expect(host.service.listSessions()).toEqual([]);
  });

  test("bad permission changes are refused and change nothing", async () => {
    const guestId = host.service.listPairings()[1]!.id;
    for (const body of [{ grant: ["root"] }, {}, { grant: [] }, { grant: ["launch"], revoke: ["launch"] }, { grant: "launch" }, { grant: ["launch"], extra: 1 }]) {
      const r = await call("POST", `/pairings/${guestId}/permissions`, body);
      expect(r.status).toBe(422);
      expect((r.body as { error: { code: string } }).error.code).toBeTruthy();
    }
    expect((await call("POST", "/pairings/999999/permissions", { grant: ["launch"] })).status).toBe(404);
    expect((await call("POST", "/pairings/abc/permissions", { grant: ["launch"] })).status).toBe(422);
    expect(host.service.listPairings()[1]!.permissions).toEqual(["view"]);
  });

  test("the owner's input goes through; the guest's keyboard, mouse and controller are dropped and counted until granted", async () => {
    expect((await owner.httpsXml("/launch", launchQuery("22".repeat(16)))).status).toBe(200);
    const o = await streamAs(owner, "22".repeat(16));
    o.send(key(true));
    o.send(key(false));
    o.send(move);
    o.send(pad);
    await o.control.waitFor(() => o.backend.stats().accepted === 4, 3000, "owner's 4 events delivered");
    expect(o.input()).toMatchObject({ events: 4, denied: {} });

    const guestId = host.service.listPairings()[1]!.id;
    const granted = await call("POST", `/pairings/${guestId}/permissions`, { grant: ["launch"] });
    expect(granted.status).toBe(200);
    expect(granted.body!.permissions).toEqual(["view", "launch"]);
    expect((await guest.httpsXml("/launch", launchQuery("33".repeat(16)))).status).toBe(200);
    const g = await streamAs(guest, "33".repeat(16));
    g.send(key(true));
    g.send(key(false));
    g.send(move);
    g.send(pad);
    await g.control.waitFor(() => g.input()?.events === 4, 3000, "guest's 4 events received");
    expect(g.input()!.denied).toEqual({ keyboard: 2, mouse: 1, controller: 1 });
    expect(g.backend.stats().accepted).toBe(0);

    // granted while streaming: applies to the next event
    expect((await call("POST", `/pairings/${guestId}/permissions`, { grant: ["keyboard"] })).body!.permissions).toEqual(["view", "keyboard", "launch"]);
    g.send(key(true));
    g.send(move);
    await g.control.waitFor(() => g.input()?.events === 6, 3000, "2 more events");
    expect(g.backend.byKind).toEqual({ key: 1 });
    expect(g.input()!.denied).toEqual({ keyboard: 2, mouse: 2, controller: 1 });
    // the API's session view carries the same counts
    expect(host.service.sessionInfo(g.session.id).control!.input!.denied).toEqual({ keyboard: 2, mouse: 2, controller: 1 });

    // revoked while streaming: what it holds is released (its key-up would be dropped), then dropped again at once
    expect(g.backend.releases).toBe(0);
    expect((await call("POST", `/pairings/${guestId}/permissions`, { revoke: ["keyboard", "launch"] })).body!.permissions).toEqual(["view"]);
    await g.control.waitFor(() => g.backend.releases === 1, 3000, "held input released");
    g.send(key(false));
    await g.control.waitFor(() => g.input()?.events === 7, 3000, "one more event");
    expect(g.backend.byKind).toEqual({ key: 1 });
    expect(g.input()!.denied.keyboard).toBe(3);

    // view is enough to resume its own session (watch); launch is refused again
    const resumed = await guest.httpsXml("/resume", { rikey: "44".repeat(16), rikeyid: "3", localAudioPlayMode: "0", corever: "1" });
    expect(resumed.fields.resume).toBe("1");
    expect((await guest.httpsXml("/launch", launchQuery("55".repeat(16)))).status).toBe(403);
    // without view the client is refused everything but serverinfo and unpair, and its running session ends
    expect(host.service.sessions.ofClient(g.session.clientFingerprint)).not.toBeNull();
    await call("POST", `/pairings/${guestId}/permissions`, { revoke: ["view"] });
    expect(host.service.sessions.ofClient(g.session.clientFingerprint)).toBeNull();
    expect(host.service.sessionHistory()[0]).toMatchObject({ reason: "ended-by-api", detail: "the client's view permission was revoked" });
    expect((await guest.httpsXml("/resume", { rikey: "44".repeat(16), rikeyid: "3", localAudioPlayMode: "0" })).status).toBe(403);
    expect((await guest.httpsXml("/applist")).status).toBe(403);
    expect((await guest.httpsXml("/serverinfo")).fields.PairStatus).toBe("1");

    // every change is in the audit log
    const audit = host.db.sqlite.query("SELECT actor, status, details FROM audit_log WHERE action = 'gamestream.pairing.permissions' ORDER BY id").all() as { actor: string; status: string; details: string }[];
    expect(audit.map((a) => JSON.parse(a.details).after)).toEqual([["view", "launch"], ["view", "keyboard", "launch"], ["view"], []]);
    // the bare controller has no auth layer in front of it: through the app, the caller's label stands here
    expect(audit.every((a) => a.actor === "anonymous" && a.status === "applied")).toBe(true);
  });

  test("unpairing a streaming client ends its session; its input is dropped from then on", async () => {
    const ownerSession = host.service.sessions.list().find((s) => s.clientName === "owner-tv")!;
    expect(ownerSession).toBeDefined();
    host.service.removePairing(host.service.listPairings().find((p) => p.name === "owner-tv")!.id);
    expect(host.service.sessions.get(ownerSession.id)).toBeNull();
    expect(host.service.sessionHistory()[0]).toMatchObject({ id: ownerSession.id, reason: "ended-by-api", detail: "the client was unpaired" });
    expect((await owner.httpsXml("/launch", launchQuery("66".repeat(16)))).status).toBe(401);
  });
});
