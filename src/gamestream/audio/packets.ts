/**
 * GameStream audio packets (shared/specs/gamestream.md, Audio):
 *
 *   data   : RTP 12 B (0x80, PT 97, BE16 seq, BE32 timestamp in ms, BE32 ssrc 0) ‖ payload
 *   parity : RTP 12 B (0x80, PT 127, BE16 lastDataSeq + 1 + x, BE32 timestamp, ssrc 0)
 *            ‖ u8 shardIdx ‖ u8 97 ‖ BE16 baseSeq ‖ BE32 baseTs ‖ BE32 ssrc 0 ‖ parity
 *
 * The payload is the Opus packet, AES-128-CBC (PKCS#7) encrypted with IV =
 * BE32(rikeyid + seq) ‖ 12 zero bytes when the client enabled audio encryption.
 * Every 4 data packets (seq 4n..4n+3, the block the client derives from seq / 4)
 * are followed by 2 parity packets over their (encrypted) payloads with the fixed
 * audio matrix. CBR Opus keeps every payload of a block the same length; a block
 * whose lengths differ gets no parity (counted), never a wrong one.
 */
import type { AesCbc } from "../../../ffi/crypto.ts";
import type { Rs8Codec } from "../../../ffi/rs8.ts";

export const AUDIO_PAYLOAD_TYPE = 97;
export const AUDIO_FEC_PAYLOAD_TYPE = 127;
export const RTP_HEADER_BYTES = 12;
export const AUDIO_FEC_HEADER_BYTES = 12;
export const AUDIO_DATA_SHARDS = 4;
export const AUDIO_PARITY_SHARDS = 2;
/** Largest Opus packet accepted (7.1 at 2048 kbps, 10 ms is 2,560 bytes). */
export const AUDIO_MAX_OPUS_BYTES = 4000;

export interface AudioPacketizerOptions {
  /** Timestamp step per packet, ms (the client's packetDuration). */
  packetDurationMs: number;
  /** AES-128-CBC with the session key, or null when audio is not encrypted. */
  cipher: AesCbc | null;
  /** The launch's rikeyid (signed 32-bit as the client sent it). */
  riKeyId: number;
  /** The 4+2 audio codec (Rs8Codec.audio()). */
  fec: Rs8Codec;
}

export interface AudioPacketizerStats {
  dataPackets: number;
  parityPackets: number;
  /** Blocks sent without parity because payload lengths differed. */
  blocksWithoutParity: number;
}

const MAX_PAYLOAD = AUDIO_MAX_OPUS_BYTES + 16;

export class AudioPacketizer {
  private seq = 0;
  private timestamp = 0;
  private readonly iv = new Uint8Array(16);
  private readonly ivView = new DataView(this.iv.buffer);
  /** The block's payloads, shard i at i * MAX_PAYLOAD (data 0-3, parity 4-5). */
  private readonly block = new Uint8Array((AUDIO_DATA_SHARDS + AUDIO_PARITY_SHARDS) * MAX_PAYLOAD);
  private blockLen = -1;
  private blockBaseTs = 0;
  readonly stats: AudioPacketizerStats = { dataPackets: 0, parityPackets: 0, blocksWithoutParity: 0 };

  constructor(private readonly o: AudioPacketizerOptions) {
    if (o.fec.dataShards !== AUDIO_DATA_SHARDS || o.fec.parityShards !== AUDIO_PARITY_SHARDS) throw new RangeError("the audio FEC codec is 4 data + 2 parity");
    if (o.packetDurationMs !== 5 && o.packetDurationMs !== 10) throw new RangeError("packet duration must be 5 or 10 ms");
  }

  /** Sequence number the next data packet gets. */
  get nextSeq(): number {
    return this.seq;
  }

  /**
   * Turns one Opus packet into the packets to send now: its data packet and, when
   * it completes a block, the block's two parity packets.
   */
  packetize(opus: Uint8Array): Uint8Array[] {
    if (opus.length < 1 || opus.length > AUDIO_MAX_OPUS_BYTES) throw new RangeError(`Opus packet of ${opus.length} bytes (1..${AUDIO_MAX_OPUS_BYTES})`);
    const seq = this.seq;
    const shard = seq % AUDIO_DATA_SHARDS;
    const slot = this.block.subarray(shard * MAX_PAYLOAD, (shard + 1) * MAX_PAYLOAD);
    let len: number;
    if (this.o.cipher) {
      this.ivView.setUint32(0, (this.o.riKeyId + seq) >>> 0, false);
      len = this.o.cipher.encryptInto(this.iv, opus, slot);
    } else {
      slot.set(opus);
      len = opus.length;
    }
    const pkt = new Uint8Array(RTP_HEADER_BYTES + len);
    writeRtp(pkt, AUDIO_PAYLOAD_TYPE, seq, this.timestamp);
    pkt.set(slot.subarray(0, len), RTP_HEADER_BYTES);
    const out: Uint8Array[] = [pkt];
    this.stats.dataPackets++;

    if (shard === 0) {
      this.blockLen = len;
      this.blockBaseTs = this.timestamp;
    } else if (len !== this.blockLen) {
      this.blockLen = -1;
    }
    if (shard === AUDIO_DATA_SHARDS - 1) {
      if (this.blockLen > 0) out.push(...this.parity(seq, this.blockLen));
      else this.stats.blocksWithoutParity++;
    }
    this.seq = (seq + 1) & 0xffff;
    this.timestamp = (this.timestamp + this.o.packetDurationMs) >>> 0;
    return out;
  }

  private parity(lastSeq: number, len: number): Uint8Array[] {
    this.o.fec.encodeBlock(this.block, len, MAX_PAYLOAD);
    const baseSeq = (lastSeq - (AUDIO_DATA_SHARDS - 1)) & 0xffff;
    const out: Uint8Array[] = [];
    for (let x = 0; x < AUDIO_PARITY_SHARDS; x++) {
      const pkt = new Uint8Array(RTP_HEADER_BYTES + AUDIO_FEC_HEADER_BYTES + len);
      writeRtp(pkt, AUDIO_FEC_PAYLOAD_TYPE, (lastSeq + 1 + x) & 0xffff, this.timestamp);
      const v = new DataView(pkt.buffer);
      pkt[12] = x;
      pkt[13] = AUDIO_PAYLOAD_TYPE;
      v.setUint16(14, baseSeq, false);
      v.setUint32(16, this.blockBaseTs, false);
      v.setUint32(20, 0, false);
      const at = (AUDIO_DATA_SHARDS + x) * MAX_PAYLOAD;
      pkt.set(this.block.subarray(at, at + len), RTP_HEADER_BYTES + AUDIO_FEC_HEADER_BYTES);
      out.push(pkt);
      this.stats.parityPackets++;
    }
    return out;
  }
}

function writeRtp(pkt: Uint8Array, payloadType: number, seq: number, timestamp: number): void {
  const v = new DataView(pkt.buffer, pkt.byteOffset);
  pkt[0] = 0x80;
  pkt[1] = payloadType;
  v.setUint16(2, seq, false);
  v.setUint32(4, timestamp >>> 0, false);
  v.setUint32(8, 0, false);
}
