/* LGMP v6 / KVMFR v20 reader (v5 / v19 accepted). Layout: ../capture.h. */
#include "lgmp.h"
#include "reader_sink.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define HEARTBEAT_STALL_NS 1000000000ull
#define LOCK_WAIT_NS 10000000ull /* the guest holds a queue lock for microseconds */
#define KVMFR_IOCTL_SIZE _IO('u', 0x44)

typedef struct sub {
    uint64_t q;      /* queue offset in the region */
    uint64_t msgoff; /* validated message array offset */
    uint32_t nmsg;   /* validated numMessages */
    uint32_t id;     /* my subscriber slot */
    uint32_t pos;    /* my read position */
    int active;
} sub;

struct neuron_kvmfr_reader {
    uint8_t *base;
    uint64_t size;
    int owns_map;
    int attached;
    uint32_t client_id;
    uint32_t session_id;
    uint32_t lgmp_version;
    uint32_t kvmfr_version;
    uint64_t last_ts;
    uint64_t last_ts_change_ns;
    sub frameq;
    sub ptrq;
    uint32_t last_serial;
    int have_serial;
    neuron_cursor_info cursor;
    uint8_t *shape;
    uint64_t shape_bytes;
    neuron_reader_stats stats;
    char err[256];
};

void neuron_capture_sleep_us(uint32_t us) {
    struct timespec ts = {.tv_sec = us / 1000000u, .tv_nsec = (long)(us % 1000000u) * 1000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

static int32_t fail(neuron_kvmfr_reader *r, int32_t rc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, sizeof r->err, fmt, ap);
    va_end(ap);
    return rc;
}

/* [off, off+len) inside the region, without overflow. */
static int in_region(const neuron_kvmfr_reader *r, uint64_t off, uint64_t len) {
    return off <= r->size && len <= r->size - off;
}

static neuron_kvmfr_reader *reader_new(void) {
    neuron_kvmfr_reader *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    if (getrandom(&r->client_id, sizeof r->client_id, 0) != sizeof r->client_id) r->client_id = (uint32_t)getpid();
    if (r->client_id == 0) r->client_id = 1;
    return r;
}

int32_t neuron_kvmfr_reader_wrap(uint8_t *base, uint64_t size, neuron_kvmfr_reader **out) {
    if (!base || !out || size < NEURON_LGMP_HEADER_SIZE) return NEURON_EINVAL;
    neuron_kvmfr_reader *r = reader_new();
    if (!r) return NEURON_ENOMEM;
    r->base = base;
    r->size = size;
    *out = r;
    return NEURON_OK;
}

int32_t neuron_kvmfr_reader_open(const char *path, uint64_t size, neuron_kvmfr_reader **out) {
    if (!path || !out) return NEURON_EINVAL;
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) return NEURON_EIO;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return NEURON_EIO;
    }
    uint64_t have;
    if (S_ISCHR(st.st_mode)) {
        int sz = ioctl(fd, KVMFR_IOCTL_SIZE);
        if (sz <= 0) {
            close(fd);
            return NEURON_EIO;
        }
        have = (uint64_t)(unsigned)sz;
    } else {
        have = (uint64_t)st.st_size;
    }
    if (size == 0) size = have;
    if (size > have || size < NEURON_LGMP_HEADER_SIZE + K_SIZE || size > (1ull << 40)) {
        close(fd);
        return NEURON_EINVAL;
    }
    void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED) return NEURON_EIO;
    neuron_kvmfr_reader *r = reader_new();
    if (!r) {
        munmap(m, size);
        return NEURON_ENOMEM;
    }
    r->base = m;
    r->size = size;
    r->owns_map = 1;
    *out = r;
    return NEURON_OK;
}

static int lock_queue(neuron_kvmfr_reader *r, uint64_t q) {
    uint64_t until = mono_ns() + LOCK_WAIT_NS;
    while (!lgmp_trylock(r->base, q)) {
        if (mono_ns() > until) return 0;
        neuron_capture_sleep_us(50);
    }
    return 1;
}

