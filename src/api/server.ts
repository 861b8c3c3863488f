/**
 * Runs the management API over a built core: TCP on config.host:config.port (loopback by
 * default, beyond it only with TLS), plus the local API on a unix socket that one-shot CLI
 * commands use to act on the running service (see listen.ts). `serve` opens the sockets first
 * and hands them the app once the core is built.
 */
import type { Core } from "../core.ts";
import { createApp } from "./app.ts";
import { listenApi, type RunningServer } from "./listen.ts";

export type { RunningServer } from "./listen.ts";

export async function startServer(core: Core): Promise<RunningServer> {
  const listener = listenApi(core.config);
  await listener.listening;
  listener.ready(createApp(core));
  return listener;
}
