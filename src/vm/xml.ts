/**
 * buildDomainXml(spec): the libvirt domain definition of a passthrough-ready VM,
 * built as a tree and serialised by an XML library (every value escaped), never
 * by concatenating strings. Firmware files are picked by libvirt
 * (`<os firmware='efi'>` + feature flags), not hard-coded paths.
 */
import type { XMLBuilder } from "fast-xml-parser";
import { invalid } from "../errors.ts";
import type { VmSpec } from "./model.ts";
import { qmpArgument, QEMU_XMLNS } from "./qmp-socket.ts";
import { ivshmemSizeMiB, shmName } from "./shm.ts";

/** Namespace of the appliance's own <metadata> element. */
export const NEURON_XMLNS = "urn:neuronos:appliance:vm:1";
export const AGENT_CHANNEL = "org.neuronos.agent.0";
/** The virtio-serial port a guest's frame exporter writes NVF1 to (spec.frameChannel). */
export const FRAME_CHANNEL = "org.neuronos.frames.0";
/** The NVF1 listener socket of a VM's frames (its frames channel connects there). */
export function vmFrameSocket(frameSocketDir: string, vm: string): string {
  return `${frameSocketDir.replace(/\/+$/, "")}/${vm}.nvf`;
}
/** Seconds between QEMU's attempts to reach the frame listener while it is not there. */
const FRAME_CHANNEL_RECONNECT_S = 2;
export const QEMU_GA_CHANNEL = "org.qemu.guest_agent.0";
/** Hyper-V vendor id: 12 characters at most. */
const HV_VENDOR_ID = "NeuronOS";

type Node = { [key: string]: unknown };

export interface BuildOptions {
  /** Host CPU vendor: AMD hosts get `topoext` so SMT topology reaches the guest. */
  cpuVendor?: "amd" | "intel" | "other";
  /** Every PCI function to pass through (the GPU expanded to its slot, then spec.passthrough). */
  hostdevs?: string[];
  /** Path of the disk image (a new disk's final path). */
  diskPath?: string | null;
  /** libvirt domain type: kvm on real hosts; "qemu" (TCG) where KVM cannot run a guest. */
  domainType?: "kvm" | "qemu";
  /** The appliance's own QMP monitor socket (input into the VM); absent: none. */
  qmpSocket?: string;
  /**
   * The unix socket SPICE or VNC listens on (spec.graphics), see graphics-socket.ts.
   * Absent: the display listens nowhere (`<listen type='none'/>`); never on TCP.
   */
  graphicsSocket?: string;
  /**
   * Where the VM's sound goes: the desktop user's PulseAudio server and the VM's own sink
   * (audio.ts). Absent: the ich9 HDA is there with no audio backend (silence).
   */
  audio?: { server: string; sink: string };
  /** The domain's UUID, when redefining an existing domain (libvirt refuses a new UUID for a known name). */
  uuid?: string;
  /** The host's NVF1 listener socket the frames channel connects to (needed with spec.frameChannel). */
  frameSocket?: string;
}

const attrs = (o: Record<string, string | number>): Node =>
  Object.fromEntries(Object.entries(o).map(([k, v]) => [`@_${k}`, String(v)]));

function pciSource(address: string): Node {
  const [domain, bus, slotFn] = address.split(":") as [string, string, string];
  const [slot, fn] = slotFn.split(".") as [string, string];
  return attrs({ domain: `0x${domain}`, bus: `0x${bus}`, slot: `0x${slot}`, function: `0x${fn}` });
}

function hypervFeatures(): Node {
  const on = attrs({ state: "on" });
  return {
    ...attrs({ mode: "custom" }),
    relaxed: on,
    vapic: on,
    spinlocks: attrs({ state: "on", retries: 8191 }),
    vpindex: on,
    runtime: on,
    synic: on,
    stimer: on,
    reset: on,
    vendor_id: attrs({ state: "on", value: HV_VENDOR_ID }),
    frequencies: on,
    tlbflush: on,
    ipi: on,
  };
}

