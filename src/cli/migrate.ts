import { loadConfig, type Config } from "../config.ts";
import { migrationsRepo } from "../db/repos/migrations.ts";
import { openDatabase } from "../db/client.ts";
import { resolveNativePath } from "../../ffi/native.ts";
import type { Plan, Progress, Report } from "../migration/model.ts";
import { MigrationService } from "../migration/service.ts";
import { humanBytes } from "../migration/words.ts";
import { EventBus } from "../events/bus.ts";
import { JSON_FLAG, printJson, UsageError, type CliContext, type Command, type ParsedArgs } from "./command.ts";

function migrateConfig(args: ParsedArgs, ctx: CliContext): Config {
  const flags: Record<string, unknown> = {};
  if (args.values["state-dir"] !== undefined) flags.stateDir = args.values["state-dir"];
  return loadConfig({ configPath: args.values.config as string | undefined, env: ctx.env, flags });
}

function printPlan(ctx: CliContext, p: Plan): void {
  ctx.stdout(`migration ${p.id}: ${p.source.input} (${p.source.kind}${p.source.mountedBy ? `, mounted read-only by ${p.source.mountedBy}` : ""})\n`);
  for (const w of p.warnings) ctx.stdout(`  ! ${w}\n`);
  for (const pr of p.profiles) ctx.stdout(pr.skipped ? `  profile ${pr.name}: skipped (${pr.skipped})\n` : `  profile ${pr.name} → ${pr.linuxUser ?? "?"} (${pr.target})\n`);
  for (const i of p.items) {
    const conf = i.conflicts.count ? `  ${i.conflicts.count} conflict(s)` : "";
    const extra = i.reinstall ? `  reinstall: ${i.reinstall.ids.join(", ")}` : "";
    ctx.stdout(`  [${i.fidelity.padEnd(10)}] ${i.label}: ${i.files} file(s), ${humanBytes(i.bytes)} → ${i.target}${conf}${extra}\n`);
    if (i.why && i.fidelity !== "exact") ctx.stdout(`               ${i.why}\n`);
    if (i.livePath) ctx.stdout(`               instead: ${i.livePath.hint}\n`);
  }
  const t = p.totals;
  ctx.stdout(`  total: ${t.files} file(s), ${humanBytes(t.bytes)} in ${t.items} item(s) (${t.byFidelity.exact} exact, ${t.byFidelity.translated} translated, ${t.byFidelity.reinstall} to reinstall, ${t.byFidelity.cannot} cannot move); ${t.conflicts} conflict(s); about ${Math.ceil(p.estimateSeconds)} s; policy ${p.policy}\n`);
  ctx.stdout(`  run it: neuron-appliance migrate run ${p.id}\n`);
}

function bar(p: Progress): string {
  const frac = p.bytesTotal ? p.bytesDone / p.bytesTotal : p.filesTotal ? p.filesDone / p.filesTotal : 0;
  const w = 30;
  const n = Math.max(0, Math.min(w, Math.round(frac * w)));
  const eta = p.etaSeconds === null ? "" : ` ETA ${p.etaSeconds}s`;
  return `\r[${"#".repeat(n)}${" ".repeat(w - n)}] ${(frac * 100).toFixed(0).padStart(3)}%  ${p.filesDone}/${p.filesTotal} files  ${humanBytes(p.bytesDone)}/${humanBytes(p.bytesTotal)}${eta}  `;
}

const numericId = (s: string) => /^\d+$/.test(s);

/** Pulls the VM's profile(s) through its guest agent into <stateDir>/migration-staging/<vm> (resumable). */
async function mirrorVm(config: Config, ctx: CliContext, vm: string, user: string | undefined, json: boolean): Promise<string> {
  const { createCore } = await import("../core.ts");
  const { createLogger } = await import("../log.ts");
  const { pullFromVm } = await import("../migration/live.ts");
  const core = createCore(config, { embeddedNativeLib: ctx.embeddedNativeLib, logger: createLogger({ level: "warn", format: "text", write: (l: string) => ctx.stderr(l + "\n") }) });
  try {
    const { dir, mirror } = await pullFromVm(core.guest, config.stateDir, vm, { user });
    if (!json) ctx.stderr(`fetched ${mirror.files} file(s) from ${vm} (${mirror.skipped} already here) into ${dir}\n`);
    return dir;
  } finally {
    core.close();
  }
}

