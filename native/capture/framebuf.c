/* The NFB1 triple-buffered frame region: reader and test producer (../framebuf.h). */
#include "../framebuf.h"
#include "lgmp.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define N_MAGIC 0u
#define N_VERSION 4u
#define N_HDRSIZE 8u
#define N_SLOTS 12u
#define N_WIDTH 16u
#define N_HEIGHT 20u
#define N_PITCH 24u
#define N_FORMAT 28u
#define N_SLOTOFF 32u
#define N_SLOTSIZE 56u
#define N_MIDDLE 64u
#define N_FRONT 68u
#define N_SEQ 72u
#define N_HEARTBEAT 96u
#define N_SESSION 104u
#define N_CUR_X 112u
#define N_CUR_Y 116u
#define N_CUR_VIS 120u
#define N_CUR_SERIAL 124u
#define N_CUR_W 128u
#define N_CUR_H 132u
#define N_CUR_OFF 136u
#define N_AUD_OFF 144u
#define N_AUD_SIZE 152u
#define N_AUD_RATE 156u
#define N_AUD_CH 160u
#define N_AUD_BPS 164u
#define N_AUD_WPOS 168u
#define NEW_FRAME 4u
#define PAGE 4096ull

void neuron_testpattern_rows(uint8_t *dst, uint32_t width, uint32_t pitch, uint32_t y0, uint32_t y1,
                             uint32_t counter);

struct neuron_fb_reader {
    uint8_t *base;
    uint64_t size;
    int attached;
    uint32_t session, width, height, pitch, format, front;
    uint64_t slot_off[3];
    uint64_t aud_off, aud_rpos;
    uint32_t aud_size, aud_frame;
    uint64_t last_hb, last_hb_change_ns;
    uint32_t shape_serial;
    neuron_cursor_info cursor;
    uint8_t *shape;
    uint64_t shape_bytes;
    neuron_reader_stats stats;
    char err[256];
};

static int32_t fbfail(neuron_fb_reader *r, int32_t rc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, sizeof r->err, fmt, ap);
    va_end(ap);
    return rc;
}

static int fits(uint64_t size, uint64_t off, uint64_t len) { return off <= size && len <= size - off; }

static int32_t map_file(const char *path, uint64_t *size, uint8_t **base, int create) {
    int fd = open(path, O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0660);
    if (fd < 0) return NEURON_EIO;
    struct stat st;
    if (create && ftruncate(fd, (off_t)*size) != 0) {
        close(fd);
        return NEURON_EIO;
    }
    if (fstat(fd, &st) != 0) {
        close(fd);
        return NEURON_EIO;
    }
    if (*size == 0) *size = (uint64_t)st.st_size;
    if (*size < NEURON_NFB_HEADER_SIZE || *size > (uint64_t)st.st_size || *size > (1ull << 40)) {
        close(fd);
        return NEURON_EINVAL;
    }
    void *m = mmap(NULL, *size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED) return NEURON_EIO;
    *base = m;
    return NEURON_OK;
}

int32_t neuron_fb_reader_open(const char *path, uint64_t size, neuron_fb_reader **out) {
    if (!path || !out) return NEURON_EINVAL;
    uint8_t *base = NULL;
    int32_t rc = map_file(path, &size, &base, 0);
    if (rc) return rc;
    neuron_fb_reader *r = calloc(1, sizeof *r);
    if (!r) {
        munmap(base, size);
        return NEURON_ENOMEM;
    }
    r->base = base;
    r->size = size;
    *out = r;
    return NEURON_OK;
}

