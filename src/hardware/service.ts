/**
 * Hardware detection: reads <root>/sys and <root>/proc and judges the machine
 * for GPU passthrough. No transport; the CLI and the API call detect().
 */
import { join } from "node:path";
import type { Config } from "../config.ts";
import { AppError } from "../errors.ts";
import { splitCmdline } from "./cmdline.ts";
import { HardwareReport } from "./model.ts";
import { DEFAULT_PCI_IDS_PATHS, loadPciNames, type PciNames } from "./pciids.ts";
import { readChassis, readCpu, readIommuGroups, readModules, readPciDevices, readText } from "./read.ts";
import { loadResetIds, type ResetBugList } from "./reset-ids.ts";
import { exists, listDir } from "./sysfs.ts";
import { judgeGpus, judgeIommu } from "./verdicts.ts";

export interface HardwareSettings {
  root: string;
  pciIds?: string;
  vendorResetIds?: string;
}

export function hardwareSettings(config: Config): HardwareSettings {
  return { root: config.root, pciIds: config.hardware.pciIds, vendorResetIds: config.hardware.vendorResetIds };
}

export class HardwareService {
  private names: PciNames | null = null;
  private resetIds: ResetBugList | null = null;

  constructor(private readonly settings: HardwareSettings) {}

  private pciNames(): PciNames {
    this.names ??= loadPciNames(this.settings.pciIds ? [this.settings.pciIds] : DEFAULT_PCI_IDS_PATHS);
    return this.names;
  }

  /** Loaded modules, oldest first (/proc/modules lists the newest first); [] when unreadable. */
  moduleLoadOrder(root: string = this.settings.root): string[] {
    const text = readText(join(root, "proc", "modules"), 1024 * 1024);
    return (text ?? "").split("\n").filter(Boolean).map((l) => l.split(" ")[0]!).reverse();
  }

  /** Root of the machine detection reads. */
  get root(): string {
    return this.settings.root;
  }

  /** Detects the machine under `root` (default: the configured root). */
  detect(root: string = this.settings.root): HardwareReport {
    if (!exists(join(root, "sys")) && !exists(join(root, "proc")))
      throw new AppError("ROOT_INVALID", `${root} holds neither sys/ nor proc/: not a system root`, { status: 422 });
    this.resetIds ??= loadResetIds(this.settings.vendorResetIds);
    const warnings: string[] = [];
    const cpu = readCpu(root, warnings);
    const cmdlineText = readText(join(root, "proc", "cmdline"));
    if (cmdlineText === null) warnings.push("/proc/cmdline: unreadable or missing");
    const cmdline = splitCmdline(cmdlineText ?? "");
    const release = readText(join(root, "proc", "sys", "kernel", "osrelease"));
    const modules = readModules(root);
    const scan = readPciDevices(root, this.pciNames());
    warnings.push(...scan.warnings);
    const groups = readIommuGroups(root, warnings);
    const tables = join(root, "sys", "firmware", "acpi", "tables");
    const acpi = listDir(tables);
    const firmwareTable = acpi.ok ? (acpi.names.includes("DMAR") ? "DMAR" : acpi.names.includes("IVRS") ? "IVRS" : null) : null;
    const { flags, ...cpuInfo } = cpu;
    const iommu = judgeIommu({ cpu: cpuInfo, cmdline, groups, firmwareTable, acpiVisible: acpi.ok, virtualMachine: flags.has("hypervisor") });
    const platform = { ...readChassis(root), firmware: exists(join(root, "sys", "firmware", "efi")) ? ("efi" as const) : ("bios" as const) };
    const vendorReset = modules.has("vendor_reset");
    const judged = judgeGpus({
      devices: scan.devices,
      groups,
      iommu,
      resetIds: this.resetIds,
      vendorResetLoaded: vendorReset,
      kernelRelease: release,
      cmdline,
      laptop: platform.chassis === "laptop",
    });
    if (!cpuInfo.virtualization) warnings.push(cpuInfo.reason);
    if (cpuInfo.vendor === "amd" && cmdline.some((w) => w.replace(/-/g, "_") === "amd_iommu=on"))
      warnings.push("amd_iommu=on on the kernel command line is not a valid value (AMD-Vi is on by default): remove it");
    if (!iommu.enabled) warnings.push(`IOMMU: ${iommu.reason}`);
    warnings.push(...judged.warnings);
    return HardwareReport.parse({
      root,
      kernel: { release, cmdline: cmdlineText },
      cpu: cpuInfo,
      iommu,
      platform,
      modules: { vfioPci: modules.has("vfio_pci"), vendorReset },
      pciIdsSource: this.pciNames().source,
      groups,
      devices: scan.devices,
      gpus: judged.gpus,
      warnings,
    });
  }
}
