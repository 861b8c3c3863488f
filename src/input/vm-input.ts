/**
 * Input into a VM from the management API and its WebSocket: one hub per VM owns the
 * sinks (the QMP monitor for keyboard and pointers, the guest agent for gamepads) and
 * serves every connection; each connection keeps what it holds, so its end releases
 * exactly its keys and buttons.
 *
 * Ordering: a connection's events reach the backend in the order given. Pointer motion
 * waits up to one frame interval (config input.frameMs) and coalesces (relative deltas
 * summed, absolute positions replaced); any other event first sends the motion before
 * it, so keys and buttons are never reordered and never dropped.
 *
 * Key repeat ("host" policy): the last key pressed and still held is pressed again after
 * 500 ms, then at 24.9 Hz, until released (Sunshine's timing); "guest" leaves repeat to
 * the guest's own keyboard driver.
 */
import { existsSync } from "node:fs";
import { AppError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { vmQmpSocket } from "../vm/qmp-socket.ts";
import { AgentGamepadBackend, type GamepadLink, type PadRumble } from "./agent-backend.ts";
import type { InputBackend } from "./backend.ts";
import { HidNative } from "../../ffi/hid.ts";
import { AgentHidBackend, type HidPadKind } from "./agent-hid-backend.ts";
import { CompositeInputBackend, GAMEPAD_EVENT_KINDS } from "./composite-backend.ts";
import { convertBatch, type InputOp } from "./inject-convert.ts";
import { loadKeyTable, type KeyTable } from "./keymap.ts";
import { loadLayout } from "./layouts.ts";
import type { InjectEvent, InjectResult, InputEvent, InputEventKind } from "./model.ts";
import { QmpInputBackend } from "./qmp-backend.ts";
import { HostUinputPadBackend } from "./host-uinput-backend.ts";
import { PadRouter } from "./pad-router.ts";
import { UinputDriver } from "../guest-agent/gamepad-uinput.ts";
import { agentDeviceNames, type PadDevice, type SinkPins, type SinkReport } from "./sinks.ts";

export const REPEAT_DELAY_MS = 500;
export const REPEAT_HZ = 24.9;
/** The API's own connection releases what it holds after this long without a request. */
export const API_IDLE_RELEASE_MS = 30_000;
/** The VM's input devices are probed again at most this often on the API path. */
export const DEVICE_REFRESH_MS = 5_000;

export interface InputSettings {
  keymapDir: string;
  layouts: Record<string, string>;
  frameMs: number;
  keyRepeat: "guest" | "host";
  pins: Record<string, SinkPins>;
  /** The pad the guest agent makes, per VM (default uinput). */
  padDevice?: Record<string, PadDevice>;
}

/** The event kinds of each class the agent sink takes when pinned to it. */
const AGENT_CLASS_KINDS: Record<"keyboard" | "pointer" | "absolute", readonly InputEventKind[]> = {
  keyboard: ["key", "usageKey"],
  pointer: ["mouseMoveRel", "mouseButton", "scroll", "hscroll"],
  absolute: ["mouseMoveAbs", "mouseButton", "scroll", "hscroll"],
};

export interface VmInputDeps {
  qmpDir: string;
  settings: InputSettings;
  /** libvirt's path to the native library (the key table). */
  nativePath: () => string;
  log: Logger;
  /** Reaches a VM's guest agent (gamepads); absent: no gamepads. */
  gamepadLink?: (vm: string) => GamepadLink;
  /** Whether a host /dev/uinput exists. */
  hostUinput?: boolean;
  /** The host's uinput device (config uinputDevice). */
  uinputPath?: string;
}

/** One source of input (the API, a WebSocket): what it holds, its pending motion, its repeat. */
export class InputConnection {
  private readonly held = new Map<string, InputEvent>();
  private rel: { dx: number; dy: number } | null = null;
  private absPos: InputEvent | null = null;
  private motionTimer: ReturnType<typeof setTimeout> | null = null;
  private repeatTimer: ReturnType<typeof setTimeout> | null = null;
  private repeatKey: string | null = null;
  padMask = 0;
  closed = false;
  events = 0;

  constructor(
    private readonly hub: VmInputHub,
    private readonly frameMs: number,
    private readonly repeat: boolean,
    private readonly onEnd: (c: InputConnection) => void,
  ) {}

  apply(ops: readonly InputOp[]): void {
    if (this.closed) throw new AppError("INPUT_CONNECTION_CLOSED", "the input connection has ended", { status: 409 });
    // a flood faster than the guest takes it is refused whole, never dropped in part
    const q = this.hub.qmp;
    if (q.queuedEvents + ops.length * 2 > q.queueCapacity)
      throw new AppError("INPUT_BUSY", `the VM is still taking ${q.queuedEvents} earlier input events: send again shortly`, { status: 429 });
    const h = this.hub.hid;
    if (h && h.queuedReports + ops.length > h.queueCapacity)
      throw new AppError("INPUT_BUSY", `the guest agent is still taking ${h.queuedReports} earlier reports: send again shortly`, { status: 429 });
    const out: InputEvent[] = [];
    for (const op of ops) {
      this.events++;
      if (op.kind === "mouseMoveRel") {
        if (this.absPos) this.takeMotion(out);
        this.rel = this.rel ? { dx: clamp16(this.rel.dx + op.dx), dy: clamp16(this.rel.dy + op.dy) } : { dx: op.dx, dy: op.dy };
        continue;
      }
      if (op.kind === "mouseMoveAbs") {
        if (this.rel) this.takeMotion(out);
        this.absPos = op;
        continue;
      }
      this.takeMotion(out);
      if (op.kind === "releaseAll") {
        out.push(...this.releases());
        continue;
      }
      this.track(op);
      out.push(op);
    }
    if (out.length) this.hub.backend.submit(out);
    if (this.rel || this.absPos) this.armMotion();
  }

  /** Sends pending motion now (end of an API batch). */
  flushMotion(): void {
    const out: InputEvent[] = [];
    this.takeMotion(out);
    if (out.length) this.hub.backend.submit(out);
  }

  /** Keys and buttons held (evdev key codes and button names). */
  holding(): string[] {
    return [...this.held.keys()];
  }

  /** Releases everything held, then ends the connection. Idempotent. */
  async end(): Promise<void> {
    if (this.closed) return;
    this.flushMotion();
    const ups = this.releases();
    this.closed = true;
    if (ups.length) this.hub.backend.submit(ups);
    this.onEnd(this);
    await this.hub.backend.flush();
  }

  private takeMotion(out: InputEvent[]): void {
    if (this.motionTimer) clearTimeout(this.motionTimer);
    this.motionTimer = null;
    if (this.rel && (this.rel.dx !== 0 || this.rel.dy !== 0)) out.push({ kind: "mouseMoveRel", ...this.rel });
    if (this.absPos) out.push(this.absPos);
    this.rel = null;
    this.absPos = null;
  }

  private armMotion(): void {
    if (this.frameMs === 0) return this.flushMotion();
    this.motionTimer ??= setTimeout(() => {
      this.motionTimer = null;
      if (!this.closed) this.flushMotion();
    }, this.frameMs);
  }

  private track(ev: InputEvent): void {
    if (ev.kind === "usageKey") {
      const id = `key:${ev.evdev}`;
      if (ev.down) {
        this.held.set(id, { ...ev, down: false });
        if (this.repeat) this.startRepeat(id, ev);
      } else {
        this.held.delete(id);
        if (this.repeatKey === id) this.stopRepeat();
      }
    } else if (ev.kind === "touch" || ev.kind === "pen") {
      // a contact drives the pointer's left button: released by cancelling every contact
      if (ev.eventType === "down") this.held.set("contact", { ...ev, kind: "touch", eventType: "cancelAll", pointerId: 0 } as InputEvent);
      else if (ev.eventType === "up" || ev.eventType === "cancel" || ev.eventType === "cancelAll") this.held.delete("contact");
    } else if (ev.kind === "key") {
      // a GameStream key (Windows VK) from a stream session
      const id = `vk:${ev.vk}`;
      if (ev.down) this.held.set(id, { ...ev, down: false });
      else this.held.delete(id);
    } else if (ev.kind === "mouseButton") {
      const id = `button:${ev.button}`;
      if (ev.down) this.held.set(id, { ...ev, down: false });
      else this.held.delete(id);
    }
  }

  private releases(): InputEvent[] {
    this.stopRepeat();
    const ups = [...this.held.values()].reverse();
    this.held.clear();
    return ups;
  }

  private startRepeat(id: string, down: InputEvent): void {
    this.stopRepeat();
    this.repeatKey = id;
    const tick = (delay: number) => {
      this.repeatTimer = setTimeout(() => {
        if (this.closed || this.repeatKey !== id || !this.held.has(id)) return;
        this.hub.backend.submit([down]);
        tick(1000 / REPEAT_HZ);
      }, delay);
    };
    tick(REPEAT_DELAY_MS);
  }

  private stopRepeat(): void {
    if (this.repeatTimer) clearTimeout(this.repeatTimer);
    this.repeatTimer = null;
    this.repeatKey = null;
  }
}

/** One VM's sinks, opened on first use and shared by its connections. */
export class VmInputHub {
  readonly backend: InputBackend;
  readonly qmp: QmpInputBackend;
  /** The agent's uhid devices (classes pinned to the agent, uhid pads), when used. */
  hid: AgentHidBackend | null = null;
  private hidNative: HidNative | null = null;
  private readonly padDevice: PadDevice;
  private readonly agentClasses: ("keyboard" | "pointer" | "absolute")[];
  private opening: Promise<void> | null = null;
  /** When the devices were last probed (ms). */
  probedAt = Date.now();
  private readonly connections = new Set<InputConnection>();
  private readonly rumbleListeners = new Set<(r: PadRumble) => void>();

  constructor(
    readonly vm: string,
    socketPath: string,
    private readonly deps: VmInputDeps,
  ) {
    const log = deps.log.child({ vm });
    this.qmp = new QmpInputBackend({ socketPath, log, keyBytes: keyBytesOf(deps) });
    const pins = deps.settings.pins[vm] ?? {};
    this.padDevice = deps.settings.padDevice?.[vm] ?? "uinput";
    const link = deps.gamepadLink?.(vm);
    const onRumble = (r: PadRumble) => this.rumbleListeners.forEach((l) => l(r));
    this.agentClasses = (["keyboard", "pointer", "absolute"] as const).filter((c) => pins[c] === "agent");
    // pads: host uinput devices passed in as evdev when pinned there, else the guest agent's
    const hostPads =
      pins.gamepad === "host-uinput" && deps.hostUinput
        ? new HostUinputPadBackend({ driver: new UinputDriver(deps.uinputPath), qmp: (name, args) => this.qmp.command(name, args), log })
        : null;
    let pads: InputBackend | null = hostPads;
    const uinputPads = link && !hostPads && (this.padDevice === "uinput" || this.padDevice === "auto") ? new AgentGamepadBackend({ link, log, onRumble }) : null;
    if (uinputPads && this.padDevice === "uinput") pads = uinputPads;
    if (link && (this.agentClasses.length || (!hostPads && this.padDevice !== "uinput"))) {
      try {
        this.hidNative = new HidNative(deps.nativePath());
        const padKind: HidPadKind = this.padDevice === "xbox" ? "xbox" : "dualsense";
        let keys: KeyTable | undefined;
        try {
          keys = loadKeyTable(deps.nativePath());
        } catch {
          keys = undefined;
        }
        this.hid = new AgentHidBackend({ link, hid: this.hidNative, log, pads: padKind, keys, pointer: pins.pointer === "agent" ? "relative" : "absolute", onRumble });
      } catch (err) {
        log.warn("the agent's HID devices need the native library: the agent sink serves gamepads through uinput only", { error: String(err) });
      }
    }
    // "auto": per controller, a PlayStation one becomes the uhid DualSense, any other the uinput pad
    if (this.padDevice === "auto" && uinputPads) pads = this.hid ? new PadRouter(uinputPads, this.hid) : uinputPads;
    const agentSide: InputBackend | null = this.hid && pads ? new CompositeInputBackend(this.hid, pads, log) : (this.hid ?? pads);
    const kinds = new Set<InputEventKind>(GAMEPAD_EVENT_KINDS);
    if (this.hid) for (const c of this.agentClasses) for (const k of AGENT_CLASS_KINDS[c]) kinds.add(k);
    this.backend = agentSide ? new CompositeInputBackend(this.qmp, agentSide, log, kinds) : this.qmp;
  }

  open(): Promise<void> {
    this.opening ??= (async () => {
      await this.backend.open();
      // the classes pinned to the agent get their devices now, as hardware plugged in before use
      if (this.hid && this.agentClasses.length) await this.hid.prepare(AgentHidBackend.rolesOf(this.agentClasses));
      const pins = this.deps.settings.pins[this.vm] ?? {};
      if (pins.pointer && pins.pointer !== "agent") await this.qmp.selectPointer(pins.pointer as "ps2" | "usb" | "virtio", false);
      if (pins.absolute && pins.absolute !== "agent") await this.qmp.selectPointer(pins.absolute as "usb" | "virtio", true);
    })().catch((err) => {
      this.opening = null;
      throw err;
    });
    return this.opening;
  }

  connect(repeat: boolean, frameMs = this.deps.settings.frameMs): InputConnection {
    const c = new InputConnection(this, frameMs, repeat, (x) => this.connections.delete(x));
    this.connections.add(c);
    return c;
  }

  onRumble(listener: (r: PadRumble) => void): () => void {
    this.rumbleListeners.add(listener);
    return () => this.rumbleListeners.delete(listener);
  }

  sinks(): SinkReport[] {
    const agent = this.backend.capabilities.gamepad;
    return this.qmp.sinks({
      agent,
      hostUinput: this.deps.hostUinput ?? false,
      pins: this.deps.settings.pins[this.vm],
      agentDevices: agentDeviceNames(this.padDevice, this.hid ? this.agentClasses : []),
    });
  }

  async close(): Promise<void> {
    for (const c of [...this.connections]) await c.end().catch(() => {});
    await this.backend.close();
    this.hidNative?.close();
    this.hidNative = null;
  }
}

/** InputBackend over one hub connection (a stream session's). submit() never throws. */
class HubSessionBackend implements InputBackend {
  readonly name: string;
  private readonly unsubscribe: (() => void) | null;
  private refused = 0;

  constructor(
    private readonly conn: InputConnection,
    private readonly hub: VmInputHub,
    onRumble?: (r: PadRumble) => void,
  ) {
    this.name = `hub:${hub.backend.name}`;
    this.unsubscribe = onRumble ? hub.onRumble(onRumble) : null;
  }
  get capabilities() {
    return this.hub.backend.capabilities;
  }
  async open(): Promise<void> {}
  submit(events: readonly InputEvent[]): void {
    try {
      this.conn.apply(events);
    } catch {
      this.refused += events.length; // closed, or the VM is not keeping up (INPUT_BUSY)
    }
  }
  flush(): Promise<void> {
    return this.hub.backend.flush();
  }
  async releaseAll(): Promise<void> {
    if (!this.conn.closed) this.conn.apply([{ kind: "releaseAll" }]);
    await this.hub.backend.flush();
  }
  async close(): Promise<void> {
    this.unsubscribe?.();
    await this.conn.end();
  }
  stats() {
    const s = this.hub.backend.stats();
    return { ...s, dropped: s.dropped + this.refused };
  }
}

const sinkMap = (reports: SinkReport[]): Record<string, string | null> => Object.fromEntries(reports.map((r) => [r.eventClass, r.sink]));

export class VmInputService {
  private readonly hubs = new Map<string, VmInputHub>();
  private readonly api = new Map<string, { conn: InputConnection; timer: ReturnType<typeof setTimeout> | null }>();

  constructor(private readonly deps: VmInputDeps) {}

  table(): KeyTable {
    return loadKeyTable(this.deps.nativePath());
  }

  /** Converts a batch (422 on any bad event) without sending anything. */
  convert(vm: string, events: readonly InjectEvent[], padMask = 0): { ops: InputOp[]; padMask: number } {
    const table = this.table();
    const def = this.deps.settings.layouts[vm] ?? "us";
    return convertBatch(events, { table, padMask, layout: (name) => loadLayout(name ?? def, table, this.deps.settings.keymapDir) });
  }

  /** The VM's hub, its sinks open. 409 when the VM has no QMP socket (not running). */
  async hub(vm: string): Promise<VmInputHub> {
    const socketPath = vmQmpSocket(this.deps.qmpDir, vm);
    let hub = this.hubs.get(vm);
    if (!hub) {
      if (!existsSync(socketPath))
        throw new AppError("VM_INPUT_UNAVAILABLE", `VM ${vm} has no QMP socket at ${socketPath}: it is not running, or was defined without one`, { status: 409 });
      hub = new VmInputHub(vm, socketPath, this.deps);
      this.hubs.set(vm, hub);
    }
    try {
      await hub.open();
    } catch (err) {
      this.hubs.delete(vm);
      await hub.close().catch(() => {});
      throw err;
    }
    return hub;
  }

  /** POST inject-input: the whole batch converts first, then goes out in order. */
  async inject(vm: string, events: readonly InjectEvent[]): Promise<InjectResult> {
    const held = this.api.get(vm);
    const { ops, padMask } = this.convert(vm, events, held?.conn.padMask ?? 0);
    const hub = await this.hub(vm);
    let entry = this.api.get(vm);
    if (!entry || entry.conn.closed) {
      entry = { conn: hub.connect(this.deps.settings.keyRepeat === "host"), timer: null };
      this.api.set(vm, entry);
    }
    const { conn } = entry;
    // now and then, learn whether a guest driver took the keyboard over (routing, pacing)
    if (Date.now() - hub.probedAt > DEVICE_REFRESH_MS) {
      hub.probedAt = Date.now();
      await hub.qmp.refreshDevices().catch(() => {});
    }
    conn.padMask = padMask;
    conn.apply(ops);
    conn.flushMotion();
    await hub.backend.flush();
    // a client that vanished with keys down: released after a quiet while
    if (entry.timer) clearTimeout(entry.timer);
    entry.timer = conn.holding().length ? setTimeout(() => void this.releaseApi(vm), API_IDLE_RELEASE_MS) : null;
    entry.timer?.unref?.();
    return { accepted: events.length, sinks: sinkMap(hub.sinks()) };
  }

  /** A new connection (a WebSocket) to the VM's input. */
  async connect(vm: string, opts: { frameMs?: number } = {}): Promise<{ conn: InputConnection; hub: VmInputHub }> {
    const hub = await this.hub(vm);
    return { conn: hub.connect(this.deps.settings.keyRepeat === "host", opts.frameMs), hub };
  }

  /**
   * A stream session's input backend on the VM's hub: the session shares the hub's QMP
   * connection with the API and WebSockets, and its end releases what it holds. No motion
   * delay (the QMP backend still merges motion queued behind a command in flight).
   */
  async sessionBackend(vm: string, onRumble?: (r: PadRumble) => void): Promise<InputBackend> {
    const { conn, hub } = await this.connect(vm, { frameMs: 0 });
    return new HubSessionBackend(conn, hub, onRumble);
  }

  async probe(vm: string): Promise<{ vm: string; qemu: string | null; sinks: SinkReport[] }> {
    const hub = await this.hub(vm);
    await hub.qmp.refreshDevices();
    return { vm, qemu: hub.qmp.qemuVersion, sinks: hub.sinks() };
  }

  async releaseApi(vm: string): Promise<void> {
    const entry = this.api.get(vm);
    if (!entry) return;
    this.api.delete(vm);
    if (entry.timer) clearTimeout(entry.timer);
    await entry.conn.end();
  }

  async close(): Promise<void> {
    for (const vm of [...this.api.keys()]) await this.releaseApi(vm).catch(() => {});
    for (const hub of this.hubs.values()) await hub.close().catch(() => {});
    this.hubs.clear();
  }
}

function keyBytesOf(deps: VmInputDeps): ReadonlyMap<string, number> | undefined {
  try {
    const table = loadKeyTable(deps.nativePath());
    return new Map(table.rows.flatMap((r) => (r.qcode ? [[r.qcode, r.set1.make.split(" ").length] as const] : [])));
  } catch {
    return undefined;
  }
}

function clamp16(v: number): number {
  return Math.max(-32768, Math.min(32767, v));
}
