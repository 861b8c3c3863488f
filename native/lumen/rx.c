/* lumen/1 receiver: bounds, replay window, AES-128-GCM open, reassembly with RS16 recovery (../lumen.h). */
#include "../crypto.h"
#include "internal.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>

#define RX_BATCH 64u
#define RX_DGRAM_CAP (NEURON_LUMEN_VIDEO_OVERHEAD + NEURON_LUMEN_MAX_SHARD + 64u)
/* GRO: 8 buffers of 64 KiB in the same receive area (8 × 65,536 <= 64 × RX_DGRAM_CAP) */
#define RX_GRO_BATCH 8u
#define RX_GRO_CAP 65536u
_Static_assert(RX_GRO_BATCH * RX_GRO_CAP <= RX_BATCH * RX_DGRAM_CAP, "GRO buffers fit the receive area");
#define SIDE_QUEUE 64u

enum { SLOT_FREE = 0, SLOT_FILLING = 1, SLOT_READY = 2, SLOT_DONE = 3 };

typedef struct rx_slot {
    int state;
    uint32_t frame_index, frame_bytes, k, m, type, codec, epoch;
    uint64_t capture_ns, complete_ns;
    uint32_t have, have_data, recovered;
    uint64_t ready_order;
    uint8_t *present; /* max_shards bytes: 1 where a shard arrived */
    uint8_t *buf;     /* max_shards * S */
} rx_slot;

struct neuron_lumen_rx {
    neuron_lumen_rx_config cfg;
    uint32_t max_k, max_shards;
    neuron_aes_gcm *gcm;
    lm_codec_cache codecs;
    rx_slot slots[NEURON_LUMEN_MAX_SLOTS];
    uint8_t *slot_mem;
    uint64_t footprint;
    uint32_t retired_max; /* highest frame index evicted or taken */
    uint64_t ready_clock;
    /* replay window: bit (seq % W) set when seq, highest - W < seq < highest, was seen */
    uint64_t highest; /* highest accepted seq + 1 */
    uint64_t window[NEURON_LUMEN_REPLAY_WINDOW / 64];
    neuron_lumen_rx_stats st;
    /* simulated loss */
    uint32_t drop_ppm, drop_burst, drop_left;
    uint64_t rng;
    /* scratch */
    uint8_t plain[NEURON_LUMEN_MAX_SHARD];
    uint8_t **ptrs;    /* max_shards */
    uint32_t *lost;    /* max_shards */
    uint8_t *rbuf;     /* RX_BATCH * RX_DGRAM_CAP */
    struct mmsghdr msgs[RX_BATCH];
    struct iovec iovs[RX_BATCH];
    int gro; /* UDP_GRO on the socket: messages carry several datagrams */
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl[RX_GRO_BATCH];
    struct {
        uint32_t plane, len;
        uint8_t data[NEURON_LUMEN_MAX_SIDE_PAYLOAD];
    } side[SIDE_QUEUE];
    uint32_t side_head, side_count;
};

