/**
 * The management API's sockets. They open before the API itself is built, so `serve` listens
 * within milliseconds of its start: until ready(app) the liveness route (GET /api/v1/health,
 * whose answer depends on nothing but the process running) is answered directly (for a Host
 * that names the appliance) and every other request waits for the app (bounded), then goes
 * through it. Each listener attaches who is on the other end to every request it hands to the
 * app (auth/guard.ts decides from that):
 *
 * - TCP on config.host:config.port (loopback by default; beyond loopback only with TLS, see
 *   api/tls.ts), through Bun.serve;
 * - the local API on a unix socket (<stateDir>/api.sock by default), mode 0660 to the admin
 *   group (0600 when it does not exist), through node:net so the kernel's peer credentials
 *   (SO_PEERCRED) of each connection are known, feeding a node:http parser.
 *
 * Knows nothing of the routes: importing this file loads no domain module.
 */
import { chmodSync, chownSync, existsSync, lstatSync, unlinkSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Server as NetServer, Socket } from "node:net";
import type { PeerCredentials } from "../../ffi/peercred.ts";
import { attachTransport } from "../auth/caller.ts";
import { hostPolicy } from "../auth/hosts.ts";
import { userDb } from "../auth/users.ts";
import type { Config } from "../config.ts";
import { apiTls } from "./tls.ts";
import { bodyLimitFor, boundUndeclaredBody } from "./body.ts";
import { isUpgradeRequest, takeUpgrade, websocketDispatch, type SocketHandlers } from "./upgrade.ts";

export interface ApiHandler {
  handle(request: Request): Response | Promise<Response>;
}

export interface RunningServer {
  url: string;
  port: number;
  socketPath: string;
  /** Where the TCP listener's certificate comes from, when it has TLS. */
  tls: "configured" | "self-signed" | null;
  stop(): Promise<void>;
}

export interface ApiListener extends RunningServer {
  /** Settles once the local socket listens (rejects when it cannot). */
  listening: Promise<void>;
  /** From now on every request goes through `app`. */
  ready(app: ApiHandler): void;
  /** The API could not be built: waiting requests (and later ones) get 503. */
  fail(err: Error): void;
}

/** The liveness path answered before the app is built (the same body as the system route's). */
export const LIVENESS_PATH = "/api/v1/health";
/** Longest a request waits for the API to be built before it gets 503. */
export const READY_WAIT_MS = 10_000;

type ListenConfig = Pick<Config, "host" | "port" | "maxBodyBytes" | "socketPath" | "adminGroup" | "etcDir" | "apiHostnames" | "hostname" | "apiTls" | "stateDir" | "bin" | "configFile">;

function removeStaleSocket(path: string): void {
  if (!existsSync(path)) return;
  if (!lstatSync(path).isSocket()) throw new Error(`${path} exists and is not a socket; refusing to replace it`);
  unlinkSync(path);
}

/** Bun.serve's own cut-off: above every bound the app applies by the declared length. */
const TRANSPORT_BODY_CEILING = 64 * 1024 * 1024;

const unavailable = (message: string) =>
  Response.json({ error: { code: "STARTING", message } }, { status: 503, headers: { "retry-after": "1" } });

const failJson = (res: ServerResponse, status: number, code: string, message: string) => {
  if (res.headersSent) return void res.destroy();
  res.writeHead(status, { "content-type": "application/json", connection: "close" });
  res.end(JSON.stringify({ error: { code, message } }));
};

