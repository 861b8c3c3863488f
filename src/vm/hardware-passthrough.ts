/** GPU function expansion backed by hardware detection (src/hardware): the GPU and every function of its slot. */
import { AppError } from "../errors.ts";
import type { HardwareService } from "../hardware/service.ts";
import type { PassthroughResolver } from "./passthrough.ts";

export function hardwarePassthrough(hardware: Pick<HardwareService, "detect">): PassthroughResolver {
  return {
    functionsOf(address, root) {
      const report = hardware.detect(root);
      const gpu = report.gpus.find((g) => g.address === address);
      if (!gpu) {
        const dev = report.devices.find((d) => d.address === address);
        const what = dev ? `${address} (${dev.vendorName} ${dev.deviceName}) is not a GPU` : `no PCI device ${address} on this machine`;
        const candidates = report.gpus.filter((g) => g.role === "candidate").map((g) => g.address);
        throw new AppError("GPU_NOT_CANDIDATE", `${what}; passthrough candidates: ${candidates.join(", ") || "none"}`, { status: 422 });
      }
      if (gpu.role !== "candidate")
        throw new AppError("GPU_NOT_CANDIDATE", `${address} (${gpu.name}) cannot be passed through: ${gpu.roleReason}`, { status: 422 });
      return [gpu.address, ...gpu.functions.map((f) => f.address).filter((a) => a !== gpu.address)];
    },
  };
}
