/**
 * The VM's sound through a real PulseAudio server: a null sink stands for the
 * VM's output, `pacat` plays a two-tone signal into it, and the audio stream
 * records its monitor with `parec` (gamestreamAudio.pulseServer) — the receiver
 * from the spec hears the tones on the right channels.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AudioNative } from "../../ffi/audio.ts";
import { NativeCrypto } from "../../ffi/crypto.ts";
import { resolveNativePath } from "../../ffi/native.ts";
import { Rs8Codec, Rs8Library } from "../../ffi/rs8.ts";
import { openPcmSource } from "../../src/gamestream/audio/source.ts";
import { AudioStream } from "../../src/gamestream/audio/stream.ts";
import { parseAnnounce } from "../../src/gamestream/rtsp/announce.ts";
import { SessionStore } from "../../src/gamestream/sessions.ts";
import { silentLogger } from "../../src/log.ts";
import { AudioTestClient, decodeAll, recoverBlocks, loudestSecond, tonePower } from "./audio-client.ts";
import { SAMPLE_SDP } from "./rtsp-fixtures.ts";

const missing = ["pulseaudio", "parec", "pacat"].filter((b) => !Bun.which(b));
const dir = mkdtempSync(join(tmpdir(), "neuron-pulse-"));
const socket = join(dir, "native");
let server: Bun.Subprocess | null = null;
let player: Bun.Subprocess<"pipe", "ignore", "ignore"> | null = null;
const env = { HOME: dir, XDG_RUNTIME_DIR: dir, PATH: process.env.PATH ?? "/usr/bin:/bin" };

beforeAll(async () => {
  if (missing.length) return;
  server = Bun.spawn(
    ["pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1", "--use-pid-file=no", "--disable-shm=yes",
      "-L", `module-native-protocol-unix socket=${socket} auth-anonymous=1`, "-L", "module-null-sink sink_name=vm rate=48000 channels=2"],
    { env, stdout: "ignore", stderr: "ignore" },
  );
  const until = Date.now() + 10_000;
  while (!existsSync(socket)) {
    if (Date.now() > until) throw new Error("pulseaudio did not create its socket");
    await Bun.sleep(50);
  }
});

afterAll(async () => {
  player?.kill();
  server?.kill();
  await server?.exited;
  rmSync(dir, { recursive: true, force: true });
});

/** 10 s of 48 kHz stereo s16le: 1000 Hz left, 1500 Hz right (pacat is stopped when the test ends). */
function twoTones(): Uint8Array {
  const n = 48000 * 10;
  const pcm = new Int16Array(n * 2);
  for (let i = 0; i < n; i++) {
    pcm[2 * i] = Math.round(6000 * Math.sin((2 * Math.PI * 1000 * i) / 48000));
    pcm[2 * i + 1] = Math.round(6000 * Math.sin((2 * Math.PI * 1500 * i) / 48000));
  }
  return new Uint8Array(pcm.buffer);
}

test("parec on the VM sink's monitor is the source; the tones arrive on their channels", async () => {
  if (missing.length) return console.warn(`skip: ${missing.join(", ")} not installed (pulseaudio, pulseaudio-utils)`);
  const path = resolveNativePath({});
  const natives = { audio: new AudioNative(path), crypto: NativeCrypto.load({ explicit: path }), rs8: Rs8Library.open({ explicit: path }) };
  const s = new SessionStore().start({
    appId: 1, appName: "Desktop", vmName: "win", width: 1280, height: 720, fps: 60, riKey: new Uint8Array(16).fill(7), riKeyId: 1,
    localAudioPlayMode: 0, surroundAudioInfo: 0x30002, remoteControllersBitmap: 0, gcmap: 0, hdr: false, encryptedRtsp: true, clientFingerprint: "t",
  });
  s.stream = parseAnnounce(SAMPLE_SDP.replace(/encryptionEnabled:\d+/, "encryptionEnabled:1"), { codecModeSupport: 1, encryptionSupported: 7 });

  player = Bun.spawn(["pacat", `--server=unix:${socket}`, "--device=vm", "--raw", "--format=s16le", "--rate=48000", "--channels=2", "--latency-msec=20"], { env, stdin: "pipe", stdout: "ignore", stderr: "ignore" });
  // pacat takes the 10 s in real time: do not wait for it to drain
  player.stdin.write(twoTones());
  void Promise.resolve(player.stdin.end()).catch(() => {});

  const stream = await AudioStream.start({
    host: "127.0.0.1", port: 0, session: s, natives, log: silentLogger,
    openSource: (ch) => openPcmSource({ pulseServer: socket }, ch, silentLogger),
  });
  const client = await AudioTestClient.open();
  try {
    client.startPinging("127.0.0.1", stream.port, s.rtsp.audioPingPayload);
    await client.waitForData(500, 8000);
  } finally {
    client.close();
    await stream.stop();
  }
  const info = stream.info();
  expect(info.source).toBe("command");
  expect(info.sourceDetail).toContain("parec");
  expect(info.sourceDetail).toContain("@DEFAULT_MONITOR@");
  const fec = Rs8Codec.audio({ library: natives.rs8 });
  try {
    const r = recoverBlocks(client.packets, (seq) => seq % 7 === 3, fec, null, s.riKeyId, 5);
    expect(r.recovered).toBe(r.dropped);
    const pcm = decodeAll(natives.audio, 2, { streams: 1, coupled: 1, mapping: [0, 1] }, r.payloads);
    // Silence comes first while parec starts (and last, if the machine is slow enough for the tones to end
    // before the capture does): judge the loudest second.
    expect(pcm.length / 2).toBeGreaterThanOrEqual(48000);
    const at = loudestSecond(pcm, 2);
    // Tone power per 0.1 s block of that second, then the median: a gap on a loaded machine breaks the
    // tone's phase, which would make a one-second Goertzel sum read anywhere between 0 and the full level.
    const median = (ch: number, hz: number) => {
      const blocks = Array.from({ length: 10 }, (_, b) => tonePower(pcm, 2, ch, hz, at + b * 4800, 4800)).sort((x, y) => x - y);
      return (blocks[4]! + blocks[5]!) / 2;
    };
    const l1000 = median(0, 1000), l1500 = median(0, 1500);
    const r1000 = median(1, 1000), r1500 = median(1, 1500);
    // a clean tone of amplitude 6000 reads (6000/2)^2 = 9e6; silence ~0
    expect(l1000).toBeGreaterThan(1e6);
    expect(r1500).toBeGreaterThan(1e6);
    expect(l1000).toBeGreaterThan(50 * l1500);
    expect(r1500).toBeGreaterThan(50 * r1000);
  } finally {
    fec.close();
    natives.crypto.close();
  }
}, 20_000);
