/**
 * The agent sink's HID side: input events become USB HID input reports (native/hid.h) of
 * virtual devices the guest agent creates through uhid (hid_create / hid_input /
 * hid_destroy, PROTOCOL.md "HID devices"). Devices are created on their first event: a
 * keyboard, a mouse, a tablet, and per controller an Xbox-like or DualSense-like pad (the
 * DualSense adds motion sensors and a touchpad, which uinput cannot give).
 *
 * Order: per device one request is in flight. Keyboard, mouse and tablet reports queue
 * behind it in order (bounded; a full queue drops and counts); a pad keeps only its latest
 * state (latest wins). Device ids: 0 keyboard, 1 mouse, 2 tablet, 16 + n pad n.
 */
import type { HidNative, HidPadState } from "../../ffi/hid.ts";
import { AppError, describeError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { decodeBase64, encodeBase64, MAX_HID_REPORTS, type HidCommand, type HidCreated, type HidOutput } from "../guest/hid-model.ts";

import { emptyStats, type InputBackend, type InputBackendStats, type InputCapabilities } from "./backend.ts";
import { DS_ACCEL_RAW_PER_G, DS_GYRO_RAW_PER_DPS, DS_TOUCH_MAX_X, DS_TOUCH_MAX_Y, hidCreateRequest, type HidDeviceRole } from "./hid-devices.ts";
import type { KeyTable } from "./keymap.ts";
import { HID_PAGE_KEYBOARD } from "./keymap.ts";
import type { InputEvent, MouseButton } from "./model.ts";
import type { PadRumble } from "./agent-backend.ts";

export interface HidLink {
  request(command: HidCommand, data: Record<string, unknown>): Promise<unknown>;
  /** Hears the devices' output reports (hid_output events); returns the unsubscribe. */
  onHidOutput?(listener: (o: HidOutput) => void): () => void;
}

export type HidPadKind = "xbox" | "dualsense";
const KEYBOARD = 0;
const MOUSE = 1;
const TABLET = 2;
const PAD_BASE = 16;
const MAX_PADS = 16;
/** Reports waiting per keyboard/mouse/tablet before new ones are dropped. */
const QUEUE_LIMIT = 1024;
const ABS_MAX = 32767;
const BUTTON_BITS: Record<MouseButton, number> = { left: 1, right: 2, middle: 4, x1: 8, x2: 16 };
const clamp = (v: number, lo: number, hi: number) => Math.max(lo, Math.min(hi, Math.round(v)));
const i16 = (v: number) => clamp(v, -32767, 32767);

/** A device the guest could not create is tried again after this long (on its next event). */
const RETRY_CREATE_MS = 5_000;
const notCreated = (err: unknown): boolean => err instanceof AppError && (err.details as { code?: unknown } | undefined)?.code === "HID_NOT_CREATED";

interface Device {
  role: HidDeviceRole;
  phase: "creating" | "ready" | "failed" | "gone";
  failedAt?: number;
  created: HidCreated | null;
  queue: Uint8Array[];
  pad: HidPadState | null;
  padDirty: boolean;
  busy: boolean;
}

export class AgentHidBackend implements InputBackend {
  readonly name = "agent-hid";
  readonly capabilities: InputCapabilities = {
    keyboard: true,
    relativePointer: true,
    absolutePointer: true,
    wheel: true,
    hwheel: true,
    text: false,
    touch: false,
    gamepad: true,
  };
  private readonly devices = new Map<number, Device>();
  private readonly counters: InputBackendStats = emptyStats();
  private readonly idleWaiters: (() => void)[] = [];
  private readonly held = new Set<number>();
  private buttons = 0;
  /** The pointer device buttons and wheel go to: the one moved last. */
  private pointer: typeof MOUSE | typeof TABLET;
  private absPos = { x: 0, y: 0 };
  private closed = false;
  private unsubscribe: (() => void) | null = null;
  coalesced = 0;

  constructor(
    private readonly opts: {
      link: HidLink;
      hid: HidNative;
      log: Logger;
      pads: HidPadKind;
      keys?: KeyTable;
      /** Where buttons go before any motion: "absolute" when only the tablet is this sink's. */
      pointer?: "relative" | "absolute";
      onRumble?: (r: PadRumble) => void;
    },
  ) {
    this.pointer = opts.pointer === "absolute" ? TABLET : MOUSE;
  }

  async open(): Promise<void> {
    const { link, onRumble } = this.opts;
    if (onRumble && link.onHidOutput && !this.unsubscribe) this.unsubscribe = link.onHidOutput((o) => this.output(o, onRumble));
  }

  /** Reports waiting for the guest (keyboard, mouse, tablet), and how many one device may hold. */
  get queuedReports(): number {
    let n = 0;
    for (const d of this.devices.values()) n = Math.max(n, d.queue.length);
    return n;
  }
  readonly queueCapacity = QUEUE_LIMIT;

  /** The devices created in the guest, by role, with their evdev nodes. */
  created(): { id: number; role: HidDeviceRole; created: HidCreated }[] {
    return [...this.devices].filter(([, d]) => d.phase === "ready" && d.created).map(([id, d]) => ({ id, role: d.role, created: d.created! }));
  }

  /** Destroys every pad whose bit is not in `mask` (a client's active pads). */
  retain(mask: number): void {
    for (const [id, d] of this.devices) if (id >= PAD_BASE && !(mask & (1 << (id - PAD_BASE))) && d.phase !== "gone") this.destroy(id);
  }

  /** Roles for prepare(), from the event classes this sink serves. */
  static rolesOf(classes: readonly ("keyboard" | "pointer" | "absolute")[]): ("keyboard" | "mouse" | "tablet")[] {
    return classes.map((c) => (c === "keyboard" ? "keyboard" : c === "pointer" ? "mouse" : "tablet"));
  }

  /** Creates devices ahead of their first event (a reader can open them first); resolves when done. */
  async prepare(which: readonly ("keyboard" | "mouse" | "tablet" | { pad: number })[]): Promise<{ id: number; role: HidDeviceRole; created: HidCreated }[]> {
    for (const w of which) {
      if (w === "keyboard") this.ensure(KEYBOARD, "keyboard");
      else if (w === "mouse") this.ensure(MOUSE, "mouse");
      else if (w === "tablet") this.ensure(TABLET, "tablet");
      else if (w.pad >= 0 && w.pad < MAX_PADS) this.ensure(PAD_BASE + w.pad, this.opts.pads);
    }
    await this.flush();
    return this.created();
  }

  submit(events: readonly InputEvent[]): void {
    for (const ev of events) {
      this.counters.accepted++;
      if (this.closed) {
        this.counters.dropped++;
        continue;
      }
      switch (ev.kind) {
        case "usageKey":
          if (ev.page !== HID_PAGE_KEYBOARD || ev.usage > 0xe7 || (ev.usage > 0x9f && ev.usage < 0xe0)) this.unsupported(ev.kind);
          else this.key(ev.usage, ev.down);
          break;
        case "key": {
          const row = this.opts.keys?.byVk(ev.vk);
          if (!row || row.hidPage !== HID_PAGE_KEYBOARD) this.counters.unmappedKeys++;
          else this.key(row.hid, ev.down);
          break;
        }
        case "mouseMoveRel":
          this.pointer = MOUSE;
          this.mouse(ev.dx, ev.dy, 0, 0);
          break;
        case "mouseMoveAbs":
          this.pointer = TABLET;
          this.absPos = { x: clamp((ev.x / Math.max(1, ev.width - 1)) * ABS_MAX, 0, ABS_MAX), y: clamp((ev.y / Math.max(1, ev.height - 1)) * ABS_MAX, 0, ABS_MAX) };
          this.tablet(0);
          break;
        case "mouseButton":
          this.buttons = ev.down ? this.buttons | BUTTON_BITS[ev.button] : this.buttons & ~BUTTON_BITS[ev.button];
          if (this.pointer === MOUSE) this.mouse(0, 0, 0, 0);
          else this.tablet(0);
          break;
        case "scroll":
          if (this.pointer === MOUSE) this.mouse(0, 0, ev.amount, 0);
          else this.tablet(Math.trunc(ev.amount / 120));
          break;
        case "hscroll":
          if (this.pointer === MOUSE) this.mouse(0, 0, 0, ev.amount);
          else this.unsupported(ev.kind);
          break;
        case "controllerArrival":
          this.padState(ev.controllerNumber);
          break;
        case "controller": {
          for (const [id, d] of this.devices)
            if (id >= PAD_BASE && !(ev.activeGamepadMask & (1 << (id - PAD_BASE))) && id - PAD_BASE !== ev.controllerNumber && d.phase !== "gone") this.destroy(id);
          const s = this.padState(ev.controllerNumber);
          if (!s) break;
          Object.assign(s, {
            buttons: ev.buttonFlags >>> 0,
            lx: ev.leftStickX,
            ly: ev.leftStickY,
            rx: ev.rightStickX,
            ry: ev.rightStickY,
            lt: clamp(ev.leftTrigger, 0, 255),
            rt: clamp(ev.rightTrigger, 0, 255),
          });
          this.padChanged(ev.controllerNumber);
          break;
        }
        case "controllerMotion": {
          if (this.opts.pads !== "dualsense") {
            this.unsupported(ev.kind);
            break;
          }
          const s = this.padState(ev.controllerNumber);
          if (!s) break;
          // Moonlight: gyro in °/s, accel in m/s²
          const scale = ev.motionType === "gyro" ? DS_GYRO_RAW_PER_DPS : DS_ACCEL_RAW_PER_G / 9.80665;
          const v: [number, number, number] = [i16(ev.x * scale), i16(ev.y * scale), i16(ev.z * scale)];
          if (ev.motionType === "gyro") s.gyro = v;
          else s.accel = v;
          this.padChanged(ev.controllerNumber);
          break;
        }
        case "controllerTouch": {
          if (this.opts.pads !== "dualsense") {
            this.unsupported(ev.kind);
            break;
          }
          const s = this.padState(ev.controllerNumber);
          if (!s) break;
          const id = ev.pointerId & 0x7f;
          const rest = (s.touches ?? []).filter((t) => t.id !== id);
          if (ev.eventType === "down" || ev.eventType === "move")
            rest.push({ id, x: clamp(ev.x * DS_TOUCH_MAX_X, 0, DS_TOUCH_MAX_X), y: clamp(ev.y * DS_TOUCH_MAX_Y, 0, DS_TOUCH_MAX_Y) });
          s.touches = ev.eventType === "cancelAll" ? [] : rest.slice(-2);
          this.padChanged(ev.controllerNumber);
          break;
        }
        default:
          this.unsupported(ev.kind);
      }
    }
  }

  flush(): Promise<void> {
    if (this.idle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  async releaseAll(): Promise<void> {
    if (this.held.size) {
      this.held.clear();
      this.enqueue(KEYBOARD, "keyboard", () => this.opts.hid.keyboardReport("keyboardNkro", []));
    }
    if (this.buttons) {
      this.buttons = 0;
      for (const id of [MOUSE, TABLET]) if (this.devices.has(id)) this.enqueue(id, id === MOUSE ? "mouse" : "tablet", () => (id === MOUSE ? this.opts.hid.mouseReport(0, 0, 0, 0, 0) : this.opts.hid.tabletReport(0, this.absPos.x, this.absPos.y, 0)));
    }
    for (const [id, d] of this.devices) {
      if (id < PAD_BASE || !d.pad) continue;
      d.pad = { buttons: 0, lx: 0, ly: 0, rx: 0, ry: 0, lt: 0, rt: 0, sequence: d.pad.sequence };
      this.padChanged(id - PAD_BASE);
    }
    await this.flush();
  }

  async close(): Promise<void> {
    if (this.closed) return this.flush();
    await this.releaseAll();
    this.closed = true;
    for (const id of [...this.devices.keys()]) this.destroy(id);
    await this.flush();
    this.unsubscribe?.();
    this.unsubscribe = null;
  }

  stats(): InputBackendStats {
    return { ...this.counters, unsupported: { ...this.counters.unsupported } };
  }

  private unsupported(kind: InputEvent["kind"]): void {
    this.counters.unsupported[kind] = (this.counters.unsupported[kind] ?? 0) + 1;
  }

  private key(usage: number, down: boolean): void {
    if (down === this.held.has(usage)) return;
    if (down) this.held.add(usage);
    else this.held.delete(usage);
    const usages = [...this.held];
    this.enqueue(KEYBOARD, "keyboard", () => this.opts.hid.keyboardReport("keyboardNkro", usages));
  }

  private mouse(dx: number, dy: number, wheel: number, pan: number): void {
    const b = this.buttons;
    this.enqueue(MOUSE, "mouse", () => this.opts.hid.mouseReport(b, i16(dx), i16(dy), i16(wheel), i16(pan)));
  }

  private tablet(wheel: number): void {
    const { x, y } = this.absPos;
    const b = this.buttons;
    this.enqueue(TABLET, "tablet", () => this.opts.hid.tabletReport(b, x, y, clamp(wheel, -127, 127)));
  }

  private enqueue(id: number, role: HidDeviceRole, report: () => Uint8Array): void {
    const d = this.ensure(id, role);
    if (d.phase === "failed" || d.phase === "gone" || d.queue.length >= QUEUE_LIMIT) {
      this.counters.dropped++;
      return;
    }
    d.queue.push(report());
    this.pump(id, d);
  }

  private padState(n: number): HidPadState | null {
    if (!(n >= 0 && n < MAX_PADS)) {
      this.counters.dropped++;
      return null;
    }
    const d = this.ensure(PAD_BASE + n, this.opts.pads);
    if (d.phase === "failed") {
      this.counters.dropped++;
      return null;
    }
    d.pad ??= { buttons: 0, lx: 0, ly: 0, rx: 0, ry: 0, lt: 0, rt: 0, sequence: 0 };
    return d.pad;
  }

  private padChanged(n: number): void {
    const id = PAD_BASE + n;
    const d = this.devices.get(id);
    if (!d) return;
    if (d.padDirty) this.coalesced++;
    d.padDirty = true;
    this.pump(id, d);
  }

  private ensure(id: number, role: HidDeviceRole): Device {
    const existing = this.devices.get(id);
    if (existing && existing.phase !== "gone" && !(existing.phase === "failed" && Date.now() - (existing.failedAt ?? 0) >= RETRY_CREATE_MS)) return existing;
    const d: Device = { role, phase: "creating", created: null, queue: [], pad: null, padDirty: false, busy: true };
    this.devices.set(id, d);
    const index = id >= PAD_BASE ? id - PAD_BASE : 0;
    void this.run(async () => {
      try {
        d.created = (await this.opts.link.request("hid_create", { ...hidCreateRequest(this.opts.hid, role, id, index) })) as HidCreated;
        if (d.phase === "creating") d.phase = "ready";
        this.counters.connects++;
      } catch (err) {
        if (d.phase === "creating") {
          d.phase = "failed";
          d.failedAt = Date.now();
        }
        this.counters.dropped += d.queue.length;
        d.queue = [];
        this.opts.log.warn("HID device not created in the guest: its input is dropped", { role, id, error: describeError(err) });
      } finally {
        d.busy = false;
      }
      this.pump(id, d);
    });
    return d;
  }

  private destroy(id: number): void {
    const d = this.devices.get(id);
    if (!d || d.phase === "gone") return;
    const wasCreated = d.phase !== "failed";
    d.phase = "gone";
    this.counters.dropped += d.queue.length;
    d.queue = [];
    d.padDirty = false;
    void this.run(async () => {
      // after the request in flight (a creation finishing, a report)
      while (d.busy) await Bun.sleep(1);
      if (wasCreated) await this.opts.link.request("hid_destroy", { id }).catch((err) => this.opts.log.warn("HID destroy failed", { id, error: describeError(err) }));
      if (this.devices.get(id) === d) this.devices.delete(id);
    });
  }

  private pump(id: number, d: Device): void {
    if (d.busy || d.phase !== "ready") return;
    let reports: Uint8Array[];
    if (id >= PAD_BASE) {
      if (!d.padDirty || !d.pad) return;
      d.padDirty = false;
      const s = d.pad;
      s.sequence = ((s.sequence ?? 0) + 1) & 0xff;
      s.sensorTime = Math.floor(performance.now() * 3000) >>> 0; // 0.33 µs units
      reports = [this.opts.hid.padReport(this.opts.pads, s)];
    } else {
      if (!d.queue.length) return;
      reports = d.queue.splice(0, MAX_HID_REPORTS);
    }
    d.busy = true;
    void this.run(async () => {
      try {
        await this.opts.link.request("hid_input", { id, reports: reports.map(encodeBase64) });
        this.counters.delivered += reports.length;
        this.counters.batches++;
      } catch (err) {
        this.counters.refusedBatches++;
        this.opts.log.debug("HID reports refused", { id, error: describeError(err) });
        // the guest lost the device (its agent restarted, the session was re-established): made again on the next event
        if (notCreated(err) && d.phase === "ready" && this.devices.get(id) === d) this.devices.delete(id);
      } finally {
        d.busy = false;
      }
      this.pump(id, d);
    });
  }

  private pending = 0;
  private async run(fn: () => Promise<void>): Promise<void> {
    this.pending++;
    try {
      await fn();
    } catch (err) {
      this.opts.log.error("HID request failed", { error: describeError(err) });
    } finally {
      this.pending--;
      if (this.idle()) for (const w of this.idleWaiters.splice(0)) w();
    }
  }

  private idle(): boolean {
    if (this.pending > 0) return false;
    for (const d of this.devices.values()) if (d.busy || (d.phase === "ready" && (d.queue.length || d.padDirty))) return false;
    return true;
  }

  /** A pad's output report → the client's rumble (Xbox-like: [strong, weak, ...]; DualSense 0x02: motors at 3, 4). */
  private output(o: HidOutput, onRumble: (r: PadRumble) => void): void {
    if (o.id < PAD_BASE || this.devices.get(o.id)?.phase !== "ready") return;
    const b = decodeBase64(o.data);
    const controller = o.id - PAD_BASE;
    if (this.opts.pads === "xbox" && b.length >= 2) onRumble({ controller, lowFreq: b[0]! * 257, highFreq: b[1]! * 257 });
    else if (this.opts.pads === "dualsense" && b[0] === 0x02 && b.length >= 5 && b[1]! & 0x03) onRumble({ controller, lowFreq: b[4]! * 257, highFreq: b[3]! * 257 });
  }
}
