import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HardwareReport, type Gpu } from "../../src/hardware/model.ts";
import { parsePciIds } from "../../src/hardware/pciids.ts";
import { EMBEDDED_RESET_IDS, parseResetIds } from "../../src/hardware/reset-ids.ts";
import { HardwareService } from "../../src/hardware/service.ts";
import { fixtureRoot, writeMachine } from "../fixtures/sysfs/build.ts";
import { MACHINES } from "../fixtures/sysfs/machines.ts";

const svc = new HardwareService({ root: "/" });
const detect = (name: string) => svc.detect(fixtureRoot(name));
const gpu = (r: HardwareReport, addr: string): Gpu => {
  const g = r.gpus.find((x) => x.address === addr);
  if (!g) throw new Error(`no gpu ${addr}`);
  return g;
};
const tmp = mkdtempSync(join(tmpdir(), "neuron-hw-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("fixture machines", () => {
  test("every fixture machine yields a report that passes its schema", () => {
    for (const m of MACHINES) expect(HardwareReport.safeParse(detect(m.name)).success).toBe(true);
  });

  test("Intel iGPU + NVIDIA dGPU desktop: iGPU is host, dGPU a clean candidate with its audio", () => {
    const r = detect("desktop-intel-nvidia");
    expect(HardwareReport.safeParse(r).success).toBe(true);
    expect(r.cpu).toMatchObject({ vendor: "intel", virtualization: "vmx" });
    expect(r.iommu).toMatchObject({ state: "enabled", enabled: true, firmwareTable: "DMAR", groupType: "identity", passthroughMode: true, recommendedParams: [] });
    expect(r.platform).toEqual({ chassis: "desktop", chassisType: 3, firmware: "efi" });
    expect(r.groups.length).toBe(7);
    const host = gpu(r, "0000:00:02.0");
    expect(host.role).toBe("host");
    expect(host.roleReason).toContain("boot_vga=1");
    const g = gpu(r, "0000:01:00.0");
    expect(g).toMatchObject({ role: "candidate", kind: "vga", group: 1, groupClean: true, needsAcsOverride: false, boundToVfio: false, driver: "nvidia" });
    expect(g.name).toBe("NVIDIA Corporation GA104 [GeForce RTX 3070]");
    expect(g.functions.map((f) => [f.address, f.kind])).toEqual([["0000:01:00.0", "vga"], ["0000:01:00.1", "audio"]]);
    expect(g.vfioIds).toEqual(["10de:2484", "10de:228b"]);
    expect(g.groupMembers.find((m) => m.address === "0000:00:01.0")?.verdict).toBe("bridge");
    expect(g.resetBug.affected).toBe(false);
    expect(g.warnings).toEqual([]);
    expect(r.warnings).toEqual([]);
    expect(g.functions[0]).toMatchObject({ subsystemVendorId: "1462", subsystemDeviceId: "3897", revision: "a1", resetMethod: ["flr", "bus"], bootVga: false });
  });

  test("the same desktop after VFIO is bound", () => {
    const r = detect("desktop-intel-nvidia-vfio");
    const g = gpu(r, "0000:01:00.0");
    expect(g.boundToVfio).toBe(true);
    expect(g.driver).toBe("vfio-pci");
    expect(r.modules.vfioPci).toBe(true);
    expect(r.iommu.acsOverrideActive).toBe(false);
  });

  test("AMD with two AMD GPUs: reset bug on the guest card, audio in another group", () => {
    const r = detect("amd-two-gpus-reset-bug");
    expect(r.cpu).toMatchObject({ vendor: "amd", virtualization: "svm" });
    expect(r.iommu).toMatchObject({ state: "enabled", firmwareTable: "IVRS", recommendedParams: [] });
    expect(gpu(r, "0000:0c:00.0").role).toBe("host");
    expect(gpu(r, "0000:0c:00.0").resetBug.affected).toBe(false);
    const g = gpu(r, "0000:0d:00.0");
    expect(g.role).toBe("candidate");
    expect(g.resetBug).toMatchObject({ affected: true, family: "AMD_POLARIS10", vendorResetLoaded: false, deviceSpecificNeeded: true, deviceSpecificActive: false });
    expect(g.resetBug.reason).toContain("vendor-reset module is not loaded");
    expect(g.vfioIds).toEqual(["1002:67df", "1002:aaf0"]);
    expect(g.groupClean).toBe(true);
    expect(g.warnings.some((w) => w.includes("0000:0d:00.1") && w.includes("group 7"))).toBe(true);
    expect(g.isolationReason).toContain("groups 6, 7");
  });

  test("vendor-reset loaded with device_specific active counts as handled", () => {
    const m = MACHINES.find((x) => x.name === "amd-two-gpus-reset-bug")!;
    const root = join(tmp, "amd-handled");
    writeMachine(root, {
      ...m,
      modules: [...m.modules, "vendor_reset"],
      devices: m.devices.map((d) => (d.address === "0000:0d:00.0" ? { ...d, resetMethod: "device_specific bus" } : d)),
    });
    const g = gpu(svc.detect(root), "0000:0d:00.0");
    expect(g.resetBug).toMatchObject({ affected: true, vendorResetLoaded: true, deviceSpecificActive: true });
    expect(g.warnings.some((w) => w.includes("reset bug"))).toBe(false);
  });

  test("laptop: 3D-controller dGPU shares a group with the NVMe disk → ACS override needed", () => {
    const r = detect("laptop-nvidia-3d-nvme");
    expect(r.platform.chassis).toBe("laptop");
    expect(r.iommu.recommendedParams).toEqual(["iommu=pt"]);
    const g = gpu(r, "0000:01:00.0");
    expect(g).toMatchObject({ role: "candidate", kind: "3d", bootVga: null, groupClean: false, needsAcsOverride: true, acsOverridePresent: false });
    expect(g.acsOverrideParam).toBe("pcie_acs_override=downstream,multifunction");
    const conflict = g.groupMembers.filter((m) => m.verdict === "conflict");
    expect(conflict.map((c) => c.address)).toEqual(["0000:02:00.0"]);
    expect(conflict[0]!.kind).toBe("storage");
    expect(g.groupMembers.filter((m) => m.verdict === "bridge").map((m) => m.address)).toEqual(["0000:00:01.0", "0000:00:06.0"]);
    expect(g.warnings.some((w) => w.includes("3D controller"))).toBe(true);
  });

  test("IOMMU off in firmware: no DMAR table", () => {
    const r = detect("intel-iommu-off-firmware");
    expect(r.iommu).toMatchObject({ state: "disabled-in-firmware", enabled: false, groupCount: 0 });
    expect(r.iommu.reason).toContain("VT-d");
    expect(r.platform.firmware).toBe("bios");
    const g = gpu(r, "0000:01:00.0");
    expect(g.role).toBe("candidate");
    expect(g.groupClean).toBe(false);
    expect(g.needsAcsOverride).toBe(false);
    expect(g.isolationReason).toContain("IOMMU not enabled");
    expect(r.warnings.some((w) => w.startsWith("IOMMU:"))).toBe(true);
  });

  test("IOMMU present in firmware but intel_iommu=on missing", () => {
    const r = detect("intel-iommu-no-param");
    expect(r.iommu.state).toBe("missing-kernel-parameter");
    expect(r.iommu.recommendedParams).toEqual(["intel_iommu=on", "iommu=pt"]);
  });

  test("IOMMU disabled by a kernel parameter", () => {
    const m = MACHINES.find((x) => x.name === "intel-iommu-no-param")!;
    const root = join(tmp, "iommu-off-param");
    writeMachine(root, { ...m, cmdline: m.cmdline + " intel_iommu=off" });
    expect(svc.detect(root).iommu.state).toBe("disabled-by-kernel-parameter");
  });

  test("amd_iommu=on is named as invalid", () => {
    const m = MACHINES.find((x) => x.name === "amd-two-gpus-reset-bug")!;
    const root = join(tmp, "amd-iommu-on");
    writeMachine(root, { ...m, cmdline: m.cmdline + " amd_iommu=on" });
    const r = svc.detect(root);
    expect(r.warnings.some((w) => w.startsWith("amd_iommu=on") && w.includes("not a valid value"))).toBe(true);
    expect(r.iommu.state).toBe("enabled");
  });

  test("single GPU: it is the host GPU, no candidate, a clear warning; USB-C functions listed", () => {
    const r = detect("single-gpu-turing");
    expect(r.gpus.length).toBe(1);
    const g = r.gpus[0]!;
    expect(g.role).toBe("host");
    expect(g.functions.map((f) => f.kind)).toEqual(["vga", "audio", "usb", "serial-bus"]);
    expect(g.vfioIds).toEqual(["10de:1e84", "10de:10f8", "10de:1ad8", "10de:1ad9"]);
    expect(r.warnings.some((w) => w.includes("only one GPU"))).toBe(true);
  });
});

