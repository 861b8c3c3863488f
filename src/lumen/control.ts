/**
 * lumen/1 control channels: the byte stream that carries the length-prefixed JSON messages
 * (messages.ts), over QUIC (primary: ngtcp2 on a native thread, ffi/lumen-quic.ts) or TLS 1.3
 * on TCP (fallback). Over QUIC a channel also carries the side planes as DATAGRAM frames, each
 * `plane byte ‖ payload` (input, audio, rumble). The host and the client see one interface.
 */
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { createServer, connect as tlsConnect, type Server, type TLSSocket } from "node:tls";
import { QuicEndpoint, QUIC_MAX_DATAGRAM, type QuicEvent } from "../../ffi/lumen-quic.ts";
import type { LumenNative } from "../../ffi/lumen.ts";

export type ControlTransport = "quic" | "tls";

export interface ControlChannel {
  readonly transport: ControlTransport;
  /** The peer's address (text). */
  readonly remote: string;
  write(bytes: Uint8Array): void;
  /** One side-plane datagram (QUIC only); false where the transport has none or the channel is gone. */
  datagram(bytes: Uint8Array): boolean;
  /** Ends the channel once queued bytes are written. */
  end(): void;
  /** Drops the channel at once. */
  destroy(): void;
  readonly closed: boolean;
  onData: (chunk: Uint8Array) => void;
  onDatagram: (bytes: Uint8Array) => void;
  onClose: () => void;
}

abstract class BaseChannel implements ControlChannel {
  abstract readonly transport: ControlTransport;
  abstract readonly remote: string;
  closed = false;
  onData: (chunk: Uint8Array) => void = () => {};
  onDatagram: (bytes: Uint8Array) => void = () => {};
  onClose: () => void = () => {};
  abstract write(bytes: Uint8Array): void;
  abstract datagram(bytes: Uint8Array): boolean;
  abstract end(): void;
  abstract destroy(): void;
  protected gone(): void {
    if (this.closed) return;
    this.closed = true;
    this.onClose();
  }
}

class TlsChannel extends BaseChannel {
  readonly transport = "tls" as const;
  readonly remote: string;
  constructor(readonly socket: TLSSocket) {
    super();
    this.remote = socket.remoteAddress ?? "?";
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("error", () => this.gone());
    socket.on("close", () => this.gone());
  }
  write(bytes: Uint8Array): void {
    if (!this.closed && !this.socket.destroyed) this.socket.write(bytes);
  }
  datagram(): boolean {
    return false;
  }
  end(): void {
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 1000).unref?.();
  }
  destroy(): void {
    this.socket.destroy();
  }
}

class QuicChannel extends BaseChannel {
  readonly transport = "quic" as const;
  constructor(
    private readonly endpointOf: () => QuicEndpoint | null,
    readonly conn: number,
    readonly remote: string,
  ) {
    super();
  }
  write(bytes: Uint8Array): void {
    const ep = this.endpointOf();
    if (!this.closed && ep) ep.write(this.conn, bytes);
  }
  datagram(bytes: Uint8Array): boolean {
    const ep = this.endpointOf();
    if (this.closed || !ep || bytes.length > QUIC_MAX_DATAGRAM) return false;
    return ep.sendDatagram(this.conn, bytes);
  }
  end(): void {
    this.endpointOf()?.closeConn(this.conn, 0);
  }
  destroy(): void {
    this.endpointOf()?.closeConn(this.conn, 0);
    this.gone();
  }
  /** From the endpoint's events. */
  event(e: QuicEvent): void {
    if (e.kind === "stream") this.onData(e.data);
    else if (e.kind === "datagram") this.onDatagram(e.data);
    else if (e.kind === "closed") this.gone();
  }
}

/**
 * JS takes the QUIC thread's events when the thread signals that some wait (a threadsafe
 * JSCallback); a slow poll backs that up.
 */
const QUIC_FALLBACK_POLL_MS = 20;

/** The host's control listeners: QUIC on UDP port, TLS on TCP port (the same number). */
export class ControlServer {
  private quic: QuicEndpoint | null = null;
  private tls: Server | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private readonly channels = new Map<number, QuicChannel>();
  port = 0;

  constructor(
    private readonly o: { host: string; port: number; certPem: string; keyPem: string; maxConns: number; lumen: LumenNative },
    private readonly accept: (ch: ControlChannel) => void,
    /** A TLS handshake that failed (QUIC's refusals are in quicStats().refused). */
    private readonly onRefused: () => void = () => {},
  ) {}

