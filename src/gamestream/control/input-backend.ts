/**
 * Which input backend serves a session: the QMP monitor socket the appliance puts in the
 * definition of the session's VM (`<qmpDir>/<vm>.qmp`, see vm/qmp-socket.ts) when the VM
 * runs; otherwise input is counted and logged.
 */
import { existsSync } from "node:fs";
import type { InputBackend } from "../../input/backend.ts";
import { QmpInputBackend } from "../../input/qmp-backend.ts";
import type { Logger } from "../../log.ts";
import { vmQmpSocket } from "../../vm/qmp-socket.ts";
import type { StreamSession } from "../sessions.ts";
import { CountingInputBackend } from "./counting-input.ts";

export function defaultSessionInputBackend(qmpDir: string, log: Logger): (session: StreamSession) => Promise<InputBackend> {
  return async (session) => {
    if (session.vmName) {
      const socketPath = vmQmpSocket(qmpDir, session.vmName);
      if (existsSync(socketPath)) return new QmpInputBackend({ socketPath, log: log.child({ vm: session.vmName }) });
      log.warn("the session's VM has no QMP socket (not running, or defined without one): input is counted only", { vm: session.vmName, socketPath });
    }
    return new CountingInputBackend(log);
  };
}
