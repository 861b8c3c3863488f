/** The appliance's guest-agent settings (the `guestAgent` key of the config). */
import { z } from "zod";

const argv = z.array(z.string().min(1).max(4096)).min(1).max(64);

export const GuestAgentSettingsSchema = z
  .strictObject({
    /** Mutual TLS on the agent channel (per-VM certificates in <stateDir>/agent-certs/<vm>). */
    tls: z.boolean().default(true),
    requestTimeoutMs: z.number().int().min(100).max(600_000).default(10_000),
    /** How long GET .../agent waits for a first connection before reporting "not connected". */
    connectWaitMs: z.number().int().min(0).max(60_000).default(1500),
    /** Host desktop clipboard, synced with the guest's when both commands are set (e.g. wl-paste -n / wl-copy). */
    clipboard: z
      .strictObject({
        getCommand: argv.nullable().default(null),
        setCommand: argv.nullable().default(null),
        pollMs: z.number().int().min(50).max(60_000).default(1000),
      })
      .default({ getCommand: null, setCommand: null, pollMs: 1000 }),
  })
  .default({ tls: true, requestTimeoutMs: 10_000, connectWaitMs: 1500, clipboard: { getCommand: null, setCommand: null, pollMs: 1000 } });
export type GuestAgentSettings = z.output<typeof GuestAgentSettingsSchema>;
