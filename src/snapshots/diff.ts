/** The files changed between two snapshot trees (added, removed, changed), by type, size, mode, mtime and link target. */
import { lstatSync, readdirSync, readlinkSync, type Stats } from "node:fs";
import { join } from "node:path";

export interface TreeChange {
  path: string;
  change: "added" | "removed" | "changed";
}

function sig(st: Stats, full: string): string {
  const type = st.isDirectory() ? "d" : st.isSymbolicLink() ? `l:${readlinkSync(full)}` : st.isFile() ? "f" : "o";
  return `${type}|${st.mode}|${st.isDirectory() ? 0 : st.size}|${st.isDirectory() ? 0 : st.mtimeMs}`;
}

function walk(root: string, limit: number): Map<string, string> {
  const out = new Map<string, string>();
  const stack = [""];
  while (stack.length && out.size < limit) {
    const rel = stack.pop()!;
    let entries: string[];
    try {
      entries = readdirSync(join(root, rel));
    } catch {
      continue;
    }
    for (const name of entries) {
      const r = rel ? `${rel}/${name}` : name;
      if (r === ".snapshots") continue;
      const full = join(root, r);
      const st = lstatSync(full);
      out.set(r, sig(st, full));
      if (st.isDirectory()) stack.push(r);
    }
  }
  return out;
}

export function diffTrees(a: string, b: string, limit = 1_000_000): { changes: TreeChange[]; truncated: boolean } {
  const ma = walk(a, limit);
  const mb = walk(b, limit);
  const changes: TreeChange[] = [];
  for (const [p, s] of mb) {
    const before = ma.get(p);
    if (before === undefined) changes.push({ path: "/" + p, change: "added" });
    else if (before !== s && !s.startsWith("d|")) changes.push({ path: "/" + p, change: "changed" });
  }
  for (const p of ma.keys()) if (!mb.has(p)) changes.push({ path: "/" + p, change: "removed" });
  changes.sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0));
  return { changes, truncated: ma.size >= limit || mb.size >= limit };
}
