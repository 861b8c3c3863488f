/* USB HID report descriptors and reports (hid.h), and the descriptor parser. */
#include "../hid.h"

#include <string.h>

static const uint8_t kbd_6kro[] = {
    0x05, 0x01, 0x09, 0x06, 0xa1, 0x01,             /* Generic Desktop, Keyboard, Application */
    0x05, 0x07, 0x19, 0xe0, 0x29, 0xe7, 0x15, 0x00, 0x25, 0x01, 0x75, 0x01, 0x95, 0x08, 0x81, 0x02, /* modifiers */
    0x95, 0x01, 0x75, 0x08, 0x81, 0x01,             /* reserved byte */
    0x95, 0x05, 0x75, 0x01, 0x05, 0x08, 0x19, 0x01, 0x29, 0x05, 0x91, 0x02, /* LEDs */
    0x95, 0x01, 0x75, 0x03, 0x91, 0x01,             /* LED padding */
    0x95, 0x06, 0x75, 0x08, 0x15, 0x00, 0x26, 0xff, 0x00, 0x05, 0x07, 0x19, 0x00, 0x2a, 0xff, 0x00, 0x81, 0x00, /* 6 keys */
    0xc0,
};

static const uint8_t kbd_nkro[] = {
    0x05, 0x01, 0x09, 0x06, 0xa1, 0x01,
    0x05, 0x07, 0x19, 0xe0, 0x29, 0xe7, 0x15, 0x00, 0x25, 0x01, 0x75, 0x01, 0x95, 0x08, 0x81, 0x02,
    0x05, 0x07, 0x19, 0x00, 0x29, 0x9f, 0x15, 0x00, 0x25, 0x01, 0x75, 0x01, 0x96, 0xa0, 0x00, 0x81, 0x02, /* 160 key bits */
    0x95, 0x05, 0x75, 0x01, 0x05, 0x08, 0x19, 0x01, 0x29, 0x05, 0x91, 0x02,
    0x95, 0x01, 0x75, 0x03, 0x91, 0x01,
    0xc0,
};

static const uint8_t mouse[] = {
    0x05, 0x01, 0x09, 0x02, 0xa1, 0x01, 0x09, 0x01, 0xa1, 0x00, /* Mouse, Pointer */
    0x05, 0x09, 0x19, 0x01, 0x29, 0x05, 0x15, 0x00, 0x25, 0x01, 0x95, 0x05, 0x75, 0x01, 0x81, 0x02,
    0x95, 0x01, 0x75, 0x03, 0x81, 0x01,
    0x05, 0x01, 0x09, 0x30, 0x09, 0x31, 0x16, 0x01, 0x80, 0x26, 0xff, 0x7f, 0x75, 0x10, 0x95, 0x02, 0x81, 0x06, /* X, Y rel */
    0xa1, 0x02,                                     /* Logical: wheel with its multiplier */
    0x09, 0x48, 0x15, 0x00, 0x25, 0x01, 0x35, 0x01, 0x45, 0x78, 0x75, 0x02, 0x95, 0x01, 0xb1, 0x02,
    0x35, 0x00, 0x45, 0x00,
    0x09, 0x38, 0x16, 0x01, 0x80, 0x26, 0xff, 0x7f, 0x75, 0x10, 0x95, 0x01, 0x81, 0x06,
    0xc0,
    0xa1, 0x02,                                     /* Logical: AC Pan with its multiplier */
    0x09, 0x48, 0x15, 0x00, 0x25, 0x01, 0x35, 0x01, 0x45, 0x78, 0x75, 0x02, 0x95, 0x01, 0xb1, 0x02,
    0x35, 0x00, 0x45, 0x00,
    0x05, 0x0c, 0x0a, 0x38, 0x02, 0x16, 0x01, 0x80, 0x26, 0xff, 0x7f, 0x75, 0x10, 0x95, 0x01, 0x81, 0x06,
    0xc0,
    0x75, 0x04, 0x95, 0x01, 0xb1, 0x01,             /* feature padding to a byte */
    0xc0, 0xc0,
};

static const uint8_t tablet[] = {
    0x05, 0x01, 0x09, 0x02, 0xa1, 0x01, 0x09, 0x01, 0xa1, 0x00,
    0x05, 0x09, 0x19, 0x01, 0x29, 0x05, 0x15, 0x00, 0x25, 0x01, 0x95, 0x05, 0x75, 0x01, 0x81, 0x02,
    0x95, 0x01, 0x75, 0x03, 0x81, 0x01,
    0x05, 0x01, 0x09, 0x30, 0x09, 0x31, 0x15, 0x00, 0x26, 0xff, 0x7f, 0x35, 0x00, 0x46, 0xff, 0x7f, 0x75, 0x10, 0x95, 0x02, 0x81, 0x02,
    0x09, 0x38, 0x15, 0x81, 0x25, 0x7f, 0x35, 0x00, 0x45, 0x00, 0x75, 0x08, 0x95, 0x01, 0x81, 0x06,
    0xc0, 0xc0,
};

