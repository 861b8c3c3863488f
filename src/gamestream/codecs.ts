/**
 * ServerCodecModeSupport: only what this machine can stream. Moonlight picks HEVC whenever it is
 * offered, so a software HEVC encoder that manages 10 fps must not be offered.
 *
 * Rule (per codec, config `gamestreamCodecs`):
 *  - off: never offered (H.264 cannot be off: every client needs it); on: always offered;
 *  - auto: offered where a hardware encoder opens, or where the software encoder's measured
 *    speed sustains the largest configured mode: measured fps ≥ mode fps × (1 + marginPct/100)
 *    (default 25 %: the encoder thread shares the CPUs with FEC, encryption, sending and the VM).
 *    The largest mode is the one with the most pixels per second (ties: the most pixels).
 *  - H.264 on auto is offered whenever an H.264 encoder opens (a client cannot stream
 *    without it); a slow one is reported, not hidden.
 *
 * The speed is measured once, in the background after start-up, on a native thread
 * (CaptureService.measureSpeed). Until it is done the host offers H.264 only (plus codecs
 * forced on): a client that connects meanwhile gets a codec that streams.
 * HEVC Main10 and AV1 are never offered (the pipeline encodes 8-bit 4:2:0 H.264/HEVC only).
 */
import type { CaptureService } from "../capture/service.ts";
import type { CodecName, EncoderSpeedResult } from "../capture/model.ts";
import type { Logger } from "../log.ts";
import { modeName, type CodecMode, type CodecSetting, type GameStreamCodecSettings } from "./codec-settings.ts";

/** ServerCodecModeSupport bits (same values as nvhttp's CODEC). */
const BIT: Record<CodecName, number> = { h264: 0x1, hevc: 0x100 };
const CODECS: CodecName[] = ["h264", "hevc"];

export interface ModeSpeed {
  mode: string;
  width: number;
  height: number;
  fps: number;
  /** fps × (1 + margin): what the encoder must measure to sustain the mode. */
  neededFps: number;
  measuredFps: number | null;
  encodeP50Ms: number | null;
  sustains: boolean;
  error: string | null;
}

export interface CodecVerdict {
  codec: CodecName;
  setting: CodecSetting;
  /** pending: not measured yet; measuring; done; skipped: the setting decided, nothing measured. */
  state: "pending" | "measuring" | "done" | "skipped";
  encoder: string | null;
  hardware: boolean;
  modes: ModeSpeed[];
  advertised: boolean;
  reason: string;
}

export interface CodecSupportReport {
  /** ServerCodecModeSupport as serverinfo sends it now. */
  bits: number;
  /** True once every codec on auto was measured. */
  measured: boolean;
  marginPct: number;
  codecs: CodecVerdict[];
}

const round1 = (x: number) => Math.round(x * 10) / 10;

/** The mode that decides: most pixels per second, then most pixels. */
export function largestMode(modes: CodecMode[]): CodecMode {
  return [...modes].sort((a, b) => b.width * b.height * b.fps - a.width * a.height * a.fps || b.width * b.height - a.width * a.height)[0]!;
}

export function modeSpeed(mode: CodecMode, marginPct: number, r: EncoderSpeedResult | null): ModeSpeed {
  const neededFps = round1(mode.fps * (1 + marginPct / 100));
  const measuredFps = r?.measuredFps ?? null;
  return {
    mode: modeName(mode),
    width: mode.width,
    height: mode.height,
    fps: mode.fps,
    neededFps,
    measuredFps,
    encodeP50Ms: r && r.frames ? r.encodeP50Ms : null,
    sustains: r?.hardware === true || (measuredFps !== null && !r?.error && measuredFps >= neededFps),
    error: r?.error ?? null,
  };
}

/**
 * The verdict of one codec from its setting and measurements (one per configured mode, in
 * settings.modes order; empty when nothing was measured).
 */
