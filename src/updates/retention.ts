/** Retention inside the appliance (no timer to forget): the last N update pairs, then the free-space floor. */
import type { Logger } from "../log.ts";
import type { SnapshotService } from "../snapshots/service.ts";
import { freeMb } from "./preflight.ts";

export async function pruneSnapshots(o: { snapshots: SnapshotService; root: string; keepPairs: number; minFreeMb: number; protect: number[]; log: Logger }): Promise<number[]> {
  const live = o.snapshots.list(o.root);
  const posts = live.filter((s) => s.kind === "post" && s.preId !== null);
  const pairs = posts.map((post) => ({ post, pre: live.find((s) => s.id === post.preId) })).filter((p) => p.pre !== undefined);
  const deleted: number[] = [];
  const drop = async (p: (typeof pairs)[number]) => {
    for (const s of [p.post, p.pre!]) {
      if (o.protect.includes(s.id)) continue;
      try {
        await o.snapshots.delete(s.id);
        deleted.push(s.id);
      } catch (err) {
        o.log.warn("snapshot not pruned", { snapshot: s.id, error: (err as Error).message });
      }
    }
  };
  const excess = pairs.length - o.keepPairs;
  for (let i = 0; i < excess; i++) await drop(pairs[i]!);
  for (let i = Math.max(0, excess); i < pairs.length - 1 && freeMb(o.root) < o.minFreeMb; i++) await drop(pairs[i]!);
  if (deleted.length) o.log.info("old snapshots deleted", { root: o.root, snapshots: deleted });
  return deleted;
}
