/**
 * The GameStream HTTP (base) and HTTPS (base − 5) listeners: node:net and node:tls (client
 * certificate requested, any accepted in the handshake, matched exactly afterwards) with the
 * bounded request-head reader of http-head.ts instead of a general HTTP parser. One request per
 * connection (the answer says Connection: close), as stock clients use them. Before any work:
 *
 *  - connections per address and in all are capped (beyond them a connection is closed at once);
 *  - the TLS handshake and the request head must be complete within `headTimeoutMs` (408 or a close);
 *  - the head is bounded as it arrives (414 / 431 / 413 / 400 / 405, see http-head.ts);
 *  - the Host header must name this host (host-check.ts; otherwise an XML root with status_code 421
 *    and a message the client shows, before any work).
 *
 * Then a transport-free NvRequest goes to the nvhttp handler. Errors of the transport are real
 * HTTP statuses with an XML root whose status_code and status_message say the same.
 */
import { createServer as createNetServer, type Server as NetServer, type Socket } from "node:net";
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from "node:tls";
import type { Logger } from "../log.ts";
import type { HostVerdict } from "./host-check.ts";
import { RequestHeadReader } from "./http-head.ts";
import type { NvHttpHandler, NvReply, NvRequest } from "./nvhttp.ts";
import { xmlError } from "./xml.ts";

export interface NvListeners {
  httpPort: number;
  httpsPort: number;
  /** Requests refused before the handler (bad head, foreign Host, timeouts, connection caps). */
  refused(): Record<string, number>;
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
  /** Decides on the Host header (absent: every Host is accepted). */
  hostCheck?: (value: string | undefined) => HostVerdict;
  /** Time from accept to a whole request head, TLS handshake included (default 10 s). */
  headTimeoutMs?: number;
  /** Connections open at once from one address (default 16) and in all, per port (default 256). */
  maxConnectionsPerAddress?: number;
  maxConnections?: number;
}

const REASONS: Record<number, string> = {
  200: "OK",
  400: "Bad Request",
  405: "Method Not Allowed",
  408: "Request Timeout",
  413: "Content Too Large",
  414: "URI Too Long",
  421: "Misdirected Request",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
};

/**
 * Sends the answer and ends the connection. A peer that never reads its answer to the end (or
 * never closes) is let go after LINGER_MS. After a refusal the peer may still be sending (a
 * megabyte of headers): nothing more is read (the kernel's buffer fills, the peer's writes
 * stall, no work here) and the connection goes after REFUSED_LINGER_MS, time enough for the
 * peer to read its answer before the close resets the connection.
 */
function write(socket: Socket, r: NvReply, head: boolean, refused = false): void {
  if (socket.destroyed) return;
  const body = typeof r.body === "string" ? Buffer.from(r.body, "utf8") : Buffer.from(r.body.buffer, r.body.byteOffset, r.body.byteLength);
  const text = `HTTP/1.1 ${r.status} ${REASONS[r.status] ?? "Error"}\r\nContent-Type: ${r.contentType}\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`;
  socket.end(head ? Buffer.from(text, "latin1") : Buffer.concat([Buffer.from(text, "latin1"), body]));
  setTimeout(() => socket.destroy(), refused ? REFUSED_LINGER_MS : LINGER_MS).unref();
}

/** How long an answered connection may stay before it is closed from this side. */
const LINGER_MS = 10_000;
const REFUSED_LINGER_MS = 1000;
/** Bytes a peer may send after its request head before the connection is cut. */
const MAX_TRAILING_BYTES = 64 * 1024;

const xmlStatus = (status: number, message: string): NvReply => ({ status, contentType: "application/xml; charset=utf-8", body: xmlError(status, message) });

interface PortState {
  open: number;
  perAddress: Map<string, number>;
  refused: Record<string, number>;
}

