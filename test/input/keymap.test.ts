/**
 * The native key table (native/keys.h via ffi/keys.ts): complete against the kernel's
 * input-event-codes.h and QEMU's QKeyCode list (from a real QEMU's QMP schema), and every
 * lookup round-trips in every direction, natively and in the JS maps.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { KeysNative, type KeyRow } from "../../ffi/keys.ts";
import { resolveNativePath } from "../../ffi/native.ts";
import { KeyTable } from "../../src/input/keymap.ts";
import { VK_QCODE_ENTRIES } from "../../src/input/vk-qcode.ts";
import { runCli } from "../helpers/env.ts";
import { QEMU, qemuAvailable } from "./qemu.ts";

const native = new KeysNative(resolveNativePath({}));
const rows = native.rows();
const table = new KeyTable(rows);
afterAll(() => native.close());

const HEADER = "/usr/include/linux/input-event-codes.h";

/** Every key of the 104-key US layout, plus the ISO 105, JIS 106/109, ABNT 107 and Korean keys, the media and system keys. */
const LAYOUT_KEYS = [
  ..."ESC 1 2 3 4 5 6 7 8 9 0 MINUS EQUAL BACKSPACE TAB Q W E R T Y U I O P LEFTBRACE RIGHTBRACE ENTER LEFTCTRL A S D F G H J K L".split(" "),
  ..."SEMICOLON APOSTROPHE GRAVE LEFTSHIFT BACKSLASH Z X C V B N M COMMA DOT SLASH RIGHTSHIFT KPASTERISK LEFTALT SPACE CAPSLOCK".split(" "),
  ..."F1 F2 F3 F4 F5 F6 F7 F8 F9 F10 F11 F12 NUMLOCK SCROLLLOCK KP0 KP1 KP2 KP3 KP4 KP5 KP6 KP7 KP8 KP9 KPMINUS KPPLUS KPDOT".split(" "),
  ..."KPENTER RIGHTCTRL KPSLASH SYSRQ RIGHTALT HOME UP PAGEUP LEFT RIGHT END DOWN PAGEDOWN INSERT DELETE PAUSE LEFTMETA RIGHTMETA COMPOSE".split(" "),
  ..."102ND RO KATAKANAHIRAGANA HENKAN MUHENKAN YEN KPCOMMA HANGEUL HANJA KPEQUAL".split(" "),
  ..."MUTE VOLUMEDOWN VOLUMEUP PLAYPAUSE STOPCD PREVIOUSSONG NEXTSONG MAIL CALC COMPUTER HOMEPAGE BACK FORWARD REFRESH BOOKMARKS SEARCH MEDIA STOP".split(" "),
  ..."POWER SLEEP WAKEUP F13 F14 F15 F16 F17 F18 F19 F20 F21 F22 F23 F24".split(" "),
].map((k) => `KEY_${k}`);

