/**
 * wlroots compositors (sway) as a host-output backend: per session `create_output` over sway's
 * IPC gives a new HEADLESS-N output, `output HEADLESS-N mode --custom WxH@HzHz` sets the
 * client's mode, and a private xdg-desktop-portal-wlr — on its own dbus-daemon, configured to
 * pick exactly that output without asking (chooser_type=none, output_name) — gives its
 * PipeWire node through the portal backend interface (org.freedesktop.impl.portal.ScreenCast).
 * close(): the portal session is closed, the portal and its bus end, the output is unplugged.
 *
 * A private portal keeps the user's own portal (and its dialogs) out of it, and lets each
 * session name its output. It runs with the caller's identity against the user's Wayland and
 * PipeWire sockets.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import type { Subprocess } from "bun";
import { PortalScreenCast, type HostOutputNative } from "../../ffi/hostout.ts";
import type { Availability, HostOutputBackend, HostSessionEnv, OutputMode, VirtualOutput } from "./host-output-contract.ts";
import { CaptureError } from "./source.ts";

export const PORTAL_WLR_NAME = "org.freedesktop.impl.portal.desktop.wlr";
/** Where distributions put xdg-desktop-portal-wlr (Debian, Arch). */
const PORTAL_WLR_BINS = ["/usr/libexec/xdg-desktop-portal-wlr", "/usr/lib/xdg-desktop-portal-wlr"];

export interface SwayOutput {
  name: string;
  width: number;
  height: number;
  /** mHz, as sway reports it. */
  refresh: number;
  /** Enabled (a disabled output stays listed). */
  active: boolean;
}

/** sway's IPC through swaymsg (bounded); a failed command throws with sway's own error. */
export class SwayIpc {
  constructor(
    readonly socket: string,
    private readonly swaymsg = "swaymsg",
    private readonly timeoutMs = 3000,
  ) {}

  private raw(args: string[]): unknown {
    const r = Bun.spawnSync([this.swaymsg, "-s", this.socket, "-r", ...args], { stdout: "pipe", stderr: "pipe", timeout: this.timeoutMs });
    const out = r.stdout.toString();
    if (r.exitCode !== 0 && !out.trim()) throw new Error(`swaymsg ${args.join(" ")}: ${r.stderr.toString().trim() || `exit ${r.exitCode ?? "killed"}`}`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(out);
    } catch {
      throw new Error(`swaymsg ${args.join(" ")}: unreadable reply ${JSON.stringify(out.slice(0, 200))}`);
    }
    return parsed;
  }

  /** Runs one command; sway's error message when it fails. */
  command(...words: string[]): void {
    const r = this.raw(["--", ...words]) as { success: boolean; error?: string }[];
    const bad = Array.isArray(r) ? r.find((x) => !x.success) : { success: false, error: "not a command reply" };
    if (bad) throw new Error(`sway: ${words.join(" ")}: ${bad.error ?? "failed"}`);
  }

  outputs(): SwayOutput[] {
    const r = this.raw(["-t", "get_outputs"]) as { name: string; active?: boolean; current_mode?: { width: number; height: number; refresh: number } }[];
    return r.map((o) => ({
      name: o.name,
      width: o.current_mode?.width ?? 0,
      height: o.current_mode?.height ?? 0,
      refresh: o.current_mode?.refresh ?? 0,
      active: o.active !== false,
    }));
  }

  version(): string {
    const r = this.raw(["-t", "get_version"]) as { human_readable?: string };
    return r.human_readable ?? "unknown";
  }
}

function waitFor(what: string, fn: () => boolean, ms: number): void {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() >= end) throw new Error(`${what} not ready within ${ms} ms`);
    Bun.sleepSync(20);
  }
}

/** SIGTERM now, SIGKILL in 2 s if still running (not waited for: the caller's teardown is synchronous). */
function end(p: Subprocess | null): void {
  if (!p || p.exitCode !== null || p.killed) return;
  p.kill("SIGTERM");
  const t = setTimeout(() => {
    if (p.exitCode === null) p.kill("SIGKILL");
  }, 2000);
  t.unref();
}

/** The line of the portal's log that says why it refused (its own words), or "". */
function portalWhy(log: string): string {
  const text = existsSync(log) ? readFileSync(log, "utf8") : "";
  const lines = text.split("\n").filter((l) => /\[(ERROR|WARN|INFO)\] - (wlroots|xdpw|pipewire)/.test(l) && /unable|fail|error|invalid|no /i.test(l));
  return lines.at(-1)?.replace(/^.*?\] - /, "") ?? "";
}

/** wlroots (sway): a HEADLESS-N output per session, captured through a private xdg-desktop-portal-wlr. */
export class WlrootsBackend implements HostOutputBackend {
  readonly name = "wlroots" as const;
  constructor(
    private readonly native: HostOutputNative | null,
    private readonly env: HostSessionEnv,
  ) {}