static const uint8_t xbox[] = {
    0x05, 0x01, 0x09, 0x05, 0xa1, 0x01,             /* Gamepad */
    0x09, 0x01, 0xa1, 0x00, 0x09, 0x30, 0x09, 0x31, 0x15, 0x00, 0x27, 0xff, 0xff, 0x00, 0x00, 0x95, 0x02, 0x75, 0x10, 0x81, 0x02, 0xc0,
    0x09, 0x01, 0xa1, 0x00, 0x09, 0x32, 0x09, 0x35, 0x15, 0x00, 0x27, 0xff, 0xff, 0x00, 0x00, 0x95, 0x02, 0x75, 0x10, 0x81, 0x02, 0xc0,
    0x05, 0x02, 0x09, 0xc5, 0x15, 0x00, 0x26, 0xff, 0x03, 0x95, 0x01, 0x75, 0x0a, 0x81, 0x02, /* brake = LT */
    0x15, 0x00, 0x25, 0x00, 0x75, 0x06, 0x95, 0x01, 0x81, 0x03,
    0x05, 0x02, 0x09, 0xc4, 0x15, 0x00, 0x26, 0xff, 0x03, 0x95, 0x01, 0x75, 0x0a, 0x81, 0x02, /* accelerator = RT */
    0x15, 0x00, 0x25, 0x00, 0x75, 0x06, 0x95, 0x01, 0x81, 0x03,
    0x05, 0x01, 0x09, 0x39, 0x15, 0x01, 0x25, 0x08, 0x35, 0x00, 0x46, 0x3b, 0x01, 0x66, 0x14, 0x00, 0x75, 0x04, 0x95, 0x01, 0x81, 0x42, /* hat */
    0x75, 0x04, 0x95, 0x01, 0x15, 0x00, 0x25, 0x00, 0x35, 0x00, 0x45, 0x00, 0x65, 0x00, 0x81, 0x03,
    0x05, 0x09, 0x19, 0x01, 0x29, 0x0f, 0x15, 0x00, 0x25, 0x01, 0x75, 0x01, 0x95, 0x0f, 0x81, 0x02, /* 15 buttons */
    0x15, 0x00, 0x25, 0x00, 0x75, 0x01, 0x95, 0x01, 0x81, 0x03,
    0x06, 0x00, 0xff, 0x09, 0x01, 0x15, 0x00, 0x26, 0xff, 0x00, 0x75, 0x08, 0x95, 0x04, 0x91, 0x02, /* rumble out */
    0xc0,
};

static const uint8_t dualsense[] = {
    0x05, 0x01, 0x09, 0x05, 0xa1, 0x01, 0x85, 0x01, /* Gamepad, report 1 */
    0x09, 0x30, 0x09, 0x31, 0x09, 0x32, 0x09, 0x35, 0x09, 0x33, 0x09, 0x34, 0x15, 0x00, 0x26, 0xff, 0x00, 0x75, 0x08, 0x95, 0x06, 0x81, 0x02, /* LX LY RX RY L2 R2 */
    0x06, 0x00, 0xff, 0x09, 0x20, 0x95, 0x01, 0x81, 0x02, /* sequence */
    0x05, 0x01, 0x09, 0x39, 0x15, 0x00, 0x25, 0x07, 0x35, 0x00, 0x46, 0x3b, 0x01, 0x65, 0x14, 0x75, 0x04, 0x95, 0x01, 0x81, 0x42, /* hat */
    0x65, 0x00, 0x05, 0x09, 0x19, 0x01, 0x29, 0x0f, 0x15, 0x00, 0x25, 0x01, 0x75, 0x01, 0x95, 0x0f, 0x81, 0x02, /* 15 buttons */
    0x06, 0x00, 0xff, 0x09, 0x21, 0x95, 0x0d, 0x81, 0x02, /* vendor bits to byte 11 */
    0x06, 0x00, 0xff, 0x09, 0x22, 0x15, 0x00, 0x26, 0xff, 0x00, 0x75, 0x08, 0x95, 0x34, 0x81, 0x02, /* bytes 12..63: sensors, touch, status */
    0x85, 0x02, 0x09, 0x23, 0x95, 0x2f, 0x91, 0x02, /* output 2: 47 bytes */
    0x85, 0x05, 0x09, 0x33, 0x95, 0x28, 0xb1, 0x02, /* feature 5: calibration */
    0x85, 0x09, 0x09, 0x34, 0x95, 0x13, 0xb1, 0x02, /* feature 9: pairing */
    0x85, 0x20, 0x09, 0x26, 0x95, 0x3f, 0xb1, 0x02, /* feature 0x20: firmware */
    0xc0,
};

