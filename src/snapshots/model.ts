import { z } from "zod";
import { SNAPSHOT_KINDS } from "../db/schema.ts";

export const BootFileView = z.object({ path: z.string(), sha256: z.string(), size: z.number().int() });

export const SnapshotView = z.object({
  id: z.number().int(),
  backend: z.string(),
  /** The backend's number (snapper's number, the .snapshots/N directory). */
  ref: z.string().nullable(),
  kind: z.enum(SNAPSHOT_KINDS),
  label: z.string(),
  createdAt: z.string(),
  root: z.string(),
  /** The snapshot's tree. */
  path: z.string().nullable(),
  updateId: z.number().int().nullable(),
  preId: z.number().int().nullable(),
  /** /boot files kept with it (when /boot is outside the root subvolume). */
  bootFiles: z.array(BootFileView),
  deleted: z.boolean(),
});
export type SnapshotView = z.infer<typeof SnapshotView>;

export const SnapshotList = z.object({ backend: z.string().nullable(), snapshots: z.array(SnapshotView) });

export const SnapshotCreate = z.strictObject({ description: z.string().min(1).max(200).default("manual snapshot") });
export const SnapshotIdParams = z.object({ id: z.coerce.number().int().positive() });
export const SnapshotDiffQuery = z.object({ from: z.coerce.number().int().positive(), to: z.coerce.number().int().positive() });
export const SnapshotDiff = z.object({
  from: z.number().int(),
  to: z.number().int(),
  changes: z.array(z.object({ path: z.string(), change: z.enum(["added", "removed", "changed"]) })),
  truncated: z.boolean(),
});