int32_t neuron_lumen_rx_create(const neuron_lumen_rx_config *cfg, neuron_lumen_rx **out) {
    if (out == NULL) return NEURON_EINVAL;
    *out = NULL;
    if (cfg == NULL || cfg->slots < 1 || cfg->slots > NEURON_LUMEN_MAX_SLOTS || cfg->ready_frames < 1 || cfg->ready_frames > 64)
        return NEURON_EINVAL;
    if (cfg->shard_bytes && (cfg->shard_bytes < NEURON_LUMEN_MIN_SHARD || cfg->shard_bytes > NEURON_LUMEN_MAX_SHARD ||
                             cfg->shard_bytes % 64 || cfg->max_frame_bytes == 0 || cfg->max_frame_bytes > NEURON_LUMEN_MAX_FRAME))
        return NEURON_EINVAL;
    neuron_lumen_rx *r = calloc(1, sizeof *r);
    if (r == NULL) return NEURON_ENOMEM;
    r->cfg = *cfg;
    r->footprint = sizeof *r;
    r->rng = 0x9E3779B97F4A7C15ull;
    if (cfg->shard_bytes) {
        uint64_t k = ((uint64_t)cfg->max_frame_bytes + cfg->shard_bytes - 1) / cfg->shard_bytes;
        if (k >= NEURON_LUMEN_MAX_SHARDS) k = NEURON_LUMEN_MAX_SHARDS - 1;
        r->max_k = (uint32_t)k;
        r->max_shards = r->max_k + lm_max_parity(r->max_k);
        const size_t per_slot = (size_t)r->max_shards * cfg->shard_bytes + r->max_shards;
        r->slot_mem = aligned_alloc(64, ((per_slot * cfg->slots) + 63) & ~(size_t)63);
        r->ptrs = malloc((size_t)r->max_shards * sizeof *r->ptrs);
        r->lost = malloc((size_t)r->max_shards * sizeof *r->lost);
        r->rbuf = malloc((size_t)RX_BATCH * RX_DGRAM_CAP);
        r->footprint += per_slot * cfg->slots + (size_t)r->max_shards * (sizeof *r->ptrs + sizeof *r->lost) +
                        (size_t)RX_BATCH * RX_DGRAM_CAP;
        if (!r->slot_mem || !r->ptrs || !r->lost || !r->rbuf) {
            neuron_lumen_rx_destroy(r);
            return NEURON_ENOMEM;
        }
        for (uint32_t i = 0; i < cfg->slots; i++) {
            r->slots[i].buf = r->slot_mem + per_slot * i;
            r->slots[i].present = r->slots[i].buf + (size_t)r->max_shards * cfg->shard_bytes;
        }
        r->codecs.shard_bytes = cfg->shard_bytes;
    } else {
        r->rbuf = malloc((size_t)RX_BATCH * RX_DGRAM_CAP);
        r->footprint += (size_t)RX_BATCH * RX_DGRAM_CAP;
        if (!r->rbuf) {
            neuron_lumen_rx_destroy(r);
            return NEURON_ENOMEM;
        }
    }
    int32_t rc = neuron_aes_gcm_new(cfg->keys.key, 16, &r->gcm);
    if (rc != NEURON_OK) {
        neuron_lumen_rx_destroy(r);
        return rc;
    }
    *out = r;
    return NEURON_OK;
}

void neuron_lumen_rx_destroy(neuron_lumen_rx *r) {
    if (r == NULL) return;
    lm_codec_clear(&r->codecs);
    neuron_aes_gcm_free(r->gcm);
    free(r->slot_mem);
    free(r->ptrs);
    free(r->lost);
    free(r->rbuf);
    free(r);
}

int32_t neuron_lumen_rx_set_drop(neuron_lumen_rx *r, uint32_t ppm, uint32_t burst, uint64_t seed) {
    if (r == NULL || ppm > 1000000 || burst > 1000) return NEURON_EINVAL;
    r->drop_ppm = ppm;
    r->drop_burst = burst ? burst : 1;
    r->drop_left = 0;
    r->rng = seed ? seed : 0x9E3779B97F4A7C15ull;
    return NEURON_OK;
}

static uint64_t rng_next(neuron_lumen_rx *r) { /* xorshift64* */
    r->rng ^= r->rng >> 12;
    r->rng ^= r->rng << 25;
    r->rng ^= r->rng >> 27;
    return r->rng * 0x2545F4914F6CDD1Dull;
}

/* Bursts of b start with probability q = p / (b - p (b - 1)), so the long-run loss is p. */
static int sim_drop(neuron_lumen_rx *r) {
    if (r->drop_ppm == 0) return 0;
    if (r->drop_left) {
        r->drop_left--;
        return 1;
    }
    const double p = r->drop_ppm / 1e6, b = r->drop_burst;
    const double q = p / (b - p * (b - 1));
    if ((double)(rng_next(r) >> 11) / 9007199254740992.0 < q) {
        r->drop_left = r->drop_burst - 1;
        return 1;
    }
    return 0;
}

/* 0 when seq is new (inside or ahead of the window), -1 when seen or too old. */
static int replay_check(const neuron_lumen_rx *r, uint64_t seq) {
    if (seq >= r->highest) return 0;
    if (r->highest - seq > NEURON_LUMEN_REPLAY_WINDOW) return -1;
    return (r->window[(seq / 64) % (NEURON_LUMEN_REPLAY_WINDOW / 64)] >> (seq % 64)) & 1 ? -1 : 0;
}

