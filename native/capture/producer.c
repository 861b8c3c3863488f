/*
 * Synthetic guest-side producer of the LGMP v6 / KVMFR v20 layout (../capture.h).
 * Allocation order as B7: header + udata, message rings, 20 cursor buffers,
 * 3 shape buffers (24 B + 1 MiB), 2 page-aligned frame slots.
 */
#include "lgmp.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>

#define PAGE 4096ull
#define PTR_MSGS 20u
#define FRAME_MSGS 2u
#define SHAPE_BYTES (1u << 20)
#define SHAPE_DIM 32u
#define MAX_TIME_MS 1000u
#define WP_CHUNK (1u << 20)

void neuron_testpattern_rows(uint8_t *dst, uint32_t width, uint32_t pitch, uint32_t y0, uint32_t y1,
                             uint32_t counter);

struct neuron_producer {
    uint8_t *base;
    uint64_t size;
    int owns_map;
    neuron_producer_config cfg;
    pthread_t thread;
    int running;
    int stop;
    uint64_t frames;
    uint64_t delivered; /* frames posted while a reader was subscribed (fault timing) */
    uint32_t session;
    uint32_t lgmp_version, kvmfr_version;
    uint64_t ptrq, frameq;
    uint64_t cursor_slot[PTR_MSGS];
    uint64_t shape_slot[3];
    uint64_t frame_slot[2];
    uint32_t rows_fit;   /* rows a frame slot can hold */
    uint32_t last_slot;
    int have_last;
    uint32_t serial;
    uint32_t cursor_n;
    uint64_t ms0;
    int faulted;
};

static uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

uint64_t neuron_kvmfr_region_size(uint32_t width, uint32_t height) {
    uint64_t mib = ((uint64_t)width * height * 4 * 2 + (1ull << 20) - 1) >> 20;
    mib += 10;
    uint64_t p = 1;
    while (p < mib) p <<= 1;
    return p << 20;
}

static uint64_t now_ms(const neuron_producer *p) { return wall_ms() - p->ms0 + 1000; }

/* Writes the header, queues and udata; the magic last. */
static void init_region(neuron_producer *p) {
    uint8_t *b = p->base;
    st32(b, H_MAGIC, 0);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    int wrong = p->cfg.fault == NEURON_FAULT_WRONG_VERSION, b6 = p->cfg.fault == NEURON_FAULT_B6;
    p->lgmp_version = wrong ? 7u : b6 ? NEURON_LGMP_VERSION_B6 : NEURON_LGMP_VERSION;
    p->kvmfr_version = wrong ? 21u : b6 ? NEURON_KVMFR_VERSION_B6 : NEURON_KVMFR_VERSION;
    uint64_t off = align_up(NEURON_LGMP_UDATA_OFFSET + 256, 64);
    memset(b + 4, 0, off - 4);
    st32(b, H_VERSION, p->lgmp_version);
    st32(b, H_SESSION, p->session);
    st64(b, H_TIMESTAMP, now_ms(p));
    st32(b, H_NUMQUEUES, 2);
    uint32_t ids[2] = {NEURON_KVMFR_QUEUE_POINTER, NEURON_KVMFR_QUEUE_FRAME};
    uint32_t counts[2] = {PTR_MSGS + 1, FRAME_MSGS + 1};
    for (int i = 0; i < 2; i++) {
        uint64_t q = H_QUEUES + (uint64_t)i * NEURON_LGMP_QUEUE_SIZE;
        memset(b + off, 0, (uint64_t)counts[i] * NEURON_LGMP_MESSAGE_SIZE);
        st32(b, q + Q_ID, ids[i]);
        st32(b, q + Q_NUMMSG, counts[i]);
        st32(b, q + Q_MAXTIME, MAX_TIME_MS);
        st32(b, q + Q_MSGOFF, (uint32_t)off);
        off += align_up((uint64_t)counts[i] * NEURON_LGMP_MESSAGE_SIZE, 64);
        if (ids[i] == NEURON_KVMFR_QUEUE_POINTER) p->ptrq = q;
        else p->frameq = q;
    }
    /* KVMFR udata: header + VMINFO + OSINFO records. */
    uint8_t *u = b + NEURON_LGMP_UDATA_OFFSET;
    memcpy(u + K_MAGIC, "KVMFR---", 8);
    memcpy(u + K_VERSION, &p->kvmfr_version, 4);
    memcpy(u + K_HOSTVER, "neuron-synthetic", 17);
    uint8_t *rec = u + K_SIZE;
    rec[0] = 1;
    uint32_t vm_size = 16 + 32 + 3 + 10;
    memcpy(rec + 4, &vm_size, 4);
    memcpy(rec + 8 + 16, "synthetic", 10);
    rec[8 + 48] = 2;
    rec[8 + 49] = 2;
    rec[8 + 50] = 1;
    memcpy(rec + 8 + 51, "synthetic", 10);
    rec += 8 + vm_size;
    rec[0] = 2;
    uint32_t os_size = 1 + 10;
    memcpy(rec + 4, &os_size, 4);
    rec[8] = 4;
    memcpy(rec + 9, "synthetic", 10);
    rec += 8 + os_size;
    st32(b, H_UDATASIZE, (uint32_t)(rec - u));
    for (uint32_t i = 0; i < PTR_MSGS; i++, off += 64) p->cursor_slot[i] = off;
    for (uint32_t i = 0; i < 3; i++) {
        p->shape_slot[i] = off;
        off = align_up(off + NEURON_KVMFR_CURSOR_SIZE + SHAPE_BYTES, 64);
    }
    off = align_up(off, PAGE);
    uint64_t slot = (p->size - off) / 2 / PAGE * PAGE;
    p->frame_slot[0] = off;
    p->frame_slot[1] = off + slot;
    uint64_t pitch = (uint64_t)p->cfg.width * 4;
    uint64_t rows = slot > PAGE ? (slot - PAGE) / pitch : 0;
    p->rows_fit = rows > p->cfg.height ? p->cfg.height : (uint32_t)rows;
    p->have_last = 0;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    st32(b, H_MAGIC, NEURON_LGMP_MAGIC);
}

