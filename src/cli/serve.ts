/**
 * `serve`: the sockets open first (src/api/listen.ts: liveness answers at once, other requests
 * wait), then the core and the API are loaded in slices that yield to the event loop between
 * them, so the listener answers while the rest loads. The GameStream host starts once its
 * identity exists (the RSA key comes from a child `openssl genrsa`), and the encoders are timed
 * a second after that, in a child process (`capture speed`), so nothing they allocated stays.
 */
import { mkdirSync } from "node:fs";
import { listenApi } from "../api/listen.ts";
import { ConfigSchema } from "../config.ts";
import type { Core } from "../core.ts";
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

/** Lets the event loop answer what arrived (setImmediate: after I/O). */
const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * The heavier parts of the module graph, loaded one per slice (a module's first import
 * evaluates its whole subgraph at once; these split it into pieces of a few milliseconds).
 */
const SLICES: (() => Promise<unknown>)[] = [
  () => import("zod"),
  () => import("drizzle-orm"),
  () => import("../db/client.ts"),
  () => import("../apps/service.ts"),
  () => import("../hardware/service.ts"),
  () => import("../vfio/service.ts"),
  () => import("../guest/service.ts"),
  () => import("../vm/wire.ts"),
  () => import("../capture/service.ts"),
  () => import("../gamestream/service.ts"),
  () => import("../core.ts"),
  () => import("elysia"),
  () => import("@elysiajs/openapi"),
  () => import("../api/app.ts"),
];

export const serveCommand: Command = {
  name: "serve",
  summary: "Run the appliance service: management API (and, as they are enabled, the stream host).",
  usage: "serve [--host ADDR] [--port N] [--gamestream-port BASE] [--state-dir DIR] [--log-format auto|json|text]",
  help: [
    "Options:",
    "  --host ADDR              API bind address (default 127.0.0.1; env NEURON_HOST); beyond loopback",
    "                           only with TLS (config apiTls.cert + apiTls.key, or apiTls.selfSigned)",
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
    const t0 = performance.now();
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
    mkdirSync(config.stateDir, { recursive: true, mode: 0o700 });
    const server = listenApi(config);
    await server.listening;
    let core: Core | null = null;
    try {
      for (const slice of SLICES) {
        await yieldToLoop();
        await slice();
      }
      await yieldToLoop();
      const { createCore } = await import("../core.ts");
      const { childSpeedMeter } = await import("../capture/speed-child.ts");
      // this executable (compiled) or bun + the entry script (from source)
      const self = Bun.main.startsWith("/$bunfs/") ? [process.execPath] : [process.execPath, Bun.main];
      core = createCore(config, {
        embeddedNativeLib: ctx.embeddedNativeLib,
        requireNative: true,
        speedMeter: childSpeedMeter(self, { configFile: config.configFile, env: ctx.env }),
      });
      await yieldToLoop();
      const { createApp } = await import("../api/app.ts");
      server.ready(createApp(core));
    } catch (err) {
      server.fail(err as Error);
      await server.stop();
      core?.close();
      throw err;
    }
    core.log.info("listening", {
      url: server.url,
      socket: server.socketPath,
      tls: server.tls,
      stateDir: config.stateDir,
      native: core.nativePath,
      startupMs: Math.round(performance.now() - t0),
    });
    if (core.users.groupId(config.adminGroup) === null)
      core.log.warn("admin group missing: the local socket is root-only", { group: config.adminGroup, setting: "adminGroup", socket: server.socketPath });
    // an update a crash, kill or power loss interrupted: verified (the API is up now, it is one of the checks) and rolled back by policy
    void core.updates.recoverInterrupted().then(
      (recovered) => {
        for (const u of recovered) core.log.warn("interrupted update recovered", { update: u.id, verdict: u.verdict, reason: u.reason });
      },
      (err: unknown) => core.log.error("could not recover an interrupted update", { error: (err as Error).message }),
    );
    // a setup flow that can go on by itself (after the reboot, or waiting for the guest) continues here
    const stopSetup = config.setup.resumeIntervalMs > 0 ? core.setup.startResuming(config.setup.resumeIntervalMs) : () => {};
    let gamestreamStarted = false;
    if (config.gamestreamEnabled) {
      try {
        await core.prepareGameStream();
        const ports = await core.gamestream().start();
        gamestreamStarted = true;
        core.log.info("GameStream host listening", { host: config.gamestreamHost, http: ports.http, https: ports.https, rtsp: ports.rtsp });
      } catch (err) {
        await server.stop();
        core.close();
        throw err;
      }
    }
    let lumenStarted = false;
    if (config.lumenEnabled) {
      try {
        await core.prepareGameStream();
        const port = await core.lumen().start();
        lumenStarted = true;
        core.log.info("lumen/1 host listening", { host: config.lumenHost, port });
      } catch (err) {
        if (gamestreamStarted) await core.gamestream().stop();
        await server.stop();
        core.close();
        throw err;
      }
    }
    const running = core;
    // once started (and, with the host, once the encoders are timed) the appliance idles: the
    // engine drops what start-up left (code of functions run once, free heap pages)
    const settled = () => {
      Bun.gc(true);
      Bun.shrink();
    };
    // the encoders are timed once the host is up, on a native thread; H.264 only until then
    const measure = gamestreamStarted
      ? setTimeout(() => void running.codecs.measure().catch((err) => running.log.warn("codec measurement failed", { error: err })).finally(settled), 1000)
      : null;
    const idle = measure ? null : setTimeout(settled, 1000);
    await new Promise<void>((resolve) => {
      const stop = (signal: string) => {
        running.log.info("stopping", { signal });
        process.off("SIGINT", onInt);
        process.off("SIGTERM", onTerm);
        resolve();
      };
      const onInt = () => stop("SIGINT");
      const onTerm = () => stop("SIGTERM");
      process.on("SIGINT", onInt);
      process.on("SIGTERM", onTerm);
    });
    if (measure) clearTimeout(measure);
    if (idle) clearTimeout(idle);
    stopSetup();
    await running.codecs.close();
    if (lumenStarted) await running.lumen().stop();
    if (gamestreamStarted) await running.gamestream().stop();
    await server.stop();
    running.close();
    return 0;
  },
};