/* Finds, validates and subscribes to the queue with `queue_id`. */
static int32_t subscribe(neuron_kvmfr_reader *r, uint32_t queue_id, sub *s) {
    uint8_t *b = r->base;
    uint32_t nq = ld32(b, H_NUMQUEUES);
    if (nq > NEURON_LGMP_MAX_QUEUES) return fail(r, NEURON_EFORMAT, "LGMP header claims %u queues (max 5)", nq);
    uint64_t q = 0;
    for (uint32_t i = 0; i < nq; i++) {
        uint64_t off = H_QUEUES + (uint64_t)i * NEURON_LGMP_QUEUE_SIZE;
        if (ld32(b, off + Q_ID) == queue_id) {
            q = off;
            break;
        }
    }
    if (!q) return fail(r, NEURON_EFORMAT, "LGMP queue %u not present", queue_id);
    uint32_t nmsg = ld32(b, q + Q_NUMMSG);
    uint32_t msgoff = ld32(b, q + Q_MSGOFF);
    if (nmsg < 2 || nmsg > NEURON_LGMP_MAX_MESSAGES || (msgoff & 3u) ||
        !in_region(r, msgoff, (uint64_t)nmsg * NEURON_LGMP_MESSAGE_SIZE))
        return fail(r, NEURON_EFORMAT, "LGMP queue %u has a bad message array (%u at offset %u)", queue_id, nmsg,
                    msgoff);
    if (!lock_queue(r, q)) return fail(r, NEURON_EIO, "LGMP queue %u lock held too long", queue_id);
    uint64_t ts = ld64(b, H_TIMESTAMP);
    uint64_t subs = ld64(b, q + Q_SUBS);
    uint32_t subscribed = (uint32_t)(subs >> 32), bad = (uint32_t)subs;
    for (uint32_t id = 0; id < LGMP_MAX_CLIENTS; id++)
        if ((bad & (1u << id)) && ld64(b, q + Q_TIMEOUT + 8ull * id) < ts) bad &= ~(1u << id);
    uint32_t free_ids = ~(subscribed | bad);
    if (!free_ids) {
        st64(b, q + Q_SUBS, ((uint64_t)subscribed << 32) | bad);
        lgmp_unlock(b, q);
        return fail(r, NEURON_EIO, "LGMP queue %u has no free subscriber slot", queue_id);
    }
    uint32_t id = (uint32_t)__builtin_ctz(free_ids);
    st32(b, q + Q_CLIENTID + 4ull * id, r->client_id);
    st64(b, q + Q_TIMEOUT + 8ull * id, 0);
    subscribed |= 1u << id;
    st64(b, q + Q_SUBS, ((uint64_t)subscribed << 32) | bad);
    uint32_t pos = ld32(b, q + Q_POSITION);
    __atomic_add_fetch((uint32_t *)(b + q + Q_NEWSUB), 1u, __ATOMIC_ACQ_REL);
    lgmp_unlock(b, q);
    if (pos >= nmsg) return fail(r, NEURON_EFORMAT, "LGMP queue %u position %u out of range", queue_id, pos);
    *s = (sub){.q = q, .msgoff = msgoff, .nmsg = nmsg, .id = id, .pos = pos, .active = 1};
    return NEURON_OK;
}

static void unsubscribe(neuron_kvmfr_reader *r, sub *s) {
    if (!s->active) return;
    uint8_t *b = r->base;
    if (lock_queue(r, s->q)) {
        if (ld32(b, s->q + Q_CLIENTID + 4ull * s->id) == r->client_id) {
            uint64_t subs = ld64(b, s->q + Q_SUBS);
            st64(b, s->q + Q_SUBS, subs & ~((uint64_t)(1u << s->id) << 32));
            /* Let go of anything still pending for me. */
            for (uint32_t i = 0; i < s->nmsg; i++)
                __atomic_and_fetch((uint32_t *)(b + s->msgoff + (uint64_t)i * 16 + M_PENDING), ~(1u << s->id),
                                   __ATOMIC_ACQ_REL);
        }
        lgmp_unlock(b, s->q);
    }
    s->active = 0;
}

