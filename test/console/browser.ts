/** Debian's Chromium driven by puppeteer-core for the console's end-to-end tests (one browser per file). */
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Browser, Page } from "puppeteer-core";
import { startServer, type RunningServer } from "../../src/api/server.ts";
import type { Config } from "../../src/config.ts";
import { consoleLoginUrl } from "../../src/console/url.ts";
import { createCore, type Core } from "../../src/core.ts";
import { createLogger } from "../../src/log.ts";
import { REPO_ROOT } from "../helpers/env.ts";

export const CHROMIUM = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => existsSync(p)) ?? null;
/** Screenshots of the console's pages land here (gitignored). */
export const ARTIFACTS = join(REPO_ROOT, "test-artifacts", "console");

export async function launchBrowser(): Promise<Browser> {
  const puppeteer = (await import("puppeteer-core")).default;
  return puppeteer.launch({ executablePath: CHROMIUM!, headless: true, timeout: 30_000, args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"] });
}

/** What the page reported that the console must never do: script errors, CSP refusals. */
export function watchPage(page: Page): string[] {
  const problems: string[] = [];
  page.on("pageerror", (e) => problems.push(`pageerror: ${(e as Error).message}`));
  page.on("console", (m) => {
    const t = m.text();
    if (/Content Security Policy|Refused to/i.test(t)) problems.push(`csp: ${t}`);
  });
  return problems;
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

const AXE = readFileSync(join(REPO_ROOT, "node_modules", "axe-core", "axe.min.js"), "utf8");

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: string[] }[];
}

/** axe-core's WCAG A/AA rules on the page as it is; the violations of serious or critical impact. */
export async function seriousViolations(page: Page): Promise<AxeViolation[]> {
  // evaluated over the DevTools protocol: the page's own CSP (no inline scripts) stays as it is
  await page.evaluate(AXE);
  const result = (await page.evaluate(() => (globalThis as unknown as { axe: { run(ctx: unknown, opts: unknown): Promise<{ violations: AxeViolation[] }> } }).axe.run((globalThis as unknown as { document: unknown }).document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } }))) as { violations: AxeViolation[] };
  return result.violations.filter((v) => v.impact === "serious" || v.impact === "critical").map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => ({ target: n.target })) }));
}

/** Waits until fn() is truthy in the page (bounded). */
export async function until(page: Page, fn: string, timeoutMs = 10_000): Promise<void> {
  await page.waitForFunction(fn, { timeout: timeoutMs, polling: 50 });
}

/** A core and its API server over `config`, a browser, and a page logged in to the console through a login code. */
export interface OpenConsole {
  core: Core;
  server: RunningServer;
  browser: Browser;
  page: Page;
  /** What watchPage saw on the page. */
  problems: string[];
}

export async function openConsole(config: Config, viewport: { width: number; height: number }): Promise<OpenConsole> {
  const core = createCore(config, { logger: createLogger({ level: "error", format: "json", write: () => {} }) });
  const server = await startServer(core);
  const browser = await launchBrowser();
  const page = await browser.newPage();
  await page.setViewport(viewport);
  const problems = watchPage(page);
  await page.goto(consoleLoginUrl(server.url, core.auth.createLoginCode("admin", "test").code), { timeout: 15_000 });
  await until(page, `document.querySelector("nav a") !== null`);
  return { core, server, browser, page, problems };
}
