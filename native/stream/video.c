/* GameStream video sender: packetize + FEC + encrypt + sendmmsg, one call per frame (stream.h). */
#include "../crypto.h"
#include "../fec.h"
#include "../stream.h"
#include "udp_addr.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define MAX_BATCH 64u

struct neuron_video_sender {
    neuron_video_config cfg;
    uint32_t shard_size;   /* S = packet_size + 16 */
    uint32_t payload_size; /* S - 32 */
    size_t stride;         /* bytes between records in staging (prefix + shard, 64-aligned) */
    uint8_t *staging;      /* NEURON_RS8_MAX_SHARDS records: one block at a time */
    neuron_rs8 **codecs;   /* [k * 256 + m], created on first use */
    neuron_aes_gcm *gcm;
    neuron_gcm_layout layout;
    uint8_t iv_template[12];
    uint64_t gcm_counter;
    uint32_t next_frame; /* frameIndex of the next frame */
    uint32_t seq;        /* RTP sequence number of the next shard (32-bit, low 16 on the wire) */
    int have_peer;
    struct sockaddr_storage peer;
    socklen_t peer_len;
    struct mmsghdr msgs[MAX_BATCH];
    struct iovec iovs[MAX_BATCH];
    uint32_t lens[NEURON_RS8_MAX_SHARDS];
    int32_t status[NEURON_RS8_MAX_SHARDS];
};

static void put_le16(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static void put_le32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put_be16(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static void put_be32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (24 - 8 * i));
}

int32_t neuron_video_sender_create(const neuron_video_config *cfg, neuron_video_sender **out) {
    if (out == NULL) return NEURON_EINVAL;
    *out = NULL;
    if (cfg == NULL || cfg->packet_size < NEURON_VIDEO_MIN_PACKET || cfg->packet_size > NEURON_VIDEO_MAX_PACKET ||
        cfg->fec_percent > 255 || cfg->min_fec > 64 || cfg->encrypt > 1 || cfg->fd < 0 || cfg->max_frame_bytes == 0 ||
        cfg->max_frame_bytes > NEURON_VIDEO_MAX_FRAME || cfg->batch > MAX_BATCH || cfg->reserved != 0)
        return NEURON_EINVAL;
    neuron_video_sender *s = calloc(1, sizeof *s);
    if (s == NULL) return NEURON_ENOMEM;
    s->cfg = *cfg;
    if (s->cfg.batch == 0) s->cfg.batch = MAX_BATCH;
    s->shard_size = cfg->packet_size + 16;
    s->payload_size = s->shard_size - NEURON_VIDEO_HEADER_BYTES;
    s->stride = ((size_t)NEURON_VIDEO_ENC_PREFIX_BYTES + s->shard_size + 63) & ~(size_t)63;
    s->staging = aligned_alloc(64, s->stride * NEURON_RS8_MAX_SHARDS); /* one block at a time */
    s->codecs = calloc(256u * 256u, sizeof *s->codecs);
    s->next_frame = 1;
    if (s->staging == NULL || s->codecs == NULL) {
        neuron_video_sender_destroy(s);
        return NEURON_ENOMEM;
    }
    if (cfg->encrypt) {
        int32_t rc = neuron_aes_gcm_new(cfg->key, 16, &s->gcm);
        if (rc != NEURON_OK) {
            neuron_video_sender_destroy(s);
            return rc;
        }
        /* record = iv[12] ‖ LE32 frameIndex ‖ tag[16] ‖ ciphertext; the shard sits at +32 in place */
        s->layout = (neuron_gcm_layout){.in_stride = (uint32_t)s->stride,
                                        .out_stride = (uint32_t)s->stride,
                                        .ct_offset = NEURON_VIDEO_ENC_PREFIX_BYTES,
                                        .tag_offset = 16,
                                        .iv_offset = 0,
                                        .iv_mode = NEURON_GCM_IV_COUNTER64};
        memset(s->iv_template, 0, sizeof s->iv_template);
        s->iv_template[11] = 'V';
    }
    *out = s;
    return NEURON_OK;
}