int32_t neuron_fb_reader_attach(neuron_fb_reader *r, uint32_t timeout_ms) {
    if (!r) return NEURON_EINVAL;
    r->attached = 0;
    r->stats.attached = 0;
    r->err[0] = 0;
    uint8_t *b = r->base;
    uint64_t deadline = mono_ns() + (uint64_t)timeout_ms * 1000000ull;
    uint32_t magic;
    while ((magic = ld32(b, N_MAGIC)) != NEURON_NFB_MAGIC) {
        if (magic) return fbfail(r, NEURON_EFORMAT, "no NFB1 header in the region (magic 0x%08x)", magic);
        if (mono_ns() >= deadline) return fbfail(r, NEURON_EIO, "no NFB1 header was written within %u ms", timeout_ms);
        neuron_capture_sleep_us(1000);
    }
    uint32_t v = ld32(b, N_VERSION);
    if (v != NEURON_NFB_VERSION)
        return fbfail(r, NEURON_EUNSUPPORTED, "the writer uses NFB layout version %u; this reader speaks version %u", v,
                      NEURON_NFB_VERSION);
    uint32_t w = ld32(b, N_WIDTH), h = ld32(b, N_HEIGHT), pitch = ld32(b, N_PITCH), fmt = ld32(b, N_FORMAT);
    uint64_t slot_size = ld64(b, N_SLOTSIZE);
    if (ld32(b, N_HDRSIZE) != NEURON_NFB_HEADER_SIZE || ld32(b, N_SLOTS) != 3 || w < 16 || h < 16 ||
        w > NEURON_CAPTURE_MAX_DIM || h > NEURON_CAPTURE_MAX_DIM || pitch < w * 4u || pitch > NEURON_CAPTURE_MAX_DIM * 4u ||
        (fmt != NEURON_FRAME_BGRA && fmt != NEURON_FRAME_RGBA) || slot_size < (uint64_t)h * pitch)
        return fbfail(r, NEURON_EFORMAT, "NFB1 header has bad geometry (%ux%u, pitch %u, format %u)", w, h, pitch, fmt);
    for (int i = 0; i < 3; i++) {
        uint64_t off = ld64(b, N_SLOTOFF + 8ull * i);
        if (off < NEURON_NFB_HEADER_SIZE || (off % PAGE) || !fits(r->size, off, (uint64_t)h * pitch))
            return fbfail(r, NEURON_EFORMAT, "NFB1 slot %d lies outside the region", i);
        r->slot_off[i] = off;
    }
    uint64_t aoff = ld64(b, N_AUD_OFF);
    uint32_t asize = ld32(b, N_AUD_SIZE), ach = ld32(b, N_AUD_CH), abps = ld32(b, N_AUD_BPS), arate = ld32(b, N_AUD_RATE);
    r->aud_size = 0;
    if (asize) {
        uint32_t frame = ach * abps;
        if (ach < 1 || ach > 8 || abps != 2 || arate < 8000 || arate > 192000 || asize % frame ||
            !fits(r->size, aoff, asize) || aoff < NEURON_NFB_HEADER_SIZE)
            return fbfail(r, NEURON_EFORMAT, "NFB1 audio area is malformed");
        r->aud_off = aoff;
        r->aud_size = asize;
        r->aud_frame = frame;
    }
    uint32_t session = ld32(b, N_SESSION);
    uint64_t hb = ld64(b, N_HEARTBEAT);
    while (timeout_ms && ld64(b, N_HEARTBEAT) == hb) {
        if (mono_ns() >= deadline) return fbfail(r, NEURON_EIO, "the writer's heartbeat did not move within %u ms", timeout_ms);
        neuron_capture_sleep_us(500);
    }
    uint32_t front = ld32(b, N_FRONT);
    r->front = front <= 2 ? front : 2;
    r->session = session;
    r->width = w;
    r->height = h;
    r->pitch = pitch;
    r->format = fmt;
    r->last_hb = ld64(b, N_HEARTBEAT);
    r->last_hb_change_ns = mono_ns();
    r->aud_rpos = asize ? ld64(b, N_AUD_WPOS) : 0;
    r->attached = 1;
    r->stats.attached = 1;
    r->stats.session_id = session;
    r->stats.lgmp_version = 0;
    r->stats.kvmfr_version = NEURON_NFB_VERSION;
    return NEURON_OK;
}

static int fb_alive(neuron_fb_reader *r) {
    uint8_t *b = r->base;
    if (ld32(b, N_MAGIC) != NEURON_NFB_MAGIC || ld32(b, N_SESSION) != r->session) return 0;
    uint64_t hb = ld64(b, N_HEARTBEAT), now = mono_ns();
    if (hb != r->last_hb) {
        r->last_hb = hb;
        r->last_hb_change_ns = now;
        return 1;
    }
    return now - r->last_hb_change_ns <= 1000000000ull;
}

