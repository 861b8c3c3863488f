import { closeSync, openSync, writeSync } from "node:fs";
import { CodecName } from "../capture/model.ts";
import { CaptureService } from "../capture/service.ts";
import { captureSourceSettings } from "../capture/wire.ts";
import { CodecSupport, type CodecSupportReport } from "../gamestream/codecs.ts";
import { silentLogger } from "../log.ts";
import { loadNative } from "../core.ts";
import { AppError } from "../errors.ts";
import { configFrom, JSON_FLAG, printJson, UsageError, type Command, type ParsedArgs } from "./command.ts";

const intFlag = (args: ParsedArgs, name: string): number | undefined => {
  const v = args.values[name];
  if (v === undefined) return undefined;
  if (typeof v !== "string" || !/^\d+$/.test(v)) throw new UsageError(`capture: --${name} must be a whole number`);
  return Number(v);
};

export const captureCommand: Command = {
  name: "capture",
  summary: "Frame capture and encoding: list frame sources, probe encoders, inspect a shared-memory source, run the demo pipeline.",
  usage: "capture sources [--vm NAME] | encoders [--codec h264|hevc] [--no-measure] | speed --mode WxHxFPS [--codec C] | inspect NAME [--timeout-ms N] | demo [options] [--out FILE] [--json]",
  help: [
    "Subcommands:",
    "  sources           every frame-source kind (IVSHMEM LGMP/KVMFR and NFB1, vsock, unix socket, host virtual",
    "                    output) with whether this host can use it and, when not, why; --vm NAME: which transport",
    "                    that VM's frames take (IVSHMEM, then vsock, then a unix socket) and why",
    "  encoders          which encoder this machine uses per codec and why (every candidate's reason), its",
    "                    measured speed at the modes of gamestreamCodecs.modes, and whether clients are offered it",
    "  speed --mode WxHxFPS   time one codec at one mode (convert + encode of a moving test pattern)",
    "  inspect NAME      attach to <shmDir>/NAME (Looking Glass B7 layout) and describe it and one frame",
    "  demo              synthetic producer → capture → convert → encode; prints throughput and stage latency",
    "",
    "Options:",
    "  --codec h264|hevc   encoders: only this codec (default both); demo: the codec (default h264)",
    "  --no-measure        encoders: probe only, do not time the encoders",
    "  --vm NAME           sources: the VM whose frame transport to choose",
    "  --timeout-ms N      inspect: how long to wait for the guest (default 1000)",
    "  --width N --height N --fps N --frames N --bitrate-kbps N --threads N   demo settings",
    "  --mode WxHxFPS --frames N --max-ms N --threads N                        speed settings",
    "  --out FILE          demo: write the Annex-B stream to FILE",
    "  --shm-dir DIR       directory of shared-memory files (default /dev/shm)",
    "  --json              print JSON",
  ].join("\n"),
  positionals: true,
  flags: {
    ...JSON_FLAG,
    codec: { type: "string" },
    "no-measure": { type: "boolean" },
    mode: { type: "string" },
    "max-ms": { type: "string" },
    "timeout-ms": { type: "string" },
    vm: { type: "string" },
    width: { type: "string" },
    height: { type: "string" },
    fps: { type: "string" },
    frames: { type: "string" },
    "bitrate-kbps": { type: "string" },
    threads: { type: "string" },
    out: { type: "string" },
    "shm-dir": { type: "string" },
  },
  async run(args, ctx) {
    const [sub, ...rest] = args.positionals;
    const codec = CodecName.safeParse(args.values.codec ?? "h264");
    if (!codec.success) throw new UsageError("capture: --codec must be h264 or hevc");
    if (sub !== "sources" && sub !== "encoders" && sub !== "speed" && sub !== "inspect" && sub !== "demo")
      throw new UsageError("capture: expected a subcommand: sources, encoders, speed, inspect NAME or demo");
    if ((sub === "inspect" && rest.length !== 1) || (sub !== "inspect" && rest.length))
      throw new UsageError(`capture ${sub}: unexpected arguments`);
    const config = configFrom(args, ctx, { "shm-dir": "shmDir" });
    if (sub === "sources") return listSources(args, ctx, config);
    const { lib, state } = loadNative(config, ctx.embeddedNativeLib);
    const path = lib?.path ?? null;
    lib?.close();
    if (!path) throw new AppError("NATIVE_UNAVAILABLE", `native library unavailable: ${state.error}`);
    const service = new CaptureService(config.shmDir, path);
    try {
      if (sub === "encoders") {
        const only = args.values.codec === undefined ? null : codec.data;
        const codecs = only ? [only] : (["h264", "hevc"] as const);
        const probes = codecs.map((c) => service.probeEncoders(c));
        let report: CodecSupportReport | null = null;
        if (!args.values["no-measure"]) {
          const settings = { ...config.gamestreamCodecs };
          if (only === "hevc") settings.h264 = "on"; // not measured, not shown
          if (only === "h264") settings.hevc = "off";
          const support = new CodecSupport(service, settings, silentLogger);
          try {
            report = await support.measure();
          } finally {
            await support.close();
          }
        }
        const verdicts = report?.codecs.filter((v) => codecs.includes(v.codec)) ?? [];
        if (args.values.json)
          printJson(ctx, { codecs: probes.map((p) => ({ ...p, verdict: verdicts.find((v) => v.codec === p.codec) ?? null })), serverCodecModeSupport: report?.bits ?? null });
        else
          for (const probe of probes) {
            ctx.stdout(`${probe.codec}: ${probe.chosen ?? "none"} (${probe.reason})\n`);
            for (const c of probe.candidates) ctx.stdout(`  ${c.name.padEnd(12)} ${c.status.padEnd(11)} ${c.reason}\n`);
            const v = verdicts.find((x) => x.codec === probe.codec);
            if (!v) continue;
            for (const m of v.modes)
              ctx.stdout(
                `  ${m.mode.padEnd(14)} ${m.measuredFps === null ? "not timed" : `${m.measuredFps} fps (p50 ${m.encodeP50Ms} ms/frame)`}  ${m.sustains ? "sustains" : "too slow"} (${m.neededFps} fps needed)${m.error ? ` ${m.error}` : ""}\n`,
              );
            ctx.stdout(`  offered to clients: ${v.advertised ? "yes" : "no"} (${v.reason})\n`);
          }
        return probes.every((p) => p.chosen || p.codec !== (only ?? "h264")) ? 0 : 1;
      }
      if (sub === "speed") {
        const mode = /^(\d+)x(\d+)x(\d+)$/.exec(String(args.values.mode ?? ""));
        if (!mode) throw new UsageError("capture speed: --mode WIDTHxHEIGHTxFPS is required");
        const r = await service.measureSpeed(
          codec.data,
          { width: Number(mode[1]), height: Number(mode[2]), fps: Number(mode[3]) },
          { maxFrames: intFlag(args, "frames"), maxMs: intFlag(args, "max-ms"), threads: intFlag(args, "threads") },
        );
        if (args.values.json) printJson(ctx, r);
        else ctx.stdout(`${r.codec} ${r.width}x${r.height}x${r.fps}: ${r.encoder ?? "no encoder"} ${r.measuredFps ?? "-"} fps over ${r.frames} frames (p50 ${r.encodeP50Ms} ms, max ${r.encodeMaxMs} ms)${r.error ? `: ${r.error}` : ""}\n`);
        return r.error ? 1 : 0;
      }
      if (sub === "inspect") {
        const status = service.inspectSource(rest[0]!, intFlag(args, "timeout-ms") ?? 1000);
        if (args.values.json) printJson(ctx, status);
        else {
          ctx.stdout(`${status.name}: LGMP ${status.lgmpVersion}, KVMFR ${status.kvmfrVersion}, session ${status.sessionId}\n`);
          const f = status.frame;
          ctx.stdout(
            f
              ? `frame ${f.serial}: ${f.type} ${f.width}x${f.height} (frame ${f.frameWidth}x${f.frameHeight}, rotation ${f.rotation})${f.flags.length ? ` [${f.flags.join(", ")}]` : ""}\n`
              : "no frame within the timeout\n",
          );
          ctx.stdout(`cursor: ${status.cursor.x},${status.cursor.y} ${status.cursor.visible ? "visible" : "hidden"}\n`);
        }
        return 0;
      }
      const out = args.values.out as string | undefined;
      const fd = out ? openSync(out, "w", 0o644) : null;
      try {
        const result = await service.runDemo(
          {
            codec: codec.data,
            width: intFlag(args, "width"),
            height: intFlag(args, "height"),
            fps: intFlag(args, "fps"),
            frames: intFlag(args, "frames"),
            bitrateKbps: intFlag(args, "bitrate-kbps"),
            threads: intFlag(args, "threads"),
          },
          fd === null ? undefined : (data) => void writeSync(fd, data),
        );
        if (args.values.json) printJson(ctx, result);
        else {
          ctx.stdout(`encoder ${result.encoder}: ${result.accessUnits} access units (${result.idrUnits} IDR), ${result.width}x${result.height}, ${result.fps} fps\n`);
          ctx.stdout(`latency p50 ${result.latencyMs.p50} ms, p99 ${result.latencyMs.p99} ms; ` +
            `copy ${result.stagesMs.copy.p50} / convert ${result.stagesMs.convert.p50} / encode ${result.stagesMs.encode.p50} ms (p50)\n`);
          if (out) ctx.stdout(`wrote ${result.bytes} bytes to ${out}\n`);
        }
        return 0;
      } finally {
        if (fd !== null) closeSync(fd);
      }
    } finally {
      service.close();
    }
  },
};

