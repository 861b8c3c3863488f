/**
 * The ANNOUNCE body a client sends (SDP, `a=name:value` lines; see
 * shared/specs/moonlight-announce-sample.sdp) parsed into a typed stream
 * configuration, checked against what this host offered in DESCRIBE.
 */
import { z } from "zod";
import { CODEC } from "../constants.ts";
import { ENCRYPTION } from "./describe.ts";

/** Bounds on the SDP text: lines and their length. */
export const SDP_MAX_LINES = 512;
export const SDP_MAX_LINE_BYTES = 1024;

export type VideoCodec = "h264" | "hevc" | "av1";
export const CODEC_BY_FORMAT: Record<number, VideoCodec> = { 0: "h264", 1: "hevc", 2: "av1" };
export type Colorspace = "rec601" | "rec709" | "bt2020";

export interface StreamConfig {
  width: number;
  height: number;
  fps: number;
  /** Video payload bytes per shard (the shard is packetSize + 16). */
  packetSize: number;
  /** 0 H.264, 1 HEVC, 2 AV1. */
  bitStreamFormat: 0 | 1 | 2;
  codec: VideoCodec;
  /** 0 SDR, 1 HDR (10-bit). */
  dynamicRangeMode: 0 | 1;
  /** encoderCscMode as sent: colorspace << 1 | full range. */
  encoderCscMode: number;
  colorspace: Colorspace;
  fullRange: boolean;
  /** 0 4:2:0, 1 4:4:4. */
  chromaSamplingType: 0 | 1;
  bitrateKbps: number;
  fec: { minRequiredFecPackets: number };
  maxNumReferenceFrames: number;
  slicesPerFrame: number;
  audio: {
    channels: 2 | 6 | 8;
    channelMask: number;
    highQuality: boolean;
    /** Opus packet duration in ms. */
    packetDurationMs: 5 | 10;
  };
  encryption: {
    /** x-ss-general.encryptionEnabled as sent (1 control, 2 video, 4 audio). */
    mask: number;
    control: boolean;
    video: boolean;
    audio: boolean;
  };
  /** x-ml-general.featureFlags (client features); 0 when absent. */
  clientFeatureFlags: number;
}

/** Parses `a=name:value` lines; anything else (v=, o=, s=, t=, m=) is ignored. Throws AnnounceError on bounds. */
export function sdpAttributes(text: string): Map<string, string> {
  const lines = text.split(/\r?\n/);
  if (lines.length > SDP_MAX_LINES) throw new AnnounceError(`SDP has more than ${SDP_MAX_LINES} lines`);
  const attrs = new Map<string, string>();
  for (const line of lines) {
    if (line.length > SDP_MAX_LINE_BYTES) throw new AnnounceError(`SDP line longer than ${SDP_MAX_LINE_BYTES} bytes`);
    if (!line.startsWith("a=")) continue;
    const colon = line.indexOf(":");
    if (colon < 0) continue;
    const name = line.slice(2, colon).trim();
    // first occurrence wins: a repeated attribute cannot override one already read
    if (!attrs.has(name)) attrs.set(name, line.slice(colon + 1).trim());
  }
  return attrs;
}

const uint = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d{1,10}$/, "must be an unsigned integer")
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));
const oneOf = <T extends number>(...values: T[]) =>
  z
    .string()
    .regex(/^\d{1,10}$/, "must be an unsigned integer")
    .transform(Number)
    .refine((n): n is T => (values as number[]).includes(n), `must be one of ${values.join(", ")}`)
    .transform((n) => n as T);

/** The attributes read; names as clients send them. Required ones have no default. */
export const AnnounceAttributes = z.object({
  "x-nv-video[0].clientViewportWd": uint(64, 7680),
  "x-nv-video[0].clientViewportHt": uint(64, 4320),
  "x-nv-video[0].maxFPS": uint(1, 480),
  "x-nv-video[0].packetSize": uint(256, 8192),
  "x-nv-vqos[0].bitStreamFormat": oneOf(0, 1, 2),
  "x-nv-video[0].dynamicRangeMode": oneOf(0, 1),
  "x-nv-video[0].encoderCscMode": uint(0, 5),
  "x-ml-video.configuredBitrateKbps": uint(1, 1_000_000).optional(),
  "x-nv-video[0].initialBitrateKbps": uint(1, 1_000_000).optional(),
  "x-nv-vqos[0].fec.minRequiredFecPackets": uint(0, 255).default(2),
  "x-nv-video[0].maxNumReferenceFrames": uint(0, 16).default(0),
  "x-nv-video[0].videoEncoderSlicesPerFrame": uint(1, 64).default(1),
  "x-ss-video[0].chromaSamplingType": oneOf(0, 1).default(0),
  "x-nv-audio.surround.numChannels": oneOf(2, 6, 8),
  "x-nv-audio.surround.channelMask": uint(0, 0xffff),
  "x-nv-audio.surround.AudioQuality": oneOf(0, 1).default(0),
  "x-nv-aqos.packetDuration": oneOf(5, 10),
  "x-ss-general.encryptionEnabled": uint(0, 7).default(0),
  "x-ml-general.featureFlags": uint(0, 2 ** 32 - 1).default(0),
});

