/**
 * The console's VM page against a private, real libvirtd, in headless Chromium: a VM created in
 * the form appears in libvirt; started from the page, its row turns running (from the vm.state
 * event, no reload by hand); the synthetic producer writing into the VM's IVSHMEM file shows in the
 * row's preview canvas, whose pixels change from frame to frame (before it, QEMU's own display
 * through QMP screendump); the live view decodes the VM's H.264, sent over a WebSocket, with
 * WebCodecs, and its pixels change; keys and mouse under pointer lock reach the VM's QEMU (its
 * input layer's trace); the live WebSocket passes the auth layer like the input one.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Browser, Page } from "puppeteer-core";
import { BUN, REPO_ROOT, tempDir, testConfig } from "../helpers/env.ts";
import { libvirtdUnavailable, startLibvirtd, TEST_VIRSH_TIMEOUT_MS, type PrivateLibvirtd } from "../vm/libvirtd.ts";
import type { RunningServer } from "../../src/api/server.ts";
import type { Core } from "../../src/core.ts";
import { parseTrace, type TraceEvent } from "../input/qemu.ts";
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
    // the preview switches from QEMU's display to the producer's frames (lit, moving pattern)
    await until(page, `(() => { const c = document.querySelector("canvas.thumb"); if (!c) return false; const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data; let lit = 0; for (let i = 0; i < d.length; i += 4) lit += d[i] + d[i + 1] + d[i + 2] > 30 ? 1 : 0; return lit > 100; })()`, 30_000);
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

  /** A hash and the count of lit pixels of a canvas, and its frame counter. */
  const pixels = (selector: string) =>
    page.$eval(selector, (c) => {
      const cv = c as unknown as { getContext(k: string): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } }; width: number; height: number; dataset: { frames: string } };
      const d = cv.getContext("2d").getImageData(0, 0, cv.width, cv.height).data;
      let sum = 0;
      let lit = 0;
      for (let i = 0; i < d.length; i += 4) (sum = (sum * 31 + d[i]! + d[i + 1]! * 7 + d[i + 2]! * 13) >>> 0), (lit += d[i]! + d[i + 1]! + d[i + 2]! > 30 ? 1 : 0);
      return { hash: sum, lit, frames: Number(cv.dataset.frames ?? 0), width: cv.width, height: cv.height };
    });

  test("the live view: H.264 over a WebSocket, decoded by WebCodecs onto its canvas, whose pixels follow the producer", async () => {
    // Debian's chromium decodes H.264 in WebCodecs (its ffmpeg has the decoder): checked, not assumed
    const supported = await page.evaluate(`typeof VideoDecoder !== "undefined" && VideoDecoder.isConfigSupported({ codec: "avc1.42e01f", codedWidth: 320, codedHeight: 180 }).then((r) => r.supported)`);
    expect(supported).toBe(true);
    await clickInRow("Live view");
    await until(page, `Number(document.querySelector("canvas.live-canvas")?.dataset.frames ?? 0) >= 5`, 30_000);
    const status = await page.$eval(".live-view .note", (e) => e.textContent ?? "");
    expect(status).toMatch(/320×180 H\.264, live/);
    const a = await pixels("canvas.live-canvas");
    await until(page, `Number(document.querySelector("canvas.live-canvas")?.dataset.frames ?? 0) >= ${a.frames + 3}`, 10_000);
    const b = await pixels("canvas.live-canvas");
    expect({ width: a.width, height: a.height }).toEqual({ width: 320, height: 180 });
    expect(a.lit).toBeGreaterThan(1000);
    expect(b.hash).not.toBe(a.hash);
    await screenshot(page, "vms-live-view");
    expect(problems).toEqual([]);
  }, 60_000);

  test("keys and mouse captured under pointer lock reach the VM's QEMU (its input layer's trace)", async () => {
    // QEMU's own record of what its input layer received: its input_event_* trace, into its log
    const log = daemon.hostPath(`/var/log/libvirt/qemu/${VM}.log`);
    const on = Bun.spawnSync(["virsh", "-c", daemon.uri, "qemu-monitor-command", VM, "--hmp", "trace-event input_event_* on"], { stdout: "pipe", stderr: "pipe", timeout: 15_000 });
    expect({ code: on.exitCode, stderr: on.stderr.toString() }).toEqual({ code: 0, stderr: "" });
    const trace = () => parseTrace(existsSync(log) ? readFileSync(log, "utf8") : "").filter((e) => e.ev !== "sync");
    const before = trace().length;
    await page.click("canvas.live-canvas");
    // the page says so once the lock's change event has run
    await until(page, `document.pointerLockElement === document.querySelector("canvas.live-canvas") && document.querySelector(".live-view .note")?.textContent?.includes("Keyboard and mouse go to the VM") === true`, 10_000);
    await page.keyboard.press("KeyN");
    await page.keyboard.down("ShiftLeft");
    await page.keyboard.press("Digit1");
    await page.keyboard.up("ShiftLeft");
    // the click that locked the pointer was at the canvas' centre: every move after it is relative to there
    const box = (await (await page.$("canvas.live-canvas"))!.boundingBox())!;
    const cx = Math.round(box.x + box.width / 2);
    const cy = Math.round(box.y + box.height / 2);
    await page.mouse.move(cx - 40, cy + 10);
    await page.mouse.move(cx + 30, cy - 20, { steps: 3 });
    await page.mouse.down({ button: "left" });
    await page.mouse.up({ button: "left" });
    await page.mouse.wheel({ deltaY: 120 });
    const want = (e: TraceEvent[]) =>
      e.some((x) => x.ev === "key" && x.qcode === "n" && !x.down) && e.some((x) => x.ev === "key" && x.qcode === "1" && !x.down) && e.some((x) => x.ev === "btn" && x.button === "left" && !x.down) && e.some((x) => x.ev === "rel" && x.axis === "x") && e.some((x) => x.ev === "btn" && x.button.startsWith("wheel"));
    const deadline = Date.now() + 15_000;
    while (!want(trace().slice(before)) && Date.now() < deadline) await Bun.sleep(50);
    const got = trace().slice(before);
    const keys = got.filter((e): e is Extract<TraceEvent, { ev: "key" }> => e.ev === "key").map((e) => `${e.qcode}${e.down ? "↓" : "↑"}`);
    expect(keys).toEqual(["n↓", "n↑", "shift↓", "1↓", "1↑", "shift↑"]);
    expect(got.filter((e) => e.ev === "btn" && e.button === "left").map((e) => (e as { down: boolean }).down)).toEqual([true, false]);
    const sum = (axis: string) => got.filter((e) => e.ev === "rel" && e.axis === axis).reduce((n, e) => n + (e as { value: number }).value, 0);
    expect({ dx: sum("x"), dy: sum("y") }).toEqual({ dx: 30, dy: -20 });
    expect(got.some((e) => e.ev === "btn" && e.button === "wheel-down")).toBe(true);
    await page.evaluate(`document.exitPointerLock()`);
    await until(page, `document.pointerLockElement === null`);
    expect(problems).toEqual([]);
  }, 60_000);

  test("the live WebSocket passes the auth layer: a reader may watch, no caller or a session without Origin may not", async () => {
    const url = `${server.url}/api/v1/vms/${VM}/live`;
    const reader = core.auth.createToken("live-reader", "read", "test").token;
    // the same request without Upgrade: 426 while a view would be accepted
    expect((await fetch(url, { headers: { authorization: `Bearer ${reader}` } })).status).toBe(426);
    expect(await upgradeStatus(url, {})).toBe(401);
    const cookie = (await page.cookies()).map((c) => `${c.name}=${c.value}`).join("; ");
    expect(await upgradeStatus(url, { cookie })).toBe(403); // no Origin
    expect(await upgradeStatus(url, { cookie, origin: "http://evil.example" })).toBe(403);
    expect(await upgradeStatus(`${server.url}/api/v1/vms/no-such-vm/live`, { authorization: `Bearer ${reader}` })).toBe(404);
    // a reader's WebSocket: ready, then access units, an IDR first
    const ws = new WebSocket(url.replace(/^http/, "ws"), { headers: { authorization: `Bearer ${reader}` } } as unknown as string[]);
    ws.binaryType = "arraybuffer";
    const got: (string | Uint8Array)[] = [];
    ws.onmessage = (m) => void got.push(typeof m.data === "string" ? m.data : new Uint8Array(m.data as ArrayBuffer));
    const deadline = Date.now() + 20_000;
    while (got.filter((g) => typeof g !== "string").length < 3 && Date.now() < deadline) await Bun.sleep(20);
    ws.close();
    expect(JSON.parse(got[0] as string)).toMatchObject({ type: "ready", codec: "h264" });
    const units = got.filter((g): g is Uint8Array => typeof g !== "string");
    expect(units.length).toBeGreaterThanOrEqual(3);
    const first = units[0]!;
    expect(first[0]! & 1).toBe(1); // IDR
    expect([(first[1]! << 8) | first[2]!, (first[3]! << 8) | first[4]!]).toEqual([320, 180]);
    expect([...first.subarray(5, 9)]).toEqual([0, 0, 0, 1]);
    expect(first[9]! & 0x1f).toBe(7); // the SPS leads the IDR
  }, 60_000);

  test("Force off asks first, then pulls the plug", async () => {
    // a locked pointer sends every click to the live view's canvas
    await page.evaluate(`document.pointerLockElement && document.exitPointerLock()`);
    await clickInRow("Force off");
    await until(page, `document.querySelector("dialog.confirm[open]") !== null`);
    await page.click("dialog.confirm .btn.danger");
    await until(page, `[...document.querySelectorAll("tr")].some((r) => r.textContent?.includes("${VM}") && r.querySelector(".badge")?.textContent === "shut off")`, 30_000);
    expect((await daemon.virsh().states()).get(VM)).toBe("shut off");
    // the guest's frame producer ends with its VM; the live view still open says why it ended
    producer?.kill("SIGTERM");
    await producer?.exited;
    producer = null;
    await until(page, `document.querySelector(".live-view .note")?.textContent?.startsWith("The live view ended: VM ${VM} is shut off.") === true`, 20_000);
    await screenshot(page, "vms-live-ended");
    const res = await fetch(`${server.url}/api/v1/vms/${VM}/live`, { headers: { authorization: `Bearer ${core.auth.createToken("live-late", "read", "test").token}` } });
    expect(res.status).toBe(409);
  }, 60_000);
});

/** The status an HTTP/1.1 WebSocket upgrade of `url` with `headers` is answered with (101 when upgraded). */
async function upgradeStatus(url: string, headers: Record<string, string>): Promise<number> {
  const u = new URL(url);
  const lines = [`GET ${u.pathname} HTTP/1.1`, `Host: ${u.host}`, "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13", `Sec-WebSocket-Key: ${Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString("base64")}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), "", ""];
  return new Promise((resolve, reject) => {
    let text = "";
    const timer = setTimeout(() => reject(new Error("no answer to the upgrade")), 10_000);
    void Bun.connect({
      hostname: u.hostname,
      port: Number(u.port),
      socket: {
        open: (s) => void s.write(lines.join("\r\n")),
        data: (s, d) => {
          text += d.toString();
          const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
          if (m) {
            clearTimeout(timer);
            s.end();
            resolve(Number(m[1]));
          }
        },
        error: (_s, e) => reject(e),
      },
    });
  });
}
