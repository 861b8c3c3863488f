/**
 * The GameStream HTTP (base) and HTTPS (base − 5) listeners. Bun.serve cannot
 * show the client certificate, so HTTPS is node:tls (client certificate
 * requested, any accepted in the handshake, matched exactly afterwards) feeding
 * a node:http parser; plain HTTP uses node:http directly. Both hand a
 * transport-free NvRequest to the nvhttp handler.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from "node:http";
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from "node:tls";
import type { Logger } from "../log.ts";
import type { NvHttpHandler, NvReply, NvRequest } from "./nvhttp.ts";
import { xmlError } from "./xml.ts";

/** Longest request target accepted (a PEM client certificate in hex is ~3 KB). */
export const MAX_URL_BYTES = 32 * 1024;

export interface NvListeners {
  httpPort: number;
  httpsPort: number;
  close(): Promise<void>;
}

export interface NvListenOptions {
  host: string;
  httpPort: number;
  httpsPort: number;
  keyPem: string;
  certPem: string;
  handler: NvHttpHandler;
  log: Logger;
}

function reply(res: ServerResponse, r: NvReply): void {
  const body = typeof r.body === "string" ? Buffer.from(r.body, "utf8") : Buffer.from(r.body.buffer, r.body.byteOffset, r.body.byteLength);
  res.writeHead(r.status, { "content-type": r.contentType, "content-length": body.length, connection: "close" });
  res.end(body);
}

function requestHandler(https: boolean, opts: NvListenOptions) {
  return (req: IncomingMessage, res: ServerResponse) => {
    const fail = (status: number, message: string) =>
      reply(res, { status: 200, contentType: "application/xml; charset=utf-8", body: xmlError(status, message) });
    if ((req.url ?? "").length > MAX_URL_BYTES) return fail(414, "request too long");
    if (req.method !== "GET" && req.method !== "HEAD") return fail(405, "only GET is served");
    let url: URL;
    try {
      url = new URL(req.url ?? "/", "http://host");
    } catch {
      return fail(400, "malformed request target");
    }
    const socket = req.socket;
    let peerCertDer: Uint8Array | null = null;
    if (https) {
      const raw = (socket as TLSSocket).getPeerCertificate?.(true)?.raw;
      if (raw && raw.length > 0) peerCertDer = new Uint8Array(raw);
    }
    const abort = new AbortController();
    res.on("close", () => abort.abort());
    const nv: NvRequest = {
      path: url.pathname,
      query: url.searchParams,
      https,
      peerCertDer,
      localIp: socket.localAddress ?? "127.0.0.1",
      remoteIp: socket.remoteAddress ?? "",
      signal: abort.signal,
    };
    opts.handler(nv).then(
      (r) => {
        if (!res.writableEnded && !abort.signal.aborted) reply(res, r);
      },
      (err: unknown) => {
        opts.log.error("nvhttp request failed", { path: nv.path, error: err });
        if (!res.writableEnded) fail(500, "internal error");
      },
    );
  };
}

function listen(server: HttpServer | TlsServer, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      const addr = server.address();
      resolve(typeof addr === "object" && addr ? addr.port : port);
    });
  });
}

const closeServer = (s: HttpServer | TlsServer) => new Promise<void>((resolve) => s.close(() => resolve()));

export async function startNvListeners(opts: NvListenOptions): Promise<NvListeners> {
  const http = createHttpServer({ maxHeaderSize: MAX_URL_BYTES + 4096 }, requestHandler(false, opts));
  const httpsParser = createHttpServer({ maxHeaderSize: MAX_URL_BYTES + 4096 }, requestHandler(true, opts));
  const tls = createTlsServer(
    { key: opts.keyPem, cert: opts.certPem, requestCert: true, rejectUnauthorized: false, minVersion: "TLSv1.2" },
    (socket) => httpsParser.emit("connection", socket),
  );
  tls.on("tlsClientError", (err) => opts.log.debug("TLS handshake failed", { error: err }));
  const httpPort = await listen(http, opts.httpPort, opts.host);
  let httpsPort: number;
  try {
    httpsPort = await listen(tls, opts.httpsPort, opts.host);
  } catch (err) {
    await closeServer(http);
    throw err;
  }
  return {
    httpPort,
    httpsPort,
    async close() {
      http.closeAllConnections?.();
      httpsParser.closeAllConnections?.();
      await Promise.all([closeServer(http), closeServer(tls)]);
    },
  };
}
