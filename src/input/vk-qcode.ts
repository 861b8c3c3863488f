/**
 * Windows virtual-key codes (what GameStream clients send in key packets) →
 * QEMU QKeyCode names (what QMP `input-send-event` takes). Data only.
 *
 * Every qcode below is a value of QEMU 7.2's QKeyCode enum (checked against
 * `query-qmp-schema` of a real QEMU by test/input/vk-qcode.test.ts).
 * The QMP backend still intersects this table with the enum of the QEMU it
 * talks to, so a code missing from some build is dropped, never sent.
 */

/** [VK code, VK name, qcode] */
export const VK_QCODE_ENTRIES: readonly (readonly [number, string, string])[] = [
  // editing and whitespace
  [0x08, "VK_BACK", "backspace"],
  [0x09, "VK_TAB", "tab"],
  [0x0d, "VK_RETURN", "ret"],
  [0x13, "VK_PAUSE", "pause"],
  [0x14, "VK_CAPITAL", "caps_lock"],
  [0x1b, "VK_ESCAPE", "esc"],
  [0x20, "VK_SPACE", "spc"],
  // modifiers (generic and left/right)
  [0x10, "VK_SHIFT", "shift"],
  [0x11, "VK_CONTROL", "ctrl"],
  [0x12, "VK_MENU", "alt"],
  [0xa0, "VK_LSHIFT", "shift"],
  [0xa1, "VK_RSHIFT", "shift_r"],
  [0xa2, "VK_LCONTROL", "ctrl"],
  [0xa3, "VK_RCONTROL", "ctrl_r"],
  [0xa4, "VK_LMENU", "alt"],
  [0xa5, "VK_RMENU", "alt_r"],
  [0x5b, "VK_LWIN", "meta_l"],
  [0x5c, "VK_RWIN", "meta_r"],
  [0x5d, "VK_APPS", "compose"],
  // IME / international
  [0x15, "VK_KANA", "lang1"],
  [0x19, "VK_KANJI", "lang2"],
  [0x1c, "VK_CONVERT", "henkan"],
  [0x1d, "VK_NONCONVERT", "muhenkan"],
  [0xc1, "VK_ABNT_C1", "ro"],
  [0xc2, "VK_ABNT_C2", "kp_comma"],
  [0xe2, "VK_OEM_102", "less"],
  [0xf2, "VK_OEM_COPY", "hiragana"],
  [0xf1, "VK_OEM_FINISH", "katakanahiragana"],
  // navigation
  [0x21, "VK_PRIOR", "pgup"],
  [0x22, "VK_NEXT", "pgdn"],
  [0x23, "VK_END", "end"],
  [0x24, "VK_HOME", "home"],
  [0x25, "VK_LEFT", "left"],
  [0x26, "VK_UP", "up"],
  [0x27, "VK_RIGHT", "right"],
  [0x28, "VK_DOWN", "down"],
  [0x2c, "VK_SNAPSHOT", "print"],
  [0x2d, "VK_INSERT", "insert"],
  [0x2e, "VK_DELETE", "delete"],
  [0x2f, "VK_HELP", "help"],
  [0x91, "VK_SCROLL", "scroll_lock"],
  // digits row
  [0x30, "VK_0", "0"],
  [0x31, "VK_1", "1"],
  [0x32, "VK_2", "2"],
  [0x33, "VK_3", "3"],
  [0x34, "VK_4", "4"],
  [0x35, "VK_5", "5"],
  [0x36, "VK_6", "6"],
  [0x37, "VK_7", "7"],
  [0x38, "VK_8", "8"],
  [0x39, "VK_9", "9"],
  // letters
  ...Array.from("abcdefghijklmnopqrstuvwxyz", (c, i) => [0x41 + i, `VK_${c.toUpperCase()}`, c] as const),
  // numeric keypad
  [0x60, "VK_NUMPAD0", "kp_0"],
  [0x61, "VK_NUMPAD1", "kp_1"],
  [0x62, "VK_NUMPAD2", "kp_2"],
  [0x63, "VK_NUMPAD3", "kp_3"],
  [0x64, "VK_NUMPAD4", "kp_4"],
  [0x65, "VK_NUMPAD5", "kp_5"],
  [0x66, "VK_NUMPAD6", "kp_6"],
  [0x67, "VK_NUMPAD7", "kp_7"],
  [0x68, "VK_NUMPAD8", "kp_8"],
  [0x69, "VK_NUMPAD9", "kp_9"],
  [0x6a, "VK_MULTIPLY", "kp_multiply"],
  [0x6b, "VK_ADD", "kp_add"],
  [0x6c, "VK_SEPARATOR", "kp_comma"],
  [0x6d, "VK_SUBTRACT", "kp_subtract"],
  [0x6e, "VK_DECIMAL", "kp_decimal"],
  [0x6f, "VK_DIVIDE", "kp_divide"],
  [0x90, "VK_NUMLOCK", "num_lock"],
  [0x92, "VK_OEM_NEC_EQUAL", "kp_equals"],
  // function keys (F13–F24: see UNMAPPED_VKS)
  ...Array.from({ length: 12 }, (_, i) => [0x70 + i, `VK_F${i + 1}`, `f${i + 1}`] as const),
  // OEM punctuation (US layout positions)
  [0xba, "VK_OEM_1", "semicolon"],
  [0xbb, "VK_OEM_PLUS", "equal"],
  [0xbc, "VK_OEM_COMMA", "comma"],
  [0xbd, "VK_OEM_MINUS", "minus"],
  [0xbe, "VK_OEM_PERIOD", "dot"],
  [0xbf, "VK_OEM_2", "slash"],
  [0xc0, "VK_OEM_3", "grave_accent"],
  [0xdb, "VK_OEM_4", "bracket_left"],
  [0xdc, "VK_OEM_5", "backslash"],
  [0xdd, "VK_OEM_6", "bracket_right"],
  [0xde, "VK_OEM_7", "apostrophe"],
  // browser, media and launch keys
  [0x5f, "VK_SLEEP", "sleep"],
  [0xa6, "VK_BROWSER_BACK", "ac_back"],
  [0xa7, "VK_BROWSER_FORWARD", "ac_forward"],
  [0xa8, "VK_BROWSER_REFRESH", "ac_refresh"],
  [0xa9, "VK_BROWSER_STOP", "stop"],
  [0xaa, "VK_BROWSER_SEARCH", "find"],
  [0xab, "VK_BROWSER_FAVORITES", "ac_bookmarks"],
  [0xac, "VK_BROWSER_HOME", "ac_home"],
  [0xad, "VK_VOLUME_MUTE", "audiomute"],
  [0xae, "VK_VOLUME_DOWN", "volumedown"],
  [0xaf, "VK_VOLUME_UP", "volumeup"],
  [0xb0, "VK_MEDIA_NEXT_TRACK", "audionext"],
  [0xb1, "VK_MEDIA_PREV_TRACK", "audioprev"],
  [0xb2, "VK_MEDIA_STOP", "audiostop"],
  [0xb3, "VK_MEDIA_PLAY_PAUSE", "audioplay"],
  [0xb4, "VK_LAUNCH_MAIL", "mail"],
  [0xb5, "VK_LAUNCH_MEDIA_SELECT", "mediaselect"],
  [0xb6, "VK_LAUNCH_APP1", "computer"],
  [0xb7, "VK_LAUNCH_APP2", "calculator"],
];

