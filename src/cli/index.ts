/** argv → command. One line on error, non-zero exit: 2 for usage, 1 otherwise. */
import { AppError, describeError } from "../errors.ts";
import { APPLIANCE_VERSION } from "../version.ts";
import { helpText, parseCommandArgs, UsageError, type CliContext, type Command } from "./command.ts";
import { agentCommand } from "./agent.ts";
import { captureCommand } from "./capture.ts";
import { doctorCommand } from "./doctor.ts";
import { hardwareCommand } from "./hardware.ts";
import { vfioCommand } from "./vfio.ts";
import { pairCommand } from "./pair.ts";
import { sessionsCommand } from "./sessions.ts";
import { inputCommand } from "./input.ts";
import { serveCommand } from "./serve.ts";
import { versionCommand } from "./version.ts";
import { vmCommand } from "./vm.ts";
import { auditCommand, tokenCommand } from "./token.ts";
import { snapshotCommand } from "./snapshot.ts";
import { updateCommand } from "./update.ts";

export const PROGRAM = "neuron-appliance";

export const COMMANDS: Command[] = [
  serveCommand,
  doctorCommand,
  versionCommand,
  pairCommand,
  tokenCommand,
  auditCommand,
  sessionsCommand,
  hardwareCommand,
  vfioCommand,
  captureCommand,
  vmCommand,
  inputCommand,
  agentCommand,
  updateCommand,
  snapshotCommand,
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
  const cmd = COMMANDS.find((c) => c.name === name);
  try {
    if (!cmd) throw new UsageError(`unknown command ${JSON.stringify(name)} (see \`${PROGRAM} --help\`)`);
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