  private get portalBin(): string {
    return this.env.portalWlrBinary ?? PORTAL_WLR_BINS.find((b) => existsSync(b)) ?? PORTAL_WLR_BINS[0]!;
  }

  probe(): Availability {
    const which = this.env.which ?? Bun.which;
    if (!this.native) return { available: false, reason: "the native library is not loaded" };
    const swaymsg = which("swaymsg");
    if (!swaymsg) return { available: false, reason: which("labwc") || which("cage") ? "a wlroots compositor without sway's IPC (only sway's create_output is supported)" : "sway (swaymsg) is not installed" };
    if (!this.env.swaySocket) return { available: false, reason: "no sway IPC socket is known (SWAYSOCK of the desktop session): sway is not the running compositor" };
    try {
      new SwayIpc(this.env.swaySocket, swaymsg).version();
    } catch (err) {
      return { available: false, reason: `sway's IPC at ${this.env.swaySocket} does not answer: ${(err as Error).message}` };
    }
    if (!this.env.waylandDisplay) return { available: false, reason: "the sway session's WAYLAND_DISPLAY is not known" };
    if (!existsSync(this.portalBin)) return { available: false, reason: `xdg-desktop-portal-wlr is not installed (${this.portalBin})` };
    if (!which("dbus-daemon")) return { available: false, reason: "dbus-daemon is not installed (the private portal's bus)" };
    if (!this.env.pipewireSocket || !existsSync(this.env.pipewireSocket))
      return { available: false, reason: `no PipeWire socket${this.env.pipewireSocket ? ` at ${this.env.pipewireSocket}` : ""}` };
    const dri = this.env.driDir ?? "/dev/dri";
    const nodes = existsSync(dri) ? readdirSync(dri).filter((n) => n.startsWith("renderD")) : [];
    if (nodes.length === 0)
      return {
        available: false,
        reason: `no DRM render node in ${dri}: wlroots then renders with pixman, whose screencopy offers shm buffers only, and xdg-desktop-portal-wlr 0.7 (screencopy v3) refuses an output without a dmabuf format ("unable to receive a valid format from wlr_screencopy")`,
      };
    return { available: true };
  }

  create(mode: OutputMode, timeoutMs: number): VirtualOutput {
    const { swaySocket, waylandDisplay, pipewireSocket } = this.env;
    if (!this.native || !swaySocket || !waylandDisplay || !pipewireSocket)
      throw new CaptureError("HOST_OUTPUT_UNAVAILABLE", "wlroots backend: no sway session (IPC socket, Wayland display, PipeWire socket)", { status: 503 });
    const ipc = new SwayIpc(swaySocket, (this.env.which ?? Bun.which)("swaymsg") ?? "swaymsg");
    let output: SwayHeadlessOutput | null = null;
    let portal: PrivatePortal | null = null;
    const teardown = () => {
      portal?.close();
      portal = null;
      output?.close();
      output = null;
    };
    try {
      output = createSwayOutput(ipc, mode);
      portal = PrivatePortal.start(this.native, { binary: this.portalBin, output: output.name, fps: mode.fps, waylandDisplay, pipewireSocket, parentDir: this.env.runtimeDir ?? tmpdir() }, timeoutMs);
      const nodeId = portal.startScreenCast(timeoutMs);
      return { nodeId, input: null, outputName: output.name, close: teardown };
    } catch (err) {
      teardown();
      throw new CaptureError("HOST_OUTPUT_FAILED", `wlroots: ${(err as Error).message}`, { status: 502, cause: err });
    }
  }
}

/** What closing a sway output did: removed it (sway 1.8+), disabled it (sway 1.7), or could do neither. */
export type SwayOutputEnd = { result: "unplugged" | "disabled" } | { result: "left"; reason: string };

export interface SwayHeadlessOutput {
  readonly name: string;
  /** Removes the output (idempotent; a sway that went away took it along). */
  close(): SwayOutputEnd;
}

/**
 * A HEADLESS-N output at exactly the mode (checked back through get_outputs). sway 1.8+
 * removes it on close (`output X unplug`); sway 1.7 has no unplug, so there it is disabled and
 * the next session enables it again instead of creating another. Where sway cannot commit the
 * disabled state either (seen with wlroots 0.15's headless backend on the pixman renderer),
 * the output is left as it is and close() says so.
 */
