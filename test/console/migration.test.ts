/**
 * The console's Migration page in headless Chromium over a folder source (a Windows tree whose
 * hiberfil.sys says Fast Startup): a source that does not exist is refused with what to do and
 * nothing is planned; a plan lists what moves with its fidelity and writes nothing; running it
 * is refused while the source is hibernated unless "Copy anyway" is ticked; then it runs with
 * live progress to done with its report, the files land in the user's home; Undo removes them
 * and says what it did. Screenshots and axe at each stage.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Browser, Page } from "puppeteer-core";
import type { RunningServer } from "../../src/api/server.ts";
import type { Core } from "../../src/core.ts";
import { tempDir, testConfig } from "../helpers/env.ts";
import { writeWindowsTree } from "../migration/windows-tree.ts";
import { CHROMIUM, openConsole, screenshot, seriousViolations, until } from "./browser.ts";

const axe = async (page: Page) => (await seriousViolations(page)).map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`);

describe.skipIf(!CHROMIUM)("the console's Migration page over a folder source (needs Debian's chromium)", () => {
  let dir: ReturnType<typeof tempDir>;
  let core: Core;
  let server: RunningServer;
  let browser: Browser;
  let page: Page;
  let problems: string[];
  let src = "";
  let home = "";

  beforeAll(async () => {
    dir = tempDir("neuron-console-migrate-");
    src = join(dir.path, "C");
    mkdirSync(src);
    await writeWindowsTree(src, { ntfs: false, bulkFiles: 20 });
    home = join(dir.path, "home");
    mkdirSync(home);
    const etc = join(dir.path, "etc");
    mkdirSync(etc);
    writeFileSync(join(etc, "passwd"), `alice:x:1000:1000::${home}:/bin/sh\n`);
    writeFileSync(join(etc, "group"), "");
    const config = testConfig({ stateDir: join(dir.path, "state"), port: 0, etcDir: etc, qmpDir: join(dir.path, "qmp"), spiceDir: join(dir.path, "spice"), gamestreamEnabled: false });
    ({ core, server, browser, page, problems } = await openConsole(config, { width: 1100, height: 900 }));
    await page.goto(`${server.url}/console/#/migration`);
    await until(page, `document.querySelector("form[aria-label='Plan a migration'] input") !== null`, 20_000);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    core?.close();
    dir?.cleanup();
  });

  const fill = async (label: string, value: string) => {
    const id = await page.$eval(`xpath///label[text()='${label}']`, (l) => (l as unknown as { htmlFor: string }).htmlFor);
    await page.$eval(`[id="${id}"]`, (e) => ((e as unknown as { value: string }).value = ""));
    await page.type(`[id="${id}"]`, value);
  };
  const heading = () => page.$$eval("h2", (l) => l.map((e) => e.textContent ?? "").find((t) => t.startsWith("Plan ") && t !== "Plan a migration") ?? null);
  const confirm = async () => {
    await until(page, `document.querySelector("dialog.confirm[open]") !== null`);
    await page.click("dialog.confirm .btn.danger");
  };
  const dismissError = async () => {
    await page.click(".error-box .btn");
    await until(page, `document.querySelector(".error-box") === null`);
  };

  test("a source that does not exist is refused with what to do; nothing is planned", async () => {
    await fill("Windows disk or folder", join(dir.path, "no-such-disk"));
    await page.click("form[aria-label='Plan a migration'] button[type=submit]");
    await until(page, `document.querySelector(".error-box")?.textContent?.includes("What to do") === true`);
    expect(await page.$eval(".error-box", (e) => e.textContent ?? "")).toContain("Could not plan the migration.");
    expect(core.migration.list().length).toBe(0);
    await dismissError();
  }, 30_000);

  test("a plan lists what moves and how faithfully; nothing is written", async () => {
    await fill("Windows disk or folder", src);
    await fill("Windows user", "alice");
    await page.click("form[aria-label='Plan a migration'] button[type=submit]");
    await until(page, `[...document.querySelectorAll("h2")].some((h) => h.textContent === "Plan 1 — planned")`, 30_000);
    const fidelity = await page.$$eval("table[aria-label], table", (ts) => ts.map((t) => t.textContent ?? "").join(" "));
    expect(fidelity).toContain("exact copy");
    expect(fidelity).toContain("cannot move");
    expect(await page.$eval(".accept-unsafe label", (e) => e.textContent ?? "")).toContain("hibernated");
    expect(readdirSync(home)).toEqual([]);
    await screenshot(page, "migration-planned");
    expect(await axe(page)).toEqual([]);
  }, 30_000);

  test("running a hibernated source is refused until Copy anyway is ticked; then it runs to done with its report", async () => {
    await page.click("xpath///button[text()='Run migration']");
    await confirm();
    await until(page, `document.querySelector(".error-box")?.textContent?.includes("Copy anyway") === true`, 20_000);
    expect(await page.$eval(".error-box", (e) => e.textContent ?? "")).toContain("hibernat");
    expect(await heading()).toBe("Plan 1 — planned");
    expect(readdirSync(home)).toEqual([]);
    await screenshot(page, "migration-refused");
    await dismissError();
    await page.click(".accept-unsafe input[type=checkbox]");
    await page.click("xpath///button[text()='Run migration']");
    await confirm();
    await until(page, `[...document.querySelectorAll("h2")].some((h) => h.textContent === "Plan 1 — done") && [...document.querySelectorAll("h2")].some((h) => h.textContent === "Report")`, 60_000);
    expect(await page.$eval("progress", (p) => (p as unknown as { value: number; max: number }).value === (p as unknown as { max: number }).max)).toBe(true);
    expect(await page.$eval("xpath///h2[text()='Progress']/following-sibling::p", (e) => e.textContent ?? "")).toMatch(/^Migration 1: /);
    expect(await page.$eval("xpath///h2[text()='Report']/following-sibling::p", (e) => e.textContent ?? "")).toContain("verified by checksum");
    expect(readFileSync(join(home, "Documents", "report.docx")).length).toBe(50_000);
    expect(existsSync(join(home, "Pictures", "holiday.jpg"))).toBe(true);
    await screenshot(page, "migration-done");
    expect(await axe(page)).toEqual([]);
  }, 90_000);

  test("Undo asks, removes what the run copied and says so", async () => {
    await page.click("xpath///button[text()='Undo']");
    await confirm();
    await until(page, `[...document.querySelectorAll("h2")].some((h) => h.textContent === "Plan 1 — undone") && document.querySelector(".undo-result") !== null`, 30_000);
    expect(await page.$eval(".undo-result", (e) => e.textContent ?? "")).toMatch(/^Undone: \d+ files removed\.$/);
    expect(readdirSync(home)).toEqual([]);
    expect(core.migration.list()[0]?.status).toBe("undone");
    await screenshot(page, "migration-undone");
    expect(await axe(page)).toEqual([]);
    expect(problems).toEqual([]);
  }, 30_000);
});
