/**
 * bun:ffi bindings of native/hid.h: USB HID report descriptors and reports of the virtual
 * devices the appliance creates in guests, and the descriptor parser that checks them.
 */
import { FFIType, ptr, type FFIFunction } from "bun:ffi";
import { NativeCallError, NativeModule } from "./native.ts";

const P = FFIType.ptr;
const symbols = {
  neuron_hid_descriptor: { args: [FFIType.u32, P, "usize"], returns: FFIType.i32 },
  neuron_hid_parse: { args: [P, "usize", P], returns: FFIType.i32 },
  neuron_hid_keyboard_report: { args: [FFIType.u32, P, "usize", P, "usize"], returns: FFIType.i32 },
  neuron_hid_mouse_report: { args: [FFIType.u32, FFIType.i32, FFIType.i32, FFIType.i32, FFIType.i32, P, "usize"], returns: FFIType.i32 },
  neuron_hid_tablet_report: { args: [FFIType.u32, FFIType.u32, FFIType.u32, FFIType.i32, P, "usize"], returns: FFIType.i32 },
  neuron_hid_pad_report: { args: [FFIType.u32, P, P, "usize"], returns: FFIType.i32 },
} as const satisfies Record<string, FFIFunction>;

export const HidKind = { keyboard6kro: 1, keyboardNkro: 2, mouse: 3, tablet: 4, xbox: 5, dualsense: 6 } as const;
export type HidKind = keyof typeof HidKind;

export interface HidReportInfo {
  id: number;
  inputBits: number;
  outputBits: number;
  featureBits: number;
}
export interface HidInfo {
  usagePage: number;
  usage: number;
  collections: number;
  reports: HidReportInfo[];
}

/** A gamepad state (XInput terms, GameStream button bits) for pad reports. */
export interface HidPadState {
  buttons: number;
  lx: number;
  ly: number;
  rx: number;
  ry: number;
  lt: number;
  rt: number;
  sequence?: number;
  gyro?: [number, number, number];
  accel?: [number, number, number];
  sensorTime?: number;
  touches?: { id: number; x: number; y: number }[];
}

const INFO_SIZE = 16 + 16 * 16;

export class HidNative extends NativeModule<typeof symbols> {
  constructor(path: string) {
    super(path, symbols);
  }

  descriptor(kind: HidKind): Uint8Array {
    const buf = new Uint8Array(4096);
    const n = this.sym.neuron_hid_descriptor(HidKind[kind], ptr(buf), buf.length);
    if (n < 0) throw new NativeCallError("neuron_hid_descriptor", n);
    return buf.slice(0, n);
  }

  /** Parses a descriptor; null when it is refused. */
  parse(desc: Uint8Array): HidInfo | null {
    const out = new Uint8Array(INFO_SIZE);
    const rc = this.sym.neuron_hid_parse(desc.length ? ptr(desc) : ptr(out), desc.length, ptr(out));
    if (rc !== 0) return null;
    const v = new DataView(out.buffer);
    const n = v.getUint32(0, true);
    return {
      collections: v.getUint32(4, true),
      usagePage: v.getUint32(8, true),
      usage: v.getUint32(12, true),
      reports: Array.from({ length: n }, (_, i) => ({
        id: out[16 + 16 * i]!,
        inputBits: v.getUint32(16 + 16 * i + 4, true),
        outputBits: v.getUint32(16 + 16 * i + 8, true),
        featureBits: v.getUint32(16 + 16 * i + 12, true),
      })),
    };
  }

  keyboardReport(kind: "keyboard6kro" | "keyboardNkro", usages: number[]): Uint8Array {
    const u = Uint8Array.from(usages);
    const out = new Uint8Array(32);
    const n = this.sym.neuron_hid_keyboard_report(HidKind[kind], ptr(u.length ? u : out), u.length, ptr(out), out.length);
    if (n < 0) throw new NativeCallError("neuron_hid_keyboard_report", n);
    return out.slice(0, n);
  }

  mouseReport(buttons: number, dx: number, dy: number, wheel: number, pan: number): Uint8Array {
    const out = new Uint8Array(9);
    const n = this.sym.neuron_hid_mouse_report(buttons, dx, dy, wheel, pan, ptr(out), out.length);
    if (n < 0) throw new NativeCallError("neuron_hid_mouse_report", n);
    return out;
  }

  tabletReport(buttons: number, x: number, y: number, wheel: number): Uint8Array {
    const out = new Uint8Array(6);
    const n = this.sym.neuron_hid_tablet_report(buttons, x, y, wheel, ptr(out), out.length);
    if (n < 0) throw new NativeCallError("neuron_hid_tablet_report", n);
    return out;
  }

  padReport(kind: "xbox" | "dualsense", s: HidPadState): Uint8Array {
    const st = new Uint8Array(44);
    const v = new DataView(st.buffer);
    v.setUint32(0, s.buttons >>> 0, true);
    [s.lx, s.ly, s.rx, s.ry].forEach((x, i) => v.setInt16(4 + 2 * i, x, true));
    st[12] = s.lt;
    st[13] = s.rt;
    st[14] = s.sequence ?? 0;
    const touches = s.touches ?? [];
    st[15] = touches.length;
    (s.gyro ?? [0, 0, 0]).forEach((x, i) => v.setInt16(16 + 2 * i, x, true));
    (s.accel ?? [0, 0, 0]).forEach((x, i) => v.setInt16(22 + 2 * i, x, true));
    v.setUint32(28, s.sensorTime ?? 0, true);
    touches.slice(0, 2).forEach((t, i) => {
      v.setUint16(32 + 2 * i, t.x, true);
      v.setUint16(36 + 2 * i, t.y, true);
      st[40 + i] = t.id;
    });
    const out = new Uint8Array(64);
    const n = this.sym.neuron_hid_pad_report(HidKind[kind], ptr(st), ptr(out), out.length);
    if (n < 0) throw new NativeCallError("neuron_hid_pad_report", n);
    return out.slice(0, n);
  }
}