static void replay_mark(neuron_lumen_rx *r, uint64_t seq) {
    const uint32_t words = NEURON_LUMEN_REPLAY_WINDOW / 64;
    if (seq >= r->highest) {
        if (seq > r->highest && r->st.highest_seq) r->st.loss_runs++;
        uint64_t gap = seq - r->highest; /* clear the bits of the seqs skipped and the new one */
        if (gap >= NEURON_LUMEN_REPLAY_WINDOW) {
            memset(r->window, 0, sizeof r->window);
        } else {
            for (uint64_t s = r->highest; s <= seq; s++) r->window[(s / 64) % words] &= ~(1ull << (s % 64));
        }
        r->highest = seq + 1;
        r->st.highest_seq = r->highest;
    }
    r->window[(seq / 64) % words] |= 1ull << (seq % 64);
    r->st.seq_received++;
}

static rx_slot *slot_of(neuron_lumen_rx *r, uint32_t frame_index) {
    for (uint32_t i = 0; i < r->cfg.slots; i++)
        if (r->slots[i].state != SLOT_FREE && r->slots[i].frame_index == frame_index) return &r->slots[i];
    return NULL;
}

static void retire(neuron_lumen_rx *r, rx_slot *s) {
    if (s->state == SLOT_FILLING) r->st.frames_lost++;
    if (s->state == SLOT_READY) r->st.ready_dropped++;
    if ((int32_t)(s->frame_index - r->retired_max) > 0) r->retired_max = s->frame_index;
    s->state = SLOT_FREE;
}

/* A slot for a new frame: a free one, else the oldest done, filling, then ready one. */
static rx_slot *slot_new(neuron_lumen_rx *r) {
    rx_slot *best = NULL;
    for (int pass = 0; pass < 4 && best == NULL; pass++) {
        const int want = pass == 0 ? SLOT_FREE : pass == 1 ? SLOT_DONE : pass == 2 ? SLOT_FILLING : SLOT_READY;
        for (uint32_t i = 0; i < r->cfg.slots; i++) {
            rx_slot *s = &r->slots[i];
            if (s->state != want) continue;
            if (best == NULL || (int32_t)(s->frame_index - best->frame_index) < 0) best = s;
        }
    }
    if (best->state != SLOT_FREE) retire(r, best);
    return best;
}

static void complete(neuron_lumen_rx *r, rx_slot *s) {
    if (s->have_data < s->k) {
        const uint32_t n = s->k + s->m, S = r->cfg.shard_bytes;
        uint32_t nl = 0;
        for (uint32_t i = 0; i < n; i++) {
            r->ptrs[i] = s->buf + (size_t)i * S;
            if (!s->present[i]) r->lost[nl++] = i;
        }
        neuron_rs16 *codec = lm_codec_get(&r->codecs, s->k, s->m);
        uint64_t t0 = neuron_monotonic_ns();
        int32_t rc = codec ? neuron_rs16_decode(codec, r->ptrs, r->lost, nl, S) : NEURON_ENOMEM;
        r->st.decode_ns += neuron_monotonic_ns() - t0;
        if (rc != NEURON_OK) {
            r->st.frames_lost++;
            s->state = SLOT_DONE;
            if ((int32_t)(s->frame_index - r->retired_max) > 0) r->retired_max = s->frame_index;
            return;
        }
        s->recovered = 1;
        r->st.frames_recovered++;
    }
    s->complete_ns = neuron_monotonic_ns();
    s->state = SLOT_READY;
    s->ready_order = ++r->ready_clock;
    r->st.frames_complete++;
    /* hold at most ready_frames completed frames */
    uint32_t ready = 0;
    rx_slot *oldest = NULL;
    for (uint32_t i = 0; i < r->cfg.slots; i++)
        if (r->slots[i].state == SLOT_READY) {
            ready++;
            if (oldest == NULL || r->slots[i].ready_order < oldest->ready_order) oldest = &r->slots[i];
        }
    if (ready > r->cfg.ready_frames && oldest) retire(r, oldest);
}

