/** Reads what the appliance reports about a VM out of libvirt's live domain XML. */
import { join } from "node:path";
import { graphicsListens, type GraphicsListen } from "./graphics-socket.ts";
import { AGENT_CHANNEL } from "./xml.ts";
import { domainXmlParser } from "./virsh.ts";

type Node = Record<string, unknown>;

const obj = (v: unknown): Node => (v && typeof v === "object" && !Array.isArray(v) ? (v as Node) : {});
const arr = (v: unknown): Node[] => (Array.isArray(v) ? v.map(obj) : v === undefined ? [] : [obj(v)]);
const str = (v: unknown): string | null => (typeof v === "string" ? v : typeof v === "number" ? String(v) : null);
const text = (v: unknown): string | null => str(v) ?? str(obj(v)["#text"]);

function toMiB(value: string | null, unit: string | null): number | null {
  if (value === null || !/^\d+$/.test(value)) return null;
  const n = Number(value);
  const factor: Record<string, number> = { b: 1 / 1048576, bytes: 1 / 1048576, k: 1 / 1024, kib: 1 / 1024, m: 1, mib: 1, g: 1024, gib: 1024 };
  const f = factor[(unit ?? "KiB").toLowerCase()];
  return f === undefined ? null : Math.round(n * f);
}

export interface DomainFacts {
  uuid: string | null;
  template: string | null;
  /** Display size and HDR the shared memory was sized for (from the appliance's metadata). */
  resolution: { width: number; height: number } | null;
  hdr: boolean | null;
  vcpus: number | null;
  memoryMiB: number | null;
  channels: { name: string; path: string | null }[];
  agentSocket: string | null;
  shm: { name: string; sizeMiB: number; path: string } | null;
  hostdevs: string[];
  disks: string[];
  /** The displays (SPICE/VNC) and where they listen: unix sockets, and TCP (must be none). */
  display: GraphicsListen[];
}

export function domainFacts(xml: string, shmDir: string): DomainFacts {
  const d = obj(obj(domainXmlParser.parse(xml)).domain);
  const devices = obj(d.devices);
  const channels = arr(devices.channel)
    .filter((c) => str(c["@_type"]) === "unix")
    .map((c) => ({ name: str(obj(c.target)["@_name"]) ?? "", path: str(obj(c.source)["@_path"]) }));
  const shmem = arr(devices.shmem)[0];
  const size = shmem ? obj(shmem.size) : {};
  const shmSize = shmem ? toMiB(text(shmem.size), str(size["@_unit"]) ?? "M") : null;
  const shmName = shmem ? str(shmem["@_name"]) : null;
  const meta = obj(obj(d.metadata)["neuron:vm"]);
  const vcpuText = text(d.vcpu);
  const res = /^(\d{3,4})x(\d{3,4})$/.exec(text(meta["neuron:resolution"]) ?? "");
  const hdrText = text(meta["neuron:hdr"]);
  return {
    uuid: text(d.uuid),
    template: text(meta["neuron:template"]),
    resolution: res ? { width: Number(res[1]), height: Number(res[2]) } : null,
    hdr: hdrText === null ? null : hdrText === "yes",
    vcpus: vcpuText && /^\d+$/.test(vcpuText) ? Number(vcpuText) : null,
    memoryMiB: toMiB(text(d.memory), str(obj(d.memory)["@_unit"])),
    channels,
    agentSocket: channels.find((c) => c.name === AGENT_CHANNEL)?.path ?? null,
    shm: shmName && shmSize !== null ? { name: shmName, sizeMiB: shmSize, path: join(shmDir, shmName) } : null,
    hostdevs: arr(devices.hostdev).map((h) => {
      const a = obj(obj(h.source).address);
      const hex = (k: string, w: number) => (str(a[`@_${k}`]) ?? "0").replace(/^0x/, "").padStart(w, "0");
      return `${hex("domain", 4)}:${hex("bus", 2)}:${hex("slot", 2)}.${hex("function", 1)}`;
    }),
    disks: arr(devices.disk)
      .map((x) => str(obj(x.source)["@_file"]))
      .filter((p): p is string => p !== null),
    display: graphicsListens(xml),
  };
}
