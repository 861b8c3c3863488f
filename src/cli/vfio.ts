import { openDatabase } from "../db/client.ts";
import { auditRepo, type AuditRepo } from "../db/repos/audit.ts";
import { AppError } from "../errors.ts";
import { HardwareService, hardwareSettings } from "../hardware/service.ts";
import type { VfioPlan } from "../vfio/model.ts";
import { VfioService, vfioSettings } from "../vfio/service.ts";
import { configFrom, JSON_FLAG, printJson, UsageError, type CliContext, type Command, type ParsedArgs } from "./command.ts";

const SUBCOMMANDS = ["plan", "apply", "rollback", "verify"] as const;

function formatPlan(p: VfioPlan): string {
  const out = [
    `GPU ${p.gpu} ${p.gpuName}: vfio-pci ids ${p.vfioIds.join(",")}`,
    `target ${p.targetRoot}: initramfs ${p.systems.initramfs.join(", ") || "none"}; boot ${p.systems.boot.join(", ") || "none"}; kernel ${p.systems.kernel ?? "unknown"}`,
    `kernel parameters: ${p.kernelParams.join(" ")}`,
    "",
  ];
  out.push(p.diff || "no changes: the configuration is already in place\n");
  if (p.commands.length) out.push("regeneration commands (run by `vfio apply --regenerate`):", ...p.commands.map((c) => `  ${c.argv.join(" ")}   # ${c.reason}`));
  for (const w of p.warnings) out.push(`warning: ${w}`);
  return out.join("\n") + "\n";
}

function requireGpu(args: ParsedArgs): string {
  const gpu = args.values.gpu;
  if (typeof gpu !== "string") throw new UsageError("vfio: --gpu ADDR is required");
  return gpu;
}

/** plan and verify read only: they get no database (nothing is created in the state dir). */
const NO_AUDIT = new Proxy({} as AuditRepo, {
  get() {
    throw new AppError("INTERNAL", "the audit log is not open for a read-only command");
  },
});

async function withService<T>(args: ParsedArgs, ctx: CliContext, writes: boolean, fn: (vfio: VfioService) => Promise<T> | T): Promise<T> {
  const config = configFrom(args, ctx, { root: "root", target: "targetRoot", "state-dir": "stateDir" });
  const hardware = new HardwareService(hardwareSettings(config));
  if (!writes) return await fn(new VfioService(vfioSettings(config), hardware, NO_AUDIT));
  const db = openDatabase(config.dbPath);
  try {
    return await fn(new VfioService(vfioSettings(config), hardware, auditRepo(db.db)));
  } finally {
    db.close();
  }
}

export const vfioCommand: Command = {
  name: "vfio",
  summary: "Configure the host for GPU passthrough: plan (diff), apply, rollback, verify.",
  usage: [
    "vfio plan --gpu ADDR [--acs-override] [--root DIR] [--target ROOT] [--json]",
    "       vfio apply --gpu ADDR [--acs-override] [--regenerate] [--root DIR] [--target ROOT] [--state-dir DIR] [--json]",
    "       vfio rollback [ID] [--target ROOT] [--state-dir DIR] [--json]",
    "       vfio verify --gpu ADDR [--root DIR] [--json]",
  ].join("\n"),
  help: [
    "Options:",
    "  --gpu ADDR        the GPU to give to the VM (e.g. 0000:01:00.0)",
    "  --acs-override    add pcie_acs_override=downstream,multifunction (weakens isolation; only when the group is not clean)",
    "  --regenerate      after writing, run the initramfs/boot loader commands listed in the plan",
    "  --root DIR        root holding sys/ and proc/ (default /)",
    "  --target ROOT     root whose /etc and /boot are edited (default /)",
    "  --state-dir DIR   state directory (database, backups)",
    "  --json            print JSON",
  ].join("\n"),
  flags: {
    ...JSON_FLAG,
    gpu: { type: "string" },
    "acs-override": { type: "boolean" },
    regenerate: { type: "boolean" },
    root: { type: "string" },
    target: { type: "string" },
    "state-dir": { type: "string" },
  },
  positionals: true,
  async run(args, ctx) {
    const [sub, ...rest] = args.positionals;
    if (!sub || !(SUBCOMMANDS as readonly string[]).includes(sub))
      throw new UsageError(`vfio: unknown or missing subcommand ${JSON.stringify(sub ?? "")} (expected: ${SUBCOMMANDS.join(", ")})`);
    if (rest.length > (sub === "rollback" ? 1 : 0)) throw new UsageError(`vfio ${sub}: unexpected argument ${JSON.stringify(rest[rest.length - 1])}`);
    if (sub !== "apply" && args.values.regenerate) throw new UsageError(`vfio ${sub}: --regenerate only applies to apply`);
    const json = args.values.json === true;
    const acsOverride = args.values["acs-override"] === true;
    if (sub === "plan") {
      const gpu = requireGpu(args);
      const plan = await withService(args, ctx, false, (v) => v.plan({ gpu, acsOverride }));
      if (json) printJson(ctx, plan);
      else ctx.stdout(formatPlan(plan));
      return 0;
    }
    if (sub === "apply") {
      const gpu = requireGpu(args);
      const r = await withService(args, ctx, true, (v) => v.apply({ gpu, acsOverride, regenerate: args.values.regenerate === true }, "cli"));
      if (json) printJson(ctx, r);
      else {
        ctx.stdout(r.changed ? `applied (audit #${r.auditId}), backup in ${r.backupDir}:\n` : `nothing to change (audit #${r.auditId})\n`);
        for (const f of r.files) ctx.stdout(`  ${f.action} ${f.path}\n`);
        for (const c of r.commands) ctx.stdout(`  ${c.ok ? "ran" : "FAILED"} ${c.argv.join(" ")}\n`);
        for (const w of r.warnings) ctx.stdout(`warning: ${w}\n`);
      }
      return r.commands.every((c) => c.ok) ? 0 : 1;
    }
    if (sub === "rollback") {
      let id: number | undefined;
      if (rest[0] !== undefined) {
        if (!/^\d{1,15}$/.test(rest[0]) || Number(rest[0]) < 1) throw new UsageError(`vfio rollback: ID must be a positive integer, got ${JSON.stringify(rest[0])}`);
        id = Number(rest[0]);
      }
      const r = await withService(args, ctx, true, (v) => v.rollback(id, "cli"));
      if (json) printJson(ctx, r);
      else {
        ctx.stdout(`rolled back apply #${r.rolledBack} (audit #${r.auditId}):\n`);
        for (const f of r.files) ctx.stdout(`  ${f.restored === "removed" ? "removed" : "restored"} ${f.path}\n`);
      }
      return 0;
    }
    const gpu = requireGpu(args);
    const report = await withService(args, ctx, false, (v) => v.verify(gpu));
    if (json) printJson(ctx, report);
    else {
      for (const c of report.checks) ctx.stdout(`[${c.ok ? "ok  " : "FAIL"}] ${c.name.padEnd(22)} ${c.detail}\n`);
      ctx.stdout(report.ok ? "GPU is ready for passthrough\n" : "not ready: see the failed checks\n");
    }
    return report.ok ? 0 : 1;
  },
};
