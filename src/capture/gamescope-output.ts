/**
 * gamescope as a host-output backend: per session a gamescope of its own at exactly W×H@Hz
 * (-W/-H/-r for its output, -w/-h for the nested app), whose composited output is its
 * PipeWire node (node.name "gamescope"), found in the session's PipeWire graph (pw-dump).
 * gamescope 3.12+ runs `--headless`; 3.11 has no headless backend, so there it runs only when
 * nested mode is opted into (gamescopeNested: a window in the session's Wayland display, e.g.
 * a headless sway kept for streaming) — never embedded: that takes the DRM master and the console.
 * close() ends that gamescope, and its node with it.
 *
 * gamescope composites with Vulkan and needs a device with DRM format modifiers and
 * VK_EXT_physical_device_drm; the probe runs it once (bounded, cached per backend) and reports
 * its own words when it cannot start.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import type { Subprocess } from "bun";
import type { Availability, HostOutputBackend, HostSessionEnv, OutputMode, VirtualOutput } from "./host-output-contract.ts";
import { CaptureError } from "./source.ts";

const GAMESCOPE_BINS = ["/usr/bin/gamescope", "/usr/games/gamescope"];

/** The lines of gamescope's output that say why it did not start (vulkan:, Failed ..., error). */
export function gamescopeFailure(text: string): string {
  const lines = text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => /^vulkan:|^Failed|failed to|error/i.test(l) && !/libseat|seatd/.test(l));
  return lines.join("; ");
}

export class GamescopeBackend implements HostOutputBackend {
  readonly name = "gamescope" as const;
  private probed: Availability | null = null;
  private helpText: string | null = null;

  constructor(
    private readonly env: HostSessionEnv,
    /** The app gamescope runs (it composites one app's windows; the session's own launcher or shell). */
    private readonly app: string[] = ["sleep", "infinity"],
  ) {}

  private bin(): string | null {
    // /usr/games is off a service's PATH (Debian puts gamescope there); an injected `which` decides alone
    if (this.env.which) return this.env.which("gamescope");
    return Bun.which("gamescope") ?? GAMESCOPE_BINS.find((b) => existsSync(b)) ?? null;
  }

  /** gamescope's --help (it exits non-zero, text on stderr). */
  private help(bin: string): string {
    if (this.helpText === null) {
      const r = Bun.spawnSync([bin, "--help"], { stdout: "pipe", stderr: "pipe", timeout: 3000 });
      this.helpText = r.stdout.toString() + r.stderr.toString();
    }
    return this.helpText;
  }

  private headless(bin: string): boolean {
    return /--headless\b/.test(this.help(bin));
  }

