/**
 * GPU function expansion: a GPU must be passed through with every function of
 * its slot (its HDMI audio, USB-C controller, ...). The VM module does not read
 * sysfs itself; it asks a resolver backed by hardware detection.
 */
import { AppError } from "../errors.ts";

export interface PassthroughResolver {
  /**
   * Every PCI function that must go to the guest with `address` (itself first).
   * Throws an AppError with code GPU_NOT_CANDIDATE when the device cannot be passed through.
   */
  functionsOf(address: string, root?: string): string[];
}

/** Used where no hardware detection is wired in: refuses any --gpu clearly. */
export const noPassthrough: PassthroughResolver = {
  functionsOf(address) {
    throw new AppError("GPU_EXPANSION_UNAVAILABLE", `cannot pass through ${address}: hardware detection is not available in this build`, { status: 501 });
  },
};
