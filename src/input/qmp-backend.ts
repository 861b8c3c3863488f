/**
 * Input backend over QEMU's QMP `input-send-event` (keys by qcode, relative and
 * absolute pointer, buttons, wheel) on a VM's QMP unix socket — the socket of
 * the domain definition or one reached through libvirt's QMP passthrough; the
 * caller passes its path.
 *
 * Delivery: submit() translates at once (held state stays exact) and queues;
 * one command is in flight at a time, so events that arrive together — in the
 * same tick, or while the previous command is outstanding — leave as one
 * command (at most maxBatch events each). Adjacent pointer motions in the queue are merged (relative deltas
 * summed, absolute positions replaced). The queue is bounded.
 *
 * Safety: releaseAll()/close() send key-up / button-up for everything held;
 * after a lost connection the backend reconnects with backoff and releases
 * whatever was held before the loss (a release may have been lost with it).
 */
import { AppError, describeError } from "../errors.ts";
import { silentLogger, type Logger } from "../log.ts";
import { emptyStats, type InputBackend, type InputBackendStats, type InputCapabilities } from "./backend.ts";
import type { InputEvent } from "./model.ts";
import { QmpClient, QmpError } from "./qmp-client.ts";
import { QmpTranslator, type QmpInputEvent } from "./qmp-translate.ts";
import { chooseSinks, SINK_KEY_GAPS, type AgentDevices, type QemuInputDevices, type SinkPins, type SinkReport } from "./sinks.ts";

export interface QmpInputBackendOptions {
  socketPath: string;
  log?: Logger;
  /**
   * Most QMP input events per command (default 31: with its sync, half the guest's queue). QEMU ends each command with one sync, and
   * virtio-input delivers a sync'ed report only if all of it fits the guest's event queue (64
   * entries); a larger report is dropped whole, silently (trace `virtio_input_queue_full`).
   */
  maxBatch?: number;
  /**
   * Pause between two commands of one burst (default 2 ms). QEMU answers a command as soon as the
   * events are queued, not when the guest has taken them: a guest that drains slowly (busy host,
   * TCG) would see the next report overflow its queue. Two default batches fit the queue at once,
   * so the guest gets twice this gap to take each one; a lone batch is never delayed.
   */
  burstGapMs?: number;
  /**
   * Scancode bytes (set 1 make sequence length) per qcode, for pacing PS/2 and USB keyboards;
   * absent: every key counts 2 (an E0 key).
   */
  keyBytes?: ReadonlyMap<string, number>;
  /** Most QMP input events waiting (default 4096); beyond it new events are dropped. */
  maxQueue?: number;
  /** Reconnect after a lost connection (default true). */
  reconnect?: boolean;
  reconnectMaxDelayMs?: number;
  commandTimeoutMs?: number;
}

interface SchemaEntry {
  "meta-type"?: string;
  values?: unknown;
  name?: string;
}

const NO_CAPABILITIES: InputCapabilities = {
  keyboard: false,
  relativePointer: false,
  absolutePointer: false,
  wheel: false,
  hwheel: false,
  text: false,
  touch: false,
  gamepad: false,
};

export class QmpInputBackend implements InputBackend {
  readonly name = "qmp";
  capabilities: InputCapabilities = NO_CAPABILITIES;
  private client: QmpClient | null = null;
  private translator: QmpTranslator | null = null;
  private queue: QmpInputEvent[] = [];
  /** Tail entries of the queue that a following motion of the same type may merge into. */
  private motionTail: { type: "rel" | "abs"; x?: QmpInputEvent; y?: QmpInputEvent } | null = null;
  private pumping = false;
  private pumpScheduled = false;
  private waiters: (() => void)[] = [];
  private closing = false;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private reconnectAttempt = 0;
  private readonly counters: InputBackendStats = emptyStats();
  /** The VM's input devices as the last probe found them. */
  devices: QemuInputDevices = { mice: [], keyboards: [] };
  /**
   * Pacing for the keyboard QEMU routes to. PS/2 and USB keyboards queue scancode bytes in
   * QEMU (16 entries) and drop what overflows — a burst of taps loses keys, often the
   * releases. The USB keyboard hands the guest one queued byte per poll (~10 ms). So a
   * command carries at most `budget` scancode bytes of keys, and the next waits
   * `msPerByte` per byte sent; virtio needs no pacing.
   */
  keyPacing: { budget: number; msPerByte: number } | null = null;
  private keyboardSink: "ps2" | "usb" | "virtio" | null = null;
  private readonly log: Logger;
  private readonly maxBatch: number;
  private readonly burstGapMs: number;
  private readonly maxQueue: number;

