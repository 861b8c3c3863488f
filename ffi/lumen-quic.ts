/**
 * bun:ffi bindings of native/lumen_quic.h: lumen/1's QUIC control transport (ngtcp2 + GnuTLS on
 * a native thread). An endpoint is a host (listen) or a client (connect); JS queues bytes for a
 * connection's control stream or one DATAGRAM frame, and polls packed events (open, stream bytes,
 * datagram, closed). The symbols are part of LumenNative's table (ffi/lumen.ts).
 */
import { FFIType, JSCallback, ptr, type FFIFunction, type Library, type Pointer } from "bun:ffi";
import { outPtr } from "./capture.ts";
import { NativeCallError, NativeStatus } from "./native.ts";

const P = FFIType.ptr;
export const quicSymbols = {
  neuron_quic_listen: { args: [P, FFIType.u32, P, P, FFIType.u32, P], returns: FFIType.i32 },
  neuron_quic_connect: { args: [P, FFIType.u32, P], returns: FFIType.i32 },
  neuron_quic_poll: { args: [P, P, FFIType.u32, FFIType.u32], returns: FFIType.i32 },
  neuron_quic_send: { args: [P, FFIType.u32, FFIType.u32, P, FFIType.u32], returns: FFIType.i32 },
  neuron_quic_close: { args: [P, FFIType.u32, FFIType.u32], returns: FFIType.i32 },
  neuron_quic_set_notify: { args: [P, FFIType.function], returns: FFIType.i32 },
  neuron_quic_stats_get: { args: [P, P], returns: FFIType.void },
  neuron_quic_destroy: { args: [P], returns: FFIType.void },
} as const satisfies Record<string, FFIFunction>;

/** What the endpoint needs of a loaded library: these symbols (LumenNative has them). */
export interface QuicNative {
  readonly sym: Library<typeof quicSymbols>["symbols"];
}

export const QUIC_MAX_DATAGRAM = 1200;
const EV = { open: 1, stream: 2, datagram: 3, closed: 4 } as const;

export type QuicEvent =
  | { kind: "open"; conn: number; /** client: the host certificate's DER; host: the client's address */ data: Uint8Array }
  | { kind: "stream"; conn: number; data: Uint8Array }
  | { kind: "datagram"; conn: number; data: Uint8Array }
  | { kind: "closed"; conn: number; reason: string; code: number };

export interface QuicStats {
  packetsIn: number;
  packetsOut: number;
  refused: number;
  connsOpened: number;
  connsClosed: number;
  datagramsDropped: number;
  conns: number;
  port: number;
}

const cstr = (s: string) => Buffer.from(s + "\0", "utf8");

export class QuicEndpoint {
  private handle: Pointer | null;
  private readonly buf = new Uint8Array(256 * 1024);
  private readonly statsBuf = new Uint8Array(56);
  private notify: JSCallback | null = null;

  private constructor(
    private readonly n: QuicNative,
    handle: Pointer,
  ) {
    this.handle = handle;
  }

  /** A host endpoint on UDP host:port with this certificate and key (PEM). */
  static listen(n: QuicNative, o: { host: string; port: number; certPem: string; keyPem: string; maxConns: number }): QuicEndpoint {
    const cell = new BigUint64Array(1);
    const rc = n.sym.neuron_quic_listen(ptr(cstr(o.host)), o.port, ptr(cstr(o.certPem)), ptr(cstr(o.keyPem)), o.maxConns, ptr(cell));
    if (rc < 0) throw new NativeCallError("neuron_quic_listen", rc);
    return new QuicEndpoint(n, outPtr(cell));
  }

  /** A client endpoint with one connection (number 1) to host:port (numeric address). */
  static connect(n: QuicNative, host: string, port: number): QuicEndpoint {
    const cell = new BigUint64Array(1);
    const rc = n.sym.neuron_quic_connect(ptr(cstr(host)), port, ptr(cell));
    if (rc < 0) throw new NativeCallError("neuron_quic_connect", rc);
    return new QuicEndpoint(n, outPtr(cell));
  }

