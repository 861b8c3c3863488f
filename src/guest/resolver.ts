/**
 * VM name → the host-side unix sockets of its agent channels, read from the
 * domain XML libvirt reports (`virsh -c URI dumpxml NAME`): the
 * <channel type='unix'> whose <target type='virtio' name='...'/> is our
 * agent port or the QEMU guest agent port.
 */
import { AppError } from "../errors.ts";
import { execFile, firstLine } from "../exec.ts";
import { assertVmName } from "./certs.ts";
import { AGENT_PORT_NAME, QGA_PORT_NAME } from "./model.ts";

export interface AgentSockets {
  /** Our agent's port (org.neuronos.agent.0), or null when the VM has none. */
  agent: string | null;
  /** The QEMU guest agent's port (org.qemu.guest_agent.0), or null. */
  qga: string | null;
}

export type SocketResolver = (vm: string) => Promise<AgentSockets>;

const MAX_XML = 4 * 1024 * 1024;

function attrs(tag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of tag.matchAll(/([A-Za-z_:][-A-Za-z0-9_:.]*)\s*=\s*(?:"([^"]*)"|'([^']*)')/g)) out[m[1]!] = unescapeXml(m[2] ?? m[3] ?? "");
  return out;
}

function unescapeXml(s: string): string {
  return s.replace(/&(lt|gt|amp|quot|apos|#\d{1,7}|#x[0-9a-fA-F]{1,6});/g, (_m, e: string) => {
    switch (e) {
      case "lt":
        return "<";
      case "gt":
        return ">";
      case "amp":
        return "&";
      case "quot":
        return '"';
      case "apos":
        return "'";
      default: {
        const cp = e[1] === "x" ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
        return cp > 0 && cp <= 0x10ffff ? String.fromCodePoint(cp) : "";
      }
    }
  });
}

/** Finds the agent channels' socket paths in a domain XML document. */
export function agentSocketsFromDomainXml(xml: string): AgentSockets {
  if (xml.length > MAX_XML) throw new AppError("DOMAIN_XML_TOO_LARGE", "domain XML exceeds 4 MiB", { status: 502 });
  const found: AgentSockets = { agent: null, qga: null };
  for (const m of xml.matchAll(/<channel\b([^>]*)>([\s\S]*?)<\/channel>/g)) {
    if (attrs(m[1]!).type !== "unix") continue;
    const body = m[2]!;
    const target = /<target\b([^>]*)\/?>/.exec(body);
    const source = /<source\b([^>]*)\/?>/.exec(body);
    if (!target || !source) continue;
    const t = attrs(target[1]!);
    const path = attrs(source[1]!).path;
    if (t.type !== "virtio" || !path || !path.startsWith("/")) continue;
    if (t.name === AGENT_PORT_NAME) found.agent = path;
    else if (t.name === QGA_PORT_NAME) found.qga = path;
  }
  return found;
}

/** The real resolver: asks libvirt through virsh. */
export function virshSocketResolver(opts: { virsh: string; uri: string; timeoutMs?: number }): SocketResolver {
  return async (vm) => {
    assertVmName(vm);
    const r = await execFile([opts.virsh, "-c", opts.uri, "dumpxml", "--", vm], { timeoutMs: opts.timeoutMs ?? 15_000 });
    if (r.spawnError) throw new AppError("LIBVIRT_UNAVAILABLE", `cannot run ${opts.virsh}: ${r.spawnError}`, { status: 503 });
    if (r.timedOut) throw new AppError("LIBVIRT_UNAVAILABLE", `virsh dumpxml ${vm} timed out`, { status: 503 });
    if (r.code !== 0) {
      const msg = firstLine(r.stderr);
      if (/failed to get domain|Domain not found|no domain with matching name/i.test(r.stderr))
        throw new AppError("NOT_FOUND", `VM ${JSON.stringify(vm)} not found`, { status: 404 });
      throw new AppError("LIBVIRT_ERROR", `virsh dumpxml ${vm}: ${msg || `exit ${r.code}`}`, { status: 502 });
    }
    return agentSocketsFromDomainXml(r.stdout);
  };
}
