/* C-level tests of hid.h: every descriptor passes our parser with the report sizes its
 * header documents; malformed descriptors are refused; reports carry what they should. */
#include "../hid.h"
#include "check.h"

#include <string.h>

static void test_descriptors(void) {
    static const struct { uint32_t kind; uint32_t page, usage; uint8_t id; uint32_t in, out, feat; uint32_t reports; } want[] = {
        {NEURON_HID_KEYBOARD_6KRO, 1, 6, 0, 64, 8, 0, 1},
        {NEURON_HID_KEYBOARD_NKRO, 1, 6, 0, 168, 8, 0, 1},
        {NEURON_HID_MOUSE, 1, 2, 0, 72, 0, 8, 1},
        {NEURON_HID_TABLET, 1, 2, 0, 48, 0, 0, 1},
        {NEURON_HID_GAMEPAD_XBOX, 1, 5, 0, 120, 32, 0, 1},
        {NEURON_HID_GAMEPAD_DUALSENSE, 1, 5, 1, 504, 0, 0, 5},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        uint8_t d[NEURON_HID_MAX_DESCRIPTOR];
        int32_t n = neuron_hid_descriptor(want[i].kind, d, sizeof d);
        CHECK(n > 0);
        if (n <= 0) continue;
        CHECK(neuron_hid_descriptor(want[i].kind, d, (size_t)n - 1) == NEURON_ERANGE);
        neuron_hid_info info;
        CHECK(neuron_hid_parse(d, (size_t)n, &info) == NEURON_OK);
        CHECK(info.usage_page == want[i].page && info.usage == want[i].usage);
        CHECK(info.reports == want[i].reports);
        CHECK(info.report[0].id == want[i].id);
        CHECK(info.report[0].input_bits == want[i].in);
        CHECK(info.report[0].output_bits == want[i].out);
        CHECK(info.report[0].feature_bits == want[i].feat);
        /* every truncation is refused, never read past */
        for (int32_t cut = 0; cut < n; cut++) {
            neuron_hid_info t;
            int32_t rc = neuron_hid_parse(d, (size_t)cut, &t);
            CHECK(rc == NEURON_EFORMAT);
        }
    }
    uint8_t d[64];
    CHECK(neuron_hid_descriptor(0, d, sizeof d) == NEURON_EINVAL && neuron_hid_descriptor(7, d, sizeof d) == NEURON_EINVAL);
    /* DualSense: output 2 (47 bytes), features 5, 9, 0x20 */
    uint8_t ds[NEURON_HID_MAX_DESCRIPTOR];
    int32_t n = neuron_hid_descriptor(NEURON_HID_GAMEPAD_DUALSENSE, ds, sizeof ds);
    neuron_hid_info info;
    CHECK(neuron_hid_parse(ds, (size_t)n, &info) == NEURON_OK);
    CHECK(info.report[1].id == 2 && info.report[1].output_bits == 47 * 8);
    CHECK(info.report[2].id == 5 && info.report[2].feature_bits == 40 * 8);
    CHECK(info.report[3].id == 9 && info.report[3].feature_bits == 19 * 8);
    CHECK(info.report[4].id == 0x20 && info.report[4].feature_bits == 63 * 8);
}

static void test_malformed(void) {
    neuron_hid_info info;
    static const uint8_t unbalanced[] = {0x05, 0x01, 0x09, 0x06, 0xa1, 0x01, 0x75, 0x08, 0x95, 0x01, 0x81, 0x02};
    static const uint8_t extra_end[] = {0x05, 0x01, 0xa1, 0x01, 0x75, 0x08, 0x95, 0x01, 0x81, 0x02, 0xc0, 0xc0};
    static const uint8_t no_size[] = {0x05, 0x01, 0xa1, 0x01, 0x95, 0x01, 0x81, 0x02, 0xc0};
    static const uint8_t big_size[] = {0x05, 0x01, 0xa1, 0x01, 0x75, 0x21, 0x95, 0x01, 0x81, 0x02, 0xc0};
    static const uint8_t huge_count[] = {0x05, 0x01, 0xa1, 0x01, 0x75, 0x20, 0x96, 0x00, 0x10, 0x81, 0x02, 0xc0};
    static const uint8_t too_many_bits[] = {0x05, 0x01, 0xa1, 0x01, 0x75, 0x20, 0x96, 0x00, 0x04, 0x81, 0x02, 0x81, 0x02, 0xc0};
    static const uint8_t id_zero[] = {0x05, 0x01, 0xa1, 0x01, 0x85, 0x00, 0x75, 0x08, 0x95, 0x01, 0x81, 0x02, 0xc0};
    static const uint8_t ids_late[] = {0x05, 0x01, 0xa1, 0x01, 0x75, 0x08, 0x95, 0x01, 0x81, 0x02, 0x85, 0x01, 0x81, 0x02, 0xc0};
    static const uint8_t pop_empty[] = {0x05, 0x01, 0xb4, 0xa1, 0x01, 0x75, 0x08, 0x95, 0x01, 0x81, 0x02, 0xc0};
    static const uint8_t push_left[] = {0x05, 0x01, 0xa4, 0xa1, 0x01, 0x75, 0x08, 0x95, 0x01, 0x81, 0x02, 0xc0};
    static const uint8_t outside[] = {0x05, 0x01, 0x75, 0x08, 0x95, 0x01, 0x81, 0x02};
    static const uint8_t reserved_type[] = {0x05, 0x01, 0xa1, 0x01, 0x0c, 0xc0};
    static const uint8_t long_cut[] = {0xfe, 0x10, 0x00, 0x01};
    const struct { const uint8_t *d; size_t n; } bad[] = {
        {unbalanced, sizeof unbalanced}, {extra_end, sizeof extra_end}, {no_size, sizeof no_size}, {big_size, sizeof big_size},
        {huge_count, sizeof huge_count}, {too_many_bits, sizeof too_many_bits}, {id_zero, sizeof id_zero}, {ids_late, sizeof ids_late},
        {pop_empty, sizeof pop_empty}, {push_left, sizeof push_left}, {outside, sizeof outside}, {reserved_type, sizeof reserved_type},
        {long_cut, sizeof long_cut},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        info.reports = 99;
        CHECK(neuron_hid_parse(bad[i].d, bad[i].n, &info) == NEURON_EFORMAT);
        CHECK(info.reports == 0);
    }
    CHECK(neuron_hid_parse(NULL, 0, &info) == NEURON_EFORMAT);
    CHECK(neuron_hid_parse(unbalanced, sizeof unbalanced, NULL) == NEURON_EINVAL);
}