/** `capture sources [--vm NAME]`: works without the native library too (every kind then says why). */
async function listSources(args: ParsedArgs, ctx: Parameters<Command["run"]>[1], config: ReturnType<typeof configFrom>): Promise<number> {
  const { lib, state } = loadNative(config, ctx.embeddedNativeLib);
  const path = lib?.path ?? null;
  lib?.close();
  const service = new CaptureService(config.shmDir, path ?? (() => { throw new Error(state.error ?? "not found"); }), captureSourceSettings(config));
  try {
    const vm = args.values.vm;
    if (vm !== undefined) {
      if (typeof vm !== "string") throw new UsageError("capture sources: --vm needs a VM name");
      const choice = await service.vmTransport(vm);
      if (args.values.json) printJson(ctx, choice);
      else {
        ctx.stdout(`${choice.vm}: ${choice.kind} (${choice.reason})\n`);
        for (const c of choice.candidates) ctx.stdout(`  ${c.kind.padEnd(6)} ${c.usable ? "usable    " : "not usable"} ${c.reason}\n`);
      }
      return 0;
    }
    const { sources } = service.listSources();
    if (args.values.json) printJson(ctx, { sources });
    else
      for (const s of sources) {
        ctx.stdout(`${s.kind.padEnd(20)} ${s.available ? "available" : `unavailable: ${s.reason}`}\n`);
        if (s.input) ctx.stdout(`${"".padEnd(20)} input: ${s.input.backend} (${s.input.reason})\n`);
        for (const b of s.backends ?? []) ctx.stdout(`${"".padEnd(20)} ${b.name.padEnd(10)} ${b.available ? "available" : `unavailable: ${b.reason}`}\n`);
      }
    return 0;
  } finally {
    service.close();
  }
}