static int32_t push_video(neuron_lumen_rx *r, const uint8_t *p, uint32_t len) {
    const uint32_t S = r->cfg.shard_bytes;
    if (S == 0 || len != NEURON_LUMEN_VIDEO_OVERHEAD + S) return NEURON_EFORMAT;
    const uint32_t frame_index = lm_get32(p + 16), frame_bytes = lm_get32(p + 20), idx = lm_get16(p + 24),
                   k = lm_get16(p + 26), m = lm_get16(p + 28), sb = lm_get16(p + 30);
    const uint32_t type = p[40], codec = p[41], epoch = lm_get16(p + 42);
    if (sb != S || frame_bytes == 0 || frame_bytes > r->cfg.max_frame_bytes) return NEURON_EFORMAT;
    if (k != (frame_bytes + S - 1) / S || k > r->max_k || m < 1 || m > lm_max_parity(k) || k + m > r->max_shards ||
        idx >= k + m || type < 1 || type > 2 || codec > 1)
        return NEURON_EFORMAT;
    const uint64_t seq = lm_get64(p + 8), capture = lm_get64(p + 32);
    if (replay_check(r, seq) != 0) {
        r->st.replayed++;
        return NEURON_EINVAL;
    }
    rx_slot *s = slot_of(r, frame_index);
    /* a shard of a frame already complete or given up (typically parity after the data): still
     * authenticated and counted as received — the loss figure the client reports counts every
     * seq that arrived, or the host would read its own parity as loss and raise it further */
    const int late = (s == NULL && (int32_t)(frame_index - r->retired_max) <= 0 && r->retired_max != 0) ||
                     (s && (s->state != SLOT_FILLING || s->present[idx]));
    if (!late && s && (s->frame_bytes != frame_bytes || s->k != k || s->m != m || s->capture_ns != capture || s->type != type ||
                       s->codec != codec || s->epoch != epoch)) {
        r->st.inconsistent++;
        return NEURON_EFORMAT;
    }
    /* the payload is opened straight into its place in the frame's slot when that slot exists
     * (no copy); a failed tag leaves bytes there that nothing reads (present[idx] stays 0) */
    uint8_t *dst = !late && s ? s->buf + (size_t)idx * S : r->plain;
    uint8_t iv[12];
    lm_nonce(iv, r->cfg.keys.salt, seq);
    neuron_gcm_layout lay = {.in_stride = len,
                             .out_stride = S,
                             .ct_offset = NEURON_LUMEN_VIDEO_OVERHEAD,
                             .tag_offset = NEURON_LUMEN_COMMON_HDR + NEURON_LUMEN_VIDEO_HDR,
                             .iv_offset = -1,
                             .iv_mode = NEURON_GCM_IV_EXPLICIT,
                             .iv_stride = 12,
                             .aad_len = NEURON_LUMEN_COMMON_HDR + NEURON_LUMEN_VIDEO_HDR};
    int32_t st = 0;
    if (neuron_aes_gcm_open_batch(r->gcm, &lay, 1, p, &len, dst, iv, 0, p, &st) != 1) {
        r->st.bad_auth++;
        return NEURON_EAUTH;
    }
    replay_mark(r, seq);
    r->st.accepted++;
    if (late) {
        r->st.shards_late++;
        return NEURON_EINVAL;
    }
    if (s == NULL) {
        s = slot_new(r);
        s->state = SLOT_FILLING;
        s->frame_index = frame_index;
        s->frame_bytes = frame_bytes;
        s->k = k;
        s->m = m;
        s->type = type;
        s->codec = codec;
        s->epoch = epoch;
        s->capture_ns = capture;
        s->have = s->have_data = s->recovered = 0;
        memset(s->present, 0, k + m);
        memcpy(s->buf + (size_t)idx * S, r->plain, S);
    }
    s->present[idx] = 1;
    s->have++;
    if (idx < k) s->have_data++;
    if (s->have >= k) complete(r, s);
    return NEURON_LUMEN_PLANE_VIDEO << 16;
}

static int32_t push_side(neuron_lumen_rx *r, const uint8_t *p, uint32_t len, uint8_t *out, uint32_t cap) {
    if (len < NEURON_LUMEN_SIDE_OVERHEAD || len > NEURON_LUMEN_SIDE_OVERHEAD + NEURON_LUMEN_MAX_SIDE_PAYLOAD)
        return NEURON_EFORMAT;
    const uint32_t plen = len - NEURON_LUMEN_SIDE_OVERHEAD;
    if (out == NULL || cap < plen) return NEURON_ERANGE;
    const uint64_t seq = lm_get64(p + 8);
    if (replay_check(r, seq) != 0) {
        r->st.replayed++;
        return NEURON_EINVAL;
    }
    uint8_t iv[12];
    lm_nonce(iv, r->cfg.keys.salt, seq);
    neuron_gcm_layout lay = {.in_stride = len,
                             .out_stride = cap,
                             .ct_offset = NEURON_LUMEN_SIDE_OVERHEAD,
                             .tag_offset = NEURON_LUMEN_COMMON_HDR,
                             .iv_offset = -1,
                             .iv_mode = NEURON_GCM_IV_EXPLICIT,
                             .iv_stride = 12,
                             .aad_len = NEURON_LUMEN_COMMON_HDR};
    int32_t st = 0;
    static uint8_t sink[1];
    if (neuron_aes_gcm_open_batch(r->gcm, &lay, 1, p, &len, plen ? out : sink, iv, 0, p, &st) != 1) {
        r->st.bad_auth++;
        return NEURON_EAUTH;
    }
    replay_mark(r, seq);
    r->st.accepted++;
    return (int32_t)((uint32_t)p[0] << 16 | plen);
}

