/**
 * Virtual machine specs and the shapes the VM API returns.
 *
 * A VmSpec is everything the appliance needs to write a libvirt definition:
 * it is validated here, at the edge, so the XML builder and libvirt never see
 * a name with XML metacharacters or path separators, a negative size or a
 * malformed PCI address.
 */
import { z } from "zod";

export const VM_TEMPLATES = ["win11", "win10", "linux"] as const;
export const VmTemplate = z.enum(VM_TEMPLATES);
export type VmTemplate = z.infer<typeof VmTemplate>;

/** libvirt domain name: also used in file names (disk, shm), so no separators, no XML metacharacters. */
export const VmName = z
  .string()
  .min(1, "must not be empty")
  .max(64, "at most 64 characters")
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, "letters, digits, '.', '_' and '-' only, starting with a letter or digit");

/** PCI address in sysfs form, e.g. 0000:01:00.0. */
export const PCI_ADDRESS_RE = /^[0-9a-f]{4}:[0-9a-f]{2}:[01][0-9a-f]\.[0-7]$/;
export const PciAddress = z
  .string()
  .transform((s) => s.trim().toLowerCase())
  .pipe(z.string().regex(PCI_ADDRESS_RE, "a PCI address like 0000:01:00.0 (domain:bus:slot.function)"));

const absPath = z
  .string()
  .min(2)
  .max(4096)
  .refine((p) => p.startsWith("/"), "must be an absolute path")
  .refine((p) => !p.split("/").includes(".."), "must not contain '..'")
  .refine((p) => !/[\0\n\r]/.test(p), "must not contain control characters");

export const Resolution = z.strictObject({
  width: z.number().int().min(640).max(7680),
  height: z.number().int().min(480).max(4320),
});
export type Resolution = z.infer<typeof Resolution>;

/** "1920x1080" → { width, height }; anything else is a clear error. */
export const ResolutionText = z
  .string()
  .max(16)
  .regex(/^\d{3,4}x\d{3,4}$/, "a resolution like 1920x1080")
  .transform((s) => {
    const [w, h] = s.split("x").map(Number) as [number, number];
    return { width: w, height: h };
  })
  .pipe(Resolution);

export const Topology = z
  .strictObject({
    sockets: z.number().int().min(1).max(4),
    cores: z.number().int().min(1).max(256),
    threads: z.number().int().min(1).max(2),
  })
  .meta({ id: "VmTopology" });

export const VmDisk = z.discriminatedUnion("kind", [
  z.strictObject({
    kind: z.literal("new"),
    /** Size of the new qcow2 image, GiB. */
    sizeGiB: z.number().int().min(1).max(65536),
    /** Where to create it; default <stateDir>/vms/<name>.qcow2. */
    path: absPath.optional(),
  }),
  z.strictObject({ kind: z.literal("existing"), path: absPath, format: z.enum(["qcow2", "raw"]).default("qcow2") }),
  z.strictObject({ kind: z.literal("none") }),
]);
export type VmDisk = z.infer<typeof VmDisk>;

const bridgeName = z
  .string()
  .min(1)
  .max(15)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, "an interface name (letters, digits, '.', '_', '-')");

export const VmNetwork = z.discriminatedUnion("kind", [
  z.strictObject({ kind: z.literal("nat"), network: bridgeName.default("default") }),
  z.strictObject({ kind: z.literal("bridge"), bridge: bridgeName }),
  z.strictObject({ kind: z.literal("none") }),
]);
export type VmNetwork = z.infer<typeof VmNetwork>;

export const VmSpecInput = z
  .strictObject({
    name: VmName,
    template: VmTemplate,
    vcpus: z.number().int().min(1).max(256).default(4),
    topology: Topology.optional(),
    /** Host CPU for each vCPU, in order (optional pinning). */
    pinning: z.array(z.number().int().min(0).max(4095)).max(256).optional(),
    memoryMiB: z.number().int().min(256).max(1024 * 1024).default(8192),
    hugepages: z.boolean().default(false),
    disk: VmDisk.default({ kind: "none" }),
    osIso: absPath.optional(),
    virtioIso: absPath.optional(),
    /** A small ISO with autounattend.xml (and the first-logon installers) for an unattended Windows install. */
    unattendIso: absPath.optional(),
    network: VmNetwork.default({ kind: "nat", network: "default" }),
    /** GPU to pass through; expanded to every function of its slot by the hardware module. */
    gpu: PciAddress.optional(),
    /** Further PCI functions to pass through as they are. */
    passthrough: z.array(PciAddress).max(16).default([]),
    resolution: Resolution.default({ width: 1920, height: 1080 }),
    hdr: z.boolean().default(false),
    /**
     * Display on a unix socket (<spiceDir>/<name>.spice or .vnc, never TCP): SPICE carries Looking
     * Glass's keyboard/mouse and a fallback view; VNC a fallback view only; "none" for headless.
     */
    graphics: z.enum(["spice", "vnc", "none"]).default("spice"),
    /**
     * The VM's keyboard and pointers beside the i8042 (PS/2 keyboard and mouse, always there on
     * q35): "virtio" (virtio-keyboard, -mouse, -tablet: need a virtio driver), "usb" (usb-kbd,
     * usb-mouse, usb-tablet: every OS has a driver), "ps2" (nothing more: firmware-like, no
     * absolute pointer). These are the VM's QMP input sinks; the guest agent's are separate.
     */
    inputDevices: z.enum(["virtio", "usb", "ps2"]).default("virtio"),
    /** UEFI Secure Boot with enrolled keys (and SMM); default on for win11. */
    secureBoot: z.boolean().optional(),
    /** Hyper-V enlightenments; default on for Windows templates. */
    hyperv: z.boolean().optional(),
    /** Emulated TPM 2.0; default on for win11. */
    tpm: z.boolean().optional(),
    /** A virtio vsock device (frame export for guests without IVSHMEM): a fixed guest CID, or assigned by libvirt. */
    vsock: z.object({ cid: z.number().int().min(3).max(0xfffffffe).optional() }).strict().optional(),
    /**
     * A virtio-serial channel (org.neuronos.frames.0) whose host side connects to the appliance's
     * NVF1 listener (<frameSocketDir>/<name>.nvf): frame export for guests with neither IVSHMEM
     * nor a usable vsock device.
     */
    frameChannel: z.boolean().optional(),
  })
  .superRefine((v, ctx) => {
    if (v.topology) {
      const n = v.topology.sockets * v.topology.cores * v.topology.threads;
      if (n !== v.vcpus)
        ctx.addIssue({ code: "custom", path: ["topology"], message: `sockets×cores×threads = ${n}, but vcpus is ${v.vcpus}` });
    }
    if (v.pinning && v.pinning.length !== v.vcpus)
      ctx.addIssue({ code: "custom", path: ["pinning"], message: `needs one host CPU per vCPU (${v.vcpus}), got ${v.pinning.length}` });
    const all = [...(v.gpu ? [v.gpu] : []), ...v.passthrough];
    if (new Set(all).size !== all.length)
      ctx.addIssue({ code: "custom", path: ["passthrough"], message: "a PCI address is listed twice" });
  })
  .meta({ id: "VmSpec" });
