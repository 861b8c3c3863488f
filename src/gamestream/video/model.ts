/** The video stream's statistics of a session, as the management API shows them. */
import { z } from "zod";

export const VideoStreamStats = z
  .object({
    /** Where frames come from: the VM's shared memory or the synthetic test pattern. */
    source: z.enum(["vm", "test-pattern", "host-desktop"]),
    /** How a VM source's frames arrive: IVSHMEM (kvmfr), vsock or a unix socket (NVF1); null for other sources. */
    transport: z.enum(["kvmfr", "vsock", "unix"]).nullable(),
    /** Why that transport (what the VM's definition and the host offer); null for other sources. */
    transportReason: z.string().nullable(),
    /** The client's video address (learned from its pings); null until the first ping. */
    peer: z.string().nullable(),
    frames: z.number().int(),
    shards: z.number().int(),
    parityShards: z.number().int(),
    bytes: z.number().int(),
    sendErrors: z.number().int(),
    idrRequests: z.number().int(),
    /** Frames encoded before the client's address was known (or while waiting for an IDR). */
    framesDiscarded: z.number().int(),
    lastFrameIndex: z.number().int(),
    /** Capture → last shard of the latest frame handed to the kernel, ms. */
    lastLatencyMs: z.number(),
  })
  .meta({ id: "VideoStreamStats" });
export type VideoStreamStats = z.infer<typeof VideoStreamStats>;
