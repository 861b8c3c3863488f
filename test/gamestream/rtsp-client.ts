/**
 * An RTSP client written from the protocol notes, for tests: requests as
 * GameStream clients send them, one per TCP connection, read to EOF; with a
 * key, every message is an encrypted record (AES-128-GCM by node:crypto, an
 * implementation independent of the host's).
 */
import { createCipheriv, createDecipheriv } from "node:crypto";
import { connect, type Socket } from "node:net";

export interface RtspReply {
  status: number;
  reason: string;
  headers: Map<string, string>;
  body: string;
  /** Sequence number of the host's record (encrypted RTSP). */
  hostSeq: number | null;
}

export function iv(seq: number, origin: "C" | "H"): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt32LE(seq >>> 0, 0);
  b[10] = origin.charCodeAt(0);
  b[11] = "R".charCodeAt(0);
  return b;
}

/** BE32(0x80000000 | len) ‖ BE32(seq) ‖ tag ‖ ciphertext. */
export function sealRecord(key: Buffer, seq: number, plaintext: Buffer, origin: "C" | "H" = "C"): Buffer {
  const c = createCipheriv("aes-128-gcm", key, iv(seq, origin));
  const ct = Buffer.concat([c.update(plaintext), c.final()]);
  const head = Buffer.alloc(8);
  head.writeUInt32BE((0x80000000 | plaintext.length) >>> 0, 0);
  head.writeUInt32BE(seq >>> 0, 4);
  return Buffer.concat([head, c.getAuthTag(), ct]);
}

export function openRecord(key: Buffer, raw: Buffer, origin: "C" | "H" = "H"): { seq: number; plaintext: Buffer } {
  if (raw.length < 24) throw new Error(`record too short (${raw.length} bytes)`);
  const word = raw.readUInt32BE(0);
  if ((word & 0x80000000) === 0) throw new Error("reply is not an encrypted record");
  const len = word & 0x7fffffff;
  if (raw.length !== 24 + len) throw new Error(`record length ${len} does not match ${raw.length - 24} bytes`);
  const seq = raw.readUInt32BE(4);
  const d = createDecipheriv("aes-128-gcm", key, iv(seq, origin));
  d.setAuthTag(raw.subarray(8, 24));
  return { seq, plaintext: Buffer.concat([d.update(raw.subarray(24)), d.final()]) };
}

export function parseReply(text: string, hostSeq: number | null = null): RtspReply {
  const sep = text.indexOf("\r\n\r\n");
  if (sep < 0) throw new Error(`reply without an empty line: ${JSON.stringify(text.slice(0, 200))}`);
  const lines = text.slice(0, sep).split("\r\n");
  const m = /^RTSP\/1\.0 (\d{3}) (.*)$/.exec(lines[0]!);
  if (!m) throw new Error(`bad status line ${JSON.stringify(lines[0])}`);
  const headers = new Map<string, string>();
  for (const l of lines.slice(1)) {
    const i = l.indexOf(":");
    headers.set(l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim());
  }
  return { status: Number(m[1]), reason: m[2]!, headers, body: text.slice(sep + 4), hostSeq };
}

/** Writes bytes (in pieces, with pauses if asked) and collects everything until the host closes. */
export function exchange(port: number, data: Buffer | Buffer[], opts: { pauseMs?: number; timeoutMs?: number } = {}): Promise<{ bytes: Buffer; closedBy: "host" | "timeout"; error: string | null }> {
  const pieces = Array.isArray(data) ? data : [data];
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let error: string | null = null;
    const socket: Socket = connect({ host: "127.0.0.1", port }, async () => {
      for (const p of pieces) {
        if (socket.destroyed) break;
        socket.write(p);
        if (opts.pauseMs) await Bun.sleep(opts.pauseMs);
      }
    });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ bytes: Buffer.concat(chunks), closedBy: "timeout", error });
    }, opts.timeoutMs ?? 5000);
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("error", (e) => (error = e.message));
    socket.on("close", () => {
      clearTimeout(timer);
      resolve({ bytes: Buffer.concat(chunks), closedBy: "host", error });
    });
  });
}

export class RtspTestClient {
  private cseq = 1;
  /** Last client record sequence number (records count from 1). */
  seq = 0;
  sessionId: string | null = null;

  constructor(
    readonly port: number,
    /** rikey for rtspenc://; null for plain rtsp://. */
    readonly key: Buffer | null,
    readonly url = `rtsp://127.0.0.1:${port}`,
  ) {}

  serialize(method: string, target: string, headers: [string, string][] = [], body?: string): Buffer {
    let text = `${method} ${target} RTSP/1.0\r\nCSeq: ${this.cseq++}\r\nX-GS-ClientVersion: 14\r\nHost: 127.0.0.1\r\n`;
    for (const [k, v] of headers) text += `${k}: ${v}\r\n`;
    const b = body === undefined ? Buffer.alloc(0) : Buffer.from(body);
    if (body !== undefined) text += `Content-type: application/sdp\r\nContent-length: ${b.length}\r\n`;
    return Buffer.concat([Buffer.from(text + "\r\n"), b]);
  }

  /** Seals a plaintext message as the next record (or leaves it plain without a key). */
  wrap(plaintext: Buffer): Buffer {
    return this.key ? sealRecord(this.key, ++this.seq, plaintext) : plaintext;
  }

  unwrap(raw: Buffer): RtspReply {
    if (!this.key) return parseReply(raw.toString("latin1"));
    const { seq, plaintext } = openRecord(this.key, raw);
    return parseReply(plaintext.toString("latin1"), seq);
  }

  async request(method: string, target: string, headers: [string, string][] = [], body?: string): Promise<RtspReply> {
    const { bytes } = await exchange(this.port, this.wrap(this.serialize(method, target, headers, body)));
    return this.unwrap(bytes);
  }

  private session(): [string, string][] {
    return this.sessionId ? [["Session", this.sessionId]] : [];
  }

  options = () => this.request("OPTIONS", this.url);
  describe = () => this.request("DESCRIBE", this.url, [["Accept", "application/sdp"], ["If-Modified-Since", "Thu, 01 Jan 1970 00:00:00 GMT"]]);

  async setup(stream: string): Promise<RtspReply> {
    const r = await this.request("SETUP", `streamid=${stream}`, [...this.session(), ["Transport", "unicast;X-GS-ClientPort=50000-50001"], ["If-Modified-Since", "Thu, 01 Jan 1970 00:00:00 GMT"]]);
    const s = r.headers.get("session");
    if (r.status === 200 && s && !this.sessionId) this.sessionId = s.split(";")[0]!;
    return r;
  }

  announce = (sdp: string, target = "streamid=control/13/0") => this.request("ANNOUNCE", target, this.session(), sdp);
  play = () => this.request("PLAY", "/", this.session());
}
