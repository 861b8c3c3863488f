/** Audio stream parts on their own: parameters per layout, the packetizer's edges, source selection and bounds. */
import { afterAll, describe, expect, test } from "bun:test";
import { NativeCrypto } from "../../ffi/crypto.ts";
import { resolveNativePath } from "../../ffi/native.ts";
import { Rs8Codec, Rs8Library } from "../../ffi/rs8.ts";
import { AUDIO_MAX_OPUS_BYTES, AudioPacketizer } from "../../src/gamestream/audio/packets.ts";
import { audioParams } from "../../src/gamestream/audio/params.ts";
import { captureCommand, CommandSource, openPcmSource } from "../../src/gamestream/audio/source.ts";
import { OPUS_LAYOUTS } from "../../src/gamestream/rtsp/describe.ts";
import { silentLogger } from "../../src/log.ts";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadConfig } from "../../src/config.ts";
import { tempDir, testConfig } from "../helpers/env.ts";
import { parseRtp } from "./audio-client.ts";

const path = resolveNativePath({});
const rs8 = Rs8Library.open({ explicit: path });
const fec = Rs8Codec.audio({ library: rs8 });
const crypto = NativeCrypto.load({ explicit: path });
afterAll(() => {
  fec.close();
  crypto.close();
});

const enc = (mask: number) => ({ mask, control: false, video: false, audio: (mask & 4) !== 0 });

describe("audioParams", () => {
  test("bitrates and layouts per channel count and quality follow the spec and DESCRIBE", () => {
    const p = (channels: 2 | 6 | 8, highQuality: boolean, packetDurationMs: 5 | 10 = 5) =>
      audioParams({ audio: { channels, channelMask: 0, highQuality, packetDurationMs }, encryption: enc(4) });
    expect(p(2, false)).toMatchObject({ bitrateBps: 96_000, layout: { streams: 1, coupled: 1, mapping: [0, 1] }, frameSamples: 240, encrypted: true });
    expect(p(2, true).bitrateBps).toBe(512_000);
    expect(p(6, false)).toMatchObject({ bitrateBps: 256_000, layout: OPUS_LAYOUTS[6][0] });
    expect(p(6, true)).toMatchObject({ bitrateBps: 1_536_000, layout: OPUS_LAYOUTS[6][1] });
    expect(p(8, false)).toMatchObject({ bitrateBps: 450_000, layout: OPUS_LAYOUTS[8][0] });
    expect(p(8, true, 10)).toMatchObject({ bitrateBps: 2_048_000, layout: OPUS_LAYOUTS[8][1], frameSamples: 480 });
    // the layout is a copy: the DESCRIBE table cannot be changed through it
    p(6, false).layout.mapping[0] = 9;
    expect(OPUS_LAYOUTS[6][0]!.mapping[0]).toBe(0);
  });
});