/* 1 if my subscription is still valid (not marked bad, not taken over). */
static int sub_valid(neuron_kvmfr_reader *r, const sub *s) {
    uint64_t subs = ld64(r->base, s->q + Q_SUBS);
    uint32_t bit = 1u << s->id;
    return ((uint32_t)(subs >> 32) & bit) && !((uint32_t)subs & bit) &&
           ld32(r->base, s->q + Q_CLIENTID + 4ull * s->id) == r->client_id;
}

/* 1 if a message is waiting, 0 if none, negative on a corrupt position. */
static int32_t sub_peek(neuron_kvmfr_reader *r, const sub *s, uint32_t *udata, uint32_t *size, uint32_t *offset) {
    uint32_t wpos = ld32(r->base, s->q + Q_POSITION);
    if (wpos >= s->nmsg) return fail(r, NEURON_EFORMAT, "LGMP queue position %u out of range", wpos);
    if (wpos == s->pos) return 0;
    uint64_t m = s->msgoff + (uint64_t)s->pos * NEURON_LGMP_MESSAGE_SIZE;
    *udata = ld32(r->base, m + M_UDATA);
    *size = ld32(r->base, m + M_SIZE);
    *offset = ld32(r->base, m + M_OFFSET);
    return 1;
}

static void sub_release(neuron_kvmfr_reader *r, sub *s) {
    uint8_t *b = r->base;
    uint64_t m = s->msgoff + (uint64_t)s->pos * NEURON_LGMP_MESSAGE_SIZE;
    uint32_t bit = 1u << s->id;
    uint32_t before = __atomic_fetch_and((uint32_t *)(b + m + M_PENDING), ~bit, __ATOMIC_ACQ_REL);
    if ((before & bit) && (before & ~bit) == 0 && lgmp_trylock(b, s->q)) {
        if (ld32(b, s->q + Q_START) == s->pos) {
            uint32_t count = ld32(b, s->q + Q_COUNT);
            st32(b, s->q + Q_START, (s->pos + 1) % s->nmsg);
            if (count) st32(b, s->q + Q_COUNT, count - 1);
            st64(b, s->q + Q_MSGTIMEOUT, ld64(b, H_TIMESTAMP) + ld32(b, s->q + Q_MAXTIME));
        }
        lgmp_unlock(b, s->q);
    }
    s->pos = (s->pos + 1) % s->nmsg;
}

static void detach(neuron_kvmfr_reader *r) {
    if (r->attached) {
        unsubscribe(r, &r->frameq);
        unsubscribe(r, &r->ptrq);
    }
    r->frameq.active = r->ptrq.active = 0;
    r->attached = 0;
    r->stats.attached = 0;
}

