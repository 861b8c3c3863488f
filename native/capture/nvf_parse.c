/* NVF1 stream parser (vsock.h): validates every field before it sizes anything. */
#include "../vsock.h"
#include "nvf_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { ST_HEAD, ST_HELLO, ST_FRAME, ST_DAMAGE, ST_PAYLOAD, ST_FAILED };

struct neuron_nvf_parser {
    uint64_t max_frame_bytes;
    int state;
    uint8_t head[NEURON_NVF_FRAME_HEADER_SIZE]; /* hello and frame header are both 32 bytes */
    uint32_t have;                               /* bytes of head / damage / payload so far */
    neuron_nvf_hello hello;
    uint32_t last_serial;
    int any_frame;
    /* the frame being received */
    uint32_t serial, stride, payload_size, damage_count, flags;
    uint64_t timestamp_us;
    uint8_t damage_raw[NEURON_NVF_MAX_DAMAGE * NEURON_NVF_DAMAGE_SIZE];
    uint8_t *buf;
    uint64_t cap;
    neuron_frame_info done; /* the last completed frame */
    char error[256];
};

static uint32_t rd32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
static uint16_t rd16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}
static uint64_t rd64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

__attribute__((format(printf, 2, 3))) static int64_t fail(neuron_nvf_parser *p, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->error, sizeof p->error, fmt, ap);
    va_end(ap);
    p->state = ST_FAILED;
    return NEURON_EFORMAT;
}

int32_t neuron_nvf_parser_new(uint64_t max_frame_bytes, neuron_nvf_parser **out) {
    if (!out || max_frame_bytes < 4096 || max_frame_bytes > (256ull << 20)) return NEURON_EINVAL;
    neuron_nvf_parser *p = calloc(1, sizeof *p);
    if (!p) return NEURON_ENOMEM;
    p->max_frame_bytes = max_frame_bytes;
    *out = p;
    return NEURON_OK;
}

void neuron_nvf_parser_reset(neuron_nvf_parser *p) {
    if (!p) return;
    p->state = ST_HEAD;
    p->have = 0;
    p->any_frame = 0;
    p->last_serial = 0;
    memset(&p->hello, 0, sizeof p->hello);
    p->error[0] = 0;
}

void neuron_nvf_parser_free(neuron_nvf_parser *p) {
    if (!p) return;
    free(p->buf);
    free(p);
}

const char *neuron_nvf_parser_error(const neuron_nvf_parser *p) { return p ? p->error : ""; }

int32_t neuron_nvf_parser_partial(const neuron_nvf_parser *p) {
    return p && p->state != ST_FAILED && (p->state != ST_HEAD || p->have > 0);
}

void neuron_nvf_parser_hello(const neuron_nvf_parser *p, neuron_nvf_hello *out) {
    if (p && out) *out = p->hello;
}

const uint8_t *neuron_nvf_parser_frame(const neuron_nvf_parser *p, neuron_frame_info *info) {
    if (!p) return NULL;
    if (info) *info = p->done;
    return p->buf;
}

void nvf_parser_swap_buffer(neuron_nvf_parser *p, uint8_t **buf, uint64_t *cap) {
    uint8_t *b = p->buf;
    uint64_t c = p->cap;
    p->buf = *buf;
    p->cap = *cap;
    *buf = b;
    *cap = c;
}

