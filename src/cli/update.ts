import { loadConfig, type Config } from "../config.ts";
import { createCore, type Core } from "../core.ts";
import { createLogger } from "../log.ts";
import type { CheckResult } from "../updates/checks.ts";
import type { UpdateView } from "../updates/model.ts";
import { progressBar } from "../updates/pacman.ts";
import { JSON_FLAG, printJson, UsageError, type CliContext, type Command, type ParsedArgs } from "./command.ts";

/** The config with --state-dir and --root applied. */
export function updatesConfig(args: ParsedArgs, ctx: CliContext): Config {
  const flags: Record<string, unknown> = {};
  if (args.values["state-dir"] !== undefined) flags.stateDir = args.values["state-dir"];
  if (args.values.root !== undefined) flags.updates = { root: args.values.root };
  return loadConfig({ configPath: args.values.config as string | undefined, env: ctx.env, flags });
}

export function offlineCore(config: Config, ctx: CliContext): Core {
  return createCore(config, { embeddedNativeLib: ctx.embeddedNativeLib, logger: createLogger({ level: "warn", format: "text", write: (l: string) => ctx.stderr(l + "\n") }) });
}

function checkLine(c: CheckResult): string {
  const mark = c.status === "passed" ? "ok  " : c.status === "skipped" ? "skip" : c.required ? "FAIL" : "warn";
  return `  ${mark} ${c.name}: ${c.detail}`;
}

export function printUpdate(ctx: CliContext, u: UpdateView): void {
  ctx.stdout(`update ${u.id}: ${u.verdict ?? u.status}  (started ${u.startedAt}${u.finishedAt ? `, finished ${u.finishedAt}` : ""})\n`);
  if (u.packages.length) ctx.stdout(`  ${u.packages.length} package(s): ${u.packages.slice(0, 20).map((p) => `${p.name} ${p.from ?? "∅"} → ${p.to ?? "removed"}`).join(", ")}${u.packages.length > 20 ? ", …" : ""}\n`);
  if (u.pre) ctx.stdout(`  pre snapshot ${u.pre.id}: ${u.pre.path}\n`);
  if (u.post) ctx.stdout(`  post snapshot ${u.post.id}: ${u.post.path}\n`);
  for (const c of u.checks) ctx.stdout(checkLine(c) + "\n");
  if (u.nextBoot) ctx.stdout(`  next boot mounts: ${u.nextBoot}\n`);
  if (u.reason) ctx.stdout(`  ${u.reason}\n`);
}

const id = (s: string | undefined, what: string): number => {
  if (!s || !/^\d+$/.test(s)) throw new UsageError(`${what}: give the numeric id from \`update history\``);
  return Number(s);
};

