/* Encoder speed measurement on a native thread (../encode.h). */
#include "../capture.h"
#include "../encode.h"

#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WARMUP 2
#define REPORT_MAX 1024

struct neuron_encoder_speed_job {
    pthread_t thread;
    neuron_encoder_config cfg;
    uint32_t max_frames, max_ms;
    atomic_int stop;
    pthread_mutex_t lock;
    neuron_encoder_speed state; /* under lock */
    char report[REPORT_MAX];    /* written before done is set */
};

static uint64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000ull + (uint64_t)ts.tv_nsec / 1000u;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static void finish(neuron_encoder_speed_job *j, int32_t status, uint32_t *times, uint32_t n) {
    pthread_mutex_lock(&j->lock);
    j->state.status = status;
    if (n) {
        qsort(times, n, sizeof *times, cmp_u32);
        j->state.encode_p50_us = times[n / 2];
        j->state.encode_max_us = times[n - 1];
    }
    j->state.done = 1;
    pthread_mutex_unlock(&j->lock);
}

static void *run(void *arg) {
    neuron_encoder_speed_job *j = arg;
    neuron_encoder *e = NULL;
    int32_t rc = neuron_encoder_open(&j->cfg, &e);
    snprintf(j->report, sizeof j->report, "%s", neuron_encoder_probe_report(e));
    if (rc) {
        finish(j, rc, NULL, 0);
        return NULL;
    }
    uint32_t w = j->cfg.width & ~1u, h = j->cfg.height & ~1u, pitch = w * 4u;
    uint64_t cap = (uint64_t)w * h * 2u + 65536u;
    uint8_t *src = malloc((size_t)pitch * h), *out = malloc((size_t)cap);
    uint32_t *times = calloc(j->max_frames, sizeof *times);
    if (!src || !out || !times) {
        rc = NEURON_ENOMEM;
        goto done;
    }
    pthread_mutex_lock(&j->lock);
    snprintf(j->state.encoder, sizeof j->state.encoder, "%s", neuron_encoder_name(e));
    j->state.software = strncmp(j->state.encoder, "libx26", 6) == 0;
    j->state.width = w;
    j->state.height = h;
    pthread_mutex_unlock(&j->lock);
    uint64_t budget = (uint64_t)j->max_ms * 1000u, busy = 0;
    uint32_t timed = 0;
    for (uint32_t i = 0; timed < j->max_frames && busy < budget && !atomic_load(&j->stop); i++) {
        neuron_testpattern_fill(src, w, h, pitch, i); /* not timed: the guest draws the frame */
        neuron_au_info info;
        uint64_t t0 = now_us();
        int64_t n = neuron_encoder_encode(e, src, pitch, i == 0, out, cap, &info);
        uint64_t dt = now_us() - t0;
        if (n < 0) {
            rc = (int32_t)n;
            break;
        }
        pthread_mutex_lock(&j->lock);
        if (i < WARMUP) j->state.warmup = i + 1;
        else {
            times[timed++] = (uint32_t)(dt > UINT32_MAX ? UINT32_MAX : dt);
            busy += dt;
            j->state.frames = timed;
            j->state.busy_us = busy;
        }
        pthread_mutex_unlock(&j->lock);
    }
    if (!rc && !timed) rc = NEURON_EIO; /* stopped before a frame was timed */
done:
    neuron_encoder_close(e);
    free(src);
    free(out);
    finish(j, rc, times, times ? j->state.frames : 0);
    free(times);
    return NULL;
}

int32_t neuron_encoder_speed_start(const neuron_encoder_config *cfg, uint32_t max_frames, uint32_t max_ms,
                                   neuron_encoder_speed_job **out) {
    if (!cfg || !out || max_frames < 1 || max_frames > 600 || max_ms < 1 || max_ms > 60000) return NEURON_EINVAL;
    if (cfg->width < 16 || cfg->height < 16 || cfg->width > 8192 || cfg->height > 8192) return NEURON_EINVAL;
    neuron_encoder_speed_job *j = calloc(1, sizeof *j);
    if (!j) return NEURON_ENOMEM;
    j->cfg = *cfg;
    j->max_frames = max_frames;
    j->max_ms = max_ms;
    pthread_mutex_init(&j->lock, NULL);
    if (pthread_create(&j->thread, NULL, run, j) != 0) {
        pthread_mutex_destroy(&j->lock);
        free(j);
        return NEURON_EIO;
    }
    *out = j;
    return NEURON_OK;
}

void neuron_encoder_speed_get(neuron_encoder_speed_job *j, neuron_encoder_speed *out) {
    if (!out) return;
    if (!j) {
        memset(out, 0, sizeof *out);
        return;
    }
    pthread_mutex_lock(&j->lock);
    *out = j->state;
    pthread_mutex_unlock(&j->lock);
}

int32_t neuron_encoder_speed_report(neuron_encoder_speed_job *j, char *buf, uint32_t cap) {
    if (!j || !buf || !cap) return NEURON_EINVAL;
    pthread_mutex_lock(&j->lock);
    int done = (int)j->state.done;
    pthread_mutex_unlock(&j->lock);
    snprintf(buf, cap, "%s", done ? j->report : "");
    return NEURON_OK;
}

void neuron_encoder_speed_free(neuron_encoder_speed_job *j) {
    if (!j) return;
    atomic_store(&j->stop, 1);
    pthread_join(j->thread, NULL);
    pthread_mutex_destroy(&j->lock);
    free(j);
    /* The encoder's buffers (libx265 allocates ~100 MB at 1080p) went back to the thread's
     * malloc arena, which keeps them resident; a one-off measurement returns them to the system. */
    malloc_trim(0);
}
