/* lumen/1 sender: split + RS16 parity + AES-128-GCM + paced sendmmsg, one call per frame (../lumen.h). */
#include "../crypto.h"
#include "../stream/udp_addr.h"
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#define TX_MAX_BATCH 64u
/* A record in staging: 4 bytes unused, then the datagram, so its payload (datagram offset 60)
 * sits 64-byte aligned for the RS kernels. */
#define REC_LEAD 4u

struct neuron_lumen_tx {
    /* Guards the sequence space, the AES context, the peer and the side buffer: a frame's
     * datagrams are sealed under it, then sent (and paced) outside it, so side-plane datagrams
     * from another thread interleave with a paced frame instead of waiting for it. */
    pthread_mutex_t mu;
    int have_mu;
    neuron_lumen_tx_config cfg;
    uint32_t shard_bytes;  /* current S (<= cfg.shard_bytes) */
    uint32_t max_shards;   /* records in staging */
    size_t stride;
    uint8_t *staging;
    uint8_t *ivs;          /* max_shards * 12 */
    uint32_t *lens;
    int32_t *status;
    const uint8_t **dptr;
    uint8_t **pptr;
    neuron_aes_gcm *gcm;
    lm_codec_cache codecs;
    uint64_t seq;
    uint32_t next_frame;
    int have_peer;
    int gso; /* 1 while UDP GSO (UDP_SEGMENT) works on this socket; 0 after the kernel refused it */
    struct sockaddr_storage peer;
    socklen_t peer_len;
    struct mmsghdr msgs[TX_MAX_BATCH];
    struct iovec iovs[TX_MAX_BATCH];
    uint8_t side[NEURON_LUMEN_SIDE_OVERHEAD + NEURON_LUMEN_MAX_SIDE_PAYLOAD];
};

static uint32_t shards_for(uint32_t max_frame, uint32_t s) {
    uint64_t k = ((uint64_t)max_frame + s - 1) / s;
    if (k >= NEURON_LUMEN_MAX_SHARDS) k = NEURON_LUMEN_MAX_SHARDS - 1;
    return (uint32_t)(k + lm_max_parity((uint32_t)k));
}

int32_t neuron_lumen_tx_create(const neuron_lumen_tx_config *cfg, neuron_lumen_tx **out) {
    if (out == NULL) return NEURON_EINVAL;
    *out = NULL;
    if (cfg == NULL || cfg->fd < 0 || cfg->shard_bytes < NEURON_LUMEN_MIN_SHARD || cfg->shard_bytes > NEURON_LUMEN_MAX_SHARD ||
        cfg->shard_bytes % 64 || cfg->max_frame_bytes == 0 || cfg->max_frame_bytes > NEURON_LUMEN_MAX_FRAME ||
        cfg->batch > TX_MAX_BATCH)
        return NEURON_EINVAL;
    neuron_lumen_tx *t = calloc(1, sizeof *t);
    if (t == NULL) return NEURON_ENOMEM;
    pthread_mutex_init(&t->mu, NULL);
    t->have_mu = 1;
    t->cfg = *cfg;
    if (t->cfg.batch == 0) t->cfg.batch = 64;
    t->shard_bytes = cfg->shard_bytes;
    t->max_shards = shards_for(cfg->max_frame_bytes, NEURON_LUMEN_MIN_SHARD > cfg->shard_bytes ? NEURON_LUMEN_MIN_SHARD : cfg->shard_bytes);
    t->stride = ((size_t)REC_LEAD + NEURON_LUMEN_VIDEO_OVERHEAD + cfg->shard_bytes + 63) & ~(size_t)63;
    t->staging = aligned_alloc(64, t->stride * t->max_shards);
    t->ivs = malloc((size_t)t->max_shards * 12);
    t->lens = malloc((size_t)t->max_shards * sizeof *t->lens);
    t->status = malloc((size_t)t->max_shards * sizeof *t->status);
    t->dptr = malloc((size_t)t->max_shards * sizeof *t->dptr);
    t->pptr = malloc((size_t)t->max_shards * sizeof *t->pptr);
    t->codecs.shard_bytes = cfg->shard_bytes;
    t->next_frame = 1;
    t->gso = 1;
    if (!t->staging || !t->ivs || !t->lens || !t->status || !t->dptr || !t->pptr) {
        neuron_lumen_tx_destroy(t);
        return NEURON_ENOMEM;
    }
    int32_t rc = neuron_aes_gcm_new(cfg->keys.key, 16, &t->gcm);
    if (rc != NEURON_OK) {
        neuron_lumen_tx_destroy(t);
        return rc;
    }
    *out = t;
    return NEURON_OK;
}

