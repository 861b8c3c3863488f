/**
 * Pairing hardening with the spec client over real sockets: attempts are rate-limited per
 * address (answered with an error root the client shows; other addresses unaffected), and
 * every pairing event — started, PIN entered, wrong PIN (Moonlight's way: it gives up after
 * phase 3 and calls /unpair; and a client that goes on to phase 4), expired, paired, removed —
 * leaves one structured log line with the attempt id and the client's address (never the PIN)
 * and an audit row. Source addresses 127.0.0.x stand for different LAN hosts.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { createLogger } from "../../src/log.ts";
import { tempDir } from "../helpers/env.ts";
import { GameStreamTestClient, makeClientIdentity, type ClientIdentity } from "./client.ts";
import { gameStreamHost } from "./helpers.ts";

const PIN = "8317";
const WRONG = "2604";

describe("pairing: rate limit, events in the log and the audit table", () => {
  const keys = tempDir("neuron-gs-events-");
  const lines: Record<string, unknown>[] = [];
  const raw: string[] = [];
  let host: ReturnType<typeof gameStreamHost>;
  let id: ClientIdentity;
  const log = createLogger({ level: "debug", format: "json", write: (l) => (raw.push(l), lines.push(JSON.parse(l) as Record<string, unknown>)) });

  beforeAll(async () => {
    id = makeClientIdentity(keys.path);
    host = gameStreamHost({ pinTimeoutMs: 1500, log, config: { pairingAttemptsPerMinute: 3 } });
    await host.service.start();
  });
  afterAll(async () => {
    await host?.close();
    keys.cleanup();
  });

  const client = (address: string, identity = id, name = "roth") => {
    const c = new GameStreamTestClient("127.0.0.1", host.service.ports.http, host.service.ports.https, identity, "0123456789ABCDEF", name);
    c.localAddress = address;
    return c;
  };
  const enter = (pin: string) => async () => {
    for (let i = 0; i < 400 && host.service.pendingPairings().length === 0; i++) await Bun.sleep(5);
    host.service.submitPin(pin);
  };
  const audit = (action: string) =>
    (host.db.sqlite.query("SELECT actor, target, status, details FROM audit_log WHERE action = ? ORDER BY id").all(action) as { actor: string; target: string; status: string; details: string }[]).map((r) => ({
      ...r,
      details: JSON.parse(r.details) as Record<string, unknown>,
    }));
  const logged = (msg: string) => lines.filter((l) => l.msg === msg);

  test("attempts beyond the per-address limit get 429 with a message; another address is still served", async () => {
    const c = client("127.0.0.3");
    const bad = { phrase: "getservercert", salt: "zz", clientcert: "00" };
    for (let i = 0; i < 3; i++) expect((await c.http("/pair", bad)).status).toBe(400);
    const refused = await c.http("/pair", bad);
    expect(refused.status).toBe(429);
    expect(refused.message).toMatch(/too many pairing attempts from 127\.0\.0\.3: at most 3 a minute; try again in \d+ s/);
    expect(refused.fields.paired).toBe("0");
    // a whole valid attempt from the limited address is refused before any work: nothing pending
    expect((await c.http("/pair", { phrase: "getservercert", salt: "00".repeat(16), clientcert: Buffer.from(id.certPem).toString("hex") })).status).toBe(429);
    expect(host.service.pendingPairings()).toEqual([]);
    expect((await client("127.0.0.4").http("/pair", bad)).status).toBe(400);
    expect(logged("pairing refused").at(-1)).toMatchObject({ level: "warn", address: "127.0.0.3", reason: "rate-limited" });
    expect(audit("gamestream.pairing.refused")).toEqual([]); // unbounded refusals stay out of the audit table
  });

  test("a wrong PIN as Moonlight reports it (gives up after phase 3, /unpair) leaves a log line and an audit row", async () => {
    const r = await client("127.0.0.5").pair(PIN, enter(WRONG), { checkHostHash: true });
    expect(r).toMatchObject({ ok: false, phase: 3, hostHashOk: false });
    const started = logged("pairing started: waiting for the PIN").at(-1)!;
    expect(started).toMatchObject({ level: "info", address: "127.0.0.5", deviceName: "roth" });
    const attemptId = started.attemptId as string;
    expect(attemptId).toMatch(/^[0-9a-f-]{36}$/);
    expect(logged("pairing PIN entered").at(-1)).toMatchObject({ attemptId, address: "127.0.0.5" });
    expect(logged("pairing failed: wrong PIN").at(-1)).toMatchObject({ level: "warn", attemptId, address: "127.0.0.5", deviceName: "roth" });
    expect(audit("gamestream.pairing.wrong_pin").at(-1)).toMatchObject({ actor: "gamestream", target: "127.0.0.5", status: "failed", details: { attemptId, address: "127.0.0.5" } });
    expect(host.service.listPairings()).toEqual([]);
  });

  test("a wrong PIN found at phase 4 (a client that does not check) is logged the same way", async () => {
    const r = await client("127.0.0.6").pair(PIN, enter(WRONG));
    expect(r).toMatchObject({ ok: false, phase: 4 });
    const line = logged("pairing failed: wrong PIN").at(-1)!;
    expect(line).toMatchObject({ address: "127.0.0.6", detail: "the client's hash does not match (phase 4)" });
    expect(audit("gamestream.pairing.wrong_pin").at(-1)!.details).toMatchObject({ attemptId: line.attemptId, address: "127.0.0.6" });
  });

  test("no PIN in time: expired, logged and audited", async () => {
    const r = await client("127.0.0.7").http("/pair", { phrase: "getservercert", salt: "00".repeat(16), clientcert: Buffer.from(id.certPem).toString("hex") });
    expect(r.status).toBe(408);
    expect(logged("pairing attempt expired").at(-1)).toMatchObject({ level: "warn", address: "127.0.0.7", phase: "waiting_pin" });
    expect(audit("gamestream.pairing.expired").at(-1)).toMatchObject({ target: "127.0.0.7", status: "failed" });
  });

  test("paired and removed (by the API and by the client's /unpair) are logged and audited", async () => {
    const r = await client("127.0.0.8").pair(PIN, enter(PIN));
    expect(r.ok).toBe(true);
    const paired = logged("client paired").at(-1)!;
    expect(paired).toMatchObject({ level: "info", address: "127.0.0.8", deviceName: "roth", permissions: ["view", "keyboard", "mouse", "controller", "launch", "clipboard"] });
    expect(audit("gamestream.pairing.paired").at(-1)).toMatchObject({ target: "127.0.0.8", status: "applied", details: { attemptId: paired.attemptId, fingerprint: paired.fingerprint } });
    const [p] = host.service.listPairings();
    host.service.removePairing(p!.id);
    expect(logged("pairing removed").at(-1)).toMatchObject({ pairing: p!.id, by: "api" });
    expect(audit("gamestream.pairing.removed").at(-1)).toMatchObject({ actor: "api", status: "applied" });

    const dir = join(keys.path, "second");
    await Bun.write(join(dir, ".keep"), "");
    const other = client("127.0.0.9", makeClientIdentity(dir), "den");
    expect((await other.pair(PIN, enter(PIN))).ok).toBe(true);
    await other.httpsXml("/unpair");
    expect(host.service.listPairings()).toEqual([]);
    expect(logged("pairing removed").at(-1)).toMatchObject({ client: "den", by: "client", address: "127.0.0.1" });
    expect(audit("gamestream.pairing.removed").at(-1)).toMatchObject({ actor: "gamestream", status: "applied" });
  });

  test("a client that goes away while waiting for the PIN ends its attempt at once (failed, logged, audited)", async () => {
    const { connect } = await import("node:net");
    const s = connect({ host: "127.0.0.1", port: host.service.ports.http, localAddress: "127.0.0.10" }, () =>
      s.write(`GET /pair?uniqueid=0123456789ABCDEF&devicename=gone&phrase=getservercert&salt=${"00".repeat(16)}&clientcert=${Buffer.from(id.certPem).toString("hex")} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`),
    );
    s.on("error", () => {});
    for (let i = 0; i < 400 && host.service.pendingPairings().length === 0; i++) await Bun.sleep(5);
    expect(host.service.pendingPairings().map((p) => p.deviceName)).toEqual(["gone"]);
    s.end();
    for (let i = 0; i < 200 && host.service.pendingPairings().length > 0; i++) await Bun.sleep(5);
    expect(host.service.pendingPairings()).toEqual([]);
    expect(logged("pairing failed").at(-1)).toMatchObject({ address: "127.0.0.10", phase: "waiting_pin", reason: "client went away while waiting for the PIN" });
    expect(audit("gamestream.pairing.failed").at(-1)).toMatchObject({ target: "127.0.0.10", status: "failed" });
  });

  test("every attempt started is audited; no line or row carries a PIN", () => {
    const started = audit("gamestream.pairing.started");
    expect(started.map((r) => r.target)).toEqual(["127.0.0.5", "127.0.0.6", "127.0.0.7", "127.0.0.8", "127.0.0.9", "127.0.0.10"]);
    const rows = host.db.sqlite.query("SELECT details FROM audit_log").all() as { details: string }[];
    for (const text of [...raw, ...rows.map((r) => r.details)]) {
      expect(text).not.toMatch(/"pin"\s*:/i);
      expect(text).not.toContain(`"${PIN}"`);
      expect(text).not.toContain(`"${WRONG}"`);
    }
  });
});