describe("names", () => {
  test("pci.ids missing → unknown names, no failure", () => {
    const r = new HardwareService({ root: "/", pciIds: join(tmp, "absent.ids") }).detect(fixtureRoot("desktop-intel-nvidia"));
    expect(r.pciIdsSource).toBeNull();
    expect(gpu(r, "0000:01:00.0").name).toBe("unknown unknown");
  });
  test("parser keeps vendor sections apart and stops at the class section", () => {
    const n = parsePciIds("# c\n10de  NVIDIA\n\t2484  GA104\n\t\t1462 3897  sub\n1002  AMD\n\t2484  not nvidia\nC 03  Display\n\t00  VGA\n", "x");
    expect(n.device(0x10de, 0x2484)).toBe("GA104");
    expect(n.device(0x1002, 0x2484)).toBe("not nvidia");
    expect(n.vendor(0x1234)).toBe("unknown");
  });
  test("vendor-reset list: embedded copy parsed; a malformed list is a clear error", () => {
    expect(EMBEDDED_RESET_IDS.get("1002:67df")).toBe("AMD_POLARIS10");
    expect(EMBEDDED_RESET_IDS.get("1002:738c")).toBe("AMD_ARCTURUS");
    expect(EMBEDDED_RESET_IDS.size).toBeGreaterThan(60);
    expect(() => parseResetIds("vendor:device\tfamily\nnot-an-id\tX\n")).toThrow(/line 2/);
  });
});