int32_t neuron_lumen_tx_set_peer(neuron_lumen_tx *t, const neuron_udp_peer *peer) {
    if (t == NULL || peer == NULL) return NEURON_EINVAL;
    struct sockaddr_storage ss;
    socklen_t len;
    if (!neuron_peer_to_sockaddr(peer, &ss, &len)) return NEURON_EINVAL;
    pthread_mutex_lock(&t->mu);
    t->peer = ss;
    t->peer_len = len;
    t->have_peer = 1;
    pthread_mutex_unlock(&t->mu);
    return NEURON_OK;
}

int32_t neuron_lumen_tx_set_shard_bytes(neuron_lumen_tx *t, uint32_t s) {
    if (t == NULL || s < NEURON_LUMEN_MIN_SHARD || s > t->cfg.shard_bytes || s % 64) return NEURON_EINVAL;
    pthread_mutex_lock(&t->mu);
    if (s != t->shard_bytes) {
        lm_codec_clear(&t->codecs);
        t->codecs.shard_bytes = s;
        t->shard_bytes = s;
    }
    pthread_mutex_unlock(&t->mu);
    return NEURON_OK;
}

int32_t neuron_lumen_tx_set_gso(neuron_lumen_tx *t, uint32_t on) {
    if (t == NULL || on > 1) return NEURON_EINVAL;
    t->gso = (int)on;
    return NEURON_OK;
}

uint64_t neuron_lumen_tx_seq(const neuron_lumen_tx *t) { return t ? __atomic_load_n(&t->seq, __ATOMIC_RELAXED) : 0; }

void neuron_lumen_tx_destroy(neuron_lumen_tx *t) {
    if (t == NULL) return;
    lm_codec_clear(&t->codecs);
    neuron_aes_gcm_free(t->gcm);
    free(t->staging);
    free(t->ivs);
    free(t->lens);
    free(t->status);
    free(t->dptr);
    free(t->pptr);
    if (t->have_mu) pthread_mutex_destroy(&t->mu);
    free(t);
}

