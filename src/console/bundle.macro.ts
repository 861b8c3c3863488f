/**
 * The web console's assets, built by Bun's bundler when the module that imports this macro is
 * bundled (`bun build --compile`) or transpiled (running from source): the page's script and
 * style sheet become string constants of the appliance itself, so the compiled binary serves
 * them with no files beside it, no CDN and no build step of its own.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";

export interface ConsoleBundle {
  js: string;
  css: string;
  /** Hex SHA-256 prefix of js + css: the cache-busting version in the asset URLs. */
  version: string;
}

export function consoleBundle(): ConsoleBundle {
  const dir = join(import.meta.dir, "app");
  // the bundler cannot be called from inside a macro while it bundles: its CLI in a child process
  const built = Bun.spawnSync([process.execPath, "build", join(dir, "main.ts"), "--target=browser", "--format=esm", "--minify"], { stdout: "pipe", stderr: "pipe", env: { ...process.env, NO_COLOR: "1" } });
  if (built.exitCode !== 0) throw new Error(`console bundle failed: ${built.stderr.toString().trim()}`);
  const js = built.stdout.toString();
  const css = readFileSync(join(dir, "style.css"), "utf8");
  const version = new Bun.CryptoHasher("sha256").update(js).update(css).digest("hex").slice(0, 12);
  return { js, css, version };
}