export async function startNvListeners(opts: NvListenOptions): Promise<NvListeners> {
  const headTimeoutMs = opts.headTimeoutMs ?? 10_000;
  const maxPerAddress = opts.maxConnectionsPerAddress ?? 16;
  const maxAll = opts.maxConnections ?? 256;
  const sockets = new Set<Socket>();
  const refused: Record<string, number> = {};
  let refusalsLogged = 0;

  const refuse = (what: string, fields: Record<string, unknown>) => {
    refused[what] = (refused[what] ?? 0) + 1;
    if (++refusalsLogged <= 20 || refusalsLogged % 1000 === 0) opts.log.warn("GameStream request refused", { reason: what, ...fields, refusedSoFar: refusalsLogged });
  };

  /**
   * Admission of a TCP connection (both ports): the caps, and the deadline for the head (the
   * TLS handshake included). Returns the function that marks the head complete, or null when refused.
   */
  function admit(raw: Socket, state: PortState, onTimeout: () => void): (() => void) | null {
    const address = raw.remoteAddress ?? "";
    const mine = state.perAddress.get(address) ?? 0;
    if (state.open >= maxAll || mine >= maxPerAddress) {
      refuse(state.open >= maxAll ? "connections" : "connectionsPerAddress", { address });
      raw.destroy();
      return null;
    }
    state.open++;
    state.perAddress.set(address, mine + 1);
    sockets.add(raw);
    const timer = setTimeout(onTimeout, headTimeoutMs);
    raw.once("close", () => {
      clearTimeout(timer);
      sockets.delete(raw);
      state.open--;
      const n = (state.perAddress.get(address) ?? 1) - 1;
      if (n <= 0) state.perAddress.delete(address);
      else state.perAddress.set(address, n);
    });
    raw.on("error", () => {
      /* resets from peers: close follows */
    });
    return () => clearTimeout(timer);
  }

  /** Reads one request head from `socket`, checks it, runs the handler, answers, closes. */
  function serve(socket: Socket, https: boolean, headDone: () => void, timedOut: { on: () => void }): void {
    const reader = new RequestHeadReader();
    let answered = false;
    const abort = new AbortController();
    socket.once("close", () => abort.abort());
    const fail = (status: number, what: string, message: string) => {
      if (answered) return;
      answered = true;
      headDone();
      socket.pause();
      refuse(what, { address: socket.remoteAddress, status, detail: message });
      write(socket, xmlStatus(status, message), false, true);
    };
    timedOut.on = () => fail(408, "headTimeout", `request not complete within ${headTimeoutMs} ms`);
    let extra = 0;
    socket.on("data", (chunk: Buffer) => {
      if (answered) {
        // bytes after a whole head (no client sends any): read on, so that the peer going away is
        // seen (a PIN wait ends with it), and bounded
        if ((extra += chunk.length) > MAX_TRAILING_BYTES) socket.destroy();
        return;
      }
      const r = reader.push(chunk);
      if (r.kind === "incomplete") return;
      if (r.kind === "invalid") return fail(r.status, `status${r.status}`, r.reason);
      answered = true;
      headDone();
      const head = r.head;
      const verdict = opts.hostCheck?.(head.headers.get("host")) ?? { ok: true };
      if (!verdict.ok) {
        socket.pause();
        refuse("host", { address: socket.remoteAddress, host: verdict.name });
        // HTTP 200 with the error in the XML root, as nvhttp answers every refusal: a client shows its status_message
        // (a user who reaches the host by a name of their own learns what to configure); a rebinding page learns nothing
        const message = `this host does not answer to the name ${verdict.name} (names it answers to: its own, IP addresses, gamestreamHostNames)`;
        return write(socket, { status: 200, contentType: "application/xml; charset=utf-8", body: xmlError(421, message) }, false, true);
      }
      let url: URL;
      try {
        url = new URL(head.target, "http://host");
      } catch {
        return write(socket, xmlStatus(400, "malformed request target"), false);
      }
      let peerCertDer: Uint8Array | null = null;
      if (https) {
        const raw = (socket as TLSSocket).getPeerCertificate?.(true)?.raw;
        if (raw && raw.length > 0) peerCertDer = new Uint8Array(raw);
      }
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
        (reply) => {
          if (!abort.signal.aborted) write(socket, reply, head.method === "HEAD");
        },
        (err: unknown) => {
          opts.log.error("nvhttp request failed", { path: nv.path, error: err });
          write(socket, { status: 200, contentType: "application/xml; charset=utf-8", body: xmlError(500, "internal error") }, false);
        },
      );
    });
  }

  const httpState: PortState = { open: 0, perAddress: new Map(), refused };
  const httpsState: PortState = { open: 0, perAddress: new Map(), refused };

  const http: NetServer = createNetServer((socket) => {
    const timedOut = { on: () => socket.destroy() };
    const headDone = admit(socket, httpState, () => timedOut.on());
    if (headDone) serve(socket, false, headDone, timedOut);
  });

  // TLS: the raw connection is admitted (and its deadline set) before the handshake; the secure
  // socket that follows finds it by its peer address and port.
  const pendingTls = new Map<string, { headDone: () => void; timedOut: { on: () => void } }>();
  const tls: TlsServer = createTlsServer({ key: opts.keyPem, cert: opts.certPem, requestCert: true, rejectUnauthorized: false, minVersion: "TLSv1.2" }, (secure) => {
    const key = `${secure.remoteAddress}:${secure.remotePort}`;
    const entry = pendingTls.get(key);
    if (!entry) return void secure.destroy();
    pendingTls.delete(key);
    secure.on("error", () => {});
    serve(secure, true, entry.headDone, entry.timedOut);
  });
  tls.on("connection", (raw: Socket) => {
    const key = `${raw.remoteAddress}:${raw.remotePort}`;
    const timedOut = { on: () => raw.destroy() };
    const headDone = admit(raw, httpsState, () => timedOut.on());
    if (!headDone) return;
    pendingTls.set(key, { headDone, timedOut });
    raw.once("close", () => pendingTls.delete(key));
  });
  tls.on("tlsClientError", (err: Error, s: TLSSocket) => {
    opts.log.debug("TLS handshake failed", { error: err });
    s?.destroy?.();
  });

  const listen = (server: NetServer | TlsServer, port: number): Promise<number> =>
    new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, opts.host, () => {
        server.off("error", reject);
        const addr = server.address();
        resolve(typeof addr === "object" && addr ? addr.port : port);
      });
    });
  const closeServer = (s: NetServer | TlsServer) => new Promise<void>((resolve) => s.close(() => resolve()));

  const httpPort = await listen(http, opts.httpPort);
  let httpsPort: number;
  try {
    httpsPort = await listen(tls, opts.httpsPort);
  } catch (err) {
    await closeServer(http);
    throw err;
  }
  return {
    httpPort,
    httpsPort,
    refused: () => ({ ...refused }),
    async close() {
      for (const s of sockets) s.destroy();
      await Promise.all([closeServer(http), closeServer(tls)]);
    },
  };
}
