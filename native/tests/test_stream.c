/* C-level tests of the video sender (stream.h) over real loopback UDP sockets, under ASan/UBSan. */
#include "../capture.h"
#include "../crypto.h"
#include "../encode.h"
#include "../fec.h"
#include "../stream.h"
#include "check.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_RX 1100

static uint32_t le32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint32_t be16(const uint8_t *p) { return (uint32_t)p[0] << 8 | p[1]; }

typedef struct {
    int32_t tx, rx;
    neuron_udp_peer rx_addr;
} pair;

static int open_pair(pair *p) {
    int32_t port = neuron_udp_open("127.0.0.1", 0, 0, 8u << 20, &p->rx);
    if (port <= 0) return 0;
    if (neuron_udp_open("127.0.0.1", 0, 0, 0, &p->tx) <= 0) return 0;
    memset(&p->rx_addr, 0, sizeof p->rx_addr);
    p->rx_addr.family = 4;
    p->rx_addr.addr[0] = 127;
    p->rx_addr.addr[3] = 1;
    p->rx_addr.port = (uint16_t)port;
    return 1;
}

/* A receiver thread drains the socket while the sender runs (default buffers are small). */
typedef struct {
    int32_t fd;
    uint8_t *bufs;
    uint32_t cap, n, lens[MAX_RX];
    volatile int stop;
    pthread_t th;
} receiver;

static void *rx_main(void *arg) {
    receiver *r = arg;
    neuron_udp_peer from;
    int idle = 0;
    while (r->n < MAX_RX && !(r->stop && idle > 20)) {
        int32_t got = neuron_udp_recv(r->fd, r->bufs + (size_t)r->n * r->cap, r->cap, &from);
        if (got > 0) {
            r->lens[r->n++] = (uint32_t)got;
            idle = 0;
        } else {
            idle++;
            usleep(200);
        }
    }
    return NULL;
}

static void rx_start(receiver *r) {
    r->n = 0;
    r->stop = 0;
    pthread_create(&r->th, NULL, rx_main, r);
}

static uint32_t rx_finish(receiver *r) {
    r->stop = 1;
    pthread_join(r->th, NULL);
    return r->n;
}

/* Reassembles one frame from received (decrypted) shards of size S, dropping shard `drop` of
 * each block, and compares it with header + au. */
static void reassemble_and_check(uint8_t *shards, uint32_t n, uint32_t S, const uint8_t *au, uint32_t len,
                                 uint32_t want_frame, uint32_t want_type) {
    uint32_t P = S - 32, i = 0, blocks_seen = 0;
    uint8_t *frame = calloc(1, (size_t)n * P + 64);
    uint64_t at = 0;
    while (i < n) {
        uint8_t *first = shards + (size_t)i * S;
        uint32_t fec = le32(first + 28);
        uint32_t d = fec >> 22, pct = (fec >> 4) & 0xff;
        uint32_t p = (d * pct + 99) / 100;
        CHECK(first[0] == 0x90 && first[26] == 0x10);
        CHECK(((first[27] >> 4) & 3) == blocks_seen);
        CHECK(le32(first + 20) == want_frame);
        for (uint32_t j = 0; j < d + p; j++) {
            const uint8_t *sh = shards + (size_t)(i + j) * S;
            CHECK(((le32(sh + 28) >> 12) & 0x3ff) == j);
            CHECK(be16(sh + 2) == ((be16(first + 2) + j) & 0xffff));
        }
        /* drop up to p data shards (the first ones) and recover them */
        uint32_t lost[NEURON_RS8_MAX_SHARDS], nl = p < d ? p : d;
        for (uint32_t j = 0; j < nl; j++) {
            lost[j] = j;
            memset(shards + (size_t)(i + j) * S, 0xEE, S);
        }
        if (p) {
            neuron_rs8 *rs = NULL;
            CHECK(neuron_rs8_create(d, p, NEURON_RS8_KERNEL_AUTO, &rs) == NEURON_OK);
            CHECK(neuron_rs8_decode_block(rs, shards + (size_t)i * S, S, S, lost, nl) == NEURON_OK);
            neuron_rs8_destroy(rs);
        }
        for (uint32_t j = 0; j < d; j++) {
            const uint8_t *sh = shards + (size_t)(i + j) * S;
            uint8_t want_flags = (uint8_t)(1 | (j == 0 ? 4 : 0) | (j == d - 1 ? 2 : 0));
            CHECK(sh[24] == want_flags);
            memcpy(frame + at, sh + 32, P);
            at += P;
        }
        i += d + p;
        blocks_seen++;
    }
    CHECK(frame[0] == 1 && frame[3] == want_type);
    uint32_t last_len = frame[4] | frame[5] << 8;
    CHECK(last_len == (len + 8) % P || (last_len == P && (len + 8) % P == 0));
    CHECK(at >= (uint64_t)len + 8);
    CHECK(memcmp(frame + 8, au, len) == 0);
    free(frame);
}

