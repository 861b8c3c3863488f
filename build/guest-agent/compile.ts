/**
 * Builds the in-guest agent as single executables:
 *   dist/guest-agent/neuron-agent      (Linux x64)
 *   dist/guest-agent/neuron-agent.exe  (Windows x64; Bun fetches its Windows runtime from the npm registry)
 *
 *   bun build/guest-agent/compile.ts [--target linux|windows|all]
 */
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";

const root = resolve(import.meta.dir, "..", "..");
const { values } = parseArgs({ options: { target: { type: "string", default: "all" } } });
const targets = values.target === "all" ? ["linux", "windows"] : [values.target!];
const outDir = join(root, "dist", "guest-agent");
mkdirSync(outDir, { recursive: true });

const TARGETS: Record<string, { bun: string; file: string }> = {
  linux: { bun: "bun-linux-x64", file: "neuron-agent" },
  windows: { bun: "bun-windows-x64", file: "neuron-agent.exe" },
};

for (const t of targets) {
  const spec = TARGETS[t];
  if (!spec) {
    console.error(`guest-agent: unknown target ${JSON.stringify(t)} (linux, windows or all)`);
    process.exit(2);
  }
  const outfile = join(outDir, spec.file);
  const proc = Bun.spawnSync(
    [process.execPath, "build", "--compile", "--minify", `--target=${spec.bun}`, "--no-compile-autoload-dotenv", "--no-compile-autoload-bunfig",
      join(root, "src", "guest-agent", "main.ts"), "--outfile", outfile],
    { cwd: root, stdout: "inherit", stderr: "inherit" },
  );
  if (proc.exitCode !== 0) process.exit(proc.exitCode ?? 1);
  console.log(`guest-agent: ${outfile}`);
}