static int32_t check_versions(neuron_kvmfr_reader *r) {
    uint8_t *b = r->base;
    uint32_t v = ld32(b, H_VERSION);
    if (v != NEURON_LGMP_VERSION && v != NEURON_LGMP_VERSION_B6)
        return fail(r, NEURON_EUNSUPPORTED,
                    "the guest speaks LGMP protocol version %u; this reader speaks version %u (Looking Glass B7) "
                    "and %u (B6)",
                    v, NEURON_LGMP_VERSION, NEURON_LGMP_VERSION_B6);
    uint32_t usize = ld32(b, H_UDATASIZE);
    if (usize < K_SIZE || !in_region(r, NEURON_LGMP_UDATA_OFFSET, usize))
        return fail(r, NEURON_EFORMAT, "LGMP udata size %u is out of range", usize);
    if (memcmp(b + NEURON_LGMP_UDATA_OFFSET + K_MAGIC, "KVMFR---", 8) != 0)
        return fail(r, NEURON_EFORMAT, "no KVMFR record in the LGMP udata");
    uint32_t kv = ld32(b, NEURON_LGMP_UDATA_OFFSET + K_VERSION);
    if (kv != NEURON_KVMFR_VERSION && kv != NEURON_KVMFR_VERSION_B6)
        return fail(r, NEURON_EUNSUPPORTED,
                    "the guest speaks KVMFR version %u; this reader speaks version %u (Looking Glass B7) and %u (B6)",
                    kv, NEURON_KVMFR_VERSION, NEURON_KVMFR_VERSION_B6);
    r->lgmp_version = v;
    r->kvmfr_version = kv;
    return NEURON_OK;
}

int32_t neuron_kvmfr_reader_attach(neuron_kvmfr_reader *r, uint32_t timeout_ms) {
    if (!r) return NEURON_EINVAL;
    detach(r);
    r->err[0] = 0;
    uint8_t *b = r->base;
    uint64_t deadline = mono_ns() + (uint64_t)timeout_ms * 1000000ull;
    uint32_t magic;
    while ((magic = ld32(b, H_MAGIC)) != NEURON_LGMP_MAGIC) {
        if (magic != 0) return fail(r, NEURON_EFORMAT, "no LGMP header in the region (magic 0x%08x)", magic);
        if (mono_ns() >= deadline) return fail(r, NEURON_EIO, "no LGMP header was written within %u ms", timeout_ms);
        neuron_capture_sleep_us(1000);
    }
    int32_t rc = check_versions(r);
    if (rc) return rc;
    uint32_t session = ld32(b, H_SESSION);
    uint64_t ts0 = ld64(b, H_TIMESTAMP);
    while (timeout_ms && ld64(b, H_TIMESTAMP) == ts0) {
        if (mono_ns() >= deadline)
            return fail(r, NEURON_EIO, "the guest's heartbeat did not move within %u ms", timeout_ms);
        neuron_capture_sleep_us(500);
    }
    if (ld32(b, H_SESSION) != session || ld32(b, H_MAGIC) != NEURON_LGMP_MAGIC)
        return fail(r, NEURON_EIO, "the guest re-initialised while attaching");
    rc = subscribe(r, NEURON_KVMFR_QUEUE_FRAME, &r->frameq);
    if (rc) return rc;
    rc = subscribe(r, NEURON_KVMFR_QUEUE_POINTER, &r->ptrq);
    if (rc) {
        unsubscribe(r, &r->frameq);
        return rc;
    }
    r->session_id = session;
    r->last_ts = ld64(b, H_TIMESTAMP);
    r->last_ts_change_ns = mono_ns();
    r->have_serial = 0;
    r->attached = 1;
    r->stats.attached = 1;
    r->stats.session_id = session;
    r->stats.lgmp_version = r->lgmp_version;
    r->stats.kvmfr_version = r->kvmfr_version;
    return NEURON_OK;
}

/* 1 while the session is alive, 0 when it changed or its heartbeat stalled. */
static int session_alive(neuron_kvmfr_reader *r) {
    uint8_t *b = r->base;
    if (ld32(b, H_MAGIC) != NEURON_LGMP_MAGIC || ld32(b, H_SESSION) != r->session_id ||
        ld32(b, H_VERSION) != r->lgmp_version)
        return 0;
    uint64_t ts = ld64(b, H_TIMESTAMP), now = mono_ns();
    if (ts != r->last_ts) {
        r->last_ts = ts;
        r->last_ts_change_ns = now;
        return 1;
    }
    return now - r->last_ts_change_ns <= HEARTBEAT_STALL_NS;
}

