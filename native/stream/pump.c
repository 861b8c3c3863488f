/* Video pump (stream.h): access units from the pipeline to the video sender, on the pipeline's
 * thread as the encoder returns them (unpaced) or through the ring and the pump's thread (paced). */
#include "../encode.h"
#include "../stream.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define LAT_RING 4096u

struct neuron_video_pump {
    neuron_pipeline *pipeline;
    neuron_video_sender *sender;
    uint64_t epoch_ns;
    uint64_t pace_ns;
    uint8_t *au;
    uint32_t au_cap;
    pthread_t thread;
    pthread_mutex_t mu; /* guards the sender's peer, stats, latency ring */
    int stop;
    int direct; /* sends on the pipeline's thread (no pacing): no ring, no hand-off */
    int failed; /* direct mode: a unit over au_cap; the thread stops */
    int waiting_for_idr;
    int have_peer;
    neuron_video_pump_stats stats;
    uint32_t lat[LAT_RING];
    uint32_t lat_head, lat_count;
    neuron_video_pump_timing timing[LAT_RING];
    uint32_t timing_head, timing_count;
};

static uint32_t us_since(uint64_t t, uint64_t origin) {
    uint64_t us = t > origin ? (t - origin) / 1000 : 0;
    return us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

/* Sends one access unit (either thread: the pump's own, or the pipeline's in direct mode). */
static void pump_deliver(neuron_video_pump *p, const uint8_t *au, uint32_t n, const neuron_au_info *info) {
    neuron_video_result r;
    uint64_t taken_ns = neuron_monotonic_ns();
    pthread_mutex_lock(&p->mu);
    if (p->failed) {
        pthread_mutex_unlock(&p->mu);
        return;
    }
    if (n > p->au_cap) { /* as the ring's poll refuses it: the pump stops */
        p->stats.last_error = NEURON_ERANGE;
        __atomic_store_n(&p->failed, 1, __ATOMIC_RELEASE);
        pthread_mutex_unlock(&p->mu);
        return;
    }
    if (!p->have_peer || (p->waiting_for_idr && !info->idr)) {
        p->stats.discarded++;
        pthread_mutex_unlock(&p->mu);
        return;
    }
    p->waiting_for_idr = 0;
    uint64_t rel = info->capture_ns > p->epoch_ns ? info->capture_ns - p->epoch_ns : 0;
    neuron_video_frame fr = {.capture_ns = info->capture_ns,
                             .rtp_timestamp = (uint32_t)((rel / 1000ull) * 9ull / 100ull),
                             .frame_type = info->idr ? 2u : 1u,
                             .pace_ns = p->pace_ns};
    int32_t rc = neuron_video_send_frame(p->sender, au, n, &fr, &r);
    if (rc < 0) {
        p->stats.last_error = rc;
    } else {
        p->stats.frames++;
        p->stats.shards += r.shards;
        p->stats.parity_shards += r.parity_shards;
        p->stats.bytes += r.bytes;
        p->stats.send_errors += r.send_errors;
        p->stats.last_frame_index = r.frame_index;
        uint64_t lat = r.done_ns > info->capture_ns ? r.done_ns - info->capture_ns : 0;
        p->stats.last_latency_ns = lat;
        uint64_t us = lat / 1000;
        p->lat[(p->lat_head + p->lat_count) % LAT_RING] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
        if (p->lat_count < LAT_RING) p->lat_count++;
        else p->lat_head = (p->lat_head + 1) % LAT_RING;
        p->timing[(p->timing_head + p->timing_count) % LAT_RING] =
            (neuron_video_pump_timing){.frame_serial = info->frame_serial,
                                       .encoded_us = us_since(info->done_ns, info->capture_ns),
                                       .taken_us = us_since(taken_ns, info->capture_ns),
                                       .sent_us = us_since(r.done_ns, info->capture_ns)};
        if (p->timing_count < LAT_RING) p->timing_count++;
        else p->timing_head = (p->timing_head + 1) % LAT_RING;
    }
    pthread_mutex_unlock(&p->mu);
}

static void deliver_direct(void *ctx, const uint8_t *au, uint32_t len, const neuron_au_info *info) {
    pump_deliver(ctx, au, len, info);
}

/* Ring mode: takes each access unit from the ring. Direct mode: the ring stays empty and the
 * thread only notices the pipeline stopping for good. */
static void *pump_main(void *arg) {
    neuron_video_pump *p = arg;
    neuron_au_info info;
    while (!__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE) && !__atomic_load_n(&p->failed, __ATOMIC_ACQUIRE)) {
        if (neuron_pipeline_wait(p->pipeline, 50) != 1) {
            neuron_pipeline_stats ps;
            neuron_pipeline_stats_get(p->pipeline, &ps);
            if (!ps.running) break; /* the source stopped for good */
            continue;
        }
        int64_t n = neuron_pipeline_poll(p->pipeline, p->au, p->au_cap, &info);
        if (n <= 0) {
            if (n < 0) { /* a unit larger than au_cap (the caller sizes au_cap to the ring's slots): stop */
                pthread_mutex_lock(&p->mu);
                p->stats.last_error = (int32_t)n;
                pthread_mutex_unlock(&p->mu);
                break;
            }
            continue;
        }
        pump_deliver(p, p->au, (uint32_t)n, &info);
    }
    pthread_mutex_lock(&p->mu);
    p->stats.running = 0;
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int32_t neuron_video_pump_start(neuron_pipeline *pipeline, neuron_video_sender *sender, uint64_t epoch_ns,
                                uint32_t au_cap, uint64_t pace_ns, neuron_video_pump **out) {
    if (out == NULL) return NEURON_EINVAL;
    *out = NULL;
    if (pipeline == NULL || sender == NULL || au_cap == 0 || au_cap > NEURON_VIDEO_MAX_FRAME ||
        pace_ns > 1000000000ull)
        return NEURON_EINVAL;
    neuron_video_pump *p = calloc(1, sizeof *p);
    if (p == NULL) return NEURON_ENOMEM;
    p->au = malloc(au_cap);
    if (p->au == NULL) {
        free(p);
        return NEURON_ENOMEM;
    }
    p->pipeline = pipeline;
    p->sender = sender;
    p->epoch_ns = epoch_ns;
    p->pace_ns = pace_ns;
    p->au_cap = au_cap;
    p->waiting_for_idr = 1;
    p->stats.running = 1;
    pthread_mutex_init(&p->mu, NULL);
    /* Unpaced, the access unit is sent on the pipeline's thread as the encoder returns it: a
     * hand-off to another thread waits for that thread to be scheduled (on a busy machine up
     * to a time slice) and copies the unit twice. Paced sends sleep between batches, which the
     * capture must not wait for: they keep the ring and this thread. */
    p->direct = pace_ns == 0;
    if (pthread_create(&p->thread, NULL, pump_main, p) != 0) {
        pthread_mutex_destroy(&p->mu);
        free(p->au);
        free(p);
        return NEURON_EIO;
    }
    if (p->direct) neuron_pipeline_set_consumer(pipeline, deliver_direct, p);
    *out = p;
    return NEURON_OK;
}

int32_t neuron_video_pump_set_peer(neuron_video_pump *p, const neuron_udp_peer *peer) {
    if (p == NULL || peer == NULL) return NEURON_EINVAL;
    pthread_mutex_lock(&p->mu);
    int32_t rc = neuron_video_sender_set_peer(p->sender, peer);
    if (rc == NEURON_OK) {
        p->have_peer = 1;
        p->stats.have_peer = 1;
        p->waiting_for_idr = 1;
    }
    pthread_mutex_unlock(&p->mu);
    if (rc == NEURON_OK) neuron_pipeline_request_idr(p->pipeline);
    return rc;
}

void neuron_video_pump_stats_get(neuron_video_pump *p, neuron_video_pump_stats *out) {
    if (p == NULL || out == NULL) return;
    pthread_mutex_lock(&p->mu);
    *out = p->stats;
    pthread_mutex_unlock(&p->mu);
}

uint32_t neuron_video_pump_latencies(neuron_video_pump *p, uint32_t *out, uint32_t cap) {
    if (p == NULL || out == NULL) return 0;
    pthread_mutex_lock(&p->mu);
    uint32_t n = p->lat_count < cap ? p->lat_count : cap;
    for (uint32_t i = 0; i < n; i++) out[i] = p->lat[(p->lat_head + i) % LAT_RING];
    p->lat_head = (p->lat_head + n) % LAT_RING;
    p->lat_count -= n;
    pthread_mutex_unlock(&p->mu);
    return n;
}

uint32_t neuron_video_pump_timings(neuron_video_pump *p, neuron_video_pump_timing *out, uint32_t cap) {
    if (p == NULL || out == NULL) return 0;
    pthread_mutex_lock(&p->mu);
    uint32_t n = p->timing_count < cap ? p->timing_count : cap;
    for (uint32_t i = 0; i < n; i++) out[i] = p->timing[(p->timing_head + i) % LAT_RING];
    p->timing_head = (p->timing_head + n) % LAT_RING;
    p->timing_count -= n;
    pthread_mutex_unlock(&p->mu);
    return n;
}

void neuron_video_pump_stop(neuron_video_pump *p) {
    if (p == NULL) return;
    if (p->direct) neuron_pipeline_set_consumer(p->pipeline, NULL, NULL); /* waits for a send under way */
    __atomic_store_n(&p->stop, 1, __ATOMIC_RELEASE);
    pthread_join(p->thread, NULL);
    pthread_mutex_destroy(&p->mu);
    free(p->au);
    free(p);
}
