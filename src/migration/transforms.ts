/**
 * Content transforms of the rule table: Windows-only settings rewritten for Linux. Each takes
 * the source bytes and returns the bytes to write (and the mode, where the transform decides).
 */
import { basename } from "node:path";
import type { TransformName } from "./rules.ts";

export interface TransformContext {
  /** The Windows profile folder as a Windows path prefix, e.g. "C:/Users/alice" (forward slashes). */
  windowsHome: string;
  /** The Linux home. */
  home: string;
  downloads: string;
  /** Path of the file relative to the rule's source root. */
  rel: string;
}

export interface TransformResult {
  data: Buffer;
  mode?: number;
  changed: string[];
}

const crlfToLf = (s: string) => s.replace(/\r\n/g, "\n");

/** C:\Users\alice\x or C:/Users/alice/x → /home/alice/x; other drive paths stay and are listed. */
export function linuxPath(value: string, ctx: TransformContext): string | null {
  const v = value.replace(/\\\\/g, "\\").replace(/\\/g, "/");
  const wh = ctx.windowsHome.toLowerCase();
  if (v.toLowerCase() === wh) return ctx.home;
  if (v.toLowerCase().startsWith(wh + "/")) return ctx.home + v.slice(wh.length);
  if (/^~\//.test(v)) return v;
  return null;
}

export function rewriteGitconfig(text: string, ctx: TransformContext): { text: string; changed: string[] } {
  const changed: string[] = [];
  let section = "";
  const out: string[] = [];
  for (const raw of crlfToLf(text).split("\n")) {
    const sec = /^\s*\[([^\]]+)\]/.exec(raw);
    if (sec) {
      section = sec[1]!.trim().toLowerCase().replace(/\s+"/, ' "');
      out.push(raw);
      continue;
    }
    const kv = /^(\s*)([A-Za-z0-9.-]+)\s*=\s*(.*?)\s*$/.exec(raw);
    if (!kv) {
      out.push(raw);
      continue;
    }
    const [, indent, key, value] = kv as unknown as [string, string, string, string];
    const k = `${section}.${key.toLowerCase()}`;
    const unq = value.replace(/^"(.*)"$/, "$1");
    if (k === "core.autocrlf" && unq.toLowerCase() === "true") {
      out.push(`${indent}${key} = input`);
      changed.push("core.autocrlf true → input");
    } else if (k === "credential.helper" && /(^|[\\/ ])(manager|manager-core|wincred)(\.exe)?$/i.test(unq)) {
      out.push(`${indent}# ${key} = ${value}   (Windows Git Credential Manager; set a Linux helper, e.g. libsecret or cache)`);
      out.push(`${indent}${key} = cache --timeout=3600`);
      changed.push(`credential.helper ${unq} → cache`);
    } else if (k === "core.sshcommand" && /ssh\.exe/i.test(unq)) {
      out.push(`${indent}# ${key} = ${value}   (Windows OpenSSH)`);
      changed.push("core.sshCommand ssh.exe removed (Linux ssh is used)");
    } else if (/^"?[A-Za-z]:[\\/]/.test(value)) {
      const lp = linuxPath(unq, ctx);
      if (lp) {
        out.push(`${indent}${key} = ${lp}`);
        changed.push(`${k} ${unq} → ${lp}`);
      } else {
        out.push(`${indent}# ${key} = ${value}   (a Windows path with no Linux equivalent)`);
        changed.push(`${k} ${unq} commented out`);
      }
    } else out.push(raw);
  }
  return { text: out.join("\n"), changed };
}

const PRIVATE_KEY = /^-----BEGIN ([A-Z ]+ )?PRIVATE KEY-----/;

/** Mode and content of a file under .ssh. */
export function sshFile(rel: string, data: Buffer): TransformResult {
  const name = basename(rel);
  if (name === "config" || name === "known_hosts" || name === "known_hosts.old") {
    const text = data.toString("utf8");
    const lf = crlfToLf(text);
    return { data: Buffer.from(lf, "utf8"), mode: name === "config" ? 0o600 : 0o644, changed: lf !== text ? ["CRLF → LF"] : [] };
  }
  if (name.endsWith(".pub")) return { data, mode: 0o644, changed: [] };
  if (name === "authorized_keys") return { data: Buffer.from(crlfToLf(data.toString("utf8")), "utf8"), mode: 0o600, changed: [] };
  if (PRIVATE_KEY.test(data.subarray(0, 64).toString("latin1"))) {
    const t = data.toString("latin1");
    return { data: Buffer.from(crlfToLf(t), "latin1"), mode: 0o600, changed: t.includes("\r\n") ? ["CRLF → LF"] : [] };
  }
  return { data, mode: 0o600, changed: [] };
}

/** profiles.ini: Path=Profiles/x → x (relative), [Install…] sections (Windows install hashes) dropped. */
export function rewriteProfilesIni(text: string): { text: string; changed: string[] } {
  const changed: string[] = [];
  const out: string[] = [];
  let drop = false;
  for (const line of crlfToLf(text).split("\n")) {
    const sec = /^\s*\[([^\]]+)\]/.exec(line);
    if (sec) {
      drop = /^Install/i.test(sec[1]!);
      if (drop) changed.push(`[${sec[1]}] dropped`);
    }
    if (drop) continue;
    const m = /^Path=(.*)$/.exec(line);
    if (m) {
      const p = m[1]!.replace(/\\/g, "/");
      const rel = p.replace(/^Profiles\//i, "");
      out.push(`Path=${rel}`);
      if (rel !== m[1]) changed.push(`Path ${m[1]} → ${rel}`);
    } else out.push(line);
  }
  return { text: out.join("\n"), changed };
}

export function rewriteChromiumPreferences(text: string, ctx: TransformContext): { text: string; changed: string[] } {
  const changed: string[] = [];
  let prefs: Record<string, unknown>;
  try {
    prefs = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return { text, changed };
  }
  for (const [group, key] of [
    ["download", "default_directory"],
    ["savefile", "default_directory"],
    ["selectfile", "last_directory"],
  ] as const) {
    const g = prefs[group];
    if (g && typeof g === "object" && typeof (g as Record<string, unknown>)[key] === "string") {
      const v = (g as Record<string, string>)[key]!;
      const lp = linuxPath(v, ctx) ?? ctx.downloads;
      (g as Record<string, string>)[key] = lp;
      changed.push(`${group}.${key} ${v} → ${lp}`);
    }
  }
  return { text: changed.length ? JSON.stringify(prefs) : text, changed };
}

export function applyTransform(name: TransformName, data: Buffer, ctx: TransformContext): TransformResult {
  switch (name) {
    case "gitconfig": {
      const r = rewriteGitconfig(data.toString("utf8"), ctx);
      return { data: Buffer.from(r.text, "utf8"), changed: r.changed };
    }
    case "ssh":
      return sshFile(ctx.rel, data);
    case "firefox-profiles-ini": {
      const r = rewriteProfilesIni(data.toString("utf8"));
      return { data: Buffer.from(r.text, "utf8"), changed: r.changed };
    }
    case "chromium-preferences": {
      const r = rewriteChromiumPreferences(data.toString("utf8"), ctx);
      return { data: Buffer.from(r.text, "utf8"), changed: r.changed };
    }
  }
}

/** Transforms whose output may differ from the input (files go through applyTransform). */
export const TRANSFORMS_CONTENT = new Set<TransformName>(["gitconfig", "ssh", "firefox-profiles-ini", "chromium-preferences"]);