export class AnnounceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AnnounceError";
  }
}

export interface HostOffer {
  /** ServerCodecModeSupport bits. */
  codecModeSupport: number;
  /** x-ss-general.encryptionSupported mask advertised in DESCRIBE. */
  encryptionSupported: number;
}

const popcount = (n: number) => n.toString(2).replace(/0/g, "").length;
const COLORSPACES: Colorspace[] = ["rec601", "rec709", "bt2020"];

/** ANNOUNCE body → StreamConfig; AnnounceError (a 400 for the client) on anything missing, malformed or not offered. */
export function parseAnnounce(body: string, offer: HostOffer): StreamConfig {
  const attrs = sdpAttributes(body);
  const parsed = AnnounceAttributes.safeParse(Object.fromEntries(attrs));
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => {
      const name = String(i.path[0] ?? "");
      return attrs.has(name) ? `${name}: ${i.message}` : `missing attribute ${name}`;
    });
    throw new AnnounceError(problems.join("; "));
  }
  const a = parsed.data;
  const bitrateKbps = a["x-ml-video.configuredBitrateKbps"] ?? a["x-nv-video[0].initialBitrateKbps"];
  if (bitrateKbps === undefined) throw new AnnounceError("missing attribute x-ml-video.configuredBitrateKbps (or x-nv-video[0].initialBitrateKbps)");

  const format = a["x-nv-vqos[0].bitStreamFormat"];
  const codec = CODEC_BY_FORMAT[format]!;
  const hdr = a["x-nv-video[0].dynamicRangeMode"];
  const bits = offer.codecModeSupport;
  const offered = { h264: bits & CODEC.H264, hevc: bits & (CODEC.HEVC | CODEC.HEVC_MAIN10), av1: bits & (CODEC.AV1_MAIN8 | CODEC.AV1_MAIN10) };
  if (!offered[codec]) throw new AnnounceError(`bitStreamFormat ${format} (${codec}) is not supported by this host`);
  if (hdr === 1 && !(codec === "hevc" ? bits & CODEC.HEVC_MAIN10 : codec === "av1" ? bits & CODEC.AV1_MAIN10 : 0))
    throw new AnnounceError(`dynamicRangeMode 1 (10-bit) is not supported for ${codec} by this host`);

  if (a["x-ss-video[0].chromaSamplingType"] === 1) throw new AnnounceError("chromaSamplingType 1 (4:4:4) is not supported by this host");

  const enc = a["x-ss-general.encryptionEnabled"];
  if (enc & ~offer.encryptionSupported) throw new AnnounceError(`encryptionEnabled ${enc} asks for encryption this host does not support (${offer.encryptionSupported})`);

  const channels = a["x-nv-audio.surround.numChannels"];
  const mask = a["x-nv-audio.surround.channelMask"];
  if (popcount(mask) !== channels) throw new AnnounceError(`channelMask ${mask} does not name ${channels} channels`);

  const csc = a["x-nv-video[0].encoderCscMode"];
  return {
    width: a["x-nv-video[0].clientViewportWd"],
    height: a["x-nv-video[0].clientViewportHt"],
    fps: a["x-nv-video[0].maxFPS"],
    packetSize: a["x-nv-video[0].packetSize"],
    bitStreamFormat: format,
    codec,
    dynamicRangeMode: hdr,
    encoderCscMode: csc,
    colorspace: COLORSPACES[csc >> 1]!,
    fullRange: (csc & 1) === 1,
    chromaSamplingType: a["x-ss-video[0].chromaSamplingType"],
    bitrateKbps,
    fec: { minRequiredFecPackets: a["x-nv-vqos[0].fec.minRequiredFecPackets"] },
    maxNumReferenceFrames: a["x-nv-video[0].maxNumReferenceFrames"],
    slicesPerFrame: a["x-nv-video[0].videoEncoderSlicesPerFrame"],
    audio: {
      channels,
      channelMask: mask,
      highQuality: a["x-nv-audio.surround.AudioQuality"] === 1,
      packetDurationMs: a["x-nv-aqos.packetDuration"],
    },
    encryption: {
      mask: enc,
      control: (enc & ENCRYPTION.CONTROL) !== 0,
      video: (enc & ENCRYPTION.VIDEO) !== 0,
      audio: (enc & ENCRYPTION.AUDIO) !== 0,
    },
    clientFeatureFlags: a["x-ml-general.featureFlags"],
  };
}
