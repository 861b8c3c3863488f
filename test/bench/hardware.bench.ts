/**
 * Hardware detection and VFIO planning cost on the fixture machines and on this
 * machine's real /: `bun test/bench/hardware.bench.ts`. Prints figures only.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { auditRepo } from "../../src/db/repos/audit.ts";
import { openDatabase } from "../../src/db/client.ts";
import { DEFAULT_PCI_IDS_PATHS, loadPciNames } from "../../src/hardware/pciids.ts";
import { HardwareService } from "../../src/hardware/service.ts";
import { VfioService } from "../../src/vfio/service.ts";
import { fixtureRoot } from "../fixtures/sysfs/build.ts";
import { writeTarget } from "../fixtures/targets.ts";

const ROUNDS = 200;
function time(label: string, n: number, fn: () => void) {
  fn();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) fn();
  const ms = (performance.now() - t0) / n;
  console.log(`${label.padEnd(48)} ${ms.toFixed(3)} ms/op`);
  return ms;
}

time("pci.ids load + parse", 10, () => loadPciNames(DEFAULT_PCI_IDS_PATHS));
const svc = new HardwareService({ root: "/" });
const fixture = time("detect: fixture desktop-intel-nvidia", ROUNDS, () => svc.detect(fixtureRoot("desktop-intel-nvidia")));
time("detect: fixture laptop-nvidia-3d-nvme", ROUNDS, () => svc.detect(fixtureRoot("laptop-nvidia-3d-nvme")));
const real = time("detect: this machine's /", ROUNDS, () => svc.detect("/"));
console.log(`real / vs fixture: ${(real / fixture).toFixed(2)}x`);

const base = mkdtempSync(join(tmpdir(), "neuron-bench-"));
writeTarget(join(base, "t"), "arch-systemd-boot-uki");
const db = openDatabase(join(base, "s", "neuron.db"));
const vfio = new VfioService(
  { targetRoot: join(base, "t"), stateDir: join(base, "s"), bin: { mkinitcpio: "mkinitcpio", dracut: "dracut", updateInitramfs: "update-initramfs", grubMkconfig: "grub-mkconfig", chroot: "chroot" } },
  new HardwareService({ root: fixtureRoot("laptop-nvidia-3d-nvme") }),
  auditRepo(db.db),
);
time("vfio plan (systemd-boot + UKI target, 7 files)", 50, () => vfio.plan({ gpu: "0000:01:00.0" }));
const t0 = performance.now();
for (let i = 0; i < 20; i++) {
  await vfio.apply({ gpu: "0000:01:00.0" }, "bench");
  vfio.rollback(undefined, "bench");
}
console.log(`${"vfio apply + rollback (7 files, fsync'd)".padEnd(48)} ${((performance.now() - t0) / 20).toFixed(3)} ms/op`);
db.close();
rmSync(base, { recursive: true, force: true });
