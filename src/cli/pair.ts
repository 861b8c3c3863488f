import { configFrom, JSON_FLAG, printJson, UsageError, type Command } from "./command.ts";
import { callLocalApi } from "./local-api.ts";

interface Pending {
  id: string;
  deviceName: string;
  remoteIp: string;
  createdAt: string;
}
interface Pairing {
  id: number;
  name: string;
  fingerprint: string;
  createdAt: string;
  lastSeenAt: string | null;
}

export const pairCommand: Command = {
  name: "pair",
  summary: "Pair Moonlight clients: enter the PIN a client shows, list or remove paired clients.",
  usage: "pair --pin NNNN [--attempt ID] | pair pending | pair list | pair remove ID   [--state-dir DIR] [--json]",
  help: [
    "Talks to the running service over its local socket (<state-dir>/api.sock).",
    "",
    "  pair --pin 1234     complete the pairing a client is waiting on (the PIN it shows)",
    "  --attempt ID        which waiting client, when several are (see `pair pending`)",
    "  pair pending        clients waiting for a PIN",
    "  pair list           paired clients",
    "  pair remove ID      unpair a client",
    "  --json              print JSON",
  ].join("\n"),
  flags: { ...JSON_FLAG, pin: { type: "string" }, attempt: { type: "string" }, "state-dir": { type: "string" } },
  positionals: true,
  async run(args, ctx) {
    const config = configFrom(args, ctx, { "state-dir": "stateDir" });
    const [sub, ...rest] = args.positionals;
    const json = Boolean(args.values.json);
    if (args.values.pin !== undefined) {
      if (sub !== undefined) throw new UsageError("pair: --pin takes no subcommand");
      const r = await callLocalApi<Pending>(config, "POST", "/pairing/pin", { pin: args.values.pin, ...(args.values.attempt ? { attemptId: args.values.attempt } : {}) });
      if (json) printJson(ctx, r);
      else ctx.stdout(`PIN entered for ${r!.deviceName} (${r!.remoteIp}); the client finishes pairing now\n`);
      return 0;
    }
    switch (sub) {
      case "pending": {
        const list = (await callLocalApi<Pending[]>(config, "GET", "/pairing/pending"))!;
        if (json) printJson(ctx, list);
        else if (list.length === 0) ctx.stdout("no client is waiting for a PIN\n");
        else for (const p of list) ctx.stdout(`${p.id}  ${p.deviceName}  ${p.remoteIp}  since ${p.createdAt}\n`);
        return 0;
      }
      case "list": {
        const list = (await callLocalApi<Pairing[]>(config, "GET", "/pairings"))!;
        if (json) printJson(ctx, list.map(({ id, name, fingerprint, createdAt, lastSeenAt }) => ({ id, name, fingerprint, createdAt, lastSeenAt })));
        else if (list.length === 0) ctx.stdout("no paired clients\n");
        else for (const p of list) ctx.stdout(`${String(p.id).padStart(4)}  ${p.name.padEnd(24)} ${p.fingerprint.slice(0, 16)}…  paired ${p.createdAt}  last seen ${p.lastSeenAt ?? "never"}\n`);
        return 0;
      }
      case "remove": {
        const id = rest[0];
        if (!id || !/^\d+$/.test(id)) throw new UsageError("pair remove: give the numeric id from `pair list`");
        await callLocalApi(config, "DELETE", `/pairings/${id}`);
        if (json) printJson(ctx, { removed: Number(id) });
        else ctx.stdout(`unpaired client ${id}\n`);
        return 0;
      }
      case undefined:
        throw new UsageError("pair: give --pin NNNN, or one of: pending, list, remove ID");
      default:
        throw new UsageError(`pair: unknown subcommand ${JSON.stringify(sub)}`);
    }
  },
};
