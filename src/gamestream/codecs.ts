/**
 * ServerCodecModeSupport from the encoders this machine really opens: H.264
 * and HEVC are each probed once (hardware first, then software) on first use,
 * and the choice with its reason is logged. Nothing is claimed that the probe
 * did not open; HEVC Main10 and AV1 are not offered (the pipeline encodes
 * 8-bit 4:2:0 through libavcodec's H.264/HEVC encoders only).
 */
import type { CaptureService } from "../capture/service.ts";
import type { Logger } from "../log.ts";
import { CODEC } from "./nvhttp.ts";

export function probeCodecModeSupport(capture: Pick<CaptureService, "probeEncoders">, log: Logger): () => number {
  let bits: number | null = null;
  return () => {
    if (bits !== null) return bits;
    let found = 0;
    for (const [codec, bit] of [
      ["h264", CODEC.H264],
      ["hevc", CODEC.HEVC],
    ] as const) {
      try {
        const probe = capture.probeEncoders(codec);
        if (probe.chosen) found |= bit;
        log.info("encoder probe", { codec, chosen: probe.chosen, reason: probe.reason });
      } catch (err) {
        log.warn("encoder probe failed", { codec, error: err });
      }
    }
    bits = found;
    return bits;
  };
}
