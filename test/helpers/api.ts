/** Requests as the listeners hand them to the app, with who is calling attached. */
import { attachTransport } from "../../src/auth/caller.ts";

/** A request as root on the local socket would make it (full access through the auth layer). */
export function asRoot(request: Request): Request {
  return attachTransport(request, { kind: "unix", pid: process.pid, uid: 0, gid: 0 });
}

/** A request from a TCP peer on loopback (credentials, if any, in its headers). */
export function overTcp(request: Request, remoteIp = "127.0.0.1"): Request {
  return attachTransport(request, { kind: "tcp", remoteIp, tls: false });
}
