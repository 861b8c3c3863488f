/** What must hold before an update starts: no other pacman, no lock left behind, enough free space. */
import { existsSync, readdirSync, readFileSync, statfsSync, statSync } from "node:fs";
import { basename, join } from "node:path";
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

/** PIDs of running pacman processes (by command name). */
export function pacmanProcesses(pacmanBin: string, procDir = "/proc"): number[] {
  const names = new Set(["pacman", basename(pacmanBin).slice(0, 15)]);
  const out: number[] = [];
  for (const e of readdirSync(procDir)) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      if (names.has(readFileSync(join(procDir, e, "comm"), "utf8").trim())) out.push(Number(e));
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
  const running = pacmanProcesses(p.pacmanBin);
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
