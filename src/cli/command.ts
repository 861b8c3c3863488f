/**
 * The CLI's building blocks: a command declares its flags (node:util parseArgs,
 * strict: unknown flags are errors), its help text, and a run function that
 * calls a service and prints text or --json.
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { loadConfig, type Config } from "../config.ts";
import { AppError } from "../errors.ts";

export type FlagSpec = NonNullable<ParseArgsConfig["options"]>;

export interface CliContext {
  argv: string[];
  embeddedNativeLib?: string;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: Record<string, string | undefined>;
}

export interface Command {
  name: string;
  summary: string;
  /** Usage lines after the program name, e.g. "serve [--host H] [--port N]". */
  usage: string;
  /** Extra help text (flags explained). */
  help?: string;
  flags: FlagSpec;
  positionals?: boolean;
  run(args: ParsedArgs, ctx: CliContext): Promise<number>;
}

export interface ParsedArgs {
  values: Record<string, string | boolean | string[] | boolean[] | undefined>;
  positionals: string[];
}

/** A wrong invocation: printed as one line, exit code 2. */
export class UsageError extends AppError {
  constructor(message: string) {
    super("USAGE", message, { status: 400 });
  }
}

export const COMMON_FLAGS = {
  help: { type: "boolean", short: "h" },
  config: { type: "string" },
} as const satisfies FlagSpec;

export const JSON_FLAG = { json: { type: "boolean" } } as const satisfies FlagSpec;

export function parseCommandArgs(cmd: Command, argv: string[]): ParsedArgs {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      options: { ...COMMON_FLAGS, ...cmd.flags },
      strict: true,
      allowPositionals: cmd.positionals ?? false,
    });
    return { values: values as ParsedArgs["values"], positionals };
  } catch (err) {
    throw new UsageError(`${cmd.name}: ${(err as Error).message.split("\n")[0]}`);
  }
}

/** Builds the config from the file, NEURON_* env and the flags that map onto config keys. */
export function configFrom(args: ParsedArgs, ctx: CliContext, flagKeys: Record<string, string> = {}): Config {
  const flags: Record<string, unknown> = {};
  for (const [flag, key] of Object.entries(flagKeys)) {
    const v = args.values[flag];
    if (v !== undefined) flags[key] = v;
  }
  return loadConfig({ configPath: args.values.config as string | undefined, env: ctx.env, flags });
}

export function helpText(program: string, cmd: Command): string {
  return [
    `Usage: ${program} ${cmd.usage}`,
    "",
    cmd.summary,
    ...(cmd.help ? ["", cmd.help.trimEnd()] : []),
    "",
    "Common options:",
    "  --config FILE   config file (default /etc/neuron-appliance/config.json)",
    "  -h, --help      show this help",
  ].join("\n");
}

export const printJson = (ctx: CliContext, value: unknown) => ctx.stdout(JSON.stringify(value, null, 2) + "\n");
