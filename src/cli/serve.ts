import { startServer } from "../api/server.ts";
import { createCore } from "../core.ts";
import { configFrom, type Command } from "./command.ts";

export const serveCommand: Command = {
  name: "serve",
  summary: "Run the appliance service: management API (and, as they are enabled, the stream host).",
  usage: "serve [--host ADDR] [--port N] [--state-dir DIR] [--log-format auto|json|text]",
  help: [
    "Options:",
    "  --host ADDR        API bind address (default 127.0.0.1; env NEURON_HOST)",
    "  --port N           API port (default 8547, 0 = any free port; env NEURON_PORT)",
    "  --state-dir DIR    database, keys and sockets (env NEURON_STATE_DIR)",
    "  --log-format F     auto (text on a TTY, else JSON lines), json or text",
  ].join("\n"),
  flags: {
    host: { type: "string" },
    port: { type: "string" },
    "state-dir": { type: "string" },
    "log-format": { type: "string" },
  },
  async run(args, ctx) {
    const config = configFrom(args, ctx, {
      host: "host",
      port: "port",
      "state-dir": "stateDir",
      "log-format": "logFormat",
    });
    const core = createCore(config, { embeddedNativeLib: ctx.embeddedNativeLib, requireNative: true });
    let server;
    try {
      server = await startServer(core);
    } catch (err) {
      core.close();
      throw err;
    }
    core.log.info("listening", {
      url: server.url,
      socket: server.socketPath,
      stateDir: config.stateDir,
      native: core.nativeState.version,
    });
    // an update a crash, kill or power loss interrupted: verified (the API is up now, it is one of the checks) and rolled back by policy
    void core.updates.recoverInterrupted().then(
      (recovered) => {
        for (const u of recovered) core.log.warn("interrupted update recovered", { update: u.id, verdict: u.verdict, reason: u.reason });
      },
      (err: unknown) => core.log.error("could not recover an interrupted update", { error: (err as Error).message }),
    );
    let gamestreamStarted = false;
    if (config.gamestreamEnabled) {
      try {
        const ports = await core.gamestream().start();
        gamestreamStarted = true;
        core.log.info("GameStream host listening", { host: config.gamestreamHost, http: ports.http, https: ports.https, rtsp: ports.rtsp });
      } catch (err) {
        await server.stop();
        core.close();
        throw err;
      }
    }
    await new Promise<void>((resolve) => {
      const stop = (signal: string) => {
        core.log.info("stopping", { signal });
        process.off("SIGINT", onInt);
        process.off("SIGTERM", onTerm);
        resolve();
      };
      const onInt = () => stop("SIGINT");
      const onTerm = () => stop("SIGTERM");
      process.on("SIGINT", onInt);
      process.on("SIGTERM", onTerm);
    });
    if (gamestreamStarted) await core.gamestream().stop();
    await server.stop();
    core.close();
    return 0;
  },
};
