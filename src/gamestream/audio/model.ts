/** The audio part of a running session, as the management API shows it. */
import { z } from "zod";

export const StreamAudioInfo = z
  .object({
    port: z.number().int(),
    source: z.enum(["tone", "command"]).describe("tone: generated test tone (no capture configured or available); command: the VM's audio monitor"),
    sourceDetail: z.string(),
    channels: z.number().int(),
    bitrateBps: z.number().int(),
    packetDurationMs: z.number().int(),
    encrypted: z.boolean(),
    client: z.string().nullable().describe("address learned from the client's pings"),
    pingsAccepted: z.number().int(),
    pingsRejected: z.number().int().describe("datagrams on the audio port that were no ping of a live session (all sessions share the port)"),
    dataPackets: z.number().int(),
    parityPackets: z.number().int(),
    blocksWithoutParity: z.number().int(),
    sourceUnderruns: z.number().int(),
    skippedPackets: z.number().int(),
  })
  .meta({ id: "StreamAudio" });
