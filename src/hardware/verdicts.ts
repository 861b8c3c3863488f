/**
 * Judgement over the raw facts: IOMMU state, the host GPU and the
 * passthrough candidates, group cleanliness, the AMD reset bug, warnings.
 * Every verdict carries a reason a user can act on.
 */
import type { CpuInfo, Gpu, GroupMember, IommuGroup, IommuInfo, IommuState, PciDevice, ResetBug } from "./model.ts";
import { ACS_OVERRIDE_PARAM, hasParam, paramValues } from "./cmdline.ts";
import type { ResetBugList } from "./reset-ids.ts";

export interface IommuFacts {
  cpu: CpuInfo;
  cmdline: string[];
  groups: IommuGroup[];
  firmwareTable: "DMAR" | "IVRS" | null;
  /** false when the ACPI tables directory itself is not visible (cannot tell firmware state). */
  acpiVisible: boolean;
  /** The CPU reports the hypervisor flag: this system is a virtual machine. */
  virtualMachine?: boolean;
}

export function judgeIommu(f: IommuFacts): IommuInfo {
  const intel = f.cpu.vendor === "intel";
  const groupType = f.groups.find((g) => g.type !== null)?.type ?? null;
  const passthroughMode = hasParam(f.cmdline, "iommu=pt") || groupType === "identity";
  const acsOverrideActive = paramValues(f.cmdline, "pcie_acs_override").length > 0;
  const recommended: string[] = [];
  if (intel && !hasParam(f.cmdline, "intel_iommu=on")) recommended.push("intel_iommu=on");
  if (!hasParam(f.cmdline, "iommu=pt")) recommended.push("iommu=pt");

  const offByParam = ["intel_iommu=off", "amd_iommu=off", "iommu=off"].find((p) => hasParam(f.cmdline, p));
  let state: IommuState;
  let reason: string;
  if (f.groups.length > 0) {
    state = "enabled";
    reason = `IOMMU on: ${f.groups.length} groups${groupType ? `, default domain ${groupType}` : ""}`;
  } else if (offByParam) {
    state = "disabled-by-kernel-parameter";
    reason = `the kernel command line has ${offByParam}: remove it`;
  } else if (f.acpiVisible && f.firmwareTable === null && f.virtualMachine) {
    state = "disabled-in-firmware";
    reason = "this system is a virtual machine without a virtual IOMMU (no DMAR/IVRS table): GPU passthrough needs bare metal";
  } else if (f.acpiVisible && f.firmwareTable === null) {
    state = "disabled-in-firmware";
    reason = `no ${intel ? "DMAR" : f.cpu.vendor === "amd" ? "IVRS" : "DMAR/IVRS"} ACPI table: enable ${intel ? "VT-d" : f.cpu.vendor === "amd" ? "AMD-Vi/IOMMU (often named SVM + IOMMU)" : "the IOMMU"} in the firmware setup`;
  } else if (intel && !hasParam(f.cmdline, "intel_iommu=on")) {
    state = "missing-kernel-parameter";
    reason = "the firmware has VT-d (DMAR table) but the kernel command line lacks intel_iommu=on";
  } else if (f.cpu.vendor === "amd" && paramValues(f.cmdline, "amd_iommu").includes("on")) {
    state = "unknown";
    reason = "no IOMMU groups; note amd_iommu=on is not a valid value (AMD-Vi is on by default): check the firmware IOMMU setting and kernel support";
  } else {
    state = "unknown";
    reason = f.acpiVisible
      ? "no IOMMU groups although the firmware table is present: the kernel may lack IOMMU support"
      : "no IOMMU groups and no ACPI tables visible: cannot tell whether the firmware has an IOMMU";
  }
  return {
    state,
    enabled: state === "enabled",
    firmwareTable: f.firmwareTable,
    groupCount: f.groups.length,
    groupType,
    passthroughMode,
    acsOverrideActive,
    recommendedParams: recommended,
    reason,
  };
}

const slotOf = (address: string) => address.slice(0, address.lastIndexOf("."));
const idOf = (d: PciDevice) => (d.vendorId && d.deviceId ? `${d.vendorId}:${d.deviceId}` : null);
const isGpuKind = (d: PciDevice) => d.kind === "vga" || d.kind === "3d" || d.kind === "display";

/** Kernel release ≥ 5.15 (reset_method attribute and device_specific). */
export function kernelAtLeast(release: string | null, major: number, minor: number): boolean | null {
  const m = release ? /^(\d+)\.(\d+)/.exec(release) : null;
  if (!m) return null;
  const [a, b] = [Number(m[1]), Number(m[2])];
  return a > major || (a === major && b >= minor);
}

