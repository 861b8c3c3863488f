/**
 * Linux virtual gamepads through /dev/uinput: open/write with node:fs, the
 * uinput ioctls through bun:ffi (libc's ioctl). The device reports itself as
 * an Xbox-style pad (BTN_SOUTH.., sticks ABS_X/Y/RX/RY −32768..32767,
 * triggers ABS_Z/RZ 0..255, d-pad ABS_HAT0X/Y).
 */
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, writeSync, constants as fsc } from "node:fs";
import { join } from "node:path";
import { dlopen, FFIType } from "bun:ffi";
import type { GamepadKind } from "../guest/gamepad-model.ts";
import { EV, PAD_AXES, PAD_KEYS, VigemUnavailableDriver, type GamepadDriver, type InputEventTriple, type RumbleListener, type VirtualPad } from "./gamepad.ts";
import { GuestCommandError } from "./os.ts";

export const UINPUT_PATH = "/dev/uinput";

// ioctl numbers: _IOW('U', nr, size) = 1<<30 | size<<16 | 'U'<<8 | nr; _IO('U', nr) = 'U'<<8 | nr.
const iow = (nr: number, size: number) => ((1 << 30) | (size << 16) | (0x55 << 8) | nr) >>> 0;
const UI_DEV_CREATE = 0x5501;
const UI_DEV_DESTROY = 0x5502;
const UINPUT_SETUP_SIZE = 92; // struct input_id (8) + name[80] + u32 ff_effects_max
const UINPUT_ABS_SETUP_SIZE = 28; // u16 code + pad + struct input_absinfo (6 × s32)
const UI_DEV_SETUP = iow(3, UINPUT_SETUP_SIZE);
const UI_ABS_SETUP = iow(4, UINPUT_ABS_SETUP_SIZE);
const UI_SET_EVBIT = iow(100, 4);
const UI_SET_KEYBIT = iow(101, 4);
const UI_SET_ABSBIT = iow(103, 4);
const UI_SET_FFBIT = iow(107, 4);
const iowr = (nr: number, size: number) => ((3 << 30) | (size << 16) | (0x55 << 8) | nr) >>> 0;
/** struct uinput_ff_upload: u32 request_id, s32 retval, struct ff_effect effect (48, at 8), old (48). */
const FF_UPLOAD_SIZE = 104;
/** struct uinput_ff_erase: u32 request_id, s32 retval, u32 effect_id. */
const FF_ERASE_SIZE = 12;
const UI_BEGIN_FF_UPLOAD = iowr(200, FF_UPLOAD_SIZE);
const UI_END_FF_UPLOAD = iow(201, FF_UPLOAD_SIZE);
const UI_BEGIN_FF_ERASE = iowr(202, FF_ERASE_SIZE);
const UI_END_FF_ERASE = iow(203, FF_ERASE_SIZE);
const EV_FF = 0x15;
const EV_UINPUT = 0x0101;
const UI_FF_UPLOAD = 1;
const UI_FF_ERASE = 2;
const FF_RUMBLE = 0x50;
/** Effects a game may upload to one pad. */
const FF_EFFECTS_MAX = 16;
/** How often a pad's uinput fd is read for force-feedback requests. */
const FF_POLL_MS = 8;
const UI_GET_SYSNAME_64 = ((2 << 30) | (64 << 16) | (0x55 << 8) | 44) >>> 0; // _IOC(READ, 'U', 44, 64)
/** struct input_event on 64-bit Linux: struct timeval (16) + u16 type + u16 code + s32 value. */
export const INPUT_EVENT_SIZE = 24;
const BUS_VIRTUAL = 0x06;
/** Microsoft's vendor id and the Xbox 360 pad's product id: games' mapping databases know this pair. */
const XBOX_VENDOR = 0x045e;
const XBOX_PRODUCT = 0x028e;
export const PAD_NAME_PREFIX = "NeuronOS Virtual Gamepad";

type Libc = {
  ioctl_int: (fd: number, req: bigint, arg: number) => number;
  ioctl_ptr: (fd: number, req: bigint, arg: Uint8Array) => number;
};
let libc: Libc | null = null;
function loadLibc(): Libc {
  if (libc) return libc;
  // ioctl is variadic; on x86-64 and aarch64 integer/pointer arguments pass the same way as for a fixed signature.
  const int = dlopen("libc.so.6", { ioctl: { args: [FFIType.i32, FFIType.u64, FFIType.i64], returns: FFIType.i32 } });
  const ptr = dlopen("libc.so.6", { ioctl: { args: [FFIType.i32, FFIType.u64, FFIType.ptr], returns: FFIType.i32 } });
  libc = {
    ioctl_int: (fd, req, arg) => int.symbols.ioctl(fd, req, arg) as number,
    ioctl_ptr: (fd, req, arg) => ptr.symbols.ioctl(fd, req, arg) as number,
  };
  return libc;
}