static uint32_t bytes_per_pixel(uint32_t type) {
    switch (type) {
    case NEURON_FRAME_BGRA:
    case NEURON_FRAME_RGBA:
    case NEURON_FRAME_RGBA10:
    case NEURON_FRAME_BGR_32: return 4;
    case NEURON_FRAME_RGBA16F: return 8;
    case NEURON_FRAME_RGB_24: return 3;
    default: return 0;
    }
}

/* Reads one cursor message into r->cursor (bounds-checked); 1 accepted, 0 rejected. */
static int read_cursor(neuron_kvmfr_reader *r, uint32_t flags, uint32_t size, uint32_t offset) {
    uint8_t *b = r->base;
    if (size < NEURON_KVMFR_CURSOR_SIZE || !in_region(r, offset, size) || (offset & 3u)) return 0;
    int16_t x, y;
    memcpy(&x, b + offset + C_X, 2);
    memcpy(&y, b + offset + C_Y, 2);
    if (flags & NEURON_CURSOR_SHAPE) {
        uint32_t type = ld32(b, offset + C_TYPE), w = ld32(b, offset + C_WIDTH), h = ld32(b, offset + C_HEIGHT);
        uint32_t pitch = ld32(b, offset + C_PITCH);
        /* Monochrome shapes carry AND + XOR masks: twice the rows. */
        uint32_t max_h = NEURON_KVMFR_MAX_CURSOR_DIM * 2;
        if (type > 2 || w == 0 || h == 0 || w > NEURON_KVMFR_MAX_CURSOR_DIM || h > max_h || pitch == 0 ||
            pitch > NEURON_KVMFR_MAX_CURSOR_DIM * 4 || (type != 1 && pitch < w * 4u) ||
            (uint64_t)h * pitch > (uint64_t)size - NEURON_KVMFR_CURSOR_SIZE)
            return 0;
        uint32_t row = type == 1 ? pitch : w * 4u;
        if (!r->shape && !(r->shape = malloc((size_t)NEURON_KVMFR_MAX_CURSOR_DIM * 4 * max_h))) return 0;
        for (uint32_t i = 0; i < h; i++)
            memcpy(r->shape + (uint64_t)i * row, b + offset + NEURON_KVMFR_CURSOR_SIZE + (uint64_t)i * pitch, row);
        r->shape_bytes = (uint64_t)h * row;
        r->cursor.shape_width = w;
        r->cursor.shape_height = h;
        r->cursor.shape_type = type;
        r->cursor.shape_serial++;
    }
    if (flags & NEURON_CURSOR_POSITION) {
        r->cursor.x = x;
        r->cursor.y = y;
    }
    r->cursor.visible = (flags & NEURON_CURSOR_VISIBLE) ? 1u : 0u;
    r->cursor.updates++;
    r->stats.cursor_updates++;
    return 1;
}

/* Drains the pointer queue, releasing every message as soon as it is read. */
static int32_t drain_pointer(neuron_kvmfr_reader *r) {
    if (!r->ptrq.active) return NEURON_OK;
    if (!sub_valid(r, &r->ptrq)) {
        r->ptrq.active = 0;
        r->stats.resubscribes++;
        int32_t rc = subscribe(r, NEURON_KVMFR_QUEUE_POINTER, &r->ptrq);
        if (rc) return rc;
    }
    for (uint32_t n = 0; n < r->ptrq.nmsg; n++) {
        uint32_t udata, size, offset;
        int32_t rc = sub_peek(r, &r->ptrq, &udata, &size, &offset);
        if (rc <= 0) return rc;
        if (!read_cursor(r, udata, size, offset)) r->stats.rejected++;
        sub_release(r, &r->ptrq);
    }
    return NEURON_OK;
}

typedef struct frame_hdr {
    uint32_t format_ver, serial, type, screen_w, screen_h, data_w, data_h, frame_w, frame_h, rotation, pitch;
    uint32_t fb_offset, damage_count, flags;
} frame_hdr;

