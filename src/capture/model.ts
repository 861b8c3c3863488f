/** Schemas of the capture domain (API bodies, CLI options, results). */
import { z } from "zod";

/** A file name under the shm directory (config.shmDir): no path separators, no dot names. */
export const ShmName = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, "letters, digits, '.', '_' and '-' only, not starting with '.'");

export const CodecName = z.enum(["h264", "hevc"]);
export type CodecName = z.infer<typeof CodecName>;

export const EncoderProbeQuery = z.object({ codec: CodecName.default("h264") });

export const EncoderCandidate = z.object({
  name: z.string(),
  status: z.enum(["chosen", "unavailable", "skipped"]),
  reason: z.string(),
});

export const EncoderProbe = z
  .object({
    codec: CodecName,
    chosen: z.string().nullable(),
    reason: z.string(),
    candidates: z.array(EncoderCandidate),
  })
  .meta({ id: "EncoderProbe" });
export type EncoderProbe = z.infer<typeof EncoderProbe>;

/** One timing run of an encoder at a mode (CaptureService.measureSpeed). */
export const EncoderSpeedResult = z
  .object({
    codec: CodecName,
    /** The encoder that opened (null: none did). */
    encoder: z.string().nullable(),
    hardware: z.boolean(),
    reason: z.string(),
    width: z.number().int(),
    height: z.number().int(),
    /** The mode's frame rate. */
    fps: z.number().int(),
    frames: z.number().int(),
    /** Frames per second of converting + encoding (null: nothing was timed). */
    measuredFps: z.number().nullable(),
    encodeP50Ms: z.number(),
    encodeMaxMs: z.number(),
    error: z.string().nullable(),
  })
  .meta({ id: "EncoderSpeedResult" });
export type EncoderSpeedResult = z.infer<typeof EncoderSpeedResult>;

export const SourceQuery = z.object({
  timeoutMs: z.coerce.number().int().min(10).max(5000).default(1000),
});

export const FrameSummary = z.object({
  serial: z.number().int(),
  type: z.string(),
  width: z.number().int(),
  height: z.number().int(),
  frameWidth: z.number().int(),
  frameHeight: z.number().int(),
  rotation: z.number().int(),
  flags: z.array(z.string()),
  damageRects: z.number().int(),
});

export const SourceStatus = z
  .object({
    name: z.string(),
    kind: z.literal("kvmfr"),
    lgmpVersion: z.number().int(),
    kvmfrVersion: z.number().int(),
    sessionId: z.number().int(),
    frame: FrameSummary.nullable(),
    cursor: z.object({ x: z.number().int(), y: z.number().int(), visible: z.boolean(), updates: z.number().int() }),
  })
  .meta({ id: "CaptureSourceStatus" });
export type SourceStatus = z.infer<typeof SourceStatus>;

export const DemoRequest = z
  .object({
    width: z.number().int().min(64).max(3840).default(1280),
    height: z.number().int().min(64).max(2160).default(720),
    fps: z.number().int().min(1).max(240).default(60),
    frames: z.number().int().min(1).max(600).default(60),
    codec: CodecName.default("h264"),
    bitrateKbps: z.number().int().min(100).max(200000).default(10000),
    threads: z.number().int().min(1).max(16).default(2),
  })
  .strict();
export type DemoRequest = z.infer<typeof DemoRequest>;

const Stage = z.object({ p50: z.number(), p99: z.number() });

export const DemoResult = z
  .object({
    encoder: z.string(),
    encoderReport: z.string(),
    codec: CodecName,
    width: z.number().int(),
    height: z.number().int(),
    accessUnits: z.number().int(),
    idrUnits: z.number().int(),
    bytes: z.number().int(),
    elapsedMs: z.number(),
    fps: z.number(),
    latencyMs: Stage,
    stagesMs: z.object({ copy: Stage, convert: Stage, encode: Stage }),
    dropped: z.number().int(),
  })
  .meta({ id: "CaptureDemoResult" });
export type DemoResult = z.infer<typeof DemoResult>;

/** GET /capture/sources: every frame-source kind and whether this host can use it now. */
export const SourceKindStatus = z.object({
  kind: z.enum(["kvmfr", "nfb", "vsock", "unix", "host-virtual-output"]),
  description: z.string(),
  available: z.boolean(),
  /** Why not, when not available. */
  reason: z.string().optional(),
  /** host-virtual-output: how input reaches the host's session (remote-desktop, libei, uinput or none) and why. */
  input: z.object({ backend: z.string(), reason: z.string() }).optional(),
  /** host-virtual-output: every compositor backend, in probe order: available, or why not. */
  backends: z.array(z.object({ name: z.string(), available: z.boolean(), reason: z.string().optional() })).optional(),
});
export const SourceKindList = z.object({ sources: z.array(SourceKindStatus) }).meta({ id: "CaptureSourceKinds" });

export const VmTransportChoice = z
  .object({
    vm: z.string(),
    kind: z.enum(["kvmfr", "vsock", "unix"]),
    reason: z.string(),
    vsockCid: z.number().int().nullable(),
    socketPath: z.string().nullable(),
    candidates: z.array(z.object({ kind: z.enum(["kvmfr", "vsock", "unix"]), usable: z.boolean(), reason: z.string() })),
  })
  .meta({ id: "CaptureVmTransport" });
