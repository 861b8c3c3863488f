import { startServer } from "../api/server.ts";
import { ConfigSchema } from "../config.ts";
import { createCore } from "../core.ts";
import { configFrom, UsageError, type Command } from "./command.ts";

/** --gamestream-port: a base port the config schema accepts (HTTPS at base − 5, RTSP at base + 21), as a number. */
export function gamestreamPortFlag(raw: string): number {
  const n = /^\d{1,5}$/.test(raw) ? Number(raw) : Number.NaN;
  const checked = ConfigSchema.shape.gamestreamPort.safeParse(n);
  if (!checked.success) {
    const why = Number.isNaN(n) ? "not a port number" : checked.error.issues[0]!.message;
    throw new UsageError(`serve: --gamestream-port ${JSON.stringify(raw)}: ${why} (a base port 6–65514: HTTP = base, HTTPS = base−5, RTSP = base+21, UDP base+9..11)`);
  }
  return checked.data;
}

export const serveCommand: Command = {
  name: "serve",
  summary: "Run the appliance service: management API (and, as they are enabled, the stream host).",
  usage: "serve [--host ADDR] [--port N] [--gamestream-port BASE] [--state-dir DIR] [--log-format auto|json|text]",
  help: [
    "Options:",
    "  --host ADDR              API bind address (default 127.0.0.1; env NEURON_HOST)",
    "  --port N                 API port (default 8547, 0 = any free port; env NEURON_PORT)",
    "  --gamestream-port BASE   GameStream base port (default 47989; env NEURON_GAMESTREAM_PORT,",
    "                           config gamestreamPort): HTTP = BASE, HTTPS = BASE-5, RTSP = BASE+21,",
    "                           video/control/audio UDP = BASE+9/10/11",
    "  --state-dir DIR          database, keys and sockets (env NEURON_STATE_DIR)",
    "  --log-format F           auto (text on a TTY, else JSON lines), json or text",
  ].join("\n"),
  flags: {
    host: { type: "string" },
    port: { type: "string" },
    "gamestream-port": { type: "string" },
    "state-dir": { type: "string" },
    "log-format": { type: "string" },
  },
  async run(args, ctx) {
    // checked before anything starts: a wrong invocation, exit 2
    const gsPort = args.values["gamestream-port"];
    if (typeof gsPort === "string") args.values["gamestream-port"] = String(gamestreamPortFlag(gsPort));
    const config = configFrom(args, ctx, {
      "gamestream-port": "gamestreamPort",
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