int32_t neuron_fb_reader_next_frame(neuron_fb_reader *r, uint32_t timeout_ms, uint8_t *dst, uint64_t dst_cap,
                                    neuron_frame_info *info) {
    if (!r || !info || (!dst && dst_cap)) return NEURON_EINVAL;
    uint64_t deadline = mono_ns() + (uint64_t)timeout_ms * 1000000ull;
    for (;;) {
        if (!r->attached) {
            uint64_t now = mono_ns();
            uint32_t left = now >= deadline ? 1 : (uint32_t)((deadline - now) / 1000000ull) + 1;
            int32_t rc = neuron_fb_reader_attach(r, left);
            if (rc == NEURON_OK) return NEURON_CAPTURE_RESTARTED;
            return rc == NEURON_EIO ? NEURON_CAPTURE_TIMEOUT : rc;
        }
        if (!fb_alive(r)) {
            r->attached = 0;
            r->stats.restarts++;
            r->front = 2;
            continue;
        }
        uint32_t row = r->width * 4u;
        uint64_t need = (uint64_t)row * r->height;
        if (ld32(r->base, N_MIDDLE) & NEW_FRAME) {
            if (need > dst_cap) {
                memset(info, 0, sizeof *info);
                info->bytes = need;
                return fbfail(r, NEURON_ERANGE, "frame needs %llu bytes", (unsigned long long)need);
            }
            uint64_t seen = mono_ns();
            uint32_t got = __atomic_exchange_n((uint32_t *)(r->base + N_MIDDLE), r->front, __ATOMIC_ACQ_REL);
            uint32_t idx = got & 3u;
            if (idx > 2) {
                r->attached = 0;
                r->stats.rejected++;
                return fbfail(r, NEURON_EFORMAT, "NFB1 middle slot index %u is out of range", idx);
            }
            r->front = idx;
            st32(r->base, N_FRONT, idx);
            const uint8_t *src = r->base + r->slot_off[idx];
            if (r->pitch == row) memcpy(dst, src, need);
            else
                for (uint32_t y = 0; y < r->height; y++) memcpy(dst + (uint64_t)y * row, src + (uint64_t)y * r->pitch, row);
            memset(info, 0, sizeof *info);
            info->frame_serial = (uint32_t)ld64(r->base, N_SEQ + 8ull * idx);
            info->type = r->format;
            info->screen_width = info->data_width = info->frame_width = r->width;
            info->screen_height = info->data_height = info->frame_height = r->height;
            info->out_pitch = row;
            info->session_id = r->session;
            info->bytes = need;
            info->read_time_ns = seen;
            info->copy_ns = mono_ns() - seen;
            r->stats.frames++;
            return NEURON_CAPTURE_FRAME;
        }
        if (mono_ns() >= deadline) return NEURON_CAPTURE_TIMEOUT;
        neuron_capture_sleep_us(100);
    }
}

int64_t neuron_fb_reader_cursor(neuron_fb_reader *r, neuron_cursor_info *info, uint8_t *shape, uint64_t cap) {
    if (!r || !info) return NEURON_EINVAL;
    uint8_t *b = r->base;
    if (r->attached) {
        r->cursor.x = (int32_t)ld32(b, N_CUR_X);
        r->cursor.y = (int32_t)ld32(b, N_CUR_Y);
        r->cursor.visible = ld32(b, N_CUR_VIS) ? 1u : 0u;
        r->cursor.updates++;
        uint32_t serial = ld32(b, N_CUR_SERIAL);
        if (serial != r->shape_serial) {
            uint32_t w = ld32(b, N_CUR_W), h = ld32(b, N_CUR_H);
            uint64_t off = ld64(b, N_CUR_OFF);
            uint64_t bytes = (uint64_t)w * h * 4;
            r->shape_serial = serial;
            if (off && w && h && w <= NEURON_KVMFR_MAX_CURSOR_DIM && h <= NEURON_KVMFR_MAX_CURSOR_DIM &&
                off >= NEURON_NFB_HEADER_SIZE && fits(r->size, off, bytes)) {
                if (!r->shape) r->shape = malloc((size_t)NEURON_KVMFR_MAX_CURSOR_DIM * NEURON_KVMFR_MAX_CURSOR_DIM * 4);
                if (r->shape) {
                    memcpy(r->shape, b + off, bytes);
                    r->shape_bytes = bytes;
                    r->cursor.shape_width = w;
                    r->cursor.shape_height = h;
                    r->cursor.shape_serial++;
                }
            } else {
                r->stats.rejected++;
            }
        }
    }
    *info = r->cursor;
    if (!shape || !r->shape_bytes) return 0;
    if (cap < r->shape_bytes) return NEURON_ERANGE;
    memcpy(shape, r->shape, r->shape_bytes);
    return (int64_t)r->shape_bytes;
}

