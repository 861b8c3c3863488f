/**
 * Virtual HID devices inside a Linux guest through /dev/uhid: one file descriptor per
 * device, struct uhid_event written and read with node:fs (linux/uhid.h, packed, no
 * ioctls). The kernel's HID drivers bind to the device as to real hardware (hid-generic,
 * or hid-playstation for a DualSense identity, which adds motion sensors and a touchpad),
 * so the guest sees the identity the host chose.
 *
 * The device answers the kernel's GET_REPORT from the feature reports the host gave at
 * creation, accepts SET_REPORT, and passes output reports (LEDs, rumble) to a listener.
 * Every device is destroyed when the host's session ends (HidHub.destroyAll).
 */
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readlinkSync, readSync, writeSync, constants as fsc } from "node:fs";
import { basename, join } from "node:path";
import { HID_BUSES, MAX_HID_BYTES, type HidCreate, type HidCreated } from "../guest/hid-model.ts";
import { GuestCommandError } from "./os.ts";

export const UHID_PATH = "/dev/uhid";
/** Where the kernel puts the HID devices uhid creates. */
export const UHID_SYSFS = "/sys/devices/virtual/misc/uhid";

// linux/uhid.h
const UHID_DESTROY = 1;
const UHID_START = 2;
const UHID_OPEN = 4;
const UHID_CLOSE = 5;
const UHID_OUTPUT = 6;
const UHID_GET_REPORT = 9;
const UHID_GET_REPORT_REPLY = 10;
const UHID_CREATE2 = 11;
const UHID_INPUT2 = 12;
const UHID_SET_REPORT = 13;
const UHID_SET_REPORT_REPLY = 14;
const UHID_FEATURE_REPORT = 0;
/** sizeof(struct uhid_event): u32 type + the largest member (uhid_create2_req, 4372 bytes). */
export const UHID_EVENT_SIZE = 4376;
const EIO = 5;
/** Linux O_CLOEXEC (not in node:fs constants): apps the agent launches never inherit a device. */
const O_CLOEXEC = 0o2000000;
/** How often a device's fd is read for the kernel's requests (GET_REPORT must be answered within 5 s). */
const POLL_MS = 4;
/** How long hid_create waits for the guest's HID driver to bind and make its input devices. */
const BIND_WAIT_MS = 10_000;
/** The driver is taken to be done once its input devices stayed the same this long. */
const SETTLE_MS = 200;

/** struct uhid_event of type UHID_CREATE2. */
export function encodeCreate2(req: { name: string; uniq: string; bus: number; vendor: number; product: number; version: number; descriptor: Uint8Array }): Buffer {
  if (req.descriptor.length < 1 || req.descriptor.length > MAX_HID_BYTES) throw new RangeError(`a report descriptor is 1..${MAX_HID_BYTES} bytes`);
  const b = Buffer.alloc(UHID_EVENT_SIZE);
  b.writeUInt32LE(UHID_CREATE2, 0);
  b.write(req.name.slice(0, 127), 4, 127, "utf8");
  b.write("neuron-agent", 132, 63, "latin1");
  b.write(req.uniq.slice(0, 63), 196, 63, "latin1");
  b.writeUInt16LE(req.descriptor.length, 260);
  b.writeUInt16LE(req.bus, 262);
  b.writeUInt32LE(req.vendor, 264);
  b.writeUInt32LE(req.product, 268);
  b.writeUInt32LE(req.version, 272);
  b.writeUInt32LE(0, 276);
  b.set(req.descriptor, 280);
  return b;
}

/** struct uhid_event of type UHID_INPUT2, cut to the bytes used (the kernel zeroes the rest). */
export function encodeInput2(report: Uint8Array): Buffer {
  if (report.length < 1 || report.length > MAX_HID_BYTES) throw new RangeError(`a report is 1..${MAX_HID_BYTES} bytes`);
  const b = Buffer.alloc(6 + report.length);
  b.writeUInt32LE(UHID_INPUT2, 0);
  b.writeUInt16LE(report.length, 4);
  b.set(report, 6);
  return b;
}

export type HidOutputListener = (id: number, data: Uint8Array) => void;

/** One uhid device. */
export class UhidDevice {
  private fd: number | null;
  private readonly timer: ReturnType<typeof setInterval>;
  private readonly rbuf = Buffer.alloc(UHID_EVENT_SIZE);
  started = false;
  opened = false;

  constructor(
    fd: number,
    readonly id: number,
    private readonly features: ReadonlyMap<number, Uint8Array>,
    private readonly onOutput: HidOutputListener | null,
  ) {
    this.fd = fd;
    this.timer = setInterval(() => this.poll(), POLL_MS);
    this.timer.unref?.();
  }

  get alive(): boolean {
    return this.fd !== null;
  }

  input(reports: readonly Uint8Array[]): void {
    if (this.fd === null) throw new GuestCommandError("HID_NOT_CREATED", `HID device ${this.id} is gone`);
    for (const r of reports) writeSync(this.fd, encodeInput2(r));
  }

