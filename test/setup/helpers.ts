/** Machines for the setup flow: fixture sysfs trees plus memory, CPU topology, a monitor's EDID and a boot id. */
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fixtureRoot } from "../fixtures/sysfs/build.ts";

/** A 128-byte EDID whose preferred (first detailed) timing is width×height. */
export function edid(width: number, height: number): Buffer {
  const b = Buffer.alloc(128);
  Buffer.from([0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00]).copy(b, 0);
  b.writeUInt16LE(24150, 54); // pixel clock, 10 kHz units
  b[56] = width & 0xff;
  b[58] = (width >> 4) & 0xf0;
  b[59] = height & 0xff;
  b[61] = (height >> 4) & 0xf0;
  let sum = 0;
  for (let i = 0; i < 127; i++) sum += b[i]!;
  b[127] = (256 - (sum % 256)) % 256;
  return b;
}

export interface MachineExtras {
  memTotalKiB?: number;
  /** Logical CPUs as [core of cpu0, core of cpu1, ...] with SMT siblings sharing a core. */
  cores?: number[][];
  smt?: boolean;
  monitor?: { connector: string; width: number; height: number } | null;
  bootId?: string;
}

const put = (path: string, data: string | Buffer) => {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, data);
};

/** Copies a fixture machine to `dest` and adds the extras. */
export function machine(fixture: string, dest: string, x: MachineExtras = {}): string {
  mkdirSync(dirname(dest), { recursive: true });
  execFileSync("cp", ["-a", fixtureRoot(fixture), dest]);
  put(join(dest, "proc", "meminfo"), `MemTotal:       ${x.memTotalKiB ?? 32 * 1024 * 1024} kB\nMemFree:         1000000 kB\n`);
  const cores = x.cores ?? Array.from({ length: 8 }, (_, i) => [i, i + 8]);
  for (const siblings of cores)
    for (const cpu of siblings) put(join(dest, "sys", "devices", "system", "cpu", `cpu${cpu}`, "topology", "thread_siblings_list"), `${siblings.join(",")}\n`);
  put(join(dest, "sys", "devices", "system", "cpu", "smt", "active"), x.smt === false ? "0\n" : "1\n");
  const m = x.monitor === undefined ? { connector: "DP-1", width: 2560, height: 1440 } : x.monitor;
  if (m) {
    const dir = join(dest, "sys", "class", "drm", `card0-${m.connector}`);
    put(join(dir, "status"), "connected\n");
    put(join(dir, "edid"), edid(m.width, m.height));
    put(join(dest, "sys", "class", "drm", "card0-HDMI-A-1", "status"), "disconnected\n");
    put(join(dest, "sys", "class", "drm", "card0-HDMI-A-1", "edid"), "");
  }
  if (x.bootId) put(join(dest, "proc", "sys", "kernel", "random", "boot_id"), `${x.bootId}\n`);
  return dest;
}