static void run_case(uint32_t packet_size, uint32_t len, uint32_t pct, uint32_t min_fec, int encrypt, uint64_t pace_ns) {
    pair pr;
    CHECK(open_pair(&pr));
    uint8_t key[16];
    for (int i = 0; i < 16; i++) key[i] = (uint8_t)(i * 7 + 1);
    neuron_video_config cfg = {.packet_size = packet_size, .fec_percent = pct, .min_fec = min_fec,
                               .encrypt = (uint32_t)encrypt, .fd = pr.tx, .max_frame_bytes = 1u << 20};
    memcpy(cfg.key, key, 16);
    neuron_video_sender *s = NULL;
    CHECK(neuron_video_sender_create(&cfg, &s) == NEURON_OK);
    uint8_t *au = malloc(len);
    for (uint32_t i = 0; i < len; i++) au[i] = (uint8_t)(i * 31 + 7);
    neuron_video_frame fr = {.capture_ns = neuron_monotonic_ns(), .rtp_timestamp = 90000, .frame_type = 2, .pace_ns = pace_ns};
    neuron_video_result res;
    CHECK(neuron_video_send_frame(s, au, len, &fr, &res) == NEURON_EINVAL); /* no peer yet */
    CHECK(neuron_video_sender_set_peer(s, &pr.rx_addr) == NEURON_OK);
    uint32_t S = packet_size + 16, cap = S + 32;
    uint8_t *rx = malloc((size_t)MAX_RX * cap), *plain = malloc((size_t)MAX_RX * S);
    receiver *r = calloc(1, sizeof *r);
    r->fd = pr.rx;
    r->bufs = rx;
    r->cap = cap;
    uint32_t *lens = r->lens;
    for (uint32_t f = 1; f <= 2; f++) {
        fr.frame_type = f == 1 ? 2 : 1;
        rx_start(r);
        CHECK(neuron_video_send_frame(s, au, len, &fr, &res) == NEURON_OK);
        uint32_t n = rx_finish(r);
        CHECK(res.frame_index == f && res.send_errors == 0 && res.shards == res.data_shards + res.parity_shards);
        CHECK(n == res.shards);
        if (n != res.shards) break;
        if (encrypt) {
            neuron_aes_gcm *g = NULL;
            CHECK(neuron_aes_gcm_new(key, 16, &g) == NEURON_OK);
            neuron_gcm_layout l = {.in_stride = cap, .out_stride = S, .ct_offset = 32, .tag_offset = 16, .iv_offset = 0,
                                   .iv_mode = NEURON_GCM_IV_IN_RECORD};
            int32_t *st = malloc(n * sizeof *st);
            CHECK(neuron_aes_gcm_open_batch(g, &l, n, rx, lens, plain, NULL, 0, NULL, st) == (int32_t)n);
            for (uint32_t i = 0; i < n; i++) {
                CHECK(le32(rx + (size_t)i * cap + 12) == f);
                CHECK(rx[(size_t)i * cap + 11] == 'V');
            }
            /* a tampered record fails authentication */
            rx[40] ^= 1;
            CHECK(neuron_aes_gcm_open_batch(g, &l, 1, rx, lens, plain, NULL, 0, NULL, st) == 0 && st[0] == NEURON_EAUTH);
            free(st);
            neuron_aes_gcm_free(g);
            /* decrypt again properly for the checks below */
            rx[40] ^= 1;
            int32_t st2[MAX_RX];
            neuron_aes_gcm_new(key, 16, &g);
            neuron_aes_gcm_open_batch(g, &l, n, rx, lens, plain, NULL, 0, NULL, st2);
            neuron_aes_gcm_free(g);
        } else {
            for (uint32_t i = 0; i < n; i++) {
                CHECK(lens[i] == S);
                memcpy(plain + (size_t)i * S, rx + (size_t)i * cap, S);
            }
        }
        reassemble_and_check(plain, n, S, au, len, f, fr.frame_type);
    }
    free(r);
    free(rx);
    free(plain);
    free(au);
    neuron_video_sender_destroy(s);
    neuron_udp_close(pr.tx);
    neuron_udp_close(pr.rx);
}