export function judgeResetBug(gpu: PciDevice, list: ResetBugList, vendorResetLoaded: boolean, release: string | null): ResetBug {
  const id = idOf(gpu);
  const family = id ? (list.get(id) ?? null) : null;
  if (!family)
    return {
      affected: false,
      family: null,
      vendorResetLoaded,
      deviceSpecificNeeded: false,
      deviceSpecificActive: false,
      reason: "not on the vendor-reset list",
    };
  const newKernel = kernelAtLeast(release, 5, 15) !== false;
  const active = gpu.resetMethod?.[0] === "device_specific";
  const problems: string[] = [];
  if (!vendorResetLoaded) problems.push("the vendor-reset module is not loaded (install vendor-reset-dkms and load it at boot)");
  if (newKernel && !active)
    problems.push(`reset_method must be "device_specific" on kernels ≥ 5.15 (now ${gpu.resetMethod ? gpu.resetMethod.join(" ") : "not exposed"})`);
  return {
    affected: true,
    family,
    vendorResetLoaded,
    deviceSpecificNeeded: newKernel,
    deviceSpecificActive: active,
    reason: problems.length
      ? `${family} GPU with the AMD reset bug: ${problems.join("; ")}`
      : `${family} GPU with the AMD reset bug, handled: vendor-reset loaded${newKernel ? " and device_specific reset active" : ""}`,
  };
}

export interface GpuFacts {
  devices: PciDevice[];
  groups: IommuGroup[];
  iommu: IommuInfo;
  resetIds: ResetBugList;
  vendorResetLoaded: boolean;
  kernelRelease: string | null;
  cmdline: string[];
  laptop: boolean;
}

function roleOf(d: PciDevice, hasHost: boolean): { role: Gpu["role"]; reason: string } {
  if (d.bootVga === true) return { role: "host", reason: "boot_vga=1: the firmware initialised this GPU; the host keeps it for its own display" };
  if (d.kind === "display") return { role: "other", reason: "display controller that is neither VGA nor 3D: not a passthrough target" };
  if (!d.vendorId || !d.deviceId) return { role: "other", reason: "vendor/device ids unreadable: cannot judge this device" };
  if (!hasHost && d.bootVga === null && d.kind === "vga")
    return { role: "other", reason: "boot_vga unreadable and no other GPU is the host GPU: cannot tell which one the host uses" };
  return {
    role: "candidate",
    reason: d.kind === "3d" ? "3D controller (no boot_vga; never the boot display): can be given to the VM" : "boot_vga=0: not the host's display GPU; can be given to the VM",
  };
}

