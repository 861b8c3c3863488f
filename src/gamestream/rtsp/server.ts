/**
 * The RTSP listener (TCP, base + 21): one request per connection, reply then
 * close (clients read to EOF). A launch with `corever` makes the session's
 * RTSP encrypted: every request must then be one record sealed with the
 * session's rikey, its sequence number above any accepted before; the reply
 * is sealed likewise. Peers that send too much, too slowly, garbage, or a
 * record that does not authenticate are cut off; the listener keeps serving.
 *
 * Several sessions share the port. A record belongs to the session whose key
 * authenticates it (each client has its own rikey); a plain request to the
 * session its `Session` header names, else to the plain-RTSP session launched
 * from the peer's address (the newest one not yet set up when there are several).
 */
import { createServer, type Server, type Socket } from "node:net";
import type { Logger } from "../../log.ts";
import type { SessionStore, StreamSession } from "../sessions.ts";
import type { RtspRequest } from "./message.ts";
import type { RtspHandler } from "./handler.ts";
import { CRLFCRLF, frameRequest, MAX_BODY_BYTES, MAX_HEADER_BYTES, serializeResponse, type RtspResponse } from "./message.ts";
import { frameRecord, RECORD_HEADER_BYTES, RECORD_TAG_BYTES, rtspIv, sealRecord, type RtspCipher } from "./record.ts";

/** Largest plaintext a record may carry: a whole request. */
export const MAX_RECORD_PLAINTEXT = MAX_HEADER_BYTES + 4 + MAX_BODY_BYTES;
const MAX_BUFFERED = RECORD_HEADER_BYTES + RECORD_TAG_BYTES + MAX_RECORD_PLAINTEXT;

export interface RtspServerOptions {
  host: string;
  port: number;
  sessions: SessionStore;
  handler: RtspHandler;
  /** AES-128-GCM keyed with a session's rikey. */
  cipher: (key: Uint8Array) => RtspCipher;
  log: Logger;
  /** A connection must deliver its whole request within this time (default 5 s). */
  requestTimeoutMs?: number;
  /** Connections open at once; further ones are refused (default 16). */
  maxConnections?: number;
  /** Connections open at once from one address (default 4: a client sends one request at a time), so one host cannot take every slot. */
  maxConnectionsPerAddress?: number;
}

export interface RtspListener {
  port: number;
  close(): Promise<void>;
}

const plainAddress = (ip: string) => ip.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/, "");

/** The plain-RTSP session a request belongs to (see the header comment); null when there is none. */
export function plainSessionFor(sessions: readonly StreamSession[], req: RtspRequest | null, peerIp: string): StreamSession | null {
  const plain = sessions.filter((s) => !s.encryptedRtsp);
  const named = (req?.headers.get("session") ?? "").split(";")[0]!.trim();
  if (named) {
    const byId = plain.find((s) => s.rtsp.sessionId === named);
    if (byId) return byId;
  }
  const ip = plainAddress(peerIp);
  const fromPeer = plain.filter((s) => !s.clientAddress || s.clientAddress === ip);
  if (fromPeer.length <= 1) return fromPeer[0] ?? null;
  const fresh = fromPeer.filter((s) => !s.rtsp.setup.audio && !s.rtsp.setup.video && !s.rtsp.setup.control);
  return (fresh.length ? fresh : fromPeer).at(-1)!;
}

