import { GS_PERMISSIONS } from "../gamestream/permissions.ts";
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
  permissions: string[];
  createdAt: string;
  lastSeenAt: string | null;
}

interface LumenPairing {
  id: number;
  clientId: string;
  name: string;
  createdAt: string;
  lastSeenAt: string | null;
}

const PERMS = GS_PERMISSIONS.join("|");
/** lumen/1 client ids (src/lumen/messages.ts hello.clientId). */
const LUMEN_CLIENT_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** `pair grant|revoke ID PERM...`: the id and the permission names, checked before the service is asked. */
function permissionArgs(sub: string, rest: string[]): { id: string; perms: string[] } {
  const [id, ...perms] = rest;
  if (!id || !/^\d{1,15}$/.test(id)) throw new UsageError(`pair ${sub}: give the numeric id from \`pair list\`, then ${PERMS}`);
  if (perms.length === 0) throw new UsageError(`pair ${sub} ${id}: name a permission (${PERMS})`);
  const names = perms.flatMap((p) => p.split(",")).filter(Boolean);
  const bad = names.filter((p) => !(GS_PERMISSIONS as readonly string[]).includes(p));
  if (bad.length) throw new UsageError(`pair ${sub}: unknown permission ${bad.map((b) => JSON.stringify(b)).join(", ")} (one of ${PERMS})`);
  return { id, perms: [...new Set(names)] };
}

export const pairCommand: Command = {
  name: "pair",
  summary: "Pair Moonlight and lumen/1 clients: enter the PIN a client shows, list or remove paired clients, grant or revoke what Moonlight clients may do.",
  usage: `pair --pin NNNN [--attempt ID] | pair pending | pair list | pair remove ID [--lumen] | pair grant ID ${PERMS} | pair revoke ID PERM   [--state-dir DIR] [--json]`,
  help: [
    "Talks to the running service over its local socket (<state-dir>/api.sock).",
    "",
    "  pair --pin 1234     complete the pairing a client is waiting on (the PIN it shows)",
    "  --attempt ID        which waiting client, when several are (see `pair pending`)",
    "  pair pending        clients waiting for a PIN",
    "  pair list           paired clients: Moonlight ones (numeric id, permissions), then lumen/1 ones (client id)",
    "  pair remove ID      unpair a client: a numeric id is a Moonlight client's, any other a lumen/1 client id",
    "  --lumen             take ID as a lumen/1 client id even when it is all digits",
    "  pair grant ID PERM  allow a client more (several names, or a,b,c, at once)",
    "  pair revoke ID PERM take a permission away (applies to a running session at once)",
    "",
    "Permissions: view (watch: app list, resume its own session), keyboard, mouse, controller",
    "(input on the control stream), launch (start apps), clipboard. The first client paired gets",
    "all of them; later clients get view only until granted more.",
    "  --json              print JSON",
  ].join("\n"),
  flags: { ...JSON_FLAG, pin: { type: "string" }, attempt: { type: "string" }, lumen: { type: "boolean" }, "state-dir": { type: "string" } },
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
        const lumen = (await callLocalApi<LumenPairing[]>(config, "GET", "/lumen/pairings"))!;
        if (json) {
          printJson(ctx, [
            ...list.map(({ id, name, fingerprint, permissions, createdAt, lastSeenAt }) => ({ protocol: "gamestream", id, name, fingerprint, permissions, createdAt, lastSeenAt })),
            ...lumen.map(({ clientId, name, createdAt, lastSeenAt }) => ({ protocol: "lumen", id: clientId, name, createdAt, lastSeenAt })),
          ]);
        } else if (list.length === 0 && lumen.length === 0) ctx.stdout("no paired clients\n");
        else {
          for (const p of list)
            ctx.stdout(`${String(p.id).padStart(4)}  ${p.name.padEnd(24)} ${p.fingerprint.slice(0, 16)}…  ${(p.permissions.join(",") || "(none)").padEnd(12)}  paired ${p.createdAt}  last seen ${p.lastSeenAt ?? "never"}\n`);
          if (lumen.length) ctx.stdout(`lumen/1 clients:\n`);
          for (const p of lumen) ctx.stdout(`  ${p.clientId.padEnd(28)} ${p.name.padEnd(24)} paired ${p.createdAt}  last seen ${p.lastSeenAt ?? "never"}\n`);
        }
        return 0;
      }
      case "grant":
      case "revoke": {
        const { id, perms } = permissionArgs(sub, rest);
        const p = (await callLocalApi<Pairing>(config, "POST", `/pairings/${id}/permissions`, { [sub]: perms }))!;
        if (json) printJson(ctx, { id: p.id, name: p.name, permissions: p.permissions });
        else ctx.stdout(`${sub === "grant" ? "granted" : "revoked"} ${perms.join(", ")} ${sub === "grant" ? "to" : "from"} client ${p.id} (${p.name}); it may now: ${p.permissions.join(", ") || "nothing"}\n`);
        return 0;
      }
      case "remove": {
        const id = rest[0];
        if (!id || !LUMEN_CLIENT_ID.test(id)) throw new UsageError("pair remove: give an id from `pair list` (a number for a Moonlight client, the client id for a lumen/1 one)");
        if (args.values.lumen || !/^\d+$/.test(id)) {
          await callLocalApi(config, "DELETE", `/lumen/pairings/${encodeURIComponent(id)}`);
          if (json) printJson(ctx, { removed: id, protocol: "lumen" });
          else ctx.stdout(`unpaired lumen/1 client ${id}\n`);
          return 0;
        }
        await callLocalApi(config, "DELETE", `/pairings/${id}`);
        if (json) printJson(ctx, { removed: Number(id) });
        else ctx.stdout(`unpaired client ${id}\n`);
        return 0;
      }
      case undefined:
        throw new UsageError("pair: give --pin NNNN, or one of: pending, list, remove ID, grant ID PERM, revoke ID PERM");
      default:
        throw new UsageError(`pair: unknown subcommand ${JSON.stringify(sub)}`);
    }
  },
};
