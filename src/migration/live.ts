/**
 * The live path's connection: a running VM's guest agent (the agent channel, mutual TLS), waited
 * for, then asked to mirror the VM's profile(s) into <stateDir>/migration-staging/<vm> (bounded,
 * checksummed, resumable: src/migration/vm-source.ts). The staging folder is then planned and
 * run like any folder source.
 */
import { join } from "node:path";
import { assertVmName } from "../guest/certs.ts";
import type { AgentClient } from "../guest/client.ts";
import { AppError } from "../errors.ts";
import { mirrorFromAgent, type MirrorResult } from "./vm-source.ts";

/** What the live path needs of the guest service. */
export interface GuestAgents {
  client(vm: string): Promise<AgentClient | null>;
}

export const stagingDir = (stateDir: string, vm: string) => join(stateDir, "migration-staging", vm);

export async function pullFromVm(guest: GuestAgents, stateDir: string, vm: string, opts: { user?: string; connectTimeoutMs?: number; requestTimeoutMs?: number } = {}): Promise<{ dir: string; mirror: MirrorResult }> {
  assertVmName(vm);
  const client = await guest.client(vm);
  if (!client) throw new AppError("AGENT_NOT_CONNECTED", `VM ${JSON.stringify(vm)} has no guest agent channel`, { status: 409 });
  const deadline = Date.now() + (opts.connectTimeoutMs ?? 30_000);
  while (client.state !== "connected") {
    if (Date.now() > deadline) throw new AppError("AGENT_NOT_CONNECTED", `the guest agent of ${vm} did not answer within ${Math.round((opts.connectTimeoutMs ?? 30_000) / 1000)} s (is the VM running with the agent installed?)`, { status: 409 });
    await Bun.sleep(50);
  }
  const dir = stagingDir(stateDir, vm);
  const mirror = await mirrorFromAgent((command, data) => client.request(command, data, opts.requestTimeoutMs ?? 60_000), dir, { user: opts.user });
  return { dir, mirror };
}
