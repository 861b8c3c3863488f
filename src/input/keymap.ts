/**
 * The key table (native/keys.h, read once through ffi/keys.ts) as JS maps: HID usage,
 * evdev code, name, QKeyCode and Windows VK → row. Built once per library path; the
 * input path looks keys up here, never through a native call per event.
 */
import { KeysNative, type KeyRow } from "../../ffi/keys.ts";

export type { KeyRow } from "../../ffi/keys.ts";

export const HID_PAGE_KEYBOARD = 0x07;
export const HID_PAGE_CONSUMER = 0x0c;
export const HID_PAGE_DESKTOP = 0x01;

/** Windows VK codes that name another key's row (generic modifiers, keypad separator). */
const VK_ALIASES: ReadonlyMap<number, string> = new Map([
  [0x10, "KEY_LEFTSHIFT"],
  [0x11, "KEY_LEFTCTRL"],
  [0x12, "KEY_LEFTALT"],
  [0x6c, "KEY_KPCOMMA"],
]);

/** Short names a person types in key chords ("ctrl+alt+delete"). */
const CHORD_NAMES: ReadonlyMap<string, string> = new Map([
  ["ctrl", "KEY_LEFTCTRL"], ["control", "KEY_LEFTCTRL"], ["lctrl", "KEY_LEFTCTRL"], ["rctrl", "KEY_RIGHTCTRL"],
  ["shift", "KEY_LEFTSHIFT"], ["lshift", "KEY_LEFTSHIFT"], ["rshift", "KEY_RIGHTSHIFT"],
  ["alt", "KEY_LEFTALT"], ["lalt", "KEY_LEFTALT"], ["ralt", "KEY_RIGHTALT"], ["altgr", "KEY_RIGHTALT"],
  ["meta", "KEY_LEFTMETA"], ["win", "KEY_LEFTMETA"], ["super", "KEY_LEFTMETA"], ["cmd", "KEY_LEFTMETA"],
  ["del", "KEY_DELETE"], ["delete", "KEY_DELETE"], ["ins", "KEY_INSERT"], ["enter", "KEY_ENTER"], ["return", "KEY_ENTER"],
  ["escape", "KEY_ESC"], ["esc", "KEY_ESC"], ["space", "KEY_SPACE"], ["backspace", "KEY_BACKSPACE"], ["tab", "KEY_TAB"],
  ["pageup", "KEY_PAGEUP"], ["pagedown", "KEY_PAGEDOWN"], ["printscreen", "KEY_SYSRQ"], ["prtsc", "KEY_SYSRQ"],
  ["menu", "KEY_COMPOSE"], ["capslock", "KEY_CAPSLOCK"],
]);

export class KeyTable {
  readonly rows: readonly KeyRow[];
  private readonly byHidKey = new Map<number, KeyRow>();
  private readonly byEvdevKey = new Map<number, KeyRow>();
  private readonly byNameKey = new Map<string, KeyRow>();
  private readonly byQcodeKey = new Map<string, KeyRow>();
  private readonly byVkKey = new Map<number, KeyRow>();

  constructor(rows: readonly KeyRow[]) {
    this.rows = rows;
    for (const r of rows) {
      this.byHidKey.set(r.hidPage * 0x10000 + r.hid, r);
      this.byEvdevKey.set(r.evdev, r);
      this.byNameKey.set(r.name, r);
      if (r.qcode) this.byQcodeKey.set(r.qcode, r);
      if (r.vk !== null && !(r.flags & 0x10)) this.byVkKey.set(r.vk, r);
    }
    // HID 0x32 (ISO #~) is the backslash key to Linux and QEMU alike
    const bs = this.byNameKey.get("KEY_BACKSLASH");
    if (bs) this.byHidKey.set(HID_PAGE_KEYBOARD * 0x10000 + 0x32, bs);
    for (const [vk, name] of VK_ALIASES) {
      const r = this.byNameKey.get(name);
      if (r) this.byVkKey.set(vk, r);
    }
  }

  byHid(page: number, usage: number): KeyRow | undefined {
    return this.byHidKey.get(page * 0x10000 + usage);
  }
  byEvdev(code: number): KeyRow | undefined {
    return this.byEvdevKey.get(code);
  }
  byName(name: string): KeyRow | undefined {
    return this.byNameKey.get(name);
  }
  byQcode(qcode: string): KeyRow | undefined {
    return this.byQcodeKey.get(qcode);
  }
  byVk(vk: number): KeyRow | undefined {
    return this.byVkKey.get(vk);
  }

  /** One key as a person names it: KEY_A, a, f1, ctrl, 30 (evdev), 0x04 (HID usage, keyboard page). */
  resolve(spec: string): KeyRow | undefined {
    const s = spec.trim();
    if (/^KEY_[A-Z0-9_]+$/i.test(s)) return this.byName(s.toUpperCase());
    if (/^0x[0-9a-f]+$/i.test(s)) return this.byHid(HID_PAGE_KEYBOARD, Number.parseInt(s, 16));
    if (/^\d+$/.test(s)) return this.byEvdev(Number(s));
    const lower = s.toLowerCase();
    const chord = CHORD_NAMES.get(lower);
    if (chord) return this.byName(chord);
    return this.byQcode(lower) ?? this.byName(`KEY_${s.toUpperCase()}`);
  }
}

const tables = new Map<string, KeyTable>();

/** The key table of the native library at `nativePath` (read once per path). */
export function loadKeyTable(nativePath: string): KeyTable {
  let t = tables.get(nativePath);
  if (!t) {
    const n = new KeysNative(nativePath);
    try {
      t = new KeyTable(n.rows());
    } finally {
      n.close();
    }
    tables.set(nativePath, t);
  }
  return t;
}
