import type { AuditEntry, LoginCode, TokenCreated, TokenInfo } from "../auth/model.ts";
import { TokenName } from "../auth/model.ts";
import { configFrom, JSON_FLAG, printJson, UsageError, type Command } from "./command.ts";
import { callLocalApi } from "./local-api.ts";

const SCOPES = ["read", "admin"] as const;

function scopeOf(value: unknown, fallback: (typeof SCOPES)[number]): (typeof SCOPES)[number] {
  if (value === undefined) return fallback;
  if (typeof value !== "string" || !(SCOPES as readonly string[]).includes(value)) throw new UsageError(`--scope takes read or admin, not ${JSON.stringify(value)}`);
  return value as (typeof SCOPES)[number];
}

function nameOf(value: unknown, sub: string): string {
  if (typeof value !== "string" || value === "") throw new UsageError(`token ${sub}: give --name NAME`);
  const r = TokenName.safeParse(value);
  if (!r.success) throw new UsageError(`token ${sub}: name ${JSON.stringify(value.slice(0, 64))}: ${r.error.issues[0]?.message}`);
  return value;
}

export const tokenCommand: Command = {
  name: "token",
  summary: "API tokens for TCP callers of the management API: create, list, revoke; one-time browser login codes.",
  usage: "token create --name NAME [--scope read|admin] | token list | token revoke NAME | token login-code [--scope read|admin]   [--state-dir DIR] [--json]",
  help: [
    "Talks to the running service over its local socket (root or the admin group).",
    "",
    "  token create --name NAME   a new token, printed once (send it as Authorization: Bearer TOKEN)",
    "  --scope read|admin         read: GET only (the default); admin: everything",
    "  token list                 tokens by name, scope, creator, last use (never the secrets)",
    "  token revoke NAME          the token stops working at once",
    "  token login-code           a one-time code a browser exchanges for a session (default scope admin)",
    "  --json                     print JSON (create: includes the token)",
  ].join("\n"),
  flags: { ...JSON_FLAG, name: { type: "string" }, scope: { type: "string" }, "state-dir": { type: "string" } },
  positionals: true,
  async run(args, ctx) {
    const config = configFrom(args, ctx, { "state-dir": "stateDir" });
    const [sub, target, ...extra] = args.positionals;
    const json = Boolean(args.values.json);
    if (extra.length) throw new UsageError(`token: unexpected ${JSON.stringify(extra[0])}`);
    switch (sub) {
      case "create": {
        if (target !== undefined) throw new UsageError("token create: the name goes in --name NAME");
        const body = { name: nameOf(args.values.name, "create"), scope: scopeOf(args.values.scope, "read") };
        const t = (await callLocalApi<TokenCreated>(config, "POST", "/tokens", body))!;
        if (json) printJson(ctx, t);
        else ctx.stdout(`${t.token}\n`), ctx.stderr(`token ${t.name} (scope ${t.scope}) created; it is shown only this once\n`);
        return 0;
      }
      case "list": {
        const list = (await callLocalApi<TokenInfo[]>(config, "GET", "/tokens"))!;
        if (json) printJson(ctx, list);
        else if (list.length === 0) ctx.stdout("no API tokens\n");
        else for (const t of list) ctx.stdout(`${t.name.padEnd(24)} ${t.scope.padEnd(6)} by ${t.createdBy}  created ${t.createdAt}  last used ${t.lastUsedAt ?? "never"}\n`);
        return 0;
      }
      case "revoke": {
        const name = nameOf(target ?? args.values.name, "revoke");
        await callLocalApi(config, "DELETE", `/tokens/${encodeURIComponent(name)}`);
        if (json) printJson(ctx, { revoked: name });
        else ctx.stdout(`revoked token ${name}\n`);
        return 0;
      }
      case "login-code": {
        const code = (await callLocalApi<LoginCode>(config, "POST", "/auth/login-codes", { scope: scopeOf(args.values.scope, "admin") }))!;
        if (json) printJson(ctx, code);
        else ctx.stdout(`${code.code}\n`), ctx.stderr(`one-time login code (scope ${code.scope}), valid until ${code.expiresAt}\n`);
        return 0;
      }
      case undefined:
        throw new UsageError("token: give one of: create, list, revoke NAME, login-code");
      default:
        throw new UsageError(`token: unknown subcommand ${JSON.stringify(sub)}`);
    }
  },
};

export const auditCommand: Command = {
  name: "audit",
  summary: "The audit log: every mutating API call (who and what) and every change to the host system.",
  usage: "audit [--limit N] [--action NAME] [--actor PREFIX] [--state-dir DIR] [--json]",
  help: ["Talks to the running service over its local socket; newest first.", "", "  --limit N        at most N rows (default 50, at most 1000)", "  --action NAME    only rows of this action (api.call, vfio.apply, vm.define, ...)", "  --actor PREFIX   only rows whose actor starts so (\"uid 1000\", \"token ci\")"].join("\n"),
  flags: { ...JSON_FLAG, limit: { type: "string" }, action: { type: "string" }, actor: { type: "string" }, "state-dir": { type: "string" } },
  async run(args, ctx) {
    const config = configFrom(args, ctx, { "state-dir": "stateDir" });
    const limit = args.values.limit === undefined ? "50" : String(args.values.limit);
    if (!/^\d{1,4}$/.test(limit) || Number(limit) < 1 || Number(limit) > 1000) throw new UsageError("audit: --limit takes 1 to 1000");
    const q = new URLSearchParams({ limit });
    if (typeof args.values.action === "string") q.set("action", args.values.action);
    if (typeof args.values.actor === "string") q.set("actor", args.values.actor);
    const rows = (await callLocalApi<AuditEntry[]>(config, "GET", `/audit?${q}`))!;
    if (args.values.json) printJson(ctx, rows);
    else if (rows.length === 0) ctx.stdout("the audit log is empty\n");
    else for (const r of rows) ctx.stdout(`${r.createdAt}  ${r.actor.padEnd(22)} ${r.action.padEnd(12)} ${r.status.padEnd(8)} ${r.target}\n`);
    return 0;
  },
};
