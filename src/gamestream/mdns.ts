/**
 * Discovery: advertises `_nvstream._tcp` (the HTTP port) over mDNS with the
 * host name, as Moonlight clients browse for it. bonjour-service answers
 * queries and announces; stopping sends goodbyes.
 */
import { Bonjour } from "bonjour-service";
import type { Logger } from "../log.ts";

export interface MdnsAdvert {
  stop(): Promise<void>;
}

export function advertiseGameStream(opts: { name: string; port: number; interface?: string; log: Logger }): MdnsAdvert {
  // With an interface, multicast-dns would bind the socket to its unicast address, which filters out
  // multicast datagrams on Linux: keep the wildcard bind and choose the interface for membership only.
  const mdnsOpts = (opts.interface ? { interface: opts.interface, bind: "0.0.0.0" } : {}) as Record<string, unknown>;
  const bonjour = new Bonjour(mdnsOpts, (err: Error) => opts.log.warn("mDNS error", { error: err }));
  const service = bonjour.publish({ name: opts.name, type: "nvstream", protocol: "tcp", port: opts.port, disableIPv6: true });
  service.on("error", (err: Error) => opts.log.warn("mDNS advertisement failed", { error: err }));
  return {
    stop: () =>
      new Promise<void>((resolve) => {
        bonjour.unpublishAll(() => bonjour.destroy(() => resolve()));
      }),
  };
}
