/**
 * /unpair as stock clients send it. Over plain HTTP the host cannot tell who asks (every stock
 * client sends uniqueid 0123456789ABCDEF), so it removes nothing, and says so in the two ways
 * clients judge the answer: moonlight-embedded's `moonlight unpair` only looks at the HTTP
 * status (libcurl with CURLOPT_FAILONERROR: a status ≥ 400 is its "Failed to unpair"), clients
 * that read the XML look at the root's status_code. The /unpair Moonlight sends after a failed
 * pairing phase stays a plain success: it ends that attempt, and an HTTP error there would
 * replace the client's "wrong PIN" with a network error. Over HTTPS the certificate names the
 * client: it unpairs itself.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { NativeCrypto } from "../../ffi/crypto.ts";
import { AppsService } from "../../src/apps/service.ts";
import { openDatabase } from "../../src/db/client.ts";
import { appsRepo } from "../../src/db/repos/apps.ts";
import { pairingsRepo } from "../../src/db/repos/pairings.ts";
import { PairedClients } from "../../src/gamestream/clients.ts";
import { portsFromBase } from "../../src/gamestream/constants.ts";
import { loadOrCreateIdentity } from "../../src/gamestream/identity.ts";
import { gameStreamCrypto } from "../../src/gamestream/native-crypto.ts";
import { createNvHttp, UNPAIR_AFTER_PAIRING_MS, UNPAIR_REFUSED, type NvRequest } from "../../src/gamestream/nvhttp.ts";
import { PairingManager } from "../../src/gamestream/pairing.ts";
import { SessionStore } from "../../src/gamestream/sessions.ts";
import { silentLogger } from "../../src/log.ts";
import { tempDir } from "../helpers/env.ts";
import { GameStreamTestClient, makeClientIdentity, parseXml } from "./client.ts";
import { gameStreamHost } from "./helpers.ts";

const STOCK_UNIQUE_ID = "0123456789ABCDEF";

const skip = Bun.which("curl") === null;
if (skip) console.warn("skipping the unpair test: curl is not installed (the stand-in for moonlight-embedded's libcurl request)");

describe.skipIf(skip)("unpair", () => {
  const keys = tempDir("neuron-unpair-keys-");
  let host: ReturnType<typeof gameStreamHost>;
  let alice: GameStreamTestClient;
  let mallory: GameStreamTestClient;

  const enterPin = (pin: string) => async () => {
    for (let i = 0; i < 200 && host.service.pendingPairings().length === 0; i++) await Bun.sleep(5);
    host.service.submitPin(pin);
  };
  /** A plain-HTTP /unpair: the HTTP status and the XML root. */
  const unpairHttp = async () => {
    const res = await fetch(`http://127.0.0.1:${host.service.ports.http}/unpair?uniqueid=${STOCK_UNIQUE_ID}&uuid=${crypto.randomUUID()}`);
    return { http: res.status, xml: parseXml(await res.text()) };
  };
  /** What moonlight-embedded's gs_unpair does: one GET through libcurl with fail-on-error; exit 0 = "Succesfully unpaired". */
  const curlUnpair = async () => {
    // asynchronous: the host answers from this same process
    const p = Bun.spawn(["curl", "-sS", "--fail", "--max-time", "10", `http://127.0.0.1:${host.service.ports.http}/unpair?uniqueid=${STOCK_UNIQUE_ID}&uuid=${crypto.randomUUID()}`], { stdout: "pipe", stderr: "pipe" });
    const [exitCode, stderr] = await Promise.all([p.exited, new Response(p.stderr).text()]);
    return { exitCode, stderr };
  };

  beforeAll(async () => {
    host = gameStreamHost();
    const ports = await host.service.start();
    const dirA = join(keys.path, "a");
    const dirM = join(keys.path, "m");
    await Bun.write(join(dirA, ".keep"), "");
    await Bun.write(join(dirM, ".keep"), "");
    alice = new GameStreamTestClient("127.0.0.1", ports.http, ports.https, makeClientIdentity(dirA), STOCK_UNIQUE_ID, "alice");
    mallory = new GameStreamTestClient("127.0.0.1", ports.http, ports.https, makeClientIdentity(dirM, "Mallory"), STOCK_UNIQUE_ID, "mallory");
    expect((await alice.pair("1234", enterPin("1234"))).ok).toBe(true);
  });

  afterAll(async () => {
    await host?.close();
    keys.cleanup();
  });

  test("plain HTTP: refused with an HTTP error and status_code the client reports; the pairing stays", async () => {
    const r = await unpairHttp();
    expect(r.http).toBe(403);
    expect(r.xml).toMatchObject({ status: 403, message: UNPAIR_REFUSED });
    expect(r.xml.message).toContain("neuron-appliance pair remove");
    // moonlight-embedded's judgment: curl fails on the status (22 = CURLE_HTTP_RETURNED_ERROR)
    const curl = await curlUnpair();
    expect(curl.exitCode).toBe(22);
    expect(curl.stderr).toContain("403");
    expect(host.service.listPairings().map((p) => p.name)).toEqual(["alice"]);
    expect((await alice.httpsXml("/applist")).status).toBe(200);
  });

  test("after a failed pairing from that address its /unpair only ends the attempt: success, nothing removed; the next one is refused again", async () => {
    const failed = await mallory.pair("0000", enterPin("9999"));
    expect(failed.ok).toBe(false);
    // what Moonlight sends after the failed phase: no HTTP error
    const after = await unpairHttp();
    expect([after.http, after.xml.status]).toEqual([200, 200]);
    expect(host.service.listPairings().map((p) => p.name)).toEqual(["alice"]);
    // that attempt is over: a later /unpair is the deliberate kind, refused
    expect((await curlUnpair()).exitCode).toBe(22);
    expect((await unpairHttp()).http).toBe(403);
  });

  test("a pairing that succeeded leaves no such exemption: /unpair right after it is refused", async () => {
    const dirB = join(keys.path, "b");
    await Bun.write(join(dirB, ".keep"), "");
    const bob = new GameStreamTestClient("127.0.0.1", host.service.ports.http, host.service.ports.https, makeClientIdentity(dirB), STOCK_UNIQUE_ID, "bob");
    expect((await bob.pair("4321", enterPin("4321"))).ok).toBe(true);
    expect((await unpairHttp()).http).toBe(403);
    expect(host.service.listPairings().map((p) => p.name).sort()).toEqual(["alice", "bob"]);
  });

  test("HTTPS: an unknown certificate is refused and changes nothing; a paired one unpairs itself only", async () => {
    const stranger = await mallory.httpsXml("/unpair");
    expect(stranger).toMatchObject({ status: 401 });
    expect(host.service.listPairings()).toHaveLength(2);
    expect((await alice.httpsXml("/unpair")).status).toBe(200);
    expect(host.service.listPairings().map((p) => p.name)).toEqual(["bob"]);
    expect((await alice.httpsXml("/applist")).status).toBe(401);
  });
});