function osNode(spec: VmSpec): Node {
  const firmware = spec.secureBoot
    ? { firmware: { feature: [attrs({ enabled: "yes", name: "secure-boot" }), attrs({ enabled: "yes", name: "enrolled-keys" })] }, loader: attrs({ secure: "yes" }) }
    : { firmware: { feature: [attrs({ enabled: "no", name: "secure-boot" })] } };
  return { ...attrs({ firmware: "efi" }), type: { ...attrs({ arch: "x86_64", machine: "q35" }), "#text": "hvm" }, ...firmware };
}

/** SPICE or VNC on a unix socket: no TCP port, no password (the socket's directory is the gate). */
/** Keyboard, mouse and tablet on one bus (libvirt adds the i8042's PS/2 pair itself on x86). */
function inputNodes(bus: "virtio" | "usb"): Record<string, unknown>[] {
  return (["keyboard", "mouse", "tablet"] as const).map((type) => attrs({ type, bus }));
}

function graphicsNode(kind: "spice" | "vnc", socket: string | undefined): Node {
  if (socket !== undefined && (/[\0\n\r]/.test(socket) || !socket.startsWith("/")))
    throw invalid(`display socket path ${JSON.stringify(socket.slice(0, 120))} must be absolute, without NUL or newline`);
  const listen = socket === undefined ? attrs({ type: "none" }) : attrs({ type: "socket", socket });
  return kind === "spice" ? { ...attrs({ type: "spice" }), listen, image: attrs({ compression: "off" }) } : { ...attrs({ type: "vnc" }), listen };
}