export function codecVerdict(codec: CodecName, settings: GameStreamCodecSettings, results: EncoderSpeedResult[]): CodecVerdict {
  const setting: CodecSetting = settings[codec];
  const key = `gamestreamCodecs.${codec}`;
  const base = { codec, setting, encoder: null as string | null, hardware: false, modes: [] as ModeSpeed[] };
  if (setting === "off") return { ...base, state: "skipped", advertised: false, reason: `off in config (${key})` };
  if (setting === "on") return { ...base, state: "skipped", advertised: true, reason: `forced on in config (${key}); not measured` };
  const opened = results.find((r) => r.encoder !== null) ?? null;
  const encoder = opened?.encoder ?? null;
  const hardware = opened?.hardware ?? false;
  const modes = hardware ? [] : settings.modes.map((m, i) => modeSpeed(m, settings.marginPct, results[i] ?? null));
  const v = { ...base, state: "done" as const, encoder, hardware, modes };
  if (!encoder) return { ...v, advertised: false, reason: `no ${codec} encoder opens: ${results[0]?.reason ?? "not probed"}` };
  if (hardware) return { ...v, advertised: true, reason: `hardware encoder ${encoder} opens` };
  const big = largestMode(settings.modes);
  const s = modes[settings.modes.indexOf(big)]!;
  const got = s.measuredFps === null ? `nothing timed${s.error ? ` (${s.error})` : ""}` : `${s.measuredFps} fps measured`;
  if (s.sustains) return { ...v, advertised: true, reason: `${encoder} sustains ${s.mode}: ${got}, ${s.neededFps} needed` };
  if (codec === "h264")
    return { ...v, advertised: true, reason: `${encoder} is too slow for ${s.mode} (${got}, ${s.neededFps} needed); offered anyway: every client needs H.264` };
  return { ...v, advertised: false, reason: `${encoder} is too slow for ${s.mode}: ${got}, ${s.neededFps} needed` };
}

/** Bits of the verdicts; codecs still pending count as H.264 only (and whatever is forced on). */
export function supportBits(verdicts: CodecVerdict[]): number {
  let bits = 0;
  for (const v of verdicts) {
    const offered = v.state === "pending" || v.state === "measuring" ? v.codec === "h264" : v.advertised;
    if (offered) bits |= BIT[v.codec];
  }
  return bits;
}

export type SpeedMeter = Pick<CaptureService, "measureSpeed">;

/** The host's codec offer: H.264 until measured, then what the measurements allow. */
export class CodecSupport {
  private readonly verdicts = new Map<CodecName, CodecVerdict>();
  private running: Promise<CodecSupportReport> | null = null;
  private closed = false;

  constructor(
    private readonly meter: SpeedMeter,
    private readonly settings: GameStreamCodecSettings,
    private readonly log: Logger,
    private readonly limits: { maxFrames?: number; maxMs?: number; threads?: number } = {},
  ) {
    for (const codec of CODECS) {
      const v = codecVerdict(codec, settings, []);
      this.verdicts.set(codec, settings[codec] === "auto" ? { ...v, state: "pending", advertised: codec === "h264", reason: "not measured yet" } : v);
    }
  }

  /** ServerCodecModeSupport now. */
  bits(): number {
    return supportBits([...this.verdicts.values()]);
  }

  report(): CodecSupportReport {
    const codecs = [...this.verdicts.values()];
    return { bits: supportBits(codecs), measured: codecs.every((v) => v.state === "done" || v.state === "skipped"), marginPct: this.settings.marginPct, codecs };
  }

  /** Measures every codec on auto at every mode, once (later calls share the first run). */
  measure(): Promise<CodecSupportReport> {
    this.running ??= this.run();
    return this.running;
  }

  private async run(): Promise<CodecSupportReport> {
    for (const codec of CODECS) {
      if (this.settings[codec] !== "auto" || this.closed) continue;
      this.verdicts.set(codec, { ...this.verdicts.get(codec)!, state: "measuring" });
      const results: EncoderSpeedResult[] = [];
      for (const mode of this.settings.modes) {
        if (this.closed) break;
        let r: EncoderSpeedResult;
        try {
          r = await this.meter.measureSpeed(codec, mode, { ...this.limits, cancelled: () => this.closed });
        } catch (err) {
          if (this.closed) break;
          const error = (err as Error).message;
          r = { codec, encoder: null, hardware: false, reason: error, width: mode.width, height: mode.height, fps: mode.fps, frames: 0, measuredFps: null, encodeP50Ms: 0, encodeMaxMs: 0, error };
        }
        results.push(r);
        if (!r.encoder || r.hardware) break; // nothing to time: no encoder, or hardware
      }
      if (this.closed) {
        this.verdicts.set(codec, { ...this.verdicts.get(codec)!, state: "pending" });
        break;
      }
      const v = codecVerdict(codec, this.settings, results);
      this.verdicts.set(codec, v);
      this.log.info("codec verdict", {
        codec,
        advertised: v.advertised,
        encoder: v.encoder,
        reason: v.reason,
        modes: v.modes.map((m) => `${m.mode}: ${m.measuredFps ?? "-"} fps (${m.sustains ? "sustains" : "too slow"}, ${m.neededFps} needed)`),
      });
    }
    const report = this.report();
    if (!this.closed) this.log.info("codecs offered", { serverCodecModeSupport: report.bits, codecs: report.codecs.filter((v) => v.advertised).map((v) => v.codec) });
    return report;
  }

  /** Stops a measurement in progress (its native thread ends after the current frame). */
  async close(): Promise<void> {
    this.closed = true;
    await this.running?.catch(() => undefined);
  }
}