  destroy(): void {
    clearInterval(this.timer);
    if (this.fd === null) return;
    const fd = this.fd;
    this.fd = null;
    try {
      const ev = Buffer.alloc(4);
      ev.writeUInt32LE(UHID_DESTROY, 0);
      writeSync(fd, ev);
    } catch {
      // closing destroys the device as well
    } finally {
      closeSync(fd);
    }
  }

  /** Serves what the kernel asks of the device (all pending requests). */
  poll(): void {
    for (let round = 0; round < 32 && this.fd !== null; round++) {
      let n: number;
      try {
        n = readSync(this.fd, this.rbuf, 0, this.rbuf.length, null);
      } catch {
        return; // EAGAIN: nothing pending
      }
      if (n < 4) return;
      this.event(this.rbuf.subarray(0, n));
    }
  }

  private event(ev: Buffer): void {
    const fd = this.fd;
    if (fd === null) return;
    switch (ev.readUInt32LE(0)) {
      case UHID_START:
        this.started = true;
        break;
      case UHID_OPEN:
        this.opened = true;
        break;
      case UHID_CLOSE:
        this.opened = false;
        break;
      case UHID_OUTPUT: {
        const size = Math.min(ev.readUInt16LE(4 + MAX_HID_BYTES), MAX_HID_BYTES);
        this.onOutput?.(this.id, new Uint8Array(ev.subarray(4, 4 + size)));
        break;
      }
      case UHID_GET_REPORT: {
        const reqId = ev.readUInt32LE(4);
        const rnum = ev[8]!;
        const rtype = ev[9]!;
        const data = rtype === UHID_FEATURE_REPORT ? this.features.get(rnum) : undefined;
        const reply = Buffer.alloc(12 + (data?.length ?? 0));
        reply.writeUInt32LE(UHID_GET_REPORT_REPLY, 0);
        reply.writeUInt32LE(reqId, 4);
        reply.writeUInt16LE(data ? 0 : EIO, 8);
        reply.writeUInt16LE(data?.length ?? 0, 10);
        if (data) reply.set(data, 12);
        writeSync(fd, reply);
        break;
      }
      case UHID_SET_REPORT: {
        const reply = Buffer.alloc(10);
        reply.writeUInt32LE(UHID_SET_REPORT_REPLY, 0);
        reply.writeUInt32LE(ev.readUInt32LE(4), 4);
        reply.writeUInt16LE(0, 8);
        writeSync(fd, reply);
        break;
      }
    }
  }
}

/** The HID devices a driver can make. */
export interface HidDriver {
  readonly name: string;
  /** Why this guest cannot create HID devices, or null when it can. */
  unavailable(): string | null;
  create(req: HidCreate, onOutput: HidOutputListener | null): Promise<{ device: UhidDevice; created: HidCreated }>;
}

const readText = (p: string): string | null => {
  try {
    return readFileSync(p, "utf8").trim();
  } catch {
    return null;
  }
};

/** The HID devices under the uhid misc device (their sysfs names, e.g. 0003:054C:0CE6.0004). */
function hidDevices(root: string): Set<string> {
  try {
    return new Set(readdirSync(root).filter((n) => /^[0-9A-F]{4}:[0-9A-F]{4}:[0-9A-F]{4}\.[0-9A-F]+$/.test(n)));
  } catch {
    return new Set();
  }
}

/** The evdev nodes of one HID device (input/inputN/eventM), with their names. */
function hidInputs(dir: string): { node: string; name: string }[] {
  const out: { node: string; name: string }[] = [];
  let inputs: string[] = [];
  try {
    inputs = readdirSync(join(dir, "input")).filter((n) => /^input\d+$/.test(n));
  } catch {
    return out;
  }
  for (const i of inputs.sort((a, b) => Number(a.slice(5)) - Number(b.slice(5)))) {
    let ev: string | undefined;
    try {
      ev = readdirSync(join(dir, "input", i)).find((n) => /^event\d+$/.test(n));
    } catch {
      continue;
    }
    if (ev) out.push({ node: `/dev/input/${ev}`, name: (readText(join(dir, "input", i, "name")) ?? "").slice(0, 256) });
  }
  return out;
}

