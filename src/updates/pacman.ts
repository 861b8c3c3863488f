/** pacman's side: progress from its output, installed versions from its local database. */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

export interface Progress {
  /** Packages in the transaction (from "Packages (N)"), 0 until pacman says. */
  total: number;
  done: number;
  action: string | null;
  pkg: string | null;
}

const PACKAGES = /^Packages \((\d+)\)/;
const STEP = /^(?:\(\s*(\d+)\/(\d+)\)\s+)?(installing|upgrading|reinstalling|downgrading|removing)\s+(\S+?)(?:\.\.\.)?\s*(?:\[.*)?$/;

/** Feeds pacman's output lines; returns the progress when a line moved it. */
export class PacmanProgress {
  readonly state: Progress = { total: 0, done: 0, action: null, pkg: null };
  feed(line: string): Progress | null {
    const t = line.trim();
    const p = PACKAGES.exec(t);
    if (p) {
      this.state.total = Number(p[1]);
      return { ...this.state };
    }
    const s = STEP.exec(t);
    if (!s) return null;
    if (this.state.action === s[3] && this.state.pkg === s[4]) return null;
    this.state.done = s[1] ? Number(s[1]) : this.state.done + 1;
    if (s[2]) this.state.total = Number(s[2]);
    this.state.action = s[3]!;
    this.state.pkg = s[4]!;
    return { ...this.state };
  }
}

/** A text progress bar: "[#####.....] 3/7 upgrading foo". */
export function progressBar(p: Progress, width = 24): string {
  const frac = p.total ? Math.min(1, p.done / p.total) : 0;
  const n = Math.round(frac * width);
  return `[${"#".repeat(n)}${".".repeat(width - n)}] ${p.done}/${p.total || "?"}${p.action ? ` ${p.action} ${p.pkg}` : ""}`;
}

/** name → version of the packages in pacman's local database. */
export function installedPackages(dbPath: string): Map<string, string> {
  const out = new Map<string, string>();
  const local = join(dbPath, "local");
  if (!existsSync(local)) return out;
  for (const e of readdirSync(local)) {
    const desc = join(local, e, "desc");
    if (!existsSync(desc)) continue;
    const lines = readFileSync(desc, "utf8").split("\n");
    const name = lines[lines.indexOf("%NAME%") + 1];
    const version = lines[lines.indexOf("%VERSION%") + 1];
    if (name && version && lines.includes("%NAME%")) out.set(name, version);
  }
  return out;
}

export interface PackageChange {
  name: string;
  from: string | null;
  to: string | null;
}

export function packageChanges(before: Map<string, string>, after: Map<string, string>): PackageChange[] {
  const out: PackageChange[] = [];
  for (const [name, to] of after) if (before.get(name) !== to) out.push({ name, from: before.get(name) ?? null, to });
  for (const [name, from] of before) if (!after.has(name)) out.push({ name, from, to: null });
  return out.sort((a, b) => a.name.localeCompare(b.name));
}
