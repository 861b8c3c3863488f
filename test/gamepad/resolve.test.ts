/**
 * Where a session's gamepads go: the VM's agent beside QMP when a link is
 * given, QMP alone otherwise; and the agent link's errors when the VM has no
 * agent channel or the agent is not connected.
 */
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { defaultSessionInputBackend } from "../../src/gamestream/control/input-backend.ts";
import type { StreamSession } from "../../src/gamestream/sessions.ts";
import type { AgentClient } from "../../src/guest/client.ts";
import { CompositeInputBackend } from "../../src/input/composite-backend.ts";
import { agentGamepadLink } from "../../src/input/agent-link.ts";
import { QmpInputBackend } from "../../src/input/qmp-backend.ts";
import { silentLogger } from "../../src/log.ts";
import { vmQmpSocket } from "../../src/vm/qmp-socket.ts";
import { tempDir } from "../helpers/env.ts";

const session = (vmName: string | null) => ({ vmName }) as StreamSession;

describe("session input backend resolution", () => {
  test("with an agent link: QMP for keyboard/mouse, the agent for gamepads; without: QMP alone", async () => {
    const dir = tempDir("neuron-gamepad-resolve-");
    try {
      writeFileSync(vmQmpSocket(dir.path, "win11"), "");
      const link = { request: async () => ({}) };
      const withPads = await defaultSessionInputBackend(dir.path, silentLogger, () => link)(session("win11"));
      expect(withPads).toBeInstanceOf(CompositeInputBackend);
      expect(withPads.name).toBe("qmp+agent-gamepad");
      const plain = await defaultSessionInputBackend(dir.path, silentLogger)(session("win11"));
      expect(plain).toBeInstanceOf(QmpInputBackend);
      // No VM (or no QMP socket): counted only, whatever the link.
      expect((await defaultSessionInputBackend(dir.path, silentLogger, () => link)(session(null))).name).toBe("counting");
    } finally {
      dir.cleanup();
    }
  });
});

describe("agent gamepad link", () => {
  test("a VM without an agent channel: AGENT_NOT_CONNECTED, and the lookup is retried after a failure", async () => {
    let calls = 0;
    const link = agentGamepadLink({ client: async () => (calls++, null) }, "vm1");
    await expect(link.request("gamepad_attach", { index: 0 })).rejects.toMatchObject({ errorCode: "AGENT_NOT_CONNECTED" });
    let failing = true;
    const flaky = agentGamepadLink(
      {
        client: async () => {
          if (failing) throw new Error("virsh failed");
          return null;
        },
      },
      "vm2",
    );
    await expect(flaky.request("gamepad_attach", { index: 0 })).rejects.toThrow(/virsh failed/);
    failing = false;
    await expect(flaky.request("gamepad_attach", { index: 0 })).rejects.toMatchObject({ errorCode: "AGENT_NOT_CONNECTED" });
    expect(calls).toBe(1);
  });

  test("a session starting while the agent connects waits for it (briefly) instead of failing the pad", async () => {
    const { EventEmitter } = await import("node:events");
    const sent: unknown[] = [];
    const c = Object.assign(new EventEmitter(), {
      state: "connecting",
      request: async (command: string, data: unknown) => (sent.push([command, data]), { index: 0, device: "pad0" }),
    });
    const link = agentGamepadLink({ client: async () => c as unknown as AgentClient }, "vm3");
    setTimeout(() => {
      c.state = "connected";
      c.emit("connected");
    }, 50);
    expect(await link.request("gamepad_attach", { index: 0 })).toEqual({ index: 0, device: "pad0" });
    expect(sent).toEqual([["gamepad_attach", { index: 0 }]]);
  });
});
