/** Config of the GameStream audio source (the `gamestreamAudio` section). */
import { z } from "zod";

export const GameStreamAudioSettingsSchema = z
  .strictObject({
    /**
     * Capture command (argv, no shell) writing 48 kHz s16le interleaved PCM to stdout, channels in
     * the client's order FL FR FC LFE BL BR SL SR; `{channels}` is replaced by the count. Wins over pulseServer.
     */
    captureCommand: z.array(z.string().min(1).max(4096)).min(1).max(64).optional(),
    /** PulseAudio / PipeWire-pulse socket carrying the VM's sound: its default monitor is recorded with parec. */
    pulseServer: z.string().min(1).optional(),
    /** parec binary, by name on PATH or absolute path. */
    parec: z.string().min(1).default("parec"),
  })
  .default({ parec: "parec" });
export type GameStreamAudioSettings = z.output<typeof GameStreamAudioSettingsSchema>;
