/**
 * The management API's sockets: TCP on config.host:config.port and the local API on a unix
 * socket in the state dir (mode 0600). They open before the API itself is built, so `serve`
 * listens within milliseconds of its start: until ready(app) the liveness route
 * (GET /api/v1/health, whose answer depends on nothing but the process running) is answered
 * directly and every other request waits for the app (bounded), then goes through it.
 * Knows nothing of the routes: importing this file loads no domain module.
 */
import { chmodSync, existsSync, lstatSync, unlinkSync } from "node:fs";
import type { Config } from "../config.ts";

export interface ApiHandler {
  handle(request: Request): Response | Promise<Response>;
}

export interface RunningServer {
  url: string;
  port: number;
  socketPath: string;
  stop(): Promise<void>;
}

export interface ApiListener extends RunningServer {
  /** From now on every request goes through `app`. */
  ready(app: ApiHandler): void;
  /** The API could not be built: waiting requests (and later ones) get 503. */
  fail(err: Error): void;
}

/** The liveness path answered before the app is built (the same body as the system route's). */
export const LIVENESS_PATH = "/api/v1/health";
/** Longest a request waits for the API to be built before it gets 503. */
export const READY_WAIT_MS = 10_000;

function removeStaleSocket(path: string): void {
  if (!existsSync(path)) return;
  if (!lstatSync(path).isSocket()) throw new Error(`${path} exists and is not a socket; refusing to replace it`);
  unlinkSync(path);
}

const unavailable = (message: string) =>
  Response.json({ error: { code: "STARTING", message } }, { status: 503, headers: { "retry-after": "1" } });

export function listenApi(config: Pick<Config, "host" | "port" | "maxBodyBytes" | "socketPath">): ApiListener {
  const { host, port, maxBodyBytes, socketPath } = config;
  let app: ApiHandler | null = null;
  let failure: Error | null = null;
  let wake: (() => void)[] = [];
  const waitForApp = (request: Request): Promise<Response> | Response => {
    if (request.method === "GET" && new URL(request.url).pathname === LIVENESS_PATH) return Response.json({ status: "ok" });
    return new Promise<Response>((resolve) => {
      const timer = setTimeout(() => resolve(unavailable("the service is still starting")), READY_WAIT_MS);
      wake.push(() => {
        clearTimeout(timer);
        resolve(app ? app.handle(request) : unavailable(`the service could not start: ${failure?.message ?? "unknown"}`));
      });
    });
  };
  const fetch = (request: Request) => (app ? app.handle(request) : failure ? unavailable(`the service could not start: ${failure.message}`) : waitForApp(request));
  const tcp = Bun.serve({ hostname: host, port, maxRequestBodySize: maxBodyBytes, fetch });
  let local: ReturnType<typeof Bun.serve> | null = null;
  try {
    removeStaleSocket(socketPath);
    local = Bun.serve({ unix: socketPath, maxRequestBodySize: maxBodyBytes, fetch });
    chmodSync(socketPath, 0o600);
  } catch (err) {
    tcp.stop(true);
    local?.stop(true);
    throw new Error(`cannot listen on local socket ${socketPath}: ${(err as Error).message}`);
  }
  const release = () => {
    const w = wake;
    wake = [];
    for (const f of w) f();
  };
  const boundHost = host.includes(":") ? `[${host}]` : host;
  return {
    url: `http://${boundHost}:${tcp.port}`,
    port: tcp.port ?? port,
    socketPath,
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
      await Promise.all([tcp.stop(), local?.stop()]);
      try {
        removeStaleSocket(socketPath);
      } catch {
        /* already gone */
      }
    },
  };
}
