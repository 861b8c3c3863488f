import { afterAll, describe, expect, test } from "bun:test";
import { readFileSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { auditRepo } from "../../src/db/repos/audit.ts";
import type { TargetStyle } from "../fixtures/targets.ts";
import { rig, snapshot, type Rig } from "./helpers.ts";

const rigs: Rig[] = [];
const make = (...a: Parameters<typeof rig>) => {
  const r = rig(...a);
  rigs.push(r);
  return r;
};
afterAll(() => {
  for (const r of rigs) {
    r.db.close();
    rmSync(dirname(r.target), { recursive: true, force: true });
  }
});

const read = (r: Rig, rel: string) => readFileSync(join(r.target, rel), "utf8");

interface Case {
  style: TargetStyle;
  machine: string;
  gpu: string;
  systems: { initramfs: string[]; boot: string[] };
  files: string[];
  check(r: Rig): void;
}

const INTEL_PARAMS = "intel_iommu=on iommu=pt vfio-pci.ids=10de:2484,10de:228b";

const CASES: Case[] = [
  {
    style: "arch-grub-mkinitcpio",
    machine: "desktop-intel-nvidia",
    gpu: "0000:01:00.0",
    systems: { initramfs: ["mkinitcpio"], boot: ["grub"] },
    files: ["/etc/modprobe.d/vfio.conf", "/etc/mkinitcpio.conf", "/etc/default/grub"],
    check(r) {
      expect(read(r, "etc/mkinitcpio.conf")).toContain("\nMODULES=(vfio_pci vfio vfio_iommu_type1 amdgpu)\n");
      expect(read(r, "etc/mkinitcpio.conf")).toContain("HOOKS=(base udev autodetect modconf microcode kms");
      expect(read(r, "etc/default/grub")).toContain(`GRUB_CMDLINE_LINUX_DEFAULT="loglevel=3 quiet ${INTEL_PARAMS}"`);
      const conf = read(r, "etc/modprobe.d/vfio.conf");
      expect(conf).toContain("options vfio-pci ids=10de:2484,10de:228b\n");
      for (const d of ["nvidia", "nouveau", "amdgpu", "radeon", "snd_hda_intel"]) expect(conf).toContain(`softdep ${d} pre: vfio-pci\n`);
    },
  },
  {
    style: "arch-systemd-boot-uki",
    machine: "laptop-nvidia-3d-nvme",
    gpu: "0000:01:00.0",
    systems: { initramfs: ["mkinitcpio"], boot: ["systemd-boot", "uki"] },
    files: [
      "/etc/modprobe.d/vfio.conf",
      "/etc/mkinitcpio.conf",
      "/boot/loader/entries/arch-fallback.conf",
      "/boot/loader/entries/arch.conf",
      "/etc/kernel/cmdline",
      "/etc/cmdline.d/quiet.conf",
      "/etc/cmdline.d/vfio.conf",
    ],
    check(r) {
      const params = "intel_iommu=on iommu=pt vfio-pci.ids=10de:2520,10de:228e pcie_acs_override=downstream,multifunction";
      expect(read(r, "etc/mkinitcpio.conf")).toContain("MODULES=(vfio_pci vfio vfio_iommu_type1 nvidia nvidia_modeset nvidia_uvm nvidia_drm)");
      expect(read(r, "boot/loader/entries/arch.conf")).toContain(`options root=UUID=7f3c0a52-4a1e-4b8e-9d63-2b1f0c6f1e11 rw quiet ${params}\n`);
      expect(read(r, "boot/loader/entries/arch-fallback.conf")).toBe(
        `title   Arch Linux (fallback)\nlinux   /vmlinuz-linux\noptions ${params}\ninitrd  /initramfs-linux-fallback.img\n`,
      );
      expect(read(r, "boot/loader/entries/windows.conf")).toBe("title   Windows\nefi     /EFI/Microsoft/Boot/bootmgfw.efi\n");
      expect(read(r, "etc/kernel/cmdline")).toBe(`root=UUID=7f3c0a52-4a1e-4b8e-9d63-2b1f0c6f1e11 rw quiet ${params}\n`);
      expect(read(r, "etc/cmdline.d/quiet.conf")).toBe("quiet loglevel=3\n"); // iommu=soft now set by vfio.conf
      expect(read(r, "etc/cmdline.d/vfio.conf")).toEndWith(`\n${params}\n`);
      expect(read(r, "etc/cmdline.d/root.conf")).toBe("root=UUID=7f3c0a52-4a1e-4b8e-9d63-2b1f0c6f1e11 rw\n");
    },
  },
  {
    style: "fedora-dracut",
    machine: "desktop-intel-nvidia",
    gpu: "0000:01:00.0",
    systems: { initramfs: ["dracut"], boot: ["grub"] },
    files: ["/etc/modprobe.d/vfio.conf", "/etc/dracut.conf.d/10-vfio.conf", "/etc/default/grub"],
    check(r) {
      expect(read(r, "etc/dracut.conf.d/10-vfio.conf")).toContain('force_drivers+=" vfio_pci vfio vfio_iommu_type1 "\n');
      expect(read(r, "etc/default/grub")).toEndWith(`GRUB_ENABLE_BLSCFG=true\nGRUB_CMDLINE_LINUX_DEFAULT="${INTEL_PARAMS}"\n`);
      expect(read(r, "etc/default/grub")).toContain("GRUB_DISTRIBUTOR=\"$(sed 's, release .*$,,g' /etc/system-release)\"");
    },
  },
  {
    style: "debian-initramfs-tools",
    machine: "amd-two-gpus-reset-bug",
    gpu: "0000:0d:00.0",
    systems: { initramfs: ["initramfs-tools"], boot: ["grub"] },
    files: [
      "/etc/modprobe.d/vfio.conf",
      "/etc/modules-load.d/vendor-reset.conf",
      "/etc/udev/rules.d/99-neuron-vendor-reset.rules",
      "/etc/initramfs-tools/modules",
      "/etc/default/grub",
    ],
    check(r) {
      // the RX 580 has the AMD reset bug: vendor-reset loads at boot and udev selects its reset method
      expect(read(r, "etc/modules-load.d/vendor-reset.conf")).toEndWith("\nvendor-reset\n");
      expect(read(r, "etc/udev/rules.d/99-neuron-vendor-reset.rules")).toEndWith(
          '\nACTION=="add", SUBSYSTEM=="pci", ATTR{vendor}=="0x1002", ATTR{device}=="0x67df", ATTR{reset_method}="device_specific"\n',
      );
      // kernel 6.1 < 6.2: vfio_virqfd is still its own module; AMD: no intel_iommu, never amd_iommu=on;
      // the reset bug: vendor-reset first, so it is there before vfio-pci binds
      expect(read(r, "etc/initramfs-tools/modules")).toEndWith("# sd_mod\nvendor-reset\nvfio_pci\nvfio\nvfio_iommu_type1\nvfio_virqfd\namdgpu\n");
      expect(read(r, "etc/default/grub")).toContain('GRUB_CMDLINE_LINUX_DEFAULT="quiet iommu=pt vfio-pci.ids=1002:67df,1002:aaf0"');
      expect(read(r, "etc/default/grub")).not.toContain("amd_iommu");
    },
  },
];

describe("verify", () => {
  test("after the reboot with vfio-pci bound every check passes", () => {
    const r = make("desktop-intel-nvidia-vfio", null);
    const v = r.vfio.verify("01:00.0");
    expect(v.ok).toBe(true);
    expect(v.checks.map((c) => c.name)).toEqual(["iommu", "vfio-pci module", "driver 0000:01:00.0", "driver 0000:01:00.1", "isolation"]);
  });
  test("before: the drivers, the module and the reset bug are reported", () => {
    const r = make("amd-two-gpus-reset-bug", null);
    const v = r.vfio.verify("0000:0d:00.0");
    expect(v.ok).toBe(false);
    expect(v.checks.filter((c) => !c.ok).map((c) => c.name)).toEqual(["vfio-pci module", "driver 0000:0d:00.0", "driver 0000:0d:00.1", "reset bug", "vendor-reset before vfio-pci"]);
    expect(() => r.vfio.verify("0000:0e:00.3")).toThrow(/not found/);
    expect(() => r.vfio.verify("bogus")).toThrow(/PCI address/);
  });
});

describe("plan / apply / re-apply / rollback on every target style", () => {
  for (const c of CASES) {
    test(c.style, async () => {
      const r = make(c.machine, c.style);
      const acsOverride = c.style === "arch-systemd-boot-uki";
      const original = snapshot(r.target);

      const plan = r.vfio.plan({ gpu: c.gpu, acsOverride });
      expect(plan.systems).toMatchObject(c.systems);
      expect(plan.changes.map((x) => x.path).sort()).toEqual([...c.files].sort());
      expect(plan.diff).toContain("+++ b/etc/modprobe.d/vfio.conf");
      expect(plan.commands.length).toBeGreaterThan(0);
      expect(snapshot(r.target)).toEqual(original); // plan writes nothing

      const applied = await r.vfio.apply({ gpu: c.gpu, acsOverride }, "test");
      expect(applied.changed).toBe(true);
      expect(applied.files.map((f) => f.path).sort()).toEqual([...c.files].sort());
      c.check(r);
      const afterApply = snapshot(r.target);
      expect(afterApply["etc/modprobe.d"]).toBe("dir 755");
      if (c.style === "fedora-dracut") expect(original["etc/modprobe.d"]).toBeUndefined();
      if (c.style === "arch-systemd-boot-uki") expect(afterApply["boot/loader/entries/arch.conf"]).toStartWith("file 755 "); // mode kept
      if (c.style === "debian-initramfs-tools") expect(afterApply["etc/modprobe.d/vfio.conf"]).toStartWith("file 600 ");

      expect(r.vfio.plan({ gpu: c.gpu, acsOverride }).changes).toEqual([]);
      const again = await r.vfio.apply({ gpu: c.gpu, acsOverride }, "test");
      expect(again.changed).toBe(false);
      expect(snapshot(r.target)).toEqual(afterApply);

      const rb = r.vfio.rollback(undefined, "test");
      expect(rb.rolledBack).toBe(applied.auditId);
      expect(snapshot(r.target)).toEqual(original); // byte for byte, new files and directories gone

      const rows = auditRepo(r.db.db).list("vfio.apply");
      expect(rows.map((x) => x.status)).toEqual(["applied", "rolled_back"]);
      const first = rows.find((x) => x.id === applied.auditId)!;
      expect(first.backupPath).toBe(applied.backupDir);
      expect(JSON.parse(first.details).diff).toBe(plan.diff);
      expect(auditRepo(r.db.db).list("vfio.rollback").length).toBe(1);
      expect(() => r.vfio.rollback(applied.auditId, "test")).toThrow(/rolled_back/);
    });
  }
});
