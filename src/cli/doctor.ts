import { loadNative } from "../core.ts";
import { runDoctor } from "../system/doctor.ts";
import { configFrom, JSON_FLAG, printJson, type Command } from "./command.ts";

const MARK = { ok: "ok  ", warn: "WARN", fail: "FAIL" } as const;

export const doctorCommand: Command = {
  name: "doctor",
  summary: "Report what this machine can do for the appliance (KVM, IOMMU, libvirt, QEMU, uinput, shm, native library, database).",
  usage: "doctor [--state-dir DIR] [--root DIR] [--strict] [--json]",
  help: [
    "Options:",
    "  --state-dir DIR  state directory whose database is checked",
    "  --root DIR       root holding sys/ and proc/ (default /)",
    "  --strict         exit 1 when any check fails",
    "  --json           print the report as JSON",
  ].join("\n"),
  flags: { ...JSON_FLAG, "state-dir": { type: "string" }, root: { type: "string" }, strict: { type: "boolean" } },
  async run(args, ctx) {
    const config = configFrom(args, ctx, { "state-dir": "stateDir", root: "root" });
    const { lib, state } = loadNative(config, ctx.embeddedNativeLib);
    lib?.close();
    const report = await runDoctor(config, state);
    if (args.values.json) printJson(ctx, report);
    else {
      for (const c of report.checks) ctx.stdout(`[${MARK[c.status]}] ${c.title.padEnd(32)} ${c.detail}\n`);
      ctx.stdout(`overall: ${report.status}\n`);
    }
    return args.values.strict && report.status === "fail" ? 1 : 0;
  },
};