describe("AudioPacketizer", () => {
  test("sequence numbers wrap at 16 bits with blocks aligned to seq / 4; parity names its block", () => {
    const pk = new AudioPacketizer({ packetDurationMs: 10, cipher: null, riKeyId: 0, fec });
    const out: Uint8Array[] = [];
    for (let i = 0; i < 65536 + 8; i++) out.push(...pk.packetize(new Uint8Array(20).fill(i & 0xff)));
    const parsed = out.map((b) => parseRtp(b)!);
    const data = parsed.filter((p) => p.payloadType === 97);
    expect(data.length).toBe(65544);
    expect(data[65536]!.seq).toBe(0);
    expect(data[65536]!.timestamp).toBe(655360);
    const parity = parsed.filter((p) => p.payloadType === 127);
    expect(parity.length).toBe((65544 / 4) * 2);
    const last = parity.at(-1)!;
    const v = new DataView(last.body.buffer, last.body.byteOffset);
    expect([last.body[0], last.body[1], v.getUint16(2), v.getUint32(4), v.getUint32(8)]).toEqual([1, 97, 4, 655400, 0]);
    expect(last.seq).toBe(9);
    expect(last.body.length).toBe(12 + 20);
  });

  test("a block whose payload lengths differ gets no parity, the next block does", () => {
    const pk = new AudioPacketizer({ packetDurationMs: 5, cipher: null, riKeyId: 0, fec });
    const counts = [10, 10, 11, 10, 10, 10, 10, 10].map((n) => pk.packetize(new Uint8Array(n)).length);
    expect(counts).toEqual([1, 1, 1, 1, 1, 1, 1, 3]);
    expect(pk.stats).toEqual({ dataPackets: 8, parityPackets: 2, blocksWithoutParity: 1 });
  });

  test("encrypted payloads use IV = BE32(rikeyid + seq), with a negative rikeyid too", () => {
    const key = new Uint8Array(16).fill(0x42);
    const cipher = crypto.aesCbc(key);
    try {
      const pk = new AudioPacketizer({ packetDurationMs: 5, cipher, riKeyId: -2, fec });
      const opus = new Uint8Array(60).map((_, i) => i);
      const pkts = [0, 1, 2].map(() => pk.packetize(opus)[0]!);
      for (const [seq, b] of pkts.entries()) {
        const iv = new Uint8Array(16);
        new DataView(iv.buffer).setUint32(0, (seq - 2) >>> 0);
        expect(b.length).toBe(12 + 64);
        expect(cipher.decrypt(iv, b.subarray(12))).toEqual(opus);
      }
    } finally {
      cipher.close();
    }
  });

  test("bad input is refused and changes nothing", () => {
    expect(() => new AudioPacketizer({ packetDurationMs: 7, cipher: null, riKeyId: 0, fec })).toThrow(/5 or 10/);
    const other = Rs8Codec.create(4, 3, { library: rs8 });
    expect(() => new AudioPacketizer({ packetDurationMs: 5, cipher: null, riKeyId: 0, fec: other })).toThrow(/4 data \+ 2 parity/);
    other.close();
    const pk = new AudioPacketizer({ packetDurationMs: 5, cipher: null, riKeyId: 0, fec });
    expect(() => pk.packetize(new Uint8Array(0))).toThrow(RangeError);
    expect(() => pk.packetize(new Uint8Array(AUDIO_MAX_OPUS_BYTES + 1))).toThrow(RangeError);
    expect(pk.nextSeq).toBe(0);
    expect(pk.stats.dataPackets).toBe(0);
  });
});

