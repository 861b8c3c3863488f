import { lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDatabase, type OpenedDb } from "../../src/db/client.ts";
import { auditRepo } from "../../src/db/repos/audit.ts";
import { HardwareService } from "../../src/hardware/service.ts";
import { VfioService, type VfioSettings } from "../../src/vfio/service.ts";
import { fixtureRoot } from "../fixtures/sysfs/build.ts";
import { writeTarget, type TargetStyle } from "../fixtures/targets.ts";

/** Every entry under a root: path → file bytes + mode, directory, or link target. */
export function snapshot(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const st = lstatSync(join(root, r));
      if (st.isSymbolicLink()) out[r] = `link ${readlinkSync(join(root, r))}`;
      else if (st.isDirectory()) {
        out[r] = `dir ${(st.mode & 0o7777).toString(8)}`;
        walk(r);
      } else out[r] = `file ${(st.mode & 0o7777).toString(8)} ${readFileSync(join(root, r), "base64")}`;
    }
  };
  walk("");
  return out;
}

export interface Rig {
  target: string;
  stateDir: string;
  db: OpenedDb;
  vfio: VfioService;
  hardware: HardwareService;
}

/** machine: a fixture machine name, or the absolute path of a sysfs/procfs root. */
export function rig(machine: string, style: TargetStyle | null, bin: Partial<VfioSettings["bin"]> = {}): Rig {
  const base = mkdtempSync(join(tmpdir(), "neuron-vfio-"));
  const target = join(base, "target");
  const stateDir = join(base, "state");
  if (style) writeTarget(target, style);
  const db = openDatabase(join(stateDir, "neuron.db"));
  const hardware = new HardwareService({ root: machine.startsWith("/") ? machine : fixtureRoot(machine) });
  const vfio = new VfioService(
    {
      targetRoot: target,
      stateDir,
      bin: { mkinitcpio: "mkinitcpio", dracut: "dracut", updateInitramfs: "update-initramfs", grubMkconfig: "grub-mkconfig", chroot: "chroot", ...bin },
    },
    hardware,
    auditRepo(db.db),
  );
  return { target, stateDir, db, vfio, hardware };
}
