/**
 * Text typed by the guest's keyboard layout: QEMU's keymap files (keysym name → set 1
 * scancode and the modifiers it needs, one file per layout, e.g. /usr/share/qemu/keymaps/de)
 * read into char → key taps. The US layout is built in for hosts without the files.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { invalid } from "../errors.ts";
import type { KeyRow, KeyTable } from "./keymap.ts";

/** X11 keysym names of Latin-1 characters (and the euro sign) → code point, from X11's keysymdef.h. */
const KEYSYM_NAMES: ReadonlyMap<string, number> = new Map(
  [
    "space:20 exclam:21 quotedbl:22 numbersign:23 dollar:24 percent:25 ampersand:26 apostrophe:27 quoteright:27",
    "parenleft:28 parenright:29 asterisk:2a plus:2b comma:2c minus:2d period:2e slash:2f colon:3a semicolon:3b",
    "less:3c equal:3d greater:3e question:3f at:40 bracketleft:5b backslash:5c bracketright:5d asciicircum:5e",
    "underscore:5f grave:60 quoteleft:60 braceleft:7b bar:7c braceright:7d asciitilde:7e nobreakspace:a0",
    "exclamdown:a1 cent:a2 sterling:a3 currency:a4 yen:a5 brokenbar:a6 section:a7 diaeresis:a8 copyright:a9",
    "ordfeminine:aa guillemotleft:ab notsign:ac hyphen:ad registered:ae macron:af degree:b0 plusminus:b1",
    "twosuperior:b2 threesuperior:b3 acute:b4 mu:b5 paragraph:b6 periodcentered:b7 cedilla:b8 onesuperior:b9",
    "masculine:ba guillemotright:bb onequarter:bc onehalf:bd threequarters:be questiondown:bf Agrave:c0 Aacute:c1",
    "Acircumflex:c2 Atilde:c3 Adiaeresis:c4 Aring:c5 AE:c6 Ccedilla:c7 Egrave:c8 Eacute:c9 Ecircumflex:ca",
    "Ediaeresis:cb Igrave:cc Iacute:cd Icircumflex:ce Idiaeresis:cf ETH:d0 Eth:d0 Ntilde:d1 Ograve:d2 Oacute:d3",
    "Ocircumflex:d4 Otilde:d5 Odiaeresis:d6 multiply:d7 Oslash:d8 Ooblique:d8 Ugrave:d9 Uacute:da Ucircumflex:db",
    "Udiaeresis:dc Yacute:dd THORN:de Thorn:de ssharp:df agrave:e0 aacute:e1 acircumflex:e2 atilde:e3 adiaeresis:e4",
    "aring:e5 ae:e6 ccedilla:e7 egrave:e8 eacute:e9 ecircumflex:ea ediaeresis:eb igrave:ec iacute:ed icircumflex:ee",
    "idiaeresis:ef eth:f0 ntilde:f1 ograve:f2 oacute:f3 ocircumflex:f4 otilde:f5 odiaeresis:f6 division:f7",
    "oslash:f8 ooblique:f8 ugrave:f9 uacute:fa ucircumflex:fb udiaeresis:fc yacute:fd thorn:fe ydiaeresis:ff",
    "EuroSign:20ac",
  ]
    .join(" ")
    .split(" ")
    .map((e) => {
      const [n, v] = e.split(":") as [string, string];
      return [n, Number.parseInt(v, 16)] as const;
    }),
);

/** One character as key presses: modifiers held around one key. */
export interface CharStroke {
  key: KeyRow;
  shift: boolean;
  altgr: boolean;
}

export type Layout = ReadonlyMap<string, CharStroke>;

const LAYOUT_NAME = /^[a-z]{2}(-[a-z]{2})?$/;
const cache = new Map<string, Layout>();

