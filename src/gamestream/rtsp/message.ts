/**
 * RTSP/1.0 messages as GameStream clients send them: a request line, CRLF
 * headers, an empty line, then Content-Length bytes of body. Bounded before
 * anything is buffered further: headers ≤ 8 KiB, body ≤ 64 KiB.
 */

export const MAX_HEADER_BYTES = 8 * 1024;
export const MAX_BODY_BYTES = 64 * 1024;
const MAX_HEADERS = 64;
const MAX_TARGET = 1024;

export interface RtspRequest {
  method: string;
  target: string;
  /** Header names lowercased; the first occurrence of a name wins. */
  headers: Map<string, string>;
  /** CSeq as sent (a non-negative integer). */
  cseq: number;
  body: Uint8Array;
}

export type Framed =
  | { kind: "incomplete"; /** Total bytes the request needs, once its headers are in. */ need?: number }
  | { kind: "invalid"; status: number; reason: string; cseq: number | null }
  | { kind: "request"; request: RtspRequest };

export const CRLFCRLF = Buffer.from("\r\n\r\n");

/** Reads one request from the bytes received so far. */
export function frameRequest(buf: Uint8Array): Framed {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const end = b.subarray(0, MAX_HEADER_BYTES + 4).indexOf(CRLFCRLF);
  if (end < 0) {
    if (b.length > MAX_HEADER_BYTES) return { kind: "invalid", status: 400, reason: `request headers exceed ${MAX_HEADER_BYTES} bytes`, cseq: null };
    return { kind: "incomplete" };
  }
  const head = b.subarray(0, end);
  // headers are printable ASCII plus CR LF HT; anything else is garbage
  for (const c of head) if ((c < 0x20 && c !== 0x0d && c !== 0x0a && c !== 0x09) || c > 0x7e) return { kind: "invalid", status: 400, reason: "request headers are not ASCII text", cseq: null };
  const lines = head.toString("latin1").split("\r\n");
  const m = /^([A-Z_]{1,32}) (\S{1,1024}) RTSP\/1\.0$/.exec(lines[0]!);
  if (!m || m[2]!.length > MAX_TARGET) return { kind: "invalid", status: 400, reason: "malformed request line", cseq: null };
  if (lines.length - 1 > MAX_HEADERS) return { kind: "invalid", status: 400, reason: `more than ${MAX_HEADERS} headers`, cseq: null };
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    const name = colon > 0 ? line.slice(0, colon).trim().toLowerCase() : "";
    if (!/^[a-z0-9!#$%&'*+.^_`|~-]{1,64}$/.test(name)) return { kind: "invalid", status: 400, reason: "malformed header line", cseq: null };
    if (!headers.has(name)) headers.set(name, line.slice(colon + 1).trim());
  }
  const cseqText = headers.get("cseq");
  const cseq = cseqText !== undefined && /^\d{1,9}$/.test(cseqText) ? Number(cseqText) : null;
  if (cseq === null) return { kind: "invalid", status: 400, reason: "missing or malformed CSeq", cseq: null };
  const lenText = headers.get("content-length") ?? "0";
  if (!/^\d{1,9}$/.test(lenText)) return { kind: "invalid", status: 400, reason: "malformed Content-Length", cseq };
  const bodyLen = Number(lenText);
  if (bodyLen > MAX_BODY_BYTES) return { kind: "invalid", status: 413, reason: `body exceeds ${MAX_BODY_BYTES} bytes`, cseq };
  const start = end + 4;
  if (b.length < start + bodyLen) return { kind: "incomplete", need: start + bodyLen };
  return { kind: "request", request: { method: m[1]!, target: m[2]!, headers, cseq, body: new Uint8Array(b.subarray(start, start + bodyLen)) } };
}

export interface RtspResponse {
  status: number;
  cseq: number | null;
  headers?: [string, string][];
  body?: string;
}

const REASONS: Record<number, string> = {
  200: "OK",
  400: "Bad Request",
  404: "Not Found",
  405: "Method Not Allowed",
  413: "Request Entity Too Large",
  454: "Session Not Found",
  455: "Method Not Valid in This State",
  500: "Internal Server Error",
  501: "Not Implemented",
};

export function serializeResponse(r: RtspResponse): Uint8Array {
  let text = `RTSP/1.0 ${r.status} ${REASONS[r.status] ?? "Error"}\r\n`;
  if (r.cseq !== null) text += `CSeq: ${r.cseq}\r\n`;
  for (const [k, v] of r.headers ?? []) text += `${k}: ${v}\r\n`;
  const body = r.body === undefined ? null : Buffer.from(r.body, "utf8");
  if (body) text += `Content-Length: ${body.length}\r\n`;
  text += "\r\n";
  const head = Buffer.from(text, "latin1");
  return body ? new Uint8Array(Buffer.concat([head, body])) : new Uint8Array(head);
}
