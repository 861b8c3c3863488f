/**
 * The Updates page in headless Chromium against a real update: a btrfs root on a loop device,
 * pacman with local repositories, a required check that fails. Run from the page (after its
 * confirmation), the run's progress, pacman's log and the verdict arrive live over the event
 * stream; the history then names the rollback's reason.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { Browser, Page } from "puppeteer-core";
import { tempDir, testConfig } from "../helpers/env.ts";
import { btrfsMissing, buildRepos, installV1, makeRoot, pacmanConf, pacmanMissing, type TestRoot } from "../updates/fixture.ts";
import type { RunningServer } from "../../src/api/server.ts";
import type { Core } from "../../src/core.ts";
import { CHROMIUM, openConsole, screenshot, until } from "./browser.ts";

const SKIP = !CHROMIUM ? "needs Debian's chromium" : (btrfsMissing() ?? pacmanMissing());
if (SKIP) console.warn(`skipping the console's update test: ${SKIP}`);

describe.skipIf(SKIP !== null)("the console's Updates page with a real update", () => {
  let t: TestRoot;
  let dir: ReturnType<typeof tempDir>;
  let core: Core;
  let server: RunningServer;
  let browser: Browser;
  let page: Page;
  let problems: string[];

  beforeAll(async () => {
    t = makeRoot();
    const repos = buildRepos();
    installV1(t.root, repos);
    pacmanConf(t.root, repos.v2);
    dir = tempDir("neuron-console-upd-");
    const config = testConfig({
      stateDir: dir.path,
      port: 0,
      qmpDir: join(dir.path, "qmp"),
      gamestreamEnabled: false,
      updates: {
        root: t.root,
        minFreeMb: 16,
        builtinChecks: ["binaries", "modules"],
        criticalBinaries: ["/usr/bin/neuron-test-svc"],
        checks: [{ name: "libvirtd", command: '"$NEURON_ROOT/usr/bin/neuron-test-svc"' }],
        rebootCommand: null,
      },
    });
    ({ core, server, browser, page, problems } = await openConsole(config, { width: 1100, height: 900 }));
  }, 300_000);

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    core?.close();
    dir?.cleanup();
    t?.cleanup();
  }, 60_000);

  test("Run update shows progress, pacman's log and the verdict live; the history says why it rolled back", async () => {
    await page.goto(`${server.url}/console/#/updates`);
    await until(page, `document.querySelector(".page-body[aria-busy=false]") !== null`, 20_000);
    await page.click("xpath///button[text()='Run update']");
    await until(page, `document.querySelector("dialog.confirm[open]") !== null`);
    await page.click("dialog.confirm .btn.danger");
    // progress parsed from pacman, live
    await until(page, `document.getElementById("update-progress").max > 1 && document.getElementById("update-progress").value > 0`, 120_000);
    await until(page, `document.getElementById("update-phase").textContent.includes("finished")`, 120_000);
    const phase = await page.$eval("#update-phase", (e) => e.textContent ?? "");
    expect(phase).toMatch(/finished: rolled_back/);
    const progress = await page.$eval("#update-progress", (e) => [(e as unknown as { value: number }).value, (e as unknown as { max: number }).max]);
    expect(progress[0]).toBe(progress[1]);
    expect(await page.$eval("#update-log", (e) => e.textContent ?? "")).toContain("upgrading neuron-test-svc");
    // the history reloaded from the done event, with the reason in words
    await until(page, `[...document.querySelectorAll("td .badge")].some((b) => b.textContent === "rolled back")`, 20_000);
    const reason = core.updates.history()[0]!.reason!;
    expect(reason.length).toBeGreaterThan(10);
    expect(await page.$eval("main", (m) => m.textContent ?? "")).toContain(reason);
    await screenshot(page, "updates-rolled-back");
    expect(problems).toEqual([]);
  }, 240_000);
});
