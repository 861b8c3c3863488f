/**
 * bun:ffi bindings of native/keys.h: the key table across evdev, USB HID, PS/2 set 1
 * and set 2, QEMU QKeyCode and Windows VK. Read once into JS (rows()); lookups on the
 * input path use the JS copy, never a native call per event.
 */
import { FFIType, ptr, type FFIFunction } from "bun:ffi";
import { NativeCallError, NativeModule } from "./native.ts";

const P = FFIType.ptr;
const symbols = {
  neuron_keys_count: { args: [], returns: FFIType.u32 },
  neuron_keys_row: { args: [FFIType.u32, P, "usize"], returns: FFIType.i32 },
  neuron_keys_by_evdev: { args: [FFIType.u32], returns: FFIType.i32 },
  neuron_keys_by_hid: { args: [FFIType.u32, FFIType.u32], returns: FFIType.i32 },
  neuron_keys_by_vk: { args: [FFIType.u32], returns: FFIType.i32 },
  neuron_keys_by_name: { args: [P], returns: FFIType.i32 },
  neuron_keys_by_qcode: { args: [P], returns: FFIType.i32 },
  neuron_keys_by_ps2: { args: [FFIType.u32, P, "usize"], returns: FFIType.i32 },
} as const satisfies Record<string, FFIFunction>;

/** Size of one row record (NEURON_KEYS_ROW_SIZE). */
export const KEY_ROW_SIZE = 96;

export const KeyFlag = { base: 0x01, intl: 0x02, media: 0x04, extra: 0x08, vkShared: 0x10 } as const;

export interface Ps2Codes {
  /** Hex bytes, space separated ("e0 2a e0 37"). */
  make: string;
  /** Empty when the key sends nothing on release (Pause, Hangeul, Hanja). */
  break: string;
}

export interface KeyRow {
  evdev: number;
  name: string;
  hidPage: number;
  hid: number;
  set1: Ps2Codes;
  set2: Ps2Codes;
  /** QEMU QKeyCode, or null where QEMU has none. */
  qcode: string | null;
  /** Windows virtual-key code, or null. */
  vk: number | null;
  flags: number;
}

const hex = (b: Uint8Array, at: number): string => {
  const len = b[at]!;
  if (len > 8) throw new Error(`key row: PS/2 sequence of ${len} bytes`);
  return Array.from(b.subarray(at + 1, at + 1 + len), (x) => x.toString(16).padStart(2, "0")).join(" ");
};

const cstring = (b: Uint8Array, at: number, max: number): string => {
  const end = b.indexOf(0, at);
  return new TextDecoder().decode(b.subarray(at, end < 0 || end > at + max ? at + max : end));
};

/** Decodes one 96-byte row record (layout in native/keys.h). */
export function decodeKeyRow(b: Uint8Array): KeyRow {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const qcode = cstring(b, 68, 24);
  const vk = b[6]!;
  return {
    evdev: v.getUint16(0, true),
    hidPage: v.getUint16(2, true),
    hid: v.getUint16(4, true),
    vk: vk === 0 ? null : vk,
    flags: b[7]!,
    set1: { make: hex(b, 8), break: hex(b, 17) },
    set2: { make: hex(b, 26), break: hex(b, 35) },
    name: cstring(b, 44, 24),
    qcode: qcode.length ? qcode : null,
  };
}

const cstr = (s: string): Uint8Array => new TextEncoder().encode(`${s}\0`);
const index = (i: number): number | null => (i < 0 ? null : i);

export class KeysNative extends NativeModule<typeof symbols> {
  constructor(path: string) {
    super(path, symbols);
  }

  count(): number {
    return this.sym.neuron_keys_count();
  }

  row(i: number): KeyRow {
    const buf = new Uint8Array(KEY_ROW_SIZE);
    const rc = this.sym.neuron_keys_row(i, ptr(buf), buf.length);
    if (rc !== 0) throw new NativeCallError("neuron_keys_row", rc);
    return decodeKeyRow(buf);
  }

  rows(): KeyRow[] {
    return Array.from({ length: this.count() }, (_, i) => this.row(i));
  }

  byEvdev(code: number): number | null {
    return index(this.sym.neuron_keys_by_evdev(code >>> 0));
  }

  byHid(page: number, usage: number): number | null {
    return index(this.sym.neuron_keys_by_hid(page >>> 0, usage >>> 0));
  }

  byVk(vk: number): number | null {
    return index(this.sym.neuron_keys_by_vk(vk >>> 0));
  }

  byName(name: string): number | null {
    return index(this.sym.neuron_keys_by_name(ptr(cstr(name))));
  }

  byQcode(qcode: string): number | null {
    return index(this.sym.neuron_keys_by_qcode(ptr(cstr(qcode))));
  }

  /** A make or break sequence ("e0 2a e0 37" or bytes) of set 1 or 2 → row index. */
  byPs2(set: 1 | 2, seq: string | Uint8Array): number | null {
    const bytes = typeof seq === "string" ? Uint8Array.from(seq.trim().split(/\s+/), (h) => Number.parseInt(h, 16)) : seq;
    if (bytes.length === 0) return null;
    return index(this.sym.neuron_keys_by_ps2(set, ptr(bytes), bytes.length));
  }
}