/** The US layout from the key table alone (no file needed). */
export function usLayout(table: KeyTable): Layout {
  const m = new Map<string, CharStroke>();
  const put = (ch: string, name: string, shift: boolean) => {
    const key = table.byName(name);
    if (key && !m.has(ch)) m.set(ch, { key, shift, altgr: false });
  };
  for (const c of "abcdefghijklmnopqrstuvwxyz") {
    put(c, `KEY_${c.toUpperCase()}`, false);
    put(c.toUpperCase(), `KEY_${c.toUpperCase()}`, true);
  }
  const pairs: [string, string, string][] = [
    ["1", "!", "1"], ["2", "@", "2"], ["3", "#", "3"], ["4", "$", "4"], ["5", "%", "5"], ["6", "^", "6"], ["7", "&", "7"],
    ["8", "*", "8"], ["9", "(", "9"], ["0", ")", "0"], ["-", "_", "MINUS"], ["=", "+", "EQUAL"], ["[", "{", "LEFTBRACE"],
    ["]", "}", "RIGHTBRACE"], ["\\", "|", "BACKSLASH"], [";", ":", "SEMICOLON"], ["'", '"', "APOSTROPHE"], [",", "<", "COMMA"],
    [".", ">", "DOT"], ["/", "?", "SLASH"], ["`", "~", "GRAVE"],
  ];
  for (const [plain, shifted, name] of pairs) {
    put(plain, `KEY_${name}`, false);
    put(shifted, `KEY_${name}`, true);
  }
  put(" ", "KEY_SPACE", false);
  put("\n", "KEY_ENTER", false);
  put("\t", "KEY_TAB", false);
  return m;
}

/**
 * Parses a QEMU keymap file: `keysym 0xSC [shift] [altgr] ...` lines (0x80 in the scancode
 * marks an E0-prefixed key), `include NAME`. Strokes needing other modifiers are skipped;
 * for each character the first stroke wins.
 */
export function parseQemuKeymap(text: string, table: KeyTable, include: (name: string) => string | null, depth = 0): Map<string, CharStroke> {
  const m = new Map<string, CharStroke>();
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const parts = line.split(/\s+/);
    if (parts[0] === "include" && parts[1] && depth < 4) {
      const inc = include(parts[1]);
      if (inc !== null) for (const [ch, s] of parseQemuKeymap(inc, table, include, depth + 1)) if (!m.has(ch)) m.set(ch, s);
      continue;
    }
    if (parts.length < 2 || !/^0x[0-9a-f]+$/i.test(parts[1]!)) continue;
    const name = parts[0]!;
    const mods = parts.slice(2);
    if (mods.some((x) => x !== "shift" && x !== "altgr")) continue;
    const cp = name.length === 1 ? name.charCodeAt(0) : KEYSYM_NAMES.get(name);
    if (cp === undefined) continue;
    const ch = String.fromCodePoint(cp);
    if (m.has(ch)) continue;
    const sc = Number.parseInt(parts[1]!, 16);
    const seq = sc & 0x80 ? `e0 ${(sc & 0x7f).toString(16).padStart(2, "0")}` : sc.toString(16).padStart(2, "0");
    const key = table.rows.find((r) => r.set1.make === seq);
    if (!key) continue;
    m.set(ch, { key, shift: mods.includes("shift"), altgr: mods.includes("altgr") });
  }
  return m;
}

/** The layout `name` from QEMU's keymap directory, or the built-in US layout for "us"/"en-us" when the file is absent. */
export function loadLayout(name: string, table: KeyTable, keymapDir: string): Layout {
  if (!LAYOUT_NAME.test(name)) throw invalid(`invalid keyboard layout name ${JSON.stringify(name.slice(0, 40))}`);
  const id = `${keymapDir}\0${name}`;
  const hit = cache.get(id);
  if (hit) return hit;
  const file = (n: string) => (LAYOUT_NAME.test(n) && existsSync(join(keymapDir, n)) ? readFileSync(join(keymapDir, n), "utf8") : null);
  const text = file(name === "us" ? "en-us" : name);
  let layout: Map<string, CharStroke>;
  if (text === null) {
    if (name !== "us" && name !== "en-us") throw invalid(`no keyboard layout ${name} (no QEMU keymap ${join(keymapDir, name)})`);
    layout = new Map(usLayout(table));
  } else {
    layout = parseQemuKeymap(text, table, file);
    // control characters QEMU's maps name differently
    for (const [ch, n] of [["\n", "KEY_ENTER"], ["\t", "KEY_TAB"], [" ", "KEY_SPACE"]] as const) {
      const key = table.byName(n);
      if (key && !layout.has(ch)) layout.set(ch, { key, shift: false, altgr: false });
    }
  }
  cache.set(id, layout);
  return layout;
}