/* Copies the frame struct's fields out of shared memory once (no re-reads) and validates them. */
static int parse_frame(neuron_kvmfr_reader *r, uint32_t size, uint32_t offset, frame_hdr *f,
                       uint32_t damage[NEURON_KVMFR_MAX_DAMAGE_RECTS * 4], uint64_t *fb) {
    uint8_t *b = r->base;
    int b6 = r->kvmfr_version == NEURON_KVMFR_VERSION_B6;
    uint32_t need = b6 ? NEURON_KVMFR_FRAME_SIZE_B6 : NEURON_KVMFR_FRAME_SIZE;
    if (size < need || (offset & 3u) || !in_region(r, offset, need)) return 0;
    uint64_t o = offset, sh = b6 ? F_B6_SHIFT : 0;
    f->format_ver = ld32(b, o + F_FORMATVER);
    f->serial = ld32(b, o + F_SERIAL);
    f->type = ld32(b, o + F_TYPE);
    f->screen_w = ld32(b, o + F_SCREENW);
    f->screen_h = ld32(b, o + F_SCREENH);
    f->frame_w = ld32(b, o + F_FRAMEW - sh);
    f->frame_h = ld32(b, o + F_FRAMEH - sh);
    f->data_w = b6 ? f->frame_w : ld32(b, o + F_DATAW);
    f->data_h = b6 ? f->frame_h : ld32(b, o + F_DATAH);
    f->rotation = ld32(b, o + F_ROTATION - sh);
    f->pitch = ld32(b, o + F_PITCH - sh);
    f->fb_offset = ld32(b, o + F_OFFSET - sh);
    f->damage_count = ld32(b, o + F_DAMAGECOUNT - sh);
    f->flags = ld32(b, o + F_FLAGS - sh);
    uint32_t bpp = bytes_per_pixel(f->type);
    if (!bpp || f->rotation > 3) return 0;
    if (f->data_w == 0 || f->data_h == 0 || f->data_w > NEURON_CAPTURE_MAX_DIM || f->data_h > NEURON_CAPTURE_MAX_DIM ||
        f->frame_w > NEURON_CAPTURE_MAX_DIM || f->frame_h > NEURON_CAPTURE_MAX_DIM)
        return 0;
    if (f->pitch < f->data_w * bpp || f->pitch > NEURON_CAPTURE_MAX_DIM * 8u) return 0;
    if (f->damage_count > NEURON_KVMFR_MAX_DAMAGE_RECTS) return 0;
    for (uint32_t i = 0; i < f->damage_count * 4; i++) damage[i] = ld32(b, o + F_DAMAGE - sh + 4ull * i);
    for (uint32_t i = 0; i < f->damage_count; i++) {
        uint64_t x = damage[i * 4], y = damage[i * 4 + 1], w = damage[i * 4 + 2], h = damage[i * 4 + 3];
        uint64_t fw = f->frame_w ? f->frame_w : f->data_w, fh = f->frame_h ? f->frame_h : f->data_h;
        if (x + w > fw || y + h > fh) return 0;
    }
    uint64_t fbo = o + f->fb_offset;
    if ((fbo & 3u) || !in_region(r, fbo, 4 + (uint64_t)f->data_h * f->pitch)) return 0;
    *fb = fbo;
    return 1;
}

