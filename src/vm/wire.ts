/** Builds the VM service from the configuration (used by createCore and offline CLI commands). */
import { join } from "node:path";
import type { Config } from "../config.ts";
import type { Db } from "../db/client.ts";
import { vmAuditRepo } from "../db/repos/vm-audit.ts";
import { AppError } from "../errors.ts";
import { cpuVendor, idOf } from "./host.ts";
import { pulseServerOf } from "./audio.ts";
import { noPassthrough, type PassthroughResolver } from "./passthrough.ts";
import type { ShmOwner } from "./shm.ts";
import { VmService, type PlanDeps, type VmServiceDeps } from "./service.ts";
import { Virsh } from "./virsh.ts";

export function shmOwnerFor(config: Pick<Config, "desktopUser">, passwd = "/etc/passwd", group = "/etc/group"): (ShmOwner & { user: string }) | null {
  if (!config.desktopUser) return null;
  const uid = idOf(passwd, config.desktopUser);
  const gid = idOf(group, "kvm");
  if (uid === null) throw new AppError("CONFIG_INVALID", `desktopUser ${config.desktopUser}: no such user`, { status: 500 });
  if (gid === null) throw new AppError("CONFIG_INVALID", "group kvm does not exist", { status: 500 });
  return { uid, gid, user: config.desktopUser };
}

/** The desktop user's PulseAudio socket (VM sound), when a desktop user is configured and known. */
export function pulseServerFor(config: Pick<Config, "desktopUser" | "etcDir">): string | undefined {
  if (!config.desktopUser) return undefined;
  const uid = idOf(join(config.etcDir, "passwd"), config.desktopUser);
  return uid === null ? undefined : pulseServerOf(uid);
}

export function createVmService(config: Config, db: Db, resolver: PassthroughResolver = noPassthrough, events?: VmServiceDeps["events"]): VmService {
  return new VmService({
    events,
    virsh: new Virsh({ bin: config.bin.virsh, uri: config.libvirtUri, timeoutMs: config.libvirtTimeoutMs }),
    audit: vmAuditRepo(db),
    resolver,
    settings: {
      stateDir: config.stateDir,
      shmDir: config.shmDir,
      qemuImg: config.bin.qemuImg,
      root: config.root,
      targetRoot: config.targetRoot,
      qmpDir: config.qmpDir,
      libvirtQemuDir: config.libvirtQemuDir,
      spiceDir: config.spiceDir,
      frameSocketDir: config.frameSocketDir,
      adminGroup: config.adminGroup,
      groupFile: join(config.etcDir, "group"),
      pulseServer: pulseServerFor(config),
      pactl: config.bin.pactl,
    },
    shmOwner: () => shmOwnerFor(config),
    cpuVendor: () => cpuVendor(config.root),
    domainType: config.vmDomainType,
  });
}

export function planDeps(config: Config, resolver: PassthroughResolver = noPassthrough): PlanDeps {
  return {
    resolver,
    settings: { stateDir: config.stateDir, shmDir: config.shmDir, root: config.root, qmpDir: config.qmpDir, spiceDir: config.spiceDir, pulseServer: pulseServerFor(config), frameSocketDir: config.frameSocketDir },
    cpuVendor: () => cpuVendor(config.root),
  };
}
