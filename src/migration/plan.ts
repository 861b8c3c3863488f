/**
 * Expands the rule table over a source tree: the plan's items and the file list behind them.
 * Links of every kind (symlinks, junctions, other reparse points as the NTFS driver shows them)
 * are listed, never followed; unreadable folders are listed too.
 */
import { lstatSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import type { ConflictReason, PlanItem, Profile, Reinstall } from "./model.ts";
import { findCaseless, xdgDirs, type XdgKey } from "./profiles.ts";
import { GLOBAL_EXCLUDES, matcher, RULES, type Rule, type TransformName } from "./rules.ts";
import { safeName } from "./names.ts";
import type { EntryMeta } from "./ntfs-meta.ts";

export interface FileEntry {
  item: string;
  kind: "file" | "dir";
  /** Relative to the source root. */
  source: string;
  /** Absolute target. */
  target: string;
  size: number;
  mtimeMs: number;
  mode: number;
  transform: TransformName | null;
  /** Why the target name differs from the source's (Windows names), else null. */
  renamed: string | null;
  /** Windows attributes and named streams worth carrying (NTFS sources), else null. */
  meta?: EntryMeta | null;
}

export interface Expanded {
  items: PlanItem[];
  entries: FileEntry[];
  notFollowed: { path: string; kind: "junction" | "symlink" | "reparse" }[];
  unreadable: { path: string; error: string }[];
  /** Per profile: the Linux home and the Windows path of the profile (for transforms). */
  homes: Map<string, { home: string; windowsHome: string; downloads: string }>;
  /** Every source folder the scan read, relative to the root, with its modification time (ms). */
  dirs: [string, number][];
}

/** The Linux home and Windows profile path of each profile (what transforms need). */
export function profileHomes(profiles: Profile[]): Expanded["homes"] {
  const homes: Expanded["homes"] = new Map();
  for (const p of profiles) if (!p.skipped) homes.set(p.name, { home: p.target, windowsHome: `C:/${p.path}`, downloads: xdgDirs(p.target).DOWNLOAD });
  return homes;
}

interface Match {
  rel: string;
  captures: string[];
}

/** Paths under profileRel matching the rule's `from` pattern (case-insensitive, `*` = one folder). */
function resolveFrom(root: string, profileRel: string, rule: Rule, read: Set<string>): Match[] {
  let current: Match[] = [{ rel: profileRel, captures: [] }];
  for (const seg of rule.from.split("/")) {
    const next: Match[] = [];
    for (const m of current) {
      const dir = join(root, m.rel);
      read.add(m.rel);
      if (seg === "*") {
        let names: string[] = [];
        try {
          names = readdirSync(dir).sort();
        } catch {
          continue;
        }
        for (const n of names) {
          try {
            const st = lstatSync(join(dir, n));
            if (!st.isDirectory() || st.isSymbolicLink()) continue;
          } catch {
            continue;
          }
          next.push({ rel: `${m.rel}/${n}`, captures: [...m.captures, n] });
        }
      } else {
        const found = findCaseless(dir, seg);
        if (found) next.push({ rel: `${m.rel}/${found}`, captures: m.captures });
      }
    }
    current = next;
  }
  if (rule.when) current = current.filter((m) => (read.add(m.rel), findCaseless(join(root, m.rel), rule.when!) !== null));
  return current.filter((m) => {
    try {
      return !lstatSync(join(root, m.rel)).isSymbolicLink();
    } catch {
      return false;
    }
  });
}

const sub = (s: string, captures: string[]) => s.replace(/\$(\d)/g, (_, d: string) => captures[Number(d) - 1] ?? "");

function targetBase(rule: Rule, home: string, xdg: Record<XdgKey, string>, captures: string[]): string {
  const to = sub(rule.to, captures);
  const m = /^\{xdg:([A-Z]+)\}(.*)$/.exec(to);
  if (m) return join(xdg[m[1] as XdgKey], m[2]!);
  return join(home, to);
}

function linkKind(abs: string): "junction" | "symlink" {
  try {
    return statSync(abs).isDirectory() ? "junction" : "symlink";
  } catch {
    return "symlink";
  }
}

function reinstallIds(abs: string, kind: "vscode-extension" | "chromium-extension"): string[] {
  const ids = new Set<string>();
  let names: string[] = [];
  try {
    names = readdirSync(abs);
  } catch {
    return [];
  }
  if (kind === "chromium-extension") {
    for (const n of names) if (/^[a-p]{32}$/.test(n)) ids.add(n);
  } else {
    try {
      const list = JSON.parse(readFileSync(join(abs, "extensions.json"), "utf8")) as { identifier?: { id?: string } }[];
      for (const e of list) if (e.identifier?.id && /^[\w-]+\.[\w.-]+$/.test(e.identifier.id)) ids.add(e.identifier.id.toLowerCase());
    } catch {
      // no list: the folder names (publisher.name-version[-platform])
    }
    for (const n of names) {
      const m = /^([a-z0-9][\w-]*\.[a-z0-9][\w.-]*?)-\d+\.\d+\.\d+/i.exec(n);
      if (m) ids.add(m[1]!.toLowerCase());
    }
  }
  return [...ids].sort();
}

export interface ExpandOptions {
  profiles: Profile[];
  /** Notable Windows attributes and streams by source path (readNtfsMeta), for NTFS sources. */
  meta?: Map<string, EntryMeta> | null;
  vm?: string | null;
}

export function expandPlan(root: string, opts: ExpandOptions): Expanded {
  const items: PlanItem[] = [];
  const entries: FileEntry[] = [];
  const notFollowed: Expanded["notFollowed"] = [];
  const unreadable: Expanded["unreadable"] = [];
  const homes = profileHomes(opts.profiles);
  const read = new Set<string>();
  const globalEx = matcher(GLOBAL_EXCLUDES)!;
  const seenLinks = new Set<string>();
  for (const profile of opts.profiles) {
    if (profile.skipped) continue;
    const home = profile.target;
    const xdg = xdgDirs(home);
    for (const rule of RULES) {
      for (const m of resolveFrom(root, profile.path, rule, read)) {
        const id = [profile.name, rule.id, ...m.captures].join("/");
        const base = targetBase(rule, home, xdg, m.captures);
        const item: PlanItem = {
          id,
          profile: profile.name,
          rule: rule.id,
          category: rule.category,
          label: sub(rule.label, m.captures),
          source: m.rel,
          target: base,
          files: 0,
          bytes: 0,
          fidelity: rule.fidelity,
          why: rule.why ?? null,
          transform: rule.transform ?? null,
          conflicts: { count: 0, sample: [] },
          reinstall: null,
          livePath: rule.livePath ? { vm: opts.vm ?? null, command: rule.livePath.command, hint: rule.livePath.hint } : null,
          unreadable: 0,
        };
        if (rule.reinstall) {
          const ids = reinstallIds(join(root, m.rel), rule.reinstall);
          if (!ids.length) continue;
          item.reinstall = { kind: rule.reinstall, ids } satisfies Reinstall;
          items.push(item);
          continue;
        }
        const include = matcher(rule.include);
        const exclude = matcher(rule.exclude);
        const itemEntries: FileEntry[] = [];
        const abs0 = join(root, m.rel);
        let st0;
        try {
          st0 = lstatSync(abs0);
        } catch (err) {
          unreadable.push({ path: m.rel, error: (err as Error).message });
          continue;
        }
        const addFile = (rel: string, srcRel: string, st: { size: number; mtimeMs: number }, target: string, renamedWhy: string | null) => {
          itemEntries.push({ item: id, kind: "file", source: srcRel, target, size: st.size, mtimeMs: st.mtimeMs, mode: rule.perms.file, transform: rule.transform ?? null, renamed: renamedWhy, meta: opts.meta?.get(srcRel) ?? null });
        };
        if (st0.isFile()) {
          addFile("", m.rel, st0, base, null);
        } else if (st0.isDirectory()) {
          const walk = (srcRel: string, rel: string, targetDir: string, depth: number) => {
            if (depth > 256) return;
            let names: string[];
            read.add(srcRel);
            try {
              names = readdirSync(join(root, srcRel)).sort();
            } catch (err) {
              unreadable.push({ path: srcRel, error: (err as NodeJS.ErrnoException).code ?? (err as Error).message });
              item.unreadable++;
              return;
            }
            for (const name of names) {
              const childSrc = `${srcRel}/${name}`;
              const childRel = rel ? `${rel}/${name}` : name;
              if (globalEx(childRel) || exclude?.(childRel)) continue;
              let st;
              try {
                st = lstatSync(join(root, childSrc));
              } catch (err) {
                unreadable.push({ path: childSrc, error: (err as NodeJS.ErrnoException).code ?? (err as Error).message });
                item.unreadable++;
                continue;
              }
              const safe = safeName(name);
              const childTarget = join(targetDir, safe.name);
              if (st.isSymbolicLink()) {
                if (!seenLinks.has(childSrc)) {
                  seenLinks.add(childSrc);
                  notFollowed.push({ path: childSrc, kind: linkKind(join(root, childSrc)) });
                }
              } else if (st.isDirectory()) {
                const before = itemEntries.length;
                walk(childSrc, childRel, childTarget, depth + 1);
                if (itemEntries.length > before) itemEntries.splice(before, 0, { item: id, kind: "dir", source: childSrc, target: childTarget, size: 0, mtimeMs: st.mtimeMs, mode: rule.perms.dir, transform: null, renamed: safe.reason, meta: opts.meta?.get(childSrc) ?? null });
              } else if (st.isFile()) {
                if (include && !include(childRel)) continue;
                addFile(childRel, childSrc, st, childTarget, safe.reason);
              }
            }
          };
          walk(m.rel, "", base, 0);
        }
        const files = itemEntries.filter((e) => e.kind === "file");
        if (!files.length && item.unreadable === 0) continue;
        item.files = files.length;
        item.bytes = files.reduce((a, e) => a + e.size, 0);
        items.push(item);
        if (rule.fidelity !== "cannot") {
          // the item's top folder itself
          if (st0.isDirectory()) entries.push({ item: id, kind: "dir", source: m.rel, target: base, size: 0, mtimeMs: st0.mtimeMs, mode: rule.perms.dir, transform: null, renamed: null, meta: opts.meta?.get(m.rel) ?? null });
          entries.push(...itemEntries);
        }
      }
    }
  }
  const dirs: [string, number][] = [];
  for (const rel of read) {
    try {
      dirs.push([rel, lstatSync(join(root, rel)).mtimeMs]);
    } catch {
      dirs.push([rel, -1]);
    }
  }
  return { items, entries, notFollowed, unreadable, homes, dirs };
}

/** Conflicts of the plan's entries with what the target already holds. */
export function findConflicts(exp: Expanded): Map<string, { path: string; reason: ConflictReason }[]> {
  const listings = new Map<string, Map<string, string[]>>();
  const listing = (dir: string) => {
    let l = listings.get(dir);
    if (!l) {
      l = new Map();
      try {
        for (const n of readdirSync(dir)) {
          const k = n.toLowerCase();
          l.set(k, [...(l.get(k) ?? []), n]);
        }
      } catch {
        // absent: no conflicts under it
      }
      listings.set(dir, l);
    }
    return l;
  };
  const out = new Map<string, { path: string; reason: ConflictReason }[]>();
  const add = (item: string, path: string, reason: ConflictReason) => out.set(item, [...(out.get(item) ?? []), { path, reason }]);
  for (const e of exp.entries) {
    if (e.renamed) add(e.item, e.source, "windows-name");
    if (e.kind === "dir") continue;
    const dir = dirname(e.target);
    const name = e.target.slice(dir.length + 1);
    const same = listing(dir).get(name.toLowerCase());
    if (!same) continue;
    if (same.includes(name)) add(e.item, e.target, "exists");
    else add(e.item, e.target, "case-collision");
  }
  return out;
}
