/**
 * Data migration: the shapes of plans, progress and reports (the API contract, zod schemas).
 */
import { z } from "zod";

export const FIDELITIES = ["exact", "translated", "reinstall", "cannot"] as const;
export const Fidelity = z.enum(FIDELITIES);
export type Fidelity = z.infer<typeof Fidelity>;

export const CATEGORIES = ["documents", "browser", "secrets", "editor", "git", "ssh", "fonts", "config"] as const;
export const Category = z.enum(CATEGORIES);
export type Category = z.infer<typeof Category>;

export const ConflictPolicy = z.enum(["skip", "rename", "newer"]);
export type ConflictPolicy = z.infer<typeof ConflictPolicy>;

export const MigrationStatus = z.enum(["planned", "running", "interrupted", "done", "failed", "undone"]);
export type MigrationStatus = z.infer<typeof MigrationStatus>;

export const SourceInfo = z.object({
  input: z.string(),
  kind: z.enum(["directory", "ntfs", "vm"]),
  mountedBy: z.enum(["ntfs3", "ntfs-3g"]).nullable(),
  root: z.string(),
  bitlocker: z.boolean(),
  hibernated: z.boolean(),
  dirty: z.boolean(),
  readOnly: z.literal(true),
  warnings: z.array(z.string()),
});
export type SourceInfo = z.infer<typeof SourceInfo>;

export const Profile = z.object({
  name: z.string(),
  path: z.string(),
  linuxUser: z.string().nullable(),
  target: z.string(),
  skipped: z.string().nullable(),
});
export type Profile = z.infer<typeof Profile>;

export const ConflictReason = z.enum(["exists", "case-collision", "windows-name"]);
export type ConflictReason = z.infer<typeof ConflictReason>;

export const LivePath = z.object({ vm: z.string().nullable(), command: z.string(), hint: z.string() });
export type LivePath = z.infer<typeof LivePath>;

export const Reinstall = z.object({ kind: z.enum(["vscode-extension", "chromium-extension"]), ids: z.array(z.string()) });
export type Reinstall = z.infer<typeof Reinstall>;

export const PlanItem = z.object({
  id: z.string(),
  profile: z.string(),
  rule: z.string(),
  category: Category,
  label: z.string(),
  source: z.string(),
  target: z.string(),
  files: z.number().int(),
  bytes: z.number().int(),
  fidelity: Fidelity,
  why: z.string().nullable(),
  transform: z.string().nullable(),
  conflicts: z.object({
    count: z.number().int(),
    sample: z.array(z.object({ path: z.string(), reason: ConflictReason })),
  }),
  reinstall: Reinstall.nullable(),
  livePath: LivePath.nullable(),
  unreadable: z.number().int(),
});
export type PlanItem = z.infer<typeof PlanItem>;

const FidelityCounts = z.object({ exact: z.number().int(), translated: z.number().int(), reinstall: z.number().int(), cannot: z.number().int() });

export const Plan = z.object({
  id: z.number().int(),
  createdAt: z.string(),
  status: MigrationStatus,
  source: SourceInfo,
  profiles: z.array(Profile),
  policy: ConflictPolicy,
  items: z.array(PlanItem),
  totals: z.object({
    items: z.number().int(),
    files: z.number().int(),
    bytes: z.number().int(),
    conflicts: z.number().int(),
    byFidelity: FidelityCounts,
    byCategory: z.record(z.string(), z.object({ files: z.number().int(), bytes: z.number().int() })),
  }),
  estimateSeconds: z.number(),
  warnings: z.array(z.string()),
});
export type Plan = z.infer<typeof Plan>;

export const PHASES = ["mounting", "scanning", "copying", "verifying", "finishing", "done", "failed"] as const;
export const Progress = z.object({
  id: z.number().int(),
  phase: z.enum(PHASES),
  filesDone: z.number().int(),
  filesTotal: z.number().int(),
  bytesDone: z.number().int(),
  bytesTotal: z.number().int(),
  current: z.string().nullable(),
  etaSeconds: z.number().nullable(),
  bytesPerSecond: z.number().nullable(),
});
export type Progress = z.infer<typeof Progress>;

const PathError = z.object({ path: z.string(), error: z.string() });

