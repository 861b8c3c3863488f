/**
 * Sizing a VM from the host: memory and vCPUs leave the host its configured share, the CPU
 * topology follows the host's SMT (threads per core), pinning keeps sibling threads together,
 * and the resolution comes from the host monitor's EDID (sysfs DRM connectors).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { listDir } from "../hardware/sysfs.ts";
import { readText } from "../hardware/read.ts";
import type { Resolution } from "./model.ts";

export interface HostShare {
  /** Share of the host's memory kept for the host, percent. */
  memoryPercent: number;
  /** The host keeps at least this much memory, MiB. */
  memoryMinMiB: number;
  /** Share of the host's logical CPUs kept for the host, percent. */
  cpuPercent: number;
  /** The host keeps at least this many logical CPUs. */
  cpuMin: number;
}

export const DEFAULT_HOST_SHARE: HostShare = { memoryPercent: 25, memoryMinMiB: 4096, cpuPercent: 25, cpuMin: 2 };

export interface HostCpu {
  /** Logical CPU ids, grouped by core: [[0, 8], [1, 9], ...] (one entry per core). */
  cores: number[][];
  /** Threads per core (SMT): 2 with SMT on, else 1. */
  threadsPerCore: number;
}

/** MemTotal of <root>/proc/meminfo in MiB, or null. */
export function hostMemoryMiB(root: string): number | null {
  const m = /^MemTotal:\s+(\d+)\s*kB/m.exec(readText(join(root, "proc", "meminfo")) ?? "");
  return m ? Math.floor(Number(m[1]) / 1024) : null;
}

/** The host's cores and their threads from sysfs topology; /proc/cpuinfo's processor count when sysfs has none. */
export function hostCpu(root: string): HostCpu {
  const cpuDir = join(root, "sys", "devices", "system", "cpu");
  const l = listDir(cpuDir);
  const ids = l.ok ? l.names.flatMap((n) => (/^cpu\d+$/.test(n) ? [Number(n.slice(3))] : [])).sort((a, b) => a - b) : [];
  const byCore = new Map<string, number[]>();
  for (const id of ids) {
    const siblings = readText(join(cpuDir, `cpu${id}`, "topology", "thread_siblings_list"))?.trim();
    const key = siblings ? parseCpuList(siblings).join(",") : `${id}`;
    if (!byCore.has(key)) byCore.set(key, []);
    byCore.get(key)!.push(id);
  }
  let cores = [...byCore.values()];
  if (cores.length === 0) {
    const n = (readText(join(root, "proc", "cpuinfo"), 4 * 1024 * 1024) ?? "").split("\n").filter((x) => /^processor\s*:/.test(x)).length;
    cores = Array.from({ length: Math.max(1, n) }, (_, i) => [i]);
  }
  const smt = readText(join(cpuDir, "smt", "active"))?.trim();
  const maxThreads = Math.max(...cores.map((c) => c.length));
  const threadsPerCore = smt === "0" ? 1 : Math.min(2, maxThreads);
  return { cores: threadsPerCore === 1 ? cores.flatMap((c) => c.map((x) => [x])) : cores, threadsPerCore };
}

/** "0-3,8,10-11" → [0,1,2,3,8,10,11]. */
export function parseCpuList(text: string): number[] {
  const out: number[] = [];
  for (const part of text.split(",")) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) continue;
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    for (let i = a; i <= b && i - a < 4096; i++) out.push(i);
  }
  return out;
}

export interface VmSizing {
  memoryMiB: number;
  vcpus: number;
  topology: { sockets: number; cores: number; threads: number };
  /** Host CPU per vCPU (whole cores, the host keeping the first ones). */
  pinning: number[];
  hostMemoryMiB: number | null;
  hostCpus: number;
  warnings: string[];
}

