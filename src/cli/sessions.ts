import { configFrom, JSON_FLAG, printJson, UsageError, type Command } from "./command.ts";
import { callLocalApi } from "./local-api.ts";

interface Session {
  id: string;
  client: { name: string | null; fingerprint: string; address: string };
  appName: string;
  width: number;
  height: number;
  fps: number;
  state: string;
  codec: string | null;
  bitrateKbps: number | null;
  framesSent: number;
  hostFps: number;
  latency: { p50Ms: number; p99Ms: number };
  loss: { framesLostReported: number; fecRecoveredFrames: number; fecUnrecoverableFrames: number };
  audioSource: string | null;
  startedAt: string;
}
interface Ended {
  id: string;
  client: { name: string | null; address: string };
  appName: string;
  endedAt: string;
  reason: string;
  detail: string | null;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function line(s: Session): string {
  const who = `${s.client.name ?? s.client.fingerprint.slice(0, 16)}@${s.client.address || "?"}`;
  return [
    s.id,
    who.padEnd(28),
    s.appName,
    `${s.width}x${s.height}@${s.fps}`,
    s.state,
    `${s.codec ?? "-"} ${s.bitrateKbps ?? "-"} kbps`,
    `${s.framesSent} frames, ${s.hostFps} fps, latency p50 ${s.latency.p50Ms} / p99 ${s.latency.p99Ms} ms`,
    `lost ${s.loss.framesLostReported}, FEC recovered ${s.loss.fecRecoveredFrames} / unrecoverable ${s.loss.fecUnrecoverableFrames}`,
    `audio ${s.audioSource ?? "-"}`,
  ].join("  ");
}

export const sessionsCommand: Command = {
  name: "sessions",
  summary: "Moonlight stream sessions: list them, show one, end one, change one's bitrate, see why recent ones ended.",
  usage: "sessions [list] | sessions show ID | sessions end ID | sessions bitrate ID KBPS | sessions ended   [--state-dir DIR] [--json]",
  help: [
    "Talks to the running service over its local socket (<state-dir>/api.sock).",
    "",
    "  sessions list       running sessions, one per streaming client (the default)",
    "  sessions show ID    one session with all its statistics (JSON)",
    "  sessions end ID     end a session: its client is told the stream ended; the others go on",
    "  sessions bitrate ID KBPS",
    "                      change a streaming session's bitrate live (500-500000 kbps): its encoder",
    "                      takes it from the next frame, no restart",
    "  sessions ended      recently ended sessions and why they ended",
    "  --json              print JSON",
  ].join("\n"),
  flags: { ...JSON_FLAG, "state-dir": { type: "string" } },
  positionals: true,
  async run(args, ctx) {
    const config = configFrom(args, ctx, { "state-dir": "stateDir" });
    const [sub = "list", id, ...rest] = args.positionals;
    const json = Boolean(args.values.json);
    const extra = sub === "bitrate" ? rest.slice(1) : rest;
    if (extra.length) throw new UsageError(`sessions: unexpected ${JSON.stringify(extra[0])}`);
    const needId = () => {
      if (!id || !UUID.test(id)) throw new UsageError(`sessions ${sub}: give a session id from \`sessions list\``);
      return id;
    };
    switch (sub) {
      case "list": {
        const list = (await callLocalApi<Session[]>(config, "GET", "/sessions"))!;
        if (json) printJson(ctx, list);
        else if (list.length === 0) ctx.stdout("no stream sessions\n");
        else for (const s of list) ctx.stdout(`${line(s)}\n`);
        return 0;
      }
      case "show": {
        printJson(ctx, await callLocalApi<Session>(config, "GET", `/sessions/${needId()}`));
        return 0;
      }
      case "end": {
        const target = needId();
        await callLocalApi(config, "DELETE", `/sessions/${target}`);
        if (json) printJson(ctx, { ended: target });
        else ctx.stdout(`ended session ${target}\n`);
        return 0;
      }
      case "bitrate": {
        const target = needId();
        const kbps = Number(rest[0]);
        if (!rest[0] || !/^\d+$/.test(rest[0]) || kbps < 500 || kbps > 500000) throw new UsageError("sessions bitrate: give the session id and the new bitrate in kbps (500-500000)");
        const s = (await callLocalApi<Session>(config, "PATCH", `/sessions/${target}`, { bitrateKbps: kbps }))!;
        if (json) printJson(ctx, s);
        else ctx.stdout(`session ${target}: bitrate ${s.bitrateKbps} kbps\n`);
        return 0;
      }
      case "ended": {
        const list = (await callLocalApi<Ended[]>(config, "GET", "/sessions/ended"))!;
        if (json) printJson(ctx, list);
        else if (list.length === 0) ctx.stdout("no session has ended yet\n");
        else for (const e of list) ctx.stdout(`${e.id}  ${e.client.name ?? "?"}@${e.client.address || "?"}  ${e.appName}  ended ${e.endedAt}  ${e.reason}${e.detail ? `: ${e.detail}` : ""}\n`);
        return 0;
      }
      default:
        throw new UsageError(`sessions: unknown subcommand ${JSON.stringify(sub)}`);
    }
  },
};
