/**
 * A private desktop session for tests: dbus-daemon, pipewire, wireplumber and a headless
 * compositor (mutter --headless), in their own runtime dir, started by the test and ended
 * by PID. Nothing touches the machine's own session.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";

export interface DesktopSession {
  runtimeDir: string;
  busAddress: string;
  pipewireSocket: string;
  env: Record<string, string>;
  /** Starts a client of the compositor (killed with the session). */
  client(argv: string[]): Subprocess;
  /** The monitors Mutter reports (DisplayConfig.GetCurrentState): connector and WxH of the current mode. */
  monitors(): Promise<{ connector: string; mode: string }[]>;
  /** Kills the compositor only (the "producer vanished" case). */
  killCompositor(): Promise<void>;
  stop(): Promise<void>;
}

export const HAVE_MUTTER = ["mutter", "pipewire", "wireplumber", "dbus-daemon", "gdbus"].every((b) => Bun.which(b) !== null);
export const MISSING_MUTTER = ["mutter", "pipewire", "wireplumber", "dbus-daemon", "gdbus"].filter((b) => Bun.which(b) === null);

/** Waits for fn, polling every 50 ms; throws naming what was not ready in ms. */
export async function until(fn: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn()) return;
    await Bun.sleep(50);
  }
  throw new Error(`desktop session: ${what} not ready within ${ms} ms`);
}

async function run(argv: string[], env: Record<string, string>, ms = 5000): Promise<{ code: number; out: string }> {
  const p = Bun.spawn(argv, { env, stdout: "pipe", stderr: "pipe" });
  const t = setTimeout(() => p.kill("SIGKILL"), ms);
  const out = await new Response(p.stdout).text();
  const code = await p.exited;
  clearTimeout(t);
  return { code, out };
}

/** Ends a process this test started: SIGTERM, SIGKILL after 3 s. */
export async function stopProc(p: Subprocess | null): Promise<void> {
  if (!p || p.exitCode !== null) return;
  p.kill("SIGTERM");
  const t = setTimeout(() => p.kill("SIGKILL"), 3000);
  await p.exited;
  clearTimeout(t);
}

/**
 * A private session bus at <runtimeDir>/bus, then pipewire and wireplumber on it, each pushed
 * onto procs (the caller stops them in reverse); returns the environment that reaches them.
 */
export async function startBusAndPipewire(
  runtimeDir: string,
  base: Record<string, string>,
  procs: Subprocess[],
  io: "inherit" | "ignore",
): Promise<{ env: Record<string, string>; pipewireSocket: string }> {
  const busPath = join(runtimeDir, "bus");
  procs.push(Bun.spawn(["dbus-daemon", "--session", "--nofork", "--nopidfile", `--address=unix:path=${busPath}`], { env: base, stdout: io, stderr: io }));
  await until(() => existsSync(busPath), 5000, "dbus-daemon");
  const env = { ...base, DBUS_SESSION_BUS_ADDRESS: `unix:path=${busPath}` };
  procs.push(Bun.spawn(["pipewire"], { env, stdout: io, stderr: io }));
  const pipewireSocket = join(runtimeDir, "pipewire-0");
  await until(() => existsSync(pipewireSocket), 5000, "pipewire");
  procs.push(Bun.spawn(["wireplumber"], { env, stdout: io, stderr: io }));
  return { env, pipewireSocket };
}

export async function startMutterSession(opts: { log?: boolean } = {}): Promise<DesktopSession> {
  const runtimeDir = mkdtempSync(join(tmpdir(), "neuron-desktop-"));
  const procs: Subprocess[] = [];
  const io = opts.log ? "inherit" : "ignore";
  const base: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: runtimeDir,
    XDG_RUNTIME_DIR: runtimeDir,
    XDG_CONFIG_HOME: join(runtimeDir, "config"),
    XDG_STATE_HOME: join(runtimeDir, "state"),
    XDG_DATA_HOME: join(runtimeDir, "data"),
    PIPEWIRE_RUNTIME_DIR: runtimeDir,
    GSETTINGS_BACKEND: "memory",
    NO_AT_BRIDGE: "1",
  };
  let mutter: Subprocess | null = null;
  const stop = async () => {
    await stopProc(mutter);
    for (const p of procs.reverse()) await stopProc(p);
    rmSync(runtimeDir, { recursive: true, force: true });
  };
  try {
    const busFile = join(runtimeDir, "bus-address");
    const dbus = Bun.spawn(["dbus-daemon", "--session", "--nofork", "--nopidfile", `--address=unix:path=${join(runtimeDir, "bus")}`, "--print-address=1"], {
      env: base,
      stdout: "pipe",
      stderr: io,
    });
    procs.push(dbus);
    const reader = dbus.stdout.getReader();
    let text = "";
    const deadline = Date.now() + 5000;
    while (!text.includes("\n") && Date.now() < deadline) {
      const { value, done } = await Promise.race([reader.read(), Bun.sleep(5000).then(() => ({ value: undefined, done: true }))]);
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    reader.releaseLock();
    const busAddress = text.trim().split("\n")[0] ?? "";
    if (!busAddress) throw new Error("dbus-daemon printed no address");
    void busFile;
    const env = { ...base, DBUS_SESSION_BUS_ADDRESS: busAddress };
    procs.push(Bun.spawn(["pipewire"], { env, stdout: io, stderr: io }));
    const pipewireSocket = join(runtimeDir, "pipewire-0");
    await until(() => existsSync(pipewireSocket), 5000, "pipewire");
    procs.push(Bun.spawn(["wireplumber"], { env, stdout: io, stderr: io }));
    mutter = Bun.spawn(["mutter", "--headless", "--no-x11", "--wayland-display=wayland-neuron"], { env, stdout: io, stderr: io });
    const owned = async () =>
      (await run(["gdbus", "call", "--session", "-d", "org.freedesktop.DBus", "-o", "/org/freedesktop/DBus", "-m", "org.freedesktop.DBus.NameHasOwner", "org.gnome.Mutter.ScreenCast"], env)).out.includes("true");
    await until(owned, 15000, "mutter's ScreenCast interface");
    const session: DesktopSession = {
      runtimeDir,
      busAddress,
      pipewireSocket,
      env,
      client(argv) {
        const p = Bun.spawn(argv, { env: { ...env, WAYLAND_DISPLAY: "wayland-neuron" }, stdout: io, stderr: io });
        procs.push(p);
        return p;
      },
      async monitors() {
        const r = await run(["gdbus", "call", "--session", "-d", "org.gnome.Mutter.DisplayConfig", "-o", "/org/gnome/Mutter/DisplayConfig", "-m", "org.gnome.Mutter.DisplayConfig.GetCurrentState"], env);
        // monitors: ((connector, vendor, product, serial), [(mode id, w, h, rate, scale, [scales], {props})], {props})
        const out: { connector: string; mode: string }[] = [];
        const connectors = [...r.out.matchAll(/\(\('([^']+)', '[^']*', '[^']*', '[^']*'\), \[/g)].map((m) => m[1]!);
        const current = [...r.out.matchAll(/\('[^']*', (\d+), (\d+), [\d.]+, [\d.]+, \[[^\]]*\], \{[^}]*'is-current': <true>/g)].map((m) => `${m[1]}x${m[2]}`);
        connectors.forEach((c, i) => out.push({ connector: c, mode: current[i] ?? "" }));
        return out;
      },
      async killCompositor() {
        await stopProc(mutter);
      },
      stop,
    };
    return session;
  } catch (err) {
    await stop();
    throw err;
  }
}

export function readText(path: string): string {
  return existsSync(path) ? readFileSync(path, "utf8") : "";
}