  /** How gamescope is started for the mode: argv and environment; null with the reason where it cannot be. */
  private launch(mode: OutputMode, app: string[]): { argv: string[]; env: Record<string, string> } | { reason: string } {
    const bin = this.bin();
    if (!bin) return { reason: "gamescope is not installed" };
    if (!this.env.pipewireSocket || !existsSync(this.env.pipewireSocket))
      return { reason: `no PipeWire socket${this.env.pipewireSocket ? ` at ${this.env.pipewireSocket}` : ""} (gamescope's output is a PipeWire node)` };
    const size = ["-W", `${mode.width}`, "-H", `${mode.height}`, "-r", `${mode.fps}`, "-w", `${mode.width}`, "-h", `${mode.height}`];
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: process.env.HOME ?? "/",
      XDG_RUNTIME_DIR: dirname(this.env.pipewireSocket),
      PIPEWIRE_RUNTIME_DIR: dirname(this.env.pipewireSocket),
      PIPEWIRE_REMOTE: basename(this.env.pipewireSocket),
    };
    if (this.headless(bin)) return { argv: [bin, "--headless", ...size, "--", ...app], env };
    if (!this.env.gamescopeNested)
      return {
        reason:
          "this gamescope has no --headless (added in 3.12): it runs nested, as a window in the session, or embedded, taking the DRM master; neither is a per-session virtual output (nested is opt-in: gamescopeNested)",
      };
    if (!this.env.waylandDisplay) return { reason: "gamescope runs nested (no --headless) and no Wayland display of the session is known" };
    return { argv: [bin, ...size, "--", ...app], env: { ...env, WAYLAND_DISPLAY: this.env.waylandDisplay, SDL_VIDEODRIVER: "wayland" } };
  }

  probe(): Availability {
    if (this.probed) return this.probed;
    const l = this.launch({ width: 64, height: 64, fps: 30 }, ["true"]);
    if ("reason" in l) return (this.probed = { available: false, reason: l.reason });
    // one bounded run: gamescope says itself whether its Vulkan device will do
    const r = Bun.spawnSync(l.argv, { env: l.env, stdout: "pipe", stderr: "pipe", timeout: 5000 });
    const out = r.stdout.toString() + r.stderr.toString();
    const why = gamescopeFailure(out);
    if (r.exitCode !== 0 && why) return (this.probed = { available: false, reason: `gamescope cannot start: ${why}` });
    if (r.exitCode !== 0) return (this.probed = { available: false, reason: `gamescope exited ${r.exitCode ?? "(killed after 5 s)"} on a trial run` });
    return (this.probed = { available: true });
  }

  create(mode: OutputMode, timeoutMs: number): VirtualOutput {
    const l = this.launch(mode, this.app);
    if ("reason" in l) throw new CaptureError("HOST_OUTPUT_UNAVAILABLE", `gamescope: ${l.reason}`, { status: 503 });
    const before = new Set(gamescopeNodes(l.env, timeoutMs));
    const dir = mkdtempSync(join(this.env.runtimeDir ?? tmpdir(), "neuron-gamescope-"));
    const log = join(dir, "gamescope.log");
    const p: Subprocess = Bun.spawn(l.argv, { env: l.env, stdin: "ignore", stdout: Bun.file(log), stderr: Bun.file(log) });
    let closed = false;
    const stop = () => {
      if (closed) return;
      closed = true;
      if (p.exitCode === null && alive(p.pid)) {
        p.kill("SIGTERM");
        setTimeout(() => p.exitCode === null && p.kill("SIGKILL"), 2000).unref();
      }
      rmSync(dir, { recursive: true, force: true });
    };
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      const node = gamescopeNodes(l.env, Math.max(1, end - Date.now())).find((id) => !before.has(id));
      if (node !== undefined) return { nodeId: node, input: null, close: stop };
      // the exit is seen through /proc: the event loop (exitCode) does not run while this waits
      if (!alive(p.pid)) break;
      Bun.sleepSync(50);
    }
    const why = gamescopeFailure(existsSync(log) ? readFileSync(log, "utf8") : "");
    stop();
    throw new CaptureError("HOST_OUTPUT_FAILED", `gamescope: no PipeWire node within ${timeoutMs} ms${why ? `: ${why}` : ""}`, { status: 502 });
  }
}

function alive(pid: number): boolean {
  try {
    // a reaped or zombie child: /proc/<pid>/stat says Z
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    return false;
  }
}

/** Ids of the PipeWire nodes named "gamescope" (pw-dump, bounded). */
export function gamescopeNodes(env: Record<string, string>, timeoutMs: number): number[] {
  const r = Bun.spawnSync(["pw-dump"], { env, stdout: "pipe", stderr: "ignore", timeout: Math.min(timeoutMs, 3000) });
  if (r.exitCode !== 0) return [];
  try {
    const objs = JSON.parse(r.stdout.toString()) as { id: number; type: string; info?: { props?: Record<string, unknown> } }[];
    return objs.filter((o) => o.type === "PipeWire:Interface:Node" && o.info?.props?.["node.name"] === "gamescope").map((o) => o.id);
  } catch {
    return [];
  }
}