export const migrateCommand: Command = {
  name: "migrate",
  summary: "Move a person's Windows files and settings to Linux: plan, run (verified, resumable), report, undo.",
  usage: "migrate plan SRC|--from-vm NAME|run SRC|ID|report ID|list|undo ID  [--user WINUSER] [--target DIR] [--policy skip|rename|newer] [--recovery-key KEY] [--accept-unsafe-source] [--state-dir DIR] [--json]",
  help: [
    "  migrate plan SRC     what would move from SRC (a Windows partition, a disk image, or a folder):",
    "                       every item with size, category, target, conflicts and fidelity",
    "  migrate run SRC|ID   plan and run, or run (resume) a saved plan; every file verified by checksum",
    "  migrate report ID    the report of a run",
    "  migrate list         migrations, newest first",
    "  migrate undo ID      remove what run ID created (files changed since are kept and listed)",
    "",
    "  --from-vm NAME       read from the running VM NAME through its guest agent (Windows keeps running)",
    "  --user WINUSER       the Windows profile (default: every profile that is a person)",
    "  --target DIR         the Linux home to migrate into (default: the mapped user's home)",
    "  --policy P           on an existing file: skip (default), rename, or newer (keeps the older aside)",
    "  --recovery-key KEY   BitLocker recovery key (48 digits)",
    "  --accept-unsafe-source  read a hibernated / Fast Startup / dirty volume anyway (read-only)",
    "  --state-dir DIR      the appliance's state (database)",
    "  --json               print JSON",
  ].join("\n"),
  flags: {
    ...JSON_FLAG,
    user: { type: "string" },
    target: { type: "string" },
    policy: { type: "string" },
    "recovery-key": { type: "string" },
    "accept-unsafe-source": { type: "boolean" },
    "from-vm": { type: "string" },
    "state-dir": { type: "string" },
  },
  positionals: true,
  async run(args, ctx) {
    const [sub, arg, ...extra] = args.positionals;
    const json = Boolean(args.values.json);
    const subs = ["plan", "run", "report", "list", "undo"];
    if (!sub || !subs.includes(sub)) throw new UsageError(sub ? `migrate: unknown subcommand ${JSON.stringify(sub)}` : `migrate: give one of: ${subs.join(", ")}`);
    if (extra.length) throw new UsageError(`migrate ${sub}: unexpected ${JSON.stringify(extra[0])}`);
    const fromVm = args.values["from-vm"] as string | undefined;
    if (fromVm !== undefined) {
      if (sub !== "plan" && sub !== "run") throw new UsageError("migrate: --from-vm goes with plan or run");
      if (arg) throw new UsageError(`migrate ${sub}: give either SRC or --from-vm NAME`);
    }
    const policy = args.values.policy as string | undefined;
    if (policy !== undefined && !["skip", "rename", "newer"].includes(policy)) throw new UsageError("migrate: --policy is skip, rename or newer");
    if ((sub === "plan" || sub === "run") && !arg && fromVm === undefined) throw new UsageError(`migrate ${sub}: give the source (a Windows partition, disk image or folder)${sub === "run" ? " or a plan id" : ""}`);
    if ((sub === "report" || sub === "undo") && !(arg && numericId(arg))) throw new UsageError(`migrate ${sub}: give the numeric id from \`migrate list\``);
    const config = migrateConfig(args, ctx);
    const database = openDatabase(config.dbPath);
    const events = new EventBus();
    const svc = new MigrationService({ repo: migrationsRepo(database.db), settings: config.migration, stateDir: config.stateDir, etcDir: config.etcDir, nativePath: () => resolveNativePath({ explicit: config.nativeLib, embedded: ctx.embeddedNativeLib }), events });
    const req = {
      user: args.values.user as string | undefined,
      target: args.values.target as string | undefined,
      policy: policy as "skip" | "rename" | "newer" | undefined,
      recoveryKey: args.values["recovery-key"] as string | undefined,
      acceptUnsafeSource: args.values["accept-unsafe-source"] ? true : undefined,
    };
    let source = arg;
    if (fromVm !== undefined) source = await mirrorVm(config, ctx, fromVm, req.user, json);
    const tty = !json && process.stderr.isTTY;
    const onProgress = tty ? (p: Progress) => ctx.stderr(bar(p)) : undefined;
    const stop = () => svc.stopAll();
    process.once("SIGINT", stop);
    try {
      switch (sub) {
        case "plan": {
          const p = await svc.plan({ source: source!, ...req });
          if (json) printJson(ctx, p);
          else printPlan(ctx, p);
          return 0;
        }
        case "run": {
          let report: Report;
          if (fromVm === undefined && numericId(arg!) && !(await Bun.file(arg!).exists())) report = await svc.run(Number(arg), { policy: req.policy, acceptUnsafeSource: req.acceptUnsafeSource, recoveryKey: req.recoveryKey }, onProgress);
          else report = await svc.planAndRun({ source: source!, ...req }, onProgress);
          if (tty) ctx.stderr("\n");
          if (json) printJson(ctx, report);
          else ctx.stdout(`migration ${report.id}: ${report.status}\n${report.words}\n`);
          return report.status === "done" && report.failed.length === 0 ? 0 : 1;
        }
        case "report": {
          const r = svc.report(Number(arg));
          if (json) printJson(ctx, r);
          else ctx.stdout(`migration ${r.id}: ${r.status}\n${r.words}\n`);
          return 0;
        }
        case "list": {
          const l = svc.list();
          if (json) printJson(ctx, { migrations: l });
          else if (!l.length) ctx.stdout("no migrations\n");
          else for (const m of l) ctx.stdout(`${String(m.id).padStart(4)}  ${m.status.padEnd(11)} ${m.createdAt}  ${m.source}  ${m.profiles.join(", ")}  ${m.files} file(s), ${humanBytes(m.bytes)}\n`);
          return 0;
        }
        default: {
          const u = svc.undo(Number(arg));
          if (json) printJson(ctx, u);
          else {
            ctx.stdout(`migration ${u.id}: removed ${u.removed} file(s)${u.restored ? `, put back ${u.restored} older file(s)` : ""}\n`);
            for (const r of u.refused) ctx.stdout(`  kept ${r.path}: ${r.reason === "changed" ? "changed since the migration" : "no longer there"}\n`);
          }
          return u.refused.length ? 1 : 0;
        }
      }
    } finally {
      process.off("SIGINT", stop);
      svc.close();
      database.close();
    }
  },
};