static const struct {
    const uint8_t *d;
    size_t n;
} descriptors[] = {
    {NULL, 0},
    {kbd_6kro, sizeof kbd_6kro},
    {kbd_nkro, sizeof kbd_nkro},
    {mouse, sizeof mouse},
    {tablet, sizeof tablet},
    {xbox, sizeof xbox},
    {dualsense, sizeof dualsense},
};

int32_t neuron_hid_descriptor(uint32_t kind, uint8_t *out, size_t cap) {
    if (!out || kind == 0 || kind >= sizeof descriptors / sizeof descriptors[0]) return NEURON_EINVAL;
    if (cap < descriptors[kind].n) return NEURON_ERANGE;
    memcpy(out, descriptors[kind].d, descriptors[kind].n);
    return (int32_t)descriptors[kind].n;
}

/* ---- parser */

typedef struct {
    uint32_t usage_page, report_size, report_count, report_id;
    int has_page, has_size, has_count;
} globals;

static neuron_hid_report_info *report_of(neuron_hid_info *info, uint8_t id) {
    for (uint32_t i = 0; i < info->reports; i++)
        if (info->report[i].id == id) return &info->report[i];
    if (info->reports == NEURON_HID_MAX_REPORTS) return NULL;
    neuron_hid_report_info *r = &info->report[info->reports++];
    memset(r, 0, sizeof *r);
    r->id = id;
    return r;
}

static int32_t refuse(neuron_hid_info *info) {
    memset(info, 0, sizeof *info);
    return NEURON_EFORMAT;
}

int32_t neuron_hid_parse(const uint8_t *desc, size_t len, neuron_hid_info *info) {
    if (!info) return NEURON_EINVAL;
    memset(info, 0, sizeof *info);
    if (!desc || len == 0 || len > NEURON_HID_MAX_DESCRIPTOR) return NEURON_EFORMAT;
    globals g = {0}, stack[4];
    int sp = 0, depth = 0, ids_seen = 0, main_seen = 0, usages = 0;
    size_t at = 0;
    while (at < len) {
        uint8_t prefix = desc[at];
        if (prefix == 0xfe) { /* long item: size, tag, data */
            if (at + 3 > len || at + 3 + desc[at + 1] > len) return refuse(info);
            at += 3u + desc[at + 1];
            continue;
        }
        size_t size = (size_t[]){0, 1, 2, 4}[prefix & 3];
        if (at + 1 + size > len) return refuse(info);
        uint32_t v = 0;
        for (size_t i = 0; i < size; i++) v |= (uint32_t)desc[at + 1 + i] << (8 * i);
        uint8_t type = (prefix >> 2) & 3, tag = prefix >> 4;
        at += 1 + size;
        if (type == 0) { /* main */
            if (tag == 0x8 || tag == 0x9 || tag == 0xb) { /* input, output, feature */
                if (!g.has_page || !g.has_size || !g.has_count) return refuse(info);
                if (depth == 0) return refuse(info);
                if (ids_seen && g.report_id == 0) return refuse(info);
                main_seen = 1;
                neuron_hid_report_info *r = report_of(info, (uint8_t)g.report_id);
                if (!r) return refuse(info);
                uint32_t bits = g.report_size * g.report_count;
                uint32_t *t = tag == 0x8 ? &r->input_bits : tag == 0x9 ? &r->output_bits : &r->feature_bits;
                *t += bits;
                if (*t > 8192) return refuse(info);
            } else if (tag == 0xa) { /* collection */
                if (depth == 16) return refuse(info);
                if (depth == 0 && info->collections == 0) info->usage = info->usage ? info->usage : 0;
                depth++;
                info->collections++;
            } else if (tag == 0xc) { /* end collection */
                if (depth == 0 || size != 0) return refuse(info);
                depth--;
            } else {
                return refuse(info);
            }
            usages = 0;
        } else if (type == 1) { /* global */
            switch (tag) {
            case 0x0:
                if (v == 0 || v > 0xffff) return refuse(info);
                g.usage_page = v;
                g.has_page = 1;
                if (info->collections == 0 && info->usage_page == 0) info->usage_page = v;
                break;
            case 0x1: case 0x2: case 0x3: case 0x4: case 0x5: case 0x6: break; /* logical/physical min/max, unit exponent, unit */
            case 0x7:
                if (v == 0 || v > 32) return refuse(info);
                g.report_size = v;
                g.has_size = 1;
                break;
            case 0x8:
                if (v == 0 || v > 255) return refuse(info);
                if (!ids_seen && main_seen) return refuse(info); /* IDs throughout or not at all */
                ids_seen = 1;
                g.report_id = v;
                break;
            case 0x9:
                if (v == 0 || v > 1024) return refuse(info);
                g.report_count = v;
                g.has_count = 1;
                break;
            case 0xa:
                if (sp == 4) return refuse(info);
                stack[sp++] = g;
                break;
            case 0xb:
                if (sp == 0) return refuse(info);
                g = stack[--sp];
                break;
            default:
                return refuse(info);
            }
        } else if (type == 2) { /* local */
            if (tag > 0xa) return refuse(info);
            if (tag == 0x0 && info->collections == 0 && info->usage == 0) info->usage = v;
            if (++usages > 1024) return refuse(info);
        } else {
            return refuse(info);
        }
    }
    if (depth != 0 || sp != 0 || info->reports == 0 || info->collections == 0) return refuse(info);
    return NEURON_OK;
}