int32_t neuron_lumen_rx_push(neuron_lumen_rx *r, const uint8_t *p, uint32_t len, uint8_t *out, uint32_t cap) {
    if (r == NULL || (p == NULL && len)) return NEURON_EINVAL;
    r->st.datagrams++;
    if (sim_drop(r)) {
        r->st.dropped_sim++;
        return NEURON_EIO;
    }
    if (len < NEURON_LUMEN_SIDE_OVERHEAD || p[1] != NEURON_LUMEN_VERSION || p[2] || p[3] ||
        lm_get32(p + 4) != r->cfg.keys.session_id) {
        r->st.bad_format++;
        return NEURON_EFORMAT;
    }
    int32_t rc;
    switch (p[0]) {
    case NEURON_LUMEN_PLANE_VIDEO: rc = push_video(r, p, len); break;
    case NEURON_LUMEN_PLANE_AUDIO:
    case NEURON_LUMEN_PLANE_RUMBLE:
    case NEURON_LUMEN_PLANE_PROBE_REPLY:
    case NEURON_LUMEN_PLANE_INPUT:
    case NEURON_LUMEN_PLANE_REPORT:
    case NEURON_LUMEN_PLANE_PROBE: rc = push_side(r, p, len, out, cap); break;
    default: rc = NEURON_EFORMAT;
    }
    if (rc == NEURON_EFORMAT || rc == NEURON_ERANGE) r->st.bad_format++;
    return rc;
}

/* One datagram read from the socket: video straight to the reassembler, side planes queued. */
static void rx_one(neuron_lumen_rx *r, const uint8_t *p, uint32_t len) {
    if (len > RX_DGRAM_CAP) {
        r->st.datagrams++;
        r->st.bad_format++;
        return;
    }
    if (len < 1 || p[0] == NEURON_LUMEN_PLANE_VIDEO) {
        neuron_lumen_rx_push(r, p, len, NULL, 0);
        return;
    }
    if (r->side_count == SIDE_QUEUE) { /* full: the oldest side datagram goes */
        r->side_head = (r->side_head + 1) % SIDE_QUEUE;
        r->side_count--;
    }
    uint32_t slot = (r->side_head + r->side_count) % SIDE_QUEUE;
    int32_t rc = neuron_lumen_rx_push(r, p, len, r->side[slot].data, sizeof r->side[slot].data);
    if (rc > 0) {
        r->side[slot].plane = (uint32_t)rc >> 16;
        r->side[slot].len = (uint32_t)rc & 0xffff;
        r->side_count++;
    }
}

int32_t neuron_lumen_rx_set_gro(neuron_lumen_rx *r, int32_t fd, uint32_t on) {
    if (r == NULL || fd < 0 || on > 1) return NEURON_EINVAL;
    int v = (int)on;
    if (setsockopt(fd, SOL_UDP, UDP_GRO, &v, sizeof v) != 0) return on ? NEURON_EUNSUPPORTED : NEURON_OK;
    r->gro = (int)on;
    return NEURON_OK;
}