  constructor(private readonly opts: QmpInputBackendOptions) {
    this.log = (opts.log ?? silentLogger).child({ backend: "qmp" });
    this.maxBatch = opts.maxBatch ?? 31;
    this.burstGapMs = opts.burstGapMs ?? 2;
    this.maxQueue = opts.maxQueue ?? 4096;
  }

  /** QMP events waiting to be sent, and the most that may wait. */
  get queuedEvents(): number {
    return this.queue.length;
  }
  get queueCapacity(): number {
    return this.maxQueue;
  }

  get connected(): boolean {
    return this.client?.connected ?? false;
  }

  /** The QEMU version from the QMP greeting ("7.2.22"), once connected. */
  get qemuVersion(): string | null {
    const v = this.client?.version;
    return v ? `${v.major}.${v.minor}.${v.micro}` : null;
  }

  async open(): Promise<void> {
    if (this.closing) throw new AppError("INPUT_BACKEND_CLOSED", "input backend is closed", { status: 409 });
    await this.connectOnce();
  }

  submit(events: readonly InputEvent[]): void {
    for (const ev of events) {
      this.counters.accepted++;
      const t = this.translator;
      if (!t || !this.connected) {
        this.counters.dropped++;
        continue;
      }
      if (ev.kind === "usageKey" && this.keyboardSink && undeliverable(this.keyboardSink, ev.evdev)) {
        // the device would drop it or send another key: never send it
        this.counters.unmappedKeys++;
        continue;
      }
      const r = t.translate(ev);
      if (!r.ok) {
        if (r.why === "unmapped") this.counters.unmappedKeys++;
        else this.counters.unsupported[ev.kind] = (this.counters.unsupported[ev.kind] ?? 0) + 1;
        continue;
      }
      this.enqueue(r.events, ev.kind !== "key" && ev.kind !== "usageKey" && ev.kind !== "mouseButton");
    }
    this.schedulePump();
  }