export type VmSpecInput = z.input<typeof VmSpecInput>;

/** A spec with every default resolved. */
export type VmSpec = Omit<z.output<typeof VmSpecInput>, "secureBoot" | "hyperv" | "tpm" | "topology"> & {
  secureBoot: boolean;
  hyperv: boolean;
  tpm: boolean;
  topology: z.infer<typeof Topology>;
};

export function resolveSpec(input: z.output<typeof VmSpecInput>): VmSpec {
  const windows = input.template !== "linux";
  return {
    ...input,
    secureBoot: input.secureBoot ?? input.template === "win11",
    hyperv: input.hyperv ?? windows,
    tpm: input.tpm ?? input.template === "win11",
    topology: input.topology ?? { sockets: 1, cores: input.vcpus, threads: 1 },
  };
}

/** Parses and resolves a spec; throws a ZodError naming every bad field. */
export function parseVmSpec(input: unknown): VmSpec {
  return resolveSpec(VmSpecInput.parse(input));
}

export const VM_STATES = ["running", "paused", "shutdown", "shut off", "crashed", "pmsuspended", "in shutdown", "blocked", "unknown"] as const;
export const VmState = z.enum(VM_STATES);
export type VmState = z.infer<typeof VmState>;

export const VmSummary = z.object({ name: z.string(), state: VmState }).meta({ id: "VmSummary" });
export type VmSummary = z.infer<typeof VmSummary>;

export const VmList = z.object({ vms: z.array(VmSummary) }).meta({ id: "VmList" });

export const VmChannel = z.object({ name: z.string(), path: z.string().nullable() });

export const VmDetails = z
  .object({
    name: z.string(),
    uuid: z.string().nullable(),
    state: VmState,
    id: z.number().int().nullable(),
    template: z.string().nullable(),
    resolution: z.object({ width: z.number().int(), height: z.number().int() }).nullable(),
    hdr: z.boolean().nullable(),
    vcpus: z.number().int().nullable(),
    memoryMiB: z.number().int().nullable(),
    /** Unix sockets of the virtio-serial channels, as libvirt assigned them (null until started). */
    channels: z.array(VmChannel),
    agentSocket: z.string().nullable(),
    shm: z.object({ name: z.string(), sizeMiB: z.number().int(), path: z.string() }).nullable(),
    hostdevs: z.array(z.string()),
    disks: z.array(z.string()),
    /** Displays (SPICE, VNC): the unix sockets they listen on; `tcp` lists TCP listens (a VM defined before displays moved to sockets). */
    display: z.array(z.object({ type: z.string(), sockets: z.array(z.string()), tcp: z.array(z.string()) })),
  })
  .meta({ id: "VmDetails" });
export type VmDetails = z.infer<typeof VmDetails>;

export const VmNameParams = z.strictObject({ name: VmName });

export const VmStopBody = z
  .strictObject({
    /** Seconds to wait for the guest to power off after the ACPI request before destroying it. */
    timeoutSeconds: z.number().int().min(0).max(600).default(60),
    /** Skip the ACPI request and pull the plug. */
    force: z.boolean().default(false),
  })
  .meta({ id: "VmStop" });
export type VmStopBody = z.infer<typeof VmStopBody>;

export const VmStopResult = z
  .object({ name: z.string(), state: VmState, method: z.enum(["acpi", "destroy", "already-off"]) })
  .meta({ id: "VmStopResult" });
export type VmStopResult = z.infer<typeof VmStopResult>;

export const VmCreateResult = z
  .object({
    name: z.string(),
    xml: z.string(),
    disk: z.string().nullable(),
    shm: z.object({ path: z.string(), sizeMiB: z.number().int() }),
    /** What may go wrong with this definition (an install ISO without virtio drivers, ...). */
    warnings: z.array(z.string()),
  })
  .meta({ id: "VmCreateResult" });
export type VmCreateResult = z.infer<typeof VmCreateResult>;