/* Hands rows to the sink as the guest's wp covers them; 1 done, 0 timed out or refused. */
static int consume_pixels(neuron_kvmfr_reader *r, uint64_t fb, const frame_hdr *f, const neuron_frame_sink *sink,
                          uint32_t wp_timeout_ms) {
    uint8_t *b = r->base;
    const uint8_t *src = b + fb + 4;
    uint64_t total = (uint64_t)f->data_h * f->pitch;
    uint64_t deadline = mono_ns() + (uint64_t)wp_timeout_ms * 1000000ull;
    uint32_t rows_done = 0;
    unsigned spins = 0;
    while (rows_done < f->data_h) {
        uint64_t wp = ld32(b, fb);
        if (wp > total) wp = total;
        uint32_t rows_ready = wp == total ? f->data_h : (uint32_t)(wp / f->pitch);
        if (rows_ready > rows_done) {
            uint32_t next = sink->rows(sink->ctx, src, f->pitch, rows_done, rows_ready, f->data_h);
            if (next < rows_done || next > rows_ready) return 0;
            if (next > rows_done) {
                rows_done = next;
                spins = 0;
                continue;
            }
        }
        if (mono_ns() >= deadline) return 0;
        if (++spins > 64) neuron_capture_sleep_us(50);
        else __builtin_ia32_pause();
    }
    return 1;
}

typedef struct copy_ctx {
    uint8_t *dst;
    uint64_t cap;
    uint32_t row_bytes;
} copy_ctx;

static int copy_begin(void *ctx, const neuron_frame_info *info) {
    copy_ctx *c = ctx;
    c->row_bytes = info->out_pitch;
    return (uint64_t)info->out_pitch * info->data_height <= c->cap ? 0 : NEURON_ERANGE;
}

static uint32_t copy_rows(void *ctx, const uint8_t *src, uint32_t pitch, uint32_t y0, uint32_t y1, uint32_t height) {
    (void)height;
    copy_ctx *c = ctx;
    if (pitch == c->row_bytes) {
        memcpy(c->dst + (uint64_t)y0 * pitch, src + (uint64_t)y0 * pitch, (uint64_t)(y1 - y0) * pitch);
    } else {
        for (uint32_t y = y0; y < y1; y++)
            memcpy(c->dst + (uint64_t)y * c->row_bytes, src + (uint64_t)y * pitch, c->row_bytes);
    }
    return y1;
}

int32_t neuron_kvmfr_reader_next_frame(neuron_kvmfr_reader *r, uint32_t timeout_ms, uint32_t wp_timeout_ms,
                                       uint8_t *dst, uint64_t dst_cap, neuron_frame_info *info) {
    if (!r || !info || (!dst && dst_cap)) return NEURON_EINVAL;
    copy_ctx c = {.dst = dst, .cap = dst_cap};
    neuron_frame_sink sink = {.begin = copy_begin, .rows = copy_rows, .ctx = &c};
    return neuron_kvmfr_reader_next_frame_sink(r, timeout_ms, wp_timeout_ms, &sink, info);
}