int32_t neuron_video_sender_set_peer(neuron_video_sender *s, const neuron_udp_peer *peer) {
    if (s == NULL || peer == NULL) return NEURON_EINVAL;
    struct sockaddr_storage ss;
    socklen_t len;
    if (!neuron_peer_to_sockaddr(peer, &ss, &len)) return NEURON_EINVAL;
    s->peer = ss;
    s->peer_len = len;
    s->have_peer = 1;
    return NEURON_OK;
}

void neuron_video_sender_destroy(neuron_video_sender *s) {
    if (s == NULL) return;
    if (s->codecs) {
        for (size_t i = 0; i < 256u * 256u; i++) neuron_rs8_destroy(s->codecs[i]);
        free(s->codecs);
    }
    neuron_aes_gcm_free(s->gcm);
    free(s->staging);
    free(s);
}

/* Parity count and percentage of a block of d data shards (stream.h, FEC). The parity count
 * is always the client's own recomputation ceil(d * pct / 100), so both sides agree. */
static void block_parity(uint32_t d, uint32_t pct_in, uint32_t min_fec, uint32_t *p_out, uint32_t *pct_out) {
    uint32_t pct = pct_in;
    uint32_t p = (d * pct + 99) / 100;
    if (pct && p < min_fec) {
        pct = 100 * min_fec / d;
        if (pct > 255) pct = 255;
        p = (d * pct + 99) / 100;
    }
    while (pct > 0 && d + p > NEURON_RS8_MAX_SHARDS) {
        pct--;
        p = (d * pct + 99) / 100;
    }
    *p_out = p;
    *pct_out = pct;
}

static neuron_rs8 *codec_for(neuron_video_sender *s, uint32_t k, uint32_t m) {
    neuron_rs8 **slot = &s->codecs[k * 256u + m];
    if (*slot == NULL && neuron_rs8_create(k, m, NEURON_RS8_KERNEL_AUTO, slot) != NEURON_OK) *slot = NULL;
    return *slot;
}

