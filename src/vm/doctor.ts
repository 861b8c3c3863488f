/**
 * Doctor check for the VMs' Looking Glass shared memory: each VM's IVSHMEM file
 * must exist, be large enough for the resolution it was sized for, and belong
 * to the desktop user and group kvm with mode 0660.
 */
import { existsSync } from "node:fs";
import type { Config } from "../config.ts";
import type { DoctorCheck } from "../system/model.ts";
import { domainFacts } from "./details.ts";
import { shmProblems } from "./shm.ts";
import { Virsh } from "./virsh.ts";
import { shmOwnerFor } from "./wire.ts";

export async function checkVmSharedMemory(config: Config, kvmfrDevice = "/dev/kvmfr0"): Promise<DoctorCheck> {
  const base = { id: "vm-shm", title: "VM shared memory (Looking Glass)" };
  const virsh = new Virsh({ bin: config.bin.virsh, uri: config.libvirtUri, timeoutMs: 5000 });
  let names: string[];
  try {
    names = [...(await virsh.states()).keys()];
  } catch (err) {
    return { ...base, status: "warn", detail: `not checked: ${(err as Error).message}` };
  }
  let owner;
  try {
    owner = shmOwnerFor(config);
  } catch (err) {
    return { ...base, status: "fail", detail: (err as Error).message };
  }
  const problems: string[] = [];
  let checked = 0;
  for (const name of names.slice(0, 64)) {
    const facts = domainFacts(await virsh.dumpxml(name, true).catch(() => "<domain/>"), config.shmDir);
    if (!facts.shm || !facts.resolution) continue;
    checked++;
    const issues = shmProblems(facts.shm.path, facts.resolution, facts.hdr ?? false, owner ?? { uid: -1, gid: -1 });
    problems.push(...(owner ? issues : issues.filter((i) => !i.includes("owned by"))).map((i) => `${name}: ${i}`));
  }
  const kvmfr = existsSync(kvmfrDevice) ? `; ${kvmfrDevice} present (kvmfr module)` : "";
  if (problems.length) return { ...base, status: "warn", detail: problems.join("; ") + kvmfr };
  const ownerNote = owner ? "" : " (desktopUser not set: owner not checked)";
  return { ...base, status: "ok", detail: `${checked} VM(s) checked${ownerNote}${kvmfr}` };
}
