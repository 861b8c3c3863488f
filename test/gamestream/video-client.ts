/**
 * A GameStream video receiver written from shared/specs/gamestream.md: pings the host's
 * video port, receives shards on 127.0.0.1, opens AES-GCM records when given the key,
 * checks every header field, drops shards on purpose and rebuilds them through the
 * Reed–Solomon parity, and reassembles access units (Annex-B) with their frame headers.
 */
import dgram from "node:dgram";
import type { AesGcm } from "../../ffi/crypto.ts";
import { Rs8Codec } from "../../ffi/rs8.ts";
import { parseShard, type MoonlightDepacketizer } from "./moonlight-depacketizer.ts";

export interface ReceivedFrame {
  frameIndex: number;
  frameType: number;
  latencyTenthMs: number;
  blocks: number;
  dataShards: number;
  parityShards: number;
  recovered: number;
  au: Uint8Array;
}

interface Shard {
  seq: number;
  frameIndex: number;
  block: number;
  lastBlock: number;
  shardIndex: number;
  dataShards: number;
  pct: number;
  bytes: Uint8Array; // the plaintext shard
}

const le32 = (b: Uint8Array, o: number) => (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
const be16 = (b: Uint8Array, o: number) => (b[o]! << 8) | b[o + 1]!;

export class VideoTestClient {
  readonly socket: dgram.Socket;
  readonly frames: ReceivedFrame[] = [];
  readonly errors: string[] = [];
  datagrams = 0;
  private pending = new Map<number, Shard[]>();
  private lastSeq = -1;
  private lastGcmCounter = -1n;
  private pingTimer: ReturnType<typeof setInterval> | null = null;
  private pingCount = 0;
  private get bound(): boolean {
    try {
      this.socket.address();
      return true;
    } catch {
      return false;
    }
  }

  constructor(
    private readonly o: {
      port: number;
      pingPayload: string;
      packetSize: number;
      gcm?: AesGcm;
      /** Data shards of each block to drop on purpose (capped at the block's parity). */
      drop?: (frameIndex: number, block: number, parity: number) => number;
      /** Gets every data shard, recovered ones included, in stream order (as a client's FEC queue passes them on). */
      depacketizer?: MoonlightDepacketizer;
    },
  ) {
    this.socket = dgram.createSocket({ type: "udp4", recvBufferSize: 16 << 20 });
    this.socket.on("message", (msg) => this.onDatagram(new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength)));
  }

  async bind(): Promise<void> {
    await new Promise<void>((resolve) => this.socket.bind(0, "127.0.0.1", resolve));
  }

  /** Binds (unless bound) and pings every 100 ms from then on. */
  async start(): Promise<void> {
    if (!this.bound) await this.bind();
    this.ping();
    this.pingTimer = setInterval(() => this.ping(), 100);
  }

  ping(payload = this.o.pingPayload): void {
    const b = Buffer.alloc(20);
    b.write(payload, 0, "latin1");
    b.writeUInt32BE(++this.pingCount, 16);
    this.socket.send(b, this.o.port, "127.0.0.1");
  }

  send(bytes: Uint8Array): void {
    this.socket.send(bytes, this.o.port, "127.0.0.1");
  }

  private fail(msg: string): void {
    if (this.errors.length < 50) this.errors.push(msg);
  }

  private onDatagram(d: Uint8Array): void {
    this.datagrams++;
    const S = this.o.packetSize + 16;
    let shard: Uint8Array;
    if (this.o.gcm) {
      if (d.length !== S + 32) return this.fail(`encrypted datagram of ${d.length} bytes, want ${S + 32}`);
      const iv = d.slice(0, 12);
      if (iv[11] !== 0x56 || iv[8] || iv[9] || iv[10]) return this.fail("bad video IV layout");
      const counter = new DataView(iv.buffer).getBigUint64(0, true);
      if (counter !== this.lastGcmCounter + 1n) this.fail(`IV counter ${counter} after ${this.lastGcmCounter}`);
      this.lastGcmCounter = counter;
      try {
        shard = this.o.gcm.open(d.slice(16), iv);
      } catch {
        return this.fail("shard failed authentication");
      }
      if (le32(d, 12) !== le32(shard, 20)) this.fail("prefix frameIndex differs from the shard's");
    } else {
      if (d.length !== S) return this.fail(`datagram of ${d.length} bytes, want ${S}`);
      shard = d.slice();
    }
    if (shard[0] !== 0x90 || shard[1] !== 0 || le32(shard, 8) !== 0) this.fail("bad RTP header");
    const seq = be16(shard, 2);
    if (this.lastSeq >= 0 && seq !== ((this.lastSeq + 1) & 0xffff)) this.fail(`RTP seq ${seq} after ${this.lastSeq}`);
    this.lastSeq = seq;
    const fecInfo = le32(shard, 28);
    const s: Shard = {
      seq,
      frameIndex: le32(shard, 20),
      block: (shard[27]! >> 4) & 3,
      lastBlock: (shard[27]! >> 6) & 3,
      shardIndex: (fecInfo >>> 12) & 0x3ff,
      dataShards: fecInfo >>> 22,
      pct: (fecInfo >>> 4) & 0xff,
      bytes: shard,
    };
    // multiFecFlags is part of the encoded content: 0x10 on data shards, parity bytes on parity shards
    if (s.shardIndex < s.dataShards && shard[26] !== 0x10) this.fail("multiFecFlags is not 0x10");
    const list = this.pending.get(s.frameIndex) ?? [];
    list.push(s);
    this.pending.set(s.frameIndex, list);
    const total = s.dataShards + Math.floor((s.dataShards * s.pct + 99) / 100);
    if (s.block === s.lastBlock && s.shardIndex === total - 1) this.completeFrame(s.frameIndex);
  }

  private completeFrame(frameIndex: number): void {
    const shards = this.pending.get(frameIndex)!;
    this.pending.delete(frameIndex);
    const prev = this.frames.at(-1);
    if (prev && frameIndex !== prev.frameIndex + 1) this.fail(`frame ${frameIndex} after ${prev.frameIndex}`);
    const S = this.o.packetSize + 16;
    const P = S - 32;
    const payload: Uint8Array[] = [];
    let parityTotal = 0, dataTotal = 0, recovered = 0;
    const blocks = shards[0]!.lastBlock + 1;
    for (let b = 0; b < blocks; b++) {
      const bs = shards.filter((x) => x.block === b).sort((x, y) => x.shardIndex - y.shardIndex);
      if (!bs.length) return this.fail(`frame ${frameIndex}: block ${b} missing`);
      const d = bs[0]!.dataShards;
      const p = Math.floor((d * bs[0]!.pct + 99) / 100);
      if (bs.length !== d + p) return this.fail(`frame ${frameIndex} block ${b}: ${bs.length} shards, want ${d + p}`);
      const block = new Uint8Array((d + p) * S);
      bs.forEach((x, i) => {
        if (x.shardIndex !== i) this.fail(`frame ${frameIndex} block ${b}: shard index ${x.shardIndex} at ${i}`);
        if (x.dataShards !== d) this.fail("dataShards differs inside a block");
        block.set(x.bytes, i * S);
      });
      // the checks every data shard must pass before we destroy some of them
      for (let i = 0; i < d; i++) {
        const sh = block.subarray(i * S, (i + 1) * S);
        const want = 1 | (i === 0 ? 4 : 0) | (i === d - 1 ? 2 : 0);
        if (sh[24] !== want) this.fail(`frame ${frameIndex} block ${b} shard ${i}: flags ${sh[24]} want ${want}`);
        if (le32(sh, 16) !== ((bs[i]!.seq << 8) >>> 0) && ((le32(sh, 16) >>> 8) & 0xffff) !== bs[i]!.seq)
          this.fail(`frame ${frameIndex}: streamPacketIndex ${le32(sh, 16)} does not follow seq ${bs[i]!.seq}`);
      }
      const originals = block.slice(0, d * S);
      const nDrop = Math.min(p, d, this.o.drop?.(frameIndex, b, p) ?? 0);
      if (nDrop > 0) {
        const lost: number[] = [];
        for (let i = 0; i < nDrop; i++) {
          const idx = (i * 7 + frameIndex) % d;
          if (lost.includes(idx)) continue;
          lost.push(idx);
          block.fill(0xa5, idx * S, (idx + 1) * S);
        }
        const rs = Rs8Codec.create(d, p);
        rs.decodeBlock(block, S, lost);
        rs.close();
        // what a client rewrites on a recovered shard: RTP header, frameIndex, multiFecBlocks, fecInfo
        for (const idx of lost) {
          const a = block.subarray(idx * S, (idx + 1) * S), o = originals.subarray(idx * S, (idx + 1) * S);
          if (Buffer.compare(Buffer.from(a.subarray(12, 20)), Buffer.from(o.subarray(12, 20))) !== 0 || a[24] !== o[24] || a[25] !== o[25] || a[26] !== o[26])
            this.fail(`frame ${frameIndex} block ${b}: recovered header fields differ`);
          if (Buffer.compare(Buffer.from(a.subarray(32)), Buffer.from(o.subarray(32))) !== 0) this.fail(`frame ${frameIndex} block ${b}: recovered payload differs`);
        }
        recovered += lost.length;
      }
      for (let i = 0; i < d; i++) payload.push(block.subarray(i * S + 32, (i + 1) * S));
      // a client rewrites frameIndex and the block numbers of a recovered shard from its block
      if (this.o.depacketizer)
        for (let i = 0; i < d; i++)
          this.o.depacketizer.push({ ...parseShard(block.subarray(i * S, (i + 1) * S)), frameIndex, fecBlock: b, lastFecBlock: blocks - 1 });
      dataTotal += d;
      parityTotal += p;
    }
    const first = payload[0]!;
    if (first[0] !== 0x01 || first[6] !== 0 || first[7] !== 0) return this.fail(`frame ${frameIndex}: bad frame header`);
    const lastLen = first[4]! | (first[5]! << 8);
    const total = (dataTotal - 1) * P + lastLen;
    const all = new Uint8Array(dataTotal * P);
    payload.forEach((p, i) => all.set(p, i * P));
    if (all.subarray(total).some((x) => x !== 0)) this.fail(`frame ${frameIndex}: padding is not zero`);
    this.frames.push({
      frameIndex,
      frameType: first[3]!,
      latencyTenthMs: first[1]! | (first[2]! << 8),
      blocks,
      dataShards: dataTotal,
      parityShards: parityTotal,
      recovered,
      au: all.slice(8, total),
    });
  }

  annexB(): Uint8Array {
    return Buffer.concat(this.frames.map((f) => f.au));
  }

  async close(): Promise<void> {
    if (this.pingTimer) clearInterval(this.pingTimer);
    await new Promise<void>((resolve) => this.socket.close(() => resolve()));
  }
}