/** node:http request → fetch Request (body read whole, at most `limit` bytes) → the app → node:http response. */
function bridge(handle: (request: Request) => Response | Promise<Response>, limit: number, creds: WeakMap<Socket, PeerCredentials>) {
  return (req: IncomingMessage, res: ServerResponse) => {
    const cred = creds.get(req.socket as Socket);
    if (!cred) return failJson(res, 403, "FORBIDDEN", "the caller's credentials could not be read from the socket");
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    const bound = bodyLimitFor(req.method ?? "GET", (req.url ?? "/").split("?")[0]!, limit);
    req.on("data", (chunk: Buffer) => {
      if (refused) return;
      size += chunk.length;
      if (size > bound.limit) {
        refused = true;
        failJson(res, bound.status, bound.code, bound.message);
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
        return failJson(res, 400, "MALFORMED_REQUEST", "malformed request target or Host header");
      }
      attachTransport(request, { kind: "unix", pid: cred.pid, uid: cred.uid, gid: cred.gid });
      try {
        const response = await handle(request);
        // this socket upgrades nothing: a route that accepted a WebSocket lets go of what it holds
        takeUpgrade(request)?.close(null, 1008, "the local socket serves no WebSockets");
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
        failJson(res, 500, "INTERNAL", "internal error");
      }
    });
  };
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

export function listenApi(config: ListenConfig): ApiListener {
  const { host, port, maxBodyBytes, socketPath } = config;
  const tls = apiTls(config as Config);
  const hosts = hostPolicy({ bindHost: host, extraNames: config.apiHostnames, machineName: config.hostname });
  let app: ApiHandler | null = null;
  let failure: Error | null = null;
  let wake: (() => void)[] = [];
  const waitForApp = (request: Request): Promise<Response> | Response => {
    if (request.method === "GET") {
      const url = new URL(request.url);
      if (url.pathname === LIVENESS_PATH && hosts.allows(url.host)) return Response.json({ status: "ok" });
    }
    return new Promise<Response>((resolve) => {
      const timer = setTimeout(() => resolve(unavailable("the service is still starting")), READY_WAIT_MS);
      wake.push(() => {
        clearTimeout(timer);
        resolve(app ? app.handle(request) : unavailable(`the service could not start: ${failure?.message ?? "unknown"}`));
      });
    });
  };
  const handle = (request: Request) => (app ? app.handle(request) : failure ? unavailable(`the service could not start: ${failure.message}`) : waitForApp(request));
  const tcp = Bun.serve<SocketHandlers>({
    hostname: host,
    port,
    // A transport ceiling only: declared lengths are refused by the app's guard before the body
    // is read (by route: inject-input answers 422), undeclared ones are read bounded below.
    maxRequestBodySize: Math.max(maxBodyBytes, TRANSPORT_BODY_CEILING),
    ...(tls ? { tls: { cert: tls.cert, key: tls.key } } : {}),
    websocket: websocketDispatch,
    async fetch(raw, server) {
      const remoteIp = server.requestIP(raw)?.address ?? "";
      const request = await boundUndeclaredBody(raw, maxBodyBytes);
      if (request instanceof Response) return request;
      attachTransport(request, { kind: "tcp", remoteIp, tls: tls !== null });
      if (!isUpgradeRequest(request)) return handle(request);
      // a WebSocket: upgraded only when a route (past the auth guard) accepted it
      return Promise.resolve(handle(request)).then((response) => {
        const handlers = takeUpgrade(request);
        if (!handlers) return response;
        if (server.upgrade(request, { data: handlers })) return undefined;
        handlers.close(null, 1011, "upgrade failed");
        return response;
      });
    },
  });
  const creds = new WeakMap<Socket, PeerCredentials>();
  const open = new Set<Socket>();
  let local: NetServer | null = null;
  // node:net, node:http and bun:ffi load after TCP listens: the first health answer waits for none of them
  const listening = (async () => {
    const [{ createServer: createNetServer }, { createServer: createHttpServer }, { peerCredentials }] = await Promise.all([
      import("node:net"),
      import("node:http"),
      import("../../ffi/peercred.ts"),
    ]);
    const parser = createHttpServer({ maxHeaderSize: 16 * 1024 }, bridge(handle, maxBodyBytes, creds));
    const server = createNetServer((socket) => {
      const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
      const cred = fd === undefined ? null : peerCredentials(fd);
      if (!cred) return void socket.destroy();
      creds.set(socket, cred);
      open.add(socket);
      socket.once("close", () => open.delete(socket));
      parser.emit("connection", socket);
    });
    local = server;
    try {
      removeStaleSocket(socketPath);
      await listenUnix(server, socketPath);
      const group = userDb(config.etcDir).groupId(config.adminGroup);
      if (group !== null) {
        chownSync(socketPath, process.getuid?.() ?? 0, group);
        chmodSync(socketPath, 0o660);
      } else chmodSync(socketPath, 0o600);
    } catch (err) {
      tcp.stop(true);
      server.close();
      local = null;
      throw new Error(`cannot listen on local socket ${socketPath}: ${(err as Error).message}`);
    }
  })();
  listening.catch(() => {});
  const release = () => {
    const w = wake;
    wake = [];
    for (const f of w) f();
  };
  const boundHost = host.includes(":") ? `[${host}]` : host;
  return {
    url: `${tls ? "https" : "http"}://${boundHost}:${tcp.port}`,
    port: tcp.port ?? port,
    socketPath,
    tls: tls?.source ?? null,
    listening,
    ready(a) {
      app = a;
      release();
    },
    fail(err) {
      failure = err;
      release();
    },
    async stop() {
      release();
      await listening.catch(() => {});
      for (const s of open) s.destroy();
      const server = local;
      await Promise.all([tcp.stop(true), server ? new Promise<void>((resolve) => server.close(() => resolve())) : undefined]);
      try {
        removeStaleSocket(socketPath);
      } catch {
        /* already gone */
      }
    },
  };
}
