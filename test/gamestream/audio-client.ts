/**
 * A GameStream audio receiver written from shared/specs/gamestream.md (Audio), for
 * tests: pings the host from its own UDP socket, collects RTP data (PT 97) and
 * parity (PT 127) packets, drops chosen data packets on purpose, rebuilds them
 * from the 4+2 parity, decrypts AES-128-CBC and decodes Opus with the layout the
 * RTSP DESCRIBE advertised.
 */
import { createSocket, type Socket } from "node:dgram";
import { OpusDecoder, type AudioNative, type OpusLayout } from "../../ffi/audio.ts";
import type { AesCbc } from "../../ffi/crypto.ts";
import type { Rs8Codec } from "../../ffi/rs8.ts";

export interface ReceivedPacket {
  payloadType: number;
  seq: number;
  timestamp: number;
  ssrc: number;
  body: Uint8Array;
}

export function parseRtp(b: Uint8Array): ReceivedPacket | null {
  if (b.length < 12 || b[0] !== 0x80) return null;
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return { payloadType: b[1]!, seq: v.getUint16(2), timestamp: v.getUint32(4), ssrc: v.getUint32(8), body: b.slice(12) };
}

/** The layout a client reads from DESCRIBE's `a=fmtp:97 surround-params=<ch><streams><coupled><mapping digits>` (index 0 normal, 1 high quality). */
export function layoutFromDescribe(describe: string, channels: 2 | 6 | 8, highQuality: boolean): OpusLayout {
  if (channels === 2) return { streams: 1, coupled: 1, mapping: [0, 1] };
  const all = [...describe.matchAll(new RegExp(`a=fmtp:97 surround-params=${channels}(\\d)(\\d)(\\d{${channels}})`, "g"))];
  const m = all[highQuality ? 1 : 0];
  if (!m) throw new Error(`DESCRIBE has no surround-params for ${channels} channels`);
  return { streams: Number(m[1]), coupled: Number(m[2]), mapping: [...m[3]!].map(Number) };
}

export class AudioTestClient {
  readonly socket: Socket;
  readonly packets: ReceivedPacket[] = [];
  private pingTimer: ReturnType<typeof setInterval> | null = null;
  private count = 0;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on("message", (msg) => {
      const p = parseRtp(new Uint8Array(msg));
      if (p && this.packets.length < 100_000) this.packets.push(p);
    });
  }

  static async open(): Promise<AudioTestClient> {
    const s = createSocket("udp4");
    await new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()));
    return new AudioTestClient(s);
  }

  sendRaw(host: string, port: number, data: Uint8Array): void {
    this.socket.send(data, port, host);
  }

  ping(host: string, port: number, payload: string): void {
    const b = new Uint8Array(20);
    b.set(new TextEncoder().encode(payload));
    new DataView(b.buffer).setUint32(16, ++this.count);
    this.sendRaw(host, port, b);
  }

  /** Pings every 500 ms, as clients do. */
  startPinging(host: string, port: number, payload: string): void {
    this.ping(host, port, payload);
    this.pingTimer = setInterval(() => this.ping(host, port, payload), 500);
  }

  async waitForData(n: number, timeoutMs: number): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (this.packets.filter((p) => p.payloadType === 97).length < n) {
      if (Date.now() > until) throw new Error(`only ${this.packets.length} packets after ${timeoutMs} ms`);
      await Bun.sleep(20);
    }
  }

  close(): void {
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.socket.close();
  }
}

export interface RecoveryResult {
  /** Opus payloads (decrypted) in sequence order, first block to last complete one. */
  payloads: Uint8Array[];
  dropped: number;
  recovered: number;
  blocks: number;
}

/**
 * Rebuilds the data payloads of every complete block [base, base+4) from the
 * received packets, treating the data sequence numbers in `drop` as lost, then
 * decrypts them (cipher null: plain).
 */
