import { HardwareService, hardwareSettings } from "../hardware/service.ts";
import type { HardwareReport } from "../hardware/model.ts";
import { configFrom, JSON_FLAG, printJson, UsageError, type Command } from "./command.ts";

export function formatHardware(r: HardwareReport): string {
  const out: string[] = [];
  out.push(`CPU:      ${r.cpu.model ?? r.cpu.vendor} — ${r.cpu.reason}`);
  out.push(`Kernel:   ${r.kernel.release ?? "unknown"}; firmware ${r.platform.firmware.toUpperCase()}; chassis ${r.platform.chassis}`);
  out.push(`IOMMU:    ${r.iommu.state} — ${r.iommu.reason}`);
  if (r.iommu.recommendedParams.length) out.push(`          add to the kernel command line: ${r.iommu.recommendedParams.join(" ")}`);
  out.push(`Modules:  vfio_pci ${r.modules.vfioPci ? "loaded" : "not loaded"}, vendor_reset ${r.modules.vendorReset ? "loaded" : "not loaded"}`);
  out.push(`Groups:   ${r.groups.length}`);
  for (const g of r.groups) out.push(`  group ${g.id}${g.type ? ` (${g.type})` : ""}: ${g.devices.join(" ")}`);
  out.push("GPUs:");
  if (!r.gpus.length) out.push("  none");
  for (const g of r.gpus) {
    out.push(`  ${g.address} ${g.name} [${g.vendorId ?? "????"}:${g.deviceId ?? "????"}] driver ${g.driver ?? "none"}`);
    out.push(`    role ${g.role}: ${g.roleReason}`);
    out.push(`    functions: ${g.functions.map((f) => `${f.address} (${f.kind})`).join(", ")}; vfio ids ${g.vfioIds.join(",")}`);
    out.push(`    isolation: ${g.isolationReason}`);
    if (g.resetBug.affected) out.push(`    reset bug: ${g.resetBug.reason}`);
    for (const w of g.warnings) if (w !== g.resetBug.reason) out.push(`    warning: ${w}`);
  }
  for (const w of r.warnings) out.push(`warning: ${w}`);
  return out.join("\n") + "\n";
}

export const hardwareCommand: Command = {
  name: "hardware",
  summary: "Detect CPU, IOMMU, IOMMU groups and GPUs, and judge them for GPU passthrough.",
  usage: "hardware detect [--root DIR] [--json]",
  help: ["Options:", "  --root DIR   root holding sys/ and proc/ (default /)", "  --json       print the report as JSON"].join("\n"),
  flags: { ...JSON_FLAG, root: { type: "string" } },
  positionals: true,
  async run(args, ctx) {
    const [sub, ...extra] = args.positionals;
    if (sub !== "detect") throw new UsageError(`hardware: unknown or missing subcommand ${JSON.stringify(sub ?? "")} (expected: detect)`);
    if (extra.length) throw new UsageError(`hardware detect: unexpected argument ${JSON.stringify(extra[0])}`);
    const config = configFrom(args, ctx, { root: "root" });
    const report = new HardwareService(hardwareSettings(config)).detect();
    if (args.values.json) printJson(ctx, report);
    else ctx.stdout(formatHardware(report));
    return 0;
  },
};