function check(rc: number, what: string): void {
  if (rc < 0) throw new Error(`${what} failed (ioctl returned ${rc})`);
}

/** One input_event record. */
export function encodeEvent(e: InputEventTriple, buf: Buffer, off: number): void {
  buf.fill(0, off, off + 16); // the kernel stamps the time itself
  buf.writeUInt16LE(e.type, off + 16);
  buf.writeUInt16LE(e.code, off + 18);
  buf.writeInt32LE(e.value, off + 20);
}

export function decodeEvents(bytes: Uint8Array): InputEventTriple[] {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: InputEventTriple[] = [];
  for (let off = 0; off + INPUT_EVENT_SIZE <= b.length; off += INPUT_EVENT_SIZE)
    out.push({ type: b.readUInt16LE(off + 16), code: b.readUInt16LE(off + 18), value: b.readInt32LE(off + 20) });
  return out;
}

class UinputPad implements VirtualPad {
  private fd: number | null;
  private readonly effects = new Map<number, { strong: number; weak: number }>();
  private readonly timer: ReturnType<typeof setInterval> | null = null;
  private readonly rbuf = Buffer.alloc(INPUT_EVENT_SIZE * 32);
  private motors = { low: 0, high: 0 };

  constructor(
    fd: number,
    readonly device: string,
    private readonly index: number,
    private readonly onRumble?: RumbleListener,
  ) {
    this.fd = fd;
    if (onRumble) {
      this.timer = setInterval(() => this.pollFeedback(), FF_POLL_MS);
      this.timer.unref?.();
    }
  }

  emit(events: readonly InputEventTriple[]): void {
    if (this.fd === null) return;
    const buf = Buffer.alloc(events.length * INPUT_EVENT_SIZE);
    events.forEach((e, i) => encodeEvent(e, buf, i * INPUT_EVENT_SIZE));
    writeSync(this.fd, buf);
  }

  destroy(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.fd === null) return;
    const fd = this.fd;
    this.fd = null;
    try {
      loadLibc().ioctl_int(fd, BigInt(UI_DEV_DESTROY), 0);
    } finally {
      closeSync(fd);
    }
  }

  /** Serves the kernel's force-feedback requests: effect uploads and erases, and plays (→ rumble). */
  private pollFeedback(): void {
    for (let round = 0; round < 8 && this.fd !== null; round++) {
      let n: number;
      try {
        n = readSync(this.fd, this.rbuf, 0, this.rbuf.length, null);
      } catch {
        return; // EAGAIN: nothing pending
      }
      if (n <= 0) return;
      for (const e of decodeEvents(this.rbuf.subarray(0, n))) this.feedback(e);
    }
  }

  private feedback(e: InputEventTriple): void {
    const fd = this.fd;
    if (fd === null) return;
    const c = loadLibc();
    if (e.type === EV_UINPUT && e.code === UI_FF_UPLOAD) {
      const up = Buffer.alloc(FF_UPLOAD_SIZE);
      up.writeUInt32LE(e.value >>> 0, 0);
      if (c.ioctl_ptr(fd, BigInt(UI_BEGIN_FF_UPLOAD), up) < 0) return;
      const type = up.readUInt16LE(8);
      const id = up.readInt16LE(10);
      if (type === FF_RUMBLE) {
        this.effects.set(id, { strong: up.readUInt16LE(24), weak: up.readUInt16LE(26) });
        up.writeInt32LE(0, 4);
      } else up.writeInt32LE(-22, 4); // -EINVAL: only rumble is offered
      c.ioctl_ptr(fd, BigInt(UI_END_FF_UPLOAD), up);
    } else if (e.type === EV_UINPUT && e.code === UI_FF_ERASE) {
      const er = Buffer.alloc(FF_ERASE_SIZE);
      er.writeUInt32LE(e.value >>> 0, 0);
      if (c.ioctl_ptr(fd, BigInt(UI_BEGIN_FF_ERASE), er) < 0) return;
      this.effects.delete(er.readUInt32LE(8));
      er.writeInt32LE(0, 4);
      c.ioctl_ptr(fd, BigInt(UI_END_FF_ERASE), er);
    } else if (e.type === EV_FF) {
      const fx = this.effects.get(e.code);
      if (!fx) return; // FF_GAIN and the like, or an unknown effect
      const on = e.value > 0;
      const low = on ? fx.strong : 0;
      const high = on ? fx.weak : 0;
      // The kernel stops an effect again when it is erased or its file closed: report changes only.
      if (low === this.motors.low && high === this.motors.high) return;
      this.motors = { low, high };
      this.onRumble?.({ index: this.index, low, high });
    }
  }
}