/* ---- reports */

static int16_t clamp16(int32_t v) { return (int16_t)(v < -32767 ? -32767 : v > 32767 ? 32767 : v); }
static void le16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }

int32_t neuron_hid_keyboard_report(uint32_t kind, const uint8_t *usages, size_t n, uint8_t *out, size_t cap) {
    size_t need = kind == NEURON_HID_KEYBOARD_6KRO ? 8 : kind == NEURON_HID_KEYBOARD_NKRO ? 21 : 0;
    if (!need || !out || (n && !usages) || n > 256) return NEURON_EINVAL;
    if (cap < need) return NEURON_ERANGE;
    memset(out, 0, need);
    size_t keys = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t u = usages[i];
        if (u >= 0xe0 && u <= 0xe7) {
            out[0] |= (uint8_t)(1u << (u - 0xe0));
        } else if (u < 4) {
            return NEURON_EINVAL; /* 0..3 are no keys */
        } else if (kind == NEURON_HID_KEYBOARD_NKRO) {
            if (u > 0x9f) return NEURON_EINVAL;
            out[1 + u / 8] |= (uint8_t)(1u << (u % 8));
        } else if (keys < 6) {
            int dup = 0;
            for (size_t k = 0; k < keys; k++) dup |= out[2 + k] == u;
            if (!dup) out[2 + keys++] = u;
        } else {
            memset(out + 2, 0x01, 6); /* ErrorRollOver */
            break;
        }
    }
    return (int32_t)need;
}

int32_t neuron_hid_mouse_report(uint32_t buttons, int32_t dx, int32_t dy, int32_t wheel, int32_t pan, uint8_t *out, size_t cap) {
    if (!out || buttons > 0x1f) return NEURON_EINVAL;
    if (cap < 9) return NEURON_ERANGE;
    out[0] = (uint8_t)buttons;
    le16(out + 1, (uint16_t)clamp16(dx));
    le16(out + 3, (uint16_t)clamp16(dy));
    le16(out + 5, (uint16_t)clamp16(wheel));
    le16(out + 7, (uint16_t)clamp16(pan));
    return 9;
}

int32_t neuron_hid_mouse_boot_report(uint32_t buttons, int32_t dx, int32_t dy, uint8_t *out, size_t cap) {
    if (!out || buttons > 0x1f) return NEURON_EINVAL;
    if (cap < 3) return NEURON_ERANGE;
    out[0] = (uint8_t)(buttons & 7);
    out[1] = (uint8_t)(int8_t)(dx < -127 ? -127 : dx > 127 ? 127 : dx);
    out[2] = (uint8_t)(int8_t)(dy < -127 ? -127 : dy > 127 ? 127 : dy);
    return 3;
}

int32_t neuron_hid_tablet_report(uint32_t buttons, uint32_t x, uint32_t y, int32_t wheel, uint8_t *out, size_t cap) {
    if (!out || buttons > 0x1f || x > 0x7fff || y > 0x7fff) return NEURON_EINVAL;
    if (cap < 6) return NEURON_ERANGE;
    out[0] = (uint8_t)buttons;
    le16(out + 1, x);
    le16(out + 3, y);
    out[5] = (uint8_t)(int8_t)(wheel < -127 ? -127 : wheel > 127 ? 127 : wheel);
    return 6;
}

