/**
 * The audio stream inside the GameStream host: a launch, the encrypted RTSP
 * handshake up to PLAY, then the client's pings on base+11 get the session's
 * audio (encrypted per the ANNOUNCE), the session info reports the source, and
 * ending the session stops the stream and frees the port.
 */
import { afterAll, expect, test } from "bun:test";
import { createSocket } from "node:dgram";
import { AudioNative } from "../../ffi/audio.ts";
import { NativeCrypto } from "../../ffi/crypto.ts";
import { resolveNativePath } from "../../ffi/native.ts";
import { Rs8Codec } from "../../ffi/rs8.ts";
import { AudioTestClient, decodeAll, layoutFromDescribe, recoverBlocks, tonePower } from "./audio-client.ts";
import { gameStreamHost } from "./helpers.ts";
import { RtspTestClient } from "./rtsp-client.ts";
import { launchDirect, SAMPLE_SDP } from "./rtsp-fixtures.ts";

const nativePath = resolveNativePath({});
const host = gameStreamHost({ nativePath });
afterAll(() => host.close());

test("PLAY starts the audio stream, pings get encrypted Opus with FEC, the session end stops it", async () => {
  const { rtsp: rtspPort } = await host.service.start();
  const { key, session } = launchDirect(host, true);
  const c = new RtspTestClient(rtspPort, key, `rtspenc://127.0.0.1:${rtspPort}`);
  const desc = await c.describe();
  const audioSetup = await c.setup("audio/0/0");
  const ping = audioSetup.headers.get("x-ss-ping-payload")!;
  const port = Number(audioSetup.headers.get("transport")!.split("=")[1]);
  expect(port).toBe(host.service.ports.audio);
  await c.setup("video/0/0");
  await c.setup("control/13/0");
  expect((await c.announce(SAMPLE_SDP)).status).toBe(200);
  expect((await c.play()).status).toBe(200);

  const client = await AudioTestClient.open();
  try {
    client.startPinging("127.0.0.1", port, ping);
    await client.waitForData(120, 5000);
  } finally {
    client.close();
  }
  const info = host.service.session()!.audio!;
  expect(info.source).toBe("tone");
  expect(info.encrypted).toBe(true);
  expect(info.client).toMatch(/^127\.0\.0\.1:/);
  expect(info.pingsAccepted).toBeGreaterThan(0);

  const crypto = NativeCrypto.load({ explicit: nativePath });
  const audio = new AudioNative(nativePath);
  const fec = Rs8Codec.audio();
  const cipher = crypto.aesCbc(new Uint8Array(key));
  try {
    const r = recoverBlocks(client.packets, (seq) => seq % 4 === 2, fec, cipher, session.riKeyId, 5);
    expect(r.recovered).toBe(r.dropped);
    expect(r.dropped).toBeGreaterThan(20);
    const pcm = decodeAll(audio, 2, layoutFromDescribe(desc.body, 2, false), r.payloads);
    expect(tonePower(pcm, 2, 0, 440, 2400)).toBeGreaterThan(1e6);
  } finally {
    cipher.close();
    fec.close();
    audio.close();
    crypto.close();
  }

  expect(host.service.endSession()).toBe(true);
  // the stream stops and gives the port back
  const until = Date.now() + 3000;
  for (;;) {
    const sock = createSocket("udp4");
    const ok = await new Promise<boolean>((resolve) => {
      sock.once("error", () => resolve(false));
      sock.bind(port, "127.0.0.1", () => resolve(true));
    });
    await new Promise<void>((r) => sock.close(() => r()));
    if (ok) break;
    if (Date.now() > until) throw new Error("audio port still bound after the session ended");
    await Bun.sleep(20);
  }
});

test("after the host stops and starts again, the next PLAY gets audio again", async () => {
  await host.service.stop();
  const { rtsp: rtspPort } = await host.service.start();
  launchDirect(host, false);
  const c = new RtspTestClient(rtspPort, null);
  const audioSetup = await c.setup("audio/0/0");
  await c.setup("video/0/0");
  await c.setup("control/13/0");
  expect((await c.announce(SAMPLE_SDP.replace(/encryptionEnabled:\d+/, "encryptionEnabled:0"))).status).toBe(200);
  expect((await c.play()).status).toBe(200);
  const client = await AudioTestClient.open();
  try {
    client.startPinging("127.0.0.1", host.service.ports.audio, audioSetup.headers.get("x-ss-ping-payload")!);
    await client.waitForData(20, 5000);
  } finally {
    client.close();
  }
  expect(host.service.session()!.audio!.encrypted).toBe(false);
});
