/**
 * A private KWin session for tests: dbus-daemon, pipewire, wireplumber and
 * `kwin_wayland --virtual`, in their own runtime dir, started by the test and ended by PID.
 * KWin offers zkde_screencast only to executables a .desktop file authorises
 * (X-KDE-Wayland-Interfaces): the session's data dir holds one for this test's own executable.
 *
 * Debian's kwin_wayland carries the file capability cap_sys_resource; where that capability is
 * outside the bounding set (containers), exec fails with EPERM, so the session runs a copy
 * without the capability (the same binary; its Qt platform plugin wants the name kwin_wayland).
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { startBusAndPipewire, stopProc, until } from "./desktop-session.ts";

const NEEDS = ["kwin_wayland", "pipewire", "wireplumber", "dbus-daemon", "wayland-info"];
export const MISSING_KWIN = NEEDS.filter((b) => Bun.which(b) === null);
export const HAVE_KWIN = MISSING_KWIN.length === 0;

export interface KwinSession {
  runtimeDir: string;
  pipewireSocket: string;
  /** Absolute path of KWin's Wayland socket. */
  waylandDisplay: string;
  /** Outputs KWin announces (wl_output names and current modes, through wayland-info). */
  outputs(): Promise<{ name: string; mode: string }[]>;
  /** Starts a client of KWin (killed with the session). */
  client(argv: string[]): Subprocess;
  stop(): Promise<void>;
}

export async function startKwinSession(opts: { width?: number; height?: number; authorise?: boolean; log?: boolean; env?: Record<string, string> } = {}): Promise<KwinSession> {
  const runtimeDir = mkdtempSync(join(tmpdir(), "neuron-kwin-"));
  const procs: Subprocess[] = [];
  const io = opts.log ? "inherit" : "ignore";
  const stop = async () => {
    for (const p of procs.reverse()) await stopProc(p);
    rmSync(runtimeDir, { recursive: true, force: true });
  };
  try {
    const data = join(runtimeDir, "data");
    mkdirSync(join(data, "applications"), { recursive: true });
    if (opts.authorise !== false)
      writeFileSync(
        join(data, "applications", "neuron-test.desktop"),
        `[Desktop Entry]\nType=Application\nName=neuron test\nExec=${realpathSync(process.execPath)}\nNoDisplay=true\nX-KDE-Wayland-Interfaces=zkde_screencast_unstable_v1\n`,
      );
    const base: Record<string, string> = {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: runtimeDir,
      XDG_RUNTIME_DIR: runtimeDir,
      XDG_CONFIG_HOME: join(runtimeDir, "config"),
      XDG_CACHE_HOME: join(runtimeDir, "cache"),
      XDG_DATA_HOME: join(runtimeDir, "data-home"),
      XDG_DATA_DIRS: `${data}:/usr/share`,
      PIPEWIRE_RUNTIME_DIR: runtimeDir,
      ...opts.env,
    };
    const { env, pipewireSocket } = await startBusAndPipewire(runtimeDir, base, procs, io);
    const binDir = join(runtimeDir, "bin");
    mkdirSync(binDir);
    const kwin = join(binDir, "kwin_wayland");
    copyFileSync(Bun.which("kwin_wayland")!, kwin); // a plain copy: no file capability
    chmodSync(kwin, 0o755);
    procs.push(
      Bun.spawn([kwin, "--virtual", "--width", `${opts.width ?? 640}`, "--height", `${opts.height ?? 480}`, "--socket", "wl-neuron"], { env, stdout: io, stderr: io }),
    );
    const waylandDisplay = join(runtimeDir, "wl-neuron");
    await until(() => existsSync(waylandDisplay) || procs.at(-1)!.exitCode !== null, 15_000, "kwin_wayland");
    if (procs.at(-1)!.exitCode !== null) throw new Error(`kwin_wayland exited (${procs.at(-1)!.exitCode})`);
    const session: KwinSession = {
      runtimeDir,
      pipewireSocket,
      waylandDisplay,
      client(argv) {
        const p = Bun.spawn(argv, { env: { ...env, WAYLAND_DISPLAY: waylandDisplay }, stdout: io, stderr: io });
        procs.push(p);
        return p;
      },
      async outputs() {
        const p = Bun.spawn(["wayland-info"], { env: { ...env, WAYLAND_DISPLAY: waylandDisplay }, stdout: "pipe", stderr: "ignore" });
        const t = setTimeout(() => p.kill("SIGKILL"), 5000);
        const text = await new Response(p.stdout).text();
        clearTimeout(t);
        await p.exited;
        const out: { name: string; mode: string }[] = [];
        for (const block of text.split(/interface: /).filter((b) => b.startsWith("'wl_output'"))) {
          const name = /\n\s*name: (\S+)/.exec(block)?.[1] ?? "";
          const m = /width: (\d+) px, height: (\d+) px, refresh: ([\d.]+) Hz/.exec(block);
          out.push({ name, mode: m ? `${m[1]}x${m[2]}` : "" });
        }
        return out;
      },
      stop,
    };
    return session;
  } catch (err) {
    await stop();
    throw err;
  }
}
