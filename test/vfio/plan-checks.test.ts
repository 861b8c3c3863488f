/**
 * What the VFIO plan checks beyond writing ids: it removes amd_iommu=on (with the reason), orders
 * vendor-reset before vfio-pci (and verify says whether it was), tells whether the target kernel
 * honours the ACS override and which kernel to install, and warns when the GPU's IOMMU group holds
 * the disk with the root file system.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { VENDOR_RESET_SOFTDEP } from "../../src/vfio/edits.ts";
import { fixtureRoot } from "../fixtures/sysfs/build.ts";
import { tempDir } from "../helpers/env.ts";
import { rig, snapshot, type Rig } from "./helpers.ts";

const rigs: Rig[] = [];
const tmp = tempDir("neuron-vfio-checks-");
afterAll(() => {
  for (const r of rigs) {
    r.db.close();
    rmSync(dirname(r.target), { recursive: true, force: true });
  }
  tmp.cleanup();
});
const make = (...a: Parameters<typeof rig>) => {
  const r = rig(...a);
  rigs.push(r);
  return r;
};
/** A copy of a fixture machine that can be changed. */
function copy(fixture: string, name: string): string {
  const dest = join(tmp.path, name);
  execFileSync("cp", ["-a", fixtureRoot(fixture), dest]);
  return dest;
}

describe("VFIO plan checks", () => {
  test("amd_iommu=on is removed from the command line with the reason; rollback restores it byte for byte", async () => {
    const r = make("amd-two-gpus-reset-bug", "debian-initramfs-tools", { chroot: "true" });
    const grub = join(r.target, "etc/default/grub");
    writeFileSync(grub, readFileSync(grub, "utf8").replace('GRUB_CMDLINE_LINUX_DEFAULT="quiet"', 'GRUB_CMDLINE_LINUX_DEFAULT="quiet amd_iommu=on"').replace('GRUB_CMDLINE_LINUX=""', 'GRUB_CMDLINE_LINUX="amd-iommu=on"'));
    const before = snapshot(r.target);
    const plan = r.vfio.plan({ gpu: "0000:0d:00.0" });
    expect(plan.removedParams).toEqual([{ param: "amd_iommu=on", path: "/etc/default/grub", reason: expect.stringContaining("not a valid value") }]);
    expect(plan.changes.find((c) => c.path === "/etc/default/grub")!.reason).toContain("removes amd_iommu=on");
    expect(plan.diff).toContain('-GRUB_CMDLINE_LINUX_DEFAULT="quiet amd_iommu=on"');
    await r.vfio.apply({ gpu: "0000:0d:00.0" }, "test");
    const after = readFileSync(grub, "utf8");
    expect(after).not.toMatch(/amd[-_]iommu=on/);
    expect(after).toContain('GRUB_CMDLINE_LINUX=""');
    expect(r.vfio.plan({ gpu: "0000:0d:00.0" }).changes).toEqual([]);
    r.vfio.rollback(undefined, "test");
    expect(snapshot(r.target)).toEqual(before);
  });

  test("vendor-reset: softdep before vfio-pci and first in the initramfs; verify says whether it loaded first", async () => {
    const r = make("amd-two-gpus-reset-bug", "arch-grub-mkinitcpio", { chroot: "true" });
    const plan = r.vfio.plan({ gpu: "0000:0d:00.0" });
    expect(plan.diff).toContain(`+${VENDOR_RESET_SOFTDEP}`);
    await r.vfio.apply({ gpu: "0000:0d:00.0" }, "test");
    expect(readFileSync(join(r.target, "etc/mkinitcpio.conf"), "utf8")).toContain("MODULES=(vendor-reset vfio_pci vfio vfio_iommu_type1 amdgpu)");
    expect(r.vfio.plan({ gpu: "0000:0d:00.0" }).changes).toEqual([]);
    // after the reboot: /proc/modules lists the newest module first
    const check = (modules: string[]) => {
      const root = copy("amd-two-gpus-reset-bug", `vr-${modules.join("-")}`);
      writeFileSync(join(root, "proc", "modules"), modules.map((m) => `${m} 65536 0 - Live 0x0`).join("\n") + "\n");
      const v = make(root, null);
      return v.vfio.verify("0000:0d:00.0").checks.find((c) => c.name === "vendor-reset before vfio-pci")!;
    };
    expect(check(["vfio_pci", "vendor_reset", "kvm"])).toMatchObject({ ok: true, detail: expect.stringContaining("before") });
    expect(check(["vendor_reset", "vfio_pci", "kvm"])).toMatchObject({ ok: false, detail: expect.stringContaining("softdep") });
    expect(check(["vfio_pci", "kvm"])).toMatchObject({ ok: false, detail: "vendor-reset is not loaded" });
  });

  test("ACS override: a stock kernel is named as ignoring it, with the kernel to install; a zen kernel honours it", () => {
    const r = make("laptop-nvidia-3d-nvme", "arch-grub-mkinitcpio");
    const plan = r.vfio.plan({ gpu: "0000:01:00.0", acsOverride: true });
    expect(plan.acsOverrideKernel).toMatchObject({ kernel: "6.6.8-arch1-1", honoured: false, install: "linux-zen" });
    expect(plan.warnings.some((w) => w.includes("does not honour pcie_acs_override") && w.includes("linux-zen"))).toBe(true);
    mkdirSync(join(r.target, "usr/lib/modules/6.6.9-zen1-1-zen"), { recursive: true });
    const zen = r.vfio.plan({ gpu: "0000:01:00.0", acsOverride: true });
    expect(zen.acsOverrideKernel).toMatchObject({ kernel: "6.6.9-zen1-1-zen", honoured: true, install: null });
    expect(r.vfio.plan({ gpu: "0000:01:00.0" }).acsOverrideKernel).toBeNull();
    const deb = make("laptop-nvidia-3d-nvme", "debian-initramfs-tools");
    expect(deb.vfio.plan({ gpu: "0000:01:00.0", acsOverride: true }).acsOverrideKernel!.install).toContain("XanMod");
  });

  test("a laptop whose GPU group holds the NVMe with the root file system is told exactly that", () => {
    const root = copy("laptop-nvidia-3d-nvme", "laptop-root");
    writeFileSync(join(root, "proc", "mounts"), "proc /proc proc rw 0 0\n/dev/nvme0n1p2 / ext4 rw,relatime 0 0\n/dev/nvme0n1p1 /boot vfat rw 0 0\n");
    const block = join(root, "sys", "devices", "pci0000:00", "0000:00:06.0", "0000:02:00.0", "nvme", "nvme0", "nvme0n1");
    mkdirSync(block, { recursive: true });
    mkdirSync(join(root, "sys", "class", "block"), { recursive: true });
    symlinkSync("../../devices/pci0000:00/0000:00:06.0/0000:02:00.0/nvme/nvme0/nvme0n1", join(root, "sys", "class", "block", "nvme0n1"));
    const r = make(root, "arch-grub-mkinitcpio");
    const w = r.vfio.plan({ gpu: "0000:01:00.0" }).warnings.find((x) => x.includes("root file system"));
    expect(w).toContain("0000:02:00.0");
    expect(w).toContain("/dev/nvme0n1p2");
    expect(w).toContain("takes the host's own disk away");
    // the desktop's NVMe has its own group: no such warning
    expect(make("desktop-intel-nvidia", "arch-grub-mkinitcpio").vfio.plan({ gpu: "0000:01:00.0" }).warnings.some((x) => x.includes("root file system"))).toBe(false);
  });
});