  async start(): Promise<number> {
    // QUIC first (UDP), then TLS on the same TCP port number; with port 0 a taken TCP number is retried
    for (let attempt = 0; ; attempt++) {
      const ep = QuicEndpoint.listen(this.o.lumen, { host: this.o.host, port: this.o.port, certPem: this.o.certPem, keyPem: this.o.keyPem, maxConns: this.o.maxConns });
      const port = ep.stats().port;
      const server = createServer({ key: this.o.keyPem, cert: this.o.certPem, minVersion: "TLSv1.3" }, (s) => this.accept(new TlsChannel(s)));
      try {
        await new Promise<void>((resolve, reject) => {
          server.once("error", reject);
          server.listen(port, this.o.host, () => resolve());
        });
      } catch (err) {
        ep.close();
        if (this.o.port !== 0 || attempt >= 4) throw err;
        continue;
      }
      server.on("tlsClientError", () => this.onRefused());
      this.quic = ep;
      this.tls = server;
      this.port = port;
      break;
    }
    this.quic!.onEvents(() => this.drain());
    this.schedule();
    return this.port;
  }

  /** The fallback poll (events normally arrive by the thread's signal). */
  private schedule(): void {
    this.timer = setTimeout(() => {
      this.drain();
      if (this.quic) this.schedule();
    }, QUIC_FALLBACK_POLL_MS);
  }

  private drain(): void {
    const ep = this.quic;
    if (!ep) return;
    for (let batch = ep.poll(0); batch.length; batch = this.quic ? this.quic.poll(0) : []) for (const e of batch) {
      if (e.kind === "open") {
        const ch = new QuicChannel(() => this.quic, e.conn, new TextDecoder().decode(e.data));
        this.channels.set(e.conn, ch);
        this.accept(ch);
        continue;
      }
      const ch = this.channels.get(e.conn);
      if (!ch) continue;
      if (e.kind === "closed") this.channels.delete(e.conn);
      ch.event(e);
    }
  }

  quicStats() {
    return this.quic?.stats() ?? null;
  }

  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.drain();
    for (const ch of this.channels.values()) ch.event({ kind: "closed", conn: ch.conn, reason: "host stops", code: 0 });
    this.channels.clear();
    this.quic?.close();
    this.quic = null;
    const server = this.tls;
    this.tls = null;
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }
}

/** A client's control connection: the channel and the host certificate's DER (to check the pin). */
export async function connectControl(
  o: { host: string; port: number; transport: ControlTransport; timeoutMs: number; lumen: LumenNative },
): Promise<{ channel: ControlChannel; certDer: Uint8Array }> {
  if (o.transport === "tls") {
    const socket = await new Promise<TLSSocket>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no TLS connection to ${o.host}:${o.port} in time`)), o.timeoutMs);
      // The host's certificate is self-signed: trust comes from the pinned fingerprint (the caller checks it), not a CA.
      const s = tlsConnect({ host: o.host, port: o.port, rejectUnauthorized: false, minVersion: "TLSv1.3" }, () => {
        clearTimeout(t);
        resolve(s);
      });
      s.once("error", (e) => {
        clearTimeout(t);
        reject(e);
      });
    });
    const der = socket.getPeerCertificate(true)?.raw;
    const ch = new TlsChannel(socket);
    if (!der) {
      ch.destroy();
      throw new Error("the host sent no certificate");
    }
    return { channel: ch, certDer: new Uint8Array(der) };
  }
  // the native side takes numeric addresses: a name is resolved here (IPv4 first, as hosts listen on it by default)
  const host = isIP(o.host) ? o.host : await resolveHost(o.host);
  const ep = QuicEndpoint.connect(o.lumen, host, o.port);
  const deadline = performance.now() + o.timeoutMs;
  for (;;) {
    for (const e of ep.poll(0)) {
      // stream bytes and datagrams come only after OPEN (the native side holds them back)
      if (e.kind === "open") return { channel: new ClientQuicChannel(ep, host), certDer: e.data };
      if (e.kind === "closed") {
        ep.close();
        throw new Error(`QUIC handshake with ${host}:${o.port} failed: ${e.reason}`);
      }
    }
    if (performance.now() > deadline) {
      ep.close();
      throw new Error(`no QUIC connection to ${host}:${o.port} in time`);
    }
    await Bun.sleep(1);
  }
}

async function resolveHost(name: string): Promise<string> {
  const all = await lookup(name, { all: true }).catch(() => [] as { address: string; family: number }[]);
  const pick = all.find((a) => a.family === 4) ?? all[0];
  if (!pick) throw new Error(`cannot resolve ${name}`);
  return pick.address;
}

/** The client's one QUIC connection: owns its endpoint (and the endpoint's thread). */
class ClientQuicChannel extends QuicChannel {
  private ep: QuicEndpoint | null;
  private readonly timer: ReturnType<typeof setInterval>;
  constructor(ep: QuicEndpoint, remote: string) {
    super(() => this.ep, 1, remote);
    this.ep = ep;
    const drain = () => {
      for (let batch = this.ep?.poll(0) ?? []; batch.length; batch = this.ep?.poll(0) ?? []) for (const e of batch) this.event(e);
    };
    ep.onEvents(drain);
    this.timer = setInterval(drain, QUIC_FALLBACK_POLL_MS);
  }
  protected override gone(): void {
    clearInterval(this.timer);
    const ep = this.ep;
    this.ep = null;
    ep?.close(); // sends CONNECTION_CLOSE if the connection is still open
    super.gone();
  }
  override destroy(): void {
    this.gone();
  }
}
