/**
 * vfio-pci ids already configured (a NIC passed through before) are merged with the GPU's, never
 * replaced: for each initramfs and boot loader style, the plan names what it keeps, the written
 * files carry both, and rollback restores every file byte for byte.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { TargetStyle } from "../fixtures/targets.ts";
import { rig, snapshot, type Rig } from "./helpers.ts";

const rigs: Rig[] = [];
afterAll(() => {
  for (const r of rigs) {
    r.db.close();
    rmSync(dirname(r.target), { recursive: true, force: true });
  }
});

const NIC = "8086:1533";
const GPU_IDS = "10de:2484,10de:228b";

/** Where each style already passes the NIC through, and the file that must keep it. */
const CASES: { style: TargetStyle; seed(target: string): void; source: string; check: string[] }[] = [
  {
    style: "arch-grub-mkinitcpio",
    seed: (t) => {
      const p = join(t, "etc/default/grub");
      writeFileSync(p, readFileSync(p, "utf8").replace('GRUB_CMDLINE_LINUX_DEFAULT="loglevel=3 quiet"', `GRUB_CMDLINE_LINUX_DEFAULT="loglevel=3 quiet vfio-pci.ids=${NIC}"`));
    },
    source: "/etc/default/grub",
    check: ["etc/default/grub", "etc/modprobe.d/vfio.conf"],
  },
  {
    style: "arch-systemd-boot-uki",
    seed: (t) => {
      const p = join(t, "boot/loader/entries/arch.conf");
      writeFileSync(p, readFileSync(p, "utf8").replace("rw quiet\n", `rw quiet vfio_pci.ids=${NIC}\n`));
      writeFileSync(join(t, "etc/kernel/cmdline"), `root=UUID=7f3c0a52-4a1e-4b8e-9d63-2b1f0c6f1e11 rw quiet vfio-pci.ids=${NIC}\n`);
    },
    // the first place it is found is named (/etc/kernel/cmdline comes before the boot entries)
    source: "/etc/kernel/cmdline",
    check: ["boot/loader/entries/arch.conf", "etc/kernel/cmdline", "etc/cmdline.d/vfio.conf"],
  },
  {
    style: "fedora-dracut",
    seed: (t) => {
      const p = join(t, "etc/default/grub");
      writeFileSync(p, readFileSync(p, "utf8").replace('GRUB_CMDLINE_LINUX="rhgb quiet"', `GRUB_CMDLINE_LINUX="rhgb quiet vfio-pci.ids=${NIC}"`));
    },
    source: "/etc/default/grub",
    check: ["etc/default/grub"],
  },
  {
    style: "debian-initramfs-tools",
    seed: (t) => writeFileSync(join(t, "etc/modprobe.d/vfio.conf"), `# local tweak\noptions vfio-pci disable_vga=1 ids=${NIC}\n`, { mode: 0o600 }),
    source: "/etc/modprobe.d/vfio.conf",
    check: ["etc/modprobe.d/vfio.conf", "etc/default/grub"],
  },
];

describe("vfio-pci ids merge", () => {
  for (const c of CASES)
    test(`${c.style}: the NIC already passed through stays, rollback restores every byte`, async () => {
      const r = rig("desktop-intel-nvidia", c.style, { chroot: "true" });
      rigs.push(r);
      c.seed(r.target);
      const before = snapshot(r.target);
      const plan = r.vfio.plan({ gpu: "0000:01:00.0" });
      expect(plan.vfioIds).toEqual([...GPU_IDS.split(","), NIC]);
      expect(plan.mergedIds).toContainEqual({ id: NIC, source: c.source });
      expect(plan.kernelParams).toContain(`vfio-pci.ids=${GPU_IDS},${NIC}`);
      expect(plan.warnings.some((w) => w.includes(`keeps ${NIC}`) && w.includes(c.source))).toBe(true);
      expect(plan.diff).toContain(`${GPU_IDS},${NIC}`);
      const applied = await r.vfio.apply({ gpu: "0000:01:00.0" }, "test");
      expect(applied.changed).toBe(true);
      for (const rel of c.check) expect(readFileSync(join(r.target, rel), "utf8")).toContain(`${GPU_IDS},${NIC}`);
      // applying again: the merge is stable (the GPU's ids are not counted twice)
      expect(r.vfio.plan({ gpu: "0000:01:00.0" }).changes).toEqual([]);
      r.vfio.rollback(undefined, "test");
      expect(snapshot(r.target)).toEqual(before);
    });

  test("other vfio-pci options in a modprobe.d file keep their line; only ids move", async () => {
    const r = rig("desktop-intel-nvidia", "debian-initramfs-tools", { chroot: "true" });
    rigs.push(r);
    await r.vfio.apply({ gpu: "0000:01:00.0" }, "test");
    const text = readFileSync(join(r.target, "etc/modprobe.d/vfio.conf"), "utf8");
    expect(text).toContain(`options vfio-pci ids=${GPU_IDS}\n`);
    expect(text).toContain("# local tweak\noptions vfio-pci disable_vga=1\n");
  });
});