static void test_invalid(void) {
    neuron_video_sender *s = NULL;
    neuron_video_config cfg = {.packet_size = 100, .fec_percent = 20, .fd = 3, .max_frame_bytes = 1000};
    CHECK(neuron_video_sender_create(&cfg, &s) == NEURON_EINVAL && s == NULL);
    cfg.packet_size = 1024;
    cfg.fec_percent = 300;
    CHECK(neuron_video_sender_create(&cfg, &s) == NEURON_EINVAL);
    cfg.fec_percent = 20;
    cfg.fd = -1;
    CHECK(neuron_video_sender_create(&cfg, &s) == NEURON_EINVAL);
    int32_t fd = -1;
    CHECK(neuron_udp_open("not-an-ip", 0, 0, 0, &fd) == NEURON_EINVAL);
    CHECK(neuron_udp_open("127.0.0.1", 70000, 0, 0, &fd) == NEURON_EINVAL);
    pair pr;
    CHECK(open_pair(&pr));
    cfg.fd = pr.tx;
    cfg.max_frame_bytes = 1000;
    CHECK(neuron_video_sender_create(&cfg, &s) == NEURON_OK);
    CHECK(neuron_video_sender_set_peer(s, &pr.rx_addr) == NEURON_OK);
    uint8_t au[2000] = {0};
    neuron_video_frame fr = {.frame_type = 2};
    neuron_video_result res;
    CHECK(neuron_video_send_frame(s, au, 2000, &fr, &res) == NEURON_ERANGE);
    CHECK(neuron_video_send_frame(s, au, 0, &fr, &res) == NEURON_EINVAL);
    fr.frame_type = 9;
    CHECK(neuron_video_send_frame(s, au, 10, &fr, &res) == NEURON_EINVAL);
    fr.frame_type = 1;
    CHECK(neuron_video_send_frame(s, au, 10, &fr, &res) == NEURON_OK && res.frame_index == 1); /* no index lost */
    neuron_udp_peer bad = {.family = 5};
    CHECK(neuron_video_sender_set_peer(s, &bad) == NEURON_EINVAL);
    neuron_video_sender_destroy(s);
    neuron_udp_close(pr.tx);
    neuron_udp_close(pr.rx);
}

/* The pump: producer → pipeline → pump → sender → a loopback receiver; frames arrive only
 * after the peer is set, the first one an IDR, indices from 1. Paced (ring and the pump's
 * thread) or not (sent on the pipeline's thread). */