/* Frees released messages and evicts readers that hold the head too long. Queue locked. */
static void process_queue(neuron_producer *p, uint64_t q, uint64_t ts) {
    uint8_t *b = p->base;
    uint32_t nmsg = ld32(b, q + Q_NUMMSG), msgoff = ld32(b, q + Q_MSGOFF);
    while (ld32(b, q + Q_COUNT) > 0) {
        uint32_t start = ld32(b, q + Q_START);
        uint64_t m = msgoff + (uint64_t)start * NEURON_LGMP_MESSAGE_SIZE;
        uint32_t pending = ld32(b, m + M_PENDING);
        if (pending && ts > ld64(b, q + Q_MSGTIMEOUT)) {
            /* Evict every reader still holding the head: mark bad, drop its pending bits. */
            uint64_t subs = ld64(b, q + Q_SUBS);
            uint32_t subscribed = (uint32_t)(subs >> 32) & ~pending, bad = (uint32_t)subs | pending;
            for (uint32_t id = 0; id < 32; id++)
                if (pending & (1u << id)) st64(b, q + Q_TIMEOUT + 8ull * id, ts + MAX_TIME_MS);
            st64(b, q + Q_SUBS, ((uint64_t)subscribed << 32) | bad);
            for (uint32_t i = 0; i < nmsg; i++)
                __atomic_and_fetch((uint32_t *)(b + msgoff + (uint64_t)i * 16 + M_PENDING), ~pending,
                                   __ATOMIC_ACQ_REL);
            pending = 0;
        }
        if (pending) break;
        st32(b, q + Q_START, (start + 1) % nmsg);
        st32(b, q + Q_COUNT, ld32(b, q + Q_COUNT) - 1);
        st64(b, q + Q_MSGTIMEOUT, ts + MAX_TIME_MS);
    }
}

static void lock(neuron_producer *p, uint64_t q) {
    while (!lgmp_trylock(p->base, q)) __builtin_ia32_pause();
}

/* Posts a message if the queue has room; 1 posted. */
static int post(neuron_producer *p, uint64_t q, uint32_t udata, uint32_t size, uint64_t offset, uint32_t limit) {
    uint8_t *b = p->base;
    uint64_t ts = ld64(b, H_TIMESTAMP);
    lock(p, q);
    process_queue(p, q, ts);
    uint32_t nmsg = ld32(b, q + Q_NUMMSG), count = ld32(b, q + Q_COUNT);
    if (count >= limit || count >= nmsg - 1) {
        lgmp_unlock(b, q);
        return 0;
    }
    uint32_t pos = ld32(b, q + Q_POSITION);
    uint64_t m = ld32(b, q + Q_MSGOFF) + (uint64_t)pos * NEURON_LGMP_MESSAGE_SIZE;
    uint64_t subs = ld64(b, q + Q_SUBS);
    st32(b, m + M_UDATA, udata);
    st32(b, m + M_SIZE, size);
    st32(b, m + M_OFFSET, (uint32_t)offset);
    st32(b, m + M_PENDING, (uint32_t)(subs >> 32) & ~(uint32_t)subs);
    if (count == 0) st64(b, q + Q_MSGTIMEOUT, ts + MAX_TIME_MS);
    st32(b, q + Q_COUNT, count + 1);
    st32(b, q + Q_POSITION, (pos + 1) % nmsg);
    lgmp_unlock(b, q);
    return 1;
}

