/**
 * The request head of the GameStream HTTP(S) ports, read incrementally and bounded before any
 * work: stock clients send one small GET per connection (request line with the query, a few
 * headers, no body), so every limit sits far above what they send and far below what costs the
 * host anything. Each chunk is scanned once (the bytes are joined only when the head is whole),
 * so a peer dribbling bytes costs O(bytes), and a bound is checked as soon as it is crossed:
 *
 *   request line   ≤ MAX_REQUEST_LINE (a hex PEM client certificate in the query is ~3 KB) → 414
 *   header lines   ≤ MAX_HEADERS, their bytes ≤ MAX_HEADER_BYTES                            → 431
 *   body           none: Content-Length > 0 → 413, Transfer-Encoding → 400
 *   method         GET or HEAD → else 405; anything malformed (non-ASCII, folded lines,
 *                  duplicate Host / Content-Length, a target not starting with /)          → 400
 */

export const MAX_REQUEST_LINE = 32 * 1024;
export const MAX_HEADER_BYTES = 8 * 1024;
export const MAX_HEADERS = 32;

export interface RequestHead {
  method: "GET" | "HEAD";
  target: string;
  /** Header names lowercased. */
  headers: Map<string, string>;
}

export type HeadResult = { kind: "incomplete" } | { kind: "head"; head: RequestHead } | { kind: "invalid"; status: 400 | 405 | 413 | 414 | 431; reason: string };

const CRLFCRLF = Buffer.from("\r\n\r\n");
const NL = 0x0a;
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$/;

export class RequestHeadReader {
  private chunks: Buffer[] = [];
  private received = 0;
  /** Offset of the request line's LF, once seen. */
  private lineEnd = -1;
  private newlines = 0;
  private tail: Buffer = Buffer.alloc(0);
  private result: HeadResult = { kind: "incomplete" };

  /** Takes the next bytes; the result stays fixed once it is not incomplete (later bytes are ignored). */
  push(chunk: Buffer): HeadResult {
    if (this.result.kind !== "incomplete" || chunk.length === 0) return this.result;
    const offset = this.received;
    this.chunks.push(chunk);
    this.received += chunk.length;
    let lines = 0;
    for (let i = chunk.indexOf(NL); i >= 0; i = chunk.indexOf(NL, i + 1)) {
      if (this.lineEnd < 0) this.lineEnd = offset + i;
      lines++;
    }
    this.newlines += lines;
    const window = this.tail.length ? Buffer.concat([this.tail, chunk]) : chunk;
    const at = window.indexOf(CRLFCRLF);
    const headEnd = at >= 0 ? offset - this.tail.length + at : -1; // offset of the blank line's CRLF pair
    this.tail = window.subarray(Math.max(0, window.length - 3));
    // bounds, checked on what is in so far
    const end = headEnd >= 0 ? headEnd : this.received;
    if (this.lineEnd < 0 ? end > MAX_REQUEST_LINE + 2 : this.lineEnd > MAX_REQUEST_LINE + 1)
      return (this.result = { kind: "invalid", status: 414, reason: `request line longer than ${MAX_REQUEST_LINE} bytes` });
    if (this.lineEnd >= 0) {
      if (end - this.lineEnd - 1 > MAX_HEADER_BYTES) return (this.result = { kind: "invalid", status: 431, reason: `request headers longer than ${MAX_HEADER_BYTES} bytes` });
      if (headEnd < 0 && this.newlines - 1 > MAX_HEADERS) return (this.result = { kind: "invalid", status: 431, reason: `more than ${MAX_HEADERS} request headers` });
    }
    if (headEnd < 0) return this.result;
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.received);
    this.chunks = [];
    return (this.result = parseHead(all.subarray(0, headEnd)));
  }
}

/** Parses a complete head (without its final CRLFCRLF). */
export function parseHead(head: Buffer): HeadResult {
  for (const c of head) if ((c < 0x20 && c !== 0x0d && c !== 0x0a && c !== 0x09) || c > 0x7e) return { kind: "invalid", status: 400, reason: "request head is not ASCII text" };
  const lines = head.toString("latin1").split("\r\n");
  const m = /^([A-Z]{1,16}) (\S+) HTTP\/1\.[01]$/.exec(lines[0]!);
  if (!m) return { kind: "invalid", status: 400, reason: "malformed request line" };
  if (lines.length - 1 > MAX_HEADERS) return { kind: "invalid", status: 431, reason: `more than ${MAX_HEADERS} request headers` };
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    if (line.includes("\n") || line.includes("\r")) return { kind: "invalid", status: 400, reason: "bare CR or LF in a header line" };
    const colon = line.indexOf(":");
    const name = colon > 0 ? line.slice(0, colon) : "";
    if (!TOKEN.test(name)) return { kind: "invalid", status: 400, reason: "malformed header line" };
    const key = name.toLowerCase();
    if (headers.has(key) && (key === "host" || key === "content-length" || key === "transfer-encoding")) return { kind: "invalid", status: 400, reason: `more than one ${name} header` };
    headers.set(key, line.slice(colon + 1).trim());
  }
  if (headers.has("transfer-encoding")) return { kind: "invalid", status: 400, reason: "Transfer-Encoding is not accepted: requests carry no body" };
  const len = headers.get("content-length");
  if (len !== undefined) {
    if (!/^\d{1,19}$/.test(len)) return { kind: "invalid", status: 400, reason: "malformed Content-Length" };
    if (len.replace(/^0+/, "") !== "") return { kind: "invalid", status: 413, reason: "requests carry no body" };
  }
  if (m[1] !== "GET" && m[1] !== "HEAD") return { kind: "invalid", status: 405, reason: "only GET is served" };
  if (!m[2]!.startsWith("/")) return { kind: "invalid", status: 400, reason: "request target must be a path" };
  return { kind: "head", head: { method: m[1] as "GET" | "HEAD", target: m[2]!, headers } };
}
