/**
 * Runs the management API over a built core: TCP on config.host:config.port (loopback by
 * default), plus the local API on a unix socket in the state dir (mode 0600) that one-shot CLI
 * commands use to act on the running service. `serve` opens the sockets first (listen.ts)
 * and hands them the app once the core is built.
 */
import type { Core } from "../core.ts";
import { createApp } from "./app.ts";
import { listenApi, type RunningServer } from "./listen.ts";

export type { RunningServer } from "./listen.ts";

export function startServer(core: Core): RunningServer {
  const listener = listenApi(core.config);
  listener.ready(createApp(core));
  return listener;
}
