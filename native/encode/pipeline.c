/* Capture thread → convert → encode → ring of access units (../encode.h). */
#include "../capture.h"
#include "../encode.h"
#include "../capture/reader_sink.h"
#include "../hostout/pw_internal.h"
#include "../capture/nvf_internal.h"
#include "encoder_rows.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TIMING_RING 1024u

typedef struct au_slot {
    uint8_t *data;
    neuron_au_info info;
} au_slot;

struct neuron_pipeline {
    neuron_pipeline_config cfg;
    neuron_kvmfr_reader *reader;
    neuron_pw_stream *pw; /* instead of reader: a host virtual output (borrowed, not closed here) */
    neuron_nvf_reader *nvf; /* or frames a guest exports over vsock / a unix socket (borrowed) */
    neuron_encoder *enc;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* consumer on the pipeline thread (neuron_pipeline_set_consumer), guarded by consumer_mu,
     * which the thread holds across each call */
    pthread_mutex_t consumer_mu;
    neuron_pipeline_consumer_fn consumer;
    void *consumer_ctx;
    int stop;
    int started;
    /* ring, guarded by mu */
    au_slot *slots;
    uint32_t head, count, slot_bytes;
    /* requests, guarded by mu */
    int idr_requested;
    uint32_t new_bitrate;
    neuron_pipeline_stats stats;
    neuron_pipeline_timing timing[TIMING_RING]; /* guarded by mu */
    uint32_t timing_head, timing_count;
    char report[1024];
    /* thread-owned state */
    uint32_t enc_w, enc_h, enc_fmt;
    int force_idr;
    uint8_t *au;
    uint64_t au_cap;
    uint64_t convert_ns; /* conversion time of the current frame */
};

static uint64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint32_t us_of(uint64_t ns) { return ns / 1000 > UINT32_MAX ? UINT32_MAX : (uint32_t)(ns / 1000); }

/* (Re)opens the encoder for w x h; returns a status. Thread only. */
static int32_t open_encoder(neuron_pipeline *p, uint32_t w, uint32_t h, uint32_t format) {
    neuron_encoder_close(p->enc);
    p->enc = NULL;
    neuron_encoder_config c = p->cfg.enc;
    c.width = w;
    c.height = h;
    c.input_format = format;
    pthread_mutex_lock(&p->mu);
    if (p->new_bitrate) c.bitrate_kbps = p->cfg.enc.bitrate_kbps = p->new_bitrate;
    p->new_bitrate = 0;
    pthread_mutex_unlock(&p->mu);
    int32_t rc = neuron_encoder_open(&c, &p->enc);
    pthread_mutex_lock(&p->mu);
    snprintf(p->report, sizeof p->report, "%s", neuron_encoder_probe_report(p->enc));
    p->stats.width = w & ~1u;
    p->stats.height = h & ~1u;
    pthread_mutex_unlock(&p->mu);
    if (rc) return rc;
    uint64_t slot = p->cfg.slot_bytes ? p->cfg.slot_bytes : (uint64_t)w * h * 3 / 2 + 65536;
    if (slot > p->slot_bytes || !p->slots[0].data) {
        pthread_mutex_lock(&p->mu);
        for (uint32_t i = 0; i < p->cfg.ring_slots; i++) {
            free(p->slots[i].data);
            p->slots[i].data = malloc(slot);
            if (!p->slots[i].data) {
                pthread_mutex_unlock(&p->mu);
                return NEURON_ENOMEM;
            }
        }
        p->head = p->count = 0;
        p->slot_bytes = (uint32_t)slot;
        pthread_mutex_unlock(&p->mu);
        free(p->au);
        p->au_cap = slot;
        p->au = malloc(slot);
        if (!p->au) return NEURON_ENOMEM;
    }
    return NEURON_OK;
}

/* Counts an access unit handed on and keeps its timing record. Under mu. */
static void note_au(neuron_pipeline *p, const neuron_au_info *info) {
    p->stats.aus_out++;
    neuron_pipeline_timing t = {.frame_serial = info->frame_serial,
                                .wait_us = info->copy_us,
                                .convert_us = info->convert_us,
                                .encode_us = info->encode_us,
                                .encoded_us = us_of(mono_ns() - info->capture_ns),
                                .size = info->size,
                                .idr = info->idr};
    p->timing[(p->timing_head + p->timing_count) % TIMING_RING] = t;
    if (p->timing_count < TIMING_RING) p->timing_count++;
    else p->timing_head = (p->timing_head + 1) % TIMING_RING;
}

