/**
 * Encoder timing in a child process (`neuron-appliance capture speed ... --json`): the service
 * never holds what an encoder under test allocated (libx265 at 1080p touches ~100 MB, which
 * glibc's per-thread arenas keep resident after the encoder closes), and a crash in one stays
 * in the child. Same results as CaptureService.measureSpeed, which the child runs.
 */
import { EncoderSpeedResult, type CodecName } from "./model.ts";
import { AppError } from "../errors.ts";
import type { SpeedMeter } from "../gamestream/codecs.ts";

export function childSpeedMeter(self: string[], opts: { configFile?: string | null; env?: Record<string, string | undefined> } = {}): SpeedMeter {
  return {
    async measureSpeed(codec: CodecName, mode, o = {}) {
      const maxMs = o.maxMs ?? 1500;
      const argv = [
        ...self,
        "capture",
        "speed",
        "--codec",
        codec,
        "--mode",
        `${mode.width}x${mode.height}x${mode.fps}`,
        "--frames",
        String(o.maxFrames ?? 60),
        "--max-ms",
        String(maxMs),
        "--threads",
        String(o.threads ?? 3),
        "--json",
        ...(opts.configFile ? ["--config", opts.configFile] : []),
      ];
      const proc = Bun.spawn(argv, { env: opts.env ?? process.env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
      const deadline = setTimeout(() => proc.kill("SIGKILL"), maxMs * 4 + 30_000);
      const poll = setInterval(() => o.cancelled?.() && proc.kill("SIGKILL"), 50);
      try {
        const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
        if (o.cancelled?.()) throw new AppError("ENCODER_SPEED_CANCELLED", "the encoder measurement was stopped", { status: 503 });
        if (code !== 0) throw new AppError("ENCODER_SPEED_FAILED", `encoder timing process failed (exit ${code ?? proc.signalCode}): ${err.trim().split("\n").pop() ?? ""}`, { status: 500 });
        const parsed = EncoderSpeedResult.safeParse(JSON.parse(out));
        if (!parsed.success) throw new AppError("ENCODER_SPEED_FAILED", `encoder timing process printed an unexpected result: ${parsed.error.issues[0]?.message}`, { status: 500 });
        return parsed.data;
      } finally {
        clearTimeout(deadline);
        clearInterval(poll);
      }
    },
  };
}