/**
 * Keys a full keyboard has that QEMU's input layer cannot express: QEMU 7.2's
 * QKeyCode has no F13–F24, and sending them as key numbers maps to other keys
 * (XT 0x64 arrives as `open`). They are counted as unmapped, never sent.
 */
export const UNMAPPED_VKS: readonly (readonly [number, string])[] = Array.from(
  { length: 12 },
  (_, i) => [0x7c + i, `VK_F${i + 13}`] as const,
);

export const VK_TO_QCODE: ReadonlyMap<number, string> = new Map(VK_QCODE_ENTRIES.map(([vk, , q]) => [vk, q]));

/**
 * US-layout characters → key taps, for UTF-8 text packets on backends that can
 * only press keys. Characters outside this table cannot be typed that way.
 */
export const US_CHAR_KEYS: ReadonlyMap<string, { qcode: string; shift: boolean }> = (() => {
  const m = new Map<string, { qcode: string; shift: boolean }>();
  for (const c of "abcdefghijklmnopqrstuvwxyz") {
    m.set(c, { qcode: c, shift: false });
    m.set(c.toUpperCase(), { qcode: c, shift: true });
  }
  const pairs: [string, string, string][] = [
    ["1", "!", "1"], ["2", "@", "2"], ["3", "#", "3"], ["4", "$", "4"], ["5", "%", "5"],
    ["6", "^", "6"], ["7", "&", "7"], ["8", "*", "8"], ["9", "(", "9"], ["0", ")", "0"],
    ["-", "_", "minus"], ["=", "+", "equal"], ["[", "{", "bracket_left"], ["]", "}", "bracket_right"],
    ["\\", "|", "backslash"], [";", ":", "semicolon"], ["'", '"', "apostrophe"], [",", "<", "comma"],
    [".", ">", "dot"], ["/", "?", "slash"], ["`", "~", "grave_accent"],
  ];
  for (const [plain, shifted, qcode] of pairs) {
    m.set(plain, { qcode, shift: false });
    m.set(shifted, { qcode, shift: true });
  }
  m.set(" ", { qcode: "spc", shift: false });
  m.set("\n", { qcode: "ret", shift: false });
  m.set("\t", { qcode: "tab", shift: false });
  return m;
})();
