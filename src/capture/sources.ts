/**
 * Every kind of frame source the appliance has, whether this host can use it now and why
 * not; and, for a VM, which transport its frames take: IVSHMEM, then vsock, then a unix
 * socket, by what the VM's definition and the host offer, with the reason. Knows no transport
 * of its own (the CLI and the API call it).
 */
import { accessSync, constants, existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { domainFacts } from "../vm/details.ts";
import { domainXmlParser } from "../vm/virsh.ts";
import { FRAME_CHANNEL, vmFrameSocket } from "../vm/xml.ts";
import { chooseHostOutputBackend, type HostOutputBackend } from "./host-output.ts";

export const SOURCE_KINDS = ["kvmfr", "nfb", "vsock", "unix", "host-virtual-output"] as const;
export type SourceKind = (typeof SOURCE_KINDS)[number];

export interface SourceKindStatus {
  kind: SourceKind;
  description: string;
  available: boolean;
  reason?: string;
  /** host-virtual-output: how input reaches the host's session. */
  input?: { backend: string; reason: string };
  /** host-virtual-output: every compositor backend, probed in order, and why each cannot serve. */
  backends?: { name: string; available: boolean; reason?: string }[];
}

export interface SourceProbeInput {
  shmDir: string;
  vsockDevice: string;
  frameSocketDir: string;
  /** null when libneuron is loaded; else why not. */
  nativeError: string | null;
  /** The host-output backends (probed here); null when they cannot be built (no native library). */
  hostOutputBackends: HostOutputBackend[] | null;
  /** The host session's input path (reported beside host-virtual-output). */
  hostInput?: { backend: string; reason: string } | null;
}

const DESCRIPTIONS: Record<SourceKind, string> = {
  kvmfr: "a VM's IVSHMEM region in the Looking Glass B7 layout (LGMP/KVMFR)",
  nfb: "a VM's IVSHMEM region in the appliance's own triple-buffered layout (NFB1)",
  vsock: "frames a guest exports over AF_VSOCK (NVF1, port 5900)",
  unix: "frames a guest or local exporter sends over a unix socket (NVF1)",
  "host-virtual-output": "the host's own desktop through a per-session virtual output at the client's mode (PipeWire)",
};

function dirUsable(dir: string): string | null {
  try {
    if (!statSync(dir).isDirectory()) return `${dir} is not a directory`;
    accessSync(dir, constants.R_OK | constants.W_OK);
    return null;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === "ENOENT" ? `${dir} does not exist` : `${dir} is not readable and writable (${code})`;
  }
}

/** Where unix-socket sources listen: the directory itself, or the parent it would be created in. */
function socketDirUsable(dir: string): string | null {
  if (existsSync(dir)) return dirUsable(dir);
  const parent = join(dir, "..");
  const why = dirUsable(parent);
  return why ? `${dir} does not exist and cannot be created: ${why}` : null;
}

export function probeSourceKinds(i: SourceProbeInput): SourceKindStatus[] {
  const status = (kind: SourceKind, reason: string | null): SourceKindStatus =>
    reason ? { kind, description: DESCRIPTIONS[kind], available: false, reason } : { kind, description: DESCRIPTIONS[kind], available: true };
  const native = i.nativeError ? `the native library is not loaded: ${i.nativeError}` : null;
  const shm = native ?? dirUsable(i.shmDir);
  const vsock = native ?? (existsSync(i.vsockDevice) ? null : `no ${i.vsockDevice} (the vhost_vsock module is not loaded): a VM cannot get a vsock device`);
  const unix = native ?? socketDirUsable(i.frameSocketDir);
  let host = native;
  let backends: SourceKindStatus["backends"];
  if (!host) {
    const choice = chooseHostOutputBackend(i.hostOutputBackends ?? []);
    host = choice.backend ? null : choice.reason;
    backends = choice.candidates;
  }
  const hostStatus = status("host-virtual-output", host);
  if (backends) hostStatus.backends = backends;
  if (i.hostInput) hostStatus.input = { backend: i.hostInput.backend, reason: i.hostInput.reason };
  return [status("kvmfr", shm), status("nfb", shm), status("vsock", vsock), status("unix", unix), hostStatus];
}

export interface TransportCandidate {
  kind: "kvmfr" | "vsock" | "unix";
  usable: boolean;
  reason: string;
}

export interface VmTransportChoice {
  vm: string;
  kind: "kvmfr" | "vsock" | "unix";
  reason: string;
  /** vsock: the guest CID from the definition (null: auto, assigned when the VM starts). */
  vsockCid: number | null;
  /** unix: where the listener waits for the guest's frames. */
  socketPath: string | null;
  candidates: TransportCandidate[];
}

/** The vsock device of a domain definition: present, and its CID when fixed. */
export function domainVsock(xml: string): { present: boolean; cid: number | null } {
  const d = domainXmlParser.parse(xml) as { domain?: { devices?: { vsock?: { cid?: { "@_address"?: string } } } } };
  const v = d.domain?.devices?.vsock;
  if (!v) return { present: false, cid: null };
  const cid = v.cid?.["@_address"];
  return { present: true, cid: cid && /^\d+$/.test(cid) ? Number(cid) : null };
}

/** The frames channel of a domain definition (spec.frameChannel): the host socket QEMU connects it to. */
export function domainFrameChannel(xml: string): { socketPath: string } | null {
  type Channel = { "@_type"?: string; source?: { "@_mode"?: string; "@_path"?: string }; target?: { "@_name"?: string } };
  const d = domainXmlParser.parse(xml) as { domain?: { devices?: { channel?: Channel | Channel[] } } };
  const raw = d.domain?.devices?.channel;
  const channels = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw];
  const c = channels.find((x) => x.target?.["@_name"] === FRAME_CHANNEL && x["@_type"] === "unix" && x.source?.["@_mode"] === "connect" && x.source["@_path"]);
  return c ? { socketPath: c.source!["@_path"]! } : null;
}