/** /sys/devices/virtual/input/<sysname>/eventN → /dev/input/eventN (or the sysname when evdev is absent). */
function eventNode(sysname: string): string {
  const dir = join("/sys/devices/virtual/input", sysname);
  try {
    const ev = readdirSync(dir).find((f) => /^event\d+$/.test(f));
    if (ev) return `/dev/input/${ev}`;
  } catch {
    // no sysfs entry: report the sysname
  }
  return sysname;
}

export class UinputDriver implements GamepadDriver {
  readonly name = "uinput";
  constructor(private readonly path = UINPUT_PATH) {}

  unavailable(): string | null {
    if (process.platform !== "linux") return "uinput exists on Linux only";
    if (!existsSync(this.path)) return `${this.path} is missing (load the uinput kernel module)`;
    return null;
  }

  create(index: number, _kind: GamepadKind, onRumble?: RumbleListener): VirtualPad {
    const c = loadLibc();
    let fd: number;
    try {
      fd = openSync(this.path, fsc.O_RDWR | fsc.O_NONBLOCK);
    } catch (err) {
      throw new GuestCommandError("GAMEPAD_UNAVAILABLE", `cannot open ${this.path}: ${(err as Error).message}`);
    }
    try {
      check(c.ioctl_int(fd, BigInt(UI_SET_EVBIT), EV.KEY), "UI_SET_EVBIT(EV_KEY)");
      for (const k of PAD_KEYS) check(c.ioctl_int(fd, BigInt(UI_SET_KEYBIT), k), `UI_SET_KEYBIT(${k})`);
      check(c.ioctl_int(fd, BigInt(UI_SET_EVBIT), EV.ABS), "UI_SET_EVBIT(EV_ABS)");
      for (const a of PAD_AXES) {
        check(c.ioctl_int(fd, BigInt(UI_SET_ABSBIT), a.code), `UI_SET_ABSBIT(${a.code})`);
        const abs = Buffer.alloc(UINPUT_ABS_SETUP_SIZE);
        abs.writeUInt16LE(a.code, 0);
        // struct input_absinfo { value, minimum, maximum, fuzz, flat, resolution }
        abs.writeInt32LE(0, 4);
        abs.writeInt32LE(a.min, 8);
        abs.writeInt32LE(a.max, 12);
        abs.writeInt32LE(a.fuzz, 16);
        abs.writeInt32LE(a.flat, 20);
        check(c.ioctl_ptr(fd, BigInt(UI_ABS_SETUP), abs), `UI_ABS_SETUP(${a.code})`);
      }
      check(c.ioctl_int(fd, BigInt(UI_SET_EVBIT), EV_FF), "UI_SET_EVBIT(EV_FF)");
      check(c.ioctl_int(fd, BigInt(UI_SET_FFBIT), FF_RUMBLE), "UI_SET_FFBIT(FF_RUMBLE)");
      const setup = Buffer.alloc(UINPUT_SETUP_SIZE);
      setup.writeUInt16LE(BUS_VIRTUAL, 0);
      setup.writeUInt16LE(XBOX_VENDOR, 2);
      setup.writeUInt16LE(XBOX_PRODUCT, 4);
      setup.writeUInt16LE(1, 6);
      setup.write(`${PAD_NAME_PREFIX} ${index}`, 8, 79, "latin1");
      setup.writeUInt32LE(FF_EFFECTS_MAX, 88);
      check(c.ioctl_ptr(fd, BigInt(UI_DEV_SETUP), setup), "UI_DEV_SETUP");
      check(c.ioctl_int(fd, BigInt(UI_DEV_CREATE), 0), "UI_DEV_CREATE");
      const name = Buffer.alloc(64);
      const sys = c.ioctl_ptr(fd, BigInt(UI_GET_SYSNAME_64), name) >= 0 ? name.toString("latin1").replace(/\0.*$/s, "") : "";
      return new UinputPad(fd, sys ? eventNode(sys) : `uinput pad ${index}`, index, onRumble);
    } catch (err) {
      closeSync(fd);
      throw new GuestCommandError("GAMEPAD_UNAVAILABLE", `cannot create gamepad ${index}: ${(err as Error).message}`);
    }
  }
}

/** The gamepad driver of this OS. */
export function defaultGamepadDriver(): GamepadDriver {
  return process.platform === "win32" ? new VigemUnavailableDriver() : new UinputDriver();
}
/** Reads the device name the kernel holds for an event node (tests, diagnostics). */
export const eventDeviceName = (eventNodePath: string): string | null => {
  const p = join("/sys/class/input", eventNodePath.replace(/^\/dev\/input\//, ""), "device", "name");
  return existsSync(p) ? readFileSync(p, "utf8").trim() : null;
};