int32_t neuron_kvmfr_reader_next_frame_sink(neuron_kvmfr_reader *r, uint32_t timeout_ms, uint32_t wp_timeout_ms,
                                            const neuron_frame_sink *sink, neuron_frame_info *info) {
    if (!r || !info || !sink) return NEURON_EINVAL;
    uint64_t start = mono_ns(), deadline = start + (uint64_t)timeout_ms * 1000000ull;
    r->err[0] = 0;
    for (;;) {
        if (!r->attached) {
            uint64_t now = mono_ns();
            uint32_t left = now >= deadline ? 1 : (uint32_t)((deadline - now) / 1000000ull) + 1;
            int32_t rc = neuron_kvmfr_reader_attach(r, left);
            if (rc == NEURON_OK) return NEURON_CAPTURE_RESTARTED;
            if (rc == NEURON_EIO) return NEURON_CAPTURE_TIMEOUT;
            return rc;
        }
        if (!session_alive(r)) {
            detach(r);
            r->stats.restarts++;
            continue;
        }
        int32_t rc = drain_pointer(r);
        if (rc < 0) {
            detach(r);
            return rc;
        }
        if (!sub_valid(r, &r->frameq)) {
            r->frameq.active = 0;
            r->stats.resubscribes++;
            rc = subscribe(r, NEURON_KVMFR_QUEUE_FRAME, &r->frameq);
            if (rc) {
                detach(r);
                return rc == NEURON_EIO ? NEURON_CAPTURE_TIMEOUT : rc;
            }
        }
        uint32_t udata, size, offset;
        rc = sub_peek(r, &r->frameq, &udata, &size, &offset);
        if (rc < 0) {
            detach(r);
            return rc;
        }
        if (rc == 1) {
            uint64_t seen = mono_ns();
            frame_hdr f;
            uint64_t fb = 0;
            memset(info, 0, sizeof *info);
            info->session_id = r->session_id;
            info->read_time_ns = seen;
            if (!parse_frame(r, size, offset, &f, info->damage, &fb)) {
                sub_release(r, &r->frameq);
                r->stats.rejected++;
                snprintf(r->err, sizeof r->err, "rejected a malformed frame (message offset %u, size %u)", offset,
                         size);
                return NEURON_CAPTURE_REJECTED;
            }
            if (r->have_serial && f.serial == r->last_serial) {
                sub_release(r, &r->frameq); /* a repeat of the frame already delivered */
                continue;
            }
            uint32_t row = f.data_w * bytes_per_pixel(f.type);
            info->format_ver = f.format_ver;
            info->frame_serial = f.serial;
            info->type = f.type;
            info->screen_width = f.screen_w;
            info->screen_height = f.screen_h;
            info->data_width = f.data_w;
            info->data_height = f.data_h;
            info->frame_width = f.frame_w;
            info->frame_height = f.frame_h;
            info->rotation = f.rotation;
            info->out_pitch = row;
            info->flags = f.flags;
            info->damage_count = f.damage_count;
            uint64_t need = (uint64_t)row * f.data_h;
            info->bytes = need;
            int32_t accepted = sink->begin(sink->ctx, info);
            if (accepted < 0) {
                sub_release(r, &r->frameq);
                return fail(r, accepted, "frame of %llu bytes refused by the consumer (status %d)",
                            (unsigned long long)need, accepted);
            }
            int ok = consume_pixels(r, fb, &f, sink, wp_timeout_ms);
            sub_release(r, &r->frameq);
            info->copy_ns = mono_ns() - seen;
            if (!ok) {
                r->stats.wp_timeouts++;
                r->stats.rejected++;
                snprintf(r->err, sizeof r->err, "frame %u: pixels not written within %u ms", f.serial, wp_timeout_ms);
                return NEURON_CAPTURE_REJECTED;
            }
            r->last_serial = f.serial;
            r->have_serial = 1;
            r->stats.frames++;
            return NEURON_CAPTURE_FRAME;
        }
        if (mono_ns() >= deadline) return NEURON_CAPTURE_TIMEOUT;
        neuron_capture_sleep_us(100);
    }
}

int64_t neuron_kvmfr_reader_cursor(neuron_kvmfr_reader *r, neuron_cursor_info *info, uint8_t *shape, uint64_t cap) {
    if (!r || !info) return NEURON_EINVAL;
    if (r->attached && session_alive(r)) {
        int32_t rc = drain_pointer(r);
        if (rc < 0) return rc;
    }
    *info = r->cursor;
    if (!shape || !r->shape || !r->shape_bytes) return 0;
    if (cap < r->shape_bytes) return NEURON_ERANGE;
    memcpy(shape, r->shape, r->shape_bytes);
    return (int64_t)r->shape_bytes;
}

void neuron_kvmfr_reader_close(neuron_kvmfr_reader *r) {
    if (!r) return;
    detach(r);
    if (r->owns_map) munmap(r->base, r->size);
    free(r->shape);
    free(r);
}

void neuron_kvmfr_reader_stats(const neuron_kvmfr_reader *r, neuron_reader_stats *out) {
    if (r && out) *out = r->stats;
}

const char *neuron_kvmfr_reader_error(const neuron_kvmfr_reader *r) { return r ? r->err : ""; }
