import { loadNative } from "../core.ts";
import { APPLIANCE_VERSION } from "../version.ts";
import { configFrom, JSON_FLAG, printJson, type Command } from "./command.ts";

export const versionCommand: Command = {
  name: "version",
  summary: "Print the appliance version and the native library it loads.",
  usage: "version [--json]",
  flags: { ...JSON_FLAG },
  async run(args, ctx) {
    const config = configFrom(args, ctx);
    const { lib, state } = loadNative(config, ctx.embeddedNativeLib);
    lib?.close();
    const report = {
      version: APPLIANCE_VERSION,
      bun: Bun.version,
      native: { version: state.version, path: state.path, error: state.error },
    };
    if (args.values.json) printJson(ctx, report);
    else
      ctx.stdout(
        `neuron-appliance ${APPLIANCE_VERSION} (bun ${Bun.version})\n` +
          `libneuron ${state.version ? `${state.version} (${state.path})` : `unavailable: ${state.error}`}\n`,
      );
    return 0;
  },
};
