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
import { AgentGamepadBackend, type GamepadLink, type PadRumble } from "../../input/agent-backend.ts";
import { CompositeInputBackend } from "../../input/composite-backend.ts";

/**
 * `gamepadLink`, when given, reaches a VM's guest agent: controllers then go there (virtual pads
 * in the guest) while keyboard and mouse stay on QMP.
 */
export function defaultSessionInputBackend(
  qmpDir: string,
  log: Logger,
  gamepadLink?: (vm: string) => GamepadLink,
  /** Sends a guest pad's rumble to the session's client. */
  rumble?: (sessionId: string, r: PadRumble) => void,
  /** The VM's shared input hub (its QMP connection serves the API and WebSockets too); absent: a backend of the session's own. */
  vmInput?: (vm: string, onRumble?: (r: PadRumble) => void) => Promise<InputBackend>,
): (session: StreamSession) => Promise<InputBackend> {
  return async (session) => {
    if (session.vmName) {
      const socketPath = vmQmpSocket(qmpDir, session.vmName);
      if (existsSync(socketPath)) {
        if (vmInput) return vmInput(session.vmName, rumble && ((r) => rumble(session.id, r)));
        const vmLog = log.child({ vm: session.vmName });
        const qmp = new QmpInputBackend({ socketPath, log: vmLog });
        if (!gamepadLink) return qmp;
        return new CompositeInputBackend(qmp, new AgentGamepadBackend({ link: gamepadLink(session.vmName), log: vmLog, onRumble: rumble && ((r) => rumble(session.id, r)) }), vmLog);
      }
      log.warn("the session's VM has no QMP socket (not running, or defined without one): input is counted only", { vm: session.vmName, socketPath });
    }
    return new CountingInputBackend(log);
  };
}