  flush(): Promise<void> {
    if (!this.pumping && !this.pumpScheduled && (this.queue.length === 0 || !this.connected)) {
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  async releaseAll(): Promise<void> {
    const t = this.translator;
    // While disconnected the held state is kept: the reconnect releases it.
    if (!t || !this.connected) return;
    const ups = t.releaseAll();
    if (ups.length > 0) {
      this.enqueue(ups, false, true);
      this.schedulePump();
    }
    await this.flush();
  }

  async close(): Promise<void> {
    if (this.closing) return;
    if (this.connected) await this.releaseAll().catch(() => {});
    this.closing = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    this.client?.close();
    this.client = null;
    this.dropQueue();
  }

  stats(): InputBackendStats {
    return { ...this.counters, unsupported: { ...this.counters.unsupported } };
  }

  /**
   * Probes the VM's input devices again (a guest driver may have started since the connect:
   * QEMU then routes keys elsewhere) and re-derives the keyboard sink and its pacing.
   */
  async refreshDevices(): Promise<void> {
    const client = this.client;
    if (!client?.connected) return;
    const mice = (await client.execute("query-mice")) as { absolute?: boolean; index?: number; name?: string; current?: boolean }[];
    this.devices = await probeDevices(client, mice);
    this.deriveKeyboardSink();
  }

  private deriveKeyboardSink(): void {
    this.keyboardSink = chooseSinks(this.devices, { agent: false, hostUinput: false })[0]?.sink as "ps2" | "usb" | "virtio" | null;
    this.keyPacing = this.keyboardSink === "ps2" ? PS2_PACING : this.keyboardSink === "usb" ? USB_PACING : null;
  }

  /** One QMP command on this backend's connection (device hot-plug for the host-uinput sink). */
  async command(name: string, args?: Record<string, unknown>): Promise<unknown> {
    const client = this.client;
    if (!client?.connected) throw new AppError("VM_INPUT_UNAVAILABLE", "the VM's QMP monitor is not connected", { status: 503 });
    return client.execute(name, args);
  }

  /** Which sink serves each event class (QMP's view; gamepads need the agent). */
  sinks(opts: { agent?: boolean; hostUinput?: boolean; pins?: SinkPins; agentDevices?: AgentDevices } = {}): SinkReport[] {
    return chooseSinks(this.devices, { agent: opts.agent ?? false, hostUinput: opts.hostUinput ?? false, pins: opts.pins, agentDevices: opts.agentDevices });
  }

  /**
   * Makes QEMU route pointer motion to the mouse of that kind (HMP `mouse_set`), for a sink
   * pinned in config. False when the VM has no such pointer.
   */
  async selectPointer(kind: "ps2" | "usb" | "virtio", absolute: boolean): Promise<boolean> {
    const client = this.client;
    if (!client) return false;
    const m = this.devices.mice.find((x) => x.absolute === absolute && mouseKindOf(x.name) === kind);
    if (!m) return false;
    await client.execute("human-monitor-command", { "command-line": `mouse_set ${m.index}` });
    for (const x of this.devices.mice) x.current = x === m;
    return true;
  }

  /** Keys and buttons currently held, by QEMU name. */
  held(): { keys: string[]; buttons: string[] } {
    return this.translator?.held() ?? { keys: [], buttons: [] };
  }

  private async connectOnce(): Promise<void> {
    const client = new QmpClient({ socketPath: this.opts.socketPath, timeoutMs: this.opts.commandTimeoutMs });
    try {
      await client.connect();
      await this.probe(client);
    } catch (err) {
      client.close();
      if (err instanceof AppError && err.errorCode === "INPUT_BACKEND_UNSUPPORTED") throw err;
      throw new AppError("INPUT_BACKEND_UNAVAILABLE", `cannot use QMP socket ${this.opts.socketPath}: ${describeError(err)}`, {
        status: 503,
        cause: err,
      });
    }
    if (this.closing) {
      client.close();
      return;
    }
    // Whatever was held before a reconnect may have lost its release: release it now.
    const stale = this.translator?.releaseAll() ?? [];
    this.client = client;
    this.counters.connects++;
    this.reconnectAttempt = 0;
    client.onClose((err) => this.onDisconnect(client, err));
    if (!client.connected) {
      // lost between the probe and here: the close listeners already ran
      this.onDisconnect(client, new AppError("QMP_DISCONNECTED", "QMP socket closed", { status: 502 }));
      return;
    }
    if (stale.length > 0) {
      this.enqueue(stale, false, true);
      this.schedulePump();
    }
  }

  private async probe(client: QmpClient): Promise<void> {
    const commands = (await client.execute("query-commands")) as { name: string }[];
    if (!commands.some((c) => c.name === "input-send-event")) {
      throw new AppError("INPUT_BACKEND_UNSUPPORTED", "this QEMU has no input-send-event command", { status: 503 });
    }
    const schema = (await client.execute("query-qmp-schema")) as SchemaEntry[];
    const enumWith = (member: string): Set<string> => {
      for (const e of schema) {
        if (e["meta-type"] === "enum" && Array.isArray(e.values) && e.values.includes(member)) {
          return new Set(e.values.filter((v): v is string => typeof v === "string"));
        }
      }
      return new Set();
    };
    const qcodes = enumWith("kp_add");
    const buttons = enumWith("wheel-up");
    const mice = (await client.execute("query-mice")) as { absolute?: boolean; index?: number; name?: string; current?: boolean }[];
    this.devices = await probeDevices(client, mice);
    this.deriveKeyboardSink();
    const absolute = mice.some((m) => m.absolute === true);
    const relative = mice.some((m) => m.absolute === false);
    const support = { qcodes, buttons, absolute };
    if (this.translator === null) this.translator = new QmpTranslator(support);
    else this.translator.updateSupport(support);
    this.capabilities = {
      keyboard: qcodes.size > 0,
      relativePointer: relative,
      absolutePointer: absolute,
      wheel: buttons.has("wheel-up"),
      // QMP accepts wheel-left/right here; whether the guest gets them depends on the pointer
      // device (QEMU 7.2's virtio mouse/tablet drop them, measured).
      hwheel: buttons.has("wheel-left"),
      text: qcodes.size > 0,
      touch: absolute,
      gamepad: false,
    };
    this.log.info("QMP input backend ready", {
      socket: this.opts.socketPath,
      qemu: client.version,
      capabilities: this.capabilities,
    });
  }

  private enqueue(events: QmpInputEvent[], motion: boolean, priority = false): void {
    if (events.length === 0) return;
    const first = events[0];
    const mergeable =
      motion && first !== undefined && (first.type === "rel" || first.type === "abs") && events.every((e) => e.type === first.type);
    if (mergeable && this.motionTail?.type === first.type) {
      const tail = this.motionTail;
      for (const e of events) {
        if (e.type !== "rel" && e.type !== "abs") continue;
        const have = tail[e.data.axis];
        if (have && (have.type === "rel" || have.type === "abs")) {
          have.data.value = e.type === "rel" ? clampInt32(have.data.value + e.data.value) : e.data.value;
        } else {
          this.queue.push(e);
          tail[e.data.axis] = e;
        }
      }
      return;
    }
    // Releases must never be lost to the bound; other events are dropped when it is reached.
    if (!priority && this.queue.length + events.length > this.maxQueue) {
      this.counters.dropped++;
      return;
    }
    this.queue.push(...events);
    if (mergeable) {
      const tail: { type: "rel" | "abs"; x?: QmpInputEvent; y?: QmpInputEvent } = { type: first.type };
      for (const e of events) if (e.type === "rel" || e.type === "abs") tail[e.data.axis] = e;
      this.motionTail = tail;
    } else {
      this.motionTail = null;
    }
  }

  private schedulePump(): void {
    if (this.pumping || this.pumpScheduled || this.queue.length === 0) return;
    this.pumpScheduled = true;
    queueMicrotask(() => {
      this.pumpScheduled = false;
      void this.pump();
    });
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      let first = true;
      let nextGap = this.burstGapMs;
      while (this.queue.length > 0) {
        if (!first && nextGap > 0) await Bun.sleep(nextGap);
        first = false;
        const client = this.client;
        if (this.queue.length === 0) break;
        if (!client || !client.connected) {
          this.dropQueue();
          break;
        }
        const { batch, bytes } = this.takeBatch();
        nextGap = this.keyPacing && bytes > 0 ? Math.max(this.burstGapMs, bytes * this.keyPacing.msPerByte) : this.burstGapMs;
        this.motionTail = null;
        this.counters.batches++;
        try {
          await client.execute("input-send-event", { events: batch });
          this.counters.delivered += batch.length;
        } catch (err) {
          if (err instanceof QmpError) {
            this.counters.refusedBatches++;
            const n = this.counters.refusedBatches;
            if (n <= 10 || n % 1000 === 0) {
              this.log.warn("QEMU refused input events", { events: batch.length, err: err.message, refusedSoFar: n });
            }
          } else {
            this.counters.dropped += batch.length;
          }
        }
      }
    } finally {
      this.pumping = false;
      if (this.queue.length > 0 && this.connected) this.schedulePump();
      else this.wake();
    }
  }

  /**
   * The next command's events: at most maxBatch, keys up to the pacing budget (one key at
   * least), and never two events of one button: PS/2 and USB pointers report button state per
   * command (sync), so a press and its release in one command would never be seen.
   */
  private takeBatch(): { batch: QmpInputEvent[]; bytes: number } {
    const pacing = this.keyPacing;
    let n = 0;
    let bytes = 0;
    const buttons = new Set<string>();
    while (n < this.queue.length && n < this.maxBatch) {
      const e = this.queue[n]!;
      if (e.type === "btn") {
        if (buttons.has(e.data.button)) break;
        buttons.add(e.data.button);
      }
      if (e.type === "key" && pacing) {
        const cost = this.opts.keyBytes?.get(e.data.key.data) ?? 2;
        if (bytes > 0 && bytes + cost > pacing.budget) break;
        bytes += cost;
      }
      n++;
    }
    return { batch: this.queue.splice(0, Math.max(1, n)), bytes };
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private dropQueue(): void {
    this.counters.dropped += this.queue.length;
    this.queue = [];
    this.motionTail = null;
    if (!this.pumping) this.wake();
  }

  private onDisconnect(client: QmpClient, err: Error): void {
    if (this.client !== client) return;
    this.client = null;
    this.dropQueue();
    if (this.closing || this.opts.reconnect === false) return;
    this.log.warn("QMP connection lost; reconnecting", { err: err.message });
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closing || this.reconnectTimer) return;
    const max = this.opts.reconnectMaxDelayMs ?? 2000;
    const delay = Math.min(max, 50 * 2 ** Math.min(this.reconnectAttempt, 10));
    this.reconnectAttempt++;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (this.closing) return;
      this.connectOnce().catch((e) => {
        this.log.debug("QMP reconnect failed", { err: describeError(e), attempt: this.reconnectAttempt });
        this.scheduleReconnect();
      });
    }, delay);
  }
}

