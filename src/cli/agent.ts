/**
 * `agent`: talk to a VM's guest agent.
 *
 * By VM name the call goes through the running service's local API (it holds
 * the connection); without a running service it connects in-process. With
 * --socket the given unix socket is used directly, in our protocol or the
 * QEMU guest agent's.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { AppError } from "../errors.ts";
import { ensureAgentCertificates, loadAgentCertificates, type TlsMaterial } from "../guest/certs.ts";
import { AgentClient } from "../guest/client.ts";
import type { CommandName, GuestInfo } from "../guest/model.ts";
import { QgaClient } from "../guest/qga.ts";
import { virshSocketResolver } from "../guest/resolver.ts";
import { GuestService } from "../guest/service.ts";
import type { Config } from "../config.ts";
import { silentLogger } from "../log.ts";
import { configFrom, JSON_FLAG, printJson, UsageError, type Command, type ParsedArgs } from "./command.ts";
import { callLocalApi } from "./local-api.ts";

const USAGE = [
  "agent ping|info VM [--json]",
  "agent ping|info --socket PATH [--protocol neuron|qga] [--cert-dir DIR | --vm NAME] [--json]",
  "agent launch VM PATH [ARG...] [--json]",
  "agent clipboard VM [get | set TEXT] [--json]",
  "agent resolution VM WIDTHxHEIGHT [--display NAME] [--json]",
  "agent certs VM [--renew] [--json]",
].join("\n       neuron-appliance ");

async function viaService(config: Config, vm: string, command: CommandName, data: unknown): Promise<{ via: string; data: unknown }> {
  try {
    return (await callLocalApi<{ via: string; data: unknown }>(config, "POST", `/vms/${encodeURIComponent(vm)}/agent/${command}`, data))!;
  } catch (err) {
    // No service (or a stale socket with nothing behind it): connect in-process instead.
    if (!(err instanceof AppError && err.errorCode === "SERVICE_NOT_RUNNING")) throw err;
  }
  const service = new GuestService({
    stateDir: config.stateDir,
    openssl: config.bin.openssl,
    settings: config.guestAgent,
    resolve: virshSocketResolver({ virsh: config.bin.virsh, uri: config.libvirtUri }),
    log: silentLogger,
  });
  try {
    return await service.command(vm, command, data);
  } finally {
    service.close();
  }
}

function tlsFrom(args: ParsedArgs, config: Config): TlsMaterial | null {
  const dir = args.values["cert-dir"] as string | undefined;
  if (dir) {
    const read = (f: string) => readFileSync(join(dir, f), "utf8");
    try {
      return { ca: read("ca.crt"), cert: read("host.crt"), key: read("host.key") };
    } catch (err) {
      throw new AppError("CERTS_MISSING", `--cert-dir ${dir}: ${(err as Error).message}`, { status: 400 });
    }
  }
  const vm = args.values.vm as string | undefined;
  if (vm) {
    const c = loadAgentCertificates(config.stateDir, vm);
    if (!c) throw new AppError("CERTS_MISSING", `no agent certificates for ${vm} in ${config.stateDir} (run \`agent certs ${vm}\`)`, { status: 400 });
    return c.host;
  }
  return null;
}

async function viaSocket(args: ParsedArgs, config: Config, command: "ping" | "get_info"): Promise<Record<string, unknown>> {
  const socketPath = args.values.socket as string;
  const protocol = (args.values.protocol as string | undefined) ?? "neuron";
  const started = performance.now();
  if (protocol === "qga") {
    const q = new QgaClient({ socketPath, timeoutMs: config.guestAgent.requestTimeoutMs });
    await q.connect();
    try {
      await q.ping();
      const rttMs = +(performance.now() - started).toFixed(2);
      const os = await q.osInfo();
      const info = command === "get_info" ? await q.info() : null;
      return { protocol, ok: true, rttMs, os, ...(info ? { version: info.version, commands: info.supported_commands.filter((c) => c.enabled).map((c) => c.name) } : {}) };
    } finally {
      await q.close();
    }
  }
  if (protocol !== "neuron") throw new UsageError(`--protocol must be neuron or qga, not ${JSON.stringify(protocol)}`);
  const client = new AgentClient({ socketPath, tls: tlsFrom(args, config), log: silentLogger, requestTimeoutMs: config.guestAgent.requestTimeoutMs });
  try {
    const hello = await client.connectOnce();
    const data = await client.request(command);
    return { protocol, ok: true, rttMs: +(performance.now() - started).toFixed(2), agent: hello, data };
  } finally {
    client.stop();
  }
}

function describeInfo(info: GuestInfo): string {
  const lines = [`${info.hostname}: ${info.os.name} ${info.os.version} (${info.os.family}, kernel ${info.os.kernel}, ${info.os.arch}), agent ${info.agent_version}`];
  for (const d of info.displays) lines.push(`  display ${d.name} ${d.width}x${d.height}${d.primary ? " primary" : ""}`);
  return lines.join("\n") + "\n";
}

export const agentCommand: Command = {
  name: "agent",
  summary: "Talk to a VM's guest agent: ping, info, launch an app, clipboard, resolution, certificates.",
  usage: USAGE,
  help: [
    "Options:",
    "  --socket PATH        use this unix socket directly instead of the VM's channel",
    "  --protocol P         neuron (our agent, default) or qga (the QEMU guest agent) with --socket",
    "  --cert-dir DIR       host TLS material (ca.crt, host.crt, host.key) for --socket; default: plain frames",
    "  --vm NAME            with --socket: use the appliance's certificates of this VM",
    "  --display NAME       resolution: which guest display",
    "  --renew              certs: generate new certificates",
    "  --state-dir DIR      state directory (certificates, API socket)",
    "  --json               print JSON",
  ].join("\n"),
  positionals: true,
  flags: {
    ...JSON_FLAG,
    socket: { type: "string" },
    protocol: { type: "string" },
    "cert-dir": { type: "string" },
    vm: { type: "string" },
    display: { type: "string" },
    renew: { type: "boolean" },
    "state-dir": { type: "string" },
  },
  async run(args, ctx) {
    const config = configFrom(args, ctx, { "state-dir": "stateDir" });
    const [sub, ...rest] = args.positionals;
    const json = !!args.values.json;
    const out = (value: unknown, text: string) => (json ? printJson(ctx, value) : ctx.stdout(text));
    if (!sub) throw new UsageError("agent: a subcommand is required (ping, info, launch, clipboard, resolution, certs)");
    if (args.values.socket !== undefined) {
      if (sub !== "ping" && sub !== "info") throw new UsageError("agent: --socket works with ping and info");
      if (rest.length) throw new UsageError("agent: no VM name with --socket");
      const r = await viaSocket(args, config, sub === "ping" ? "ping" : "get_info");
      out(r, `${r.protocol} agent on ${args.values.socket as string}: ok (${r.rttMs} ms)\n`);
      return 0;
    }
    const vm = rest[0];
    if (!vm) throw new UsageError(`agent ${sub}: a VM name is required`);
    const extra = rest.slice(1);
    switch (sub) {
      case "ping": {
        const t = performance.now();
        const r = await viaService(config, vm, "ping", {});
        const rttMs = +(performance.now() - t).toFixed(2);
        out({ vm, ...r, rttMs }, `pong from ${vm} via ${r.via} (${rttMs} ms)\n`);
        return 0;
      }
      case "info": {
        const r = await viaService(config, vm, "get_info", {});
        out({ vm, ...r }, r.via === "agent" ? describeInfo(r.data as GuestInfo) : JSON.stringify(r.data, null, 2) + "\n");
        return 0;
      }
      case "launch": {
        const [path, ...appArgs] = extra;
        if (!path) throw new UsageError("agent launch: the program path is required");
        const r = await viaService(config, vm, "launch_app", { path, args: appArgs });
        out({ vm, ...r }, `started ${path} in ${vm} (pid ${(r.data as { pid: number }).pid})\n`);
        return 0;
      }
      case "clipboard": {
        const [op = "get", text] = extra;
        if (op === "get") {
          const r = await viaService(config, vm, "clipboard_get", {});
          const c = r.data as { mime: string; text?: string };
          out({ vm, ...r }, c.mime === "text/plain" ? (c.text ?? "") : `(${c.mime})\n`);
        } else if (op === "set") {
          if (text === undefined) throw new UsageError("agent clipboard set: the text is required");
          const r = await viaService(config, vm, "clipboard_set", { mime: "text/plain", text });
          out({ vm, ...r }, `clipboard of ${vm} set (${text.length} characters)\n`);
        } else throw new UsageError(`agent clipboard: get or set, not ${JSON.stringify(op)}`);
        return 0;
      }
      case "resolution": {
        const m = /^(\d{1,5})x(\d{1,5})$/.exec(extra[0] ?? "");
        if (!m) throw new UsageError("agent resolution: the size must be WIDTHxHEIGHT, e.g. 1920x1080");
        const display = args.values.display as string | undefined;
        const r = await viaService(config, vm, "set_resolution", { width: Number(m[1]), height: Number(m[2]), ...(display ? { display } : {}) });
        const d = r.data as { display?: string; width: number; height: number };
        out({ vm, ...r }, `${vm}: ${d.width}x${d.height}${d.display ? ` on ${d.display}` : ""}\n`);
        return 0;
      }
      case "certs": {
        const c = await ensureAgentCertificates({ stateDir: config.stateDir, openssl: config.bin.openssl }, vm, !!args.values.renew);
        out(
          { vm, dir: c.dir, guestFiles: ["ca.crt", "guest.crt", "guest.key"].map((f) => join(c.dir, f)) },
          `certificates of ${vm} in ${c.dir}\nprovision ca.crt, guest.crt and guest.key into the guest's agent certificate directory\n`,
        );
        return 0;
      }
      default:
        throw new UsageError(`agent: unknown subcommand ${JSON.stringify(sub)}`);
    }
  },
};
