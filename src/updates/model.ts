import { z } from "zod";
import { SnapshotView } from "../snapshots/model.ts";

export const CheckResultView = z.object({
  name: z.string(),
  required: z.boolean(),
  status: z.enum(["passed", "failed", "skipped"]),
  detail: z.string(),
});

export const PackageChangeView = z.object({ name: z.string(), from: z.string().nullable(), to: z.string().nullable() });

export const UpdateView = z.object({
  id: z.number().int(),
  status: z.enum(["running", "succeeded", "failed", "rolled_back"]),
  /** ok: updated and healthy; rolled-back: the next boot mounts the pre snapshot; failed: not updated (or not rolled back). Null while running. */
  verdict: z.enum(["ok", "rolled-back", "failed"]).nullable(),
  startedAt: z.string(),
  finishedAt: z.string().nullable(),
  root: z.string(),
  command: z.string(),
  packages: z.array(PackageChangeView),
  pre: SnapshotView.nullable(),
  post: SnapshotView.nullable(),
  /** After a rollback: the tree the next boot mounts as root. */
  nextBoot: z.string().nullable(),
  checks: z.array(CheckResultView),
  /** What happened, in words. */
  reason: z.string().nullable(),
  /** What the snapshots of this root cover and what stays out of rollback (and how). */
  coverage: z
    .object({
      root: z.string(),
      boot: z.enum(["kept with each snapshot (outside the root subvolume)", "inside the root snapshot"]),
      keptOut: z.array(z.object({ path: z.string(), how: z.enum(["separate subvolume", "carried over", "absent"]) })),
    })
    .nullable(),
  bootState: z.enum(["none", "pending", "verified", "failed"]),
  bootFailures: z.number().int(),
  log: z.string().optional(),
});
export type UpdateView = z.infer<typeof UpdateView>;

export const UpdateList = z.object({ updates: z.array(UpdateView) });
export const UpdateIdParams = z.object({ id: z.coerce.number().int().positive() });
export const UpdateStart = z.strictObject({
  /** Extra required check commands (sh -c). */
  checks: z.array(z.string().min(1).max(4096)).max(32).default([]),
  /** Schedule a reboot after a rollback (default: as configured). */
  reboot: z.boolean().optional(),
});
export const UpdateStarted = z.object({ id: z.number().int(), events: z.string() });
export const RollbackRequest = z.strictObject({ reboot: z.boolean().optional() }).default({});
export const CheckReport = z.object({ root: z.string(), checks: z.array(CheckResultView), healthy: z.boolean(), recovered: z.array(UpdateView) });

export type UpdateEvent =
  | { type: "phase"; phase: string; message: string }
  | { type: "output"; line: string }
  | { type: "progress"; total: number; done: number; action: string | null; pkg: string | null }
  | { type: "check"; name: string; status: string; detail: string; required: boolean }
  | { type: "done"; update: UpdateView };