/** IVSHMEM → vsock → unix socket, by what the VM's definition and the host offer. */
export function chooseVmTransport(vm: string, xml: string, host: { shmDir: string; vsockDevice: string; frameSocketDir: string }): VmTransportChoice {
  const facts = domainFacts(xml, host.shmDir);
  const vsock = domainVsock(xml);
  const ivshmem: TransportCandidate = !facts.shm
    ? { kind: "kvmfr", usable: false, reason: "the VM has no IVSHMEM device" }
    : !existsSync(facts.shm.path)
      ? { kind: "kvmfr", usable: false, reason: `the VM's shared memory ${facts.shm.path} does not exist (is the VM running?)` }
      : { kind: "kvmfr", usable: true, reason: `IVSHMEM region ${facts.shm.path} (${facts.shm.sizeMiB} MiB)` };
  const vs: TransportCandidate = !vsock.present
    ? { kind: "vsock", usable: false, reason: "the VM has no vsock device (set vsock in its spec)" }
    : !existsSync(host.vsockDevice)
      ? { kind: "vsock", usable: false, reason: `the host has no ${host.vsockDevice}` }
      : { kind: "vsock", usable: true, reason: `vsock device${vsock.cid ? ` (guest CID ${vsock.cid})` : ""}, port 5900` };
  const channel = domainFrameChannel(xml);
  const socketPath = channel?.socketPath ?? vmFrameSocket(host.frameSocketDir, vm);
  const unix: TransportCandidate = {
    kind: "unix",
    usable: true,
    reason: channel
      ? `the VM's virtio-serial channel ${FRAME_CHANNEL} carries the guest exporter's frames to the unix socket ${socketPath}`
      : `the unix socket ${socketPath} (the VM's definition has no frames channel: set frameChannel in its spec, or the exporter must reach the socket another way)`,
  };
  const candidates = [ivshmem, vs, unix];
  const chosen = candidates.find((c) => c.usable)!;
  const skipped = candidates.filter((c) => c !== chosen && candidates.indexOf(c) < candidates.indexOf(chosen));
  return {
    vm,
    kind: chosen.kind,
    reason: skipped.length ? `${chosen.reason}; not ${skipped.map((c) => `${c.kind}: ${c.reason}`).join("; ")}` : chosen.reason,
    vsockCid: chosen.kind === "vsock" ? vsock.cid : null,
    socketPath: chosen.kind === "unix" ? socketPath : null,
    candidates,
  };
}
