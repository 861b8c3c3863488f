/**
 * Config of the codecs offered to Moonlight clients (the `gamestreamCodecs` section):
 * per codec auto (offered where a hardware encoder opens or the measured software speed
 * sustains the largest mode), on (always offered) or off (never); the modes the speed is
 * measured at; the margin a software encoder needs above a mode's frame rate.
 */
import { z } from "zod";

const MODE = /^(\d{2,4})x(\d{2,4})x(\d{1,3})$/;

export interface CodecMode {
  width: number;
  height: number;
  fps: number;
}

export const modeName = (m: CodecMode) => `${m.width}x${m.height}x${m.fps}`;

/** "1280x720x60,1920x1080x60" → modes (a string, so NEURON_GAMESTREAM_CODECS_MODES works too). */
const Modes = z
  .string()
  .min(1)
  .max(200)
  .transform((text, ctx): CodecMode[] => {
    const modes: CodecMode[] = [];
    for (const part of text.split(",").map((p) => p.trim())) {
      const m = MODE.exec(part);
      const [w, h, f] = m ? [Number(m[1]), Number(m[2]), Number(m[3])] : [0, 0, 0];
      if (!m || w < 64 || w > 7680 || h < 64 || h > 4320 || f < 1 || f > 240) {
        ctx.addIssue({ code: "custom", message: `mode ${JSON.stringify(part)}: expected WIDTHxHEIGHTxFPS (64-7680 x 64-4320 x 1-240)` });
        return z.NEVER;
      }
      modes.push({ width: w, height: h, fps: f });
    }
    if (modes.length > 4) {
      ctx.addIssue({ code: "custom", message: "at most 4 modes" });
      return z.NEVER;
    }
    return modes;
  });

const Setting = z.enum(["auto", "on", "off"]);
export type CodecSetting = z.infer<typeof Setting>;

export const GameStreamCodecSettingsSchema = z
  .strictObject({
    /** H.264 is offered always (every Moonlight client needs it); auto still measures and reports it. */
    h264: z.enum(["auto", "on"], { error: "h264 is always offered (every Moonlight client needs it): auto or on" }).default("auto"),
    hevc: Setting.default("auto"),
    /** Modes a software encoder's speed is measured at; the largest decides (WxHxFPS, comma-separated). */
    modes: Modes.default([
      { width: 1280, height: 720, fps: 60 },
      { width: 1920, height: 1080, fps: 60 },
    ]),
    /** A software encoder sustains a mode when it measures at least fps × (1 + marginPct/100). */
    marginPct: z.number().int().min(0).max(200).default(25),
  })
  .default({ h264: "auto", hevc: "auto", modes: [{ width: 1280, height: 720, fps: 60 }, { width: 1920, height: 1080, fps: 60 }], marginPct: 25 });
export type GameStreamCodecSettings = z.output<typeof GameStreamCodecSettingsSchema>;
