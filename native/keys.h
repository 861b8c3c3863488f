/*
 * keys — one table of every key of the 104/105/106/107/109-key PC layouts and the
 * media/system keys, across the code worlds input passes through:
 *
 *   - Linux evdev KEY_* codes (linux/input-event-codes.h);
 *   - USB HID usages: page 0x07 (keyboard/keypad), 0x0C (consumer: media, browser and
 *     launch keys) and 0x01 (generic desktop system controls: sleep, wake);
 *   - PS/2 scancode set 1 and set 2, make and break as full byte sequences with their
 *     E0/E1 prefixes (PrintScreen and Pause are multi-byte; Pause has no break);
 *   - QEMU's QKeyCode names (what QMP input-send-event takes; NULL: QEMU has none);
 *   - Windows virtual-key codes, as GameStream clients send them (0: none).
 *
 * Row record (neuron_keys_row), 96 bytes, little-endian:
 *   0   u16 evdev code
 *   2   u16 HID usage page (0x07, 0x0C or 0x01)
 *   4   u16 HID usage
 *   6   u8  Windows VK (0 = none)
 *   7   u8  flags (NEURON_KEY_*)
 *   8   4 × neuron_ps2_seq (9 bytes each: u8 len, u8 bytes[8]):
 *       8 set 1 make, 17 set 1 break, 26 set 2 make, 35 set 2 break (len 0 = none)
 *   44  char name[24]  ("KEY_A", NUL-terminated)
 *   68  char qcode[24] ("a"; empty = QEMU has no code for the key)
 *   92  u32 reserved (0)
 *
 * Sequences not in the table (documented, not rows): Alt+PrintScreen sends SysRq
 * (set 1: 54 / d4, set 2: 84 / f0 84); Ctrl+Pause sends Break (set 1: e0 46 e0 c6,
 * set 2: e0 7e e0 f0 7e). Korean Hangeul/Hanja (f2, f1) have no break code.
 *
 * Lookups return the row index, or -1 when no row matches. Several codes may name
 * one key (aliases): Windows VK_SHIFT/VK_CONTROL/VK_MENU are the left keys,
 * VK_SEPARATOR the keypad comma, HID 0x32 (ISO #~) the backslash key (Linux maps both
 * to KEY_BACKSLASH); a row whose VK it shares with another (keypad Enter: VK_RETURN)
 * carries NEURON_KEY_VK_SHARED and is never the answer of a VK lookup.
 */
#ifndef NEURON_KEYS_H
#define NEURON_KEYS_H

#include "neuron.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NEURON_KEYS_ROW_SIZE 96u

/* The key is part of the 104-key US layout (all layouts share it). */
#define NEURON_KEY_BASE 0x01u
/* A key of the ISO 105 (102nd), Japanese 106/109, Brazilian 107 or Korean layouts. */
#define NEURON_KEY_INTL 0x02u
/* A media, browser, launch or system key (consumer / generic desktop page). */
#define NEURON_KEY_MEDIA 0x04u
/* An extra function key (F13-F24). */
#define NEURON_KEY_EXTRA 0x08u
/* The row's VK is another row's too; VK lookups never return this row. */
#define NEURON_KEY_VK_SHARED 0x10u

typedef struct neuron_ps2_seq {
    uint8_t len;      /* bytes used (0..8) */
    uint8_t bytes[8]; /* the sequence, prefixes first */
} neuron_ps2_seq;

typedef struct neuron_key_row {
    uint16_t evdev;
    uint16_t hid_page;
    uint16_t hid_usage;
    uint8_t vk;
    uint8_t flags;
    neuron_ps2_seq set1_make;
    neuron_ps2_seq set1_break;
    neuron_ps2_seq set2_make;
    neuron_ps2_seq set2_break;
    char name[24];
    char qcode[24];
    uint32_t reserved;
} neuron_key_row;

_Static_assert(sizeof(neuron_ps2_seq) == 9, "ps2 seq is 9 bytes");
_Static_assert(sizeof(neuron_key_row) == NEURON_KEYS_ROW_SIZE, "key row is 96 bytes");
_Static_assert(__builtin_offsetof(neuron_key_row, set1_make) == 8, "set1_make at 8");
_Static_assert(__builtin_offsetof(neuron_key_row, set2_break) == 35, "set2_break at 35");
_Static_assert(__builtin_offsetof(neuron_key_row, name) == 44, "name at 44");
_Static_assert(__builtin_offsetof(neuron_key_row, qcode) == 68, "qcode at 68");
_Static_assert(__builtin_offsetof(neuron_key_row, reserved) == 92, "reserved at 92");

/* Number of rows. */
NEURON_EXPORT uint32_t neuron_keys_count(void);
/* Copies row `index` into out (NEURON_KEYS_ROW_SIZE bytes). NEURON_ERANGE past the end,
 * NEURON_EINVAL when out is NULL or cap too small. */
NEURON_EXPORT int32_t neuron_keys_row(uint32_t index, uint8_t *out, size_t cap);

NEURON_EXPORT int32_t neuron_keys_by_evdev(uint32_t code);
NEURON_EXPORT int32_t neuron_keys_by_hid(uint32_t page, uint32_t usage);
NEURON_EXPORT int32_t neuron_keys_by_vk(uint32_t vk);
/* name: "KEY_A"; qcode: "a" (NUL-terminated, at most 23 bytes). */
NEURON_EXPORT int32_t neuron_keys_by_name(const char *name);
NEURON_EXPORT int32_t neuron_keys_by_qcode(const char *qcode);
/* A complete make sequence of set 1 or set 2 (`set` 1 or 2) → row; break sequences too. */
NEURON_EXPORT int32_t neuron_keys_by_ps2(uint32_t set, const uint8_t *bytes, size_t len);

#ifdef __cplusplus
}
#endif
#endif
