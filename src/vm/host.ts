/** Small facts about the host the VM module needs: CPU vendor, user and group ids. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { BuildOptions } from "./xml.ts";

function readOr(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

/** vendor_id of <root>/proc/cpuinfo. */
export function cpuVendor(root: string): NonNullable<BuildOptions["cpuVendor"]> {
  const m = /^vendor_id\s*:\s*(\S+)/m.exec(readOr(join(root, "proc", "cpuinfo")).slice(0, 65536));
  if (m?.[1] === "AuthenticAMD") return "amd";
  if (m?.[1] === "GenuineIntel") return "intel";
  return "other";
}

/** Numeric id of a name in an /etc/passwd- or /etc/group-style file (third field), or null. */
export function idOf(file: string, name: string): number | null {
  for (const line of readOr(file).split("\n")) {
    const f = line.split(":");
    if (f[0] === name && f[2] !== undefined && /^\d+$/.test(f[2])) return Number(f[2]);
  }
  return null;
}