/* Frame struct at the slot; hostile variants when `hostile` > 0. Returns data rows. */
static uint32_t write_frame_struct(neuron_producer *p, uint64_t slot, uint32_t hostile, uint32_t *msg_size,
                                   uint64_t *msg_offset) {
    uint8_t *b = p->base;
    int b6 = p->kvmfr_version == NEURON_KVMFR_VERSION_B6;
    uint64_t sh = b6 ? F_B6_SHIFT : 0;
    uint32_t w = p->cfg.width, h = p->cfg.height, rows = p->rows_fit;
    int truncated = rows < h || p->cfg.fault == NEURON_FAULT_TRUNCATED;
    if (p->cfg.fault == NEURON_FAULT_TRUNCATED && rows > h / 2) rows = h / 2;
    memset(b + slot, 0, NEURON_KVMFR_FRAME_SIZE);
    st32(b, slot + F_FORMATVER, 1);
    st32(b, slot + F_SERIAL, ++p->serial);
    st32(b, slot + F_TYPE, NEURON_FRAME_BGRA);
    st32(b, slot + F_SCREENW, w);
    st32(b, slot + F_SCREENH, h);
    if (!b6) {
        st32(b, slot + F_DATAW, w);
        st32(b, slot + F_DATAH, rows);
    }
    st32(b, slot + F_FRAMEW - sh, w);
    st32(b, slot + F_FRAMEH - sh, b6 ? rows : h);
    st32(b, slot + F_STRIDE - sh, w);
    st32(b, slot + F_PITCH - sh, w * 4);
    st32(b, slot + F_OFFSET - sh, (uint32_t)(PAGE - 4));
    st32(b, slot + F_DAMAGECOUNT - sh, 1);
    uint32_t rect[4] = {0, 0, w, b6 ? rows : h};
    memcpy(b + slot + F_DAMAGE - sh, rect, 16);
    st32(b, slot + F_FLAGS - sh, truncated ? NEURON_FRAME_FLAG_TRUNCATED : 0);
    st32(b, slot + PAGE - 4, 0); /* wp */
    *msg_size = b6 ? NEURON_KVMFR_FRAME_SIZE_B6 : NEURON_KVMFR_FRAME_SIZE;
    *msg_offset = slot;
    switch (hostile) {
    case 1: st32(b, slot + F_OFFSET - sh, 0xfffff000u); break;                 /* pixels past the end */
    case 2: if (!b6) st32(b, slot + F_DATAH, 0x7fffffffu); else st32(b, slot + F_FRAMEH - sh, 0x7fffffffu); break;
    case 3: st32(b, slot + F_DAMAGECOUNT - sh, 65); break;                     /* too many rects */
    case 4: st32(b, slot + F_PITCH - sh, 4); break;                            /* pitch below the row */
    case 5: *msg_offset = p->size - 16; break;                                 /* struct past the end */
    case 6: *msg_size = 8; break;                                              /* message too small */
    case 7: st32(b, slot + F_TYPE, 99); break;                                 /* unknown format */
    case 8: memcpy(b + slot + F_DAMAGE - sh, (uint32_t[4]){w, h, 0xffffffffu, 1}, 16); break;
    default: break;
    }
    return rows;
}

static void write_pixels(neuron_producer *p, uint64_t slot, uint32_t rows, uint32_t counter) {
    uint8_t *b = p->base;
    uint32_t pitch = p->cfg.width * 4;
    uint64_t fb = slot + PAGE - 4, total = (uint64_t)rows * pitch;
    uint32_t rows_per_chunk = WP_CHUNK / pitch ? WP_CHUNK / pitch : 1;
    for (uint32_t y = 0; y < rows; y += rows_per_chunk) {
        uint32_t y1 = y + rows_per_chunk < rows ? y + rows_per_chunk : rows;
        neuron_testpattern_rows(b + fb + 4 + (uint64_t)y * pitch, p->cfg.width, pitch, y, y1, counter);
        uint64_t wp = (uint64_t)y1 * pitch;
        st32(b, fb, (uint32_t)(wp > total ? total : wp));
        if (p->cfg.fault == NEURON_FAULT_SLOW_WP) neuron_capture_sleep_us(2000);
    }
}

