/**
 * Reads the raw facts of a machine from <root>/sys and <root>/proc: PCI
 * devices, IOMMU groups, CPU, kernel command line, modules, chassis, firmware.
 * No judgement here (see verdicts.ts); unreadable entries become warnings.
 */
import { join } from "node:path";
import type { CpuInfo, DeviceKind, IommuGroup, PciDevice } from "./model.ts";
import { PCI_ADDRESS_RE } from "./model.ts";
import type { PciNames } from "./pciids.ts";
import { exists, linkTarget, listDir, parseHex, PROC_FILE_MAX, readBounded, resolveLink } from "./sysfs.ts";

const hex = (n: number | null, digits: number) => (n === null ? null : n.toString(16).padStart(digits, "0"));

export function kindOfClass(cls: number | null): DeviceKind {
  if (cls === null) return "other";
  const base = cls >> 16;
  const sub = (cls >> 8) & 0xff;
  if (base === 0x03) return sub === 0x00 ? "vga" : sub === 0x02 ? "3d" : "display";
  if (base === 0x04 && (sub === 0x03 || sub === 0x01)) return "audio";
  if (base === 0x0c && sub === 0x03) return "usb";
  if (base === 0x0c && sub === 0x80) return "serial-bus";
  if (base === 0x06 && (sub === 0x00 || sub === 0x04)) return "bridge";
  if (base === 0x01) return "storage";
  if (base === 0x02) return "network";
  return "other";
}

function readAttr(dir: string, name: string, warnings: string[], required: boolean): string | null {
  const r = readBounded(join(dir, name));
  if (r.ok) return r.text;
  if (!r.missing || required) warnings.push(`${name}: ${r.missing ? "missing" : `unreadable (${r.error})`}`);
  return null;
}

function hexAttr(dir: string, name: string, digits: number, warnings: string[], required = true): number | null {
  const text = readAttr(dir, name, warnings, required);
  if (text === null) return null;
  const v = parseHex(text, digits);
  if (v === null) warnings.push(`${name}: malformed value ${JSON.stringify(text.trim().slice(0, 32))}`);
  return v;
}

/** Reads one PCI device directory; every failure is a warning on the device, never an exception. */
export function readPciDevice(devicesDir: string, address: string, names: PciNames): PciDevice {
  const warnings: string[] = [];
  const entry = join(devicesDir, address);
  const resolved = resolveLink(entry);
  const dir = resolved.ok ? resolved.path : entry;
  if (!resolved.ok) warnings.push(`device entry: ${resolved.error}`);
  const vendor = resolved.ok ? hexAttr(dir, "vendor", 4, warnings) : null;
  const device = resolved.ok ? hexAttr(dir, "device", 4, warnings) : null;
  const cls = resolved.ok ? hexAttr(dir, "class", 6, warnings) : null;
  const subVendor = resolved.ok ? hexAttr(dir, "subsystem_vendor", 4, warnings, false) : null;
  const subDevice = resolved.ok ? hexAttr(dir, "subsystem_device", 4, warnings, false) : null;
  const revision = resolved.ok ? hexAttr(dir, "revision", 2, warnings, false) : null;

  let bootVga: boolean | null = null;
  if (resolved.ok) {
    const text = readAttr(dir, "boot_vga", warnings, false);
    if (text !== null) {
      const t = text.trim();
      if (t === "1" || t === "0") bootVga = t === "1";
      else warnings.push(`boot_vga: malformed value ${JSON.stringify(t.slice(0, 32))}`);
    }
  }
  let resetMethod: string[] | null = null;
  if (resolved.ok) {
    const text = readAttr(dir, "reset_method", warnings, false);
    if (text !== null) {
      const methods = text.trim().split(/\s+/).filter(Boolean);
      if (methods.every((m) => /^[a-z_]{1,32}$/.test(m))) resetMethod = methods;
      else warnings.push(`reset_method: malformed value ${JSON.stringify(text.trim().slice(0, 64))}`);
    }
  }
  let driver: string | null = null;
  const drv = linkTarget(join(dir, "driver"));
  if (drv.ok) driver = drv.name;
  else if (!drv.missing && resolved.ok) warnings.push(`driver: ${drv.error}`);

  let group: number | null = null;
  const grp = linkTarget(join(dir, "iommu_group"));
  if (grp.ok) {
    if (/^\d{1,6}$/.test(grp.name)) group = Number(grp.name);
    else warnings.push(`iommu_group: malformed link target ${JSON.stringify(grp.name.slice(0, 32))}`);
  } else if (!grp.missing && resolved.ok) warnings.push(`iommu_group: ${grp.error}`);

  return {
    address,
    class: hex(cls, 6),
    kind: kindOfClass(cls),
    vendorId: hex(vendor, 4),
    deviceId: hex(device, 4),
    subsystemVendorId: hex(subVendor, 4),
    subsystemDeviceId: hex(subDevice, 4),
    revision: hex(revision, 2),
    vendorName: vendor === null ? "unknown" : names.vendor(vendor),
    deviceName: vendor === null || device === null ? "unknown" : names.device(vendor, device),
    driver,
    bootVga,
    resetMethod,
    group,
    warnings,
  };
}