int32_t neuron_lumen_rx_recv(neuron_lumen_rx *r, int32_t fd, uint32_t timeout_ms, uint32_t max_datagrams) {
    if (r == NULL || fd < 0 || r->rbuf == NULL) return NEURON_EINVAL;
    if (max_datagrams == 0) max_datagrams = 1u << 20;
    /* with GRO a message is a buffer of up to 64 KiB of equal datagrams (the last may be shorter) */
    const uint32_t batch = r->gro ? RX_GRO_BATCH : RX_BATCH;
    const size_t cap = r->gro ? RX_GRO_CAP : RX_DGRAM_CAP;
    uint32_t total = 0;
    int waited = 0;
    while (total < max_datagrams) {
        uint32_t want = max_datagrams - total < batch ? max_datagrams - total : batch;
        for (uint32_t i = 0; i < want; i++) {
            r->iovs[i].iov_base = r->rbuf + (size_t)i * cap;
            r->iovs[i].iov_len = cap;
            memset(&r->msgs[i], 0, sizeof r->msgs[i]);
            r->msgs[i].msg_hdr.msg_iov = &r->iovs[i];
            r->msgs[i].msg_hdr.msg_iovlen = 1;
            if (r->gro) {
                r->msgs[i].msg_hdr.msg_control = r->ctl[i].buf;
                r->msgs[i].msg_hdr.msg_controllen = sizeof r->ctl[i].buf;
            }
        }
        int n = recvmmsg(fd, r->msgs, want, MSG_DONTWAIT, NULL);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == ECONNREFUSED || errno == EHOSTUNREACH || errno == ENETUNREACH) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) return NEURON_EIO;
            if (total || waited || timeout_ms == 0) break;
            struct pollfd pfd = {.fd = fd, .events = POLLIN};
            waited = 1;
            if (poll(&pfd, 1, (int)timeout_ms) <= 0) break;
            continue;
        }
        for (int i = 0; i < n; i++) {
            const uint8_t *p = r->rbuf + (size_t)i * cap;
            uint32_t len = r->msgs[i].msg_len;
            if (r->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) { /* refused as malformed */
                rx_one(r, p, RX_DGRAM_CAP + 1);
                total++;
                continue;
            }
            uint32_t seg = len;
            if (r->gro) {
                for (struct cmsghdr *cm = CMSG_FIRSTHDR(&r->msgs[i].msg_hdr); cm; cm = CMSG_NXTHDR(&r->msgs[i].msg_hdr, cm))
                    if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_GRO && cm->cmsg_len >= CMSG_LEN(sizeof(int))) {
                        int g;
                        memcpy(&g, CMSG_DATA(cm), sizeof g);
                        if (g > 0 && (uint32_t)g < seg) seg = (uint32_t)g;
                    }
            }
            if (len == 0) {
                rx_one(r, p, 0);
                total++;
                continue;
            }
            for (uint32_t off = 0; off < len; off += seg) {
                rx_one(r, p + off, len - off < seg ? len - off : seg);
                total++;
            }
        }
        if ((uint32_t)n < want) break;
    }
    return (int32_t)total;
}

int32_t neuron_lumen_rx_next_side(neuron_lumen_rx *r, uint8_t *out, uint32_t cap) {
    if (r == NULL || out == NULL) return NEURON_EINVAL;
    if (r->side_count == 0) return 0;
    uint32_t i = r->side_head, len = r->side[i].len;
    if (cap < len) return NEURON_ERANGE;
    memcpy(out, r->side[i].data, len);
    r->side_head = (r->side_head + 1) % SIDE_QUEUE;
    r->side_count--;
    return (int32_t)(r->side[i].plane << 16 | len);
}

int64_t neuron_lumen_rx_next_frame(neuron_lumen_rx *r, uint8_t *out, uint64_t cap, neuron_lumen_frame_info *info) {
    if (r == NULL || info == NULL || (out == NULL && cap)) return NEURON_EINVAL;
    rx_slot *best = NULL;
    for (uint32_t i = 0; i < r->cfg.slots; i++)
        if (r->slots[i].state == SLOT_READY && (best == NULL || r->slots[i].ready_order < best->ready_order)) best = &r->slots[i];
    if (best == NULL) return 0;
    memset(info, 0, sizeof *info);
    info->frame_index = best->frame_index;
    info->bytes = best->frame_bytes;
    info->capture_ns = best->capture_ns;
    info->complete_ns = best->complete_ns;
    info->frame_type = best->type;
    info->codec = best->codec;
    info->epoch = best->epoch;
    info->recovered = best->recovered;
    info->data_shards = best->k;
    info->parity_shards = best->m;
    if (cap < best->frame_bytes) return NEURON_ERANGE;
    memcpy(out, best->buf, best->frame_bytes);
    best->state = SLOT_DONE;
    if ((int32_t)(best->frame_index - r->retired_max) > 0) r->retired_max = best->frame_index;
    return best->frame_bytes;
}

void neuron_lumen_rx_stats_get(const neuron_lumen_rx *r, neuron_lumen_rx_stats *out) {
    if (r == NULL || out == NULL) return;
    *out = r->st;
}

uint64_t neuron_lumen_rx_footprint(const neuron_lumen_rx *r) { return r ? r->footprint : 0; }
uint64_t neuron_lumen_rx_codec_bytes(const neuron_lumen_rx *r) { return r ? lm_codec_bytes(&r->codecs) : 0; }
