/**
 * Entry of the compiled executable: embeds libneuron.so (a `type: "file"`
 * import is carried inside the binary) and hands its path to the CLI.
 */
import nativeLib from "../native/build/libneuron.so" with { type: "file" };
import { run } from "../src/cli/index.ts";

process.exitCode = await run(process.argv.slice(2), { embeddedNativeLib: nativeLib });
