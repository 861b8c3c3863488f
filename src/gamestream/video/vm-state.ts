/** The VM state probe of a video source, over libvirt (virsh domstate on the configured URI). */
import { LibvirtError, Virsh } from "../../vm/virsh.ts";
import type { VmStateProbe } from "./vm-liveness.ts";

export function virshStateProbe(bin: string, uri: string, timeoutMs = 5000): VmStateProbe {
  const virsh = new Virsh({ bin, uri, timeoutMs });
  return async (vmName) => {
    try {
      return await virsh.state(vmName);
    } catch (err) {
      if (err instanceof LibvirtError && err.errorCode === "NOT_FOUND") return null;
      throw err;
    }
  };
}
