/**
 * A GamepadLink to a VM's guest agent: the agent client is looked up once
 * (GuestService keeps it connected), requests go straight to it.
 */
import { AppError } from "../errors.ts";
import type { AgentClient } from "../guest/client.ts";
import type { GuestService } from "../guest/service.ts";
import type { GamepadRumble } from "../guest/gamepad-model.ts";
import type { HidOutput } from "../guest/hid-model.ts";
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
  const hear = <T>(event: "gamepad_rumble" | "hid_output", listener: (x: T) => void) => {
    const l = (x: T) => listener(x);
    c.on(event, l);
    return () => void c.off(event, l);
  };
  return {
    request: (command, data) => c.request(command, data, GAMEPAD_REQUEST_TIMEOUT_MS),
    onRumble: (listener) => hear<GamepadRumble>("gamepad_rumble", listener),
    onHidOutput: (listener) => hear<HidOutput>("hid_output", listener),
  };
}

type LinkEvent = "gamepad_rumble" | "hid_output";

export function agentGamepadLink(guest: Pick<GuestService, "client">, vm: string): GamepadLink {
  let client: Promise<AgentClient | null> | null = null;
  const listeners: Record<LinkEvent, Set<(x: never) => void>> = { gamepad_rumble: new Set(), hid_output: new Set() };
  const fanOut: Record<LinkEvent, (x: unknown) => void> = {
    gamepad_rumble: (x) => listeners.gamepad_rumble.forEach((l) => l(x as never)),
    hid_output: (x) => listeners.hid_output.forEach((l) => l(x as never)),
  };
  const hooked: Record<LinkEvent, AgentClient | null> = { gamepad_rumble: null, hid_output: null };
  const listen = (event: LinkEvent, listener: (x: never) => void) => {
    listeners[event].add(listener);
    return () => {
      listeners[event].delete(listener);
      if (!listeners[event].size && hooked[event]) {
        hooked[event]!.off(event, fanOut[event]);
        hooked[event] = null;
      }
    };
  };
  return {
    onRumble: (listener) => listen("gamepad_rumble", listener),
    onHidOutput: (listener) => listen("hid_output", listener),
    async request(command, data) {
      client ??= guest.client(vm).catch((err: unknown) => {
        client = null;
        throw err;
      });
      const c = await client;
      for (const event of ["gamepad_rumble", "hid_output"] as const) {
        if (c && listeners[event].size && hooked[event] !== c) {
          hooked[event]?.off(event, fanOut[event]);
          c.on(event, fanOut[event]);
          hooked[event] = c;
        }
      }
      if (!c) throw new AppError("AGENT_NOT_CONNECTED", `${vm} has no guest agent channel`, { status: 503 });
      if (c.state !== "connected") await waitConnected(c, CONNECT_WAIT_MS);
      if (c.state !== "connected") throw new AppError("AGENT_NOT_CONNECTED", `guest agent of ${vm} not connected`, { status: 503 });
      return c.request(command, data, GAMEPAD_REQUEST_TIMEOUT_MS);
    },
  };
}
