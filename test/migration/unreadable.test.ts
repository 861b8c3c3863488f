/**
 * Unreadable source files and folders are reported item by item and do not stop the run: the
 * CLI runs as root without the capabilities that bypass file modes (setpriv drops
 * CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from its bounding set) over a folder source holding
 * a file and a folder of mode 000; everything else is copied and verified. (Root stays root so
 * the checkout and Bun are reachable wherever the repository lies, a 0700 folder included.)
 */
import { describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Report } from "../../src/migration/model.ts";
import { BUN, REPO_ROOT, tempDir } from "../helpers/env.ts";

const SETPRIV = Bun.which("setpriv");
const SKIP = process.getuid?.() !== 0 ? "needs root (to run the copy without the capabilities that bypass file modes)" : !SETPRIV ? "needs setpriv (util-linux)" : null;
if (SKIP) console.warn(`skipping the unreadable-files test: ${SKIP}`);

describe.skipIf(SKIP !== null)("unreadable source files", () => {
  test("a mode-000 file and folder are listed as unreadable; the rest is copied; the run is done", async () => {
    const dir = tempDir("neuron-migrate-unreadable-");
    try {
      chmodSync(dir.path, 0o755);
      const docs = join(dir.path, "C/Users/alice/Documents");
      mkdirSync(join(docs, "locked"), { recursive: true });
      writeFileSync(join(docs, "fine.txt"), "fine\n");
      writeFileSync(join(docs, "secret.txt"), "no\n");
      writeFileSync(join(docs, "locked/inside.txt"), "no\n");
      writeFileSync(join(docs, "after.txt"), "after\n");
      chmodSync(join(docs, "secret.txt"), 0o000);
      chmodSync(join(docs, "locked"), 0o000);
      const home = join(dir.path, "home");
      const state = join(dir.path, "state");
      const tmp = join(dir.path, "tmp");
      for (const d of [home, state, tmp]) mkdirSync(d);
      const proc = Bun.spawn(
        [SETPRIV!, "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-dac_override,-dac_read_search", "--", BUN, join(REPO_ROOT, "src/main.ts"), "migrate", "run", join(dir.path, "C"), "--user", "alice", "--target", home, "--state-dir", state, "--json"],
        { stdout: "pipe", stderr: "pipe", env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: tmp, TMPDIR: tmp } },
      );
      const timer = setTimeout(() => proc.kill(), 60_000);
      const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
      clearTimeout(timer);
      expect(err).not.toContain("Error:");
      const report = JSON.parse(out) as Report;
      expect(code).toBe(0);
      expect(report.status).toBe("done");
      expect(report.failed).toEqual([]);
      const unreadable = Object.fromEntries(report.unreadable.map((u) => [u.path, u.error]));
      expect(unreadable["Users/alice/Documents/secret.txt"]).toContain("EACCES");
      expect(unreadable["Users/alice/Documents/locked"]).toContain("EACCES");
      expect(report.words).toMatch(/could not be read|unreadable/i);
      expect(readFileSync(join(home, "Documents/fine.txt"), "utf8")).toBe("fine\n");
      expect(readFileSync(join(home, "Documents/after.txt"), "utf8")).toBe("after\n");
      expect(existsSync(join(home, "Documents/secret.txt"))).toBe(false);
      expect(report.copied.files).toBe(2);
      expect(report.verified).toBe(2);
    } finally {
      chmodSync(join(dir.path, "C/Users/alice/Documents/locked"), 0o755);
      dir.cleanup();
    }
  }, 90_000);
});
