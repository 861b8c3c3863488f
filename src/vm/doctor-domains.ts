/** What the VM doctor checks walk: libvirt's defined domains with their states, through one bounded virsh. */
import type { Config } from "../config.ts";
import { Virsh } from "./virsh.ts";

/** At most this many domains are looked at by one check. */
export const DOCTOR_MAX_DOMAINS = 64;

/** The domains (name, state; the first DOCTOR_MAX_DOMAINS) and the virsh to read them with, or why libvirt could not be asked. */
export async function doctorDomains(config: Config): Promise<{ virsh: Virsh; domains: [string, string][] } | { error: string }> {
  const virsh = new Virsh({ bin: config.bin.virsh, uri: config.libvirtUri, timeoutMs: 5000 });
  try {
    return { virsh, domains: [...(await virsh.states())].slice(0, DOCTOR_MAX_DOMAINS) };
  } catch (err) {
    return { error: (err as Error).message };
  }
}