static void test_reports(void) {
    uint8_t r[64];
    const uint8_t keys[] = {0xe0, 0x04, 0x05, 0x04, 0xe5};
    CHECK(neuron_hid_keyboard_report(NEURON_HID_KEYBOARD_6KRO, keys, sizeof keys, r, sizeof r) == 8);
    CHECK(r[0] == 0x21 && r[1] == 0 && r[2] == 0x04 && r[3] == 0x05 && r[4] == 0);
    const uint8_t seven[] = {4, 5, 6, 7, 8, 9, 10};
    CHECK(neuron_hid_keyboard_report(NEURON_HID_KEYBOARD_6KRO, seven, 7, r, sizeof r) == 8);
    CHECK(r[2] == 1 && r[7] == 1);
    CHECK(neuron_hid_keyboard_report(NEURON_HID_KEYBOARD_NKRO, seven, 7, r, sizeof r) == 21);
    CHECK(r[1] == 0xf0 && r[2] == 0x07);
    const uint8_t bad[] = {0xa0};
    CHECK(neuron_hid_keyboard_report(NEURON_HID_KEYBOARD_NKRO, bad, 1, r, sizeof r) == NEURON_EINVAL);
    CHECK(neuron_hid_keyboard_report(NEURON_HID_KEYBOARD_6KRO, keys, 2, r, 7) == NEURON_ERANGE);
    CHECK(neuron_hid_mouse_report(0x11, -5, 70000, 120, -240, r, sizeof r) == 9);
    CHECK(r[0] == 0x11 && r[1] == 0xfb && r[2] == 0xff && r[3] == 0xff && r[4] == 0x7f && r[5] == 120 && r[7] == 0x10 && r[8] == 0xff);
    CHECK(neuron_hid_mouse_boot_report(1, 300, -300, r, 3) == 3 && r[1] == 127 && (int8_t)r[2] == -127);
    CHECK(neuron_hid_tablet_report(0, 32767, 0, 1, r, sizeof r) == 6 && r[1] == 0xff && r[2] == 0x7f);
    CHECK(neuron_hid_tablet_report(0, 32768, 0, 0, r, sizeof r) == NEURON_EINVAL);
    neuron_hid_pad_state s;
    memset(&s, 0, sizeof s);
    s.buttons = 0x1000 | 0x0001 | 0x0008 | 0x100000; /* A, up+right, touchpad click */
    s.ly = 32767;
    s.lt = 255;
    s.gyro[0] = -2;
    s.touch_count = 1;
    s.touch_x[0] = 1919;
    s.touch_y[0] = 1079;
    s.touch_id[0] = 5;
    CHECK(neuron_hid_pad_report(NEURON_HID_GAMEPAD_XBOX, &s, r, sizeof r) == 15);
    CHECK(r[2] == 0 && r[3] == 0 && r[8] == 0xff && r[9] == 0x03 && r[12] == 2 && r[13] == 0x01);
    CHECK(neuron_hid_pad_report(NEURON_HID_GAMEPAD_DUALSENSE, &s, r, sizeof r) == 64);
    CHECK(r[0] == 1 && r[2] == 0 && r[5] == 255 && (r[8] & 0x0f) == 1 && (r[8] & 0x20) && (r[10] & 0x02));
    CHECK(r[16] == 0xfe && r[17] == 0xff);
    CHECK(r[33] == 5 && r[34] == 0x7f && r[35] == (0x07 | (0x07 << 4)) && r[36] == 0x43 && r[37] == 0x80);
    s.touch_count = 3;
    CHECK(neuron_hid_pad_report(NEURON_HID_GAMEPAD_DUALSENSE, &s, r, sizeof r) == NEURON_EINVAL);
    CHECK(neuron_hid_pad_report(99, &s, r, sizeof r) == NEURON_EINVAL);
}

int main(void) {
    test_descriptors();
    test_malformed();
    test_reports();
    return check_report("hid");
}
