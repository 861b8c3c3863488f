/**
 * The Host header check of the GameStream HTTP(S) ports (against DNS rebinding).
 *
 * What stock clients send: moonlight-qt (QNetworkAccessManager), moonlight-android (OkHttp),
 * moonlight-embedded (libcurl) and moonlight-ios all build their URLs from the address they
 * connect to — the IP address found by mDNS or typed in, the public address for streaming from
 * afar, or a host name the user typed — so Host is `ADDRESS:PORT` (`[v6]:PORT`) or `NAME:PORT`.
 *
 * What a rebinding page sends: its own DNS name (the browser puts the URL's host in Host). An
 * IP literal cannot be rebound — a page whose URL holds an address is served by that address —
 * so every IP literal is accepted (also the public address of a port-forwarding router, which is
 * no local interface's), and a name only when it is this host's: localhost, the machine's
 * hostname, the hostname clients are shown, either with `.local` (mDNS), and the names
 * configured in `gamestreamHostNames`. A request without Host (HTTP/1.0) carries no name to
 * rebind and is accepted. The port is not compared (routers remap it).
 */
import { isIP } from "node:net";
import { hostname as osHostname } from "node:os";

export type HostVerdict = { ok: true } | { ok: false; name: string };

/** The host part of a Host header value: the name lowercased without a trailing dot, or the IP literal; null when malformed. */
export function hostOf(value: string): { ip: boolean; host: string } | null {
  const v = value.trim();
  if (v.startsWith("[")) {
    const close = v.indexOf("]");
    if (close < 0 || !/^(:\d{1,5})?$/.test(v.slice(close + 1))) return null;
    const inner = v.slice(1, close);
    const bare = inner.replace(/%25.*$|%.*$/, ""); // a zone id (fe80::1%25eth0)
    return isIP(bare) === 6 ? { ip: true, host: inner.toLowerCase() } : null;
  }
  const m = /^([^:]+)(:\d{1,5})?$/.exec(v);
  if (!m) return null;
  const host = m[1]!.toLowerCase().replace(/\.$/, "");
  if (isIP(host) === 4) return { ip: true, host };
  if (!/^[a-z0-9_](?:[a-z0-9_-]{0,62})(?:\.[a-z0-9_](?:[a-z0-9_-]{0,62}))*$/.test(host) || host.length > 253) return null;
  return { ip: false, host };
}

export function hostHeaderCheck(opts: { hostname: string; names?: readonly string[]; machineHostname?: string }): (value: string | undefined) => HostVerdict {
  const own = new Set<string>(["localhost", "localhost.localdomain"]);
  for (const n of [opts.hostname, opts.machineHostname ?? osHostname(), ...(opts.names ?? [])]) {
    const h = n.toLowerCase().replace(/\.$/, "");
    if (!h) continue;
    own.add(h);
    own.add(`${h}.local`);
    if (h.endsWith(".local")) own.add(h.slice(0, -6));
  }
  return (value) => {
    if (value === undefined) return { ok: true };
    const h = hostOf(value);
    if (!h) return { ok: false, name: value.slice(0, 80) };
    if (h.ip || own.has(h.host) || h.host.endsWith(".localhost")) return { ok: true };
    return { ok: false, name: h.host };
  };
}