function devices(spec: VmSpec, opts: BuildOptions): Node {
  const windows = spec.template !== "linux";
  const hostdevs = opts.hostdevs ?? [];
  const disks: Node[] = [];
  let bootOrder = 1;
  if (spec.disk.kind !== "none" && opts.diskPath) {
    const format = spec.disk.kind === "existing" ? spec.disk.format : "qcow2";
    disks.push({
      ...attrs({ type: "file", device: "disk" }),
      driver: attrs({ name: "qemu", type: format, cache: "none", io: "native", discard: "unmap" }),
      source: attrs({ file: opts.diskPath }),
      target: attrs({ dev: "vda", bus: "virtio" }),
      boot: attrs({ order: bootOrder++ }),
    });
  }
  const cdroms = [spec.osIso, spec.virtioIso, spec.unattendIso].filter((p): p is string => p !== undefined);
  cdroms.forEach((iso, i) =>
    disks.push({
      ...attrs({ type: "file", device: "cdrom" }),
      driver: attrs({ name: "qemu", type: "raw" }),
      source: attrs({ file: iso }),
      target: attrs({ dev: `sd${String.fromCharCode(97 + i)}`, bus: "sata" }),
      readonly: "",
      ...(iso === spec.osIso ? { boot: attrs({ order: bootOrder++ }) } : {}),
    }),
  );
  const channels: Node[] = [AGENT_CHANNEL, QEMU_GA_CHANNEL].map((name) => ({
    ...attrs({ type: "unix" }),
    source: attrs({ mode: "bind" }),
    target: attrs({ type: "virtio", name }),
  }));
  if (spec.frameChannel) channels.push(frameChannelNode(opts.frameSocket));
  if (spec.graphics === "spice") channels.push({ ...attrs({ type: "spicevmc" }), target: attrs({ type: "virtio", name: "com.redhat.spice.0" }) });
  const net = spec.network;
  const iface =
    net.kind === "nat"
      ? [{ ...attrs({ type: "network" }), source: attrs({ network: net.network }), model: attrs({ type: "virtio" }) }]
      : net.kind === "bridge"
        ? [{ ...attrs({ type: "bridge" }), source: attrs({ bridge: net.bridge }), model: attrs({ type: "virtio" }) }]
        : [];
  const passthroughGpu = hostdevs.length > 0;
  const audio = opts.audio;
  if (audio && (/[\0\n\r]/.test(audio.server) || !audio.server.startsWith("/") || !/^[A-Za-z0-9._-]+$/.test(audio.sink)))
    throw invalid("audio: the server must be an absolute socket path and the sink a plain name");
  return {
    disk: disks,
    controller: [attrs({ type: "usb", model: "qemu-xhci", ports: 15 }), attrs({ type: "virtio-serial", index: 0 })],
    interface: iface,
    channel: channels,
    ...(spec.inputDevices === "ps2" ? {} : { input: inputNodes(spec.inputDevices) }),
    ...(spec.graphics !== "none" ? { graphics: graphicsNode(spec.graphics, opts.graphicsSocket) } : {}),
    // With a passed-through GPU the guest renders there and Looking Glass shows it: no emulated adapter.
    video: { model: attrs(passthroughGpu ? { type: "none" } : windows ? { type: "vga" } : { type: "virtio", heads: 1 }) },
    hostdev: hostdevs.map((address) => ({
      ...attrs({ mode: "subsystem", type: "pci", managed: "yes" }),
      source: { address: pciSource(address) },
    })),
    ...(spec.tpm ? { tpm: { ...attrs({ model: "tpm-crb" }), backend: attrs({ type: "emulator", version: "2.0" }) } } : {}),
    shmem: {
      ...attrs({ name: shmName(spec.name) }),
      model: attrs({ type: "ivshmem-plain" }),
      size: { ...attrs({ unit: "M" }), "#text": String(ivshmemSizeMiB(spec.resolution, spec.hdr)) },
    },
    // ich9 HDA (the q35 chipset's own): Windows has its driver in the box
    sound: { ...attrs({ model: "ich9" }), audio: attrs({ id: 1 }) },
    audio: audio
      ? { ...attrs({ id: 1, type: "pulseaudio", serverName: audio.server }), input: attrs({ mixingEngine: "no" }), output: attrs({ mixingEngine: "no", name: audio.sink, streamName: spec.name }) }
      : attrs({ id: 1, type: "none" }),
    rng: { ...attrs({ model: "virtio" }), backend: { ...attrs({ model: "random" }), "#text": "/dev/urandom" } },
    // Ballooning fights a passed-through device's pinned DMA memory.
    memballoon: attrs({ model: passthroughGpu ? "none" : "virtio" }),
    ...(spec.vsock ? { vsock: vsockNode(spec.vsock) } : {}),
  };
}

/**
 * The frames channel: QEMU connects to the appliance's NVF1 listener (which exists while a
 * stream session of the VM runs) and tries again every few seconds while it is not there;
 * the guest's writes wait until it is.
 */
function frameChannelNode(path: string | undefined): Node {
  if (!path) throw invalid("frameChannel: no host frame socket directory is configured (frameSocketDir)");
  if (!path.startsWith("/") || /[\0\n\r]/.test(path) || Buffer.byteLength(path) > 107)
    throw invalid(`frameChannel: ${JSON.stringify(path)} must be an absolute path of at most 107 bytes (unix socket limit)`);
  return {
    ...attrs({ type: "unix" }),
    source: { ...attrs({ mode: "connect", path }), reconnect: attrs({ enabled: "yes", timeout: FRAME_CHANNEL_RECONNECT_S }) },
    target: attrs({ type: "virtio", name: FRAME_CHANNEL }),
  };
}

/** <vsock model='virtio'>: the guest's frame export (NVF1, port 5900) when the spec asks for one. */
function vsockNode(v: { cid?: number }): Node {
  return { ...attrs({ model: "virtio" }), cid: attrs(v.cid === undefined ? { auto: "yes" } : { auto: "no", address: v.cid }) };
}

