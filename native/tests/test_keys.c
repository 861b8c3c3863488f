/* C-level tests of the key table (keys.h): codes against the kernel's header, the
 * break-code rules of both PS/2 sets, uniqueness, and lookups round-tripping. */
#include "../keys.h"
#include "check.h"

#include <linux/input-event-codes.h>
#include <string.h>

static neuron_key_row row(uint32_t i) {
    neuron_key_row r;
    memset(&r, 0, sizeof r);
    CHECK(neuron_keys_row(i, (uint8_t *)&r, sizeof r) == NEURON_OK);
    return r;
}

static void test_known_codes(void) {
    static const struct { const char *name; int code; } known[] = {
        {"KEY_ESC", KEY_ESC}, {"KEY_A", KEY_A}, {"KEY_102ND", KEY_102ND}, {"KEY_RO", KEY_RO},
        {"KEY_YEN", KEY_YEN}, {"KEY_HENKAN", KEY_HENKAN}, {"KEY_MUHENKAN", KEY_MUHENKAN},
        {"KEY_KATAKANAHIRAGANA", KEY_KATAKANAHIRAGANA}, {"KEY_KPCOMMA", KEY_KPCOMMA},
        {"KEY_HANGEUL", KEY_HANGEUL}, {"KEY_HANJA", KEY_HANJA}, {"KEY_SYSRQ", KEY_SYSRQ},
        {"KEY_PAUSE", KEY_PAUSE}, {"KEY_COMPOSE", KEY_COMPOSE}, {"KEY_F24", KEY_F24},
        {"KEY_PLAYPAUSE", KEY_PLAYPAUSE}, {"KEY_SEARCH", KEY_SEARCH}, {"KEY_MEDIA", KEY_MEDIA},
        {"KEY_RIGHTMETA", KEY_RIGHTMETA}, {"KEY_KPEQUAL", KEY_KPEQUAL}, {"KEY_WAKEUP", KEY_WAKEUP},
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        int32_t at = neuron_keys_by_name(known[i].name);
        CHECK(at >= 0);
        if (at >= 0) CHECK(row((uint32_t)at).evdev == known[i].code);
    }
}

static void test_rows(void) {
    uint32_t n = neuron_keys_count();
    CHECK(n >= 130);
    for (uint32_t i = 0; i < n; i++) {
        neuron_key_row r = row(i);
        CHECK(r.reserved == 0);
        CHECK(r.name[23] == 0 && r.qcode[23] == 0);
        CHECK(strncmp(r.name, "KEY_", 4) == 0);
        CHECK(neuron_keys_by_evdev(r.evdev) == (int32_t)i);
        CHECK(neuron_keys_by_name(r.name) == (int32_t)i);
        CHECK(neuron_keys_by_hid(r.hid_page, r.hid_usage) == (int32_t)i);
        if (r.qcode[0]) CHECK(neuron_keys_by_qcode(r.qcode) == (int32_t)i);
        if (r.vk && !(r.flags & NEURON_KEY_VK_SHARED)) CHECK(neuron_keys_by_vk(r.vk) == (int32_t)i);
        CHECK(r.set1_make.len >= 1 && r.set2_make.len >= 1);
        CHECK(neuron_keys_by_ps2(1, r.set1_make.bytes, r.set1_make.len) == (int32_t)i);
        CHECK(neuron_keys_by_ps2(2, r.set2_make.bytes, r.set2_make.len) == (int32_t)i);
        if (r.set1_break.len) CHECK(neuron_keys_by_ps2(1, r.set1_break.bytes, r.set1_break.len) == (int32_t)i);
        if (r.set2_break.len) CHECK(neuron_keys_by_ps2(2, r.set2_break.bytes, r.set2_break.len) == (int32_t)i);
        /* simple keys: the break rules of each set */
        if (r.set1_make.len == 1 && r.set1_break.len) {
            CHECK(r.set1_break.len == 1 && r.set1_break.bytes[0] == (r.set1_make.bytes[0] | 0x80));
            CHECK(r.set2_break.len == 2 && r.set2_break.bytes[0] == 0xf0 && r.set2_break.bytes[1] == r.set2_make.bytes[0]);
        }
        if (r.set1_make.len == 2 && r.set1_make.bytes[0] == 0xe0) {
            CHECK(r.set1_break.len == 2 && r.set1_break.bytes[0] == 0xe0 && r.set1_break.bytes[1] == (r.set1_make.bytes[1] | 0x80));
            CHECK(r.set2_make.len == 2 && r.set2_make.bytes[0] == 0xe0);
            CHECK(r.set2_break.len == 3 && r.set2_break.bytes[1] == 0xf0 && r.set2_break.bytes[2] == r.set2_make.bytes[1]);
        }
    }
}

static void test_specials(void) {
    static const uint8_t prtsc1[] = {0xe0, 0x2a, 0xe0, 0x37}, prtsc2b[] = {0xe0, 0xf0, 0x7c, 0xe0, 0xf0, 0x12};
    static const uint8_t pause1[] = {0xe1, 0x1d, 0x45, 0xe1, 0x9d, 0xc5};
    CHECK(neuron_keys_by_ps2(1, prtsc1, sizeof prtsc1) == neuron_keys_by_evdev(KEY_SYSRQ));
    CHECK(neuron_keys_by_ps2(2, prtsc2b, sizeof prtsc2b) == neuron_keys_by_evdev(KEY_SYSRQ));
    CHECK(neuron_keys_by_ps2(1, pause1, sizeof pause1) == neuron_keys_by_evdev(KEY_PAUSE));
    CHECK(row((uint32_t)neuron_keys_by_evdev(KEY_PAUSE)).set1_break.len == 0);
    /* aliases */
    CHECK(neuron_keys_by_vk(0x10) == neuron_keys_by_evdev(KEY_LEFTSHIFT));
    CHECK(neuron_keys_by_vk(0x0d) == neuron_keys_by_evdev(KEY_ENTER));
    CHECK(neuron_keys_by_hid(0x07, 0x32) == neuron_keys_by_evdev(KEY_BACKSLASH));
    /* refusals */
    uint8_t buf[NEURON_KEYS_ROW_SIZE];
    CHECK(neuron_keys_row(neuron_keys_count(), buf, sizeof buf) == NEURON_ERANGE);
    CHECK(neuron_keys_row(0, buf, sizeof buf - 1) == NEURON_EINVAL);
    CHECK(neuron_keys_row(0, NULL, sizeof buf) == NEURON_EINVAL);
    CHECK(neuron_keys_by_name(NULL) == -1 && neuron_keys_by_name("") == -1);
    CHECK(neuron_keys_by_name("KEY_ABCDEFGHIJKLMNOPQRSTUVWXYZ") == -1);
    CHECK(neuron_keys_by_ps2(3, prtsc1, 4) == -1 && neuron_keys_by_ps2(1, prtsc1, 0) == -1 && neuron_keys_by_ps2(1, prtsc1, 9) == -1);
    CHECK(neuron_keys_by_vk(0) == -1 && neuron_keys_by_vk(0x1ff) == -1 && neuron_keys_by_evdev(0) == -1);
}

int main(void) {
    test_known_codes();
    test_rows();
    test_specials();
    return check_report("keys");
}
