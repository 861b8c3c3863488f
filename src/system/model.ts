import { z } from "zod";

export const CheckStatus = z.enum(["ok", "warn", "fail"]);

export const DoctorCheck = z
  .object({
    id: z.string(),
    title: z.string(),
    status: CheckStatus,
    detail: z.string(),
  })
  .meta({ id: "DoctorCheck" });
export type DoctorCheck = z.infer<typeof DoctorCheck>;

export const DoctorReport = z
  .object({
    status: CheckStatus,
    checks: z.array(DoctorCheck),
  })
  .meta({ id: "DoctorReport" });
export type DoctorReport = z.infer<typeof DoctorReport>;

export const Health = z.object({ status: z.literal("ok") }).meta({ id: "Health" });

export const SystemInfo = z
  .object({
    version: z.string(),
    uptimeSeconds: z.number(),
    native: z.object({ loaded: z.boolean(), version: z.string().nullable(), path: z.string().nullable() }),
    db: z.object({ path: z.string(), schemaVersion: z.number().int() }),
    doctor: DoctorReport,
  })
  .meta({ id: "SystemInfo" });
export type SystemInfo = z.infer<typeof SystemInfo>;
