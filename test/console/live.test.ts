/**
 * The console's VM page against a private, real libvirtd, in headless Chromium: a VM created in
 * the form appears in libvirt; started from the page, its row turns running (from the vm.state
 * event, no reload by hand); the synthetic producer writing into the VM's IVSHMEM file shows in the
 * row's preview canvas, whose pixels change from frame to frame (before it, QEMU's own display
 * through QMP screendump); the live view decodes the VM's H.264 with WebCodecs.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Browser, Page } from "puppeteer-core";
import { BUN, REPO_ROOT, tempDir, testConfig } from "../helpers/env.ts";
import { libvirtdUnavailable, startLibvirtd, TEST_VIRSH_TIMEOUT_MS, type PrivateLibvirtd } from "../vm/libvirtd.ts";
import type { RunningServer } from "../../src/api/server.ts";
import type { Core } from "../../src/core.ts";
import { CHROMIUM, openConsole, screenshot, until } from "./browser.ts";

const SKIP = !CHROMIUM ? "needs Debian's chromium" : libvirtdUnavailable();
if (SKIP) console.warn(`skipping the console's VM tests: ${SKIP}`);
const VM = "console-vm";

describe.skipIf(SKIP !== null)("the console's VMs page on a real libvirtd", () => {
  let daemon: PrivateLibvirtd;
  let dir: ReturnType<typeof tempDir>;
  let core: Core;
  let server: RunningServer;
  let browser: Browser;
  let page: Page;
  let problems: string[];
  let producer: { kill(sig?: number | NodeJS.Signals): void; exited: Promise<number> } | null = null;

  beforeAll(async () => {
    daemon = await startLibvirtd();
    dir = tempDir("neuron-console-vm-");
    mkdirSync(join(dir.path, "target"), { recursive: true });
    const config = testConfig({
      stateDir: dir.path,
      port: 0,
      libvirtUri: daemon.uri,
      libvirtTimeoutMs: TEST_VIRSH_TIMEOUT_MS,
      shmDir: daemon.shmDir,
      qmpDir: join(dir.path, "qmp"),
      spiceDir: join(dir.path, "spice"),
      targetRoot: join(dir.path, "target"),
      gamestreamEnabled: false,
      // this machine's nested KVM cannot run a guest's CPU (MSR writes fail): software emulation
      vmDomainType: "qemu",
    });
    ({ core, server, browser, page, problems } = await openConsole(config, { width: 1200, height: 900 }));
  }, 90_000);

  afterAll(async () => {
    producer?.kill("SIGTERM");
    await producer?.exited;
    await browser?.close();
    if (daemon) for (const [name, state] of await daemon.virsh().states().catch(() => new Map())) if (state === "running") await daemon.virsh().destroy(name).catch(() => undefined);
    await server?.stop();
    core?.close();
    await daemon?.stop();
    dir?.cleanup();
  }, 60_000);

  /** Clicks a row's button as the row is now (the list re-renders when events arrive). */
  const clickInRow = async (label: string) => {
    await until(page, `[...document.querySelectorAll("tr")].some((r) => r.querySelector("td strong")?.textContent === "${VM}" && [...r.querySelectorAll("button")].some((b) => b.textContent === "${label}" && !b.disabled))`, 20_000);
    await page.evaluate(`[...[...document.querySelectorAll("tr")].find((r) => r.querySelector("td strong")?.textContent === "${VM}").querySelectorAll("button")].find((b) => b.textContent === "${label}").click()`);
  };

  test("a VM created in the form is defined in libvirt and listed", async () => {
    await page.goto(`${server.url}/console/#/vms`);
    await until(page, `document.querySelector("form[aria-label='Create a VM'] input[name=name]") !== null`, 20_000);
    await page.type("input[name=name]", VM);
    await page.select("select[name=template]", "linux");
    // the private libvirtd has no active default network
    await page.select("select[name=network]", "none");
    await page.$eval("input[name=memory]", (e) => ((e as unknown as { value: string }).value = "1"));
    await page.$eval("input[name=vcpus]", (e) => ((e as unknown as { value: string }).value = "1"));
    await page.click("form[aria-label='Create a VM'] button[type=submit]");
    await until(page, `document.querySelector("form[aria-label='Create a VM'] .note")?.textContent?.startsWith("VM ${VM} created") === true`, 30_000);
    expect((await daemon.virsh().states()).get(VM)).toBe("shut off");
    await until(page, `[...document.querySelectorAll("td strong")].some((s) => s.textContent === "${VM}")`, 20_000);
    await screenshot(page, "vms-created");
  }, 60_000);

  test("Start in the page runs it; the row turns running from the event; the preview shows the producer's frames", async () => {
    await clickInRow("Start");
    await until(page, `[...document.querySelectorAll("tr")].some((r) => r.textContent?.includes("${VM}") && r.querySelector(".badge")?.textContent === "running")`, 40_000);
    expect((await daemon.virsh().states()).get(VM)).toBe("running");
    // no Looking Glass host yet: the preview shows QEMU's own display (QMP screendump)
    await until(page, `Number(document.querySelector("canvas.thumb")?.dataset.frames ?? 0) >= 1`, 30_000);
    await screenshot(page, "vms-running-screendump");
    const shm = (await core.vms.show(VM)).shm!.path;
    const proc = Bun.spawn([BUN, join(REPO_ROOT, "test", "capture", "producer-proc.ts"), shm, JSON.stringify({ width: 320, height: 180, fps: 30 })], { stdin: "pipe", stdout: "pipe", stderr: "inherit" });
    producer = proc;
    const reader = proc.stdout.getReader();
    const ready = await Promise.race([reader.read().then((r) => new TextDecoder().decode(r.value)), Bun.sleep(15_000).then(() => "timeout")]);
    expect(ready).toContain("ready");
    const before = Number(await page.$eval("canvas.thumb", (c) => (c as unknown as { dataset: { frames: string } }).dataset.frames));
    await until(page, `Number(document.querySelector("canvas.thumb")?.dataset.frames ?? 0) >= ${before + 3}`, 30_000);
    const pixels = () => page.$eval("canvas.thumb", (c) => {
      const cv = c as unknown as { getContext(k: string): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } }; width: number; height: number; dataset: { frames: string } };
      const d = cv.getContext("2d").getImageData(0, 0, cv.width, cv.height).data;
      let sum = 0;
      let lit = 0;
      for (let i = 0; i < d.length; i += 4) (sum = (sum * 31 + d[i]! + d[i + 1]! * 7 + d[i + 2]! * 13) >>> 0), (lit += d[i]! + d[i + 1]! + d[i + 2]! > 30 ? 1 : 0);
      return { hash: sum, lit, frames: Number(cv.dataset.frames) };
    });
    const a = await pixels();
    await until(page, `Number(document.querySelector("canvas.thumb")?.dataset.frames ?? 0) > ${a.frames}`, 10_000);
    const b = await pixels();
    expect(a.lit).toBeGreaterThan(100);
    expect(b.hash).not.toBe(a.hash);
    await screenshot(page, "vms-running-preview");
    expect(problems).toEqual([]);
  }, 90_000);

  test("the live view decodes the VM's H.264 with WebCodecs onto its canvas", async () => {
    const supported = await page.evaluate(`typeof VideoDecoder !== "undefined" && VideoDecoder.isConfigSupported({ codec: "avc1.42e01f" }).then((r) => r.supported)`);
    if (!supported) return void console.warn("live view: this Chromium has no H.264 WebCodecs decoder; decoding not checked");
    await clickInRow("Live view");
    await until(page, `Number(document.querySelector("canvas.live-canvas")?.dataset.frames ?? 0) >= 5`, 30_000);
    const status = await page.$eval(".live-view .note", (e) => e.textContent ?? "");
    expect(status).toMatch(/320×180 H\.264, live|control the VM/);
    await screenshot(page, "vms-live-view");
    await page.click("xpath///button[text()='Close live view']");
    expect(problems).toEqual([]);
  }, 60_000);

  test("Force off asks first, then pulls the plug", async () => {
    await clickInRow("Force off");
    await until(page, `document.querySelector("dialog.confirm[open]") !== null`);
    await page.click("dialog.confirm .btn.danger");
    await until(page, `[...document.querySelectorAll("tr")].some((r) => r.textContent?.includes("${VM}") && r.querySelector(".badge")?.textContent === "shut off")`, 30_000);
    expect((await daemon.virsh().states()).get(VM)).toBe("shut off");
  }, 60_000);
});
