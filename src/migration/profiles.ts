/**
 * Windows profiles of a source tree (Users/*) and the Linux user and home each maps to;
 * the target home's XDG user directories (localized names from ~/.config/user-dirs.dirs).
 */
import { existsSync, lstatSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Profile } from "./model.ts";

/** Profile folders that are not people. */
const SYSTEM_PROFILES = new Map<string, string>([
  ["default", "the template for new users"],
  ["default user", "a compatibility junction to Default"],
  ["public", "the shared Public folder, not a person"],
  ["all users", "a compatibility junction to ProgramData"],
  ["defaultuser0", "a leftover of Windows setup"],
  ["defaultuser100000", "a leftover of Windows setup"],
  ["wdagutilityaccount", "the Application Guard system account"],
  ["localservice", "a system service account"],
  ["networkservice", "a system service account"],
  ["systemprofile", "the SYSTEM account"],
]);

/** The entry of `dir` whose name matches `name` ignoring case (Windows trees vary in case). */
export function findCaseless(dir: string, name: string): string | null {
  if (existsSync(join(dir, name))) return name;
  try {
    const lower = name.toLowerCase();
    return readdirSync(dir).find((n) => n.toLowerCase() === lower) ?? null;
  } catch {
    return null;
  }
}

/** A Linux login name for a Windows user name: lower case, [a-z0-9_-], at most 32 characters. */
export function linuxUserName(windowsName: string): string | null {
  const s = windowsName
    .replace(/ß/g, "ss")
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, "")
    .replace(/^[^a-z_]+/, "")
    .slice(0, 32);
  return s.length ? s : null;
}

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

export function readPasswd(etcDir: string): PasswdEntry[] {
  try {
    return readFileSync(join(etcDir, "passwd"), "utf8")
      .split("\n")
      .map((l) => l.split(":"))
      .filter((f) => f.length >= 7)
      .map((f) => ({ name: f[0]!, uid: Number(f[2]), gid: Number(f[3]), home: f[5]! }));
  } catch {
    return [];
  }
}

export interface ProfileOptions {
  etcDir: string;
  /** Explicit target home (only with one profile chosen). */
  target?: string;
  /** Where homes are when no Linux user matches: <homeBase>/<name>. */
  homeBase?: string;
}

export function listProfiles(root: string, opts: ProfileOptions): Profile[] {
  const users = findCaseless(root, "Users");
  if (!users) return [];
  const passwd = readPasswd(opts.etcDir);
  const out: Profile[] = [];
  let names: string[] = [];
  try {
    names = readdirSync(join(root, users)).sort();
  } catch {
    return [];
  }
  for (const name of names) {
    const rel = `${users}/${name}`;
    let st;
    try {
      st = lstatSync(join(root, rel));
    } catch {
      continue;
    }
    if (st.isSymbolicLink() || !st.isDirectory()) continue;
    const lower = name.toLowerCase();
    const linux = linuxUserName(name);
    const entry = linux ? passwd.find((p) => p.name === linux) : undefined;
    const target = opts.target ?? entry?.home ?? join(opts.homeBase ?? "/home", linux ?? lower);
    const skipped = SYSTEM_PROFILES.get(lower) ?? (name.startsWith(".") ? "a hidden folder" : null);
    out.push({ name, path: rel, linuxUser: entry?.name ?? linux, target, skipped: skipped ? `${name} is ${skipped}` : null });
  }
  return out;
}

export const XDG_KEYS = ["DESKTOP", "DOWNLOAD", "DOCUMENTS", "MUSIC", "PICTURES", "VIDEOS"] as const;
export type XdgKey = (typeof XDG_KEYS)[number];
const XDG_DEFAULTS: Record<XdgKey, string> = { DESKTOP: "Desktop", DOWNLOAD: "Downloads", DOCUMENTS: "Documents", MUSIC: "Music", PICTURES: "Pictures", VIDEOS: "Videos" };

/** The target home's XDG user directories (absolute), localized where user-dirs.dirs says so. */
export function xdgDirs(home: string): Record<XdgKey, string> {
  const out = Object.fromEntries(XDG_KEYS.map((k) => [k, join(home, XDG_DEFAULTS[k])])) as Record<XdgKey, string>;
  let text = "";
  try {
    text = readFileSync(join(home, ".config", "user-dirs.dirs"), "utf8");
  } catch {
    return out;
  }
  for (const line of text.split("\n")) {
    const m = /^\s*XDG_([A-Z]+)_DIR\s*=\s*"([^"]*)"\s*$/.exec(line);
    if (!m || !(XDG_KEYS as readonly string[]).includes(m[1]!)) continue;
    let v = m[2]!.replace(/\\(.)/g, "$1");
    if (v.startsWith("$HOME/")) v = join(home, v.slice(6));
    else if (v === "$HOME") continue; // disabled: would mean the home itself
    else if (!v.startsWith("/")) continue;
    out[m[1] as XdgKey] = v;
  }
  return out;
}