/* d-pad bits (up 1, down 2, left 4, right 8) → hat 0..7 clockwise from up, or `centre`. */
static uint8_t hat(uint32_t b, uint8_t base, uint8_t centre) {
    int up = b & 1, down = (b >> 1) & 1, left = (b >> 2) & 1, right = (b >> 3) & 1;
    if (up && down) up = down = 0;
    if (left && right) left = right = 0;
    int h = up ? (right ? 1 : left ? 7 : 0) : down ? (right ? 3 : left ? 5 : 4) : right ? 2 : left ? 6 : -1;
    return h < 0 ? centre : (uint8_t)(h + base);
}

int32_t neuron_hid_pad_report(uint32_t kind, const neuron_hid_pad_state *s, uint8_t *out, size_t cap) {
    if (!s || !out) return NEURON_EINVAL;
    uint32_t b = s->buttons;
    if (kind == NEURON_HID_GAMEPAD_XBOX) {
        if (cap < 15) return NEURON_ERANGE;
        /* HID y grows downwards; XInput +y is up */
        le16(out + 0, (uint16_t)(s->lx + 32768));
        le16(out + 2, (uint16_t)(32767 - s->ly));
        le16(out + 4, (uint16_t)(s->rx + 32768));
        le16(out + 6, (uint16_t)(32767 - s->ry));
        le16(out + 8, (uint32_t)s->lt * 1023 / 255);
        le16(out + 10, (uint32_t)s->rt * 1023 / 255);
        out[12] = hat(b, 1, 0);
        static const uint32_t order[] = {0x1000, 0x2000, 0x4000, 0x8000, 0x0100, 0x0200, 0x0020, 0x0010, 0x0400, 0x0040, 0x0080};
        uint16_t bits = 0;
        for (unsigned i = 0; i < sizeof order / sizeof order[0]; i++)
            if (b & order[i]) bits |= (uint16_t)(1u << i);
        le16(out + 13, bits);
        return 15;
    }
    if (kind == NEURON_HID_GAMEPAD_DUALSENSE) {
        if (cap < 64) return NEURON_ERANGE;
        if (s->touch_count > 2) return NEURON_EINVAL;
        memset(out, 0, 64);
        out[0] = 0x01;
        out[1] = (uint8_t)((s->lx + 32768) >> 8);
        out[2] = (uint8_t)((32767 - s->ly) >> 8);
        out[3] = (uint8_t)((s->rx + 32768) >> 8);
        out[4] = (uint8_t)((32767 - s->ry) >> 8);
        out[5] = s->lt;
        out[6] = s->rt;
        out[7] = s->sequence;
        out[8] = (uint8_t)(hat(b, 0, 8) | (b & 0x4000 ? 0x10 : 0) | (b & 0x1000 ? 0x20 : 0) | (b & 0x2000 ? 0x40 : 0) | (b & 0x8000 ? 0x80 : 0));
        out[9] = (uint8_t)((b & 0x0100 ? 0x01 : 0) | (b & 0x0200 ? 0x02 : 0) | (s->lt ? 0x04 : 0) | (s->rt ? 0x08 : 0) | (b & 0x0020 ? 0x10 : 0) |
                           (b & 0x0010 ? 0x20 : 0) | (b & 0x0040 ? 0x40 : 0) | (b & 0x0080 ? 0x80 : 0));
        out[10] = (uint8_t)((b & 0x0400 ? 0x01 : 0) | (b & 0x100000 ? 0x02 : 0) | (b & 0x200000 ? 0x04 : 0));
        for (int i = 0; i < 3; i++) {
            le16(out + 16 + 2 * i, (uint16_t)s->gyro[i]);
            le16(out + 22 + 2 * i, (uint16_t)s->accel[i]);
        }
        out[28] = (uint8_t)s->sensor_time;
        out[29] = (uint8_t)(s->sensor_time >> 8);
        out[30] = (uint8_t)(s->sensor_time >> 16);
        out[31] = (uint8_t)(s->sensor_time >> 24);
        for (int t = 0; t < 2; t++) {
            uint8_t *p = out + 33 + 4 * t;
            if (t >= s->touch_count) {
                p[0] = 0x80;
                continue;
            }
            uint16_t x = s->touch_x[t] > 1919 ? 1919 : s->touch_x[t], y = s->touch_y[t] > 1079 ? 1079 : s->touch_y[t];
            p[0] = s->touch_id[t] & 0x7f;
            p[1] = (uint8_t)x;
            p[2] = (uint8_t)((x >> 8) | ((y & 0x0f) << 4));
            p[3] = (uint8_t)(y >> 4);
        }
        return 64;
    }
    return NEURON_EINVAL;
}
