import { existsSync, readFileSync } from "node:fs";
import type { Config } from "../config.ts";
import { AppError } from "../errors.ts";
import { callLocalApi } from "./local-api.ts";
import { createCore, type Core } from "../core.ts";
import { createLogger } from "../log.ts";
import { SETUP_STEPS, StepId, type SetupOptionsPatch, type SetupStatus } from "../setup/model.ts";
import { configFrom, JSON_FLAG, printJson, UsageError, type CliContext, type Command, type ParsedArgs } from "./command.ts";

const SUBCOMMANDS = ["status", "verify", "reset", "retry"] as const;

const MARK: Record<string, string> = { done: "✓", skipped: "-", pending: " ", running: "…", waiting: "⏸", failed: "✗" };

export function formatStatus(st: SetupStatus): string {
  const out = [`setup: ${st.state}${st.current ? ` (at ${st.current})` : ""}`];
  for (const s of st.steps) {
    out.push(`  [${MARK[s.state] ?? "?"}] ${s.id.padEnd(13)} ${s.state.padEnd(8)} ${s.detail}`);
    if (s.advice && (s.state === "failed" || s.state === "waiting")) out.push(`      → ${s.advice}`);
  }
  return out.join("\n") + "\n";
}

function core(config: Config, ctx: CliContext): Core {
  return createCore(config, { embeddedNativeLib: ctx.embeddedNativeLib, logger: createLogger({ level: "warn", format: "text", write: (l: string) => ctx.stderr(l + "\n") }) });
}

/**
 * Runs a step of the flow in the running service when there is one (its events reach the
 * console, its guard keeps one flow at a time), else here. --root/--target point at another
 * system than the service's: those run here.
 */
async function viaService(config: Config, args: ParsedArgs, call: () => Promise<SetupStatus | null>): Promise<SetupStatus | null> {
  if (args.values.root !== undefined || args.values.target !== undefined || !existsSync(config.socketPath)) return null;
  try {
    return await call();
  } catch (err) {
    if (err instanceof AppError && err.errorCode === "SERVICE_NOT_RUNNING") return null;
    throw err;
  }
}

const str = (v: unknown) => (typeof v === "string" ? v : undefined);

/** Flags that set setup options (absent flags leave the stored choice as it is). */
function optionsFrom(args: ParsedArgs): SetupOptionsPatch {
  const v = args.values;
  const patch: SetupOptionsPatch = {};
  if (str(v.gpu)) patch.gpu = str(v.gpu);
  if (str(v.vm)) patch.vmName = str(v.vm);
  if (str(v.template)) patch.template = str(v.template) as SetupOptionsPatch["template"];
  if (str(v["windows-iso"])) patch.windowsIso = str(v["windows-iso"]);
  if (str(v["virtio-iso"])) patch.virtioIso = str(v["virtio-iso"]);
  if (str(v["looking-glass"])) patch.lookingGlassInstaller = str(v["looking-glass"]);
  if (str(v["ivshmem-driver"])) patch.ivshmemDriver = str(v["ivshmem-driver"]);
  if (str(v.user)) patch.user = str(v.user);
  if (v["acs-override"] === true) patch.acsOverride = true;
  if (v["no-regenerate"] === true) patch.regenerate = false;
  if (v.pinning === true) patch.pinning = true;
  if (v.hugepages === true) patch.hugepages = true;
  const num = (flag: string, key: "diskGiB" | "memoryMiB" | "vcpus") => {
    const s = str(v[flag]);
    if (s === undefined) return;
    if (!/^\d{1,9}$/.test(s)) throw new UsageError(`setup: --${flag} must be a whole number, got ${JSON.stringify(s)}`);
    patch[key] = Number(s);
  };
  num("disk-gib", "diskGiB");
  num("memory-mib", "memoryMiB");
  num("vcpus", "vcpus");
  const pwFile = str(v["password-file"]);
  if (pwFile) {
    try {
      patch.password = readFileSync(pwFile, "utf8").replace(/\r?\n$/, "");
    } catch (err) {
      throw new UsageError(`setup: cannot read --password-file ${pwFile}: ${(err as Error).message}`);
    }
  }
  return patch;
}

function stepArg(s: string | undefined, what: string): StepId {
  const r = StepId.safeParse(s);
  if (!r.success) throw new UsageError(`setup ${what}: expected a step (${SETUP_STEPS.join(", ")}), got ${JSON.stringify(s ?? "")}`);
  return r.data;
}

function exitFor(st: SetupStatus): number {
  return st.state === "failed" ? 1 : 0;
}

