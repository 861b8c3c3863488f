/**
 * The audio stream against a receiver written from the spec on 127.0.0.1: pings,
 * RTP with ms timestamps, AES-CBC, 4+2 FEC recovery of packets dropped on
 * purpose, Opus decode with the DESCRIBE layout, and the tone's frequency per
 * channel; hostile datagrams ignored; a capture command as the source.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { AudioNative } from "../../ffi/audio.ts";
import { NativeCrypto } from "../../ffi/crypto.ts";
import { resolveNativePath } from "../../ffi/native.ts";
import { Rs8Codec, Rs8Library } from "../../ffi/rs8.ts";
import { silentLogger } from "../../src/log.ts";
import { AudioStream, type AudioNatives } from "../../src/gamestream/audio/stream.ts";
import { ToneSource, toneFrequency, openPcmSource } from "../../src/gamestream/audio/source.ts";
import { parseAnnounce } from "../../src/gamestream/rtsp/announce.ts";
import { describeBody } from "../../src/gamestream/rtsp/describe.ts";
import { SessionStore, type StreamSession } from "../../src/gamestream/sessions.ts";
import { AudioTestClient, decodeAll, layoutFromDescribe, loudestSecond, recoverBlocks, tonePower } from "./audio-client.ts";
import { SAMPLE_SDP } from "./rtsp-fixtures.ts";

const path = resolveNativePath({});
const natives: AudioNatives = { audio: new AudioNative(path), crypto: NativeCrypto.load({ explicit: path }), rs8: Rs8Library.open({ explicit: path }) };
const fec = Rs8Codec.audio({ library: natives.rs8 });
const DESCRIBE = describeBody({ codecModeSupport: 1, encryptionSupported: 7, encryptionRequested: 1, featureFlags: 0, refPicInvalidation: true });
afterAll(() => {
  fec.close();
  natives.crypto.close();
});

const MASKS = { 2: 0x3, 6: 0x3f, 8: 0x63f } as const;

function session(channels: 2 | 6 | 8, opts: { hq: boolean; encrypted: boolean; durationMs: 5 | 10 }): StreamSession {
  const store = new SessionStore();
  const s = store.start({
    appId: 1, appName: "Desktop", vmName: null, width: 1280, height: 720, fps: 60,
    riKey: crypto.getRandomValues(new Uint8Array(16)), riKeyId: -123456, localAudioPlayMode: 0,
    surroundAudioInfo: (MASKS[channels] << 16) | channels, remoteControllersBitmap: 1, gcmap: 1, hdr: false,
    encryptedRtsp: true, clientFingerprint: "test",
  });
  const sdp = SAMPLE_SDP.replace(/numChannels:\d+/, `numChannels:${channels}`)
    .replace(/channelMask:\d+/, `channelMask:${MASKS[channels]}`)
    .replace(/AudioQuality:\d/, `AudioQuality:${opts.hq ? 1 : 0}`)
    .replace(/packetDuration:\d+/, `packetDuration:${opts.durationMs}`)
    .replace(/encryptionEnabled:\d+/, `encryptionEnabled:${opts.encrypted ? 5 : 1}`);
  s.stream = parseAnnounce(sdp, { codecModeSupport: 1, encryptionSupported: 7 });
  return s;
}

async function runStream(s: StreamSession, ms: number, openSource = (ch: number) => new ToneSource(ch) as ReturnType<typeof openPcmSource>) {
  const stream = await AudioStream.start({ host: "127.0.0.1", port: 0, session: s, natives, openSource, log: silentLogger });
  const client = await AudioTestClient.open();
  try {
    client.startPinging("127.0.0.1", stream.port, s.rtsp.audioPingPayload);
    await client.waitForData(Math.floor(ms / s.stream!.audio.packetDurationMs), ms * 4 + 2000);
  } finally {
    client.close();
    await stream.stop();
  }
  return { info: stream.info(), packets: client.packets };
}

/** Drops one data packet of every block, and two in every fifth block. */
const dropPattern = (seq: number) => {
  const block = Math.floor(seq / 4);
  return seq % 4 === block % 4 || (block % 5 === 0 && seq % 4 === (block + 1) % 4);
};

function checkTones(pcm: Int16Array, channels: number) {
  for (let c = 0; c < channels; c++) {
    const mine = tonePower(pcm, channels, c, toneFrequency(c));
    // the tone of the next channel must not be on this one (channel order kept)
    const other = tonePower(pcm, channels, c, toneFrequency((c + 1) % channels));
    expect(mine).toBeGreaterThan(1e6); // amplitude 8000 → power 1.6e7
    expect(mine).toBeGreaterThan(50 * other);
  }
}