static void post_cursor(neuron_producer *p, uint32_t n) {
    uint8_t *b = p->base;
    int shape = n % 30 == 0;
    uint64_t off = shape ? p->shape_slot[(n / 30) % 3] : p->cursor_slot[n % PTR_MSGS];
    int16_t x = (int16_t)(100 + (n * 7) % 500), y = (int16_t)(100 + (n * 3) % 300);
    memset(b + off, 0, NEURON_KVMFR_CURSOR_SIZE);
    memcpy(b + off + C_X, &x, 2);
    memcpy(b + off + C_Y, &y, 2);
    uint32_t flags = NEURON_CURSOR_POSITION | NEURON_CURSOR_VISIBLE, size = NEURON_KVMFR_CURSOR_SIZE;
    if (shape) {
        st32(b, off + C_TYPE, 0);
        st32(b, off + C_WIDTH, SHAPE_DIM);
        st32(b, off + C_HEIGHT, SHAPE_DIM);
        st32(b, off + C_PITCH, SHAPE_DIM * 4);
        if (p->cfg.fault == NEURON_FAULT_HOSTILE && n % 60 == 30) st32(b, off + C_HEIGHT, 100000); /* huge shape */
        for (uint32_t i = 0; i < SHAPE_DIM * SHAPE_DIM; i++) {
            uint32_t px = (i % SHAPE_DIM) <= (i / SHAPE_DIM) ? 0xffffffffu : 0u;
            memcpy(b + off + NEURON_KVMFR_CURSOR_SIZE + 4ull * i, &px, 4);
        }
        flags |= NEURON_CURSOR_SHAPE;
        size += SHAPE_DIM * SHAPE_DIM * 4;
    }
    post(p, p->ptrq, flags, size, off, PTR_MSGS);
}

/* 1 if the queue can take another message (only this thread adds messages). */
static int has_room(neuron_producer *p, uint64_t q, uint32_t limit) {
    uint8_t *b = p->base;
    lock(p, q);
    process_queue(p, q, ld64(b, H_TIMESTAMP));
    uint32_t count = ld32(b, q + Q_COUNT);
    lgmp_unlock(b, q);
    return count < limit;
}

static int post_frame(neuron_producer *p) {
    uint32_t n = (uint32_t)p->frames;
    if (!has_room(p, p->frameq, FRAME_MSGS)) return 0;
    uint32_t hostile = 0;
    if (p->cfg.fault == NEURON_FAULT_HOSTILE && n >= p->cfg.fault_after && (n & 1u)) hostile = 1 + (n / 2) % 8;
    uint32_t slot_i = p->have_last ? (p->last_slot + 1) % 2 : 0;
    uint64_t slot = p->frame_slot[slot_i], moff;
    uint32_t msize;
    uint32_t rows = write_frame_struct(p, slot, hostile, &msize, &moff);
    if (!post(p, p->frameq, 0, msize, moff, FRAME_MSGS)) {
        p->serial--;
        return 0;
    }
    if (ld64(p->base, p->frameq + Q_SUBS) >> 32) p->delivered++;
    write_pixels(p, slot, hostile ? 0 : rows, n);
    if (hostile) st32(p->base, slot + PAGE - 4, 0xffffffffu);
    p->last_slot = slot_i;
    p->have_last = 1;
    post_cursor(p, n);
    __atomic_store_n(&p->frames, p->frames + 1, __ATOMIC_RELEASE);
    return 1;
}

/* Re-posts the last frame for new subscribers. */
static void repost_for_new_subs(neuron_producer *p) {
    uint8_t *b = p->base;
    uint64_t q = p->frameq;
    if (!p->have_last || ld32(b, q + Q_NEWSUB) == 0 || !has_room(p, q, FRAME_MSGS)) return;
    uint32_t msize = p->kvmfr_version == NEURON_KVMFR_VERSION_B6 ? NEURON_KVMFR_FRAME_SIZE_B6 : NEURON_KVMFR_FRAME_SIZE;
    if (post(p, q, 0, msize, p->frame_slot[p->last_slot], FRAME_MSGS)) st32(b, q + Q_NEWSUB, 0);
}

