/**
 * Which `Host` header values name this appliance: loopback names, the bind
 * address, the machine's name (and name.local), configured extra names, and
 * — when bound to a wildcard address — every address of its interfaces.
 * A page on another name that rebinds it to one of our addresses sends its
 * own name, and is refused. The port in the header is not judged (the
 * listener already decided that).
 */
import { hostname as osHostname, networkInterfaces } from "node:os";

export interface HostPolicy {
  allows(hostHeader: string): boolean;
  names(): string[];
}

const LOOPBACK = ["localhost", "127.0.0.1", "::1", "localhost.localdomain", "ip6-localhost"];
const WILDCARD = new Set(["0.0.0.0", "::", "[::]", "*"]);

/** The name part of a Host header: drops the port and IPv6 brackets, lowercases. */
export function hostName(header: string): string | null {
  const h = header.trim().toLowerCase();
  if (h.length === 0 || h.length > 300) return null;
  if (h.startsWith("[")) {
    const end = h.indexOf("]");
    if (end < 0) return null;
    const rest = h.slice(end + 1);
    if (rest !== "" && !/^:\d{1,5}$/.test(rest)) return null;
    return h.slice(1, end);
  }
  const colon = h.indexOf(":");
  if (colon < 0) return h;
  if (h.indexOf(":", colon + 1) >= 0) return null;
  if (!/^\d{1,5}$/.test(h.slice(colon + 1))) return null;
  return h.slice(0, colon);
}

export function hostPolicy(opts: { bindHost: string; extraNames: string[]; machineName?: string }): HostPolicy {
  const fixed = new Set<string>(LOOPBACK);
  const bind = opts.bindHost.replace(/^\[|\]$/g, "").toLowerCase();
  const wildcard = WILDCARD.has(opts.bindHost) || WILDCARD.has(bind);
  if (!wildcard) fixed.add(bind);
  const machine = (opts.machineName ?? osHostname()).toLowerCase();
  if (machine) {
    fixed.add(machine);
    fixed.add(`${machine.split(".")[0]}.local`);
  }
  for (const n of opts.extraNames) fixed.add(n.replace(/^\[|\]$/g, "").toLowerCase());
  let ifaceCache: { at: number; set: Set<string> } | null = null;
  const interfaceAddresses = (): Set<string> => {
    const now = Date.now();
    if (ifaceCache && now - ifaceCache.at < 5000) return ifaceCache.set;
    const set = new Set<string>();
    for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) set.add(a.address.toLowerCase().replace(/%.*$/, ""));
    ifaceCache = { at: now, set };
    return set;
  };
  return {
    allows(header) {
      const name = hostName(header);
      if (name === null) return false;
      if (fixed.has(name)) return true;
      return wildcard && interfaceAddresses().has(name);
    },
    names: () => [...fixed, ...(wildcard ? interfaceAddresses() : [])],
  };
}
