import { QmpInputBackend } from "../input/qmp-backend.ts";
import { vmQmpSocket } from "../vm/qmp-socket.ts";
import { configFrom, JSON_FLAG, printJson, UsageError, type Command } from "./command.ts";

export const inputCommand: Command = {
  name: "input",
  summary: "Check that a VM's input can be driven: connect to its QMP socket and report what it accepts.",
  usage: "input probe (--qmp SOCKET | --vm NAME) [--json]",
  help: [
    "Options:",
    "  --qmp SOCKET  the VM's QMP unix socket (a QMP socket of its definition)",
    "  --vm NAME     a VM the appliance defined: its socket <qmpDir>/NAME.qmp",
    "  --json        print the result as JSON",
  ].join("\n"),
  flags: { ...JSON_FLAG, qmp: { type: "string" }, vm: { type: "string" } },
  positionals: true,
  async run(args, ctx) {
    const [sub, ...extra] = args.positionals;
    if (sub !== "probe" || extra.length > 0) throw new UsageError("input: expected `input probe --qmp SOCKET` or `input probe --vm NAME`");
    const { qmp, vm } = args.values;
    if ((typeof qmp === "string") === (typeof vm === "string")) throw new UsageError("input probe: give one of --qmp SOCKET or --vm NAME");
    const socketPath = typeof vm === "string" ? vmQmpSocket(configFrom(args, ctx).qmpDir, vm) : String(qmp);
    if (socketPath.length === 0) throw new UsageError("input probe: --qmp SOCKET must not be empty");
    const backend = new QmpInputBackend({ socketPath, reconnect: false });
    try {
      await backend.open();
      const result = { backend: backend.name, socket: socketPath, qemu: backend.qemuVersion, capabilities: backend.capabilities };
      if (args.values.json) printJson(ctx, result);
      else {
        ctx.stdout(`backend: ${result.backend} (QEMU ${result.qemu ?? "?"}) on ${socketPath}\n`);
        for (const [k, v] of Object.entries(result.capabilities)) ctx.stdout(`  ${k.padEnd(16)} ${v ? "yes" : "no"}\n`);
      }
      return 0;
    } finally {
      await backend.close();
    }
  },
};