export async function startRtspServer(opts: RtspServerOptions): Promise<RtspListener> {
  const { log, sessions } = opts;
  const timeoutMs = opts.requestTimeoutMs ?? 5000;
  const open = new Set<Socket>();
  const perAddress = new Map<string, number>();
  const maxPerAddress = opts.maxConnectionsPerAddress ?? 4;
  let crowdRefusals = 0;

  function serve(socket: Socket): void {
    const address = socket.remoteAddress ?? "";
    const mine = perAddress.get(address) ?? 0;
    if (mine >= maxPerAddress) {
      if (++crowdRefusals <= 10 || crowdRefusals % 1000 === 0) log.warn("RTSP connection refused: too many from one address", { address, limit: maxPerAddress, refused: crowdRefusals });
      socket.destroy();
      return;
    }
    perAddress.set(address, mine + 1);
    socket.once("close", () => {
      const n = (perAddress.get(address) ?? 1) - 1;
      if (n <= 0) perAddress.delete(address);
      else perAddress.set(address, n);
    });
    open.add(socket);
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    // Bytes arrive in pieces; they are joined only when a whole request (or record header) can be
    // in, so a peer dribbling bytes costs O(bytes), not O(bytes²).
    let chunks: Buffer[] = [];
    let received = 0;
    let tail: Buffer = Buffer.alloc(0); // last 3 bytes seen, for finding CRLFCRLF across pieces
    let headersIn = false;
    let need = 0; // total bytes needed before framing again, once known
    let done = false;
    const bytes = (): Buffer => {
      if (chunks.length > 1) chunks = [Buffer.concat(chunks, received)];
      return chunks[0] ?? Buffer.alloc(0);
    };
    const timer = setTimeout(() => cut("request not complete in time"), timeoutMs);
    socket.on("close", () => {
      clearTimeout(timer);
      open.delete(socket);
    });
    socket.on("error", (err) => log.debug("RTSP connection error", { peer, error: err.message }));

    function cut(reason: string, session?: StreamSession | null): void {
      if (socket.destroyed) return;
      // replied already: a peer that does not read its reply to the end is just let go
      if (done) return void socket.destroy();
      done = true;
      log.warn("RTSP connection cut off", { peer, reason, session: session?.id });
      socket.destroy();
    }

    function reply(bytes: Uint8Array): void {
      done = true;
      socket.end(bytes);
    }

    function respond(req: Parameters<RtspHandler>[0], s: StreamSession | null): RtspResponse {
      try {
        return opts.handler(req, s);
      } catch (err) {
        log.error("RTSP request failed", { peer, method: req.method, session: s?.id, error: err });
        return { status: 500, cseq: req.cseq };
      }
    }

    function onPlain(chunk: Buffer): void {
      const live = sessions.list();
      if (live.length > 0 && live.every((x) => x.encryptedRtsp)) return cut("plain request for an encrypted session", live.length === 1 ? live[0] : null);
      if (!headersIn) {
        const window = Buffer.concat([tail, chunk]);
        headersIn = window.indexOf(CRLFCRLF) >= 0;
        tail = window.subarray(Math.max(0, window.length - 3));
        if (!headersIn && received <= MAX_HEADER_BYTES) return;
      }
      if (received < need) return;
      const framed = frameRequest(bytes());
      if (framed.kind === "incomplete") {
        need = framed.need ?? 0;
        return;
      }
      if (framed.kind === "invalid") {
        log.warn("RTSP request refused", { peer, status: framed.status, reason: framed.reason });
        return reply(serializeResponse({ status: framed.status, cseq: framed.cseq, headers: [["X-Neuron-Reason", framed.reason]] }));
      }
      reply(serializeResponse(respond(framed.request, plainSessionFor(sessions.list(), framed.request, socket.remoteAddress ?? ""))));
    }

    /** Opens the record with each encrypted session's key; the one that authenticates names the session. */
    function openWithSessionKey(candidates: StreamSession[], sealed: Uint8Array, seq: number): { s: StreamSession; cipher: RtspCipher; plaintext: Uint8Array } | null {
      for (const s of candidates) {
        let cipher: RtspCipher;
        try {
          cipher = opts.cipher(s.riKey);
        } catch (err) {
          log.error("RTSP cipher unavailable", { session: s.id, error: err });
          continue;
        }
        try {
          return { s, cipher, plaintext: cipher.open(sealed, rtspIv(seq, "C")) };
        } catch {
          cipher.close();
        }
      }
      return null;
    }

    function onRecord(): void {
      const live = sessions.list();
      const candidates = live.filter((x) => x.encryptedRtsp);
      if (live.length === 0) return cut("encrypted record but no session");
      if (candidates.length === 0) return cut("encrypted record for a plain-RTSP session", live.length === 1 ? live[0] : null);
      if (received < need) return;
      const framed = frameRecord(bytes(), MAX_RECORD_PLAINTEXT);
      if (framed.kind === "incomplete") {
        need = framed.need;
        return;
      }
      if (framed.kind === "invalid") return cut(framed.reason, candidates.length === 1 ? candidates[0] : null);
      const opened = openWithSessionKey(candidates, framed.sealed, framed.seq);
      if (!opened) return cut("record does not authenticate", candidates.length === 1 ? candidates[0] : null);
      const { s, cipher, plaintext } = opened;
      try {
        if (framed.seq <= s.rtsp.clientSeq) return cut(`record sequence ${framed.seq} not above ${s.rtsp.clientSeq} (replay)`, s);
        s.rtsp.clientSeq = framed.seq;
        const inner = frameRequest(plaintext);
        const res: RtspResponse =
          inner.kind === "request"
            ? respond(inner.request, s)
            : inner.kind === "invalid"
              ? { status: inner.status, cseq: inner.cseq, headers: [["X-Neuron-Reason", inner.reason]] }
              : { status: 400, cseq: null, headers: [["X-Neuron-Reason", "record does not hold a whole request"]] };
        s.rtsp.hostSeq += 1;
        reply(sealRecord(cipher, s.rtsp.hostSeq, serializeResponse(res), "H"));
      } finally {
        cipher.close();
      }
    }

    socket.on("data", (chunk: Buffer) => {
      if (done) return;
      if (chunk.length === 0) return;
      if (received + chunk.length > MAX_BUFFERED) return cut(`more than ${MAX_BUFFERED} bytes`);
      chunks.push(chunk);
      received += chunk.length;
      if ((chunks[0]![0]! & 0x80) !== 0) onRecord();
      else onPlain(chunk);
    });
    socket.on("end", () => {
      if (!done) cut("peer closed before a whole request");
    });
  }

  const server: Server = createServer({ allowHalfOpen: true }, serve);
  server.maxConnections = opts.maxConnections ?? 16;
  const port = await new Promise<number>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host, () => {
      server.off("error", reject);
      const addr = server.address();
      resolve(typeof addr === "object" && addr ? addr.port : opts.port);
    });
  });
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => resolve());
      }),
  };
}
