import { z } from "zod";
import { ControlStreamStats } from "./control/model.ts";
import { VideoStreamStats } from "./video/model.ts";
import { StreamAudioInfo } from "./audio/model.ts";

export const PendingPairing = z
  .object({ id: z.string(), deviceName: z.string(), remoteIp: z.string(), createdAt: z.iso.datetime() })
  .meta({ id: "PendingPairing" });

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
    createdAt: z.iso.datetime(),
    lastSeenAt: z.iso.datetime().nullable(),
  })
  .meta({ id: "Pairing" });

export const PairingIdParams = z.strictObject({ id: z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER) });

export const StreamSessionInfo = z
  .object({
    id: z.string(),
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

export const SessionIdParams = z.strictObject({ id: z.uuid() });

export const GameStreamStatus = z
  .object({
    enabled: z.boolean(),
    hostname: z.string(),
    uniqueId: z.string(),
    ports: z.object({ http: z.number(), https: z.number(), rtsp: z.number(), video: z.number(), control: z.number(), audio: z.number() }),
    session: StreamSessionInfo.nullable(),
  })
  .meta({ id: "GameStreamStatus" });