static void *producer_main(void *arg) {
    neuron_producer *p = arg;
    uint64_t period_ns = p->cfg.fps ? 1000000000ull / p->cfg.fps : 0;
    uint64_t next_frame = mono_ns(), last_hb = 0, stall_until = 0;
    while (!__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE)) {
        uint64_t now = mono_ns();
        if (stall_until && now < stall_until) {
            neuron_capture_sleep_us(1000);
            continue;
        }
        stall_until = 0;
        if (now - last_hb >= 10000000ull) {
            st64(p->base, H_TIMESTAMP, now_ms(p));
            last_hb = now;
        }
        uint64_t ts = ld64(p->base, H_TIMESTAMP);
        for (int i = 0; i < 2; i++) {
            uint64_t q = i ? p->frameq : p->ptrq;
            lock(p, q);
            process_queue(p, q, ts);
            lgmp_unlock(p->base, q);
        }
        repost_for_new_subs(p);
        if (!p->faulted && p->delivered >= p->cfg.fault_after) {
            if (p->cfg.fault == NEURON_FAULT_STALL_HEARTBEAT) {
                p->faulted = 1;
                stall_until = now + 1500000000ull;
                continue;
            }
            if (p->cfg.fault == NEURON_FAULT_NEW_SESSION) {
                p->faulted = 1;
                uint32_t s = p->session;
                while (s == p->session) s = p->session * 2654435761u + 12345u;
                p->session = s;
                init_region(p);
                continue;
            }
        }
        int done = p->cfg.max_frames && p->frames >= p->cfg.max_frames;
        if (!done && now >= next_frame) {
            if (post_frame(p)) next_frame = period_ns ? next_frame + period_ns : now;
            if (period_ns && next_frame + 4 * period_ns < now) next_frame = now; /* don't burst after a stall */
        }
        uint64_t wait = period_ns && !done && next_frame > now ? (next_frame - now) / 1000 : 1000;
        neuron_capture_sleep_us(wait > 1000 ? 1000 : (uint32_t)(wait ? wait : 50));
    }
    return NULL;
}

static int32_t start(uint8_t *base, uint64_t size, int owns, const neuron_producer_config *cfg,
                     neuron_producer **out) {
    neuron_producer *p = calloc(1, sizeof *p);
    if (!p) return NEURON_ENOMEM;
    p->base = base;
    p->size = size;
    p->owns_map = owns;
    p->cfg = *cfg;
    p->ms0 = wall_ms();
    p->session = cfg->session_id;
    while (p->session == 0)
        if (getrandom(&p->session, sizeof p->session, 0) != sizeof p->session) p->session = (uint32_t)getpid();
    init_region(p);
    if (p->rows_fit == 0) {
        free(p);
        return NEURON_ERANGE;
    }
    if (pthread_create(&p->thread, NULL, producer_main, p) != 0) {
        free(p);
        return NEURON_EIO;
    }
    p->running = 1;
    *out = p;
    return NEURON_OK;
}

static int32_t check_config(const neuron_producer_config *cfg) {
    if (!cfg || cfg->width < 16 || cfg->height < 16 || cfg->width > 8192 || cfg->height > 8192 ||
        cfg->fps > 1000 || cfg->fault > NEURON_FAULT_B6)
        return NEURON_EINVAL;
    return NEURON_OK;
}

int32_t neuron_producer_start_mem(uint8_t *base, uint64_t size, const neuron_producer_config *cfg,
                                  neuron_producer **out) {
    if (!base || !out || check_config(cfg)) return NEURON_EINVAL;
    uint64_t min = align_up(NEURON_LGMP_UDATA_OFFSET + 256, 64) + 4 * PAGE + 3 * (SHAPE_BYTES + 128) + 4096;
    if (size < min) return NEURON_ERANGE;
    return start(base, size, 0, cfg, out);
}

int32_t neuron_producer_start(const char *path, uint64_t size, const neuron_producer_config *cfg,
                              neuron_producer **out) {
    if (!path || !out || check_config(cfg)) return NEURON_EINVAL;
    if (size == 0) size = neuron_kvmfr_region_size(cfg->width, cfg->height);
    if (size > (1ull << 34)) return NEURON_EINVAL;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0660);
    if (fd < 0) return NEURON_EIO;
    if (ftruncate(fd, (off_t)size) != 0) {
        close(fd);
        return NEURON_EIO;
    }
    void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED) return NEURON_EIO;
    int32_t rc = neuron_producer_start_mem(m, size, cfg, out);
    if (rc) {
        munmap(m, size);
        return rc;
    }
    (*out)->owns_map = 1;
    return NEURON_OK;
}

uint64_t neuron_producer_frames(const neuron_producer *p) {
    return p ? __atomic_load_n(&p->frames, __ATOMIC_ACQUIRE) : 0;
}

void neuron_producer_stop(neuron_producer *p) {
    if (!p) return;
    __atomic_store_n(&p->stop, 1, __ATOMIC_RELEASE);
    if (p->running) pthread_join(p->thread, NULL);
    if (p->owns_map) munmap(p->base, p->size);
    free(p);
}
