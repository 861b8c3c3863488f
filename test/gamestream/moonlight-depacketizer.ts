/**
 * A model of how a stock Moonlight client (moonlight-common-c's video depacketizer) turns the
 * data shards of a frame into decode units, written from its frame-start rules:
 *
 *  - a packet is a frame's first when its flags, less CONTAINS_PIC_DATA (0x1), are SOF (0x4)
 *    or SOF|EOF (0x6) and it is in FEC block 0; its last when EOF (0x2) is set in the last
 *    FEC block;
 *  - the first packet's payload starts with the frame header: 8 bytes when its first byte is
 *    0x01 (byte 3: 1 P-frame, 2 IDR, 4 intra refresh, 5 P after invalidation);
 *  - after it an Annex-B start code must follow (3-byte 00 00 01 or 4-byte 00 00 00 01, and
 *    the NAL header byte after it must be in the same packet); one AUD is skipped, then every
 *    SEI — each skip goes to the next start code inside this packet only;
 *  - the frame is an IDR start only when the NAL reached then is the SPS (H.264, type 7) or
 *    the VPS (HEVC, type 32). Such a first packet is walked NAL by NAL (AUD/SEI skipped again,
 *    parameter sets queued); the client stops waiting for an IDR only when it meets the IDR
 *    slice there (H.264 type 5, HEVC types 16-21), so that slice must start in the first packet;
 *  - any other first packet is a P frame (a leading PPS is dropped); later packets are queued
 *    whole, zero padding included;
 *  - at the last packet a frame is handed to the decoder, or dropped with "Waiting for IDR
 *    frame" while no IDR has been seen.
 *
 * Where the client's debug build would assert (a skip that runs off the packet, no start code
 * after the header), the model records it in `asserts` and then does what a release build does.
 */

export type DepacketizerCodec = "h264" | "hevc";

/** The fields of one data shard the depacketizer reads (after any FEC recovery). */
export interface VideoPacket {
  frameIndex: number;
  flags: number;
  fecBlock: number;
  lastFecBlock: number;
  /** Everything after the 16-byte NV_VIDEO_PACKET header. */
  payload: Uint8Array;
}

export interface DecodeUnit {
  frameIndex: number;
  type: "idr" | "p";
  /** Byte 3 of the frame header. */
  headerType: number;
  /** What the client gives its decoder: the queued fragments, in order. */
  data: Uint8Array;
}

export interface FirstPacketReport {
  frameIndex: number;
  /** Payload bytes after the frame header. */
  contentBytes: number;
  /** "idr" when the first packet is recognised as an IDR start and holds the IDR slice's start. */
  start: "idr" | "p" | "idr-without-slice";
  /** Offset (in the content) of the NAL the frame-start test looked at. */
  decidingNalAt: number;
}

const FLAG_PIC = 0x1, FLAG_EOF = 0x2, FLAG_SOF = 0x4;

