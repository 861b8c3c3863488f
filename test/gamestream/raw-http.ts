/** Raw HTTP/1.1 over a TCP socket on 127.0.0.x, for requests fetch cannot make (bad Host, header bombs, a chosen source address). */
import { connect, type Socket } from "node:net";

export interface RawReply {
  /** HTTP status; 0 when the connection closed without an answer. */
  status: number;
  headers: Record<string, string>;
  body: string;
  /** ms from the first byte written to the connection's end. */
  ms: number;
}

function parseReply(raw: Buffer, ms: number): RawReply {
  const sep = raw.indexOf("\r\n\r\n");
  if (sep < 0) return { status: 0, headers: {}, body: raw.toString("latin1"), ms };
  const [line, ...rest] = raw.subarray(0, sep).toString("latin1").split("\r\n");
  const headers: Record<string, string> = {};
  for (const h of rest) {
    const i = h.indexOf(":");
    if (i > 0) headers[h.slice(0, i).trim().toLowerCase()] = h.slice(i + 1).trim();
  }
  return { status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(line ?? "")?.[1] ?? 0), headers, body: raw.subarray(sep + 4).toString("utf8"), ms };
}

/** Writes `request` (as pieces, each after the previous is flushed) and reads to EOF; bounded by `timeoutMs`. */
export function rawRequest(port: number, request: string | Buffer | (string | Buffer)[], opts: { localAddress?: string; timeoutMs?: number } = {}): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let t0 = 0;
    const socket: Socket = connect({ host: "127.0.0.1", port, ...(opts.localAddress ? { localAddress: opts.localAddress } : {}) }, () => {
      t0 = performance.now();
      for (const piece of Array.isArray(request) ? request : [request]) socket.write(piece);
    });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no end of the answer within ${opts.timeoutMs ?? 10_000} ms`));
    }, opts.timeoutMs ?? 10_000);
    socket.on("data", (c: Buffer) => chunks.push(c));
    const done = () => {
      clearTimeout(timer);
      resolve(parseReply(Buffer.concat(chunks), performance.now() - t0));
    };
    socket.on("end", done);
    socket.on("close", done);
    socket.on("error", () => {
      /* a reset after the answer: close follows */
    });
  });
}

/** A GET with the given headers (Host first unless `host` is null). */
export function rawGet(port: number, target: string, host: string | null, extra: string[] = [], opts: { localAddress?: string; timeoutMs?: number } = {}) {
  const lines = [`GET ${target} HTTP/1.1`, ...(host === null ? [] : [`Host: ${host}`]), ...extra, "Connection: close", "", ""];
  return rawRequest(port, lines.join("\r\n"), opts);
}
