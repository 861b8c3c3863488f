/**
 * Input sinks: the devices a VM's input can arrive through, which one serves each event
 * class, why, and how native it looks to the guest (stealth).
 *
 * QEMU routes every QMP input event to one handler per class: the most recently
 * activated device that takes it. A USB keyboard activates when QEMU creates it, a virtio
 * keyboard when the guest's driver starts it (DRIVER_OK), PS/2 never — so PS/2 serves the
 * firmware, the boot manager and a guest without drivers; virtio takes over once its
 * driver runs. For pointers QEMU says which mouse is current (query-mice).
 */
export type SinkName = "ps2" | "usb" | "virtio" | "agent" | "host-uinput";
export type EventClass = "keyboard" | "pointer" | "absolute" | "gamepad";
export const EVENT_CLASSES: readonly EventClass[] = ["keyboard", "pointer", "absolute", "gamepad"];

/**
 * How native a sink looks to the guest, 0..3:
 * 3 indistinguishable from real hardware; 2 a device whose identity we choose;
 * 1 an emulated device with QEMU's identity; 0 paravirtual (needs a VM driver).
 */
export const SINK_STEALTH: Readonly<Record<SinkName, { level: number; note: string }>> = {
  ps2: { level: 3, note: "i8042 keyboard/mouse: what every PC firmware and OS knows, no vendor string" },
  usb: { level: 1, note: "USB HID with QEMU's identity (vendor 0627, \"QEMU USB Keyboard\")" },
  virtio: { level: 0, note: "paravirtual virtio-input (\"QEMU Virtio Keyboard\"): needs a virtio driver" },
  agent: { level: 2, note: "a uhid/uinput device the guest agent creates, with the identity we give it" },
  "host-uinput": { level: 2, note: "a host uinput device passed to the VM as evdev" },
};

/**
 * Keys a QEMU keyboard does not deliver as themselves (evdev codes; QEMU 7.2 into Linux 6.1,
 * measured key by key by test/input/guest-keys.test.ts). The QMP backend never sends them to
 * that device: some arrive as another key (usb-kbd: keypad = as F13, keypad comma as right
 * Meta), the rest are dropped (usb-kbd has no consumer page; neither usb-kbd nor QEMU's PS/2
 * passes the Korean Hangeul/Hanja keys).
 */
export const SINK_KEY_GAPS: Readonly<Record<"ps2" | "usb" | "virtio", ReadonlySet<number>>> = {
  ps2: new Set([122, 123]),
  usb: new Set([117, 121, 122, 123, 128, 140, 142, 143, 155, 156, 157, 158, 159, 163, 164, 165, 166, 172, 173, 226]),
  virtio: new Set(),
};

/** The input devices a running QEMU has, as QMP reports them. */
export interface QemuInputDevices {
  /** query-mice: index, name, current, absolute. */
  mice: { index: number; name: string; current: boolean; absolute: boolean }[];
  /** Keyboards by kind; virtio ones with whether their guest driver runs. */
  keyboards: { kind: "ps2" | "usb" | "virtio"; id: string; driverReady?: boolean }[];
}

export interface SinkReport {
  eventClass: EventClass;
  /** Null: nothing can serve this class. */
  sink: SinkName | null;
  /** The device or path behind the sink ("QEMU Virtio Tablet", the QOM id, "agent"). */
  device: string | null;
  stealth: number;
  why: string;
  /** Every sink that could serve this class on this VM. */
  available: SinkName[];
  /** The sink config pins for this class, if any (and whether it is honoured). */
  pinned?: { sink: SinkName; honoured: boolean };
}

export type SinkPins = Partial<Record<EventClass, SinkName>>;

/** The pad the guest agent makes (config input.padDevice). */
export type PadDevice = "uinput" | "xbox" | "dualsense" | "auto";

/** What the agent's device is for each class it serves (the device column of the report). */
export type AgentDevices = Partial<Record<EventClass, string>>;

export function agentDeviceNames(pad: PadDevice, hidClasses: readonly ("keyboard" | "pointer" | "absolute")[]): AgentDevices {
  const out: AgentDevices = {
    gamepad:
      pad === "uinput"
        ? "uinput Xbox 360 pad (045e:028e)"
        : pad === "xbox"
          ? "uhid Xbox-like pad (045e:028e)"
          : pad === "dualsense"
            ? "uhid DualSense (054c:0ce6, motion sensors, touchpad)"
            : "per controller: uhid DualSense for a PlayStation one, else uinput Xbox 360 pad",
  };
  if (hidClasses.includes("keyboard")) out.keyboard = "uhid NeuronOS Keyboard (NKRO)";
  if (hidClasses.includes("pointer")) out.pointer = "uhid NeuronOS Mouse";
  if (hidClasses.includes("absolute")) out.absolute = "uhid NeuronOS Tablet";
  return out;
}

export function mouseKind(name: string): "ps2" | "usb" | "virtio" {
  if (/virtio/i.test(name)) return "virtio";
  if (/PS\/2/i.test(name)) return "ps2";
  return "usb";
}

function report(eventClass: EventClass, sink: SinkName | null, device: string | null, why: string, available: SinkName[], pin?: SinkName): SinkReport {
  const r: SinkReport = { eventClass, sink, device, stealth: sink ? SINK_STEALTH[sink].level : 0, why, available };
  if (pin) r.pinned = { sink: pin, honoured: pin === sink };
  return r;
}