static int64_t check_hello(neuron_nvf_parser *p) {
    const uint8_t *h = p->head;
    uint32_t version = rd16(h + 4), size = rd16(h + 6), codec = rd32(h + 8), w = rd32(h + 12), hh = rd32(h + 16);
    uint32_t fps = rd32(h + 20), maxp = rd32(h + 24), flags = rd32(h + 28);
    if (version != NEURON_NVF_VERSION) return fail(p, "hello: version %u, this host speaks %u", version, NEURON_NVF_VERSION);
    if (size != NEURON_NVF_HELLO_SIZE) return fail(p, "hello: size %u, expected %u", size, NEURON_NVF_HELLO_SIZE);
    if (codec != NEURON_NVF_CODEC_RAW_BGRA && codec != NEURON_NVF_CODEC_H264)
        return fail(p, "hello: unknown codec %u (1 raw BGRA, 2 H.264)", codec);
    if (w < 16 || w > NEURON_CAPTURE_MAX_DIM || hh < 16 || hh > NEURON_CAPTURE_MAX_DIM)
        return fail(p, "hello: %ux%u is outside 16-%u", w, hh, NEURON_CAPTURE_MAX_DIM);
    if (fps < 1 || fps > 1000) return fail(p, "hello: fps %u is outside 1-1000", fps);
    if (flags != 0) return fail(p, "hello: unknown flags 0x%x", flags);
    if (maxp == 0 || maxp > p->max_frame_bytes)
        return fail(p, "hello: max_payload %u is outside 1-%llu", maxp, (unsigned long long)p->max_frame_bytes);
    if (codec == NEURON_NVF_CODEC_RAW_BGRA && (uint64_t)maxp < (uint64_t)w * 4 * hh)
        return fail(p, "hello: max_payload %u is less than a %ux%u BGRA frame", maxp, w, hh);
    p->hello.codec = codec;
    p->hello.width = w;
    p->hello.height = hh;
    p->hello.fps = fps;
    p->hello.max_payload = maxp;
    p->hello.valid = 1;
    p->any_frame = 0;
    return 0;
}

static int64_t check_frame(neuron_nvf_parser *p) {
    const uint8_t *h = p->head;
    const neuron_nvf_hello *hi = &p->hello;
    uint32_t serial = rd32(h + 4), stride = rd32(h + 16), size = rd32(h + 20);
    uint32_t damage = rd16(h + 24), flags = rd16(h + 26), reserved = rd32(h + 28);
    if (!hi->valid) return fail(p, "frame before hello");
    if (p->any_frame && serial <= p->last_serial)
        return fail(p, "frame serial %u does not follow %u", serial, p->last_serial);
    if (reserved != 0 || (flags & ~1u)) return fail(p, "frame %u: reserved bits set", serial);
    if (damage > NEURON_NVF_MAX_DAMAGE) return fail(p, "frame %u: %u damage rects (at most %u)", serial, damage, NEURON_NVF_MAX_DAMAGE);
    if (hi->codec == NEURON_NVF_CODEC_RAW_BGRA) {
        if (stride < hi->width * 4u) return fail(p, "frame %u: stride %u is less than width %u x 4", serial, stride, hi->width);
        if (stride > NEURON_NVF_MAX_STRIDE) return fail(p, "frame %u: stride %u over %u", serial, stride, NEURON_NVF_MAX_STRIDE);
        if ((uint64_t)size != (uint64_t)stride * hi->height)
            return fail(p, "frame %u: payload %u bytes, stride %u x height %u needs %llu", serial, size, stride, hi->height,
                        (unsigned long long)stride * hi->height);
    } else {
        if (stride != 0) return fail(p, "frame %u: stride %u on an H.264 stream (must be 0)", serial, stride);
        if (size == 0) return fail(p, "frame %u: empty access unit", serial);
    }
    if (size > hi->max_payload) return fail(p, "frame %u: payload %u over the hello's max_payload %u", serial, size, hi->max_payload);
    if (p->cap < size) { /* bounded by max_payload <= max_frame_bytes, checked above */
        uint8_t *nb = realloc(p->buf, size);
        if (!nb) return fail(p, "frame %u: cannot allocate %u bytes", serial, size);
        p->buf = nb;
        p->cap = size;
    }
    p->serial = serial;
    p->stride = stride;
    p->payload_size = size;
    p->damage_count = damage;
    p->flags = flags;
    p->timestamp_us = rd64(h + 8);
    return 0;
}

static int64_t check_damage(neuron_nvf_parser *p) {
    for (uint32_t i = 0; i < p->damage_count; i++) {
        const uint8_t *d = p->damage_raw + i * NEURON_NVF_DAMAGE_SIZE;
        uint64_t x = rd32(d), y = rd32(d + 4), w = rd32(d + 8), h = rd32(d + 12);
        if (w == 0 || h == 0 || x + w > p->hello.width || y + h > p->hello.height)
            return fail(p, "frame %u: damage rect %u (%llu,%llu %llux%llu) outside %ux%u", p->serial, i, (unsigned long long)x,
                        (unsigned long long)y, (unsigned long long)w, (unsigned long long)h, p->hello.width, p->hello.height);
    }
    return 0;
}

