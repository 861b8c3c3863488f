/**
 * lumen/1 control messages (PROTOCOL.md "Control"): each is a 4-byte big-endian length, then
 * that many bytes of UTF-8 JSON, an object with a `type`. At most MAX_MESSAGE_BYTES per message;
 * anything longer, unparsable or not matching its schema ends the connection with an Error
 * message — nothing is allocated beyond the bound before the length is checked.
 */
import { z } from "zod";

export const MAX_MESSAGE_BYTES = 64 * 1024;
export const LUMEN_VERSION = 1;

const hex = (bytes: number) => z.string().regex(new RegExp(`^[0-9a-f]{${bytes * 2}}$`), `${bytes} bytes of lowercase hex`);
const id = z.string().min(1).max(128).regex(/^[A-Za-z0-9._:-]+$/, "letters, digits and ._:-");

export const CodecName = z.enum(["h264", "hevc"]);
export type CodecName = z.infer<typeof CodecName>;

export const Mode = z.object({
  width: z.number().int().min(16).max(8192),
  height: z.number().int().min(16).max(8192),
  fps: z.number().int().min(1).max(240),
});
export type Mode = z.infer<typeof Mode>;

export const StreamConfig = z.object({
  codec: CodecName,
  width: z.number().int().min(16).max(8192),
  height: z.number().int().min(16).max(8192),
  fps: z.number().int().min(1).max(240),
  bitrateKbps: z.number().int().min(100).max(500_000),
});
export type StreamConfig = z.infer<typeof StreamConfig>;

const DirKeys = z.object({ key: hex(16), salt: hex(4) });

export const Hello = z.object({
  type: z.literal("hello"),
  version: z.literal(LUMEN_VERSION),
  clientId: id,
  name: z.string().min(1).max(64),
  modes: z.array(Mode).min(1).max(32),
  codecs: z.array(CodecName).min(1).max(4),
  capabilities: z.array(z.string().min(1).max(32)).max(32),
  bitrateKbps: z.number().int().min(100).max(500_000).optional(),
});
export const Auth = z.object({ type: z.literal("auth"), mac: hex(32) });
export const PairStart = z.object({ type: z.literal("pair-start"), share: z.string().regex(/^(04[0-9a-f]{128}|0[23][0-9a-f]{64})$/) });
export const PairConfirm = z.object({ type: z.literal("pair-confirm"), confirm: hex(32) });
export const Start = z.object({ type: z.literal("start") });
export const Reconfigure = z.object({
  type: z.literal("reconfigure"),
  width: z.number().int().min(16).max(8192).optional(),
  height: z.number().int().min(16).max(8192).optional(),
  fps: z.number().int().min(1).max(240).optional(),
  bitrateKbps: z.number().int().min(100).max(500_000).optional(),
  codec: CodecName.optional(),
});
export const RequestIdr = z.object({ type: z.literal("request-idr") });
export const Stop = z.object({ type: z.literal("stop") });

export const ClientMessage = z.discriminatedUnion("type", [Hello, Auth, PairStart, PairConfirm, Start, Reconfigure, RequestIdr, Stop]);
export type ClientMessage = z.infer<typeof ClientMessage>;

export const Challenge = z.object({ type: z.literal("challenge"), nonce: hex(32) });
export const PairRequired = z.object({ type: z.literal("pair-required"), attemptId: z.string().max(64) });
export const PairShare = z.object({ type: z.literal("pair-share"), share: z.string().regex(/^04[0-9a-f]{128}$/) });
export const PairDone = z.object({ type: z.literal("pair-done"), confirm: hex(32) });
export const Welcome = z.object({
  type: z.literal("welcome"),
  sessionId: z.number().int().min(1).max(0xffffffff),
  udpPort: z.number().int().min(1).max(65535),
  config: StreamConfig,
  epoch: z.number().int().min(0).max(65535),
  shardBytes: z.number().int().min(64).max(8960),
  maxFrameBytes: z.number().int().min(1).max(64 << 20),
  hostToClient: DirKeys,
  clientToHost: DirKeys,
});
export const Reconfigured = z.object({ type: z.literal("reconfigured"), config: StreamConfig, epoch: z.number().int().min(0).max(65535) });
export const Bye = z.object({
  type: z.literal("bye"),
  framesSent: z.number().int().min(0),
  reason: z.string().max(200),
});
export const ErrorMessage = z.object({ type: z.literal("error"), code: z.string().max(64), message: z.string().max(500) });

export const HostMessage = z.discriminatedUnion("type", [Challenge, PairRequired, PairShare, PairDone, Welcome, Reconfigured, Bye, ErrorMessage]);
export type HostMessage = z.infer<typeof HostMessage>;

export class LumenProtocolError extends Error {
  readonly errorCode: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = "LumenProtocolError";
    this.errorCode = code;
  }
}

export function encodeMessage(msg: ClientMessage | HostMessage): Buffer {
  const body = Buffer.from(JSON.stringify(msg), "utf8");
  if (body.length > MAX_MESSAGE_BYTES) throw new LumenProtocolError("LUMEN_MESSAGE_TOO_LARGE", `message of ${body.length} bytes exceeds ${MAX_MESSAGE_BYTES}`);
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length);
  return Buffer.concat([head, body]);
}

/**
 * Splits a byte stream into messages and validates each with `schema`. Holds at most one
 * message's bytes (MAX_MESSAGE_BYTES + 4); a length over the bound throws before any buffering.
 */
export class MessageReader<T> {
  private buf: Buffer = Buffer.alloc(0);

  constructor(private readonly schema: z.ZodType<T>) {}

  /** Feeds bytes; returns the complete messages they finish. Throws LumenProtocolError. */
  push(chunk: Uint8Array): T[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : Buffer.from(chunk);
    const out: T[] = [];
    for (;;) {
      if (this.buf.length < 4) break;
      const len = this.buf.readUInt32BE(0);
      if (len === 0 || len > MAX_MESSAGE_BYTES) throw new LumenProtocolError("LUMEN_MESSAGE_TOO_LARGE", `message length ${len} is outside 1..${MAX_MESSAGE_BYTES}`);
      if (this.buf.length < 4 + len) break;
      const body = this.buf.subarray(4, 4 + len);
      this.buf = this.buf.subarray(4 + len);
      let json: unknown;
      try {
        json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(body));
      } catch {
        throw new LumenProtocolError("LUMEN_MESSAGE_MALFORMED", "a message is not UTF-8 JSON");
      }
      const r = this.schema.safeParse(json);
      if (!r.success) throw new LumenProtocolError("LUMEN_MESSAGE_INVALID", `invalid message: ${r.error.issues.slice(0, 3).map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ")}`);
      out.push(r.data);
    }
    if (this.buf.length > MAX_MESSAGE_BYTES + 4) throw new LumenProtocolError("LUMEN_MESSAGE_TOO_LARGE", "buffered bytes exceed one message");
    return out;
  }

  /** Bytes held for an unfinished message. */
  get pending(): number {
    return this.buf.length;
  }
}

/** Side-plane payloads (PROTOCOL.md "Side planes"), all little-endian. */
export const REPORT_BYTES = 24; // 'R': u64 highest seq, u64 seqs received, u32 loss runs, u32 frames complete
export const PROBE_BYTES = 8; // 'P': u64 client send ns
export const PROBE_REPLY_BYTES = 16; // 'Q': u64 client send ns, u64 host ns
