import { z } from "zod";
import { ControlStreamStats } from "./control/model.ts";
import { VideoStreamStats } from "./video/model.ts";
import { StreamAudioInfo } from "./audio/model.ts";
import { GS_PERMISSIONS } from "./permissions.ts";

export const PendingPairing = z
  .object({ id: z.string(), deviceName: z.string(), remoteIp: z.string(), createdAt: z.iso.datetime(), expiresAt: z.iso.datetime().describe("when the client's wait for the PIN ends") })
  .meta({ id: "PendingPairing" });

export const PairingAttemptParams = z.strictObject({ attemptId: z.uuid() });

export const PinEntry = z
  .strictObject({
    pin: z.string().regex(/^\d{4}$/, "must be the 4 digits the client shows"),
    attemptId: z.uuid().optional(),
  })
  .meta({ id: "PinEntry" });

export const Pairing = z
  .object({
    id: z.number().int(),
    name: z.string(),
    fingerprint: z.string().describe("SHA-256 of the client certificate (DER), hex"),
    certPem: z.string(),
    permissions: z.array(z.enum(GS_PERMISSIONS)).describe("what the client may do: view, keyboard, mouse, controller, launch, clipboard"),
    createdAt: z.iso.datetime(),
    lastSeenAt: z.iso.datetime().nullable(),
  })
  .meta({ id: "Pairing" });

export const GsPermissionName = z.enum(GS_PERMISSIONS).meta({ id: "GameStreamPermission" });

export const PermissionChange = z
  .strictObject({
    grant: z.array(GsPermissionName).max(GS_PERMISSIONS.length).optional(),
    revoke: z.array(GsPermissionName).max(GS_PERMISSIONS.length).optional(),
  })
  .refine((c) => (c.grant?.length ?? 0) + (c.revoke?.length ?? 0) > 0, "name at least one permission to grant or revoke")
  .meta({ id: "PermissionChange" });

export const PairingIdParams = z.strictObject({ id: z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER) });

export const SessionClient = z
  .object({
    name: z.string().nullable().describe("the device name it paired with"),
    fingerprint: z.string().describe("SHA-256 of its certificate (DER), hex: what identifies it"),
    uniqueId: z.string().nullable().describe("the uniqueid it sent with /launch (not an identity)"),
    address: z.string().describe("IP address /launch came from"),
  })
  .meta({ id: "SessionClient" });

export const SessionEndReason = z
  .enum(["cancelled", "replaced", "ended-by-api", "control-timeout", "client-disconnected", "source-ended", "host-stopped"])
  .meta({ id: "SessionEndReason" });

const ms = z.number().min(0);

export const StreamSessionInfo = z
  .object({
    id: z.string(),
    client: SessionClient,
    /** launched: /launch done, waiting for RTSP PLAY; streaming: PLAY done. */
    state: z.enum(["launched", "streaming"]),
    codec: z.enum(["h264", "hevc", "av1"]).nullable().describe("negotiated in the RTSP ANNOUNCE; null before it"),
    bitrateKbps: z.number().int().nullable(),
    framesSent: z.number().int().min(0),
    hostFps: ms.describe("frames sent per second over the last ~5 s"),
    latency: z
      .object({ p50Ms: ms, p99Ms: ms, samples: z.number().int().min(0) })
      .describe("host latency, capture → last shard handed to the kernel, over the last ~600 frames"),
    loss: z
      .object({
        framesLostReported: z.number().int().min(0).describe("frames the client's loss reports (0x0201) counted as lost"),
        fecReports: z.number().int().min(0).describe("per-frame FEC status messages from the client"),
        lostDataShards: z.number().int().min(0),
        fecRecoveredFrames: z.number().int().min(0),
        fecUnrecoverableFrames: z.number().int().min(0),
      })
      .describe("loss as the client reports it on the control stream"),
    audioSource: z.enum(["tone", "command"]).nullable().describe("tone: generated test tone; command: the VM's audio monitor; null while no audio runs"),
    appId: z.number().int(),
    appName: z.string(),
    vmName: z.string().nullable(),
    width: z.number().int(),
    height: z.number().int(),
    fps: z.number().int(),
    hdr: z.boolean(),
    encryptedRtsp: z.boolean(),
    clientFingerprint: z.string(),
    startedAt: z.iso.datetime(),
    /** The control stream's connection and loss statistics; null while the client has none. */
    control: ControlStreamStats.nullable(),
    /** The video stream's statistics; null while no video runs. */
    video: VideoStreamStats.nullable(),
    audio: StreamAudioInfo.nullable().optional(),
  })
  .meta({ id: "StreamSession" });

export const EndedSessionInfo = z
  .object({
    id: z.string(),
    client: SessionClient.omit({ uniqueId: true }),
    appId: z.number().int(),
    appName: z.string(),
    width: z.number().int(),
    height: z.number().int(),
    fps: z.number().int(),
    startedAt: z.iso.datetime(),
    endedAt: z.iso.datetime(),
    reason: SessionEndReason,
    detail: z.string().nullable(),
  })
  .meta({ id: "EndedStreamSession" });

export const SessionIdParams = z.strictObject({ id: z.uuid() });

/** PATCH /sessions/{id}: what may change while a session streams. */
export const SessionChange = z
  .strictObject({ bitrateKbps: z.number().int().min(500).max(500_000).describe("the encoder's new target bitrate, kbps") })
  .meta({ id: "StreamSessionChange" });

export const GameStreamStatus = z
  .object({
    enabled: z.boolean(),
    hostname: z.string(),
    uniqueId: z.string(),
    ports: z.object({ http: z.number(), https: z.number(), rtsp: z.number(), video: z.number(), control: z.number(), audio: z.number() }),
    session: StreamSessionInfo.nullable().describe("the newest running session (all of them: GET /sessions)"),
    sessions: z.number().int().min(0).describe("sessions running now"),
    maxSessions: z.number().int().min(1).describe("clients that may stream at once (gamestreamMaxSessions)"),
    httpRefused: z
      .record(z.string(), z.number().int().min(0))
      .optional()
      .describe("requests the GameStream HTTP(S) ports refused before any work since start, by reason (status414, status431, status413, host, headTimeout, connectionsPerAddress, ...)"),
  })
  .meta({ id: "GameStreamStatus" });