export const setupCommand: Command = {
  name: "setup",
  summary: "Guided setup from a fresh install to Windows on the passed-through GPU: detect, VFIO, reboot, verify, VM, unattended install, app.",
  usage: [
    "setup [--gpu ADDR] [--yes] [--json] [--windows-iso PATH] [--virtio-iso PATH] [--looking-glass PATH] [--vm NAME] [--template win11|win10|linux] [--user NAME] [--password-file FILE]",
    "       setup status [--root DIR] [--state-dir DIR] [--json]",
    "       setup verify --boot [--state-dir DIR] [--json]",
    "       setup retry STEP [--yes] [--json]",
    "       setup reset [--from STEP] [--json]",
  ].join("\n"),
  help: [
    "Runs the steps in order until one waits (a confirmation, a reboot, the guest) or fails, and",
    "says what to do next. Run it again to continue; the state is kept in the database.",
    "",
    "Options:",
    "  --gpu ADDR            the GPU to pass through (default: the recommended one)",
    "  --yes                 apply the planned VFIO changes without asking",
    "  --until STEP          stop after this step",
    "  --windows-iso PATH    the Windows installation ISO (never downloaded)",
    "  --virtio-iso PATH     the virtio-win drivers ISO (Windows setup needs it to see the disk)",
    "  --looking-glass PATH  looking-glass-host-setup.exe, installed at first logon",
    "  --ivshmem-driver DIR  the IVSHMEM driver (ivshmem.inf ...), when the virtio ISO has none",
    "  --vm NAME             the VM's name (default windows)",
    "  --template T          win11 (default), win10 or linux",
    "  --user NAME           the Windows local account (default user)",
    "  --password-file FILE  its password (first line of FILE; default: none)",
    "  --disk-gib N, --memory-mib N, --vcpus N   override the sizes chosen from the host",
    "  --pinning, --hugepages                     pin vCPUs to host cores; back memory with hugepages",
    "  --acs-override        plan pcie_acs_override (weakens isolation)",
    "  --no-regenerate       do not rebuild the initramfs after writing",
    "  --boot                (verify) run as the boot-time unit: record the reboot and the verdict",
    "  --from STEP           (reset) make this and every later step pending again (default: all)",
    "  --root DIR, --target ROOT, --state-dir DIR   system root, target root, state directory",
    "  --json                print the status as JSON",
  ].join("\n"),
  flags: {
    ...JSON_FLAG,
    gpu: { type: "string" },
    yes: { type: "boolean", short: "y" },
    until: { type: "string" },
    "windows-iso": { type: "string" },
    "virtio-iso": { type: "string" },
    "looking-glass": { type: "string" },
    "ivshmem-driver": { type: "string" },
    vm: { type: "string" },
    template: { type: "string" },
    user: { type: "string" },
    "password-file": { type: "string" },
    "disk-gib": { type: "string" },
    "memory-mib": { type: "string" },
    vcpus: { type: "string" },
    pinning: { type: "boolean" },
    hugepages: { type: "boolean" },
    "acs-override": { type: "boolean" },
    "no-regenerate": { type: "boolean" },
    boot: { type: "boolean" },
    from: { type: "string" },
    root: { type: "string" },
    target: { type: "string" },
    "state-dir": { type: "string" },
  },
  positionals: true,
  async run(args, ctx) {
    const [sub, ...rest] = args.positionals;
    if (sub !== undefined && !(SUBCOMMANDS as readonly string[]).includes(sub))
      throw new UsageError(`setup: unknown subcommand ${JSON.stringify(sub)} (expected: ${SUBCOMMANDS.join(", ")}, or none to run the flow)`);
    if (rest.length > (sub === "retry" ? 1 : 0)) throw new UsageError(`setup ${sub}: unexpected argument ${JSON.stringify(rest[rest.length - 1])}`);
    const json = args.values.json === true;
    const patch = optionsFrom(args);
    if (sub !== undefined && Object.keys(patch).length) throw new UsageError(`setup ${sub}: option flags (--gpu, --windows-iso, ...) go with plain \`setup\``);
    if (sub === "verify" && args.values.boot !== true) throw new UsageError("setup verify: --boot is required (it is what the boot-time unit runs)");
    const until = str(args.values.until) === undefined ? undefined : stepArg(str(args.values.until), "--until");
    const config = configFrom(args, ctx, { root: "root", target: "targetRoot", "state-dir": "stateDir" });
    const confirm = args.values.yes === true;
    const from = str(args.values.from) === undefined ? undefined : stepArg(str(args.values.from), "reset --from");
    const retryStep = sub === "retry" ? stepArg(rest[0], "retry") : undefined;
    if (sub === undefined || sub === "retry" || sub === "reset") {
      const remote = await viaService(config, args, async () => {
        if (sub === "reset") return callLocalApi<SetupStatus>(config, "POST", "/setup/reset", from ? { from } : {});
        if (sub === "retry") return callLocalApi<SetupStatus>(config, "POST", `/setup/steps/${retryStep}/retry`, { confirm });
        if (Object.keys(patch).length) await callLocalApi<SetupStatus>(config, "POST", "/setup/options", patch);
        return callLocalApi<SetupStatus>(config, "POST", "/setup/advance", { confirm, ...(until ? { until } : {}) });
      });
      if (remote) {
        if (json) printJson(ctx, remote);
        else ctx.stdout(formatStatus(remote));
        return exitFor(remote);
      }
    }
    const c = core(config, ctx);
    try {
      let st: SetupStatus;
      if (sub === "status") st = c.setup.status();
      else if (sub === "reset") st = c.setup.reset({ from });
      else if (sub === "retry") st = await c.setup.retry(retryStep!, { confirm });
      else if (sub === "verify") st = await c.setup.bootVerify();
      else {
        if (Object.keys(patch).length) c.setup.setOptions(patch);
        st = await c.setup.advance({ confirm, until });
      }
      if (json) printJson(ctx, st);
      else ctx.stdout(formatStatus(st));
      // the boot-time unit never fails the boot: its verdict is in the database
      return sub === "verify" || sub === "status" ? 0 : exitFor(st);
    } finally {
      c.close();
    }
  },
};