static void sleep_until(uint64_t due) {
    struct timespec ts = {.tv_sec = (time_t)(due / 1000000000ull), .tv_nsec = (long)(due % 1000000000ull)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

/* Sends records [first, first + count) in batches; returns datagrams refused. */
static uint32_t send_records(neuron_video_sender *s, uint32_t first, uint32_t count, uint64_t pace_start,
                             uint64_t pace_ns, uint32_t total, uint32_t *sent_so_far, uint64_t *bytes) {
    uint32_t errors = 0;
    size_t dlen = s->cfg.encrypt ? NEURON_VIDEO_ENC_PREFIX_BYTES + s->shard_size : s->shard_size;
    size_t off = s->cfg.encrypt ? 0 : NEURON_VIDEO_ENC_PREFIX_BYTES;
    uint32_t i = 0;
    while (i < count) {
        uint32_t n = count - i < s->cfg.batch ? count - i : s->cfg.batch;
        if (pace_ns && *sent_so_far) sleep_until(pace_start + pace_ns * *sent_so_far / total);
        for (uint32_t j = 0; j < n; j++) {
            s->iovs[j].iov_base = s->staging + (size_t)(first + i + j) * s->stride + off;
            s->iovs[j].iov_len = dlen;
            memset(&s->msgs[j], 0, sizeof s->msgs[j]);
            s->msgs[j].msg_hdr.msg_name = &s->peer;
            s->msgs[j].msg_hdr.msg_namelen = s->peer_len;
            s->msgs[j].msg_hdr.msg_iov = &s->iovs[j];
            s->msgs[j].msg_hdr.msg_iovlen = 1;
        }
        uint32_t done = 0;
        int retries = 0;
        while (done < n) {
            int r = sendmmsg(s->cfg.fd, s->msgs + done, n - done, 0);
            if (r > 0) {
                done += (uint32_t)r;
                *bytes += (uint64_t)r * dlen;
                continue;
            }
            if (r < 0 && errno == EINTR) continue;
            /* a refused datagram (ICMP error, full queue past the send timeout): skip it */
            if (++retries > 2) {
                errors++;
                done++;
                retries = 0;
            }
        }
        *sent_so_far += n;
        i += n;
    }
    return errors;
}

int32_t neuron_video_send_frame(neuron_video_sender *s, const uint8_t *au, uint32_t len,
                                const neuron_video_frame *frame, neuron_video_result *result) {
    if (s == NULL || au == NULL || frame == NULL || result == NULL || len == 0 || !s->have_peer) return NEURON_EINVAL;
    if (frame->frame_type == 0 || frame->frame_type > 5 || frame->frame_type == 3) return NEURON_EINVAL;
    if (len > s->cfg.max_frame_bytes) return NEURON_ERANGE;
    memset(result, 0, sizeof *result);

    const uint32_t P = s->payload_size;
    const uint64_t total_bytes = (uint64_t)len + NEURON_VIDEO_FRAME_HEADER_BYTES;
    const uint64_t d_total64 = (total_bytes + P - 1) / P;
    uint32_t pct = s->cfg.fec_percent;
    uint32_t max_d = NEURON_RS8_MAX_SHARDS * 100 / (100 + pct);
    uint64_t blocks = (d_total64 + max_d - 1) / max_d;
    if (blocks > NEURON_VIDEO_MAX_BLOCKS) {
        pct = 0;
        max_d = NEURON_RS8_MAX_SHARDS;
        blocks = (d_total64 + max_d - 1) / max_d;
        if (blocks > NEURON_VIDEO_MAX_BLOCKS) return NEURON_ERANGE;
    }
    const uint32_t d_total = (uint32_t)d_total64;
    uint32_t per_block = (uint32_t)((d_total + blocks - 1) / blocks);
    blocks = (d_total + per_block - 1) / per_block;

    const uint64_t now = neuron_monotonic_ns();
    uint64_t lat = 0;
    if (frame->capture_ns && now > frame->capture_ns) lat = (now - frame->capture_ns + 50000) / 100000;
    if (lat > 65535) lat = 65535;
    uint32_t last_len = (uint32_t)(total_bytes % P);
    if (last_len == 0) last_len = P;

    const uint32_t frame_index = s->next_frame;
    const uint32_t last_block = (uint32_t)blocks - 1;
    result->frame_index = frame_index;
    result->blocks = (uint32_t)blocks;
    result->latency = (uint32_t)lat;
    result->first_seq = s->seq;

    uint64_t consumed = 0; /* bytes of the frame (header + AU) placed so far */
    uint32_t sent_so_far = 0, total_shards = 0;
    uint32_t parity_of[NEURON_VIDEO_MAX_BLOCKS] = {0}, pct_of[NEURON_VIDEO_MAX_BLOCKS] = {0}, d_of[NEURON_VIDEO_MAX_BLOCKS] = {0};
    neuron_rs8 *codec_of[NEURON_VIDEO_MAX_BLOCKS] = {0};
    for (uint32_t b = 0; b < blocks; b++) {
        d_of[b] = b == last_block ? d_total - per_block * b : per_block;
        block_parity(d_of[b], pct, s->cfg.min_fec, &parity_of[b], &pct_of[b]);
        total_shards += d_of[b] + parity_of[b];
        /* every codec exists before the first datagram leaves: no half-sent frame on ENOMEM */
        if (parity_of[b] && (codec_of[b] = codec_for(s, d_of[b], parity_of[b])) == NULL) return NEURON_ENOMEM;
    }
    result->fec_percent = pct_of[0];
    const uint64_t pace_start = now;
    uint8_t fh[NEURON_VIDEO_FRAME_HEADER_BYTES] = {0x01, 0, 0, (uint8_t)frame->frame_type, 0, 0, 0, 0};
    put_le16(fh + 1, (uint32_t)lat);
    put_le16(fh + 4, last_len);

    for (uint32_t b = 0; b < blocks; b++) {
        const uint32_t d = d_of[b], p = parity_of[b], n = d + p;
        neuron_rs8 *codec = codec_of[b];
        const uint32_t base_seq = s->seq;
        const uint8_t fec_blocks = (uint8_t)((b << 4) | (last_block << 6));
        for (uint32_t i = 0; i < n; i++) {
            uint8_t *sh = s->staging + (size_t)i * s->stride + NEURON_VIDEO_ENC_PREFIX_BYTES;
            if (i >= d) continue; /* parity: written by the encoder */
            memset(sh, 0, NEURON_VIDEO_HEADER_BYTES);
            put_le32(sh + 16, (base_seq + i) << 8);
            put_le32(sh + 20, frame_index);
            sh[24] = (uint8_t)(0x1 | (i == 0 ? 0x4 : 0) | (i == d - 1 ? 0x2 : 0));
            sh[26] = 0x10;
            sh[27] = fec_blocks;
            /* payload: frame header then AU bytes, zero-padded */
            uint8_t *dst = sh + NEURON_VIDEO_HEADER_BYTES;
            uint32_t filled = 0;
            while (filled < P && consumed < total_bytes) {
                if (consumed < NEURON_VIDEO_FRAME_HEADER_BYTES) {
                    dst[filled++] = fh[consumed++];
                    continue;
                }
                uint64_t au_off = consumed - NEURON_VIDEO_FRAME_HEADER_BYTES;
                uint32_t take = P - filled;
                if ((uint64_t)take > len - au_off) take = (uint32_t)(len - au_off);
                memcpy(dst + filled, au + au_off, take);
                filled += take;
                consumed += take;
            }
            if (filled < P) memset(dst + filled, 0, P - filled);
        }
        if (p) {
            uint8_t *base = s->staging + NEURON_VIDEO_ENC_PREFIX_BYTES;
            int32_t rc = neuron_rs8_encode_block(codec, base, s->stride, s->shard_size);
            if (rc != NEURON_OK) return rc;
        }
        for (uint32_t i = 0; i < n; i++) {
            uint8_t *sh = s->staging + (size_t)i * s->stride + NEURON_VIDEO_ENC_PREFIX_BYTES;
            sh[0] = 0x90;
            sh[1] = 0;
            put_be16(sh + 2, (base_seq + i) & 0xffff);
            put_be32(sh + 4, frame->rtp_timestamp);
            put_be32(sh + 8, 0);
            put_le32(sh + 20, frame_index);
            sh[27] = fec_blocks;
            put_le32(sh + 28, i << 12 | d << 22 | pct_of[b] << 4);
        }
        if (s->gcm) {
            for (uint32_t i = 0; i < n; i++) s->lens[i] = s->shard_size;
            int32_t rc = neuron_aes_gcm_seal_batch(s->gcm, &s->layout, n, s->staging + NEURON_VIDEO_ENC_PREFIX_BYTES,
                                                   s->lens, s->staging, s->iv_template, s->gcm_counter, NULL, s->status);
            if (rc < 0) return rc;
            for (uint32_t i = 0; i < n; i++) put_le32(s->staging + (size_t)i * s->stride + 12, frame_index);
            s->gcm_counter += n;
        }
        s->seq += n;
        result->data_shards += d;
        result->parity_shards += p;
        result->send_errors += send_records(s, 0, n, pace_start, frame->pace_ns, total_shards, &sent_so_far, &result->bytes);
        result->shards += n;
    }
    s->next_frame++;
    result->shards -= result->send_errors;
    result->done_ns = neuron_monotonic_ns();
    return NEURON_OK;
}
