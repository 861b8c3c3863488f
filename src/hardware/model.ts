/** The hardware report: what `hardware detect` prints with --json and GET /api/v1/hardware returns. */
import { z } from "zod";

/** PCI address in sysfs form, domain:bus:device.function, lowercase hex. */
export const PCI_ADDRESS_RE = /^[0-9a-f]{4}:[0-9a-f]{2}:[0-1][0-9a-f]\.[0-7]$/;
export const PciAddress = z
  .string()
  .max(12, "must be a PCI address like 0000:01:00.0")
  .transform((s) => (/^[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$/.test(s) ? `0000:${s}` : s).toLowerCase())
  .pipe(z.string().regex(PCI_ADDRESS_RE, "must be a PCI address like 0000:01:00.0"))
  .meta({ description: "PCI address, e.g. 0000:01:00.0 (01:00.0 is accepted)" });

export const VendorDeviceId = z.string().regex(/^[0-9a-f]{4}:[0-9a-f]{4}$/);

export const DeviceKind = z.enum(["vga", "3d", "display", "audio", "usb", "serial-bus", "bridge", "storage", "network", "other"]);
export type DeviceKind = z.infer<typeof DeviceKind>;

export const PciDevice = z
  .object({
    address: z.string(),
    /** Class code as 6 hex digits, e.g. "030000"; null when unreadable. */
    class: z.string().nullable(),
    kind: DeviceKind,
    vendorId: z.string().nullable(),
    deviceId: z.string().nullable(),
    subsystemVendorId: z.string().nullable(),
    subsystemDeviceId: z.string().nullable(),
    revision: z.string().nullable(),
    vendorName: z.string(),
    deviceName: z.string(),
    driver: z.string().nullable(),
    /** true/false from boot_vga; null when the attribute is absent (3D controllers, non-VGA) or unreadable. */
    bootVga: z.boolean().nullable(),
    /** Reset methods in the kernel's order; null when the kernel does not expose reset_method. */
    resetMethod: z.array(z.string()).nullable(),
    group: z.number().int().nullable(),
    /** Problems reading this device's sysfs entries. */
    warnings: z.array(z.string()),
  })
  .meta({ id: "PciDevice" });
export type PciDevice = z.infer<typeof PciDevice>;

export const IommuGroup = z
  .object({
    id: z.number().int(),
    /** DMA, DMA-FQ, identity, ... or null when the kernel does not expose it. */
    type: z.string().nullable(),
    devices: z.array(z.string()),
  })
  .meta({ id: "IommuGroup" });
export type IommuGroup = z.infer<typeof IommuGroup>;

export const CpuInfo = z
  .object({
    vendor: z.enum(["intel", "amd", "other", "unknown"]),
    model: z.string().nullable(),
    /** vmx (Intel VT-x), svm (AMD-V) or null when neither flag is present. */
    virtualization: z.enum(["vmx", "svm"]).nullable(),
    reason: z.string(),
  })
  .meta({ id: "CpuInfo" });

export const IommuState = z.enum([
  "enabled",
  "disabled-in-firmware",
  "missing-kernel-parameter",
  "disabled-by-kernel-parameter",
  "unknown",
]);
export type IommuState = z.infer<typeof IommuState>;

export const IommuInfo = z
  .object({
    state: IommuState,
    enabled: z.boolean(),
    /** DMAR (Intel VT-d) or IVRS (AMD-Vi) ACPI table present. */
    firmwareTable: z.enum(["DMAR", "IVRS"]).nullable(),
    groupCount: z.number().int(),
    /** Default domain type of the groups (identity = iommu=pt). */
    groupType: z.string().nullable(),
    passthroughMode: z.boolean(),
    acsOverrideActive: z.boolean(),
    /** Kernel parameters still to add for passthrough (besides vfio-pci.ids). */
    recommendedParams: z.array(z.string()),
    reason: z.string(),
  })
  .meta({ id: "IommuInfo" });
export type IommuInfo = z.infer<typeof IommuInfo>;

export const GroupMember = z.object({
  address: z.string(),
  kind: DeviceKind,
  /** slot-function: goes to the guest with the GPU; bridge: may stay on the host; conflict: another endpoint. */
  verdict: z.enum(["gpu", "slot-function", "bridge", "conflict"]),
  reason: z.string(),
});

export const ResetBug = z
  .object({
    affected: z.boolean(),
    family: z.string().nullable(),
    vendorResetLoaded: z.boolean(),
    /** Kernels ≥ 5.15 need "device_specific" written to reset_method for vendor-reset to act. */
    deviceSpecificNeeded: z.boolean(),
    deviceSpecificActive: z.boolean(),
    reason: z.string(),
  })
  .meta({ id: "ResetBug" });

export const GpuRole = z.enum(["host", "candidate", "other"]);

export const Gpu = z
  .object({
    address: z.string(),
    role: GpuRole,
    roleReason: z.string(),
    kind: DeviceKind,
    vendorId: z.string().nullable(),
    deviceId: z.string().nullable(),
    name: z.string(),
    driver: z.string().nullable(),
    bootVga: z.boolean().nullable(),
    group: z.number().int().nullable(),
    /** Every function of the GPU's slot, the GPU included. */
    functions: z.array(PciDevice),
    /** vendor:device ids for vfio-pci (unique, GPU first). */
    vfioIds: z.array(VendorDeviceId),
    groupMembers: z.array(GroupMember),
    groupClean: z.boolean(),
    needsAcsOverride: z.boolean(),
    acsOverrideParam: z.string().nullable(),
    acsOverridePresent: z.boolean(),
    isolationReason: z.string(),
    resetBug: ResetBug,
    boundToVfio: z.boolean(),
    warnings: z.array(z.string()),
  })
  .meta({ id: "Gpu" });
export type Gpu = z.infer<typeof Gpu>;

export const HardwareReport = z
  .object({
    root: z.string(),
    kernel: z.object({ release: z.string().nullable(), cmdline: z.string().nullable() }),
    cpu: CpuInfo,
    iommu: IommuInfo,
    platform: z.object({
      chassis: z.enum(["laptop", "desktop", "server", "other", "unknown"]),
      chassisType: z.number().int().nullable(),
      firmware: z.enum(["efi", "bios"]),
    }),
    modules: z.object({ vfioPci: z.boolean(), vendorReset: z.boolean() }),
    pciIdsSource: z.string().nullable(),
    groups: z.array(IommuGroup),
    devices: z.array(PciDevice),
    gpus: z.array(Gpu),
    /** Machine-wide warnings (single GPU, IOMMU off, laptop dGPU, ...). */
    warnings: z.array(z.string()),
  })
  .meta({ id: "HardwareReport" });
export type HardwareReport = z.infer<typeof HardwareReport>;
export type CpuInfo = z.infer<typeof CpuInfo>;
export type ResetBug = z.infer<typeof ResetBug>;
export type GroupMember = z.infer<typeof GroupMember>;