describe("audio source selection", () => {
  test("nothing configured, a missing pulse socket or a missing parec: the test tone, with the reason", () => {
    expect(captureCommand({}, 2)).toEqual({ argv: null, reason: "no audio capture configured" });
    expect(captureCommand({ pulseServer: "/nonexistent/pulse/native" }, 2)).toEqual({ argv: null, reason: "pulse socket /nonexistent/pulse/native not present" });
    expect(captureCommand({ pulseServer: "/dev/null", parec: "no-such-parec-binary" }, 2)).toEqual({ argv: null, reason: "no-such-parec-binary not found on PATH" });
    const tone = openPcmSource({ pulseServer: "/nonexistent/pulse/native" }, 6, silentLogger);
    expect(tone.kind).toBe("tone");
    expect(tone.detail).toBe("test tone FL 440 Hz, FR 660 Hz, FC 880 Hz, LFE 1100 Hz, BL 1320 Hz, BR 1540 Hz");
  });

  test("a pulse socket gives parec on the default monitor with the client's channel order; a command wins", () => {
    const pulse = captureCommand({ pulseServer: "/dev/null", parec: "/usr/bin/parec" }, 6);
    expect(pulse.argv).toEqual([
      "/usr/bin/parec", "--server=unix:/dev/null", "--device=@DEFAULT_MONITOR@", "--raw", "--format=s16le", "--rate=48000",
      "--channels=6", "--channel-map=front-left,front-right,front-center,lfe,rear-left,rear-right", "--latency-msec=10",
    ]);
    expect(captureCommand({ command: ["pw-record", "--channels={channels}", "-"], pulseServer: "/dev/null" }, 8).argv).toEqual(["pw-record", "--channels=8", "-"]);
  });

  test("a command that cannot start falls back to the tone; one that exits gives counted silence", async () => {
    expect(openPcmSource({ command: ["/nonexistent/capture"] }, 2, silentLogger).kind).toBe("tone");
    const src = new CommandSource(["true"], 2, silentLogger);
    await Bun.sleep(200);
    const frame = new Int16Array(480).fill(5);
    src.read(frame);
    expect(frame.every((x) => x === 0)).toBe(true);
    expect(src.underruns).toBe(1);
    expect(src.running).toBe(false);
    src.close();
  });

  test("a command that writes a lot to stderr is drained and keeps delivering audio; its stderr is logged on exit", async () => {
    const lines: Record<string, unknown>[] = [];
    const log = { ...silentLogger, warn: (msg: string, f?: Record<string, unknown>) => lines.push({ msg, ...f }), child: () => log };
    const src = new CommandSource(["sh", "-c", "head -c 300000 /dev/zero | tr '\\0' x >&2; echo last words >&2; head -c 9600 /dev/zero"], 2, log);
    const until = Date.now() + 3000;
    while (src.running && Date.now() < until) await Bun.sleep(20);
    await Bun.sleep(50);
    const frame = new Int16Array(480).fill(3);
    src.read(frame);
    expect(src.underruns).toBe(0);
    expect(frame.every((x) => x === 0)).toBe(true);
    expect(lines.find((l) => l.msg === "audio capture command exited")).toMatchObject({ code: 0, stderr: expect.stringMatching(/^x{2000,}last words$/) });
    src.close();
  });

  test("a command producing faster than real time is bounded to 200 ms of buffered audio", async () => {
    // 10 s of silence at once
    const src = new CommandSource(["head", "-c", String(48000 * 2 * 2 * 10), "/dev/zero"], 2, silentLogger);
    await Bun.sleep(300);
    expect(src.dropped).toBeGreaterThan(48000 * 2 * 2 * 9);
    const frame = new Int16Array(480);
    let frames = 0;
    while (src.underruns === 0 && frames < 1000) {
      src.read(frame);
      frames++;
    }
    expect(frames - 1).toBe(40); // 200 ms of 5 ms frames
    src.close();
  });
});

describe("config", () => {
  test("gamestreamAudio: defaults, a capture command, bad values refused", () => {
    expect(testConfig().gamestreamAudio).toEqual({ parec: "parec" });
    expect(testConfig({ gamestreamAudio: { captureCommand: ["pw-record", "-"], pulseServer: "/run/vm/pulse" } }).gamestreamAudio).toEqual({
      captureCommand: ["pw-record", "-"], pulseServer: "/run/vm/pulse", parec: "parec",
    });
    expect(() => testConfig({ gamestreamAudio: { captureCommand: [] } })).toThrow();
    expect(() => testConfig({ gamestreamAudio: { captureCommand: "parec" } })).toThrow();
    const dir = tempDir("neuron-audio-cfg-");
    try {
      const file = join(dir.path, "config.json");
      writeFileSync(file, JSON.stringify({ gamestreamAudio: { captureCommand: ["parec", "--raw"], bogus: 1 } }));
      expect(() => loadConfig({ configPath: file, env: {}, flags: {} })).toThrow(/bogus/);
      writeFileSync(file, JSON.stringify({ gamestreamAudio: { captureCommand: ["parec", "--raw"] } }));
      expect(loadConfig({ configPath: file, env: {}, flags: {} }).gamestreamAudio.captureCommand).toEqual(["parec", "--raw"]);
    } finally {
      dir.cleanup();
    }
  });
});
