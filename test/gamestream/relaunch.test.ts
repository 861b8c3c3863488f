/**
 * A client that launches (or resumes) again while its stream runs: the control connection of
 * the stream it replaces gets the graceful termination (0x0109, BE32 0x80030023) before its
 * disconnect, as at any normal end. moonlight-common-c reports an ENet disconnect that comes
 * without it as "error -1". Paired client and control peers written from the spec (libenet).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { enetAvailable } from "../../ffi/enet.ts";
import { ControlType, TERMINATION_GRACEFUL } from "../../src/gamestream/control/envelope.ts";
import { tempDir } from "../helpers/env.ts";
import { GameStreamTestClient, makeClientIdentity } from "./client.ts";
import { ControlTestClient } from "./control-client.ts";
import { gameStreamHost } from "./helpers.ts";

const skip = !enetAvailable();
if (skip) console.warn("skipping the relaunch test: libenet.so.7 is not installed (apt-get install libenet-dev)");

describe.skipIf(skip)("launching again while the stream runs", () => {
  const keys = tempDir("neuron-relaunch-keys-");
  let host: ReturnType<typeof gameStreamHost>;
  let client: GameStreamTestClient;
  let fingerprint: string;
  const peers: ControlTestClient[] = [];

  beforeAll(async () => {
    host = gameStreamHost();
    const ports = await host.service.start();
    client = new GameStreamTestClient("127.0.0.1", ports.http, ports.https, makeClientIdentity(keys.path));
    const paired = await client.pair("4321", async () => {
      for (let i = 0; i < 200 && host.service.pendingPairings().length === 0; i++) await Bun.sleep(5);
      host.service.submitPin("4321");
    });
    expect(paired.ok).toBe(true);
    fingerprint = host.service.listPairings()[0]!.fingerprint;
  });

  afterAll(async () => {
    for (const p of peers) p.close();
    await host?.close();
    keys.cleanup();
  });

  const newKey = () => crypto.getRandomValues(new Uint8Array(16));
  const hex = (k: Uint8Array) => Buffer.from(k).toString("hex");
  const launch = (key: Uint8Array) =>
    client.httpsXml("/launch", { appid: "1", mode: "1280x720x60", rikey: hex(key), rikeyid: "5", localAudioPlayMode: "0", corever: "1" });
  const resume = (key: Uint8Array) => client.httpsXml("/resume", { rikey: hex(key), rikeyid: "6", localAudioPlayMode: "0", corever: "1" });

  /** The client's control connection for its current session (connect data of that session). */
  async function connectControl(key: Uint8Array): Promise<ControlTestClient> {
    const s = host.service.sessions.ofClient(fingerprint)!;
    const peer = new ControlTestClient(key);
    peers.push(peer);
    expect(await peer.connect(host.service.ports.control, s.connectData)).toBe(true);
    peer.ping();
    await peer.waitFor(() => host.service.control.stats(s.id)?.pings === 1, 2000, "the host to count the ping");
    return peer;
  }

  /** The peer got the graceful termination, and only then the disconnect. */
  async function expectGracefulEnd(peer: ControlTestClient): Promise<void> {
    await peer.waitFor(() => peer.disconnected, 5000, "the old connection's disconnect");
    const terminations = peer.received.filter((m) => m.type === ControlType.TERMINATION);
    expect(terminations).toHaveLength(1);
    const t = terminations[0]!;
    expect(t.payload.length).toBe(4);
    expect(new DataView(t.payload.buffer, t.payload.byteOffset).getUint32(0)).toBe(TERMINATION_GRACEFUL);
    expect(peer.undecodable).toHaveLength(0);
  }

  test("/launch again: the old session's control peer gets the graceful termination; the new session's peer connects", async () => {
    const k1 = newKey();
    expect((await launch(k1)).status).toBe(200);
    const first = host.service.sessions.ofClient(fingerprint)!;
    const a = await connectControl(k1);

    const k2 = newKey();
    expect((await launch(k2)).status).toBe(200);
    await expectGracefulEnd(a);
    expect(host.service.sessionHistory()[0]).toMatchObject({ id: first.id, reason: "replaced" });
    const b = await connectControl(k2);
    expect(b.disconnected).toBe(false);
    expect(host.service.listSessions()).toHaveLength(1);
  });

  test("/resume with new keys: the connection under the old keys ends gracefully, the session goes on under the new ones", async () => {
    const s = host.service.sessions.ofClient(fingerprint)!;
    const current = peers.at(-1)!;
    expect(current.disconnected).toBe(false);

    // bad input first: refused, and the running connection is left alone
    const bad = await client.httpsXml("/resume", { rikey: "not-hex", rikeyid: "6", localAudioPlayMode: "0" });
    expect(bad.status).toBe(400);
    await Bun.sleep(200);
    expect(current.disconnected).toBe(false);
    expect(current.received.filter((m) => m.type === ControlType.TERMINATION)).toHaveLength(0);

    const k3 = newKey();
    expect((await resume(k3)).fields.resume).toBe("1");
    await expectGracefulEnd(current);
    // same session (id, connect data), new keys: a peer under them connects and is counted
    expect(host.service.sessions.ofClient(fingerprint)!.id).toBe(s.id);
    const c = await connectControl(k3);
    expect(c.disconnected).toBe(false);
    expect(host.service.sessionHistory().filter((e) => e.id === s.id)).toHaveLength(0);
  });
});
