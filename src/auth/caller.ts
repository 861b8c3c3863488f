/**
 * Who is calling the management API, and over what.
 *
 * The listeners (api/server.ts) attach a Transport to every Request they hand
 * to the Elysia app: the peer credentials of the local socket, or the TCP
 * peer's address and whether TLS carried it. The auth layer (auth/guard.ts)
 * turns transport + credentials into a Caller. A Request that arrives with no
 * transport attached is treated as an anonymous TCP peer: it gets nothing a
 * credential-less caller would not get.
 */
import type { ApiScope } from "./model.ts";

export type Transport =
  | { kind: "unix"; pid: number; uid: number; gid: number }
  | { kind: "tcp"; remoteIp: string; tls: boolean };

export type Caller =
  | { kind: "local"; uid: number; user: string; admin: boolean; pid: number }
  | { kind: "token"; id: number; name: string; scope: ApiScope }
  | { kind: "session"; id: number; scope: ApiScope; createdBy: string }
  | { kind: "anonymous" };

const transports = new WeakMap<Request, Transport>();

export function attachTransport(request: Request, transport: Transport): Request {
  transports.set(request, transport);
  return request;
}

export const ANONYMOUS_TCP: Transport = { kind: "tcp", remoteIp: "", tls: false };

export function transportOf(request: Request): Transport {
  return transports.get(request) ?? ANONYMOUS_TCP;
}

/** One line naming the caller, for the audit log and logs. */
export function callerLabel(c: Caller): string {
  switch (c.kind) {
    case "local":
      return `uid ${c.uid} (${c.user})`;
    case "token":
      return `token ${c.name}`;
    case "session":
      return `session ${c.id} (login code by ${c.createdBy})`;
    case "anonymous":
      return "anonymous";
  }
}

/** What a caller may do: admin everything; read GET/HEAD only; none nothing. */
export function callerScope(c: Caller): ApiScope | "none" {
  switch (c.kind) {
    case "local":
      return c.admin ? "admin" : "none";
    case "token":
    case "session":
      return c.scope;
    case "anonymous":
      return "none";
  }
}
