import { homedir } from "node:os";
import { join } from "node:path";
import { configFrom, JSON_FLAG, printJson, UsageError, type Command } from "./command.ts";

const MODE = /^(\d{2,5})x(\d{2,5})x(\d{1,3})$/;

export const lumenCommand: Command = {
  name: "lumen",
  summary: "The native stream protocol lumen/1: connect the reference client to a host, pair by PIN, stream and count.",
  usage: "lumen connect HOST [--port N] [--pin NNNN] [--mode WxHxFPS] [--seconds S] [--loss PCT] [--burst N] [--codec h264|hevc] [--bitrate KBPS] [--transport quic|tls] [--client-dir DIR] [--json]",
  help: [
    "  connect HOST     stream from the lumen/1 host at HOST (TLS control on TCP, data on UDP, same port)",
    "  --port N         the host's port (default 48100, the documented lumen/1 port)",
    "  --pin NNNN       pair with this PIN the first time; enter the same PIN on the host (`pair --pin NNNN`)",
    "  --mode WxHxFPS   the mode to ask for (default 1280x720x60)",
    "  --seconds S      how long to stream (default 5)",
    "  --loss PCT       drop this share of incoming data packets at random (testing FEC)",
    "  --burst N        ... in bursts of N packets (default 1)",
    "  --transport T    control over quic (default: UDP port N) or tls (the TLS 1.3 on TCP fallback)",
    "  --client-dir DIR where the client keeps its id, pinned fingerprints and pairing keys",
    "                   (default ~/.config/neuron-lumen)",
    "  --json           print JSON: framesSent, framesReceived, framesDecoded, framesRecovered, p50Ms, p99Ms, ...",
  ].join("\n"),
  flags: {
    ...JSON_FLAG,
    port: { type: "string" },
    pin: { type: "string" },
    mode: { type: "string" },
    seconds: { type: "string" },
    loss: { type: "string" },
    burst: { type: "string" },
    codec: { type: "string" },
    bitrate: { type: "string" },
    "client-dir": { type: "string" },
    transport: { type: "string" },
    name: { type: "string" },
  },
  positionals: true,
  async run(args, ctx) {
    const [sub, host, ...extra] = args.positionals;
    if (sub !== "connect" || !host || extra.length) throw new UsageError("lumen: usage: lumen connect HOST [--port N] [--pin NNNN] [--mode WxHxFPS] [--seconds S] [--loss PCT] [--json]");
    const v = args.values;
    const num = (name: string, def: number, min: number, max: number) => {
      const raw = v[name];
      if (raw === undefined) return def;
      const n = Number(raw);
      if (!Number.isFinite(n) || n < min || n > max) throw new UsageError(`lumen connect: --${name} must be a number from ${min} to ${max} (got ${JSON.stringify(raw)})`);
      return n;
    };
    const port = num("port", 48100, 1, 65535);
    const seconds = num("seconds", 5, 0.1, 3600);
    const loss = num("loss", 0, 0, 90) / 100;
    const burst = num("burst", 1, 1, 64);
    const pin = v.pin as string | undefined;
    if (pin !== undefined && !/^\d{4}$/.test(pin)) throw new UsageError("lumen connect: --pin must be 4 digits");
    const m = MODE.exec((v.mode as string | undefined) ?? "1280x720x60");
    if (!m) throw new UsageError("lumen connect: --mode must look like 1280x720x60");
    const mode = { width: Number(m[1]), height: Number(m[2]), fps: Number(m[3]) };
    const codec = v.codec as string | undefined;
    if (codec !== undefined && codec !== "h264" && codec !== "hevc") throw new UsageError("lumen connect: --codec is h264 or hevc");
    const transport = (v.transport as string | undefined) ?? "quic";
    if (transport !== "quic" && transport !== "tls") throw new UsageError("lumen connect: --transport is quic or tls");
    const bitrate = v.bitrate === undefined ? undefined : num("bitrate", 0, 100, 500_000);
    const config = configFrom(args, ctx);
    const { resolveNativePath } = await import("../../ffi/native.ts");
    const { LumenNative } = await import("../../ffi/lumen.ts");
    const { StreamNative } = await import("../../ffi/stream.ts");
    const { runClient } = await import("../lumen/run.ts");
    const path = resolveNativePath({ explicit: config.nativeLib, embedded: ctx.embeddedNativeLib });
    const clientDir = (v["client-dir"] as string | undefined) ?? join(ctx.env.XDG_CONFIG_HOME ?? join(homedir(), ".config"), "neuron-lumen");
    const r = await runClient({
      host, port, pin, stateDir: clientDir, mode, seconds, loss, burst, name: (v.name as string | undefined) ?? "neuron-appliance lumen",
      natives: { lumen: new LumenNative(path), stream: new StreamNative(path) }, inputEveryMs: 100, transport,
      ...(codec ? { codecs: [codec as "h264" | "hevc"] } : {}), ...(bitrate ? { bitrateKbps: bitrate } : {}),
    });
    if (v.json) printJson(ctx, r);
    else
      ctx.stdout(
        `${r.host}:${r.port} (${r.transport}) ${r.codec} ${r.mode}: ${r.framesReceived}/${r.framesSent} frames received, ${r.framesDecoded ?? "?"} decoded, ` +
          `${r.framesRecovered} recovered by FEC; capture→reassembled p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms\n`,
      );
    return 0;
  },
};