export interface PciScan {
  devices: PciDevice[];
  warnings: string[];
}

export function readPciDevices(root: string, names: PciNames): PciScan {
  const devicesDir = join(root, "sys", "bus", "pci", "devices");
  const listing = listDir(devicesDir);
  if (!listing.ok)
    return { devices: [], warnings: [`${devicesDir}: ${listing.missing ? "missing (no PCI bus visible under this root)" : listing.error}`] };
  const warnings: string[] = [];
  const devices: PciDevice[] = [];
  for (const name of listing.names) {
    if (!PCI_ADDRESS_RE.test(name)) {
      warnings.push(`${devicesDir}: ignored entry ${JSON.stringify(name.slice(0, 64))} (not a PCI address)`);
      continue;
    }
    devices.push(readPciDevice(devicesDir, name, names));
  }
  return { devices, warnings };
}

export function readIommuGroups(root: string, warnings: string[]): IommuGroup[] {
  const base = join(root, "sys", "kernel", "iommu_groups");
  const listing = listDir(base);
  if (!listing.ok) {
    if (!listing.missing) warnings.push(`${base}: ${listing.error}`);
    return [];
  }
  const groups: IommuGroup[] = [];
  for (const name of listing.names) {
    if (!/^\d{1,6}$/.test(name)) {
      warnings.push(`${base}: ignored entry ${JSON.stringify(name.slice(0, 64))}`);
      continue;
    }
    const devs = listDir(join(base, name, "devices"));
    if (!devs.ok) {
      warnings.push(`iommu group ${name}: devices ${devs.missing ? "missing" : devs.error}`);
      continue;
    }
    const type = readBounded(join(base, name, "type"));
    const typeText = type.ok ? type.text.trim() : null;
    groups.push({
      id: Number(name),
      type: typeText && /^[A-Za-z-]{1,32}$/.test(typeText) ? typeText : null,
      devices: devs.names.filter((d) => PCI_ADDRESS_RE.test(d)),
    });
  }
  return groups.sort((a, b) => a.id - b.id);
}

export function readCpu(root: string, warnings: string[]): CpuInfo & { flags: Set<string> } {
  const r = readBounded(join(root, "proc", "cpuinfo"), PROC_FILE_MAX);
  if (!r.ok) {
    warnings.push(`/proc/cpuinfo: ${r.missing ? "missing" : r.error}`);
    return { vendor: "unknown", model: null, virtualization: null, reason: "cannot read /proc/cpuinfo", flags: new Set() };
  }
  const field = (key: string) => {
    const m = new RegExp(`^${key}\\s*:\\s*(.*)$`, "m").exec(r.text);
    return m ? m[1]!.trim() : null;
  };
  const vendorId = field("vendor_id");
  const vendor = vendorId === "GenuineIntel" ? "intel" : vendorId === "AuthenticAMD" ? "amd" : vendorId ? "other" : "unknown";
  const flags = new Set((field("flags") ?? "").split(/\s+/).filter(Boolean));
  const virtualization = flags.has("vmx") ? "vmx" : flags.has("svm") ? "svm" : null;
  const reason = virtualization
    ? `${virtualization === "vmx" ? "Intel VT-x" : "AMD-V"} available (${virtualization} flag)`
    : flags.has("hypervisor")
      ? "no vmx/svm flag: this system is itself a virtual machine and its hypervisor hides the flag (/dev/kvm may still work through nested virtualisation)"
      : "no vmx/svm flag: hardware virtualisation is off in firmware or unsupported";
  return { vendor, model: field("model name"), virtualization, reason, flags };
}

export function readText(path: string, max = 64 * 1024): string | null {
  const r = readBounded(path, max);
  return r.ok ? r.text.trim() : null;
}

export function readModules(root: string): Set<string> {
  const out = new Set<string>();
  const r = readBounded(join(root, "proc", "modules"), PROC_FILE_MAX);
  if (r.ok) for (const line of r.text.split("\n")) if (line) out.add(line.split(" ")[0]!);
  for (const m of ["vfio_pci", "vendor_reset"]) if (exists(join(root, "sys", "module", m))) out.add(m);
  return out;
}

const LAPTOP_TYPES = new Set([8, 9, 10, 14, 30, 31, 32]);
const DESKTOP_TYPES = new Set([3, 4, 5, 6, 7, 13, 15, 16, 35, 36]);
const SERVER_TYPES = new Set([17, 23, 28, 29]);

export function readChassis(root: string): { chassis: "laptop" | "desktop" | "server" | "other" | "unknown"; chassisType: number | null } {
  const t = readText(join(root, "sys", "class", "dmi", "id", "chassis_type"));
  if (t === null || !/^\d{1,3}$/.test(t)) return { chassis: "unknown", chassisType: null };
  const n = Number(t);
  const chassis = LAPTOP_TYPES.has(n) ? "laptop" : DESKTOP_TYPES.has(n) ? "desktop" : SERVER_TYPES.has(n) ? "server" : "other";
  return { chassis, chassisType: n };
}