export const Report = z.object({
  id: z.number().int(),
  status: MigrationStatus,
  startedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
  copied: z.object({ files: z.number().int(), bytes: z.number().int() }),
  verified: z.number().int(),
  skipped: z.object({ files: z.number().int(), reasons: z.record(z.string(), z.number().int()) }),
  renamed: z.array(z.object({ from: z.string(), to: z.string(), reason: z.string() })),
  failed: z.array(PathError),
  unreadable: z.array(PathError),
  notFollowed: z.array(z.object({ path: z.string(), kind: z.enum(["junction", "symlink", "reparse"]) })),
  cannotMove: z.array(z.object({ item: z.string(), label: z.string(), why: z.string(), livePath: LivePath.nullable() })),
  reinstall: z.array(z.object({ item: z.string(), kind: z.string(), ids: z.array(z.string()) })),
  /**
   * What NTFS kept beside the data, item by item: Windows attributes (read-only, hidden, system;
   * written as the user.ntfs.attrib extended attribute, Linux has no such flags: a hidden file
   * shows in file managers) and named data streams (alternate data streams, as
   * user.ntfs.ads.<name>); each says whether it was kept, and if not, why.
   */
  windowsMetadata: z
    .object({
      files: z.number().int(),
      lost: z.number().int(),
      items: z.array(
        z.object({
          path: z.string(),
          target: z.string(),
          attributes: z.array(z.string()),
          attributesKept: z.boolean().nullable(),
          why: z.string().nullable(),
          streams: z.array(z.object({ name: z.string(), size: z.number().int(), kept: z.boolean(), why: z.string().nullable() })),
        }),
      ),
    })
    .optional(),
  words: z.string(),
});
export type Report = z.infer<typeof Report>;

export const MigrationSummary = z.object({
  id: z.number().int(),
  status: MigrationStatus,
  source: z.string(),
  profiles: z.array(z.string()),
  createdAt: z.string(),
  startedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
  files: z.number().int(),
  bytes: z.number().int(),
});
export type MigrationSummary = z.infer<typeof MigrationSummary>;

export const UndoResult = z.object({
  id: z.number().int(),
  removed: z.number().int(),
  restored: z.number().int(),
  refused: z.array(z.object({ path: z.string(), reason: z.enum(["changed", "missing"]) })),
  status: MigrationStatus,
});
export type UndoResult = z.infer<typeof UndoResult>;

/** A BitLocker recovery key: 8 groups of 6 digits. */
const RecoveryKey = z.string().regex(/^\d{6}(-\d{6}){7}$/, "a BitLocker recovery key: 8 groups of 6 digits separated by dashes");

export const InspectRequest = z.object({ source: z.string().min(1).max(4096), recoveryKey: RecoveryKey.optional() }).strict();
export const InspectResult = z.object({ source: SourceInfo, profiles: z.array(Profile) });

export const PlanRequest = z
  .object({
    source: z.string().min(1).max(4096),
    user: z.string().min(1).max(256).optional(),
    target: z.string().min(1).max(4096).optional(),
    policy: ConflictPolicy.optional(),
    recoveryKey: RecoveryKey.optional(),
    acceptUnsafeSource: z.boolean().optional(),
  })
  .strict();
export type PlanRequest = z.infer<typeof PlanRequest>;

/** The live path: a plan of what a running VM's guest agent serves (pulled into the state dir first). */
export const LivePlanRequest = z
  .object({
    fromVm: z.string().min(1).max(64),
    user: z.string().min(1).max(256).optional(),
    target: z.string().min(1).max(4096).optional(),
    policy: ConflictPolicy.optional(),
  })
  .strict();
export type LivePlanRequest = z.infer<typeof LivePlanRequest>;

export const RunRequest = z.object({ policy: ConflictPolicy.optional(), acceptUnsafeSource: z.boolean().optional(), recoveryKey: RecoveryKey.optional() }).strict();
export type RunRequest = z.infer<typeof RunRequest>;

export const RunStarted = z.object({ id: z.number().int(), events: z.string() });
export const MigrationIdParams = z.object({ id: z.coerce.number().int().min(1) });
export const MigrationList = z.object({ migrations: z.array(MigrationSummary) });
