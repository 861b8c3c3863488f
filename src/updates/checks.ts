/**
 * Health verification, greenboot-style: required checks (a failure rolls the
 * update back) and wanted checks (reported), built in and from config. Checks of
 * the running system apply only when the root is "/"; with another root they
 * are reported as skipped, and the checks of the tree itself still run.
 */
import { accessSync, constants, existsSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { basename, join } from "node:path";
import { execFile, firstLine } from "../exec.ts";
import { matchKernels } from "../snapshots/boot-files.ts";
import type { BuiltinCheck, CheckCommand } from "./settings.ts";

export interface CheckResult {
  name: string;
  required: boolean;
  status: "passed" | "failed" | "skipped";
  /** What was found, in words. */
  detail: string;
}

export interface CheckContext {
  root: string;
  bootDir: string;
  /** The tree before the update (the pre snapshot), for the out-of-tree module comparison. */
  before: string | null;
  builtins: BuiltinCheck[];
  criticalBinaries: string[];
  requiredUnits: string[];
  outOfTreeModules: string[];
  commands: CheckCommand[];
  bin: { systemctl: string; virsh: string };
  libvirtUri: string;
  socketPath: string;
  sysRoot: string;
  devDir?: string;
}

/** A config file's text, or "" when it cannot be read (a dangling link, a directory). */
function readText(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

const live = (c: CheckContext) => c.root === "/";
const skipLive = (name: string, c: CheckContext): CheckResult => ({ name, required: true, status: "skipped", detail: `${c.root} is not the running system` });
const result = (name: string, ok: boolean, detail: string, required = true): CheckResult => ({ name, required, status: ok ? "passed" : "failed", detail });

function checkBinaries(c: CheckContext): CheckResult {
  const missing = c.criticalBinaries.filter((b) => {
    try {
      accessSync(join(c.root, b), constants.X_OK);
      return false;
    } catch {
      return true;
    }
  });
  return result("critical binaries", missing.length === 0, missing.length ? `missing or not executable: ${missing.join(", ")}` : `${c.criticalBinaries.length} present`);
}

async function checkSystemRunning(c: CheckContext): Promise<CheckResult> {
  if (!live(c)) return skipLive("system running", c);
  const r = await execFile([c.bin.systemctl, "is-system-running"], { timeoutMs: 30_000 });
  const state = r.stdout.trim() || firstLine(r.stderr) || r.spawnError || "no answer";
  // at boot this check is part of the boot transaction itself, so systemd still says "starting"
  if (state === "starting") return result("system running", true, "systemd is still starting (this check is part of the boot); the units are checked one by one");
  return result("system running", state === "running" || state === "degraded", `systemd says ${state}`);
}

async function checkUnits(c: CheckContext): Promise<CheckResult[]> {
  if (!live(c)) return c.requiredUnits.map((u) => skipLive(basename(u, ".service"), c));
  return Promise.all(
    c.requiredUnits.map(async (u) => {
      const r = await execFile([c.bin.systemctl, "is-active", u], { timeoutMs: 30_000 });
      const state = r.stdout.trim() || r.spawnError || "unknown";
      return result(basename(u, ".service"), state === "active", `${u} is ${state}`);
    }),
  );
}

/** vfio-pci ids the appliance configured (options vfio-pci ids=... in modprobe.d). */
function vfioIds(root: string): string[] {
  const dir = join(root, "etc", "modprobe.d");
  if (!existsSync(dir)) return [];
  const ids: string[] = [];
  for (const f of readdirSync(dir)) {
    if (!f.endsWith(".conf")) continue;
    const m = /^\s*options\s+vfio-pci\s+.*\bids=([0-9a-fA-F:,]+)/m.exec(readText(join(dir, f)));
    if (m) ids.push(...m[1]!.split(",").filter(Boolean).map((s) => s.toLowerCase()));
  }
  return ids;
}

function checkVfio(c: CheckContext): CheckResult {
  const ids = vfioIds(c.root);
  if (ids.length === 0) return { name: "vfio-pci", required: true, status: "skipped", detail: "GPU passthrough is not set up" };
  if (!live(c)) return skipLive("vfio-pci", c);
  const devs = join(c.sysRoot, "sys", "bus", "pci", "devices");
  const unbound: string[] = [];
  for (const id of ids) {
    const [vendor, device] = id.split(":");
    for (const d of existsSync(devs) ? readdirSync(devs) : []) {
      const read = (f: string) => {
        try {
          return readFileSync(join(devs, d, f), "utf8").trim().replace(/^0x/, "");
        } catch {
          return "";
        }
      };
      if (read("vendor") !== vendor || read("device") !== device) continue;
      let driver = "none";
      try {
        driver = basename(readlinkSync(join(devs, d, "driver")));
      } catch {
        /* unbound */
      }
      if (driver !== "vfio-pci") unbound.push(`${d} (${id}) has ${driver}`);
    }
  }
  return result("vfio-pci", unbound.length === 0, unbound.length ? unbound.join("; ") : `vfio-pci holds ${ids.join(", ")}`);
}

async function checkLibvirt(c: CheckContext): Promise<CheckResult> {
  if (!live(c)) return skipLive("libvirt", c);
  const r = await execFile([c.bin.virsh, "-c", c.libvirtUri, "version"], { timeoutMs: 30_000 });
  return result("libvirt", r.code === 0, r.code === 0 ? `${c.libvirtUri} answers` : `${c.libvirtUri}: ${firstLine(r.stderr) || r.spawnError || "no answer"}`);
}

async function checkApi(c: CheckContext): Promise<CheckResult> {
  if (!live(c)) return skipLive("appliance API", c);
  // at boot the service may still be starting: a few tries, 30 s in all
  let last = "";
  for (let i = 0; i < 10; i++) {
    try {
      const res = await fetch("http://localhost/api/v1/health", { unix: c.socketPath, signal: AbortSignal.timeout(3_000) });
      if (res.ok) return result("appliance API", true, `health answered ${res.status}`);
      last = `health answered ${res.status}`;
    } catch (err) {
      last = `no answer on ${c.socketPath}: ${(err as Error).message}`;
    }
    await Bun.sleep(3_000);
  }
  return result("appliance API", false, last);
}

function checkLookingGlass(c: CheckContext): CheckResult {
  const loadDir = join(c.root, "etc", "modules-load.d");
  const wanted = existsSync(loadDir) && readdirSync(loadDir).some((f) => /\bkvmfr\b/.test(readText(join(loadDir, f))));
  if (!wanted) return { name: "looking glass", required: true, status: "skipped", detail: "kvmfr is not set up to load" };
  if (!live(c)) return skipLive("looking glass", c);
  const dev = join(c.devDir ?? "/dev", "kvmfr0");
  return result("looking glass", existsSync(dev), existsSync(dev) ? `${dev} present` : `${dev} is missing (kvmfr not loaded)`);
}

/** Modules directories of a tree that contain a module (vendor-reset ↔ vendor_reset). */
function kernelsWith(tree: string, module: string): Set<string> {
  const modRoot = join(tree, "usr", "lib", "modules");
  const out = new Set<string>();
  if (!existsSync(modRoot)) return out;
  const want = new RegExp(`^${module.replace(/[-_]/g, "[-_]")}\\.ko(\\.(xz|zst|gz))?$`);
  for (const k of readdirSync(modRoot)) {
    const stack = [join(modRoot, k)];
    while (stack.length) {
      const d = stack.pop()!;
      let entries;
      try {
        entries = readdirSync(d, { withFileTypes: true });
      } catch {
        continue;
      }
      for (const e of entries) {
        if (e.isDirectory()) stack.push(join(d, e.name));
        else if (want.test(e.name)) out.add(k);
      }
    }
  }
  return out;
}

/** The kernel versions the boot directory boots in this tree, else all of them. */
function bootedKernels(tree: string, bootDir: string): string[] {
  const matched = matchKernels(tree, bootDir).flatMap((m) => (m.modules ? [basename(m.modules)] : []));
  if (matched.length) return matched;
  const modRoot = join(tree, "usr", "lib", "modules");
  return existsSync(modRoot) ? readdirSync(modRoot) : [];
}

export function checkModules(c: CheckContext): CheckResult {
  const kernels = bootedKernels(c.root, c.bootDir);
  const problems: string[] = [];
  const checked: string[] = [];
  const orphans = matchKernels(c.root, c.bootDir).filter((m) => m.modules === null);
  for (const o of orphans) problems.push(`/boot/${o.kernel} has no modules directory in the tree`);
  for (const m of c.outOfTreeModules) {
    const hadBefore = c.before ? kernelsWith(c.before, m).size > 0 : false;
    if (!hadBefore) continue;
    const now = kernelsWith(c.root, m);
    for (const k of kernels) {
      checked.push(`${m}@${k}`);
      if (!now.has(k)) problems.push(`${m} is not built for kernel ${k}`);
    }
  }
  if (problems.length) return result("kernel modules", false, problems.join("; "));
  return result("kernel modules", true, checked.length ? `present: ${checked.join(", ")}` : `kernel ${kernels.join(", ") || "(none)"}: no out-of-tree module to check`);
}

async function runCommand(c: CheckContext, cmd: CheckCommand): Promise<CheckResult> {
  const r = await execFile(["sh", "-c", cmd.command], { timeoutMs: cmd.timeoutMs, env: { ...process.env, NEURON_ROOT: c.root } });
  const out = firstLine(r.stderr) || firstLine(r.stdout);
  const detail = r.timedOut ? `timed out after ${cmd.timeoutMs} ms` : r.spawnError ? r.spawnError : r.code === 0 ? out || "exit 0" : `exit ${r.code}${out ? `: ${out}` : ""}`;
  return result(cmd.name, r.code === 0, detail, cmd.required);
}

export async function runChecks(c: CheckContext): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  const on = new Set(c.builtins);
  if (on.has("binaries")) out.push(checkBinaries(c));
  if (on.has("modules")) out.push(checkModules(c));
  if (on.has("system-running")) out.push(await checkSystemRunning(c));
  if (on.has("services")) out.push(...(await checkUnits(c)));
  if (on.has("vfio")) out.push(checkVfio(c));
  if (on.has("libvirt")) out.push(await checkLibvirt(c));
  if (on.has("api")) out.push(await checkApi(c));
  if (on.has("looking-glass")) out.push(checkLookingGlass(c));
  for (const cmd of c.commands) out.push(await runCommand(c, cmd));
  return out;
}

export const failedRequired = (results: CheckResult[]) => results.filter((r) => r.required && r.status === "failed");
