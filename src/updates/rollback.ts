/**
 * Rolling back: a writable copy of the snapshot becomes the root the next
 * boot mounts, the /boot files kept with the snapshot are written back, and
 * what stays out of rollback (VM disks, /home, the appliance's state) is
 * carried into the copy when it is not a subvolume of its own.
 */
import { cpSync, existsSync, mkdirSync, rmSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import type { SnapshotRow } from "../db/repos/updates.ts";
import { SnapshotError, type SnapshotBackend } from "../snapshots/backend.ts";
import { matchKernels, restoreBootFiles } from "../snapshots/boot-files.ts";
import { SnapshotService } from "../snapshots/service.ts";
import type { CheckResult } from "./checks.ts";

export interface KeptPath {
  path: string;
  how: "separate subvolume" | "carried over" | "absent";
}

export interface RollbackOutcome {
  nextBoot: string;
  nextBootRef: string;
  kept: KeptPath[];
  boot: { restored: string[]; removed: string[] } | null;
  /** Kernels in /boot without their modules in the next root (should be empty). */
  orphanKernels: string[];
}

/** How each path that stays out of rollback is kept: a subvolume/mount of its own, or copied into the new root. */
export function planKeepOut(root: string, keepOut: string[]): KeptPath[] {
  const rootDev = statSync(root).dev;
  return keepOut.map((p) => {
    const src = join(root, p);
    if (!existsSync(src)) return { path: p, how: "absent" as const };
    return { path: p, how: statSync(src).dev !== rootDev ? ("separate subvolume" as const) : ("carried over" as const) };
  });
}

/** Copies the "carried over" paths from the running root into the next boot's tree (after the database has its last word). */
export function carryOver(root: string, nextBoot: string, kept: KeptPath[]): void {
  for (const k of kept) {
    if (k.how !== "carried over") continue;
    const dst = join(nextBoot, k.path);
    rmSync(dst, { recursive: true, force: true });
    mkdirSync(dirname(dst), { recursive: true });
    cpSync(join(root, k.path), dst, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
  }
}

/**
 * The next boot's root becomes a writable copy of the snapshot and /boot gets
 * the snapshot's files back. The kept-out paths are planned here and copied by
 * carryOver() once the caller has recorded the outcome.
 */
export async function rollbackTo(opts: {
  backend: SnapshotBackend;
  target: SnapshotRow;
  root: string;
  bootDir: string;
  keepOut: string[];
  description: string;
}): Promise<RollbackOutcome> {
  const { backend, target, root } = opts;
  if (!target.backendRef || target.deletedAt) throw new SnapshotError("SNAPSHOT_NOT_FOUND", `snapshot ${target.id} no longer exists`, { status: 404 });
  const manifest = SnapshotService.bootManifest(target);
  const kept = planKeepOut(root, opts.keepOut);
  const copy = await backend.makeNextBoot(target.backendRef, opts.description);
  let boot: RollbackOutcome["boot"] = null;
  if (target.bootStore) boot = restoreBootFiles(opts.bootDir, target.bootStore, manifest);
  const orphanKernels = matchKernels(copy.path, opts.bootDir).filter((m) => m.modules === null).map((m) => m.kernel);
  return { nextBoot: copy.path, nextBootRef: copy.ref, kept, boot, orphanKernels };
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
export const shortDate = (d: Date) => `${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]}`;

function keptWords(kept: KeptPath[]): string {
  const present = kept.filter((k) => k.how !== "absent");
  if (present.length === 0) return "";
  const ours: string[] = [];
  const other: string[] = [];
  if (present.some((k) => k.path.includes("libvirt"))) ours.push("VMs");
  if (present.some((k) => k.path === "/home")) ours.push("files");
  if (present.some((k) => k.path.includes("neuron-appliance"))) ours.push("settings");
  for (const k of present) if (!k.path.includes("libvirt") && k.path !== "/home" && !k.path.includes("neuron-appliance")) other.push(k.path);
  const and = (w: string[]) => (w.length <= 1 ? (w[0] ?? "") : `${w.slice(0, -1).join(", ")} and ${w.at(-1)}`);
  const words = [...(ours.length ? [`your ${and(ours)}`] : []), ...other];
  return `; ${and(words)} since then ${words.length === 1 && ours.length === 0 ? "was" : "were"} kept`;
}

function brokeWords(failed: CheckResult[]): string {
  const names = failed.map((f) => f.name);
  return names.length === 1 ? names[0]! : `${names.slice(0, -1).join(", ")} and ${names.at(-1)}`;
}

/** "The update of 143 packages on 3 Dec broke libvirtd (failed on 3 boots). Rolled back to snapshot 41; your VMs and files since then were kept." */
export function rollbackReason(r: {
  packages: number;
  startedAt: Date;
  cause: { failed: CheckResult[]; boots?: number } | { interrupted: true } | { pacmanFailed: string } | { manual: true };
  snapshotId: number;
  kept: KeptPath[];
  orphanKernels: string[];
}): string {
  const what = `The update of ${r.packages} package${r.packages === 1 ? "" : "s"} on ${shortDate(r.startedAt)}`;
  let first: string;
  if ("failed" in r.cause) {
    const detail = r.cause.failed.map((f) => `${f.name}: ${f.detail}`).join("; ");
    first = `${what} broke ${brokeWords(r.cause.failed)}${r.cause.boots ? ` (failed on ${r.cause.boots} boot${r.cause.boots === 1 ? "" : "s"})` : ""} — ${detail}.`;
  } else if ("interrupted" in r.cause) first = `${what} was interrupted before it finished (the appliance stopped during it).`;
  else if ("pacmanFailed" in r.cause) first = `${what} failed part way: ${r.cause.pacmanFailed}.`;
  else first = `${what} was rolled back by hand.`;
  const warn = r.orphanKernels.length ? ` Warning: /boot still has ${r.orphanKernels.join(", ")} without modules in the restored root.` : "";
  return `${first} Rolled back to snapshot ${r.snapshotId}${keptWords(r.kept)}.${warn}`;
}
