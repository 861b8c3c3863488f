/* lumen/1 frame pump (../lumen.h): access units queued by the caller, sent (paced) by the pump's thread. */
#include "../lumen.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define RESULT_RING 1024u

typedef struct pump_slot {
    uint8_t *au;
    uint32_t len, serial;
    neuron_lumen_frame frame;
} pump_slot;

struct neuron_lumen_pump {
    neuron_lumen_tx *tx;
    uint32_t au_cap, slots;
    pump_slot *q; /* ring of `slots` queued frames */
    uint8_t *mem;
    uint32_t head, count;
    int busy; /* a frame is being sent (thread or caller): frames never overlap on the sender */
    int direct_busy; /* ... by the caller (the thread's frame stays in count while it is sent) */
    int stop;
    uint32_t serial;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;   /* the thread waits for frames */
    pthread_cond_t idle; /* direct sends wait for the thread's frame */
    neuron_lumen_pump_result results[RESULT_RING];
    uint32_t res_head, res_count;
    neuron_lumen_pump_stats st;
};

static void record(neuron_lumen_pump *p, uint32_t serial, int32_t rc, const neuron_lumen_tx_result *r) {
    neuron_lumen_pump_result *o = &p->results[(p->res_head + p->res_count) % RESULT_RING];
    memset(o, 0, sizeof *o);
    o->serial = serial;
    o->status = rc;
    if (rc == NEURON_OK) o->tx = *r;
    if (p->res_count < RESULT_RING) p->res_count++;
    else p->res_head = (p->res_head + 1) % RESULT_RING;
    if (rc == NEURON_OK) p->st.frames_sent++;
    else p->st.frames_failed++;
}

static void *pump_main(void *arg) {
    neuron_lumen_pump *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && (p->count == 0 || p->busy)) pthread_cond_wait(&p->cv, &p->mu);
        if (p->stop) break;
        pump_slot *s = &p->q[p->head];
        p->busy = 1;
        pthread_mutex_unlock(&p->mu);
        neuron_lumen_tx_result r;
        int32_t rc = neuron_lumen_tx_send_frame(p->tx, s->au, s->len, &s->frame, &r);
        pthread_mutex_lock(&p->mu);
        record(p, s->serial, rc, &r);
        p->head = (p->head + 1) % p->slots;
        p->count--;
        p->busy = 0;
        pthread_cond_broadcast(&p->idle);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int32_t neuron_lumen_pump_start(neuron_lumen_tx *tx, uint32_t slots, uint32_t au_cap, neuron_lumen_pump **out) {
    if (out == NULL) return NEURON_EINVAL;
    *out = NULL;
    if (tx == NULL || slots < 1 || slots > 16 || au_cap == 0 || au_cap > NEURON_LUMEN_MAX_FRAME) return NEURON_EINVAL;
    neuron_lumen_pump *p = calloc(1, sizeof *p);
    if (p == NULL) return NEURON_ENOMEM;
    p->q = calloc(slots, sizeof *p->q);
    p->mem = malloc((size_t)slots * au_cap);
    if (p->q == NULL || p->mem == NULL) {
        free(p->q);
        free(p->mem);
        free(p);
        return NEURON_ENOMEM;
    }
    for (uint32_t i = 0; i < slots; i++) p->q[i].au = p->mem + (size_t)i * au_cap;
    p->tx = tx;
    p->slots = slots;
    p->au_cap = au_cap;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    pthread_cond_init(&p->idle, NULL);
    if (pthread_create(&p->thread, NULL, pump_main, p) != 0) {
        pthread_cond_destroy(&p->idle);
        pthread_cond_destroy(&p->cv);
        pthread_mutex_destroy(&p->mu);
        free(p->q);
        free(p->mem);
        free(p);
        return NEURON_EIO;
    }
    *out = p;
    return NEURON_OK;
}

int32_t neuron_lumen_pump_submit(neuron_lumen_pump *p, const uint8_t *au, uint32_t len, const neuron_lumen_frame *f) {
    if (p == NULL || au == NULL || f == NULL || len == 0 || len > p->au_cap) return NEURON_EINVAL;
    pthread_mutex_lock(&p->mu);
    const uint32_t serial = ++p->serial;
    if (f->pace_ns == 0 && p->count == 0 && !p->busy) {
        /* unpaced and nothing ahead of it: sent on the caller's thread at once (no hand-off
         * wait, no copy); the frame takes a few tens of µs */
        p->busy = p->direct_busy = 1;
        pthread_mutex_unlock(&p->mu);
        neuron_lumen_tx_result r;
        int32_t rc = neuron_lumen_tx_send_frame(p->tx, au, len, f, &r);
        pthread_mutex_lock(&p->mu);
        record(p, serial, rc, &r);
        p->st.direct++;
        p->busy = p->direct_busy = 0;
        pthread_cond_broadcast(&p->idle);
        pthread_cond_signal(&p->cv);
        pthread_mutex_unlock(&p->mu);
        return (int32_t)serial;
    }
    if (p->count == p->slots) { /* the thread is that far behind: this frame is dropped (an IDR follows on request) */
        p->st.dropped++;
        pthread_mutex_unlock(&p->mu);
        return NEURON_ERANGE;
    }
    pump_slot *s = &p->q[(p->head + p->count) % p->slots];
    memcpy(s->au, au, len);
    s->len = len;
    s->serial = serial;
    s->frame = *f;
    p->count++;
    p->st.queued++;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return (int32_t)serial;
}

uint32_t neuron_lumen_pump_results(neuron_lumen_pump *p, neuron_lumen_pump_result *out, uint32_t cap) {
    if (p == NULL || out == NULL) return 0;
    pthread_mutex_lock(&p->mu);
    uint32_t n = p->res_count < cap ? p->res_count : cap;
    for (uint32_t i = 0; i < n; i++) out[i] = p->results[(p->res_head + i) % RESULT_RING];
    p->res_head = (p->res_head + n) % RESULT_RING;
    p->res_count -= n;
    pthread_mutex_unlock(&p->mu);
    return n;
}

void neuron_lumen_pump_stats_get(neuron_lumen_pump *p, neuron_lumen_pump_stats *out) {
    if (p == NULL || out == NULL) return;
    pthread_mutex_lock(&p->mu);
    *out = p->st;
    out->pending = p->count + (uint32_t)p->direct_busy;
    pthread_mutex_unlock(&p->mu);
}

void neuron_lumen_pump_stop(neuron_lumen_pump *p) {
    if (p == NULL) return;
    pthread_mutex_lock(&p->mu);
    while (p->busy) pthread_cond_wait(&p->idle, &p->mu); /* a direct send on another thread finishes first */
    p->stop = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->thread, NULL);
    pthread_cond_destroy(&p->idle);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p->q);
    free(p->mem);
    free(p);
}
