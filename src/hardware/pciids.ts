/**
 * Vendor and device names from the system's pci.ids (Debian /usr/share/misc,
 * Arch /usr/share/hwdata). Names are decoration: a missing or malformed file
 * gives "unknown", never an error.
 */
import { readBounded } from "./sysfs.ts";

export const DEFAULT_PCI_IDS_PATHS = ["/usr/share/hwdata/pci.ids", "/usr/share/misc/pci.ids", "/usr/share/pci.ids"];
const PCI_IDS_MAX = 16 * 1024 * 1024;
export const UNKNOWN_NAME = "unknown";

export interface PciNames {
  /** Which file the names came from, or null when none could be read. */
  source: string | null;
  vendor(vendorId: number): string;
  device(vendorId: number, deviceId: number): string;
}

const hex4 = (n: number) => n.toString(16).padStart(4, "0");

export function parsePciIds(text: string, source: string | null): PciNames {
  const vendors = new Map<string, string>();
  const devices = new Map<string, string>();
  let vendor: string | null = null;
  for (const line of text.split("\n")) {
    if (line.length === 0 || line.startsWith("#")) continue;
    if (line.startsWith("C ")) break; // the class section follows the vendor section
    let m = /^([0-9a-f]{4})\s+(.+)$/.exec(line);
    if (m) {
      vendor = m[1]!;
      vendors.set(vendor, m[2]!.trim());
      continue;
    }
    m = /^\t([0-9a-f]{4})\s+(.+)$/.exec(line);
    if (m && vendor) devices.set(`${vendor}:${m[1]}`, m[2]!.trim());
  }
  return {
    source,
    vendor: (v) => vendors.get(hex4(v)) ?? UNKNOWN_NAME,
    device: (v, d) => devices.get(`${hex4(v)}:${hex4(d)}`) ?? UNKNOWN_NAME,
  };
}

/** Loads the first readable file of `paths`; none readable → names are all "unknown". */
export function loadPciNames(paths: string[]): PciNames {
  for (const p of paths) {
    const r = readBounded(p, PCI_IDS_MAX);
    if (r.ok) return parsePciIds(r.text, p);
  }
  return parsePciIds("", null);
}