/* Hands the access unit to the consumer when one is set; 1 if it did. */
static int deliver_au(neuron_pipeline *p, const neuron_au_info *info) {
    pthread_mutex_lock(&p->consumer_mu);
    neuron_pipeline_consumer_fn fn = p->consumer;
    if (fn) {
        pthread_mutex_lock(&p->mu);
        note_au(p, info);
        pthread_mutex_unlock(&p->mu);
        fn(p->consumer_ctx, p->au, info->size, info);
    }
    pthread_mutex_unlock(&p->consumer_mu);
    return fn != NULL;
}

/* Appends an access unit; 0 when dropped (the ring is full). */
static int push_au(neuron_pipeline *p, const neuron_au_info *info) {
    if (deliver_au(p, info)) return 1;
    pthread_mutex_lock(&p->mu);
    int ok = p->count < p->cfg.ring_slots;
    if (ok) {
        au_slot *s = &p->slots[(p->head + p->count) % p->cfg.ring_slots];
        memcpy(s->data, p->au, info->size);
        s->info = *info;
        p->count++;
        note_au(p, info);
        pthread_cond_broadcast(&p->cv);
    } else {
        p->stats.dropped++;
    }
    pthread_mutex_unlock(&p->mu);
    return ok;
}

static void set_error(neuron_pipeline *p, int32_t rc) {
    pthread_mutex_lock(&p->mu);
    p->stats.last_error = rc;
    pthread_mutex_unlock(&p->mu);
}

/* The frame sink: validate the frame, (re)open the encoder, convert rows straight out of shared memory. */
static int conv_begin(void *ctx, const neuron_frame_info *fi) {
    neuron_pipeline *p = ctx;
    if (fi->type != NEURON_FRAME_BGRA && fi->type != NEURON_FRAME_RGBA) return NEURON_EUNSUPPORTED;
    if (fi->data_width < 16 || fi->data_height < 16 || fi->data_width > 8192 || fi->data_height > 8192)
        return NEURON_EUNSUPPORTED;
    if (fi->data_width != p->enc_w || fi->data_height != p->enc_h || fi->type != p->enc_fmt || !p->enc) {
        int32_t rc = open_encoder(p, fi->data_width, fi->data_height, fi->type);
        if (rc) return rc;
        p->enc_w = fi->data_width;
        p->enc_h = fi->data_height;
        p->enc_fmt = fi->type;
        p->force_idr = 1;
    }
    p->convert_ns = 0;
    return neuron_encoder_begin_frame(p->enc);
}

static uint32_t conv_rows(void *ctx, const uint8_t *src, uint32_t pitch, uint32_t y0, uint32_t y1, uint32_t height) {
    neuron_pipeline *p = ctx;
    uint32_t end = y1 == height ? y1 : y0 + ((y1 - y0) & ~1u); /* whole 2-row bands until the last */
    if (end == y0) return y0;
    uint64_t t0 = mono_ns();
    int32_t rc = neuron_encoder_convert_rows(p->enc, src, pitch, y0, end);
    p->convert_ns += mono_ns() - t0;
    return rc == NEURON_OK ? end : UINT32_MAX;
}