/** PS/2: a 16-byte queue the guest drains by interrupt: a few bytes per command, 5 ms a byte (TCG guests lose bytes at 2). */
const PS2_PACING = { budget: 6, msPerByte: 5 };
/** USB: 16 queued bytes, one taken per guest poll (bInterval 10 ms). */
const USB_PACING = { budget: 8, msPerByte: 10 };

/** Keys a QEMU keyboard cannot deliver, by evdev code (measured with QEMU 7.2, see sinks.ts). */
function undeliverable(sink: "ps2" | "usb" | "virtio", evdev: number): boolean {
  return SINK_KEY_GAPS[sink].has(evdev);
}

function mouseKindOf(name: string): "ps2" | "usb" | "virtio" {
  return /virtio/i.test(name) ? "virtio" : /PS\/2/i.test(name) ? "ps2" : "usb";
}

/** The VM's keyboards (QOM tree, virtio driver state) and pointers (query-mice). Best effort. */
async function probeDevices(client: QmpClient, mice: { absolute?: boolean; index?: number; name?: string; current?: boolean }[]): Promise<QemuInputDevices> {
  const devs: QemuInputDevices = {
    mice: mice.map((m) => ({ index: m.index ?? 0, name: m.name ?? "?", current: m.current === true, absolute: m.absolute === true })),
    keyboards: [],
  };
  // q35/pc machines have an i8042 unless it is turned off; QEMU lists its mouse whenever it exists
  if (devs.mice.some((m) => /PS\/2/i.test(m.name))) devs.keyboards.push({ kind: "ps2", id: "i8042" });
  for (const root of ["/machine/peripheral", "/machine/peripheral-anon"]) {
    let list: { name: string; type: string }[];
    try {
      list = (await client.execute("qom-list", { path: root })) as { name: string; type: string }[];
    } catch {
      continue;
    }
    for (const e of list) {
      const type = /^child<(.+)>$/.exec(e.type)?.[1];
      if (type === "usb-kbd") devs.keyboards.push({ kind: "usb", id: `${root}/${e.name}` });
      else if (type === "virtio-keyboard-pci" || type === "virtio-keyboard-device") {
        const path = `${root}/${e.name}`;
        let driverReady = false;
        try {
          const st = await client.execute("x-query-virtio-status", { path: `${path}/virtio-backend` });
          driverReady = JSON.stringify(st).includes("DRIVER_OK");
        } catch {
          // older QEMU: no virtio status over QMP; assume the driver runs
          driverReady = true;
        }
        devs.keyboards.push({ kind: "virtio", id: path, driverReady });
      }
    }
  }
  return devs;
}

function clampInt32(v: number): number {
  return Math.max(-0x80000000, Math.min(0x7fffffff, v));
}