export class UhidDriver implements HidDriver {
  readonly name = "uhid";
  /** Creations run one at a time: the new device is told apart in sysfs by what appeared. */
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly path = UHID_PATH,
    private readonly sysfs = UHID_SYSFS,
  ) {}

  unavailable(): string | null {
    if (process.platform !== "linux") return "uhid exists on Linux only";
    if (!existsSync(this.path)) return `${this.path} is missing (load the uhid kernel module)`;
    return null;
  }

  create(req: HidCreate, onOutput: HidOutputListener | null): Promise<{ device: UhidDevice; created: HidCreated }> {
    const run = this.chain.then(() => this.createNow(req, onOutput));
    this.chain = run.catch(() => {});
    return run;
  }

  private async createNow(req: HidCreate, onOutput: HidOutputListener | null): Promise<{ device: UhidDevice; created: HidCreated }> {
    const descriptor = new Uint8Array(Buffer.from(req.descriptor, "base64"));
    const features = new Map<number, Uint8Array>();
    for (const [k, v] of Object.entries(req.features)) {
      const data = new Uint8Array(Buffer.from(v, "base64"));
      if (data[0] !== Number(k)) throw new GuestCommandError("INVALID_ARGUMENT", `feature report ${k} must start with its report ID`);
      features.set(Number(k), data);
    }
    const before = hidDevices(this.sysfs);
    let fd: number;
    try {
      fd = openSync(this.path, fsc.O_RDWR | fsc.O_NONBLOCK | O_CLOEXEC);
    } catch (err) {
      throw new GuestCommandError("HID_UNAVAILABLE", `cannot open ${this.path}: ${(err as Error).message}`);
    }
    try {
      writeSync(fd, encodeCreate2({ name: req.name, uniq: req.uniq, bus: HID_BUSES[req.bus], vendor: req.vendor, product: req.product, version: req.version, descriptor }));
    } catch (err) {
      closeSync(fd);
      throw new GuestCommandError("HID_REFUSED", `the guest kernel refused HID device ${req.id}: ${(err as Error).message}`);
    }
    const device = new UhidDevice(fd, req.id, features, onOutput);
    // The kernel adds the device from a worker, then a driver binds (its sysfs link appears
    // before its probe runs) and makes the input devices: wait until they stop changing.
    let dir: string | null = null;
    let driver: string | null = null;
    let inputs: { node: string; name: string }[] = [];
    let seen = "";
    let stableSince = 0;
    for (const until = Date.now() + BIND_WAIT_MS; Date.now() < until; await Bun.sleep(10)) {
      device.poll();
      if (!dir) {
        const added = [...hidDevices(this.sysfs)].filter((n) => !before.has(n));
        if (added.length) dir = join(this.sysfs, added.sort().at(-1)!);
      }
      if (!dir) continue;
      try {
        driver = basename(readlinkSync(join(dir, "driver")));
      } catch {
        driver = null;
        continue;
      }
      inputs = hidInputs(dir);
      const key = inputs.map((i) => i.node).join(",");
      if (key !== seen || !inputs.length) {
        seen = key;
        stableSince = Date.now();
      } else if (Date.now() - stableSince >= SETTLE_MS) break;
    }
    return { device, created: { id: req.id, driver, inputs: inputs.slice(0, 16) } };
  }
}

/** Windows: virtual HID needs a driver (a VHF or UMDF HID minidriver) this agent does not ship. */
export class HidUnavailableDriver implements HidDriver {
  readonly name = "none";
  constructor(private readonly why: string) {}
  unavailable(): string {
    return this.why;
  }
  create(): Promise<never> {
    return Promise.reject(new GuestCommandError("HID_UNAVAILABLE", this.why));
  }
}

export function defaultHidDriver(): HidDriver {
  return process.platform === "linux"
    ? new UhidDriver()
    : new HidUnavailableDriver("virtual HID devices need a HID minidriver on Windows, which this agent build does not include (keyboard and mouse go through the VM's own devices)");
}

/** The host session's HID devices, by the ids the host gave them. */
export class HidHub {
  private readonly devices = new Map<number, UhidDevice>();
  /** Bumped by destroyAll: a creation that straddles a session's end is undone. */
  private generation = 0;

  constructor(
    private readonly driver: HidDriver,
    /** Output reports (LEDs, rumble) of the devices; the agent server sends them to the host. */
    public onOutput: HidOutputListener | null = null,
  ) {}

  get count(): number {
    return this.devices.size;
  }

  /** Creates device `id`; an id in use is destroyed first (the host starts it over). */
  async create(req: HidCreate): Promise<HidCreated> {
    const why = this.driver.unavailable();
    if (why) throw new GuestCommandError("HID_UNAVAILABLE", why);
    this.destroy(req.id);
    const gen = this.generation;
    const { device, created } = await this.driver.create(req, (id, data) => this.onOutput?.(id, data));
    // a session that ended while the kernel was binding takes its device with it
    if (gen !== this.generation) {
      device.destroy();
      throw new GuestCommandError("HID_NOT_CREATED", `the session ended while HID device ${req.id} was created`);
    }
    this.devices.get(req.id)?.destroy();
    this.devices.set(req.id, device);
    return created;
  }

  input(id: number, reports: readonly Uint8Array[]): void {
    const d = this.devices.get(id);
    if (!d) throw new GuestCommandError("HID_NOT_CREATED", `HID device ${id} is not created`);
    d.input(reports);
  }

  /** Destroying an absent device is not an error. */
  destroy(id: number): void {
    const d = this.devices.get(id);
    if (!d) return;
    this.devices.delete(id);
    d.destroy();
  }

  destroyAll(): void {
    this.generation++;
    for (const id of [...this.devices.keys()]) this.destroy(id);
  }
}
