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
import { UNPAIR_REFUSED } from "../../src/gamestream/nvhttp.ts";
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