static void sleep_until(uint64_t due) {
    struct timespec ts = {.tv_sec = (time_t)(due / 1000000000ull), .tv_nsec = (long)(due % 1000000000ull)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

/*
 * One sendmsg with UDP GSO: the n equal-sized datagrams (an iovec each) leave as one buffer
 * the kernel splits every len bytes. Returns 1 when sent, 0 when the kernel refused GSO (the
 * caller falls back to sendmmsg), -1 for another error.
 */
static int send_gso(neuron_lumen_tx *t, const struct sockaddr_storage *peer, socklen_t peer_len, uint8_t *base, size_t stride,
                    uint32_t n, uint32_t len) {
    union {
        char buf[CMSG_SPACE(sizeof(uint16_t))];
        struct cmsghdr align;
    } ctl;
    for (uint32_t j = 0; j < n; j++) {
        t->iovs[j].iov_base = base + (size_t)j * stride;
        t->iovs[j].iov_len = len;
    }
    struct msghdr mh;
    memset(&mh, 0, sizeof mh);
    mh.msg_name = (void *)peer;
    mh.msg_namelen = peer_len;
    mh.msg_iov = t->iovs;
    mh.msg_iovlen = n;
    mh.msg_control = ctl.buf;
    mh.msg_controllen = sizeof ctl.buf;
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_UDP;
    cm->cmsg_type = UDP_SEGMENT;
    cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
    uint16_t seg = (uint16_t)len;
    memcpy(CMSG_DATA(cm), &seg, sizeof seg);
    for (int tries = 0; tries < 3; tries++) {
        ssize_t r = sendmsg(t->cfg.fd, &mh, 0);
        if (r >= 0) return 1;
        if (errno == EINTR) continue;
        if (errno == EIO || errno == EINVAL || errno == ENOPROTOOPT || errno == EOPNOTSUPP || errno == EMSGSIZE) return 0;
        if (errno != EAGAIN && errno != ENOBUFS) return -1;
    }
    return -1;
}

/* sendmmsg of n datagrams at base + i * stride, len bytes each; returns datagrams refused. */
static uint32_t send_chunk(neuron_lumen_tx *t, const struct sockaddr_storage *peer, socklen_t peer_len, uint8_t *base,
                           size_t stride, uint32_t n, uint32_t len, uint64_t *bytes) {
    for (uint32_t j = 0; j < n; j++) {
        t->iovs[j].iov_base = base + (size_t)j * stride;
        t->iovs[j].iov_len = len;
        memset(&t->msgs[j], 0, sizeof t->msgs[j]);
        t->msgs[j].msg_hdr.msg_name = (void *)peer;
        t->msgs[j].msg_hdr.msg_namelen = peer_len;
        t->msgs[j].msg_hdr.msg_iov = &t->iovs[j];
        t->msgs[j].msg_hdr.msg_iovlen = 1;
    }
    uint32_t done = 0, errors = 0;
    int retries = 0;
    while (done < n) {
        int r = sendmmsg(t->cfg.fd, t->msgs + done, n - done, 0);
        if (r > 0) {
            done += (uint32_t)r;
            *bytes += (uint64_t)r * len;
            retries = 0;
            continue;
        }
        if (r < 0 && errno == EINTR) continue;
        if (++retries > 2) { /* refused (ICMP error, queue full past the send timeout): skip it */
            errors++;
            done++;
            retries = 0;
        }
    }
    return errors;
}

static void write_common(uint8_t *d, uint32_t plane, uint32_t session, uint64_t seq) {
    d[0] = (uint8_t)plane;
    d[1] = NEURON_LUMEN_VERSION;
    d[2] = d[3] = 0;
    lm_put32(d + 4, session);
    lm_put64(d + 8, seq);
}

static int32_t prepare_frame(neuron_lumen_tx *t, const uint8_t *au, uint32_t len, const neuron_lumen_frame *f,
                             neuron_lumen_tx_result *res);
static void transmit_frame(neuron_lumen_tx *t, const struct sockaddr_storage *peer, socklen_t peer_len,
                           const neuron_lumen_frame *f, neuron_lumen_tx_result *res);

int32_t neuron_lumen_tx_send_frame(neuron_lumen_tx *t, const uint8_t *au, uint32_t len, const neuron_lumen_frame *f,
                                   neuron_lumen_tx_result *res) {
    if (t == NULL || au == NULL || f == NULL || res == NULL || len == 0) return NEURON_EINVAL;
    if (f->frame_type < 1 || f->frame_type > 2 || f->codec > 1 || f->epoch > 65535) return NEURON_EINVAL;
    if (len > t->cfg.max_frame_bytes) return NEURON_ERANGE;
    memset(res, 0, sizeof *res);
    /* one frame at a time: the staging area is this call's until its last datagram left */
    pthread_mutex_lock(&t->mu);
    int32_t rc = prepare_frame(t, au, len, f, res);
    struct sockaddr_storage peer = t->peer;
    socklen_t peer_len = t->peer_len;
    pthread_mutex_unlock(&t->mu);
    if (rc != NEURON_OK) return rc;
    transmit_frame(t, &peer, peer_len, f, res);
    return NEURON_OK;
}

/* Split, parity, headers, seal (under t->mu). Fills res's shard counts and timings. */
static int32_t prepare_frame(neuron_lumen_tx *t, const uint8_t *au, uint32_t len, const neuron_lumen_frame *f,
                             neuron_lumen_tx_result *res) {
    if (!t->have_peer) return NEURON_EINVAL;
    const uint32_t S = t->shard_bytes;
    const uint64_t k64 = ((uint64_t)len + S - 1) / S;
    if (k64 >= NEURON_LUMEN_MAX_SHARDS) return NEURON_ERANGE;
    const uint32_t k = (uint32_t)k64;
    int32_t mr = neuron_lumen_parity(k, f->loss_ppm, f->burst, f->min_pct_x100, f->max_pct_x100 ? f->max_pct_x100 : 5000);
    if (mr < 1) return NEURON_EINVAL;
    uint32_t m = (uint32_t)mr;
    if (k + m > t->max_shards) m = t->max_shards - k;
    if (m == 0) return NEURON_ERANGE;
    neuron_rs16 *codec = lm_codec_get(&t->codecs, k, m);
    if (codec == NULL) return NEURON_ENOMEM;
    const uint32_t n = k + m, frame_index = t->next_frame;

    /* payloads: data in place, zero-padded tail */
    for (uint32_t i = 0; i < k; i++) {
        uint8_t *pl = t->staging + (size_t)i * t->stride + REC_LEAD + NEURON_LUMEN_VIDEO_OVERHEAD;
        uint32_t off = i * S, take = len - off < S ? len - off : S;
        memcpy(pl, au + off, take);
        if (take < S) memset(pl + take, 0, S - take);
        t->dptr[i] = pl;
    }
    for (uint32_t j = 0; j < m; j++)
        t->pptr[j] = t->staging + (size_t)(k + j) * t->stride + REC_LEAD + NEURON_LUMEN_VIDEO_OVERHEAD;
    uint64_t t0 = neuron_monotonic_ns();
    int32_t rc = neuron_rs16_encode(codec, t->dptr, t->pptr, S);
    if (rc != NEURON_OK) return rc;
    uint64_t t1 = neuron_monotonic_ns();
    /* headers + nonces */
    for (uint32_t i = 0; i < n; i++) {
        uint8_t *d = t->staging + (size_t)i * t->stride + REC_LEAD;
        const uint64_t seq = t->seq + i;
        write_common(d, NEURON_LUMEN_PLANE_VIDEO, t->cfg.keys.session_id, seq);
        lm_put32(d + 16, frame_index);
        lm_put32(d + 20, len);
        lm_put16(d + 24, i);
        lm_put16(d + 26, k);
        lm_put16(d + 28, m);
        lm_put16(d + 30, S);
        lm_put64(d + 32, f->capture_ns);
        d[40] = (uint8_t)f->frame_type;
        d[41] = (uint8_t)f->codec;
        lm_put16(d + 42, f->epoch);
        lm_nonce(t->ivs + (size_t)i * 12, t->cfg.keys.salt, seq);
        t->lens[i] = S;
    }
    neuron_gcm_layout lay = {.in_stride = (uint32_t)t->stride,
                             .out_stride = (uint32_t)t->stride,
                             .ct_offset = NEURON_LUMEN_VIDEO_OVERHEAD,
                             .tag_offset = NEURON_LUMEN_COMMON_HDR + NEURON_LUMEN_VIDEO_HDR,
                             .iv_offset = -1,
                             .iv_mode = NEURON_GCM_IV_EXPLICIT,
                             .iv_stride = 12,
                             .aad_len = NEURON_LUMEN_COMMON_HDR + NEURON_LUMEN_VIDEO_HDR,
                             .aad_stride = (uint32_t)t->stride};
    uint8_t *rec0 = t->staging + REC_LEAD;
    rc = neuron_aes_gcm_seal_batch(t->gcm, &lay, n, rec0 + NEURON_LUMEN_VIDEO_OVERHEAD, t->lens, rec0, t->ivs, 0, rec0,
                                   t->status);
    if (rc != (int32_t)n) return rc < 0 ? rc : NEURON_ECRYPTO;
    uint64_t t2 = neuron_monotonic_ns();
    __atomic_store_n(&t->seq, t->seq + n, __ATOMIC_RELAXED); /* the nonces are spent whether or not every datagram leaves */
    t->next_frame++;
    res->frame_index = frame_index;
    res->data_shards = k;
    res->parity_shards = m;
    res->fec_ns = t1 - t0;
    res->seal_ns = t2 - t1;
    res->done_ns = t2;
    return NEURON_OK;
}

/* Sends the sealed datagrams in staging (outside t->mu), paced from res->done_ns (the seal's end). */
static void transmit_frame(neuron_lumen_tx *t, const struct sockaddr_storage *peer, socklen_t peer_len,
                           const neuron_lumen_frame *f, neuron_lumen_tx_result *res) {
    const uint32_t S = t->shard_bytes, n = res->data_shards + res->parity_shards;
    const uint32_t dlen = NEURON_LUMEN_VIDEO_OVERHEAD + S;
    const uint64_t t2 = res->done_ns;
    uint8_t *rec0 = t->staging + REC_LEAD;
    /* a GSO buffer is at most 64 KiB: as many whole datagrams as fit */
    const uint32_t gso_max = 65000u / dlen;
    const uint32_t batch = t->gso && gso_max >= 2 && gso_max < t->cfg.batch ? gso_max : t->cfg.batch;
    const uint64_t pace = f->pace_ns > 1000000000ull ? 1000000000ull : f->pace_ns;
    for (uint32_t i = 0; i < n; i += batch) {
        if (pace && i) sleep_until(t2 + pace * i / n);
        uint32_t c = n - i < batch ? n - i : batch;
        uint8_t *first = rec0 + (size_t)i * t->stride;
        if (t->gso && c > 1) {
            int g = send_gso(t, peer, peer_len, first, t->stride, c, dlen);
            if (g == 1) {
                res->bytes += (uint64_t)c * dlen;
                continue;
            }
            if (g == 0) t->gso = 0; /* not on this socket/kernel: sendmmsg from now on */
            else {
                res->send_errors += c;
                continue;
            }
        }
        res->send_errors += send_chunk(t, peer, peer_len, first, t->stride, c, dlen, &res->bytes);
    }
    res->done_ns = neuron_monotonic_ns();
}

static int32_t seal_side(neuron_lumen_tx *t, uint32_t plane, const uint8_t *payload, uint32_t len, uint8_t *out,
                         uint32_t cap) {
    if (t == NULL || out == NULL || (payload == NULL && len) || len > NEURON_LUMEN_MAX_SIDE_PAYLOAD) return NEURON_EINVAL;
    if (plane == NEURON_LUMEN_PLANE_VIDEO || plane == 0 || plane > 255) return NEURON_EINVAL;
    if (cap < NEURON_LUMEN_SIDE_OVERHEAD + len) return NEURON_ERANGE;
    write_common(out, plane, t->cfg.keys.session_id, t->seq);
    uint8_t iv[12];
    lm_nonce(iv, t->cfg.keys.salt, t->seq);
    neuron_gcm_layout lay = {.in_stride = NEURON_LUMEN_MAX_SIDE_PAYLOAD,
                             .out_stride = NEURON_LUMEN_SIDE_OVERHEAD + NEURON_LUMEN_MAX_SIDE_PAYLOAD,
                             .ct_offset = NEURON_LUMEN_SIDE_OVERHEAD,
                             .tag_offset = NEURON_LUMEN_COMMON_HDR,
                             .iv_offset = -1,
                             .iv_mode = NEURON_GCM_IV_EXPLICIT,
                             .iv_stride = 12,
                             .aad_len = NEURON_LUMEN_COMMON_HDR};
    static const uint8_t empty[1] = {0};
    int32_t st = 0;
    int32_t rc = neuron_aes_gcm_seal_batch(t->gcm, &lay, 1, len ? payload : empty, &len, out, iv, 0, out, &st);
    if (rc != 1) return rc < 0 ? rc : NEURON_ECRYPTO;
    __atomic_store_n(&t->seq, t->seq + 1, __ATOMIC_RELAXED);
    return (int32_t)(NEURON_LUMEN_SIDE_OVERHEAD + len);
}

int32_t neuron_lumen_tx_seal_datagram(neuron_lumen_tx *t, uint32_t plane, const uint8_t *payload, uint32_t len,
                                      uint8_t *out, uint32_t cap) {
    if (t == NULL) return NEURON_EINVAL;
    pthread_mutex_lock(&t->mu);
    int32_t rc = seal_side(t, plane, payload, len, out, cap);
    pthread_mutex_unlock(&t->mu);
    return rc;
}

int32_t neuron_lumen_tx_send_datagram(neuron_lumen_tx *t, uint32_t plane, const uint8_t *payload, uint32_t len) {
    if (t == NULL) return NEURON_EINVAL;
    pthread_mutex_lock(&t->mu);
    int32_t n = t->have_peer ? seal_side(t, plane, payload, len, t->side, sizeof t->side) : NEURON_EINVAL;
    ssize_t r = 0;
    if (n > 0) {
        do r = sendto(t->cfg.fd, t->side, (size_t)n, 0, (struct sockaddr *)&t->peer, t->peer_len);
        while (r < 0 && errno == EINTR);
    }
    pthread_mutex_unlock(&t->mu);
    if (n < 0) return n;
    return r < 0 ? NEURON_EIO : n;
}
