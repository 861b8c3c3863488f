/**
 * The guest's OS integration: every operation runs a configured argv with a
 * deadline and a bounded output. One class for Linux and Windows; the OS
 * differences live in the default commands (config.ts).
 */
import { hostname, release, arch, platform } from "node:os";
import { existsSync, readFileSync } from "node:fs";
import {
  MAX_CLIPBOARD_TEXT,
  MAX_PNG_BASE64,
  type ClipboardContent,
  type Display,
  type GuestInfo,
  type SetResolution,
} from "../guest/model.ts";
import type { AgentCommands, AgentConfig } from "./config.ts";

export const AGENT_VERSION = "0.1.0";

/** An error reported to the host as { code, message }. */
export class GuestCommandError extends Error {
  constructor(
    readonly errorCode: string,
    message: string,
  ) {
    super(message);
    this.name = "GuestCommandError";
  }
}

export interface RunOutput {
  stdout: Uint8Array;
  stderr: string;
}

const MAX_OUTPUT = 4 * 1024 * 1024;

async function readBounded(stream: ReadableStream<Uint8Array>, limit: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += chunk.length;
    if (size > limit) throw new GuestCommandError("OUTPUT_TOO_LARGE", `command output exceeds ${limit} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

export async function runArgv(argv: string[], opts: { input?: Uint8Array | string; timeoutMs: number; limit?: number }): Promise<RunOutput> {
  let proc: Bun.Subprocess<"pipe" | "ignore", "pipe", "pipe">;
  try {
    proc = Bun.spawn(argv, { stdin: opts.input === undefined ? "ignore" : "pipe", stdout: "pipe", stderr: "pipe" });
  } catch (err) {
    throw new GuestCommandError("COMMAND_UNAVAILABLE", `cannot run ${argv[0]}: ${(err as Error).message}`);
  }
  const timer = setTimeout(() => proc.kill("SIGKILL"), opts.timeoutMs);
  try {
    if (opts.input !== undefined && proc.stdin && typeof proc.stdin !== "number") {
      proc.stdin.write(opts.input);
      await proc.stdin.end();
    }
    const [stdout, stderrBytes, code] = await Promise.all([
      readBounded(proc.stdout, opts.limit ?? MAX_OUTPUT),
      readBounded(proc.stderr, 64 * 1024),
      proc.exited,
    ]);
    const stderr = new TextDecoder().decode(stderrBytes).trim();
    if (proc.signalCode === "SIGKILL") throw new GuestCommandError("COMMAND_TIMEOUT", `${argv[0]} ran past ${opts.timeoutMs} ms`);
    if (code !== 0)
      throw new GuestCommandError("COMMAND_FAILED", `${argv[0]} exited with ${code}${stderr ? `: ${stderr.split("\n")[0]}` : ""}`);
    return { stdout, stderr };
  } catch (err) {
    proc.kill("SIGKILL");
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

function substitute(argv: string[], values: Record<string, string>): string[] {
  return argv.map((a) => a.replace(/\{(width|height|display)\}/g, (_m, k: string) => values[k] ?? ""));
}

/** Parses "NAME WIDTHxHEIGHT [primary]" lines; ignores lines that do not match. */
export function parseDisplays(text: string): Display[] {
  const out: Display[] = [];
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s*(\S+)\s+(\d{1,5})x(\d{1,5})(\s+primary)?\s*$/.exec(line);
    if (!m || out.length >= 16) continue;
    const width = Number(m[2]);
    const height = Number(m[3]);
    if (width < 1 || height < 1 || width > 16384 || height > 16384) continue;
    out.push({ name: m[1]!.slice(0, 256), width, height, primary: !!m[4] });
  }
  if (out.length && !out.some((d) => d.primary)) out[0]!.primary = true;
  return out;
}

function osRelease(): { name: string; version: string } {
  if (platform() === "win32") return { name: "Windows", version: release() };
  for (const f of ["/etc/os-release", "/usr/lib/os-release"]) {
    if (!existsSync(f)) continue;
    const kv = Object.fromEntries(
      readFileSync(f, "utf8")
        .split("\n")
        .map((l) => /^([A-Z_]+)=("?)(.*)\2$/.exec(l))
        .filter((m): m is RegExpExecArray => m !== null)
        .map((m) => [m[1]!, m[3]!]),
    );
    return { name: (kv.NAME ?? "Linux").slice(0, 256), version: (kv.VERSION_ID ?? kv.VERSION ?? "").slice(0, 256) };
  }
  return { name: "Linux", version: "" };
}

export class OsBackend {
  private readonly cmd: AgentCommands;
  private readonly timeoutMs: number;

  constructor(config: Pick<AgentConfig, "commands" | "commandTimeoutMs">) {
    this.cmd = config.commands;
    this.timeoutMs = config.commandTimeoutMs;
  }

  private need(name: keyof AgentCommands): string[] {
    const argv = this.cmd[name];
    if (!argv) throw new GuestCommandError("NOT_SUPPORTED", `${name} is not configured on this guest`);
    return argv;
  }

  async displays(): Promise<Display[]> {
    if (!this.cmd.displays) return [];
    const { stdout } = await runArgv(this.cmd.displays, { timeoutMs: this.timeoutMs, limit: 64 * 1024 });
    return parseDisplays(new TextDecoder().decode(stdout));
  }

  async info(): Promise<GuestInfo> {
    const p = platform();
    const os = osRelease();
    let displays: Display[] = [];
    try {
      displays = await this.displays();
    } catch {
      displays = [];
    }
    return {
      protocol: 1,
      agent_version: AGENT_VERSION,
      hostname: hostname().slice(0, 256),
      os: { family: p === "linux" ? "linux" : p === "win32" ? "windows" : "other", name: os.name, version: os.version, kernel: release(), arch: arch() },
      displays,
    };
  }

  async setResolution(req: SetResolution): Promise<{ display: string; width: number; height: number }> {
    const argv = this.need("setResolution");
    const current = await this.displays().catch(() => [] as Display[]);
    const display = req.display ?? current.find((d) => d.primary)?.name ?? "";
    // Substituted into OS commands (PowerShell script text on Windows): only plain names pass.
    if (display && !/^[A-Za-z0-9_.:\\-]{1,256}$/.test(display))
      throw new GuestCommandError("INVALID_ARGUMENT", `display name ${JSON.stringify(display.slice(0, 64))} has unsupported characters`);
    if (req.display && current.length && !current.some((d) => d.name === req.display))
      throw new GuestCommandError("NO_SUCH_DISPLAY", `display ${JSON.stringify(req.display)} not found`);
    await runArgv(substitute(argv, { width: String(req.width), height: String(req.height), display }), { timeoutMs: this.timeoutMs });
    return { display, width: req.width, height: req.height };
  }

  async clipboardGet(): Promise<ClipboardContent> {
    if (this.cmd.clipboardGetText) {
      const { stdout } = await runArgv(this.cmd.clipboardGetText, { timeoutMs: this.timeoutMs, limit: MAX_CLIPBOARD_TEXT * 4 });
      let text: string;
      try {
        text = new TextDecoder("utf-8", { fatal: true }).decode(stdout);
      } catch {
        text = "";
      }
      if (text.length > MAX_CLIPBOARD_TEXT) throw new GuestCommandError("CLIPBOARD_TOO_LARGE", "clipboard text exceeds the limit");
      if (text.length > 0) return { mime: "text/plain", text };
    }
    if (this.cmd.clipboardGetImage) {
      try {
        const { stdout } = await runArgv(this.cmd.clipboardGetImage, { timeoutMs: this.timeoutMs, limit: (MAX_PNG_BASE64 / 4) * 3 });
        if (isPng(stdout)) return { mime: "image/png", data: Buffer.from(stdout).toString("base64") };
      } catch {
        // no image in the clipboard
      }
    }
    return { mime: "empty" };
  }

  async clipboardSet(content: ClipboardContent): Promise<void> {
    if (content.mime === "text/plain") await runArgv(this.need("clipboardSetText"), { input: content.text, timeoutMs: this.timeoutMs });
    else if (content.mime === "image/png") {
      const bytes = Buffer.from(content.data, "base64");
      if (!isPng(bytes)) throw new GuestCommandError("INVALID_PNG", "data is not a PNG image");
      await runArgv(this.need("clipboardSetImage"), { input: bytes, timeoutMs: this.timeoutMs });
    } else await runArgv(this.need("clipboardSetText"), { input: "", timeoutMs: this.timeoutMs });
  }

  async screenshot(): Promise<{ mime: "image/png"; data: string }> {
    const { stdout } = await runArgv(this.need("screenshot"), { timeoutMs: this.timeoutMs, limit: (MAX_PNG_BASE64 / 4) * 3 });
    if (!isPng(stdout)) throw new GuestCommandError("INVALID_PNG", "screenshot command did not write a PNG");
    return { mime: "image/png", data: Buffer.from(stdout).toString("base64") };
  }

  /** Starts the shutdown without waiting for it (the reply must go out first). */
  shutdown(mode: "poweroff" | "reboot"): void {
    const argv = this.need(mode);
    setTimeout(() => {
      try {
        Bun.spawn(argv, { stdin: "ignore", stdout: "ignore", stderr: "ignore" });
      } catch {
        // nothing left to report to
      }
    }, 200);
  }
}

const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
export const isPng = (b: Uint8Array) => b.length >= 8 && PNG_MAGIC.every((v, i) => b[i] === v);
