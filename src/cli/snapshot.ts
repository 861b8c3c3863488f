import { JSON_FLAG, printJson, UsageError, type Command } from "./command.ts";
import { offlineCore, updatesConfig } from "./update.ts";

const num = (s: string | undefined, what: string): number => {
  if (!s || !/^\d+$/.test(s)) throw new UsageError(`${what}: give the numeric id from \`snapshot list\``);
  return Number(s);
};

export const snapshotCommand: Command = {
  name: "snapshot",
  summary: "Snapshots of the system root (btrfs / snapper): list, create, delete, diff.",
  usage: "snapshot list|create [DESCRIPTION]|delete ID|diff ID1 ID2  [--root DIR] [--state-dir DIR] [--json]",
  help: [
    "  snapshot list             the snapshots the appliance took (pre/post pairs, manual, rollback)",
    "  snapshot create [DESC]    a manual snapshot of the root (and its /boot files)",
    "  snapshot delete ID        delete one (not the one the next boot mounts)",
    "  snapshot diff ID1 ID2     the files changed between two snapshots",
    "  --root DIR                the mounted tree to treat as the system root",
  ].join("\n"),
  flags: { ...JSON_FLAG, root: { type: "string" }, "state-dir": { type: "string" } },
  positionals: true,
  async run(args, ctx) {
    const [sub, ...rest] = args.positionals;
    const json = Boolean(args.values.json);
    if (!sub || !["list", "create", "delete", "diff"].includes(sub)) throw new UsageError(sub ? `snapshot: unknown subcommand ${JSON.stringify(sub)}` : "snapshot: give one of: list, create, delete ID, diff ID1 ID2");
    const ids = sub === "delete" ? [num(rest[0], "snapshot delete")] : sub === "diff" ? [num(rest[0], "snapshot diff"), num(rest[1], "snapshot diff")] : [];
    const core = offlineCore(updatesConfig(args, ctx), ctx);
    try {
      const root = core.config.updates.root;
      const s = core.snapshots;
      switch (sub) {
        case "list": {
          const list = s.list(root).map((r) => s.view(r));
          if (json) printJson(ctx, { snapshots: list });
          else if (list.length === 0) ctx.stdout(`no snapshots of ${root}\n`);
          else for (const v of list) ctx.stdout(`${String(v.id).padStart(4)}  ${v.kind.padEnd(8)} ${v.backend}#${v.ref}  ${v.createdAt}  ${v.label}  ${v.path}${v.bootFiles.length ? `  (+${v.bootFiles.length} /boot files)` : ""}\n`);
          return 0;
        }
        case "create": {
          const row = await s.create(root, { kind: "manual", description: rest.join(" ") || "manual snapshot" });
          const v = s.view(row);
          if (json) printJson(ctx, v);
          else ctx.stdout(`snapshot ${v.id} (${v.backend}#${v.ref}): ${v.path}\n`);
          return 0;
        }
        case "delete": {
          await s.delete(ids[0]!);
          if (json) printJson(ctx, { deleted: ids[0] });
          else ctx.stdout(`deleted snapshot ${ids[0]}\n`);
          return 0;
        }
        default: {
          const d = s.diff(ids[0]!, ids[1]!);
          if (json) printJson(ctx, d);
          else {
            for (const c of d.changes) ctx.stdout(`${c.change === "added" ? "+" : c.change === "removed" ? "-" : "c"} ${c.path}\n`);
            if (d.truncated) ctx.stdout("(truncated)\n");
          }
          return 0;
        }
      }
    } finally {
      core.close();
    }
  },
};