describe("unpair after an unfinished pairing: the exemption is bounded", () => {
  test(`only within ${UNPAIR_AFTER_PAIRING_MS / 1000} s of that address's last /pair request, and only for that address`, async () => {
    const dir = tempDir("neuron-unpair-clock-");
    const db = openDatabase(join(dir.path, "neuron.db"));
    const crypto = gameStreamCrypto(NativeCrypto.load());
    try {
      let t = 1_000_000;
      const identity = loadOrCreateIdentity(dir.path, crypto);
      const pairing = new PairingManager(identity, crypto, { pinTimeoutMs: 10_000, idleTimeoutMs: 10_000, store: () => {} });
      const handle = createNvHttp({
        identity, crypto, pairing, sessions: new SessionStore(), apps: new AppsService(appsRepo(db.db)), clients: new PairedClients(pairingsRepo(db.db), crypto),
        ports: portsFromBase(47989), hostname: "neuron-test", codecModeSupport: () => 1, log: silentLogger, now: () => t,
      });
      const req = (path: string, remoteIp: string, query: Record<string, string> = {}): NvRequest => ({
        path, query: new URLSearchParams({ uniqueid: STOCK_UNIQUE_ID, ...query }), https: false, peerCertDer: null, localIp: "127.0.0.1", remoteIp,
      });
      // a pairing phase that fails (out of order): the attempt from 10.0.0.2 is unfinished
      const phase = await handle(req("/pair", "::ffff:10.0.0.2", { clientchallenge: "00" }));
      expect(phase.body.toString()).toContain('paired>0<');
      // another address gets no exemption from it
      expect((await handle(req("/unpair", "10.0.0.3"))).status).toBe(403);
      t += UNPAIR_AFTER_PAIRING_MS;
      expect((await handle(req("/unpair", "10.0.0.2"))).status).toBe(200);
      await handle(req("/pair", "10.0.0.2", { clientchallenge: "00" }));
      t += UNPAIR_AFTER_PAIRING_MS + 1;
      const late = await handle(req("/unpair", "10.0.0.2"));
      expect(late.status).toBe(403);
      expect(parseXml(late.body.toString())).toMatchObject({ status: 403, message: UNPAIR_REFUSED });
      pairing.close();
    } finally {
      db.close();
      dir.cleanup();
    }
  });
});