/** The domain as a tree (for tests and for callers that adjust it before serialising). */
export function domainTree(spec: VmSpec, opts: BuildOptions = {}): Node {
  const windows = spec.template !== "linux";
  const t = spec.topology;
  // TCG cannot pass the host CPU through; "maximum" is the closest it offers.
  const tcg = opts.domainType === "qemu";
  const cpu: Node = {
    ...attrs(tcg ? { mode: "maximum" } : { mode: "host-passthrough", check: "none", migratable: "on" }),
    topology: attrs({ sockets: t.sockets, dies: 1, cores: t.cores, threads: t.threads }),
    ...(opts.cpuVendor === "amd" && !tcg ? { feature: attrs({ policy: "require", name: "topoext" }) } : {}),
  };
  const timers: Node[] = [attrs({ name: "rtc", tickpolicy: "catchup" }), attrs({ name: "pit", tickpolicy: "delay" }), attrs({ name: "hpet", present: "no" })];
  if (spec.hyperv) timers.push(attrs({ name: "hypervclock", present: "yes" }));
  const features: Node = {
    acpi: "",
    apic: "",
    ...(spec.hyperv ? { hyperv: hypervFeatures(), kvm: { hidden: attrs({ state: "on" }) } } : {}),
    vmport: attrs({ state: "off" }),
    // q35: the in-kernel IOAPIC (KVM's; TCG has none)
    ...(tcg ? {} : { ioapic: attrs({ driver: "kvm" }) }),
    ...(spec.secureBoot ? { smm: attrs({ state: "on" }) } : {}),
  };
  return {
    domain: {
      ...attrs(opts.qmpSocket ? { type: opts.domainType ?? "kvm", "xmlns:qemu": QEMU_XMLNS } : { type: opts.domainType ?? "kvm" }),
      name: spec.name,
      ...(opts.uuid ? { uuid: opts.uuid } : {}),
      metadata: {
        "neuron:vm": {
          ...attrs({ "xmlns:neuron": NEURON_XMLNS }),
          "neuron:template": spec.template,
          "neuron:resolution": `${spec.resolution.width}x${spec.resolution.height}`,
          "neuron:hdr": spec.hdr ? "yes" : "no",
          ...(spec.gpu ? { "neuron:gpu": spec.gpu } : {}),
        },
      },
      memory: { ...attrs({ unit: "MiB" }), "#text": String(spec.memoryMiB) },
      currentMemory: { ...attrs({ unit: "MiB" }), "#text": String(spec.memoryMiB) },
      ...(spec.hugepages ? { memoryBacking: { hugepages: "" } } : {}),
      vcpu: { ...attrs({ placement: "static" }), "#text": String(spec.vcpus) },
      ...(spec.pinning ? { cputune: { vcpupin: spec.pinning.map((host, vcpu) => attrs({ vcpu, cpuset: host })) } } : {}),
      os: osNode(spec),
      features,
      cpu,
      clock: { ...attrs({ offset: windows ? "localtime" : "utc" }), timer: timers },
      on_poweroff: "destroy",
      on_reboot: "restart",
      on_crash: "destroy",
      pm: { "suspend-to-mem": attrs({ enabled: "no" }), "suspend-to-disk": attrs({ enabled: "no" }) },
      devices: devices(spec, opts),
      ...(opts.qmpSocket ? { "qemu:commandline": { "qemu:arg": [attrs({ value: "-qmp" }), attrs({ value: qmpArgument(opts.qmpSocket) })] } } : {}),
    },
  };
}

let builder: XMLBuilder | null = null;

/** The XML library is loaded on the first document built (not when the appliance starts). */
export function serializeXml(tree: Node): string {
  builder ??= new (require("fast-xml-parser") as typeof import("fast-xml-parser")).XMLBuilder({
    ignoreAttributes: false,
    attributeNamePrefix: "@_",
    textNodeName: "#text",
    format: true,
    indentBy: "  ",
    suppressEmptyNode: true,
  });
  return builder.build(tree) as string;
}

export function buildDomainXml(spec: VmSpec, opts: BuildOptions = {}): string {
  return serializeXml(domainTree(spec, opts));
}