export const updateCommand: Command = {
  name: "update",
  summary: "System updates inside snapshots: run, check health, history, roll back.",
  usage: "update check|run|history|show ID|rollback [ID]  [--root DIR] [--command CMD] [--check CMD]... [--no-reboot] [--state-dir DIR] [--json]",
  help: [
    "  update run        pre snapshot, one `pacman -Syu`, post snapshot, health checks; a failed",
    "                    required check rolls back to the pre snapshot (the next boot mounts it)",
    "  update check      recover an update a crash interrupted, then run the health checks;",
    "                    --boot: the verification at boot (boot counting, rollback when tries run out)",
    "  update history    past updates, newest first",
    "  update show ID    one update: packages, snapshots, checks, what happened",
    "  update rollback [ID]  roll back to the pre snapshot of update ID (default: the newest)",
    "",
    "  --root DIR        the mounted tree to treat as the system root (tests, chroots)",
    "  --command CMD     the package command instead of `pacman -Syu --noconfirm` (run by sh -c)",
    "  --check CMD       add a required check command (repeatable; exit 0 = healthy)",
    "  --no-reboot       do not schedule a reboot after a rollback",
    "  --state-dir DIR   the appliance's state (database)",
    "  --json            print JSON",
  ].join("\n"),
  flags: {
    ...JSON_FLAG,
    root: { type: "string" },
    command: { type: "string" },
    check: { type: "string", multiple: true },
    "no-reboot": { type: "boolean" },
    boot: { type: "boolean" },
    "state-dir": { type: "string" },
  },
  positionals: true,
  async run(args, ctx) {
    const [sub, ...rest] = args.positionals;
    const json = Boolean(args.values.json);
    const checks = (args.values.check as string[] | undefined) ?? [];
    const reboot = args.values["no-reboot"] ? false : undefined;
    if (sub === undefined) throw new UsageError("update: give one of: check, run, history, show ID, rollback [ID]");
    if (!["check", "run", "history", "show", "rollback"].includes(sub)) throw new UsageError(`update: unknown subcommand ${JSON.stringify(sub)}`);
    if (args.values.command !== undefined && sub !== "run") throw new UsageError("update: --command goes with `update run`");
    const core = offlineCore(updatesConfig(args, ctx), ctx);
    try {
      const root = core.config.updates.root;
      switch (sub) {
        case "run": {
          const tty = Boolean(process.stderr.isTTY) && !json;
          let bar = "";
          const u = await core.updates.run({
            root,
            command: args.values.command as string | undefined,
            checks,
            reboot,
            onEvent(e) {
              if (e.type === "progress" && tty) {
                bar = progressBar(e);
                ctx.stderr(`\r\x1b[K${bar}`);
              } else if (e.type === "output" && !json) {
                if (tty) ctx.stderr(`\r\x1b[K`);
                ctx.stdout(e.line + "\n");
                if (tty && bar) ctx.stderr(bar);
              } else if (e.type === "phase" && !json) ctx.stdout(`:: ${e.message}\n`);
            },
          });
          if (tty) ctx.stderr("\r\x1b[K");
          if (json) printJson(ctx, u);
          else printUpdate(ctx, u);
          return u.verdict === "ok" ? 0 : 1;
        }
        case "check": {
          const recovered = await core.updates.recoverInterrupted();
          if (args.values.boot) {
            const r = await core.updates.verifyBoot({ reboot });
            if (json) printJson(ctx, { root, checks: r.checks, healthy: r.healthy, recovered, update: r.update });
            else {
              for (const c of r.checks) ctx.stdout(checkLine(c) + "\n");
              if (r.update) printUpdate(ctx, r.update);
            }
            return r.healthy ? 0 : 1;
          }
          const results = await core.updates.check(root, checks);
          const healthy = !results.some((c) => c.required && c.status === "failed");
          if (json) printJson(ctx, { root, checks: results, healthy, recovered });
          else {
            for (const u of recovered) printUpdate(ctx, u);
            for (const c of results) ctx.stdout(checkLine(c) + "\n");
            ctx.stdout(healthy ? "healthy\n" : "a required check failed\n");
          }
          return healthy ? 0 : 1;
        }
        case "history": {
          const list = core.updates.history();
          if (json) printJson(ctx, { updates: list });
          else if (list.length === 0) ctx.stdout("no updates yet\n");
          else for (const u of list) ctx.stdout(`${String(u.id).padStart(4)}  ${u.startedAt}  ${(u.verdict ?? u.status).padEnd(11)} ${String(u.packages.length).padStart(4)} pkgs  ${u.reason ?? ""}\n`);
          return 0;
        }
        case "show": {
          const u = core.updates.show(id(rest[0], "update show"));
          if (json) printJson(ctx, u);
          else printUpdate(ctx, u);
          return 0;
        }
        case "rollback": {
          const u = await core.updates.rollback(rest[0] === undefined ? undefined : id(rest[0], "update rollback"), { reboot });
          if (json) printJson(ctx, u);
          else printUpdate(ctx, u);
          return 0;
        }
      }
      return 2;
    } finally {
      core.close();
    }
  },
};
