/**
 * Which input backend serves a session: the QMP socket of its VM (`<stateDir>/vms/<vm>.qmp`,
 * a QMP socket of the VM's definition) when there is one; otherwise input is counted and logged.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { InputBackend } from "../../input/backend.ts";
import { QmpInputBackend } from "../../input/qmp-backend.ts";
import type { Logger } from "../../log.ts";
import type { StreamSession } from "../sessions.ts";
import { CountingInputBackend } from "./counting-input.ts";

export function vmQmpSocket(stateDir: string, vmName: string): string {
  return join(stateDir, "vms", `${vmName}.qmp`);
}

export function defaultSessionInputBackend(stateDir: string, log: Logger): (session: StreamSession) => Promise<InputBackend> {
  return async (session) => {
    if (session.vmName) {
      const socketPath = vmQmpSocket(stateDir, session.vmName);
      if (existsSync(socketPath)) return new QmpInputBackend({ socketPath, log });
      log.warn("the session's VM has no QMP socket: input is counted only", { vm: session.vmName, socketPath });
    }
    return new CountingInputBackend(log);
  };
}