int64_t neuron_fb_reader_audio(neuron_fb_reader *r, uint8_t *dst, uint64_t cap, uint32_t *overrun) {
    if (!r || (!dst && cap)) return NEURON_EINVAL;
    if (overrun) *overrun = 0;
    if (!r->attached || !r->aud_size) return 0;
    uint64_t wpos = ld64(r->base, N_AUD_WPOS);
    if (wpos < r->aud_rpos) r->aud_rpos = wpos; /* the writer restarted its count */
    uint64_t avail = wpos - r->aud_rpos;
    if (avail > r->aud_size) {
        uint64_t skip = avail - r->aud_size;
        skip += (r->aud_frame - skip % r->aud_frame) % r->aud_frame;
        r->aud_rpos += skip;
        avail = wpos - r->aud_rpos;
        if (overrun) *overrun = 1;
    }
    uint64_t n = avail < cap ? avail : cap;
    n -= n % r->aud_frame;
    uint64_t at = r->aud_rpos % r->aud_size, first = n < r->aud_size - at ? n : r->aud_size - at;
    memcpy(dst, r->base + r->aud_off + at, first);
    memcpy(dst + first, r->base + r->aud_off, n - first);
    r->aud_rpos += n;
    return (int64_t)n;
}

void neuron_fb_reader_stats(const neuron_fb_reader *r, neuron_reader_stats *out) {
    if (r && out) *out = r->stats;
}

const char *neuron_fb_reader_error(const neuron_fb_reader *r) { return r ? r->err : ""; }

void neuron_fb_reader_close(neuron_fb_reader *r) {
    if (!r) return;
    munmap(r->base, r->size);
    free(r->shape);
    free(r);
}

/* ------------------------------------------------------------------------- */

struct neuron_fb_producer {
    uint8_t *base;
    uint64_t size;
    neuron_producer_config cfg;
    pthread_t thread;
    int stop;
    uint64_t frames;
    uint32_t session, back;
    uint64_t slot_off[3], shape_off, aud_off;
    uint32_t aud_size;
    int faulted;
};

#define AUD_RATE 48000u
#define AUD_CH 2u
#define AUD_BYTES (AUD_RATE * AUD_CH * 2u / 4u) /* 250 ms ring */

static uint64_t page_up(uint64_t v) { return (v + PAGE - 1) / PAGE * PAGE; }

static void fb_init(neuron_fb_producer *p) {
    uint8_t *b = p->base;
    st32(b, N_MAGIC, 0);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    memset(b + 4, 0, NEURON_NFB_HEADER_SIZE - 4);
    uint32_t pitch = p->cfg.width * 4;
    st32(b, N_VERSION, p->cfg.fault == NEURON_FAULT_WRONG_VERSION ? 2u : NEURON_NFB_VERSION);
    st32(b, N_HDRSIZE, NEURON_NFB_HEADER_SIZE);
    st32(b, N_SLOTS, 3);
    st32(b, N_WIDTH, p->cfg.width);
    st32(b, N_HEIGHT, p->cfg.height);
    st32(b, N_PITCH, pitch);
    st32(b, N_FORMAT, NEURON_FRAME_BGRA);
    for (int i = 0; i < 3; i++) st64(b, N_SLOTOFF + 8ull * i, p->slot_off[i]);
    st64(b, N_SLOTSIZE, page_up((uint64_t)pitch * p->cfg.height));
    st32(b, N_MIDDLE, 1);
    st32(b, N_FRONT, 2);
    p->back = 0;
    st64(b, N_HEARTBEAT, wall_ms());
    st32(b, N_SESSION, p->session);
    for (uint32_t i = 0; i < 32 * 32; i++) {
        uint32_t px = (i % 32) <= (i / 32) ? 0xffffffffu : 0u;
        memcpy(b + p->shape_off + 4ull * i, &px, 4);
    }
    st32(b, N_CUR_W, 32);
    st32(b, N_CUR_H, 32);
    st64(b, N_CUR_OFF, p->shape_off);
    st32(b, N_CUR_SERIAL, 1);
    st64(b, N_AUD_OFF, p->aud_off);
    st32(b, N_AUD_SIZE, p->aud_size);
    st32(b, N_AUD_RATE, AUD_RATE);
    st32(b, N_AUD_CH, AUD_CH);
    st32(b, N_AUD_BPS, 2);
    st64(b, N_AUD_WPOS, 0);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    st32(b, N_MAGIC, NEURON_NFB_MAGIC);
}