export function recoverBlocks(
  packets: ReceivedPacket[],
  drop: (seq: number) => boolean,
  fec: Rs8Codec,
  cipher: AesCbc | null,
  riKeyId: number,
  packetDurationMs: number,
): RecoveryResult {
  const data = new Map<number, ReceivedPacket>();
  const parity = new Map<number, ReceivedPacket[]>();
  for (const p of packets) {
    if (p.payloadType === 97) data.set(p.seq, p);
    else if (p.payloadType === 127) {
      const v = new DataView(p.body.buffer, p.body.byteOffset);
      if (p.body[1] !== 97) throw new Error("parity packet names payload type " + p.body[1]);
      const base = v.getUint16(2);
      const list = parity.get(base) ?? [];
      list.push(p);
      parity.set(base, list);
    }
  }
  const bases = [...parity.keys()].sort((a, b) => a - b);
  const payloads: Uint8Array[] = [];
  let dropped = 0;
  let recovered = 0;
  for (const base of bases) {
    const par = parity.get(base)!;
    const pv = new DataView(par[0]!.body.buffer, par[0]!.body.byteOffset);
    const baseTs = pv.getUint32(4);
    const len = par[0]!.body.length - 12;
    const block = new Uint8Array(6 * len);
    const lost: number[] = [];
    for (let i = 0; i < 4; i++) {
      const p = data.get(base + i);
      if (!p || drop(base + i)) {
        if (p) dropped++;
        lost.push(i);
        continue;
      }
      if (p.timestamp !== baseTs + i * packetDurationMs) throw new Error(`seq ${p.seq}: timestamp ${p.timestamp}, block base ${baseTs}`);
      if (p.body.length !== len) throw new Error(`seq ${p.seq}: payload ${p.body.length} B, parity ${len} B`);
      block.set(p.body, i * len);
    }
    const have = new Set<number>();
    for (const p of par) {
      const idx = p.body[0]!;
      if (p.seq !== ((base + 3 + 1 + idx) & 0xffff)) throw new Error(`parity ${idx} of block ${base} has seq ${p.seq}`);
      block.set(p.body.subarray(12), (4 + idx) * len);
      have.add(idx);
    }
    for (let x = 0; x < 2; x++) if (!have.has(x)) lost.push(4 + x);
    if (lost.length > 2) continue;
    const lostData = lost.filter((i) => i < 4).length;
    if (lost.length) fec.decodeBlock(block, len, lost);
    recovered += lostData;
    for (let i = 0; i < 4; i++) {
      const shard = block.subarray(i * len, (i + 1) * len);
      if (!cipher) {
        payloads.push(shard.slice());
        continue;
      }
      const iv = new Uint8Array(16);
      new DataView(iv.buffer).setUint32(0, (riKeyId + base + i) >>> 0);
      payloads.push(cipher.decrypt(iv, shard));
    }
  }
  return { payloads, dropped, recovered, blocks: bases.length };
}

/** Decodes Opus payloads into one interleaved PCM buffer. */
export function decodeAll(n: AudioNative, channels: number, layout: OpusLayout, payloads: Uint8Array[]): Int16Array {
  const dec = OpusDecoder.open(n, channels, layout);
  const frame = new Int16Array(5760 * channels);
  const chunks: Int16Array[] = [];
  try {
    for (const p of payloads) {
      const got = dec.decode(p, frame);
      chunks.push(frame.slice(0, got * channels));
    }
  } finally {
    dec.close();
  }
  const out = new Int16Array(chunks.reduce((a, c) => a + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** Power of channel `c` at frequency `hz` (Goertzel), normalised per sample. */
export function tonePower(pcm: Int16Array, channels: number, c: number, hz: number, skip = 4800, len?: number): number {
  const n = Math.min(len ?? Number.POSITIVE_INFINITY, Math.floor(pcm.length / channels) - skip);
  const k = (2 * Math.cos((2 * Math.PI * hz) / 48000));
  let s1 = 0;
  let s2 = 0;
  for (let i = 0; i < n; i++) {
    const s0 = pcm[(skip + i) * channels + c]! + k * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  return (s1 * s1 + s2 * s2 - k * s1 * s2) / (n * n);
}

/** Start frame of the loudest one-second window (all channels), in 0.1 s steps: where a played signal is. */
export function loudestSecond(pcm: Int16Array, channels: number): number {
  const frames = Math.floor(pcm.length / channels);
  let best = 0;
  let bestEnergy = -1;
  for (let start = 0; start + 48000 <= frames; start += 4800) {
    let e = 0;
    for (let i = start * channels; i < (start + 48000) * channels; i++) e += pcm[i]! * pcm[i]!;
    if (e > bestEnergy) {
      bestEnergy = e;
      best = start;
    }
  }
  return best;
}
