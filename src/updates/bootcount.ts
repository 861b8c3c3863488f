/**
 * Boot counting, so a kernel or root that cannot finish booting is noticed by
 * the boot loader itself: systemd-boot's boot assessment (`+N` tries in the
 * entry's file name, `+LEFT-DONE` after tries) or GRUB's grubenv
 * (boot_counter / boot_success, as Fedora's greenboot uses them).
 */
import { existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface BootCounter {
  loader: "systemd-boot" | "grub";
  /** The entry file (systemd-boot) or the grubenv path. */
  file: string;
  left: number;
  done: number;
}

const COUNTED = /^(.*?)\+(\d+)(?:-(\d+))?\.conf$/;

function entriesDir(bootDir: string): string {
  return join(bootDir, "loader", "entries");
}

function grubenvPath(bootDir: string): string {
  return join(bootDir, "grub", "grubenv");
}

export function readGrubenv(path: string): Map<string, string> {
  const vars = new Map<string, string>();
  for (const line of readFileSync(path, "utf8").split("\n")) {
    if (line.startsWith("#") || !line.includes("=")) continue;
    const i = line.indexOf("=");
    vars.set(line.slice(0, i), line.slice(i + 1));
  }
  return vars;
}

/** grubenv is a 1024-byte block: a header, key=value lines, '#' padding. */
export function writeGrubenv(path: string, vars: Map<string, string>): void {
  let body = "# GRUB Environment Block\n";
  for (const [k, v] of vars) body += `${k}=${v}\n`;
  if (body.length > 1024) throw new Error(`grubenv would exceed 1024 bytes`);
  writeFileSync(path, body + "#".repeat(1024 - body.length));
}

/** The default systemd-boot entry (loader.conf `default`, else the only/first entry), without its counter. */
function defaultEntry(bootDir: string): string | null {
  const dir = entriesDir(bootDir);
  if (!existsSync(dir)) return null;
  const entries = readdirSync(dir).filter((f) => f.endsWith(".conf")).sort();
  if (entries.length === 0) return null;
  const loader = join(bootDir, "loader", "loader.conf");
  let wanted: string | null = null;
  if (existsSync(loader)) wanted = /^\s*default\s+(\S+)/m.exec(readFileSync(loader, "utf8"))?.[1] ?? null;
  const id = (f: string) => (COUNTED.exec(f)?.[1] ?? f.replace(/\.conf$/, "")) + ".conf";
  if (wanted) {
    const w = wanted.endsWith(".conf") ? wanted : `${wanted}.conf`;
    const hit = entries.find((f) => id(f) === w);
    if (hit) return hit;
  }
  return entries[0]!;
}

/** Arms `tries` boot attempts on the default entry; null when no supported boot loader is found. */
export function armBootCounting(bootDir: string, tries: number): BootCounter | null {
  const entry = defaultEntry(bootDir);
  if (entry) {
    const base = COUNTED.exec(entry)?.[1] ?? entry.replace(/\.conf$/, "");
    const name = `${base}+${tries}.conf`;
    renameSync(join(entriesDir(bootDir), entry), join(entriesDir(bootDir), name));
    return { loader: "systemd-boot", file: join(entriesDir(bootDir), name), left: tries, done: 0 };
  }
  const env = grubenvPath(bootDir);
  if (existsSync(env)) {
    const vars = readGrubenv(env);
    vars.set("boot_success", "0");
    vars.set("boot_counter", String(tries));
    writeGrubenv(env, vars);
    return { loader: "grub", file: env, left: tries, done: 0 };
  }
  return null;
}

/** The counter as the boot loader left it this boot, or null when none is armed. */
export function readBootCounter(bootDir: string): BootCounter | null {
  const dir = entriesDir(bootDir);
  if (existsSync(dir)) {
    for (const f of readdirSync(dir)) {
      const m = COUNTED.exec(f);
      if (m) return { loader: "systemd-boot", file: join(dir, f), left: Number(m[2]), done: Number(m[3] ?? 0) };
    }
  }
  const env = grubenvPath(bootDir);
  if (existsSync(env)) {
    const vars = readGrubenv(env);
    const left = vars.get("boot_counter");
    if (left !== undefined && vars.get("boot_success") !== "1") return { loader: "grub", file: env, left: Number(left), done: 0 };
  }
  return null;
}

/** Marks the boot good: the counter leaves the entry name (what systemd-bless-boot does), or boot_success=1. */
export function blessBoot(bootDir: string): BootCounter | null {
  const c = readBootCounter(bootDir);
  if (!c) return null;
  if (c.loader === "systemd-boot") {
    const name = c.file.split("/").pop()!;
    renameSync(c.file, join(entriesDir(bootDir), `${COUNTED.exec(name)![1]}.conf`));
  } else {
    const vars = readGrubenv(c.file);
    vars.set("boot_success", "1");
    vars.delete("boot_counter");
    writeGrubenv(c.file, vars);
  }
  return c;
}
