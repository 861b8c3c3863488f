/**
 * libvirt through `virsh` (config.bin.virsh, config.libvirtUri).
 *
 * Why virsh and not libvirt.so through ffi: management calls are rare (a few
 * per user action, ~30 ms each), so a process per call costs nothing that
 * matters; virsh prints libvirt's own error text ("error: ..."), which is what
 * the user must see when a VM fails to start; and a crash or hang inside
 * libvirt's client (its event loop, its threads, keepalive) stays in a child we
 * can time out and kill instead of in the appliance. libvirt.so's event
 * callbacks would arrive on libvirt's own thread, which bun:ffi can only
 * deliver asynchronously anyway; polling the state serves the same purpose.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { XMLParser } from "fast-xml-parser";
import { AppError } from "../errors.ts";
import { execFile } from "../exec.ts";
import { VM_STATES, type VmState } from "./model.ts";

export interface VirshOptions {
  bin: string;
  uri: string;
  timeoutMs?: number;
}

export class LibvirtError extends AppError {
  constructor(errorCode: string, message: string, status: number, readonly libvirtMessage: string) {
    super(errorCode, message, { status });
    this.name = "LibvirtError";
  }
}

/** libvirt's own reason: the `error:` lines of virsh, without the prefix. */
export function libvirtReason(stderr: string): string {
  const lines = stderr
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  const picked = lines.map((l) => l.replace(/^error:\s*/, "").replace(/ from \S*neuron-define-\S*$/, ""));
  return picked.join(": ").slice(0, 2000) || "virsh failed without a message";
}

function classify(reason: string, what: string): LibvirtError {
  if (/failed to connect to the hypervisor|Failed to connect socket|no connection driver available|Cannot recv data/i.test(reason))
    return new LibvirtError("LIBVIRT_UNAVAILABLE", `libvirt is not reachable: ${reason}`, 503, reason);
  if (/Domain not found|failed to get domain|no domain with matching name/i.test(reason))
    return new LibvirtError("NOT_FOUND", `${what}: ${reason}`, 404, reason);
  if (/already exists|already defined|is already active|is not running|domain is not running|already running/i.test(reason))
    return new LibvirtError("CONFLICT", `${what}: ${reason}`, 409, reason);
  return new LibvirtError("LIBVIRT_ERROR", `${what}: ${reason}`, 502, reason);
}

const STATE_BY_NUMBER: Record<number, VmState> = {
  0: "unknown",
  1: "running",
  2: "blocked",
  3: "paused",
  4: "in shutdown",
  5: "shut off",
  6: "crashed",
  7: "pmsuspended",
};

export function parseState(text: string): VmState {
  const s = text.trim().toLowerCase();
  return (VM_STATES as readonly string[]).includes(s) ? (s as VmState) : "unknown";
}

/** `virsh domstats --state` output → name → state. */
export function parseDomstats(text: string): Map<string, VmState> {
  const out = new Map<string, VmState>();
  let current: string | null = null;
  for (const line of text.split("\n")) {
    const dom = /^Domain: '(.*)'$/.exec(line.trim());
    if (dom) {
      current = dom[1]!;
      out.set(current, "unknown");
      continue;
    }
    const st = /^state\.state=(\d+)$/.exec(line.trim());
    if (st && current !== null) out.set(current, STATE_BY_NUMBER[Number(st[1])] ?? "unknown");
  }
  return out;
}

let parser: XMLParser | null = null;

/** libvirt domain XML → object tree; the XML library is loaded on the first parse (not when the appliance starts). */
export const domainXmlParser = {
  parse(xml: string): ReturnType<XMLParser["parse"]> {
    parser ??= new (require("fast-xml-parser") as typeof import("fast-xml-parser")).XMLParser({
      ignoreAttributes: false,
      attributeNamePrefix: "@_",
      textNodeName: "#text",
      parseTagValue: false,
      parseAttributeValue: false,
      isArray: (name) => ["disk", "channel", "hostdev", "shmem", "interface", "input", "controller"].includes(name),
    });
    return parser.parse(xml);
  },
};

export class Virsh {
  constructor(private readonly opts: VirshOptions) {}

  get uri(): string {
    return this.opts.uri;
  }

  async run(args: string[], what: string, input?: string): Promise<string> {
    const res = await execFile([this.opts.bin, "-q", "-c", this.opts.uri, ...args], { timeoutMs: this.opts.timeoutMs ?? 60_000, input });
    if (res.spawnError) throw new LibvirtError("LIBVIRT_UNAVAILABLE", `cannot run ${this.opts.bin}: ${res.spawnError}`, 503, res.spawnError);
    if (res.timedOut) throw new LibvirtError("LIBVIRT_TIMEOUT", `${what}: virsh did not answer in time`, 504, "timeout");
    if (res.code !== 0) throw classify(libvirtReason(res.stderr), what);
    return res.stdout;
  }

  /** Defines (or fails, naming the bad attribute); libvirt validates against its schema first. */
  async define(xml: string): Promise<void> {
    // A private temporary file: virsh cannot open /dev/stdin when it is a socket.
    const dir = mkdtempSync(join(tmpdir(), "neuron-define-"));
    try {
      const file = join(dir, "domain.xml");
      writeFileSync(file, xml, { mode: 0o600 });
      await this.run(["define", "--validate", file], "define");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  async exists(name: string): Promise<boolean> {
    try {
      await this.run(["domuuid", name], `VM ${name}`);
      return true;
    } catch (err) {
      if (err instanceof LibvirtError && err.errorCode === "NOT_FOUND") return false;
      throw err;
    }
  }

  async states(): Promise<Map<string, VmState>> {
    return parseDomstats(await this.run(["domstats", "--state"], "list"));
  }

  async state(name: string): Promise<VmState> {
    return parseState((await this.run(["domstate", name], `VM ${name}`)).split("\n")[0] ?? "");
  }

  async id(name: string): Promise<number | null> {
    const text = (await this.run(["domid", name], `VM ${name}`)).trim();
    return /^\d+$/.test(text) ? Number(text) : null;
  }

  async dumpxml(name: string, inactive = false): Promise<string> {
    return this.run(["dumpxml", ...(inactive ? ["--inactive"] : []), name], `VM ${name}`);
  }

  async start(name: string): Promise<void> {
    await this.run(["start", name], `start ${name}`);
  }

  async shutdownAcpi(name: string): Promise<void> {
    await this.run(["shutdown", name, "--mode", "acpi"], `shutdown ${name}`);
  }

  async destroy(name: string): Promise<void> {
    await this.run(["destroy", name], `destroy ${name}`);
  }

  /** Removes the definition with its NVRAM and TPM state. */
  async undefine(name: string, withState = true): Promise<void> {
    await this.run(["undefine", name, ...(withState ? ["--nvram", "--tpm"] : [])], `undefine ${name}`);
  }
}