static void *pipeline_main(void *arg) {
    neuron_pipeline *p = arg;
    neuron_frame_info fi;
    neuron_frame_sink sink = {.begin = conv_begin, .rows = conv_rows, .ctx = p};
    p->force_idr = 1;
    while (!__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE)) {
        int32_t rc;
        if (p->pw) {
            rc = neuron_pw_stream_next_frame_sink(p->pw, p->cfg.frame_timeout_ms, &sink, &fi);
        } else if (p->nvf) {
            rc = neuron_nvf_reader_next_frame_sink(p->nvf, p->cfg.frame_timeout_ms, &sink, &fi);
        } else {
            rc = neuron_kvmfr_reader_next_frame_sink(p->reader, p->cfg.frame_timeout_ms, p->cfg.wp_timeout_ms, &sink, &fi);
            neuron_reader_stats rs;
            neuron_kvmfr_reader_stats(p->reader, &rs);
            pthread_mutex_lock(&p->mu);
            p->stats.rejected = rs.rejected;
            p->stats.restarts = rs.restarts;
            pthread_mutex_unlock(&p->mu);
        }
        if (rc == NEURON_ENOMEM) {
            set_error(p, rc);
            break;
        }
        if (rc < 0) {
            set_error(p, rc);
            struct timespec ts = {0, 100000000};
            nanosleep(&ts, NULL); /* e.g. a guest speaking another version: retry slowly */
            continue;
        }
        if (rc == NEURON_CAPTURE_RESTARTED) p->force_idr = 1;
        if (rc != NEURON_CAPTURE_FRAME) continue;
        pthread_mutex_lock(&p->mu);
        p->stats.frames_in++;
        if (p->idr_requested) p->force_idr = 1;
        p->idr_requested = 0;
        uint32_t kbps = p->new_bitrate;
        p->new_bitrate = 0;
        pthread_mutex_unlock(&p->mu);
        if (kbps) neuron_encoder_set_bitrate(p->enc, kbps);
        neuron_au_info ai;
        memset(&ai, 0, sizeof ai);
        int64_t n = neuron_encoder_encode_frame(p->enc, (uint32_t)p->force_idr, p->au, p->au_cap, &ai);
        if (n < 0) {
            set_error(p, (int32_t)n);
            pthread_mutex_lock(&p->mu);
            p->stats.dropped++;
            pthread_mutex_unlock(&p->mu);
            p->force_idr = 1;
            continue;
        }
        if (n == 0) continue;
        ai.capture_ns = fi.read_time_ns;
        /* No copy: rows are converted straight out of shared memory as the guest writes them;
         * copy_us is the rest of the read, waiting on the guest's writes. */
        uint64_t conv = p->convert_ns < fi.copy_ns ? p->convert_ns : fi.copy_ns;
        ai.copy_us = us_of(fi.copy_ns - conv);
        ai.convert_us = us_of(conv);
        ai.frame_serial = fi.frame_serial;
        p->force_idr = push_au(p, &ai) ? 0 : 1; /* a dropped unit breaks the chain: restart it */
    }
    pthread_mutex_lock(&p->mu);
    p->stats.running = 0;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static int32_t check_config(const neuron_pipeline_config *c) {
    if (!c || c->ring_slots < 2 || c->ring_slots > 64 || c->frame_timeout_ms < 1 || c->frame_timeout_ms > 1000 ||
        c->wp_timeout_ms < 1 || c->wp_timeout_ms > 1000 || (c->slot_bytes && c->slot_bytes < 4096))
        return NEURON_EINVAL;
    neuron_encoder_config e = c->enc;
    if (e.width == 0) e.width = 1920;
    if (e.height == 0) e.height = 1080;
    if (e.input_format == 0) e.input_format = NEURON_FRAME_BGRA;
    if (e.codec > NEURON_CODEC_HEVC || e.fps < 1 || e.fps > 240 || e.bitrate_kbps < 100 ||
        e.bitrate_kbps > 500000 || e.threads < 1 || e.threads > 16 || e.intra_refresh > 1 ||
        memchr(e.encoder, 0, sizeof e.encoder) == NULL)
        return NEURON_EINVAL;
    return NEURON_OK;
}

static int32_t pipeline_start(const char *path, neuron_pw_stream *pw, neuron_nvf_reader *nvf,
                              const neuron_pipeline_config *cfg, neuron_pipeline **out);

int32_t neuron_pipeline_start(const char *path, const neuron_pipeline_config *cfg, neuron_pipeline **out) {
    if (!path) return NEURON_EINVAL;
    return pipeline_start(path, NULL, NULL, cfg, out);
}

int32_t neuron_pipeline_start_pw(neuron_pw_stream *stream, const neuron_pipeline_config *cfg, neuron_pipeline **out) {
    if (!stream) return NEURON_EINVAL;
    return pipeline_start(NULL, stream, NULL, cfg, out);
}

int32_t neuron_pipeline_start_nvf(neuron_nvf_reader *reader, const neuron_pipeline_config *cfg, neuron_pipeline **out) {
    if (!reader) return NEURON_EINVAL;
    return pipeline_start(NULL, NULL, reader, cfg, out);
}

