/*
 * hid — USB HID report descriptors and reports for the virtual devices the appliance
 * creates in guests (Linux: uhid through the guest agent), and a descriptor parser that
 * checks every descriptor (ours and any handed to us) before use.
 *
 * Devices (neuron_hid_kind) and their input reports (little-endian):
 *   KEYBOARD_6KRO  boot keyboard, no report ID, 8 bytes: [0] modifier bits (E0..E7),
 *                  [1] reserved 0, [2..7] up to 6 usages (all 0x01 = rollover error).
 *                  Output: 1 byte LEDs (bit0 NumLock, 1 CapsLock, 2 ScrollLock, 3 Compose, 4 Kana).
 *   KEYBOARD_NKRO  no report ID, 21 bytes: [0] modifier bits, [1..20] one bit per usage
 *                  0x00..0x9F (bit u%8 of byte 1+u/8). Output: LEDs as above.
 *   MOUSE          no report ID, 9 bytes: [0] buttons 1..5 (bits 0..4), [1..2] i16 dx,
 *                  [3..4] i16 dy, [5..6] i16 wheel, [7..8] i16 AC Pan (horizontal), wheel
 *                  units 1/120 notch (Resolution Multiplier feature, 1 byte, 120 when set).
 *                  Boot protocol: 3 bytes [buttons, i8 dx, i8 dy].
 *   TABLET         no report ID, 6 bytes: [0] buttons, [1..2] u16 x, [3..4] u16 y (0..32767),
 *                  [5] i8 wheel (notches).
 *   GAMEPAD_XBOX   no report ID, 15 bytes: [0..7] u16 LX LY RX RY (0..65535, 32768 centre,
 *                  y down), [8..9] u16 LT, [10..11] u16 RT (0..1023, 10 bits), [12] hat
 *                  (1..8 clockwise from up, 0 centred), [13..14] 15 buttons (A B X Y LB RB
 *                  Back Start Guide LS RS, then 4 spare). Output: 4 bytes rumble
 *                  [strong, weak, left trigger, right trigger] (0..255).
 *   GAMEPAD_DUALSENSE report ID 0x01, 64 bytes, the layout of Sony's DualSense USB report:
 *                  [1..4] LX LY RX RY (u8, 128 centre), [5] L2, [6] R2, [7] sequence,
 *                  [8] hat (low nibble, 8 = centred) | square 0x10 cross 0x20 circle 0x40
 *                  triangle 0x80, [9] L1 R1 L2 R2 create options L3 R3 (bits 0..7),
 *                  [10] PS 0x01 touchpad-click 0x02 mute 0x04, [16..21] i16 gyro x y z,
 *                  [22..27] i16 accel x y z, [28..31] u32 sensor timestamp (0.33 µs),
 *                  [33..36] touch 1, [37..40] touch 2: [0] bit7 = not touching, bits0..6 id,
 *                  then x (12 bits) and y (12 bits) packed little-endian; 0..1919 x 0..1079.
 *                  Output report 0x02 (48 bytes: rumble, LEDs); feature reports 0x05
 *                  (calibration, 41 bytes), 0x09 (pairing, 20), 0x20 (firmware, 64).
 */
#ifndef NEURON_HID_H
#define NEURON_HID_H

#include "neuron.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum neuron_hid_kind {
    NEURON_HID_KEYBOARD_6KRO = 1,
    NEURON_HID_KEYBOARD_NKRO = 2,
    NEURON_HID_MOUSE = 3,
    NEURON_HID_TABLET = 4,
    NEURON_HID_GAMEPAD_XBOX = 5,
    NEURON_HID_GAMEPAD_DUALSENSE = 6,
} neuron_hid_kind;

#define NEURON_HID_MAX_DESCRIPTOR 4096u
#define NEURON_HID_MAX_REPORTS 16u

/* Copies the report descriptor of `kind` into out; returns its length, NEURON_EINVAL for an
 * unknown kind or NULL out, NEURON_ERANGE when cap is too small. */
NEURON_EXPORT int32_t neuron_hid_descriptor(uint32_t kind, uint8_t *out, size_t cap);

/* What the parser learnt: per report (ID 0 = no report IDs), the bits of each type. */
typedef struct neuron_hid_report_info {
    uint8_t id;          /* report ID (0: the descriptor uses none) */
    uint8_t reserved[3]; /* 0 */
    uint32_t input_bits;
    uint32_t output_bits;
    uint32_t feature_bits;
} neuron_hid_report_info;

typedef struct neuron_hid_info {
    uint32_t reports;   /* entries used in report[] */
    uint32_t collections;
    uint32_t usage_page; /* of the first application collection */
    uint32_t usage;
    neuron_hid_report_info report[NEURON_HID_MAX_REPORTS];
} neuron_hid_info;

_Static_assert(sizeof(neuron_hid_report_info) == 16, "report info is 16 bytes");
_Static_assert(sizeof(neuron_hid_info) == 16 + 16 * NEURON_HID_MAX_REPORTS, "hid info layout");

/* Parses a report descriptor: every item whole, collections and push/pop balanced, every
 * main item with a usage page, report size (1..32) and count (1..1024) defined, report IDs
 * 1..255 used throughout or not at all, no report over 8192 bits. NEURON_OK and `info`, or
 * NEURON_EFORMAT (the descriptor is refused; info is zeroed). */
NEURON_EXPORT int32_t neuron_hid_parse(const uint8_t *desc, size_t len, neuron_hid_info *info);

/* Report builders: return the report length or a negative status. */
/* usages: up to n keyboard-page usages held (0xE0..0xE7 go to the modifier bits). */
NEURON_EXPORT int32_t neuron_hid_keyboard_report(uint32_t kind, const uint8_t *usages, size_t n, uint8_t *out, size_t cap);
NEURON_EXPORT int32_t neuron_hid_mouse_report(uint32_t buttons, int32_t dx, int32_t dy, int32_t wheel, int32_t pan, uint8_t *out, size_t cap);
NEURON_EXPORT int32_t neuron_hid_mouse_boot_report(uint32_t buttons, int32_t dx, int32_t dy, uint8_t *out, size_t cap);
NEURON_EXPORT int32_t neuron_hid_tablet_report(uint32_t buttons, uint32_t x, uint32_t y, int32_t wheel, uint8_t *out, size_t cap);

/* A gamepad state in XInput terms (sticks -32768..32767, +y up; triggers 0..255), GameStream
 * button bits (0x0001 up, 0x0002 down, 0x0004 left, 0x0008 right, 0x0010 start, 0x0020 back,
 * 0x0040 LS, 0x0080 RS, 0x0100 LB, 0x0200 RB, 0x0400 guide, 0x1000 A, 0x2000 B, 0x4000 X,
 * 0x8000 Y, 0x100000 touchpad click, 0x200000 misc). */
typedef struct neuron_hid_pad_state {
    uint32_t buttons;
    int16_t lx, ly, rx, ry;
    uint8_t lt, rt;
    uint8_t sequence; /* DualSense report counter */
    uint8_t touch_count; /* 0..2 */
    int16_t gyro[3];  /* DualSense units */
    int16_t accel[3];
    uint32_t sensor_time;
    uint16_t touch_x[2], touch_y[2]; /* 0..1919, 0..1079 */
    uint8_t touch_id[2];
    uint8_t reserved[2];
} neuron_hid_pad_state;

_Static_assert(sizeof(neuron_hid_pad_state) == 44, "pad state is 44 bytes");

NEURON_EXPORT int32_t neuron_hid_pad_report(uint32_t kind, const neuron_hid_pad_state *s, uint8_t *out, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
