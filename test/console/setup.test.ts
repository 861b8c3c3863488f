/**
 * The console's Setup page driving the real flow in headless Chromium, against a fixture machine
 * (sysfs tree with an NVIDIA GPU) and a fixture target root (Arch, GRUB, mkinitcpio): options
 * saved in the form reach the flow (bad ones are refused, nothing changes); Continue runs detect
 * → GPU → VFIO plan, which stops at the confirmation with the plan's diff shown; "Apply these
 * changes" (after its dialog) writes the real files and the flow waits for the reboot; Start over
 * makes every step pending again. Screenshots and axe at each stage.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Browser, Page } from "puppeteer-core";
import type { RunningServer } from "../../src/api/server.ts";
import type { Core } from "../../src/core.ts";
import { writeTarget } from "../fixtures/targets.ts";
import { tempDir, testConfig } from "../helpers/env.ts";
import { machine } from "../setup/helpers.ts";
import { CHROMIUM, openConsole, screenshot, seriousViolations, until } from "./browser.ts";

const stepState = (page: Page, id: string) => page.$eval(`[data-step="${id}"] .badge`, (e) => e.textContent ?? "");

describe.skipIf(!CHROMIUM)("the console's Setup page on a fixture machine (needs Debian's chromium)", () => {
  let dir: ReturnType<typeof tempDir>;
  let core: Core;
  let server: RunningServer;
  let browser: Browser;
  let page: Page;
  let problems: string[];
  let target = "";

  beforeAll(async () => {
    dir = tempDir("neuron-console-setup-");
    const root = machine("desktop-intel-nvidia", join(dir.path, "machine"), { bootId: "11111111-1111-1111-1111-111111111111" });
    target = join(dir.path, "target");
    writeTarget(target, "arch-grub-mkinitcpio");
    const config = testConfig({
      stateDir: join(dir.path, "state"),
      port: 0,
      root,
      targetRoot: target,
      qmpDir: join(dir.path, "qmp"),
      spiceDir: join(dir.path, "spice"),
      gamestreamEnabled: false,
      // the initramfs and boot-loader tools run inside the target root on a real machine: here they succeed doing nothing
      bin: { mkinitcpio: "true", dracut: "true", updateInitramfs: "true", grubMkconfig: "true", chroot: "true" },
    });
    ({ core, server, browser, page, problems } = await openConsole(config, { width: 1100, height: 900 }));
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    core?.close();
    dir?.cleanup();
  });

  test("options saved in the form reach the flow; a bad GPU address is refused and changes nothing", async () => {
    await page.goto(`${server.url}/console/#/setup`);
    await until(page, `document.querySelector("form[aria-label='Setup options'] input[name=vmName]") !== null && document.querySelector(".page-body[aria-busy=true]") === null`, 20_000);
    expect(await stepState(page, "detect")).toBe("pending");
    await page.type("input[name=gpu]", "not-a-pci-address");
    await page.click("form[aria-label='Setup options'] button[type=submit]");
    await until(page, `document.querySelector(".error-box")?.textContent?.includes("What to do") === true`);
    expect(await page.$eval(".error-box", (e) => e.textContent ?? "")).toContain("Could not save the setup options.");
    expect(core.setup.status().options.gpu ?? null).toBeNull();
    await page.$eval("input[name=gpu]", (e) => ((e as unknown as { value: string }).value = ""));
    await page.type("input[name=vmName]", "console-win");
    await page.click("form[aria-label='Setup options'] button[type=submit]");
    const deadline = Date.now() + 10_000;
    while (core.setup.status().options.vmName !== "console-win" && Date.now() < deadline) await Bun.sleep(50);
    expect(core.setup.status().options.vmName).toBe("console-win");
    await page.click(".error-box .btn");
  }, 30_000);

  test("Continue runs detect, GPU and the plan, then stops at the confirmation with the diff shown", async () => {
    await page.click("xpath///button[text()='Continue']");
    await until(page, `[...document.querySelectorAll("button")].some((b) => b.textContent === "Apply these changes")`, 30_000);
    for (const id of ["detect", "gpu", "vfio-plan"]) expect(await stepState(page, id)).toBe("done");
    expect(await stepState(page, "vfio-apply")).toBe("waiting");
    await page.click(`[data-step="vfio-plan"] details summary`);
    const diff = await page.$eval(`[data-step="vfio-plan"] pre`, (e) => e.textContent ?? "");
    expect(diff).toContain("vfio-pci");
    expect(diff).toContain("10de:2484");
    // nothing is written before the confirmation
    expect(() => readFileSync(join(target, "etc/modprobe.d/vfio.conf"), "utf8")).toThrow();
    await screenshot(page, "setup-confirm");
    expect((await seriousViolations(page)).map((v) => `${v.id}: ${v.help}`)).toEqual([]);
  }, 60_000);

  test("Apply these changes asks, writes the host's files and the flow waits for the reboot", async () => {
    await page.click("xpath///button[text()='Apply these changes']");
    await until(page, `document.querySelector("dialog.confirm[open]") !== null`);
    await page.click("dialog.confirm .btn.danger");
    await until(page, `document.querySelector('[data-step="reboot"] .badge')?.textContent === "waiting"`, 30_000);
    expect(await stepState(page, "vfio-apply")).toBe("done");
    expect(readFileSync(join(target, "etc/modprobe.d/vfio.conf"), "utf8")).toContain("options vfio-pci ids=10de:2484,10de:228b");
    expect(readFileSync(join(target, "etc/default/grub"), "utf8")).toContain("vfio-pci.ids=10de:2484,10de:228b");
    const st = core.setup.status();
    expect(st.current).toBe("reboot");
    expect(st.steps.find((s) => s.id === "reboot")?.waitingFor).toBe("reboot");
    await screenshot(page, "setup-reboot");
    expect((await seriousViolations(page)).map((v) => `${v.id}: ${v.help}`)).toEqual([]);
  }, 60_000);

  test("Start over asks, then every step is pending again", async () => {
    await page.click("xpath///button[text()='Start over']");
    await until(page, `document.querySelector("dialog.confirm[open]") !== null`);
    await page.click("dialog.confirm .btn.danger");
    await until(page, `document.querySelector('[data-step="detect"] .badge')?.textContent === "pending"`, 20_000);
    expect(core.setup.status().steps.every((s) => s.state === "pending")).toBe(true);
    expect(problems).toEqual([]);
  }, 30_000);
});