describe("key table completeness", () => {
  test("every key of the 104/105/106/107/109-key layouts and the media keys has a row", () => {
    const names = new Set(rows.map((r) => r.name));
    expect(LAYOUT_KEYS.filter((k) => !names.has(k))).toEqual([]);
    expect(rows.length).toBe(new Set(rows.map((r) => r.evdev)).size);
  });

  test.skipIf(!existsSync(HEADER))("every row's name and code are the kernel's (input-event-codes.h)", () => {
    const defs = new Map<string, number>();
    for (const m of readFileSync(HEADER, "utf8").matchAll(/^#define\s+(KEY_\w+)\s+(0x[0-9a-f]+|\d+)\b/gim)) defs.set(m[1]!, Number(m[2]));
    const wrong = rows.filter((r) => defs.get(r.name) !== r.evdev).map((r) => `${r.name}=${r.evdev} (kernel: ${defs.get(r.name)})`);
    expect(wrong).toEqual([]);
  });

  test.skipIf(!qemuAvailable())("every qcode is one of QEMU's, and every QEMU key of a PC layout has a row", async () => {
    const proc = Bun.spawn([QEMU, "-machine", "none", "-nodefaults", "-display", "none", "-qmp", "stdio"], { stdin: "pipe", stdout: "pipe", stderr: "ignore" });
    proc.stdin.write('{"execute":"qmp_capabilities"}\n{"execute":"query-qmp-schema"}\n');
    await proc.stdin.flush();
    const reader = proc.stdout.getReader();
    let text = "";
    const deadline = Date.now() + 15_000;
    let qcodes: string[] | null = null;
    while (!qcodes && Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
      for (const line of text.split("\n")) {
        if (!line.includes('"return": [')) continue;
        try {
          const schema = JSON.parse(line).return as { "meta-type": string; values?: string[] }[];
          qcodes = schema.find((e) => e["meta-type"] === "enum" && e.values?.includes("kp_add"))?.values ?? null;
        } catch {
          /* not whole yet */
        }
      }
    }
    proc.kill();
    await proc.exited;
    expect(qcodes).not.toBeNull();
    const q = new Set(qcodes!);
    expect(rows.filter((r) => r.qcode !== null && !q.has(r.qcode)).map((r) => r.name)).toEqual([]);
    // QEMU's keys with no row: Sun keyboard keys and aliases, none on a PC layout
    const covered = new Set(rows.map((r) => r.qcode));
    const left = qcodes!.filter((c) => !covered.has(c));
    expect(left.sort()).toEqual(["again", "asterisk", "copy", "cut", "find", "front", "help", "hiragana", "lf", "menu", "open", "paste", "props", "sysrq", "undo", "unmapped"].sort());
  }, 30_000);
});

describe("key table round trips", () => {
  const find = (i: number | null): KeyRow | undefined => (i === null ? undefined : rows[i]);
  test("native lookups: evdev, HID, name, qcode, VK, set 1 and set 2 make and break each lead back to the row", () => {
    const bad: string[] = [];
    for (const r of rows) {
      const check = (what: string, got: KeyRow | undefined) => {
        if (got !== r) bad.push(`${r.name} by ${what}: ${got?.name}`);
      };
      check("evdev", find(native.byEvdev(r.evdev)));
      check("hid", find(native.byHid(r.hidPage, r.hid)));
      check("name", find(native.byName(r.name)));
      if (r.qcode) check("qcode", find(native.byQcode(r.qcode)));
      if (r.vk !== null && !(r.flags & 0x10)) check("vk", find(native.byVk(r.vk)));
      check("set1 make", find(native.byPs2(1, r.set1.make)));
      check("set2 make", find(native.byPs2(2, r.set2.make)));
      if (r.set1.break) check("set1 break", find(native.byPs2(1, r.set1.break)));
      if (r.set2.break) check("set2 break", find(native.byPs2(2, r.set2.break)));
      // the JS maps agree
      if (table.byEvdev(r.evdev) !== r || table.byHid(r.hidPage, r.hid) !== r || table.byName(r.name) !== r) bad.push(`${r.name}: JS maps`);
      if (r.qcode && table.byQcode(r.qcode) !== r) bad.push(`${r.name}: JS qcode`);
    }
    expect(bad).toEqual([]);
  });

  test("PrintScreen and Pause carry their multi-byte sequences; Pause has no break", () => {
    expect(table.byName("KEY_SYSRQ")).toMatchObject({ hid: 0x46, set1: { make: "e0 2a e0 37", break: "e0 b7 e0 aa" }, set2: { make: "e0 12 e0 7c", break: "e0 f0 7c e0 f0 12" }, qcode: "print" });
    expect(table.byName("KEY_PAUSE")).toMatchObject({ hid: 0x48, set1: { make: "e1 1d 45 e1 9d c5", break: "" }, set2: { make: "e1 14 77 e1 f0 14 f0 77", break: "" } });
    expect(table.byName("KEY_RIGHTCTRL")).toMatchObject({ set1: { make: "e0 1d", break: "e0 9d" }, set2: { make: "e0 14", break: "e0 f0 14" } });
  });

  test("aliases: generic VK modifiers, VK_SEPARATOR, HID 0x32 and VK_RETURN (main Enter, not keypad)", () => {
    expect(table.byVk(0x10)?.name).toBe("KEY_LEFTSHIFT");
    expect(table.byVk(0x11)?.name).toBe("KEY_LEFTCTRL");
    expect(table.byVk(0x12)?.name).toBe("KEY_LEFTALT");
    expect(table.byVk(0x6c)?.name).toBe("KEY_KPCOMMA");
    expect(table.byVk(0x0d)?.name).toBe("KEY_ENTER");
    expect(table.byHid(7, 0x32)?.name).toBe("KEY_BACKSLASH");
    expect(native.byVk(0x10)).toBe(native.byEvdev(42));
  });

  test("the GameStream VK table (vk-qcode.ts) agrees with the native table, except where it sends a nearby key", () => {
    // VK_OEM_COPY/FINISH: the JIS keyboard's one Katakana/Hiragana key; VK_BROWSER_SEARCH: QEMU has no
    // search key; VK_HELP: a Sun key, on no PC layout
    const known = new Set([0xf2, 0xf1, 0xaa, 0x2f]);
    const diff = VK_QCODE_ENTRIES.filter(([vk, , q]) => !known.has(vk) && table.byVk(vk)?.qcode !== q).map(([vk, n, q]) => `${n} 0x${vk.toString(16)}: ${q} vs ${table.byVk(vk)?.qcode}`);
    expect(diff).toEqual([]);
  });

  test("resolve() takes the names people type", () => {
    expect(table.resolve("ctrl")?.name).toBe("KEY_LEFTCTRL");
    expect(table.resolve("delete")?.name).toBe("KEY_DELETE");
    expect(table.resolve("KEY_F1")?.name).toBe("KEY_F1");
    expect(table.resolve("30")?.name).toBe("KEY_A");
    expect(table.resolve("0x04")?.name).toBe("KEY_A");
    expect(table.resolve("f13")?.name).toBe("KEY_F13");
    expect(table.resolve("nosuchkey")).toBeUndefined();
  });
});

describe("neuron-appliance input keymap", () => {
  test("--json prints every row with evdev, name, hid, set1/set2 {make, break}, qcode and vk", () => {
    const r = runCli(["input", "keymap", "--json"]);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as Record<string, unknown>[];
    expect(out.length).toBe(rows.length);
    expect(out.find((x) => x.name === "KEY_SYSRQ")).toEqual({ evdev: 99, name: "KEY_SYSRQ", page: 7, hid: 0x46, set1: { make: "e0 2a e0 37", break: "e0 b7 e0 aa" }, set2: { make: "e0 12 e0 7c", break: "e0 f0 7c e0 f0 12" }, qcode: "print", vk: 0x2c });
  });

  test("KEY picks one row; an unknown key exits 2 and says why", () => {
    const one = runCli(["input", "keymap", "KEY_A", "--json"]);
    expect(one.code).toBe(0);
    expect(JSON.parse(one.stdout)).toMatchObject({ evdev: 30, hid: 4, set1: { make: "1e", break: "9e" }, set2: { make: "1c", break: "f0 1c" }, qcode: "a", vk: 0x41 });
    const text = runCli(["input", "keymap", "pause"]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain("e1 1d 45 e1 9d c5");
    const bad = runCli(["input", "keymap", "nosuchkey"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("no key");
  });
});
