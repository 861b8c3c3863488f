/** argv → command. One line on error, non-zero exit: 2 for usage, 1 otherwise. */
import { AppError, describeError } from "../errors.ts";
import { APPLIANCE_VERSION } from "../version.ts";
import { helpText, parseCommandArgs, UsageError, type CliContext, type Command } from "./command.ts";

export const PROGRAM = "neuron-appliance";

export interface CommandEntry {
  name: string;
  /** The command's summary (the same as its Command's; a test keeps them equal). */
  summary: string;
  /** Imports the command's module only when it runs: `serve` loads none of the others. */
  load(): Promise<Command>;
}

export const COMMANDS: CommandEntry[] = [
  { name: "serve", summary: "Run the appliance service: management API (and, as they are enabled, the stream host).", load: async () => (await import("./serve.ts")).serveCommand },
  { name: "doctor", summary: "Report what this machine can do for the appliance (KVM, IOMMU, libvirt, QEMU, uinput, shm, native library, database).", load: async () => (await import("./doctor.ts")).doctorCommand },
  { name: "version", summary: "Print the appliance version and the native library it loads.", load: async () => (await import("./version.ts")).versionCommand },
  { name: "pair", summary: "Pair Moonlight and lumen/1 clients: enter the PIN a client shows, list or remove paired clients, grant or revoke what Moonlight clients may do.", load: async () => (await import("./pair.ts")).pairCommand },
  { name: "token", summary: "API tokens for TCP callers of the management API: create, list, revoke; one-time browser login codes.", load: async () => (await import("./token.ts")).tokenCommand },
  { name: "console", summary: "The web console: print a one-time login URL for this machine's browser.", load: async () => (await import("./console.ts")).consoleCommand },
  { name: "audit", summary: "The audit log: every mutating API call (who and what) and every change to the host system.", load: async () => (await import("./token.ts")).auditCommand },
  { name: "sessions", summary: "Moonlight stream sessions: list them, show one, end one, change one's bitrate, see why recent ones ended.", load: async () => (await import("./sessions.ts")).sessionsCommand },
  { name: "hardware", summary: "Detect CPU, IOMMU, IOMMU groups and GPUs, and judge them for GPU passthrough.", load: async () => (await import("./hardware.ts")).hardwareCommand },
  { name: "vfio", summary: "Configure the host for GPU passthrough: plan (diff), apply, rollback, verify.", load: async () => (await import("./vfio.ts")).vfioCommand },
  { name: "setup", summary: "Guided setup from a fresh install to Windows on the passed-through GPU: detect, VFIO, reboot, verify, VM, unattended install, app.", load: async () => (await import("./setup.ts")).setupCommand },
  { name: "capture", summary: "Frame capture and encoding: list frame sources, probe encoders, inspect a shared-memory source, run the demo pipeline.", load: async () => (await import("./capture.ts")).captureCommand },
  { name: "vm", summary: "Virtual machines: print a definition, define one in libvirt, list, show, start, stop, delete.", load: async () => (await import("./vm.ts")).vmCommand },
  { name: "input", summary: "Drive a VM's input: send keys, text and pointer events, probe which devices serve it, print the key table.", load: async () => (await import("./input.ts")).inputCommand },
  { name: "agent", summary: "Talk to a VM's guest agent: ping, info, launch an app, clipboard, resolution, certificates.", load: async () => (await import("./agent.ts")).agentCommand },
  { name: "update", summary: "System updates inside snapshots: run, check health, history, roll back.", load: async () => (await import("./update.ts")).updateCommand },
  { name: "lumen", summary: "The native stream protocol lumen/1: connect the reference client to a host, pair by PIN, stream and count.", load: async () => (await import("./lumen.ts")).lumenCommand },
  { name: "snapshot", summary: "Snapshots of the system root (btrfs / snapper): list, create, delete, diff.", load: async () => (await import("./snapshot.ts")).snapshotCommand },
  { name: "migrate", summary: "Move a person's Windows files and settings to Linux: plan, run (verified, resumable), report, undo.", load: async () => (await import("./migrate.ts")).migrateCommand },
];

export function mainHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    `${PROGRAM} ${APPLIANCE_VERSION} — the NeuronOS host appliance`,
    "",
    `Usage: ${PROGRAM} <command> [options]`,
    "",
    "Commands:",
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    "",
    `Run \`${PROGRAM} <command> --help\` for a command's options.`,
  ].join("\n");
}

export interface RunOptions {
  embeddedNativeLib?: string;
  stdout?: (text: string) => void;
  stderr?: (text: string) => void;
  env?: Record<string, string | undefined>;
}

export async function run(argv: string[], opts: RunOptions = {}): Promise<number> {
  const ctx: CliContext = {
    argv,
    embeddedNativeLib: opts.embeddedNativeLib,
    stdout: opts.stdout ?? ((t) => void process.stdout.write(t)),
    stderr: opts.stderr ?? ((t) => void process.stderr.write(t)),
    env: opts.env ?? process.env,
  };
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    ctx.stdout(mainHelp() + "\n");
    return name === undefined ? 2 : 0;
  }
  if (name === "--version") return run(["version", ...rest], opts);
  const entry = COMMANDS.find((c) => c.name === name);
  try {
    if (!entry) throw new UsageError(`unknown command ${JSON.stringify(name)} (see \`${PROGRAM} --help\`)`);
    const cmd = await entry.load();
    const args = parseCommandArgs(cmd, rest);
    if (args.values.help) {
      ctx.stdout(helpText(PROGRAM, cmd) + "\n");
      return 0;
    }
    return await cmd.run(args, ctx);
  } catch (err) {
    ctx.stderr(`${PROGRAM}: error: ${describeError(err).split("\n")[0]}\n`);
    return err instanceof UsageError ? 2 : err instanceof AppError && err.status < 500 ? 1 : 1;
  }
}
