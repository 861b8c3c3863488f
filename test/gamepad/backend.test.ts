/**
 * The host's gamepad backend against the real agent server over a unix socket
 * (the protocol, framing and validation of both sides; the guest's pads are a
 * recording driver here — the uinput device itself is exercised in
 * e2e-uinput.test.ts): coalescing, detach on the active mask and at close,
 * hostile requests, the guest releasing pads when the host goes away, and the
 * QMP/agent composite's routing.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import net from "node:net";
import { join } from "node:path";
import { AgentClient } from "../../src/guest/client.ts";
import { GamepadBit } from "../../src/guest/gamepad-model.ts";
import { BTN, EV, GamepadHub, type GamepadDriver, type InputEventTriple, type RumbleListener } from "../../src/guest-agent/gamepad.ts";
import { loadAgentConfig } from "../../src/guest-agent/config.ts";
import { OsBackend } from "../../src/guest-agent/os.ts";
import { AgentServer } from "../../src/guest-agent/server.ts";
import { AgentGamepadBackend, type PadRumble } from "../../src/input/agent-backend.ts";
import { agentClientLink } from "../../src/input/agent-link.ts";
import { CompositeInputBackend } from "../../src/input/composite-backend.ts";
import { MoonlightButton } from "../../src/input/gamepad-map.ts";
import { CountingInputBackend } from "../../src/gamestream/control/counting-input.ts";
import { silentLogger } from "../../src/log.ts";
import { tempDir } from "../helpers/env.ts";
import { fileCommands, waitFor } from "../guest/agent-env.ts";
import { pad } from "./pad.ts";

class RecordingDriver implements GamepadDriver {
  readonly name = "recording";
  readonly log: string[] = [];
  readonly states = new Map<number, Map<string, number>>();
  readonly rumblers = new Map<number, RumbleListener>();
  constructor(private readonly reason: string | null = null) {}
  unavailable(): string | null {
    return this.reason;
  }
  create(index: number, _kind: string, onRumble?: RumbleListener) {
    this.log.push(`create ${index}`);
    if (onRumble) this.rumblers.set(index, onRumble);
    const held = new Map<string, number>();
    this.states.set(index, held);
    return {
      device: `pad${index}`,
      emit: (events: readonly InputEventTriple[]) => {
        this.log.push(`emit ${index}`);
        for (const e of events) if (e.type !== EV.SYN) held.set(`${e.type}:${e.code}`, e.value);
      },
      destroy: () => this.log.push(`destroy ${index}`),
    };
  }
  emits(): number {
    return this.log.filter((l) => l.startsWith("emit")).length;
  }
}


describe("AgentGamepadBackend ↔ agent server", () => {
  let work: ReturnType<typeof tempDir>;
  let driver: RecordingDriver;
  let agent: AgentServer;
  let hub: GamepadHub;
  let server: net.Server;
  const sockets = new Set<net.Socket>();
  let client: AgentClient;

  const start = async (d: RecordingDriver) => {
    work = tempDir("neuron-gamepad-");
    driver = d;
    const config = loadAgentConfig({ certDir: null, commands: fileCommands(work.path) }, "linux", {});
    agent = new AgentServer({ backend: new OsBackend(config), tls: null, log: silentLogger, pollMs: 0, gamepads: (hub = new GamepadHub(d)) });
    server = net.createServer((s) => {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      void agent.serve(s);
    });
    const sock = join(work.path, "agent.sock");
    await new Promise<void>((r) => server.listen(sock, r));
    client = new AgentClient({ socketPath: sock, tls: null, log: silentLogger, requestTimeoutMs: 5_000, backoff: { initialMs: 50, maxMs: 200 } });
    client.start();
    await waitFor(() => client.state === "connected", 5_000, "agent connection");
  };

  beforeEach(async () => start(new RecordingDriver()));
  afterEach(async () => {
    client.stop();
    agent.stop();
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
    work.cleanup();
  });

  test("a burst of states coalesces: latest wins, the queue never grows", async () => {
    const b = new AgentGamepadBackend({ link: client, log: silentLogger });
    for (let i = 0; i <= 500; i++) b.submit([pad({ leftStickX: i * 10, buttonFlags: i === 500 ? MoonlightButton.b : 0 })]);
    await b.flush();
    const s = b.stats();
    expect(s.accepted).toBe(501);
    // At most one in flight and one waiting: the first state goes out after attach, then the last.
    expect(s.delivered).toBeLessThanOrEqual(2);
    expect(b.coalesced).toBeGreaterThanOrEqual(499);
    expect(driver.states.get(0)!.get(`${EV.ABS}:0`)).toBe(5000);
    expect(driver.states.get(0)!.get(`${EV.KEY}:${BTN.EAST}`)).toBe(1);
    await b.close();
    expect(driver.states.get(0)!.get(`${EV.KEY}:${BTN.EAST}`)).toBe(0);
    expect(driver.log.at(-1)).toBe("destroy 0");
  });

  test("a pad leaving the active mask is detached; close releases and detaches the rest", async () => {
    const b = new AgentGamepadBackend({ link: client, log: silentLogger });
    b.submit([pad({ controllerNumber: 0, activeGamepadMask: 0b11, buttonFlags: MoonlightButton.a })]);
    b.submit([pad({ controllerNumber: 1, activeGamepadMask: 0b11, buttonFlags: MoonlightButton.y })]);
    await b.flush();
    expect(b.attached().sort()).toEqual([0, 1]);
    b.submit([pad({ controllerNumber: 0, activeGamepadMask: 0b01 })]);
    await b.flush();
    expect(b.attached()).toEqual([0]);
    expect(driver.log).toContain("destroy 1");
    expect(driver.states.get(1)!.get(`${EV.KEY}:${BTN.NORTH}`)).toBe(0); // released before removal
    await b.close();
    expect(driver.log.filter((l) => l.startsWith("destroy")).sort()).toEqual(["destroy 0", "destroy 1"]);
    b.submit([pad({})]); // after close: dropped, never thrown
    expect(b.stats().dropped).toBe(1);
  });

  test("a pad that leaves and comes straight back: requests stay in order, the guest ends with it attached", async () => {
    const b = new AgentGamepadBackend({ link: client, log: silentLogger });
    b.submit([pad({ controllerNumber: 1, activeGamepadMask: 0b10, buttonFlags: MoonlightButton.x })]);
    b.submit([pad({ controllerNumber: 0, activeGamepadMask: 0b01 })]);
    b.submit([pad({ controllerNumber: 1, activeGamepadMask: 0b11, buttonFlags: MoonlightButton.y })]);
    await b.flush();
    expect(b.attached().sort()).toEqual([0, 1]);
    expect(driver.log.filter((l) => l.endsWith(" 1") && !l.startsWith("emit"))).toEqual(["create 1", "destroy 1", "create 1"]);
    expect(driver.states.get(1)!.get(`${EV.KEY}:${BTN.NORTH}`)).toBe(1);
    expect(b.stats().refusedBatches).toBe(0);
    await b.close();
  });

  test("a pad the guest lost (agent restarted) is attached again on its next state", async () => {
    const b = new AgentGamepadBackend({ link: client, log: silentLogger });
    b.submit([pad({ buttonFlags: MoonlightButton.a })]);
    await b.flush();
    hub.detach(0);
    b.submit([pad({ buttonFlags: MoonlightButton.b })]);
    await b.flush();
    expect(driver.log.filter((l) => !l.startsWith("emit"))).toEqual(["create 0", "destroy 0", "create 0"]);
    expect(driver.states.get(0)!.get(`${EV.KEY}:${BTN.EAST}`)).toBe(1);
    expect(b.attached()).toEqual([0]);
    expect(b.stats().refusedBatches).toBe(1);
    await b.close();
  });

  test("hostile requests are refused by the guest and change nothing", async () => {
    await client.request("gamepad_attach", { index: 0 });
    const before = driver.log.length;
    for (const bad of [
      { index: 99, buttons: 0, lt: 0, rt: 0, lx: 0, ly: 0, rx: 0, ry: 0 },
      { index: 0, buttons: 1 << 20, lt: 0, rt: 0, lx: 0, ly: 0, rx: 0, ry: 0 },
      { index: 0, buttons: 0, lt: 1e9, rt: 0, lx: 0, ly: 0, rx: 0, ry: 0 },
      { index: 0, buttons: 0, lt: 0, rt: 0, lx: 0, ly: 0, rx: 0, ry: 0, __proto__x: 1 },
    ])
      await expect(client.request("gamepad_state", bad)).rejects.toThrow(/INVALID_ARGUMENT|must|Too|Unrecognized|expected/i);
    await expect(client.request("gamepad_state", { index: 5, buttons: 0, lt: 0, rt: 0, lx: 0, ly: 0, rx: 0, ry: 0 })).rejects.toThrow(/not attached/);
    expect(driver.log.length).toBe(before);
    expect(await client.request("gamepad_state", { index: 0, buttons: GamepadBit.a, lt: 0, rt: 0, lx: 0, ly: 0, rx: 0, ry: 0 })).toEqual({});
    expect(driver.log.length).toBe(before + 1);
  });

  test("the host goes away: the guest releases and removes its pads", async () => {
    await client.request("gamepad_attach", { index: 3 });
    await client.request("gamepad_state", { index: 3, buttons: GamepadBit.a, lt: 255, rt: 0, lx: 0, ly: 0, rx: 0, ry: 0 });
    client.stop();
    await waitFor(() => driver.log.includes("destroy 3"), 5_000, "pad removal");
    expect(driver.states.get(3)!.get(`${EV.KEY}:${BTN.SOUTH}`)).toBe(0);
    expect(driver.states.get(3)!.get(`${EV.ABS}:2`)).toBe(0);
    // afterEach stops it again: harmless
  });

  test("rumble from a guest pad reaches this session's listener, for its own pads only, until close", async () => {
    const got: PadRumble[] = [];
    const b = new AgentGamepadBackend({ link: agentClientLink(client), log: silentLogger, onRumble: (r) => got.push(r) });
    await b.open();
    b.submit([pad({ controllerNumber: 2, activeGamepadMask: 0b100 })]);
    await b.flush();
    await client.request("gamepad_attach", { index: 5 }); // a pad this backend did not attach
    driver.rumblers.get(5)!({ index: 5, low: 1, high: 1 });
    driver.rumblers.get(2)!({ index: 2, low: 65535, high: 300 });
    await waitFor(() => got.length > 0, 5_000, "rumble event");
    await Bun.sleep(50);
    expect(got).toEqual([{ controller: 2, lowFreq: 65535, highFreq: 300 }]);
    const rumble2 = driver.rumblers.get(2)!;
    await b.close();
    rumble2({ index: 2, low: 9, high: 9 });
    await Bun.sleep(50);
    expect(got).toHaveLength(1);
  });

  test("composite: keyboard and mouse to the primary, controllers to the agent", async () => {
    const primary = new CountingInputBackend(silentLogger);
    const pads = new AgentGamepadBackend({ link: client, log: silentLogger });
    const c = new CompositeInputBackend(primary, pads, silentLogger);
    await c.open();
    expect(c.capabilities.gamepad).toBe(true);
    c.submit([
      { kind: "key", down: true, vk: 0x41, keyCode: 0x41, modifiers: 0, flags: 0 },
      pad({ buttonFlags: MoonlightButton.a }),
      { kind: "mouseMoveRel", dx: 1, dy: 1 },
      { kind: "controllerMotion", controllerNumber: 0, motionType: "gyro", x: 0, y: 0, z: 0 },
    ]);
    await c.flush();
    expect(primary.byKind).toEqual({ key: 1, mouseMoveRel: 1 });
    expect(pads.attached()).toEqual([0]);
    const s = c.stats();
    expect(s.accepted).toBe(4);
    expect(s.unsupported).toEqual({ controllerMotion: 1 });
    await c.close();
    expect(driver.log.at(-1)).toBe("destroy 0");
  });
});

describe("a guest that cannot create pads", () => {
  test("attach fails once with the guest's reason; the pad's input is dropped, never thrown", async () => {
    const work = tempDir("neuron-gamepad-");
    const config = loadAgentConfig({ certDir: null, commands: fileCommands(work.path) }, "linux", {});
    const d = new RecordingDriver("no /dev/uinput in this guest");
    const agent = new AgentServer({ backend: new OsBackend(config), tls: null, log: silentLogger, pollMs: 0, gamepads: new GamepadHub(d) });
    const socks = new Set<net.Socket>();
    const server = net.createServer((s) => (socks.add(s), void agent.serve(s)));
    const sock = join(work.path, "agent.sock");
    await new Promise<void>((r) => server.listen(sock, r));
    const client = new AgentClient({ socketPath: sock, tls: null, log: silentLogger, requestTimeoutMs: 5_000 });
    client.start();
    try {
      await waitFor(() => client.state === "connected", 5_000, "agent connection");
      await expect(client.request("gamepad_attach", { index: 0 })).rejects.toThrow(/no \/dev\/uinput/);
      const b = new AgentGamepadBackend({ link: client, log: silentLogger });
      b.submit([pad({ buttonFlags: MoonlightButton.a })]);
      await b.flush();
      b.submit([pad({ buttonFlags: 0 })]);
      await b.flush();
      expect(b.attached()).toEqual([]);
      expect(b.stats()).toMatchObject({ accepted: 2, delivered: 0, dropped: 1 });
      expect(d.log).toEqual([]);
      await b.close();
    } finally {
      client.stop();
      agent.stop();
      for (const s of socks) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
      work.cleanup();
    }
  });
});
