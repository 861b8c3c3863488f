/**
 * A private sway session for tests: pipewire, wireplumber and sway with its headless backend
 * (WLR_BACKENDS=headless WLR_LIBINPUT_NO_DEVICES=1), in their own runtime dir, started by the
 * test and ended by PID. sway refuses to run as root, so under root it runs as nobody
 * (setpriv) in a runtime dir of its own; the appliance's side (portal, swaymsg) stays root.
 */
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { startBusAndPipewire, stopProc, until } from "./desktop-session.ts";

const ROOT = process.getuid?.() === 0;
const NEEDS = ["sway", "swaymsg", "pipewire", "wireplumber", "dbus-daemon", ...(ROOT ? ["setpriv"] : [])];
export const MISSING_SWAY = [...NEEDS.filter((b) => Bun.which(b) === null), ...(existsSync("/usr/libexec/xdg-desktop-portal-wlr") ? [] : ["xdg-desktop-portal-wlr"])];
export const HAVE_SWAY = MISSING_SWAY.length === 0;
/** A DRM render node: wlroots renders with GLES2 and its screencopy offers dmabuf (portal-wlr 0.7 needs that). */
export const RENDER_NODE = existsSync("/dev/dri") && readdirSync("/dev/dri").some((n) => n.startsWith("renderD"));

export interface SwaySession {
  runtimeDir: string;
  pipewireSocket: string;
  swaySocket: string;
  /** Absolute path of sway's Wayland socket. */
  waylandDisplay: string;
  stop(): Promise<void>;
}

export async function startSwaySession(opts: { log?: boolean } = {}): Promise<SwaySession> {
  const runtimeDir = mkdtempSync(join(tmpdir(), "neuron-sway-"));
  chmodSync(runtimeDir, 0o711);
  const procs: Subprocess[] = [];
  const io = opts.log ? "inherit" : "ignore";
  const stop = async () => {
    for (const p of procs.reverse()) await stopProc(p);
    rmSync(runtimeDir, { recursive: true, force: true });
  };
  try {
    const base: Record<string, string> = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: runtimeDir, XDG_RUNTIME_DIR: runtimeDir, PIPEWIRE_RUNTIME_DIR: runtimeDir };
    const { env, pipewireSocket } = await startBusAndPipewire(runtimeDir, base, procs, io);
    // sway's own runtime dir (its Wayland and IPC sockets), owned by the user it runs as
    const swayDir = join(runtimeDir, "sway");
    mkdirSync(swayDir, { mode: 0o700 });
    if (ROOT) chownSync(swayDir, 65534, 65534);
    const config = join(swayDir, "config");
    writeFileSync(config, "# empty: no bar, no default outputs\n", { mode: 0o644 });
    const swayEnv = { PATH: base.PATH!, HOME: swayDir, XDG_RUNTIME_DIR: swayDir, WLR_BACKENDS: "headless", WLR_LIBINPUT_NO_DEVICES: "1", WLR_RENDERER: RENDER_NODE ? "gles2" : "pixman" };
    const argv = ["sway", "-c", config];
    procs.push(Bun.spawn(ROOT ? ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", ...argv] : argv, { env: swayEnv, stdout: io, stderr: io }));
    let swaySocket = "";
    await until(() => {
      const s = readdirSync(swayDir).find((n) => n.startsWith("sway-ipc.") && n.endsWith(".sock"));
      if (s) swaySocket = join(swayDir, s);
      return s !== undefined && readdirSync(swayDir).some((n) => /^wayland-\d+$/.test(n));
    }, 10_000, "sway");
    const wl = readdirSync(swayDir).find((n) => /^wayland-\d+$/.test(n))!;
    return { runtimeDir, pipewireSocket, swaySocket, waylandDisplay: join(swayDir, wl), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