/** Memory and vCPUs for the guest, leaving the host its share; explicit values win. */
export function sizeVm(root: string, share: HostShare, explicit: { memoryMiB?: number; vcpus?: number } = {}): VmSizing {
  const warnings: string[] = [];
  const total = hostMemoryMiB(root);
  let memoryMiB: number;
  if (explicit.memoryMiB !== undefined) memoryMiB = explicit.memoryMiB;
  else if (total === null) {
    memoryMiB = 8192;
    warnings.push("host memory unknown (/proc/meminfo unreadable): the VM gets 8 GiB");
  } else {
    const keep = Math.max(share.memoryMinMiB, Math.ceil((total * share.memoryPercent) / 100));
    memoryMiB = Math.floor((total - keep) / 1024) * 1024;
    if (memoryMiB < 4096) {
      warnings.push(`the host has ${total} MiB: leaving it ${keep} MiB gives the VM only ${Math.max(memoryMiB, 0)} MiB; the VM gets 4 GiB (Windows 11's minimum) and the host less than its share`);
      memoryMiB = 4096;
    }
  }
  const cpu = hostCpu(root);
  const logical = cpu.cores.reduce((n, c) => n + c.length, 0);
  const t = cpu.threadsPerCore;
  let vcpus: number;
  if (explicit.vcpus !== undefined) vcpus = explicit.vcpus;
  else {
    const keep = Math.max(share.cpuMin, Math.ceil((logical * share.cpuPercent) / 100));
    vcpus = Math.max(t, Math.floor((logical - keep) / t) * t);
    if (logical - keep < t) warnings.push(`the host has ${logical} logical CPUs: the VM gets ${vcpus} and the host less than its share`);
  }
  const threads = vcpus % t === 0 ? t : 1;
  const topology = { sockets: 1, cores: vcpus / threads, threads };
  // Pin to whole cores from the top, so the host keeps core 0 (interrupts, the desktop)
  const coresNeeded = Math.ceil(vcpus / threads);
  const chosen = cpu.cores.slice(Math.max(0, cpu.cores.length - coresNeeded));
  const pinning = chosen.flatMap((c) => c.slice(0, threads)).slice(0, vcpus);
  while (pinning.length < vcpus) pinning.push(pinning.length % Math.max(1, logical));
  return { memoryMiB, vcpus, topology, pinning, hostMemoryMiB: total, hostCpus: logical, warnings };
}

/** Preferred mode of an EDID block: the first detailed timing descriptor (bytes 54–71). */
export function edidPreferredMode(edid: Uint8Array): Resolution | null {
  if (edid.length < 128) return null;
  const header = [0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00];
  if (!header.every((b, i) => edid[i] === b)) return null;
  const d = 54;
  const clock = edid[d]! | (edid[d + 1]! << 8);
  if (clock === 0) return null; // a display descriptor, not a timing
  const width = edid[d + 2]! | ((edid[d + 4]! & 0xf0) << 4);
  const height = edid[d + 5]! | ((edid[d + 7]! & 0xf0) << 4);
  if (width < 640 || height < 480 || width > 7680 || height > 4320) return null;
  return { width, height };
}

export interface HostMonitor {
  connector: string;
  resolution: Resolution;
}

/** Connected monitors under <root>/sys/class/drm with a readable EDID, largest first. */
export function hostMonitors(root: string): HostMonitor[] {
  const dir = join(root, "sys", "class", "drm");
  const l = listDir(dir);
  if (!l.ok) return [];
  const out: HostMonitor[] = [];
  for (const name of l.names.filter((n) => /^card\d+-/.test(n)).sort()) {
    if (readText(join(dir, name, "status"))?.trim() !== "connected") continue;
    let edid: Uint8Array;
    try {
      edid = readFileSync(join(dir, name, "edid"));
    } catch {
      continue;
    }
    const mode = edidPreferredMode(edid.subarray(0, 256));
    if (mode) out.push({ connector: name.replace(/^card\d+-/, ""), resolution: mode });
  }
  return out.sort((a, b) => b.resolution.width * b.resolution.height - a.resolution.width * a.resolution.height);
}