  private h(): Pointer {
    if (this.handle === null) throw new Error("QUIC endpoint is closed");
    return this.handle;
  }

  get closed(): boolean {
    return this.handle === null;
  }

  /** Events queued by the thread (waits up to timeoutMs for the first). */
  poll(timeoutMs = 0): QuicEvent[] {
    const rc = this.n.sym.neuron_quic_poll(this.h(), ptr(this.buf), this.buf.length, timeoutMs);
    if (rc < 0) throw new NativeCallError("neuron_quic_poll", rc);
    const out: QuicEvent[] = [];
    const v = new DataView(this.buf.buffer);
    for (let off = 0; off + 16 <= rc; ) {
      const kind = v.getUint32(off, true), conn = v.getUint32(off + 4, true), len = v.getUint32(off + 8, true), code = v.getUint32(off + 12, true);
      const data = this.buf.slice(off + 16, off + 16 + len);
      off += 16 + len;
      if (kind === EV.open) out.push({ kind: "open", conn, data });
      else if (kind === EV.stream) out.push({ kind: "stream", conn, data });
      else if (kind === EV.datagram) out.push({ kind: "datagram", conn, data });
      else if (kind === EV.closed) out.push({ kind: "closed", conn, reason: new TextDecoder().decode(data), code });
    }
    return out;
  }

  /**
   * Calls fn on the JS thread soon after events arrive (the endpoint's thread signals through a
   * threadsafe JSCallback, once until everything has been taken): the caller then polls until
   * poll() returns nothing. Replaces fixed-interval polling; a slow fallback poll is still wise.
   */
  onEvents(fn: () => void): void {
    const cb = new JSCallback(() => {
      if (this.handle !== null) fn();
    }, { args: [], returns: "void", threadsafe: true });
    const rc = this.n.sym.neuron_quic_set_notify(this.h(), cb);
    if (rc < 0) {
      cb.close();
      throw new NativeCallError("neuron_quic_set_notify", rc);
    }
    this.notify = cb;
  }

  /** Queues bytes on the connection's control stream; false when the connection is gone. */
  write(conn: number, bytes: Uint8Array): boolean {
    const rc = this.n.sym.neuron_quic_send(this.h(), conn, 1, bytes.length ? ptr(bytes) : null, bytes.length);
    if (rc === NativeStatus.EINVAL) return false;
    if (rc < 0) throw new NativeCallError("neuron_quic_send", rc);
    return true;
  }

  /** Queues one DATAGRAM frame (1..1200 bytes); false when the connection is gone. */
  sendDatagram(conn: number, bytes: Uint8Array): boolean {
    if (bytes.length === 0 || bytes.length > QUIC_MAX_DATAGRAM) throw new RangeError(`QUIC datagram of ${bytes.length} bytes (1..${QUIC_MAX_DATAGRAM})`);
    const rc = this.n.sym.neuron_quic_send(this.h(), conn, 2, ptr(bytes), bytes.length);
    return rc === 0;
  }

  /** Closes the connection once its queued stream bytes are written (application error code). */
  closeConn(conn: number, code = 0): void {
    if (this.handle !== null) this.n.sym.neuron_quic_close(this.handle, conn, code);
  }

  stats(): QuicStats {
    this.n.sym.neuron_quic_stats_get(this.h(), ptr(this.statsBuf));
    const v = new DataView(this.statsBuf.buffer);
    const g = (i: number) => Number(v.getBigUint64(i * 8, true));
    return {
      packetsIn: g(0), packetsOut: g(1), refused: g(2), connsOpened: g(3), connsClosed: g(4), datagramsDropped: g(5),
      conns: v.getUint32(48, true), port: v.getUint32(52, true),
    };
  }

  close(): void {
    if (this.handle !== null) this.n.sym.neuron_quic_destroy(this.handle); // joins the thread: no call after this
    this.handle = null;
    const cb = this.notify;
    this.notify = null;
    // a call the thread queued just before it stopped may still wait on the JS thread: free the callback after it
    if (cb) setTimeout(() => cb.close(), 100);
  }
}
