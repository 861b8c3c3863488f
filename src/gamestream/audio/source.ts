/**
 * Where a session's PCM comes from: the monitor of the VM's sound output through
 * a capture command (`parec`/`pw-record`, or any program writing 48 kHz s16le
 * interleaved PCM in the client's channel order to stdout), or a generated test
 * tone when none is configured or available. The stream pulls one packet's worth
 * of samples per tick; a command that falls behind yields silence (counted), one
 * that runs ahead is bounded (oldest audio dropped).
 */
import { existsSync } from "node:fs";
import type { Logger } from "../../log.ts";
import { CHANNEL_NAMES } from "./params.ts";

export interface PcmSource {
  readonly kind: "tone" | "command";
  /** Human-readable: the tone's frequencies or the command line. */
  readonly detail: string;
  /** Fills `frame` (frameSamples * channels interleaved s16). */
  read(frame: Int16Array): void;
  readonly underruns: number;
  close(): void;
}

/** Test tone: channel c plays a sine of TONE_BASE_HZ + c * TONE_STEP_HZ at amplitude TONE_AMPLITUDE. */
export const TONE_BASE_HZ = 440;
export const TONE_STEP_HZ = 220;
export const TONE_AMPLITUDE = 8000;

export function toneFrequency(channel: number): number {
  return TONE_BASE_HZ + channel * TONE_STEP_HZ;
}

export class ToneSource implements PcmSource {
  readonly kind = "tone" as const;
  readonly detail: string;
  readonly underruns = 0;
  private n = 0;
  private readonly step: number[];

  constructor(private readonly channels: number) {
    this.step = Array.from({ length: channels }, (_, c) => (2 * Math.PI * toneFrequency(c)) / 48000);
    this.detail = `test tone ${this.step.map((_, c) => `${CHANNEL_NAMES[c]} ${toneFrequency(c)} Hz`).join(", ")}`;
  }

  read(frame: Int16Array): void {
    const ch = this.channels;
    const samples = frame.length / ch;
    for (let s = 0; s < samples; s++) {
      const t = this.n + s;
      for (let c = 0; c < ch; c++) frame[s * ch + c] = Math.round(TONE_AMPLITUDE * Math.sin(this.step[c]! * t));
    }
    this.n = (this.n + samples) % (48000 * 100);
  }

  close(): void {}
}

/** Upper bound of buffered PCM from a capture command: 200 ms. */
const MAX_BUFFER_MS = 200;

export class CommandSource implements PcmSource {
  readonly kind = "command" as const;
  readonly detail: string;
  underruns = 0;
  dropped = 0;
  private readonly proc: Bun.Subprocess<"ignore", "pipe", "pipe">;
  private readonly buf: Uint8Array;
  private fill = 0;
  private exited = false;
  /** Last bytes the command wrote to stderr (drained so it never blocks; logged when it exits). */
  private stderrTail = "";

  constructor(argv: string[], channels: number, private readonly log: Logger) {
    this.detail = argv.join(" ");
    this.buf = new Uint8Array(((48000 * MAX_BUFFER_MS) / 1000) * channels * 2);
    this.proc = Bun.spawn(argv, { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
    void this.pump();
    const drained = this.drainStderr();
    void this.proc.exited.then(async (code) => {
      this.exited = true;
      await drained;
      log.warn("audio capture command exited", { command: this.detail, code, stderr: this.stderrTail.trim() });
    });
  }

  private async pump(): Promise<void> {
    try {
      for await (const chunk of this.proc.stdout) this.push(chunk);
    } catch (err) {
      this.log.warn("audio capture read failed", { error: (err as Error).message });
    }
  }

  private async drainStderr(): Promise<void> {
    const dec = new TextDecoder();
    try {
      for await (const chunk of this.proc.stderr) this.stderrTail = (this.stderrTail + dec.decode(chunk, { stream: true })).slice(-2048);
    } catch {
      /* the command is gone */
    }
  }

  private push(chunk: Uint8Array): void {
    if (chunk.length >= this.buf.length) {
      this.dropped += this.fill + chunk.length - this.buf.length;
      this.buf.set(chunk.subarray(chunk.length - this.buf.length));
      this.fill = this.buf.length;
      return;
    }
    const over = this.fill + chunk.length - this.buf.length;
    if (over > 0) {
      const drop = over + (over & 1 ? 1 : 0);
      this.buf.copyWithin(0, drop, this.fill);
      this.fill -= drop;
      this.dropped += drop;
    }
    this.buf.set(chunk, this.fill);
    this.fill += chunk.length;
  }

  read(frame: Int16Array): void {
    const need = frame.byteLength;
    if (this.fill < need) {
      frame.fill(0);
      this.underruns++;
      return;
    }
    new Uint8Array(frame.buffer, frame.byteOffset, need).set(this.buf.subarray(0, need));
    this.buf.copyWithin(0, need, this.fill);
    this.fill -= need;
  }

  get running(): boolean {
    return !this.exited;
  }

  close(): void {
    if (!this.exited) this.proc.kill();
  }
}

export interface AudioSourceSettings {
  /** Capture command (argv); `{channels}` is replaced by the channel count. Wins over pulseServer. */
  command?: string[];
  /** PulseAudio/PipeWire-pulse socket of the VM's audio: recorded with `parec` from its default monitor. */
  pulseServer?: string;
  /** parec binary (name on PATH or path). */
  parec?: string;
  /** The source to record (a VM's own sink monitor); default the server's default monitor. */
  device?: string;
}

const PULSE_CHANNEL_MAP: Record<number, string> = {
  2: "front-left,front-right",
  6: "front-left,front-right,front-center,lfe,rear-left,rear-right",
  8: "front-left,front-right,front-center,lfe,rear-left,rear-right,side-left,side-right",
};

/** The capture argv for the settings, or null with the reason the test tone is used instead. */
export function captureCommand(s: AudioSourceSettings, channels: number): { argv: string[] } | { argv: null; reason: string } {
  if (s.command && s.command.length > 0) return { argv: s.command.map((a) => a.replaceAll("{channels}", String(channels))) };
  if (!s.pulseServer) return { argv: null, reason: "no audio capture configured" };
  if (!existsSync(s.pulseServer)) return { argv: null, reason: `pulse socket ${s.pulseServer} not present` };
  const parec = s.parec ?? "parec";
  if (!parec.includes("/") && !Bun.which(parec)) return { argv: null, reason: `${parec} not found on PATH` };
  return {
    argv: [
      parec,
      `--server=unix:${s.pulseServer}`,
      `--device=${s.device && /^[A-Za-z0-9._-]{1,160}$/.test(s.device) ? s.device : "@DEFAULT_MONITOR@"}`,
      "--raw",
      "--format=s16le",
      "--rate=48000",
      `--channels=${channels}`,
      `--channel-map=${PULSE_CHANNEL_MAP[channels]}`,
      "--latency-msec=10",
    ],
  };
}

/** Opens the configured source, or the test tone (with the reason logged). */
export function openPcmSource(s: AudioSourceSettings, channels: number, log: Logger): PcmSource {
  const cmd = captureCommand(s, channels);
  if (cmd.argv) {
    try {
      return new CommandSource(cmd.argv, channels, log);
    } catch (err) {
      log.warn("audio capture command failed to start; using the test tone", { command: cmd.argv.join(" "), error: (err as Error).message });
      return new ToneSource(channels);
    }
  }
  log.info("audio source: test tone", { reason: cmd.reason });
  return new ToneSource(channels);
}
