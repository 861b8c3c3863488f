/**
 * WebSocket upgrades through the app: a route (after the auth guard has passed the GET)
 * accepts an upgrade by registering handlers for its request; the TCP listener then
 * upgrades that request (Bun's server.upgrade) and dispatches the socket's events to them.
 * A request no route accepted is answered by the app as usual.
 */
export interface SocketLike {
  /** Bytes sent, -1 when queued behind backpressure, 0 when dropped (the socket is closed). */
  send(data: string | Uint8Array): number;
  close(code?: number, reason?: string): void;
  /** Bytes queued and not yet sent (Bun's ServerWebSocket has it). */
  getBufferedAmount?(): number;
}

export interface SocketHandlers {
  open(ws: SocketLike): void;
  message(ws: SocketLike, data: string | Uint8Array): void;
  close(ws: SocketLike | null, code: number, reason: string): void;
}

/** Largest WebSocket message the listener accepts (bigger ones close the socket with 1009). */
export const MAX_WS_MESSAGE = 64 * 1024;

const pending = new WeakMap<Request, SocketHandlers>();

/** Marks `request` for upgrade; the response is what a client sees if the upgrade cannot happen. */
export function acceptUpgrade(request: Request, handlers: SocketHandlers): Response {
  pending.set(request, handlers);
  return new Response(null, { status: 426, headers: { upgrade: "websocket" } });
}

export function takeUpgrade(request: Request): SocketHandlers | undefined {
  const h = pending.get(request);
  pending.delete(request);
  return h;
}

export const isUpgradeRequest = (request: Request): boolean => request.headers.get("upgrade")?.toLowerCase() === "websocket";

/** Bun.serve's websocket option: every socket carries its handlers as its data. */
export const websocketDispatch = {
  maxPayloadLength: MAX_WS_MESSAGE,
  idleTimeout: 120,
  open(ws: SocketLike & { data: SocketHandlers }) {
    ws.data.open(ws);
  },
  message(ws: SocketLike & { data: SocketHandlers }, message: string | Buffer) {
    ws.data.message(ws, typeof message === "string" ? message : new Uint8Array(message.buffer, message.byteOffset, message.byteLength));
  },
  close(ws: SocketLike & { data: SocketHandlers }, code: number, reason: string) {
    ws.data.close(ws, code, reason);
  },
};
