/**
 * The host-uinput sink: controllers as uinput pads on the host (the Xbox 360 identity the
 * guest agent's pads have, src/guest-agent/gamepad-uinput.ts), each passed into the VM as
 * evdev through QEMU's virtio-input-host-pci (QMP device_add with the pad's
 * /dev/input/eventN; removed again with device_del). No guest agent is needed; the guest
 * needs its virtio-input driver and a free PCIe hot-plug slot (a pcie-root-port).
 * Needs /dev/uinput on the host; where it is missing the hub never chooses this sink.
 */
import { describeError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { MAX_GAMEPADS, neutralState } from "../guest/gamepad-model.ts";
import { GamepadHub, type GamepadDriver } from "../guest-agent/gamepad.ts";
import { emptyStats, type InputBackend, type InputBackendStats, type InputCapabilities } from "./backend.ts";
import { moonlightToGamepad } from "./gamepad-map.ts";
import type { InputEvent } from "./model.ts";

/** The QMP commands this sink needs (QmpInputBackend.command fits). */
export type QmpCommand = (name: string, args?: Record<string, unknown>) => Promise<unknown>;

export const hostPadDeviceId = (index: number) => `neuron-hostpad${index}`;

export class HostUinputPadBackend implements InputBackend {
  readonly name = "host-uinput";
  readonly capabilities: InputCapabilities = {
    keyboard: false,
    relativePointer: false,
    absolutePointer: false,
    wheel: false,
    hwheel: false,
    text: false,
    touch: false,
    gamepad: true,
  };
  private readonly hub: GamepadHub;
  /** Pads passed into the VM (index → QOM id); a pad that failed is not tried again before its retry time. */
  private readonly plugged = new Map<number, string>();
  private readonly failedAt = new Map<number, number>();
  private readonly counters: InputBackendStats = emptyStats();
  private chain: Promise<void> = Promise.resolve();
  private pending = 0;

  constructor(
    private readonly opts: { driver: GamepadDriver; qmp: QmpCommand; log: Logger },
  ) {
    this.hub = new GamepadHub(opts.driver);
  }

  async open(): Promise<void> {
    const why = this.opts.driver.unavailable();
    if (why) throw new Error(why);
  }

  submit(events: readonly InputEvent[]): void {
    for (const ev of events) {
      this.counters.accepted++;
      if (!("controllerNumber" in ev) || !(ev.controllerNumber >= 0 && ev.controllerNumber < MAX_GAMEPADS)) {
        this.counters.unsupported[ev.kind] = (this.counters.unsupported[ev.kind] ?? 0) + 1;
        continue;
      }
      const index = ev.controllerNumber;
      if (ev.kind === "controllerArrival") this.run(() => this.plug(index));
      else if (ev.kind === "controller") {
        for (const i of [...this.plugged.keys()]) if (!(ev.activeGamepadMask & (1 << i)) && i !== index) this.run(() => this.unplug(i));
        const state = moonlightToGamepad(ev);
        this.run(async () => {
          if (!(await this.plug(index))) return void this.counters.dropped++;
          this.hub.state(state);
          this.counters.delivered++;
          this.counters.batches++;
        });
      } else this.counters.unsupported[ev.kind] = (this.counters.unsupported[ev.kind] ?? 0) + 1;
    }
  }

  flush(): Promise<void> {
    return this.chain;
  }

  async releaseAll(): Promise<void> {
    for (const i of this.plugged.keys()) this.run(async () => this.hub.state(neutralState(i)));
    await this.flush();
  }

  async close(): Promise<void> {
    await this.releaseAll();
    for (const i of [...this.plugged.keys()]) this.run(() => this.unplug(i));
    await this.flush();
  }

  stats(): InputBackendStats {
    return { ...this.counters, unsupported: { ...this.counters.unsupported } };
  }

  /** The host pads passed into the VM: index → QOM id. */
  pads(): Map<number, string> {
    return new Map(this.plugged);
  }

  /** Requests run one after another, in the order submitted. */
  private run(fn: () => Promise<unknown>): void {
    this.pending++;
    this.chain = this.chain
      .then(fn)
      .then(
        () => undefined,
        (err: unknown) => this.opts.log.warn("host-uinput pad request failed", { error: describeError(err) }),
      )
      .finally(() => void this.pending--);
  }

  private async plug(index: number): Promise<boolean> {
    if (this.plugged.has(index)) return true;
    if (Date.now() - (this.failedAt.get(index) ?? -Infinity) < 5_000) return false;
    let device: string;
    try {
      device = this.hub.attach(index, "xbox").device;
    } catch (err) {
      this.failedAt.set(index, Date.now());
      this.opts.log.warn("host uinput pad not created: its input is dropped", { index, error: describeError(err) });
      return false;
    }
    const id = hostPadDeviceId(index);
    try {
      await this.opts.qmp("device_add", { driver: "virtio-input-host-pci", id, evdev: device });
    } catch (err) {
      this.hub.detach(index);
      this.failedAt.set(index, Date.now());
      this.opts.log.warn("host uinput pad not passed to the VM (needs a free PCIe hot-plug slot): its input is dropped", { index, device, error: describeError(err) });
      return false;
    }
    this.plugged.set(index, id);
    this.counters.connects++;
    return true;
  }

  private async unplug(index: number): Promise<void> {
    const id = this.plugged.get(index);
    if (!id) return;
    this.plugged.delete(index);
    try {
      await this.opts.qmp("device_del", { id });
    } finally {
      this.hub.detach(index);
    }
  }
}
