/** What must hold before an update starts: no other pacman, no lock left behind, enough free space. */
import { existsSync, readdirSync, readFileSync, readlinkSync, statfsSync, statSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { AppError } from "../errors.ts";

/** Start time of a process (clock ticks since boot, /proc/PID/stat field 22), or null when it is gone. */
export function processStart(pid: number, procDir = "/proc"): number | null {
  try {
    const stat = readFileSync(join(procDir, String(pid), "stat"), "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[19]);
  } catch {
    return null;
  }
}

/** Is the process that recorded (pid, start) still the one running? */
export function processAlive(pid: number | null, start: number | null, procDir = "/proc"): boolean {
  if (!pid) return false;
  const now = processStart(pid, procDir);
  return now !== null && (start === null || now === start);
}

/** The trees a pacman process works on: its --root/--sysroot/--dbpath arguments, else its own root directory. */
function pacmanTargets(pid: string, procDir: string): string[] {
  const args = readFileSync(join(procDir, pid, "cmdline"), "utf8").split("\0");
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const eq = /^--(root|sysroot|dbpath)=(.+)$/.exec(a);
    if (eq) out.push(eq[2]!);
    else if (["--root", "-r", "--sysroot", "--dbpath", "-b"].includes(a) && args[i + 1]) out.push(args[++i]!);
  }
  if (out.length) return out.map((p) => resolve(p));
  try {
    return [readlinkSync(join(procDir, pid, "root"))];
  } catch {
    return ["/"];
  }
}

/** PIDs of running pacman processes (by command name) that work on `root` (every one that works on "/" when root is "/"). */
export function pacmanProcesses(pacmanBin: string, root = "/", procDir = "/proc"): number[] {
  const names = new Set(["pacman", basename(pacmanBin).slice(0, 15)]);
  const want = resolve(root);
  const out: number[] = [];
  for (const e of readdirSync(procDir)) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      if (!names.has(readFileSync(join(procDir, e, "comm"), "utf8").trim())) continue;
      const stat = readFileSync(join(procDir, e, "stat"), "utf8");
      if (stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) === "Z") continue; // exited, not yet reaped
      const targets = pacmanTargets(e, procDir);
      const hit = want === "/" ? targets.some((t) => t === "/" || t.startsWith("/var/lib/pacman")) : targets.some((t) => t === want || t.startsWith(want + "/"));
      if (hit) out.push(Number(e));
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

export function freeMb(path: string): number {
  const s = statfsSync(path);
  return Math.floor((Number(s.bavail) * Number(s.bsize)) / (1024 * 1024));
}

export interface PreflightInput {
  root: string;
  lockFile: string;
  pacmanBin: string;
  minFreeMb: number;
}

export function preflight(p: PreflightInput): { freeMb: number } {
  const running = pacmanProcesses(p.pacmanBin, p.root);
  if (running.length)
    throw new AppError("PACMAN_RUNNING", `another pacman is running (pid ${running.join(", ")}); wait for it to finish, then run the update again`, { status: 409 });
  if (existsSync(p.lockFile)) {
    const age = new Date(statSync(p.lockFile).mtimeMs).toISOString();
    throw new AppError(
      "PACMAN_STALE_LOCK",
      `pacman's lock ${p.lockFile} is there (since ${age}) but no pacman is running: a pacman was interrupted. ` +
        "It was left as it is; check that nothing is installing, remove the file, and run the update again",
      { status: 409 },
    );
  }
  const free = freeMb(p.root);
  if (free < p.minFreeMb)
    throw new AppError("LOW_DISK_SPACE", `only ${free} MiB free on ${p.root}; an update needs at least ${p.minFreeMb} MiB (updates.minFreeMb). Free some space or delete old snapshots (\`neuron-appliance snapshot list\`)`, { status: 409 });
  return { freeMb: free };
}
