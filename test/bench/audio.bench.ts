/**
 * Audio stream figures, measured in this run (printed, one JSON object per line):
 *  - host work per packet (Opus encode + AES-CBC + RTP + FEC every 4th), stereo / 5.1 / 7.1 HQ;
 *  - a live 5 s stream to a receiver on 127.0.0.1: achieved packet rate, inter-arrival p50/p99/max,
 *    CPU of this process while streaming.
 *
 *   bun test/bench/audio.bench.ts
 */
import { AudioNative, OpusEncoder } from "../../ffi/audio.ts";
import { NativeCrypto } from "../../ffi/crypto.ts";
import { resolveNativePath } from "../../ffi/native.ts";
import { Rs8Codec, Rs8Library } from "../../ffi/rs8.ts";
import { AudioPacketizer } from "../../src/gamestream/audio/packets.ts";
import { audioParams } from "../../src/gamestream/audio/params.ts";
import { ToneSource } from "../../src/gamestream/audio/source.ts";
import { AudioStream } from "../../src/gamestream/audio/stream.ts";
import { parseAnnounce } from "../../src/gamestream/rtsp/announce.ts";
import { SessionStore } from "../../src/gamestream/sessions.ts";
import { silentLogger } from "../../src/log.ts";
import { AudioTestClient } from "../gamestream/audio-client.ts";
import { SAMPLE_SDP } from "../gamestream/rtsp-fixtures.ts";

const path = resolveNativePath({});
const natives = { audio: new AudioNative(path), crypto: NativeCrypto.load({ explicit: path }), rs8: Rs8Library.open({ explicit: path }) };
const MASKS = { 2: 3, 6: 0x3f, 8: 0x63f } as const;

function stream(channels: 2 | 6 | 8, hq: boolean) {
  const sdp = SAMPLE_SDP.replace(/numChannels:\d+/, `numChannels:${channels}`)
    .replace(/channelMask:\d+/, `channelMask:${MASKS[channels]}`)
    .replace(/AudioQuality:\d/, `AudioQuality:${hq ? 1 : 0}`);
  return parseAnnounce(sdp, { codecModeSupport: 1, encryptionSupported: 7 });
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

for (const [channels, hq] of [[2, false], [2, true], [6, false], [8, true]] as const) {
  const p = audioParams(stream(channels, hq));
  const enc = OpusEncoder.openLayout(natives.audio, { channels, bitrateBps: p.bitrateBps, frameSamples: p.frameSamples }, p.layout);
  const cipher = natives.crypto.aesCbc(new Uint8Array(16).fill(1));
  const fec = Rs8Codec.audio({ library: natives.rs8 });
  const pk = new AudioPacketizer({ packetDurationMs: 5, cipher, riKeyId: 1, fec });
  const src = new ToneSource(channels);
  const pcm = new Int16Array(p.frameSamples * channels);
  const out = new Uint8Array(4000);
  const N = 2000;
  const times: number[] = [];
  for (let i = 0; i < N; i++) {
    const t = Bun.nanoseconds();
    src.read(pcm);
    const n = enc.encode(pcm, out);
    pk.packetize(out.subarray(0, n));
    times.push((Bun.nanoseconds() - t) / 1000);
  }
  const mean = times.reduce((a, b) => a + b, 0) / N;
  console.log(JSON.stringify({ case: "per-packet host work", channels, highQuality: hq, bitrateKbps: p.bitrateBps / 1000, meanUs: +mean.toFixed(1), p99Us: +pct(times, 99).toFixed(1), cpuPctAt200pps: +((mean * 200) / 1e4).toFixed(2) }));
  enc.close();
  cipher.close();
  fec.close();
}

{
  const store = new SessionStore();
  const s = store.start({
    appId: 1, appName: "Desktop", vmName: null, width: 1280, height: 720, fps: 60, riKey: new Uint8Array(16).fill(3), riKeyId: 5,
    localAudioPlayMode: 0, surroundAudioInfo: 0x30002, remoteControllersBitmap: 0, gcmap: 0, hdr: false, encryptedRtsp: true, clientFingerprint: "bench",
  });
  s.stream = stream(2, false);
  const st = await AudioStream.start({ host: "127.0.0.1", port: 0, session: s, natives, openSource: (ch) => new ToneSource(ch), log: silentLogger });
  const client = await AudioTestClient.open();
  const arrivals: number[] = [];
  client.socket.on("message", (m) => {
    if (m[1] === 97) arrivals.push(performance.now());
  });
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  client.startPinging("127.0.0.1", st.port, s.rtsp.audioPingPayload);
  await Bun.sleep(5000);
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  client.close();
  await st.stop();
  const gaps = arrivals.slice(1).map((t, i) => t - arrivals[i]!);
  const span = (arrivals.at(-1)! - arrivals[0]!) / 1000;
  console.log(JSON.stringify({
    case: "live stereo stream 5 s (sender + receiver in one process)",
    packets: arrivals.length,
    ratePps: +((arrivals.length - 1) / span).toFixed(1),
    gapP50Ms: +pct(gaps, 50).toFixed(2),
    gapP99Ms: +pct(gaps, 99).toFixed(2),
    gapMaxMs: +Math.max(...gaps).toFixed(2),
    cpuPct: +(((cpu.user + cpu.system) / 1000 / wall) * 100).toFixed(2),
    info: st.info(),
  }));
}
natives.crypto.close();