static void complete(neuron_nvf_parser *p) {
    neuron_frame_info *f = &p->done;
    memset(f, 0, sizeof *f);
    f->frame_serial = p->serial;
    f->type = p->hello.codec == NEURON_NVF_CODEC_H264 ? NEURON_FRAME_H264_AU : NEURON_FRAME_BGRA;
    f->screen_width = f->data_width = f->frame_width = p->hello.width;
    f->screen_height = f->data_height = f->frame_height = p->hello.height;
    f->out_pitch = p->stride; /* the payload's own row pitch (0 for H.264) */
    f->flags = (p->flags & 1u) ? NEURON_NVF_FLAG_KEYFRAME : 0;
    f->damage_count = p->damage_count;
    memcpy(f->damage, p->damage_raw, (size_t)p->damage_count * NEURON_NVF_DAMAGE_SIZE);
    f->bytes = p->payload_size;
    f->reserved[0] = (uint32_t)p->timestamp_us;
    f->reserved[1] = (uint32_t)(p->timestamp_us >> 32);
    p->last_serial = p->serial;
    p->any_frame = 1;
}

int64_t neuron_nvf_parser_feed(neuron_nvf_parser *p, const uint8_t *data, uint64_t len, uint32_t *event) {
    if (!p || !event || (!data && len)) return NEURON_EINVAL;
    *event = NEURON_NVF_NEED_MORE;
    if (p->state == ST_FAILED) return NEURON_EFORMAT;
    uint64_t used = 0;
    while (used < len) {
        const uint8_t *in = data + used;
        uint64_t avail = len - used;
        if (p->state == ST_HEAD || p->state == ST_HELLO || p->state == ST_FRAME) {
            uint32_t want = (p->state == ST_HEAD ? 4u : 32u) - p->have;
            uint32_t n = avail < want ? (uint32_t)avail : want;
            memcpy(p->head + p->have, in, n);
            p->have += n;
            used += n;
            if (n < want) break;
            if (p->state == ST_HEAD) {
                uint32_t magic = rd32(p->head);
                if (magic == NEURON_NVF_MAGIC) p->state = ST_HELLO;
                else if (magic == NEURON_NVF_FRAME_MAGIC) p->state = ST_FRAME;
                else return fail(p, "unknown record magic 0x%08x", magic);
                continue;
            }
            p->have = 0;
            if (p->state == ST_HELLO) {
                if (check_hello(p) < 0) return NEURON_EFORMAT;
                p->state = ST_HEAD;
                *event = NEURON_NVF_HELLO;
                return (int64_t)used;
            }
            if (check_frame(p) < 0) return NEURON_EFORMAT;
            p->state = p->damage_count ? ST_DAMAGE : ST_PAYLOAD;
            continue;
        }
        if (p->state == ST_DAMAGE) {
            uint32_t want = p->damage_count * NEURON_NVF_DAMAGE_SIZE - p->have;
            uint32_t n = avail < want ? (uint32_t)avail : want;
            memcpy(p->damage_raw + p->have, in, n);
            p->have += n;
            used += n;
            if (n < want) break;
            p->have = 0;
            if (check_damage(p) < 0) return NEURON_EFORMAT;
            p->state = ST_PAYLOAD;
            continue;
        }
        /* ST_PAYLOAD: p->cap >= payload_size (check_frame) */
        uint32_t want = p->payload_size - p->have;
        uint32_t n = avail < want ? (uint32_t)avail : want;
        memcpy(p->buf + p->have, in, n);
        p->have += n;
        used += n;
        if (n < want) break;
        p->have = 0;
        p->state = ST_HEAD;
        complete(p);
        *event = NEURON_NVF_FRAME;
        return (int64_t)used;
    }
    /* a frame header with no damage and no payload bytes yet still needs its payload */
    return (int64_t)used;
}

uint32_t nvf_parser_received(const neuron_nvf_parser *p, uint32_t *expected) {
    *expected = p->state == ST_PAYLOAD ? p->payload_size : 0;
    return p->have;
}