const le32 = (b: Uint8Array, o: number) => (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;

/** The packet fields of a plaintext shard (RTP 12 + reserved 4 + NV_VIDEO_PACKET 16 + payload). */
export function parseShard(shard: Uint8Array): VideoPacket {
  return {
    frameIndex: le32(shard, 20),
    flags: shard[24]!,
    fecBlock: (shard[27]! >> 4) & 3,
    lastFecBlock: (shard[27]! >> 6) & 3,
    payload: shard.subarray(32),
  };
}

/** A view of a packet's bytes: offset and remaining length, as the client walks them. */
interface Cursor {
  b: Uint8Array;
  off: number;
  len: number;
}

export class MoonlightDepacketizer {
  waitingForIdr = true;
  readonly units: DecodeUnit[] = [];
  readonly firstPackets: FirstPacketReport[] = [];
  readonly log: string[] = [];
  readonly asserts: string[] = [];
  private decoding = false;
  private nextFrame = 0;
  private frameType: "idr" | "p" = "p";
  private headerType = 0;
  private fragments: Uint8Array[] = [];

  constructor(private readonly codec: DepacketizerCodec) {}

  /** Length of the start code at the cursor (3 or 4), or 0; the NAL header byte must follow. */
  private startCode(c: Cursor): number {
    if (c.len <= 3) return 0;
    const b = c.b, o = c.off;
    if (b[o] === 0 && b[o + 1] === 0) {
      if (b[o + 2] === 0) {
        if (c.len > 4 && b[o + 3] === 1) return 4;
      } else if (b[o + 2] === 1) return 3;
    }
    return 0;
  }

  /** NAL type at the cursor, or -1 when no start code is there. */
  private nalType(c: Cursor): number {
    const n = this.startCode(c);
    if (!n) return -1;
    const h = c.b[c.off + n]!;
    return this.codec === "h264" ? h & 0x1f : (h & 0x7e) >> 1;
  }

  private isAud = (c: Cursor) => this.nalType(c) === (this.codec === "h264" ? 9 : 35);
  private isSei = (c: Cursor) => this.nalType(c) === (this.codec === "h264" ? 6 : 39);
  private isPps = (c: Cursor) => this.nalType(c) === (this.codec === "h264" ? 8 : 34);
  private isIdrStart = (c: Cursor) => this.nalType(c) === (this.codec === "h264" ? 7 : 32);
  private isRefFrameStart(c: Cursor): boolean {
    const t = this.nalType(c);
    return this.codec === "h264" ? t === 5 : t >= 16 && t <= 21;
  }
  private isFiller = (c: Cursor) => this.nalType(c) === (this.codec === "h264" ? 12 : 38);

  private skipToNextNalOrEnd(c: Cursor): void {
    const n = this.startCode(c);
    c.off += n;
    c.len -= n;
    while (!this.startCode(c)) {
      if (c.len === 0) return;
      c.off++;
      c.len--;
    }
  }

  private skipToNextNal(c: Cursor, frameIndex: number, what: string): void {
    this.skipToNextNalOrEnd(c);
    if (c.len === 0) this.asserts.push(`frame ${frameIndex}: skipping ${what} ran off the end of the first packet`);
  }

  private queue(b: Uint8Array, off: number, len: number): void {
    this.fragments.push(b.slice(off, off + len));
  }

  /** Feeds one data shard's fields, in stream order. */
  push(p: VideoPacket): void {
    const first = ((p.flags & ~FLAG_PIC) === (FLAG_SOF | FLAG_EOF) || (p.flags & ~FLAG_PIC) === FLAG_SOF) && p.fecBlock === 0;
    const last = (p.flags & FLAG_EOF) !== 0 && p.fecBlock === p.lastFecBlock;
    if (p.frameIndex < this.nextFrame) return; // a packet of an older frame
    if (first === this.decoding) this.asserts.push(`frame ${p.frameIndex}: first=${first} while decoding=${this.decoding}`);
    const c: Cursor = { b: p.payload, off: 0, len: p.payload.length };
    if (first) {
      if (p.frameIndex > this.nextFrame && this.nextFrame !== 0) this.log.push(`Network dropped frames ${this.nextFrame}..${p.frameIndex - 1}`);
      this.nextFrame = p.frameIndex;
      this.decoding = true;
      this.frameType = "p";
      this.fragments = [];
      if (c.len < 8) {
        this.asserts.push(`frame ${p.frameIndex}: first packet shorter than the frame header`);
        return;
      }
      this.headerType = c.b[3]!;
      if (![1, 2, 4, 5, 104].includes(this.headerType)) this.asserts.push(`frame ${p.frameIndex}: unrecognized frame type ${this.headerType}`);
      if (c.b[0] !== 0x01) this.asserts.push(`frame ${p.frameIndex}: frame header byte 0 is ${c.b[0]}, not 0x01`);
      c.off += 8;
      c.len -= 8;
      const contentBytes = c.len;
      if (!this.startCode(c)) {
        this.asserts.push(`frame ${p.frameIndex}: no start code after the frame header`);
        this.skipToNextNal(c, p.frameIndex, "to a start code");
      }
      if (this.isAud(c)) this.skipToNextNal(c, p.frameIndex, "an AUD");
      while (this.isSei(c)) this.skipToNextNal(c, p.frameIndex, "an SEI");
      const decidingNalAt = c.off - 8;
      if (this.isIdrStart(c)) {
        const sawSlice = this.slowPath(c, p.frameIndex);
        this.firstPackets.push({ frameIndex: p.frameIndex, contentBytes, start: sawSlice ? "idr" : "idr-without-slice", decidingNalAt });
      } else {
        this.firstPackets.push({ frameIndex: p.frameIndex, contentBytes, start: "p", decidingNalAt });
        if (this.isPps(c)) this.skipToNextNal(c, p.frameIndex, "a PPS in front of a P frame");
        this.queue(c.b, c.off, c.len);
      }
    } else {
      this.queue(c.b, c.off, c.len);
    }
    if (last) {
      this.decoding = false;
      this.nextFrame = p.frameIndex + 1;
      if (this.waitingForIdr) {
        this.log.push("Waiting for IDR frame");
        this.fragments = [];
        return;
      }
      const data = new Uint8Array(this.fragments.reduce((n, f) => n + f.length, 0));
      let o = 0;
      for (const f of this.fragments) {
        data.set(f, o);
        o += f.length;
      }
      this.fragments = [];
      this.units.push({ frameIndex: p.frameIndex, type: this.frameType, headerType: this.headerType, data });
    }
  }

  /** The first packet of an IDR, NAL by NAL; true when the IDR slice starts in it. */
  private slowPath(c: Cursor, frameIndex: number): boolean {
    let sawSlice = false;
    while (c.len !== 0) {
      if (!this.startCode(c)) this.skipToNextNal(c, frameIndex, "padding");
      while (this.isAud(c) || this.isSei(c)) this.skipToNextNal(c, frameIndex, "an AUD/SEI inside the IDR's first packet");
      const start = c.off;
      let pic = false;
      if (this.isRefFrameStart(c)) {
        this.waitingForIdr = false;
        this.frameType = "idr";
        sawSlice = true;
        pic = true;
      }
      this.skipToNextNalOrEnd(c);
      if (pic) {
        while (c.len !== 0) {
          if (!this.isRefFrameStart(c) && !this.isFiller(c))
            this.asserts.push(`frame ${frameIndex}: NAL type ${this.nalType(c)} after the IDR slice in the first packet`);
          this.skipToNextNalOrEnd(c);
        }
      }
      this.queue(c.b, start, c.off - start);
    }
    return sawSlice;
  }
}

/** Drops the zero padding the last packet of a frame carries (for comparing with the access unit). */
export function trimZeros(b: Uint8Array): Uint8Array {
  let n = b.length;
  while (n > 0 && b[n - 1] === 0) n--;
  return b.subarray(0, n);
}