describe("hostile sysfs", () => {
  const base = () => {
    const root = join(tmp, `hostile-${Math.random().toString(36).slice(2)}`);
    cpSync(fixtureRoot("desktop-intel-nvidia"), root, { recursive: true, verbatimSymlinks: true });
    return root;
  };
  const dev = (root: string, rel: string) => join(root, "sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0", rel);

  test("garbage, missing, oversized and unreadable attributes become per-device warnings", () => {
    const root = base();
    writeFileSync(dev(root, "vendor"), "0xZZZZ\n");
    unlinkSync(dev(root, "class"));
    writeFileSync(dev(root, "boot_vga"), "2\n");
    writeFileSync(dev(root, "revision"), "x".repeat(10000));
    unlinkSync(dev(root, "reset_method"));
    mkdirSync(dev(root, "reset_method")); // a directory where a file belongs: unreadable
    writeFileSync(join(root, "sys/devices/pci0000:00/0000:00:01.0/0000:01:00.1/device"), "\0\0\xff");
    const r = svc.detect(root);
    const d = r.devices.find((x) => x.address === "0000:01:00.0")!;
    expect(d.vendorId).toBeNull();
    expect(d.class).toBeNull();
    expect(d.bootVga).toBeNull();
    expect(d.revision).toBeNull();
    expect(d.resetMethod).toBeNull();
    expect(d.warnings.join("\n")).toMatch(/vendor: malformed/);
    expect(d.warnings.join("\n")).toMatch(/class: missing/);
    expect(d.warnings.join("\n")).toMatch(/boot_vga: malformed/);
    expect(d.warnings.join("\n")).toMatch(/revision: unreadable \(larger than/);
    expect(d.warnings.join("\n")).toMatch(/reset_method: unreadable \(is a directory\)/);
    const audio = r.devices.find((x) => x.address === "0000:01:00.1")!;
    expect(audio.deviceId).toBeNull();
    // the NVIDIA card lost its class: it is no longer recognised as a GPU; the host GPU is unaffected
    expect(r.gpus.map((g) => g.address)).toEqual(["0000:00:02.0"]);
    expect(HardwareReport.safeParse(r).success).toBe(true);
  });

  test("symlink loops in the device entry and the driver link", () => {
    const root = base();
    const entry = join(root, "sys/bus/pci/devices/0000:01:00.1");
    unlinkSync(entry);
    symlinkSync("0000:01:00.1", entry); // points at itself
    const drv = dev(root, "driver");
    unlinkSync(drv);
    symlinkSync("driver", drv);
    const r = svc.detect(root);
    const audio = r.devices.find((x) => x.address === "0000:01:00.1")!;
    expect(audio.warnings.join()).toMatch(/symlink loop/);
    const g = gpu(r, "0000:01:00.0");
    expect(g.driver).toBe("driver"); // the link's own name: a loop is not followed
    expect(g.warnings.some((w) => w.includes("0000:01:00.1") && w.includes("symlink loop"))).toBe(true);
  });

  test("bad entries in the devices and groups directories are ignored with a warning", () => {
    const root = base();
    writeFileSync(join(root, "sys/bus/pci/devices/not-an-address"), "");
    mkdirSync(join(root, "sys/kernel/iommu_groups/abc"));
    rmSync(join(root, "sys/kernel/iommu_groups/4/devices"), { recursive: true });
    const r = svc.detect(root);
    expect(r.warnings.join("\n")).toMatch(/ignored entry "not-an-address"/);
    expect(r.warnings.join("\n")).toMatch(/ignored entry "abc"/);
    expect(r.warnings.join("\n")).toMatch(/iommu group 4: devices missing/);
    expect(r.groups.length).toBe(6);
  });

  test("missing proc files and sys/bus: warnings, sensible defaults", () => {
    const root = base();
    rmSync(join(root, "proc"), { recursive: true });
    rmSync(join(root, "sys/bus"), { recursive: true });
    const r = svc.detect(root);
    expect(r.cpu.vendor).toBe("unknown");
    expect(r.devices).toEqual([]);
    expect(r.warnings.join("\n")).toMatch(/cpuinfo: missing/);
    expect(r.warnings.join("\n")).toMatch(/no PCI bus visible/);
  });

  test("unreadable file modes (skipped as root, who reads anyway)", () => {
    const root = base();
    chmodSync(dev(root, "device"), 0o000);
    const r = svc.detect(root);
    const d = r.devices.find((x) => x.address === "0000:01:00.0")!;
    if (process.getuid?.() === 0) expect(d.deviceId).toBe("2484");
    else expect(d.warnings.join()).toMatch(/device: unreadable \(EACCES\)/);
  });

  test("a root without sys/ and proc/ is refused", () => {
    expect(() => svc.detect(join(tmp, "nothing-here"))).toThrow(/neither sys\/ nor proc\//);
  });
});

describe("this machine", () => {
  test("detection of the real / reports sensibly and writes nothing", () => {
    const r = svc.detect("/");
    expect(HardwareReport.safeParse(r).success).toBe(true);
    expect(r.kernel.release).not.toBeNull();
    expect(["intel", "amd", "other"]).toContain(r.cpu.vendor);
    expect(r.devices.length).toBeGreaterThan(0);
    for (const d of r.devices) expect(d.vendorId).toMatch(/^[0-9a-f]{4}$/);
    if (r.groups.length === 0) {
      expect(r.iommu.enabled).toBe(false);
      expect(r.iommu.state).not.toBe("enabled");
      expect(r.iommu.reason.length).toBeGreaterThan(10);
      if (/^flags\s*:.*\bhypervisor\b/m.test(readFileSync("/proc/cpuinfo", "utf8"))) expect(r.iommu.reason).toContain("virtual machine");
    }
  });
});
