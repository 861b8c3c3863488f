/**
 * Runs the management API on two listeners, each attaching who is on the
 * other end to every request it hands to the one Elysia app (auth/guard.ts
 * decides from that):
 *
 * - TCP on config.host:config.port (loopback by default; beyond loopback
 *   only with TLS, see api/tls.ts), through Bun.serve;
 * - the local API on a unix socket (<stateDir>/api.sock by default), mode
 *   0660 to the admin group, through node:net so the kernel's peer
 *   credentials (SO_PEERCRED) of each connection are known, feeding a
 *   node:http parser.
 */
import { chmodSync, chownSync, existsSync, lstatSync, unlinkSync } from "node:fs";
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createNetServer, type Server as NetServer, type Socket } from "node:net";
import { peerCredentials, type PeerCredentials } from "../../ffi/peercred.ts";
import { attachTransport } from "../auth/caller.ts";
import type { Core } from "../core.ts";
import { createApp } from "./app.ts";
import { apiTls } from "./tls.ts";

export interface RunningServer {
  url: string;
  port: number;
  socketPath: string;
  /** Where the TCP listener's certificate comes from, when it has TLS. */
  tls: "configured" | "self-signed" | null;
  stop(): Promise<void>;
}

type Handle = (request: Request) => Response | Promise<Response>;

function removeStaleSocket(path: string): void {
  if (!existsSync(path)) return;
  if (!lstatSync(path).isSocket()) throw new Error(`${path} exists and is not a socket; refusing to replace it`);
  unlinkSync(path);
}

/** node:http request → fetch Request (body read whole, at most `limit` bytes) → the app → node:http response. */
function bridge(handle: Handle, limit: number, creds: WeakMap<Socket, PeerCredentials>) {
  return (req: IncomingMessage, res: ServerResponse) => {
    const cred = creds.get(req.socket as Socket);
    const fail = (status: number, code: string, message: string) => {
      if (res.headersSent) return res.destroy();
      res.writeHead(status, { "content-type": "application/json", connection: "close" });
      res.end(JSON.stringify({ error: { code, message } }));
    };
    if (!cred) return fail(403, "FORBIDDEN", "the caller's credentials could not be read from the socket");
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    req.on("data", (chunk: Buffer) => {
      if (refused) return;
      size += chunk.length;
      if (size > limit) {
        refused = true;
        fail(413, "BODY_TOO_LARGE", `request body exceeds the limit of ${limit} bytes`);
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", async () => {
      if (refused) return;
      const headers = new Headers();
      for (let i = 0; i < req.rawHeaders.length; i += 2) headers.append(req.rawHeaders[i]!, req.rawHeaders[i + 1]!);
      const method = req.method ?? "GET";
      const body = chunks.length && method !== "GET" && method !== "HEAD" ? Buffer.concat(chunks) : undefined;
      let request: Request;
      try {
        request = new Request(`http://${headers.get("host") || "localhost"}${req.url ?? "/"}`, { method, headers, body });
      } catch {
        return fail(400, "MALFORMED_REQUEST", "malformed request target or Host header");
      }
      attachTransport(request, { kind: "unix", pid: cred.pid, uid: cred.uid, gid: cred.gid });
      try {
        const response = await handle(request);
        const out: Record<string, string | string[]> = {};
        response.headers.forEach((v, k) => {
          const prev = out[k];
          out[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
        });
        const data = Buffer.from(await response.arrayBuffer());
        out["content-length"] = String(data.length);
        res.writeHead(response.status, out);
        res.end(data);
      } catch {
        fail(500, "INTERNAL", "internal error");
      }
    });
  };
}

/** The local socket: 0660 to the admin group where it exists (else 0600: root only). */
function secureSocket(path: string, groupId: number | null): void {
  if (groupId !== null) {
    chownSync(path, process.getuid?.() ?? 0, groupId);
    chmodSync(path, 0o660);
  } else chmodSync(path, 0o600);
}

function listenUnix(server: NetServer, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(path, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

export async function startServer(core: Core): Promise<RunningServer> {
  const app = createApp(core);
  const handle: Handle = (request) => app.handle(request);
  const { host, port, maxBodyBytes, socketPath, adminGroup } = core.config;
  const tls = apiTls(core.config);
  const tcp = Bun.serve({
    hostname: host,
    port,
    maxRequestBodySize: maxBodyBytes,
    ...(tls ? { tls: { cert: tls.cert, key: tls.key } } : {}),
    fetch(request, server) {
      attachTransport(request, { kind: "tcp", remoteIp: server.requestIP(request)?.address ?? "", tls: tls !== null });
      return handle(request);
    },
  });
  const creds = new WeakMap<Socket, PeerCredentials>();
  const open = new Set<Socket>();
  const parser = createHttpServer({ maxHeaderSize: 16 * 1024 }, bridge(handle, maxBodyBytes, creds));
  const local = createNetServer((socket) => {
    const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
    const cred = fd === undefined ? null : peerCredentials(fd);
    if (!cred) return socket.destroy();
    creds.set(socket, cred);
    open.add(socket);
    socket.once("close", () => open.delete(socket));
    parser.emit("connection", socket);
  });
  try {
    removeStaleSocket(socketPath);
    await listenUnix(local, socketPath);
    secureSocket(socketPath, core.users.groupId(adminGroup));
  } catch (err) {
    tcp.stop(true);
    local.close();
    throw new Error(`cannot listen on local socket ${socketPath}: ${(err as Error).message}`);
  }
  if (core.users.groupId(adminGroup) === null)
    core.log.warn("admin group missing: the local socket is root-only", { group: adminGroup, setting: "adminGroup", socket: socketPath });
  const boundHost = host.includes(":") ? `[${host}]` : host;
  return {
    url: `${tls ? "https" : "http"}://${boundHost}:${tcp.port}`,
    port: tcp.port ?? port,
    socketPath,
    tls: tls?.source ?? null,
    async stop() {
      for (const s of open) s.destroy();
      await Promise.all([tcp.stop(true), new Promise<void>((resolve) => local.close(() => resolve()))]);
      try {
        removeStaleSocket(socketPath);
      } catch {
        /* already gone */
      }
    },
  };
}
