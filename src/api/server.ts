/**
 * Runs the management API: TCP on config.host:config.port (loopback by
 * default), plus the local API on a unix socket in the state dir (mode 0600)
 * that one-shot CLI commands use to act on the running service.
 */
import { chmodSync, existsSync, lstatSync, unlinkSync } from "node:fs";
import type { Core } from "../core.ts";
import { createApp } from "./app.ts";

export interface RunningServer {
  url: string;
  port: number;
  socketPath: string;
  stop(): Promise<void>;
}

function removeStaleSocket(path: string): void {
  if (!existsSync(path)) return;
  if (!lstatSync(path).isSocket()) throw new Error(`${path} exists and is not a socket; refusing to replace it`);
  unlinkSync(path);
}

export function startServer(core: Core): RunningServer {
  const app = createApp(core);
  const { host, port, maxBodyBytes, socketPath } = core.config;
  const tcp = Bun.serve({
    hostname: host,
    port,
    maxRequestBodySize: maxBodyBytes,
    fetch: (req) => app.handle(req),
  });
  let local: ReturnType<typeof Bun.serve> | null = null;
  try {
    removeStaleSocket(socketPath);
    local = Bun.serve({ unix: socketPath, maxRequestBodySize: maxBodyBytes, fetch: (req) => app.handle(req) });
    chmodSync(socketPath, 0o600);
  } catch (err) {
    tcp.stop(true);
    local?.stop(true);
    throw new Error(`cannot listen on local socket ${socketPath}: ${(err as Error).message}`);
  }
  const boundHost = host.includes(":") ? `[${host}]` : host;
  return {
    url: `http://${boundHost}:${tcp.port}`,
    port: tcp.port ?? port,
    socketPath,
    async stop() {
      await Promise.all([tcp.stop(), local?.stop()]);
      try {
        removeStaleSocket(socketPath);
      } catch {
        /* already gone */
      }
    },
  };
}
