/** VFIO configuration: plan, apply, rollback and verify shapes (CLI --json and API). */
import { z } from "zod";
import { PciAddress } from "../hardware/model.ts";

export const VfioPlanRequest = z
  .strictObject({
    gpu: PciAddress,
    /** Add pcie_acs_override=downstream,multifunction (only when asked: it weakens isolation). */
    acsOverride: z.boolean().default(false),
  })
  .meta({ id: "VfioPlanRequest" });
export type VfioPlanRequest = z.input<typeof VfioPlanRequest>;

export const VfioPlanQuery = z.strictObject({
  gpu: PciAddress,
  acsOverride: z
    .enum(["true", "false", "1", "0"])
    .optional()
    .transform((v) => v === "true" || v === "1"),
});

export const VfioApplyRequest = VfioPlanRequest.extend({
  /** Run the initramfs/boot loader regeneration commands after writing. */
  regenerate: z.boolean().default(false),
}).meta({ id: "VfioApplyRequest" });
export type VfioApplyRequest = z.input<typeof VfioApplyRequest>;

export const VfioRollbackRequest = z
  .strictObject({ id: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER).optional() })
  .meta({ id: "VfioRollbackRequest" });

export const PlannedCommand = z.object({ argv: z.array(z.string()), reason: z.string() });
export type PlannedCommand = z.infer<typeof PlannedCommand>;

export const PlannedChange = z.object({
  path: z.string(),
  action: z.enum(["create", "modify", "delete"]),
  reason: z.string(),
  diff: z.string(),
});

export const VfioPlan = z
  .object({
    gpu: z.string(),
    gpuName: z.string(),
    vfioIds: z.array(z.string()),
    /** Ids already passed through on this system (modprobe.d, kernel command lines) kept beside the GPU's, with where each was found. */
    mergedIds: z.array(z.object({ id: z.string(), source: z.string() })),
    /** Parameters the plan removes (invalid values), with the file and the reason. */
    removedParams: z.array(z.object({ param: z.string(), path: z.string(), reason: z.string() })),
    /** With the ACS override: whether the target kernel honours it, and which kernel to install if not. */
    acsOverrideKernel: z.object({ kernel: z.string().nullable(), honoured: z.boolean(), install: z.string().nullable(), advice: z.string() }).nullable(),
    targetRoot: z.string(),
    systems: z.object({
      initramfs: z.array(z.enum(["mkinitcpio", "dracut", "initramfs-tools"])),
      boot: z.array(z.enum(["grub", "systemd-boot", "uki"])),
      kernel: z.string().nullable(),
    }),
    kernelParams: z.array(z.string()),
    modules: z.array(z.string()),
    changes: z.array(PlannedChange),
    /** The whole change set as one unified diff ("" when nothing would change). */
    diff: z.string(),
    commands: z.array(PlannedCommand),
    warnings: z.array(z.string()),
  })
  .meta({ id: "VfioPlan" });
export type VfioPlan = z.infer<typeof VfioPlan>;

export const CommandResult = z.object({
  argv: z.array(z.string()),
  ok: z.boolean(),
  exitCode: z.number().int().nullable(),
  output: z.string(),
});
export type CommandResult = z.infer<typeof CommandResult>;

export const VfioApplyResult = z
  .object({
    auditId: z.number().int(),
    changed: z.boolean(),
    files: z.array(z.object({ path: z.string(), action: z.enum(["create", "modify", "delete"]) })),
    backupDir: z.string().nullable(),
    commands: z.array(CommandResult),
    warnings: z.array(z.string()),
  })
  .meta({ id: "VfioApplyResult" });
export type VfioApplyResult = z.infer<typeof VfioApplyResult>;

export const VfioRollbackResult = z
  .object({
    auditId: z.number().int(),
    rolledBack: z.number().int(),
    files: z.array(z.object({ path: z.string(), restored: z.enum(["previous-content", "removed"]) })),
  })
  .meta({ id: "VfioRollbackResult" });
export type VfioRollbackResult = z.infer<typeof VfioRollbackResult>;

export const VerifyCheck = z.object({ name: z.string(), ok: z.boolean(), detail: z.string() });
export const VfioVerifyReport = z
  .object({ gpu: z.string(), ok: z.boolean(), checks: z.array(VerifyCheck) })
  .meta({ id: "VfioVerifyReport" });
export type VfioVerifyReport = z.infer<typeof VfioVerifyReport>;

export const VfioVerifyQuery = z.strictObject({ gpu: PciAddress });