static int32_t pipeline_start(const char *path, neuron_pw_stream *pw, neuron_nvf_reader *nvf,
                              const neuron_pipeline_config *cfg, neuron_pipeline **out) {
    if (!out || check_config(cfg)) return NEURON_EINVAL;
    neuron_pipeline *p = calloc(1, sizeof *p);
    if (!p) return NEURON_ENOMEM;
    p->cfg = *cfg;
    pthread_mutex_init(&p->mu, NULL);
    pthread_mutex_init(&p->consumer_mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->slots = calloc(cfg->ring_slots, sizeof *p->slots);
    p->pw = pw;
    p->nvf = nvf;
    int32_t rc = !p->slots ? NEURON_ENOMEM : (pw || nvf) ? NEURON_OK : neuron_kvmfr_reader_open(path, 0, &p->reader);
    if (rc == NEURON_OK) {
        p->stats.running = 1;
        if (pthread_create(&p->thread, NULL, pipeline_main, p) != 0) rc = NEURON_EIO;
        else p->started = 1;
    }
    if (rc) {
        neuron_pipeline_stop(p);
        return rc;
    }
    *out = p;
    return NEURON_OK;
}

int64_t neuron_pipeline_poll(neuron_pipeline *p, uint8_t *dst, uint64_t cap, neuron_au_info *info) {
    if (!p || !info || (!dst && cap)) return NEURON_EINVAL;
    pthread_mutex_lock(&p->mu);
    int64_t n = 0;
    if (p->count) {
        au_slot *s = &p->slots[p->head];
        *info = s->info;
        if (s->info.size > cap) {
            n = NEURON_ERANGE;
        } else {
            memcpy(dst, s->data, s->info.size);
            n = s->info.size;
            p->head = (p->head + 1) % p->cfg.ring_slots;
            p->count--;
        }
    }
    pthread_mutex_unlock(&p->mu);
    return n;
}

int32_t neuron_pipeline_wait(neuron_pipeline *p, uint32_t timeout_ms) {
    if (!p) return NEURON_EINVAL;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    uint64_t ns = (uint64_t)until.tv_nsec + (uint64_t)timeout_ms * 1000000ull;
    until.tv_sec += (time_t)(ns / 1000000000ull);
    until.tv_nsec = (long)(ns % 1000000000ull);
    pthread_mutex_lock(&p->mu);
    while (!p->count && p->stats.running)
        if (pthread_cond_timedwait(&p->cv, &p->mu, &until) != 0) break;
    int32_t has = p->count ? 1 : 0;
    pthread_mutex_unlock(&p->mu);
    return has;
}

void neuron_pipeline_request_idr(neuron_pipeline *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->idr_requested = 1;
    p->stats.idr_requests++;
    pthread_mutex_unlock(&p->mu);
}

int32_t neuron_pipeline_set_bitrate(neuron_pipeline *p, uint32_t kbps) {
    if (!p || kbps < 100 || kbps > 500000) return NEURON_EINVAL;
    pthread_mutex_lock(&p->mu);
    p->new_bitrate = kbps;
    pthread_mutex_unlock(&p->mu);
    return NEURON_OK;
}

void neuron_pipeline_stats_get(neuron_pipeline *p, neuron_pipeline_stats *out) {
    if (!p || !out) return;
    pthread_mutex_lock(&p->mu);
    *out = p->stats;
    pthread_mutex_unlock(&p->mu);
}

uint32_t neuron_pipeline_timings(neuron_pipeline *p, neuron_pipeline_timing *out, uint32_t cap) {
    if (!p || !out) return 0;
    pthread_mutex_lock(&p->mu);
    uint32_t n = p->timing_count < cap ? p->timing_count : cap;
    for (uint32_t i = 0; i < n; i++) out[i] = p->timing[(p->timing_head + i) % TIMING_RING];
    p->timing_head = (p->timing_head + n) % TIMING_RING;
    p->timing_count -= n;
    pthread_mutex_unlock(&p->mu);
    return n;
}

int32_t neuron_pipeline_encoder_report(neuron_pipeline *p, char *buf, uint32_t cap) {
    if (!p || !buf || cap == 0) return NEURON_EINVAL;
    pthread_mutex_lock(&p->mu);
    size_t len = strlen(p->report);
    int32_t rc = len < cap ? NEURON_OK : NEURON_ERANGE;
    snprintf(buf, cap, "%s", p->report);
    pthread_mutex_unlock(&p->mu);
    return rc;
}

void neuron_pipeline_stop(neuron_pipeline *p) {
    if (!p) return;
    __atomic_store_n(&p->stop, 1, __ATOMIC_RELEASE);
    if (p->started) pthread_join(p->thread, NULL);
    neuron_kvmfr_reader_close(p->reader);
    neuron_encoder_close(p->enc);
    if (p->slots)
        for (uint32_t i = 0; i < p->cfg.ring_slots; i++) free(p->slots[i].data);
    free(p->slots);
    free(p->au);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->consumer_mu);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

void neuron_pipeline_set_consumer(neuron_pipeline *p, neuron_pipeline_consumer_fn fn, void *ctx) {
    if (!p) return;
    pthread_mutex_lock(&p->consumer_mu); /* waits for a call under way */
    p->consumer = fn;
    p->consumer_ctx = fn ? ctx : NULL;
    if (fn) {
        pthread_mutex_lock(&p->mu);
        p->head = p->count = 0; /* older units would reach the consumer out of order */
        pthread_mutex_unlock(&p->mu);
    }
    pthread_mutex_unlock(&p->consumer_mu);
}
