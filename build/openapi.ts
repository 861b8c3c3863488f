/**
 * Writes the OpenAPI document the API serves at /swagger/json into
 * src/api/openapi.json (checked in; test/api/openapi.test.ts fails on drift).
 *
 *   bun build/openapi.ts [--check]
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createApp, OPENAPI_JSON_PATH } from "../src/api/app.ts";
import { loadConfig } from "../src/config.ts";
import { createCore } from "../src/core.ts";
import { silentLogger } from "../src/log.ts";

export const OPENAPI_FILE = join(import.meta.dir, "..", "src", "api", "openapi.json");

/** The spec as served, normalised (stable key order is Elysia's own; pretty-printed). */
export async function generateOpenApi(): Promise<string> {
  const stateDir = mkdtempSync(join(tmpdir(), "neuron-openapi-"));
  const core = createCore(loadConfig({ env: {}, flags: { stateDir }, configPath: null }), { logger: silentLogger });
  try {
    const res = await createApp(core).handle(new Request(`http://localhost${OPENAPI_JSON_PATH}`));
    return JSON.stringify(await res.json(), null, 2) + "\n";
  } finally {
    core.close();
    rmSync(stateDir, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const spec = await generateOpenApi();
  if (process.argv.includes("--check")) {
    const current = readFileSync(OPENAPI_FILE, "utf8");
    if (current !== spec) {
      console.error(`openapi: ${OPENAPI_FILE} is out of date; run \`npm run openapi\``);
      process.exit(1);
    }
  } else {
    writeFileSync(OPENAPI_FILE, spec);
    console.log(`openapi: wrote ${OPENAPI_FILE}`);
  }
}