static void *fb_main(void *arg) {
    neuron_fb_producer *p = arg;
    uint8_t *b = p->base;
    uint64_t period = p->cfg.fps ? 1000000000ull / p->cfg.fps : 1000000ull, next = mono_ns(), t0 = next;
    uint64_t samples = 0;
    while (!__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE)) {
        uint64_t now = mono_ns();
        st64(b, N_HEARTBEAT, wall_ms());
        /* audio: a 440 Hz tone, written as time passes */
        uint64_t due = (now - t0) * AUD_RATE / 1000000000ull;
        for (; samples < due; samples++) {
            int16_t v = (int16_t)(8000.0 * sin(2.0 * M_PI * 440.0 * (double)samples / AUD_RATE));
            uint64_t wpos = samples * AUD_CH * 2;
            for (uint32_t c = 0; c < AUD_CH; c++)
                memcpy(b + p->aud_off + (wpos + 2 * c) % p->aud_size, &v, 2);
            st64(b, N_AUD_WPOS, wpos + AUD_CH * 2);
        }
        if (!p->faulted && p->cfg.fault == NEURON_FAULT_NEW_SESSION && p->frames >= p->cfg.fault_after) {
            p->faulted = 1;
            p->session = p->session * 2654435761u + 7u;
            fb_init(p);
            samples = 0;
            t0 = now;
        }
        int done = p->cfg.max_frames && p->frames >= p->cfg.max_frames;
        if (!done && now >= next) {
            uint32_t n = (uint32_t)p->frames;
            neuron_testpattern_rows(b + p->slot_off[p->back], p->cfg.width, p->cfg.width * 4, 0, p->cfg.height, n);
            st64(b, N_SEQ + 8ull * p->back, n + 1ull);
            uint32_t old = __atomic_exchange_n((uint32_t *)(b + N_MIDDLE), p->back | NEW_FRAME, __ATOMIC_ACQ_REL);
            p->back = old & 3u;
            st32(b, N_CUR_X, 100 + (n * 7) % 500);
            st32(b, N_CUR_Y, 100 + (n * 3) % 300);
            st32(b, N_CUR_VIS, 1);
            __atomic_store_n(&p->frames, p->frames + 1, __ATOMIC_RELEASE);
            next += period;
            if (next + 4 * period < now) next = now;
        }
        neuron_capture_sleep_us(1000);
    }
    return NULL;
}

int32_t neuron_fb_producer_start(const char *path, const neuron_producer_config *cfg, neuron_fb_producer **out) {
    if (!path || !cfg || !out || cfg->width < 16 || cfg->height < 16 || cfg->width > 8192 || cfg->height > 8192 ||
        cfg->fps > 1000)
        return NEURON_EINVAL;
    neuron_fb_producer *p = calloc(1, sizeof *p);
    if (!p) return NEURON_ENOMEM;
    p->cfg = *cfg;
    uint64_t slot = page_up((uint64_t)cfg->width * 4 * cfg->height), off = NEURON_NFB_HEADER_SIZE;
    for (int i = 0; i < 3; i++, off += slot) p->slot_off[i] = off;
    p->shape_off = off;
    off += page_up(32 * 32 * 4);
    p->aud_off = off;
    p->aud_size = AUD_BYTES;
    p->size = off + page_up(AUD_BYTES);
    p->session = cfg->session_id;
    while (!p->session)
        if (getrandom(&p->session, sizeof p->session, 0) != sizeof p->session) p->session = (uint32_t)getpid();
    int32_t rc = map_file(path, &p->size, &p->base, 1);
    if (rc) {
        free(p);
        return rc;
    }
    fb_init(p);
    if (pthread_create(&p->thread, NULL, fb_main, p) != 0) {
        munmap(p->base, p->size);
        free(p);
        return NEURON_EIO;
    }
    *out = p;
    return NEURON_OK;
}

uint64_t neuron_fb_producer_frames(const neuron_fb_producer *p) {
    return p ? __atomic_load_n(&p->frames, __ATOMIC_ACQUIRE) : 0;
}

void neuron_fb_producer_stop(neuron_fb_producer *p) {
    if (!p) return;
    __atomic_store_n(&p->stop, 1, __ATOMIC_RELEASE);
    pthread_join(p->thread, NULL);
    munmap(p->base, p->size);
    free(p);
}