static void test_pump(uint64_t pace_ns) {
    char path[64];
    snprintf(path, sizeof path, "/dev/shm/neuron-test-pump-%d", (int)getpid());
    neuron_producer_config pc = {.width = 320, .height = 240, .fps = 60};
    neuron_producer *prod = NULL;
    CHECK(neuron_producer_start(path, 0, &pc, &prod) == NEURON_OK);
    neuron_pipeline_config cfg = {.enc = {.codec = NEURON_CODEC_H264, .fps = 60, .bitrate_kbps = 2000, .threads = 1},
                                  .ring_slots = 8, .slot_bytes = 1u << 20, .frame_timeout_ms = 50, .wp_timeout_ms = 100};
    neuron_pipeline *pl = NULL;
    CHECK(neuron_pipeline_start(path, &cfg, &pl) == NEURON_OK);
    pair pr;
    CHECK(open_pair(&pr));
    neuron_video_config vc = {.packet_size = 1024, .fec_percent = 20, .min_fec = 2, .fd = pr.tx, .max_frame_bytes = 1u << 20};
    neuron_video_sender *s = NULL;
    CHECK(neuron_video_sender_create(&vc, &s) == NEURON_OK);
    neuron_video_pump *pump = NULL;
    CHECK(neuron_video_pump_start(pl, s, 0, 0, 0, &pump) == NEURON_EINVAL && pump == NULL);
    CHECK(neuron_video_pump_start(pl, s, 0, 1u << 20, 2000000000ull, &pump) == NEURON_EINVAL && pump == NULL);
    CHECK(neuron_video_pump_start(pl, s, neuron_monotonic_ns(), 1u << 20, pace_ns, &pump) == NEURON_OK);
    neuron_video_pump_stats st;
    for (int i = 0; i < 100; i++) { /* frames are discarded while no peer is known */
        neuron_video_pump_stats_get(pump, &st);
        if (st.discarded >= 3) break;
        usleep(10000);
    }
    CHECK(st.discarded >= 3 && st.frames == 0 && st.running == 1);
    receiver *r = calloc(1, sizeof *r);
    uint8_t *rx = malloc((size_t)MAX_RX * 1100);
    r->fd = pr.rx;
    r->bufs = rx;
    r->cap = 1100;
    rx_start(r);
    CHECK(neuron_video_pump_set_peer(pump, &pr.rx_addr) == NEURON_OK);
    for (int i = 0; i < 300; i++) {
        neuron_video_pump_stats_get(pump, &st);
        if (st.frames >= 10) break;
        usleep(10000);
    }
    uint32_t lat[64];
    uint32_t nl = neuron_video_pump_latencies(pump, lat, 64);
    CHECK(nl >= 10 && nl <= 64);
    neuron_video_pump_timing tm[64];
    uint32_t nt = neuron_video_pump_timings(pump, tm, 64);
    CHECK(nt >= 10 && nt <= 64);
    for (uint32_t i = 0; i < nt; i++) { /* each frame: encoded <= taken <= sent, serials rising */
        CHECK(tm[i].encoded_us <= tm[i].taken_us && tm[i].taken_us <= tm[i].sent_us);
        if (i > 0) CHECK(tm[i].frame_serial > tm[i - 1].frame_serial);
    }
    neuron_video_pump_stop(pump);
    uint32_t n = rx_finish(r);
    CHECK(st.frames >= 10 && st.send_errors == 0 && st.have_peer == 1);
    CHECK(n >= st.frames && n > 0);
    if (n > 0) {
        CHECK(le32(rx + 20) == 1);          /* frameIndex 1 first */
        CHECK(rx[24] & 0x4);                /* its first shard starts a block */
        CHECK(rx[32] == 0x01 && rx[35] == 2); /* frame header: IDR */
    }
    CHECK(neuron_video_pump_latencies(NULL, lat, 64) == 0); /* NULL-safe */
    CHECK(neuron_video_pump_timings(NULL, tm, 64) == 0);
    free(rx);
    free(r);
    neuron_video_sender_destroy(s);
    neuron_pipeline_stop(pl);
    neuron_producer_stop(prod);
    unlink(path);
    neuron_udp_close(pr.tx);
    neuron_udp_close(pr.rx);
}

int main(void) {
    test_pump(2000000); /* paced over 2 ms per frame */
    test_pump(0);
    test_invalid();
    run_case(1024, 10, 20, 2, 0, 0);           /* one shard: parity raised to the minimum */
    run_case(1024, 50000, 20, 2, 0, 0);        /* one block */
    run_case(1024, 400000, 20, 2, 0, 0);       /* multi-block */
    run_case(1392, 120000, 20, 2, 1, 0);       /* encrypted */
    run_case(1024, 1000 * 4, 0, 0, 0, 0);      /* no FEC */
    run_case(1024, 200000, 20, 2, 1, 4000000); /* paced over 4 ms, multi-block, encrypted */
    return check_report("stream");
}
