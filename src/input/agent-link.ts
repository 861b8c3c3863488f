/**
 * A GamepadLink to a VM's guest agent: the agent client is looked up once
 * (GuestService keeps it connected), requests go straight to it.
 */
import { AppError } from "../errors.ts";
import type { AgentClient } from "../guest/client.ts";
import type { GuestService } from "../guest/service.ts";
import type { GamepadRumble } from "../guest/gamepad-model.ts";
import type { GamepadLink } from "./agent-backend.ts";

/** Gamepad requests time out quickly: a stale state is worth nothing. */
const GAMEPAD_REQUEST_TIMEOUT_MS = 2_000;

/** A session that starts while the agent (re)connects waits this long before its pad counts as failed. */
const CONNECT_WAIT_MS = 3_000;

function waitConnected(c: AgentClient, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(t);
      c.off("connected", done);
      resolve();
    };
    const t = setTimeout(done, ms);
    c.on("connected", done);
  });
}

/** A link straight to one agent client. */
export function agentClientLink(c: AgentClient): GamepadLink {
  return {
    request: (command, data) => c.request(command, data, GAMEPAD_REQUEST_TIMEOUT_MS),
    onRumble(listener) {
      const l = (r: GamepadRumble) => listener(r);
      c.on("gamepad_rumble", l);
      return () => c.off("gamepad_rumble", l);
    },
  };
}

export function agentGamepadLink(guest: Pick<GuestService, "client">, vm: string): GamepadLink {
  let client: Promise<AgentClient | null> | null = null;
  const listeners = new Set<(r: GamepadRumble) => void>();
  const fanOut = (r: GamepadRumble) => {
    for (const l of listeners) l(r);
  };
  let hooked: AgentClient | null = null;
  return {
    onRumble(listener) {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
        if (!listeners.size && hooked) {
          hooked.off("gamepad_rumble", fanOut);
          hooked = null;
        }
      };
    },
    async request(command, data) {
      client ??= guest.client(vm).catch((err: unknown) => {
        client = null;
        throw err;
      });
      const c = await client;
      if (c && listeners.size && hooked !== c) {
        hooked?.off("gamepad_rumble", fanOut);
        c.on("gamepad_rumble", fanOut);
        hooked = c;
      }
      if (!c) throw new AppError("AGENT_NOT_CONNECTED", `${vm} has no guest agent channel`, { status: 503 });
      if (c.state !== "connected") await waitConnected(c, CONNECT_WAIT_MS);
      if (c.state !== "connected") throw new AppError("AGENT_NOT_CONNECTED", `guest agent of ${vm} not connected`, { status: 503 });
      return c.request(command, data, GAMEPAD_REQUEST_TIMEOUT_MS);
    },
  };
}
