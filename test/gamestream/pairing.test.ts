import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { X509Certificate } from "node:crypto";
import { statSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "../helpers/env.ts";
import { GameStreamTestClient, makeClientIdentity, parseXml, type ClientIdentity } from "./client.ts";
import { gameStreamHost } from "./helpers.ts";

let keys: ReturnType<typeof tempDir>;
let alice: ClientIdentity;
let mallory: ClientIdentity;
beforeAll(() => {
  keys = tempDir("neuron-gs-keys-");
  alice = makeClientIdentity(keys.path);
  const m = join(keys.path, "m");
  Bun.spawnSync(["mkdir", "-p", m]);
  mallory = makeClientIdentity(m, "Mallory");
});
afterAll(() => keys.cleanup());

/** Enters the PIN on the host as soon as the client's phase 1 is waiting for it. */
const pinEntry = (host: ReturnType<typeof gameStreamHost>, pin: string) => async () => {
  for (let i = 0; i < 200 && host.service.pendingPairings().length === 0; i++) await Bun.sleep(5);
  host.service.submitPin(pin);
};

describe("GameStream pairing with a client written from the spec", () => {
  test("the whole pairing, then applist, appasset, launch, cancel; survives a restart", async () => {
    const stateDir = tempDir("neuron-gs-state-");
    let host = gameStreamHost({ stateDir: stateDir.path });
    try {
      const ports = await host.service.start();
      const client = new GameStreamTestClient("127.0.0.1", ports.http, ports.https, alice);

      const info = await client.http("/serverinfo");
      expect(info.status).toBe(200);
      expect(info.fields).toMatchObject({ appversion: "7.1.431.-1", GfeVersion: "3.23.0.74", PairStatus: "0", state: "SUNSHINE_SERVER_FREE", currentgame: "0", hostname: "neuron-test", LocalIP: "127.0.0.1", mac: "00:00:00:00:00:00", ServerCodecModeSupport: "1", HttpsPort: String(ports.https), ExternalPort: String(ports.http) });
      expect(info.fields.uniqueid).toMatch(/^[0-9A-F]{16}$/);

      const result = await client.pair("1234", pinEntry(host, "1234"));
      expect(result).toMatchObject({ ok: true, phase: 5, hostSigOk: true, hostHashOk: true });
      // the HTTPS server presents exactly the certificate sent as plaincert
      const https = await client.https("/serverinfo");
      expect(new X509Certificate(https.peerCertPem).fingerprint256).toBe(new X509Certificate(client.serverCertPem!).fingerprint256);
      const pairings = host.service.listPairings();
      expect(pairings).toHaveLength(1);
      expect(pairings[0]!.name).toBe("roth");
      expect(pairings[0]!.fingerprint).toBe(new X509Certificate(alice.certPem).fingerprint256.replace(/:/g, "").toLowerCase());
      // identity files are private
      expect(statSync(join(stateDir.path, "gamestream", "host.key")).mode & 0o777).toBe(0o600);

      const secure = await client.httpsXml("/serverinfo");
      expect(secure.fields.PairStatus).toBe("1");

      const apps = await client.httpsXml("/applist");
      expect(apps.status).toBe(200);
      expect(apps.apps).toEqual([{ IsHdrSupported: "0", AppTitle: "Desktop", ID: "1" }]);

      const art = await client.https("/appasset", { appid: "1", AssetRole: "1", AssetType: "2", AssetIdx: "0" });
      expect(art.contentType).toBe("image/png");
      expect([...art.body.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

      const launch = await client.httpsXml("/launch", { appid: "1", mode: "1920x1080x60", additionalStates: "1", sops: "0", rikey: "00112233445566778899aabbccddeeff", rikeyid: "-123456", localAudioPlayMode: "0", surroundAudioInfo: String((0x3 << 16) | 2), remoteControllersBitmap: "1", gcmap: "1", corever: "1" });
      expect(launch.status).toBe(200);
      expect(launch.fields.sessionUrl0).toBe(`rtspenc://127.0.0.1:${host.service.ports.rtsp}`);
      expect(launch.fields.gamesession).toBe("1");
      const session = host.service.session()!;
      expect(session).toMatchObject({ appId: 1, width: 1920, height: 1080, fps: 60, encryptedRtsp: true });
      const busy = await client.http("/serverinfo");
      expect(busy.fields).toMatchObject({ state: "SUNSHINE_SERVER_BUSY", currentgame: "1" });
      // over HTTPS the client sees its own session
      expect((await client.httpsXml("/serverinfo")).fields).toMatchObject({ state: "SUNSHINE_SERVER_BUSY", currentgame: "1" });
      // a second launch by the same client replaces its session; resume re-keys
      expect((await client.httpsXml("/launch", { appid: "1", mode: "1280x720x60", rikey: "00".repeat(16), rikeyid: "1", localAudioPlayMode: "0" })).status).toBe(200);
      expect(host.service.listSessions()).toHaveLength(1);
      expect(host.service.session()!.id).not.toBe(session.id);
      expect(host.service.sessionHistory()[0]).toMatchObject({ id: session.id, reason: "replaced" });
      const resume = await client.httpsXml("/resume", { rikey: "ff".repeat(16), rikeyid: "7", localAudioPlayMode: "0" });
      expect(resume.fields.resume).toBe("1");
      expect(resume.fields.sessionUrl0).toBe(`rtsp://127.0.0.1:${host.service.ports.rtsp}`);

      expect((await client.httpsXml("/cancel")).fields.cancel).toBe("1");
      expect(host.service.session()).toBeNull();
      expect((await client.http("/serverinfo")).fields.state).toBe("SUNSHINE_SERVER_FREE");

      // restart on the same state dir: same identity, the client is still recognised by its cert
      const uniqueId = info.fields.uniqueid;
      await host.close();
      host = gameStreamHost({ stateDir: stateDir.path });
      const again = await host.service.start();
      const client2 = new GameStreamTestClient("127.0.0.1", again.http, again.https, alice);
      client2.serverCertPem = client.serverCertPem;
      const after = await client2.httpsXml("/serverinfo");
      expect(after.fields.PairStatus).toBe("1");
      expect(after.fields.uniqueid).toBe(uniqueId);
      expect((await client2.httpsXml("/applist")).apps).toHaveLength(1);

      // unpair over HTTPS removes exactly this client
      await client2.httpsXml("/unpair");
      expect(host.service.listPairings()).toHaveLength(0);
      expect((await client2.httpsXml("/applist")).status).toBe(401);
    } finally {
      await host.close();
      stateDir.cleanup();
    }
  });

  describe("refusals", () => {
    let host: ReturnType<typeof gameStreamHost>;
    let ports: { http: number; https: number };
    beforeAll(async () => {
      // many attempts from 127.0.0.1 here: the rate limit is tested on its own
      host = gameStreamHost({ pinTimeoutMs: 1500, config: { pairingAttemptsPerMinute: 1000 } });
      ports = await host.service.start();
    });
    afterAll(async () => host.close());

    const client = (id = alice) => new GameStreamTestClient("127.0.0.1", ports.http, ports.https, id);

    test("a wrong PIN fails the pairing and stores nothing", async () => {
      const r = await client().pair("0000", pinEntry(host, "9999"));
      expect(r.ok).toBe(false);
      expect(r.phase).toBe(4);
      expect(r.hostHashOk).toBe(false); // a client that checks the hash notices already at phase 2
      expect(host.service.listPairings()).toHaveLength(0);
    });

    test("a forged client hash is rejected, nothing stored", async () => {
      const r = await client().pair("1234", pinEntry(host, "1234"), { tamperClientHash: true });
      expect(r).toMatchObject({ ok: false, phase: 4 });
      expect(host.service.listPairings()).toHaveLength(0);
    });

    test("a bad signature is rejected, nothing stored", async () => {
      const r = await client().pair("1234", pinEntry(host, "1234"), { tamperSignature: true });
      expect(r).toMatchObject({ ok: false, phase: 4 });
      expect(host.service.listPairings()).toHaveLength(0);
    });

    const getServerCert = (c: GameStreamTestClient, id: ClientIdentity) =>
      c.http("/pair", { devicename: c.deviceName, updateState: "1", phrase: "getservercert", salt: "00".repeat(16), clientcert: Buffer.from(id.certPem).toString("hex") });

    test("a pending attempt is not displaced by another address; the PIN goes to the attempt named; the same address may start over", async () => {
      const a = new GameStreamTestClient("127.0.0.1", ports.http, ports.https, alice, "0123456789ABCDEF", "roth");
      const m = new GameStreamTestClient("127.0.0.1", ports.http, ports.https, mallory, "0123456789ABCDEF", "roth");
      m.localAddress = "127.0.0.2";
      let knock: Promise<ReturnType<typeof parseXml>> | null = null;
      const enter = async () => {
        for (let i = 0; i < 200 && host.service.pendingPairings().length === 0; i++) await Bun.sleep(5);
        const [pending] = host.service.pendingPairings();
        // another address (same uniqueid and device name, as every stock client sends) starts its own attempt while the owner is about to type the PIN
        knock = getServerCert(m, mallory);
        for (let i = 0; i < 200 && host.service.pendingPairings().length < 2; i++) await Bun.sleep(5);
        const both = host.service.pendingPairings();
        expect(both.map((p) => p.remoteIp).sort()).toEqual(["127.0.0.1", "127.0.0.2"]);
        expect(both).toContainEqual(pending!); // untouched
        expect(() => host.service.submitPin("1111")).toThrow(/2 clients are waiting/);
        // its /unpair (what a client sends after a failed phase) ends its own attempt only
        await m.http("/unpair");
        expect(host.service.pendingPairings()).toEqual([pending!]);
        host.service.submitPin("1111", pending!.id);
      };
      expect(await a.pair("1111", enter)).toMatchObject({ ok: true });
      expect((await knock!)!.status).toBe(400); // ended by its /unpair
      expect(host.service.listPairings().map((p) => p.fingerprint)).toEqual([new X509Certificate(alice.certPem).fingerprint256.replace(/:/g, "").toLowerCase()]);
      // the same address starting over replaces its own attempt: the second one is the one the PIN completes
      const first = getServerCert(a, alice);
      for (let i = 0; i < 200 && host.service.pendingPairings().length === 0; i++) await Bun.sleep(5);
      const firstId = host.service.pendingPairings()[0]!.id;
      const again = await a.pair("2222", async () => {
        for (let i = 0; i < 200 && host.service.pendingPairings()[0]?.id === firstId; i++) await Bun.sleep(5);
        host.service.submitPin("2222");
      });
      expect((await first).status).toBe(409);
      expect(again).toMatchObject({ ok: true });
      for (const p of host.service.listPairings()) host.service.removePairing(p.id);
    });

    test("at most 4 addresses pair at once: a fifth is refused with a message the client shows", async () => {
      const waiting = [2, 3, 4, 5].map((n) => {
        const c = new GameStreamTestClient("127.0.0.1", ports.http, ports.https, mallory, "0123456789ABCDEF", `m${n}`);
        c.localAddress = `127.0.1.${n}`;
        return getServerCert(c, mallory);
      });
      for (let i = 0; i < 200 && host.service.pendingPairings().length < 4; i++) await Bun.sleep(5);
      expect(host.service.pendingPairings()).toHaveLength(4);
      const fifth = new GameStreamTestClient("127.0.0.1", ports.http, ports.https, alice, "0123456789ABCDEF", "late");
      fifth.localAddress = "127.0.1.6";
      const r = await getServerCert(fifth, alice);
      expect(r.status).toBe(503);
      expect(r.message).toMatch(/4 other clients are pairing with this host right now/);
      expect(r.fields.paired).toBe("0");
      for (const w of await Promise.all(waiting)) expect(w.status).toBe(408); // no PIN: expired
      expect(host.service.pendingPairings()).toEqual([]);
    });

    test("phases out of order are rejected", async () => {
      const c = client();
      const outOfOrder: Record<string, string>[] = [{ clientchallenge: "00".repeat(16) }, { serverchallengeresp: "00".repeat(32) }, { clientpairingsecret: "00".repeat(272) }];
      for (const params of outOfOrder) {
        const r = await c.http("/pair", params);
        expect(r.status).toBe(400);
        expect(r.fields.paired).toBe("0");
      }
    });

    test("no PIN within the deadline: the client gets an error, nothing stored", async () => {
      const r = await client().http("/pair", { phrase: "getservercert", salt: "00".repeat(16), clientcert: Buffer.from(alice.certPem).toString("hex") });
      expect(r.status).toBe(408);
      expect(r.fields.paired).toBe("0");
      expect(host.service.pendingPairings()).toHaveLength(0);
    });

    test("an unknown certificate over HTTPS gets 401 and no data", async () => {
      const c = client(mallory);
      for (const path of ["/applist", "/launch", "/cancel", "/resume"]) {
        const r = await c.httpsXml(path, { appid: "1", mode: "1920x1080x60", rikey: "00".repeat(16), rikeyid: "1", localAudioPlayMode: "0" });
        expect(r.status).toBe(401);
        expect(r.apps).toEqual([]);
      }
      expect((await c.httpsXml("/pair", { phrase: "pairchallenge" })).fields.paired).toBe("0");
      expect((await c.httpsXml("/serverinfo")).fields.PairStatus).toBe("0");
      // no client certificate at all
      expect((await c.httpsXml("/applist", {}, null)).status).toBe(401);
      expect(host.service.session()).toBeNull();
    });

    const malformed: [string, Record<string, string>][] = [
      ["a salt that is not hex", { phrase: "getservercert", salt: "zz".repeat(16), clientcert: "00" }],
      ["a short salt", { phrase: "getservercert", salt: "00", clientcert: Buffer.from("x").toString("hex") }],
      ["a clientcert that is not a certificate", { phrase: "getservercert", salt: "00".repeat(16), clientcert: Buffer.from("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").toString("hex") }],
      ["an oversized clientcert", { phrase: "getservercert", salt: "00".repeat(16), clientcert: "41".repeat(9000) }],
      ["a missing clientcert", { phrase: "getservercert", salt: "00".repeat(16) }],
      ["an odd-length challenge", { clientchallenge: "123" }],
      ["no phase at all", {}],
    ];
    for (const [name, params] of malformed) {
      test(`${name} → status_code 400, nothing stored`, async () => {
        const r = await client().http("/pair", params);
        expect(r.status).toBe(400);
        expect(r.message).toBeTruthy();
        expect(host.service.listPairings()).toHaveLength(0);
        expect(host.service.pendingPairings()).toHaveLength(0);
      });
    }

    test("a request target over the bound is refused without a crash", async () => {
      const res = await fetch(`http://127.0.0.1:${ports.http}/pair?uniqueid=x&clientcert=${"a".repeat(40000)}`);
      const text = await res.text();
      expect(text === "" || /status_code="4\d\d"/.test(text)).toBe(true);
      expect((await client().http("/serverinfo")).status).toBe(200);
    });
  });
});