export function createSwayOutput(ipc: SwayIpc, mode: OutputMode): SwayHeadlessOutput {
  const listed = ipc.outputs();
  let name = listed.find((o) => !o.active && /^HEADLESS-\d+$/.test(o.name))?.name;
  if (name) ipc.command("output", name, "enable");
  else {
    const before = new Set(listed.map((o) => o.name));
    ipc.command("create_output");
    name = ipc.outputs().find((o) => !before.has(o.name))?.name;
    if (!name) throw new Error("create_output made no new output");
  }
  const own = name;
  let ended: SwayOutputEnd | null = null;
  const state = () => {
    try {
      return ipc.outputs().find((o) => o.name === own) ?? null;
    } catch {
      return null; // sway went away: so did its output
    }
  };
  const out: SwayHeadlessOutput = {
    name: own,
    close() {
      if (ended) return ended;
      try {
        ipc.command("output", own, "unplug");
      } catch (err) {
        if (!/Invalid output subcommand/.test((err as Error).message)) return (ended = state() ? { result: "left", reason: (err as Error).message } : { result: "unplugged" });
        try {
          ipc.command("output", own, "disable");
        } catch {
          /* judged below */
        }
      }
      const now = state();
      ended = !now
        ? { result: "unplugged" }
        : !now.active
          ? { result: "disabled" }
          : { result: "left", reason: `sway has no \`output unplug\` (before 1.8) and did not commit ${own} disabled (see sway's log: "Failed to commit output")` };
      return ended;
    },
  };
  try {
    ipc.command("output", own, "mode", "--custom", `${mode.width}x${mode.height}@${mode.fps}Hz`);
    const now = ipc.outputs().find((o) => o.name === own);
    if (!now?.active || now.width !== mode.width || now.height !== mode.height || Math.round(now.refresh / 1000) !== mode.fps)
      throw new Error(`${own} is ${now ? `${now.width}x${now.height}@${now.refresh / 1000}${now.active ? "" : " (disabled)"}` : "gone"}, asked for ${mode.width}x${mode.height}@${mode.fps}`);
  } catch (err) {
    out.close();
    throw err;
  }
  return out;
}

/** xdg-desktop-portal-wlr on its own dbus-daemon, configured for one output; ended by PID. */
export class PrivatePortal {
  private constructor(
    private readonly dir: string,
    private bus: Subprocess | null,
    private portal: Subprocess | null,
    private sc: PortalScreenCast | null,
    readonly log: string,
  ) {}

  static start(
    native: HostOutputNative,
    o: { binary: string; output: string; fps: number; waylandDisplay: string; pipewireSocket: string; parentDir: string },
    timeoutMs: number,
  ): PrivatePortal {
    const dir = mkdtempSync(join(o.parentDir, "neuron-xdpw-"));
    const busPath = join(dir, "bus");
    const log = join(dir, "portal.log");
    const base = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir, XDG_RUNTIME_DIR: dir };
    const p = new PrivatePortal(dir, null, null, null, log);
    try {
      const bus = Bun.spawn(["dbus-daemon", "--session", "--nofork", "--nopidfile", `--address=unix:path=${busPath}`], { env: base, stdout: "ignore", stderr: "ignore" });
      p.bus = bus;
      waitFor("the portal's dbus-daemon", () => existsSync(busPath) || bus.exitCode !== null, timeoutMs);
      if (bus.exitCode !== null) throw new Error(`dbus-daemon exited (${bus.exitCode})`);
      const address = `unix:path=${busPath}`;
      const config = join(dir, "config");
      writeFileSync(config, `[screencast]\noutput_name=${o.output}\nmax_fps=${o.fps}\nchooser_type=none\n`);
      const portal = Bun.spawn([o.binary, "-c", config, "-l", "INFO"], {
        env: { ...base, DBUS_SESSION_BUS_ADDRESS: address, WAYLAND_DISPLAY: o.waylandDisplay, PIPEWIRE_RUNTIME_DIR: dirname(o.pipewireSocket), PIPEWIRE_REMOTE: basename(o.pipewireSocket) },
        stdout: Bun.file(log),
        stderr: Bun.file(log),
      });
      p.portal = portal;
      const sc = PortalScreenCast.open(native, address, PORTAL_WLR_NAME);
      p.sc = sc;
      waitFor("xdg-desktop-portal-wlr", () => sc.available() || portal.exitCode !== null, timeoutMs);
      if (portal.exitCode !== null) throw new Error(`xdg-desktop-portal-wlr exited (${portal.exitCode})${portalWhy(log) ? `: ${portalWhy(log)}` : ""}`);
      return p;
    } catch (err) {
      p.close();
      throw err;
    }
  }

  /** The portal's ScreenCast session on its output: the PipeWire node id. */
  startScreenCast(timeoutMs: number): number {
    if (!this.sc) throw new Error("the portal is closed");
    try {
      return this.sc.start("embedded", timeoutMs);
    } catch (err) {
      const why = portalWhy(this.log);
      throw new Error(`${(err as Error).message}${why ? ` (xdg-desktop-portal-wlr: ${why})` : ""}`);
    }
  }

  close(): void {
    this.sc?.close();
    this.sc = null;
    end(this.portal);
    this.portal = null;
    end(this.bus);
    this.bus = null;
    rmSync(this.dir, { recursive: true, force: true });
  }
}
