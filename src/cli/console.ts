/**
 * `console open`: a one-time login URL of the web console for the desktop user. The code goes
 * after `#` (the fragment never reaches a server, a proxy or a log); the page exchanges it for a
 * browser session and removes it from the address bar.
 */
import type { LoginCode } from "../auth/model.ts";
import type { Config } from "../config.ts";
import { consoleLoginUrl } from "../console/url.ts";
import { configFrom, JSON_FLAG, printJson, UsageError, type Command } from "./command.ts";
import { callLocalApi } from "./local-api.ts";

const WILDCARD = new Set(["0.0.0.0", "::", "[::]", "*"]);

/** The API's base URL as a browser on this machine reaches it. */
export function apiBaseUrl(config: Pick<Config, "host" | "port">): string {
  const host = WILDCARD.has(config.host) ? "127.0.0.1" : config.host;
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  const loopback = h === "localhost" || h === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
  const shown = host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
  return `${loopback ? "http" : "https"}://${shown}:${config.port}`;
}

export const consoleCommand: Command = {
  name: "console",
  summary: "The web console: print a one-time login URL for this machine's browser.",
  usage: "console open [--state-dir DIR] [--json]",
  help: [
    "Talks to the running service over its local socket (root or the admin group).",
    "",
    "  console open   a one-time login URL (valid once, for a few minutes); open it in a browser",
    "  --json         print { url, expiresAt, scope }",
  ].join("\n"),
  flags: { ...JSON_FLAG, "state-dir": { type: "string" } },
  positionals: true,
  async run(args, ctx) {
    const config = configFrom(args, ctx, { "state-dir": "stateDir" });
    const [sub, ...extra] = args.positionals;
    if (sub !== "open") throw new UsageError(sub === undefined ? "console: give open" : `console: unknown subcommand ${JSON.stringify(sub)}`);
    if (extra.length) throw new UsageError(`console open: unexpected ${JSON.stringify(extra[0])}`);
    const code = (await callLocalApi<LoginCode>(config, "POST", "/auth/login-codes", { scope: "admin" }))!;
    const url = consoleLoginUrl(apiBaseUrl(config), code.code);
    if (args.values.json) printJson(ctx, { url, expiresAt: code.expiresAt, scope: code.scope });
    else ctx.stdout(`${url}\n`), ctx.stderr(`one-time login URL (scope ${code.scope}), valid once until ${code.expiresAt}\n`);
    return 0;
  },
};
