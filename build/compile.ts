/**
 * Builds the single executable: dist/neuron-appliance (code-split chunks inside), with libneuron.so, the
 * SQL migrations and the Swagger UI assets embedded. Also copies the library
 * beside it (dist/libneuron.so) for packaging.
 *
 *   bun build/compile.ts [--outfile dist/neuron-appliance]
 */
import { copyFileSync, existsSync, mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";

const root = resolve(import.meta.dir, "..");
const { values } = parseArgs({ options: { outfile: { type: "string" } } });
const outfile = resolve(values.outfile ?? join(root, "dist", "neuron-appliance"));
const lib = join(root, "native", "build", "libneuron.so");
if (!existsSync(lib)) {
  console.error(`compile: ${lib} is missing; run \`make -C native\` first`);
  process.exit(1);
}
mkdirSync(dirname(outfile), { recursive: true });

const proc = Bun.spawnSync(
  [
    process.execPath,
    "build",
    "--compile",
    // code splitting: each lazily imported module (the CLI commands, the API, the GameStream
    // host) is its own chunk, so starting `serve` loads the bytecode of what it runs, not all of it
    "--splitting",
    "--minify",
    "--bytecode",
    "--format=esm",
    "--no-compile-autoload-dotenv",
    "--no-compile-autoload-bunfig",
    join(root, "build", "entry.ts"),
    "--outfile",
    outfile,
  ],
  { cwd: root, stdout: "inherit", stderr: "inherit" },
);
if (proc.exitCode !== 0) process.exit(proc.exitCode ?? 1);
copyFileSync(lib, join(dirname(outfile), "libneuron.so"));
console.log(`compile: ${outfile}`);
