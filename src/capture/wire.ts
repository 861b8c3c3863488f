/** The capture service's frame-source settings from the config (paths, the desktop session, libvirt). */
import { join } from "node:path";
import type { Config } from "../config.ts";
import { idOf } from "../vm/host.ts";
import { Virsh } from "../vm/virsh.ts";
import { desktopSessionEnv, type FrameSourceSettings } from "./service.ts";
import { chooseVmTransport, type VmTransportChoice } from "./sources.ts";

export function captureSourceSettings(config: Config): FrameSourceSettings {
  return {
    vsockDevice: config.vsockDevice,
    frameSocketDir: config.frameSocketDir,
    uinputDevice: config.uinputDevice,
    hostSession: () => desktopSessionEnv(config.desktopUser ? idOf(join(config.etcDir, "passwd"), config.desktopUser) : null),
    domainXml: (vm) => new Virsh({ bin: config.bin.virsh, uri: config.libvirtUri, timeoutMs: 10_000 }).dumpxml(vm, true),
  };
}

/** How a VM's frames reach the host, from its libvirt definition (IVSHMEM → vsock → unix socket). */
export function vmTransportResolver(config: Config, domainXml = captureSourceSettings(config).domainXml!): (vm: string) => Promise<VmTransportChoice> {
  return async (vm) => chooseVmTransport(vm, await domainXml(vm), { shmDir: config.shmDir, vsockDevice: config.vsockDevice, frameSocketDir: config.frameSocketDir });
}