describe("audio stream", () => {
  test("stereo, encrypted, 5 ms: RTP, CBC, FEC recovery of dropped packets, the tone decodes", async () => {
    const s = session(2, { hq: false, encrypted: true, durationMs: 5 });
    const { info, packets } = await runStream(s, 1000);
    expect(info.encrypted).toBe(true);
    expect(info.bitrateBps).toBe(96_000);
    expect(info.source).toBe("tone");
    expect(info.client).toMatch(/^127\.0\.0\.1:\d+$/);
    const data = packets.filter((p) => p.payloadType === 97);
    expect(data[0]!.seq).toBe(0);
    expect(data[0]!.timestamp).toBe(0);
    for (const p of data) {
      expect(p.ssrc).toBe(0);
      expect(p.timestamp).toBe(p.seq * 5);
      expect(p.body.length).toBe(64); // 60 B CBR Opus → 64 B with PKCS#7
    }
    const cipher = natives.crypto.aesCbc(s.riKey);
    try {
      const clean = recoverBlocks(packets, () => false, fec, cipher, s.riKeyId, 5);
      const lossy = recoverBlocks(packets, dropPattern, fec, cipher, s.riKeyId, 5);
      expect(lossy.dropped).toBeGreaterThan(clean.blocks);
      expect(lossy.recovered).toBe(lossy.dropped);
      expect(lossy.payloads.length).toBe(clean.payloads.length);
      for (let i = 0; i < clean.payloads.length; i++) expect(lossy.payloads[i]).toEqual(clean.payloads[i]!);
      expect(clean.payloads[0]!.length).toBe(60);
      const layout = layoutFromDescribe(DESCRIBE, 2, false);
      checkTones(decodeAll(natives.audio, 2, layout, lossy.payloads), 2);
      // a wrong key does not decrypt to valid PKCS#7 Opus
      const wrong = natives.crypto.aesCbc(new Uint8Array(16).fill(9));
      try {
        expect(() => recoverBlocks(packets, () => false, fec, wrong, s.riKeyId, 5)).toThrow();
      } finally {
        wrong.close();
      }
    } finally {
      cipher.close();
    }
  });

  test("5.1, plain, 10 ms: channel order survives the advertised 4/2 layout", async () => {
    const s = session(6, { hq: false, encrypted: false, durationMs: 10 });
    const { info, packets } = await runStream(s, 1000);
    expect(info.bitrateBps).toBe(256_000);
    expect(info.encrypted).toBe(false);
    const data = packets.filter((p) => p.payloadType === 97);
    for (const p of data) expect(p.timestamp).toBe(p.seq * 10);
    expect(data[0]!.body.length).toBe(256_000 / 8 / 100);
    const r = recoverBlocks(packets, dropPattern, fec, null, s.riKeyId, 10);
    expect(r.recovered).toBe(r.dropped);
    checkTones(decodeAll(natives.audio, 6, layoutFromDescribe(DESCRIBE, 6, false), r.payloads), 6);
  });

  test("7.1 high quality, encrypted: 2048 kbps with the uncoupled layout", async () => {
    const s = session(8, { hq: true, encrypted: true, durationMs: 5 });
    const { info, packets } = await runStream(s, 600);
    expect(info.bitrateBps).toBe(2_048_000);
    const cipher = natives.crypto.aesCbc(s.riKey);
    try {
      const r = recoverBlocks(packets, dropPattern, fec, cipher, s.riKeyId, 5);
      expect(r.payloads[0]!.length).toBe(2_048_000 / 8 / 200);
      checkTones(decodeAll(natives.audio, 8, layoutFromDescribe(DESCRIBE, 8, true), r.payloads), 8);
    } finally {
      cipher.close();
    }
  });

  test("hostile datagrams (wrong payload, wrong size, flood) are ignored and get nothing back", async () => {
    const s = session(2, { hq: false, encrypted: true, durationMs: 5 });
    const stream = await AudioStream.start({ host: "127.0.0.1", port: 0, session: s, natives, openSource: (ch) => new ToneSource(ch), log: silentLogger });
    const attacker = await AudioTestClient.open();
    try {
      const wrong = "X".repeat(16);
      attacker.ping("127.0.0.1", stream.port, wrong);
      attacker.sendRaw("127.0.0.1", stream.port, new TextEncoder().encode("PING"));
      const long = new Uint8Array(21);
      long.set(new TextEncoder().encode(s.rtsp.audioPingPayload));
      attacker.sendRaw("127.0.0.1", stream.port, long);
      attacker.sendRaw("127.0.0.1", stream.port, new TextEncoder().encode(s.rtsp.audioPingPayload)); // 16 B, no count
      const until = Date.now() + 3000;
      while (stream.info().pingsRejected < 4 && Date.now() < until) await Bun.sleep(10);
      expect(stream.info().pingsRejected).toBe(4);
      // a flood (some of it lost in the socket buffers on the way: the count is what arrived)
      for (let i = 0; i < 5000; i++) attacker.sendRaw("127.0.0.1", stream.port, crypto.getRandomValues(new Uint8Array(20)));
      await Bun.sleep(300);
      let info = stream.info();
      expect(info.pingsRejected).toBeGreaterThan(4);
      expect(info.pingsAccepted).toBe(0);
      expect(info.client).toBeNull();
      expect(info.dataPackets).toBe(0);
      expect(attacker.packets.length).toBe(0);
      // the real client still gets its stream; the attacker still gets nothing
      const client = await AudioTestClient.open();
      try {
        client.startPinging("127.0.0.1", stream.port, s.rtsp.audioPingPayload);
        await client.waitForData(20, 3000);
      } finally {
        client.close();
      }
      info = stream.info();
      expect(info.pingsAccepted).toBeGreaterThan(0);
      expect(attacker.packets.length).toBe(0);
    } finally {
      attacker.close();
      await stream.stop();
    }
  });

  test("a client that stops pinging stops getting packets until it pings again", async () => {
    const s = session(2, { hq: false, encrypted: false, durationMs: 5 });
    const stream = await AudioStream.start({ host: "127.0.0.1", port: 0, session: s, natives, openSource: (ch) => new ToneSource(ch), log: silentLogger, clientSilenceMs: 200 });
    const client = await AudioTestClient.open();
    try {
      client.ping("127.0.0.1", stream.port, s.rtsp.audioPingPayload);
      await client.waitForData(10, 2000);
      await Bun.sleep(400);
      const quiet = client.packets.length;
      await Bun.sleep(300);
      expect(client.packets.length).toBe(quiet);
      client.ping("127.0.0.1", stream.port, s.rtsp.audioPingPayload);
      await Bun.sleep(150);
      expect(client.packets.length).toBeGreaterThan(quiet + 10);
    } finally {
      client.close();
      await stream.stop();
    }
  });

  test("after a stalled event loop the stream catches up with a burst, skips what is older, and keeps seq contiguous", async () => {
    const s = session(2, { hq: false, encrypted: false, durationMs: 5 });
    const stream = await AudioStream.start({ host: "127.0.0.1", port: 0, session: s, natives, openSource: (ch) => new ToneSource(ch), log: silentLogger });
    const client = await AudioTestClient.open();
    try {
      client.startPinging("127.0.0.1", stream.port, s.rtsp.audioPingPayload);
      await client.waitForData(20, 2000);
      const until = performance.now() + 500;
      while (performance.now() < until) {
        /* block the event loop for 500 ms */
      }
      await client.waitForData(150, 3000);
    } finally {
      client.close();
      await stream.stop();
    }
    const info = stream.info();
    // 500 ms stalled: 200 ms sent as a burst, about 300 ms (60 packets) skipped
    expect(info.skippedPackets).toBeGreaterThan(40);
    expect(info.skippedPackets).toBeLessThan(100); // not the burst too
    const seqs = client.packets.filter((p) => p.payloadType === 97).map((p) => p.seq);
    expect(seqs).toEqual(seqs.map((_, i) => i));
  });

  test("a capture command is the source when configured (ffmpeg writing s16le)", async () => {
    if (!Bun.which("ffmpeg")) return console.warn("skip: ffmpeg not installed, no capture command to run");
    const s = session(2, { hq: false, encrypted: false, durationMs: 5 });
    const argv = ["ffmpeg", "-nostdin", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "sine=frequency=1500:sample_rate=48000:duration=5", "-ac", "{channels}", "-f", "s16le", "-"];
    // 2.4 s of stream: ffmpeg may start late on a busy machine (the stream sends silence until it does)
    const { info, packets } = await runStream(s, 2400, (ch) => openPcmSource({ command: argv }, ch, silentLogger));
    expect(info.source).toBe("command");
    expect(info.sourceDetail).toContain("-ac 2");
    const r = recoverBlocks(packets, () => false, fec, null, s.riKeyId, 5);
    const pcm = decodeAll(natives.audio, 2, layoutFromDescribe(DESCRIBE, 2, false), r.payloads);
    // ffmpeg's sine is amplitude 1/8 full scale (4096): power ~4.2e6 where it ran
    // measured over the loudest second, where ffmpeg's tone is
    const at = loudestSecond(pcm, 2);
    const p1500 = tonePower(pcm, 2, 0, 1500, at, 48000);
    expect(p1500).toBeGreaterThan(2e5);
    expect(p1500).toBeGreaterThan(50 * tonePower(pcm, 2, 0, 440, at, 48000));
  });
});
