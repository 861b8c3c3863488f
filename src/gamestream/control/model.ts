/** The control stream's statistics as the management API shows them (GET /api/v1/gamestream). */
import { z } from "zod";

const count = z.number().int().min(0);

export const ControlStreamStats = z
  .object({
    address: z.string(),
    connectedAt: z.iso.datetime(),
    messages: count,
    pings: count,
    idrRequests: count,
    invalidations: count,
    unknownTypes: count,
    dropped: z.object({ unencrypted: count, malformed: count, badTag: count, replayed: count, rateLimited: count, oversized: count }),
    fec: z.object({ reports: count, lostDataShards: count, recoveredFrames: count, unrecoverableFrames: count, lastFrameIndex: count.nullable() }),
    loss: z.object({ reports: count, framesLost: count }).describe("the client's periodic loss reports"),
    input: z
      .object({
        /** Where the session's input goes: qmp (the VM), host-session (the host's desktop through its compositor), counting (nowhere). */
        backend: z.string(),
        packets: count,
        events: count,
        rejected: z.record(z.string(), count),
        denied: z.record(z.string(), count).describe("events dropped because the client lacks the permission (keyboard, mouse, controller)"),
      })
      .nullable(),
    msSinceLastMessage: count,
  })
  .meta({ id: "ControlStreamStats" });