/** Which sink serves each event class, given the QEMU devices and what else is reachable. */
export function chooseSinks(devs: QemuInputDevices, opts: { agent: boolean; hostUinput: boolean; pins?: SinkPins; agentDevices?: AgentDevices }): SinkReport[] {
  const pins = opts.pins ?? {};
  const out: SinkReport[] = [];
  const agentDev = opts.agent ? (opts.agentDevices ?? {}) : {};
  /** A class pinned to the agent, whose uhid device the hub routes to. */
  const agentPinned = (cls: EventClass, kinds: SinkName[]): SinkReport | null => {
    const device = agentDev[cls];
    if (pins[cls] !== "agent" || !device) return null;
    return report(cls, "agent", device, "pinned in config: a uhid device the guest agent creates, with the HID identity we give it", [...kinds, "agent"], "agent");
  };

  const kbKinds = [...new Set(devs.keyboards.map((k) => k.kind))];
  const readyVirtio = devs.keyboards.find((k) => k.kind === "virtio" && k.driverReady);
  const usbKbd = devs.keyboards.find((k) => k.kind === "usb");
  const ps2Kbd = devs.keyboards.find((k) => k.kind === "ps2");
  let kb: SinkReport;
  const kbAgent = agentPinned("keyboard", kbKinds);
  if (kbAgent) kb = kbAgent;
  else if (readyVirtio) kb = report("keyboard", "virtio", readyVirtio.id, "the guest's virtio-input driver runs (DRIVER_OK): QEMU routes keys to the virtio keyboard", kbKinds, pins.keyboard);
  else if (usbKbd) kb = report("keyboard", "usb", usbKbd.id, "QEMU activates the USB keyboard when it creates it; no virtio keyboard driver runs", kbKinds, pins.keyboard);
  else if (ps2Kbd) kb = report("keyboard", "ps2", ps2Kbd.id, "no virtio or USB keyboard is active: keys go to the i8042 (firmware, boot manager, driverless guests)", kbKinds, pins.keyboard);
  else kb = report("keyboard", null, null, "the VM has no keyboard device", kbKinds, pins.keyboard);
  if (kb.pinned && !kb.pinned.honoured) kb.why += `; pinned to ${kb.pinned.sink}, which QEMU does not route keys to while ${kb.sink ?? "nothing"} is active`;
  out.push(kb);

  for (const cls of ["pointer", "absolute"] as const) {
    const abs = cls === "absolute";
    const cands = devs.mice.filter((m) => m.absolute === abs);
    const kinds = [...new Set(cands.map((m) => mouseKind(m.name)))];
    const viaAgent = agentPinned(cls, kinds);
    if (viaAgent) {
      out.push(viaAgent);
      continue;
    }
    const pin = pins[cls];
    const pinned = pin ? cands.find((m) => mouseKind(m.name) === pin) : undefined;
    // query-mice walks QEMU's handlers (last activated first) and prepends each, so the list
    // ends with the most recently activated; motion of a kind goes to the first handler that
    // takes it, i.e. the last candidate here
    const cur = pinned ?? cands.find((m) => m.current) ?? cands.at(-1);
    if (!cur) {
      out.push(report(cls, null, null, abs ? "the VM has no absolute pointer (usb-tablet or virtio-tablet)" : "the VM has no relative mouse", kinds, pin));
      continue;
    }
    const why = pinned
      ? `pinned in config: QEMU is made to route to ${cur.name} (mouse index ${cur.index})`
      : cur.current
        ? `QEMU's current ${abs ? "absolute " : ""}pointer (query-mice)`
        : cands.length > 1
          ? `the ${abs ? "absolute" : "relative"} pointer QEMU activated last: it gets ${abs ? "absolute" : "relative"} motion`
          : `the only ${abs ? "absolute" : "relative"} pointer; QEMU switches to it when it gets ${abs ? "absolute" : "relative"} motion`;
    out.push(report(cls, mouseKind(cur.name), cur.name, why, kinds, pin));
  }

  const padKinds: SinkName[] = [...(opts.agent ? (["agent"] as const) : []), ...(opts.hostUinput ? (["host-uinput"] as const) : [])];
  if (pins.gamepad === "host-uinput" && opts.hostUinput)
    out.push(report("gamepad", "host-uinput", "host uinput Xbox 360 pad via virtio-input-host-pci", "pinned in config: a uinput pad on the host, passed to the VM as evdev (needs the guest's virtio-input driver and a free PCIe hot-plug slot)", padKinds, pins.gamepad));
  else if (opts.agent) {
    const r = report("gamepad", "agent", agentDev.gamepad ?? "agent", "QEMU has no gamepad device: the guest agent creates a virtual pad (uinput/uhid)", padKinds, pins.gamepad);
    if (pins.gamepad === "host-uinput") r.why += "; pinned to host-uinput, but the host has no /dev/uinput";
    out.push(r);
  } else
    out.push(report("gamepad", null, null, `QEMU has no gamepad device and no guest agent answers${opts.hostUinput ? " (pin gamepad to host-uinput to pass a host pad in)" : ""}`, padKinds, pins.gamepad));
  return out;
}