export function judgeGpus(f: GpuFacts): { gpus: Gpu[]; warnings: string[] } {
  const byAddr = new Map(f.devices.map((d) => [d.address, d]));
  const groupOf = new Map<string, number>();
  for (const g of f.groups) for (const a of g.devices) groupOf.set(a, g.id);
  const groupId = (d: PciDevice) => groupOf.get(d.address) ?? d.group;
  const gpuDevices = f.devices.filter(isGpuKind);
  const hasHost = gpuDevices.some((d) => d.bootVga === true);
  const acsPresent = paramValues(f.cmdline, "pcie_acs_override").length > 0;
  const warnings: string[] = [];

  const gpus = gpuDevices.map((d): Gpu => {
    const { role, reason } = roleOf(d, hasHost);
    const gw: string[] = [...d.warnings.map((w) => `${d.address} ${w}`)];
    const functions = f.devices.filter((o) => slotOf(o.address) === slotOf(d.address));
    for (const fn of functions) if (fn !== d) gw.push(...fn.warnings.map((w) => `${fn.address} ${w}`));
    const vfioIds: string[] = [];
    for (const fn of functions) {
      const id = idOf(fn);
      if (id && !vfioIds.includes(id)) vfioIds.push(id);
      else if (!id) gw.push(`${fn.address}: ids unreadable, cannot be bound to vfio-pci by id`);
    }
    const gid = groupId(d);
    const slotGroups = new Set(functions.map(groupId).filter((g): g is number => g !== null));
    const members: GroupMember[] = [];
    for (const g of f.groups.filter((x) => slotGroups.has(x.id))) {
      for (const a of g.devices) {
        const m = byAddr.get(a);
        const kind = m?.kind ?? "other";
        if (a === d.address) members.push({ address: a, kind, verdict: "gpu", reason: "the GPU itself" });
        else if (slotOf(a) === slotOf(d.address))
          members.push({ address: a, kind, verdict: "slot-function", reason: `function of the GPU's slot (${kind}): goes to the VM with it` });
        else if (kind === "bridge")
          members.push({ address: a, kind, verdict: "bridge", reason: "PCI bridge/root port: stays on the host, vfio allows it in the group" });
        else
          members.push({
            address: a,
            kind,
            verdict: "conflict",
            reason: `another endpoint (${kind}${m ? `, ${m.vendorName} ${m.deviceName}` : ""}${m?.driver ? `, driver ${m.driver}` : ""}) shares the group: it would have to leave the host too`,
          });
      }
    }
    for (const fn of functions)
      if (fn !== d && groupId(fn) !== gid && groupId(fn) !== null)
        gw.push(`${fn.address} (${fn.kind}) is in IOMMU group ${groupId(fn)}, not the GPU's group ${gid}: that group must be passed too`);
    const conflicts = members.filter((m) => m.verdict === "conflict");
    const hostGpuShares = gpuDevices.some((o) => o.bootVga === true && o !== d && slotGroups.has(groupId(o) ?? -1));
    let isolationReason: string;
    const groupClean = f.iommu.enabled && gid !== null && conflicts.length === 0;
    if (!f.iommu.enabled) isolationReason = `IOMMU not enabled (${f.iommu.state}): groups unknown`;
    else if (gid === null) isolationReason = "the GPU has no IOMMU group";
    else if (conflicts.length === 0)
      isolationReason = `${slotGroups.size > 1 ? `groups ${[...slotGroups].sort((a, b) => a - b).join(", ")} hold` : `group ${gid} holds`} only the GPU's slot functions${members.some((m) => m.verdict === "bridge") ? " and bridges" : ""}: clean`;
    else isolationReason = `group ${gid} also holds ${conflicts.map((c) => `${c.address} (${c.kind})`).join(", ")}: not isolated`;
    const needsAcsOverride = conflicts.length > 0;
    if (needsAcsOverride)
      gw.push(
        `the group is not clean: an ACS override (${ACS_OVERRIDE_PARAM}, needs a kernel with the ACS patch) can split it, at the cost of isolation between those devices${acsPresent ? " — it is on the command line already" : ""}`,
      );
    if (hostGpuShares) gw.push("the host GPU shares this group: passing this GPU would take the host display away");
    if (role === "candidate" && d.kind === "3d" && f.laptop)
      gw.push("laptop dGPU as a 3D controller (muxless/Optimus): it has no display outputs of its own; the VM is seen through IVSHMEM/streaming, and some drivers need the vBIOS supplied (romfile)");
    const hostIdClash = role === "candidate" && gpuDevices.some((o) => o !== d && o.bootVga === true && idOf(o) === idOf(d));
    if (hostIdClash) gw.push("the host GPU has the same vendor:device id: vfio-pci.ids would claim both; bind by address (driver_override) instead");
    const resetBug = judgeResetBug(d, f.resetIds, f.vendorResetLoaded, f.kernelRelease);
    if (resetBug.affected && (!resetBug.vendorResetLoaded || (resetBug.deviceSpecificNeeded && !resetBug.deviceSpecificActive)))
      gw.push(resetBug.reason);
    return {
      address: d.address,
      role,
      roleReason: reason,
      kind: d.kind,
      vendorId: d.vendorId,
      deviceId: d.deviceId,
      name: `${d.vendorName} ${d.deviceName}`,
      driver: d.driver,
      bootVga: d.bootVga,
      group: gid,
      functions,
      vfioIds,
      groupMembers: members,
      groupClean,
      needsAcsOverride,
      acsOverrideParam: needsAcsOverride ? ACS_OVERRIDE_PARAM : null,
      acsOverridePresent: acsPresent,
      isolationReason,
      resetBug,
      boundToVfio: functions.every((fn) => fn.driver === "vfio-pci"),
      warnings: gw,
    };
  });
  const hosts = gpus.filter((g) => g.role === "host");
  const candidates = gpus.filter((g) => g.role === "candidate");
  if (gpus.length === 0) warnings.push("no GPU found");
  else if (gpus.length === 1)
    warnings.push("only one GPU: passing it to the VM leaves the host without a display (single-GPU passthrough is not supported)");
  if (hosts.length === 0 && gpus.length > 0) warnings.push("no GPU reports boot_vga=1: the host GPU cannot be identified");
  if (candidates.length === 0 && gpus.length > 1) warnings.push("no passthrough candidate among the GPUs");
  return { gpus, warnings };
}
