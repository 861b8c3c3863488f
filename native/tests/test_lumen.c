/* lumen/1 data plane (lumen.h): round trips over loopback UDP, recovery, replay, hostile headers. */
#include "../lumen.h"
#include "check.h"

#include <stdlib.h>
#include <string.h>

static neuron_lumen_keys keys(uint32_t sid) {
    neuron_lumen_keys k;
    memset(&k, 0, sizeof k);
    for (int i = 0; i < 16; i++) k.key[i] = (uint8_t)(i * 7 + 1);
    memcpy(k.salt, "\x11\x22\x33\x44", 4);
    k.session_id = sid;
    return k;
}

static uint32_t rnd_state = 12345;
static uint32_t rnd(void) {
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 17;
    rnd_state ^= rnd_state << 5;
    return rnd_state;
}

#define S 1344u

/* Seals one frame into an array of datagrams by sending it to a socket we read back. */
static int capture_frame(neuron_lumen_tx *tx, int rfd, const uint8_t *au, uint32_t len, uint32_t loss_ppm, uint8_t *dgrams,
                         uint32_t cap_dgrams, uint32_t *lens, neuron_lumen_tx_result *res) {
    neuron_lumen_frame f = {.capture_ns = 42, .frame_type = 2, .loss_ppm = loss_ppm, .burst = 1, .min_pct_x100 = 100,
                            .max_pct_x100 = 5000};
    if (neuron_lumen_tx_send_frame(tx, au, len, &f, res) != NEURON_OK) return -1;
    uint32_t n = 0;
    neuron_udp_peer from;
    for (int spins = 0; n < res->data_shards + res->parity_shards && n < cap_dgrams && spins < 100000; spins++) {
        int32_t l = neuron_udp_recv(rfd, dgrams + (size_t)n * 2048, 2048, &from);
        if (l > 0) lens[n++] = (uint32_t)l;
    }
    return (int)n;
}

int main(void) {
    /* parity rule */
    CHECK(neuron_lumen_parity(0, 0, 1, 100, 5000) == NEURON_EINVAL);
    CHECK(neuron_lumen_parity(100, 0, 1, 100, 5000) == 1);           /* clean link: 1 % */
    CHECK(neuron_lumen_parity(1000, 100000, 1, 100, 5000) >= 150);   /* 10 % loss: >= 15 % */
    CHECK(neuron_lumen_parity(1000, 400000, 1, 100, 5000) <= 564);   /* never over k/2 + 64 */
    CHECK(neuron_lumen_parity(10, 200000, 1, 100, 5000) >= 8);       /* small blocks: binomial tail */
    CHECK(neuron_lumen_parity(10, 100000, 10, 100, 5000) >= 10);     /* bursts of 10 */

    int32_t sfd = -1, rfd = -1;
    int32_t rport = neuron_udp_open("127.0.0.1", 0, 1 << 22, 1 << 24, &rfd);
    CHECK(neuron_udp_open("127.0.0.1", 0, 1 << 22, 0, &sfd) > 0 && rport > 0);
    neuron_udp_peer peer = {.port = (uint16_t)rport, .family = 4};
    memcpy(peer.addr, "\x7f\0\0\x01", 4);

    neuron_lumen_tx_config tc = {.keys = keys(7), .fd = sfd, .shard_bytes = S, .max_frame_bytes = 1 << 20};
    neuron_lumen_tx *tx = NULL;
    CHECK(neuron_lumen_tx_create(&tc, &tx) == NEURON_OK);
    CHECK(neuron_lumen_tx_set_peer(tx, &peer) == NEURON_OK);
    neuron_lumen_rx_config rc = {.keys = keys(7), .shard_bytes = S, .max_frame_bytes = 1 << 20, .slots = 4, .ready_frames = 4};
    neuron_lumen_rx *rx = NULL;
    CHECK(neuron_lumen_rx_create(&rc, &rx) == NEURON_OK);
    CHECK(neuron_lumen_rx_footprint(rx) < 16u << 20);

    const uint32_t len = 100000;
    uint8_t *au = malloc(len), *out = malloc(1 << 20), *dg = malloc(2048u * 512);
    uint32_t lens[512];
    for (uint32_t i = 0; i < len; i++) au[i] = (uint8_t)rnd();
    neuron_lumen_tx_result res;
    neuron_lumen_frame_info info;

    /* 1: everything arrives */
    int n = capture_frame(tx, rfd, au, len, 0, dg, 512, lens, &res);
    CHECK(n == (int)(res.data_shards + res.parity_shards) && res.data_shards == (len + S - 1) / S);
    for (int i = 0; i < n; i++) neuron_lumen_rx_push(rx, dg + (size_t)i * 2048, lens[i], NULL, 0);
    CHECK(neuron_lumen_rx_next_frame(rx, out, 1 << 20, &info) == len);
    CHECK(memcmp(out, au, len) == 0 && info.recovered == 0 && info.frame_type == 2 && info.capture_ns == 42);

    /* 1b: the same frame through sendmmsg (GSO off) arrives the same */
    CHECK(neuron_lumen_tx_set_gso(tx, 2) == NEURON_EINVAL);
    CHECK(neuron_lumen_tx_set_gso(tx, 0) == NEURON_OK);
    n = capture_frame(tx, rfd, au, len, 0, dg, 512, lens, &res);
    CHECK(n == (int)(res.data_shards + res.parity_shards));
    for (int i = 0; i < n; i++) neuron_lumen_rx_push(rx, dg + (size_t)i * 2048, lens[i], NULL, 0);
    CHECK(neuron_lumen_rx_next_frame(rx, out, 1 << 20, &info) == len && memcmp(out, au, len) == 0);
    CHECK(neuron_lumen_tx_set_gso(tx, 1) == NEURON_OK);
    n = capture_frame(tx, rfd, au, len, 0, dg, 512, lens, &res);
    for (int i = 0; i < n; i++) neuron_lumen_rx_push(rx, dg + (size_t)i * 2048, lens[i], NULL, 0);
    CHECK(neuron_lumen_rx_next_frame(rx, out, 1 << 20, &info) == len && memcmp(out, au, len) == 0);

    /* 2: replaying the same datagrams is dropped */
    neuron_lumen_rx_stats st;
    neuron_lumen_rx_stats_get(rx, &st);
    uint64_t before = st.replayed + st.shards_late, accepted = st.accepted;
    for (int i = 0; i < n; i++) CHECK(neuron_lumen_rx_push(rx, dg + (size_t)i * 2048, lens[i], NULL, 0) < 0);
    neuron_lumen_rx_stats_get(rx, &st);
    CHECK(st.replayed + st.shards_late == before + (uint64_t)n && st.accepted == accepted);
    CHECK(st.replayed >= res.data_shards);
    CHECK(neuron_lumen_rx_next_frame(rx, out, 1 << 20, &info) == 0);

    /* 3: losses up to the parity are recovered; frame with 20 % loss planned */
    n = capture_frame(tx, rfd, au, len, 200000, dg, 512, lens, &res);
    CHECK(n > 0);
    uint32_t dropped = 0;
    for (int i = 0; i < n; i++) {
        if (dropped < res.parity_shards && (i % 3 == 0)) { /* lose data shards first */
            dropped++;
            continue;
        }
        neuron_lumen_rx_push(rx, dg + (size_t)i * 2048, lens[i], NULL, 0);
    }
    CHECK(neuron_lumen_rx_next_frame(rx, out, 1 << 20, &info) == len);
    CHECK(memcmp(out, au, len) == 0 && info.recovered == 1);

    /* 4: a flipped byte (header or payload) fails authentication */
    n = capture_frame(tx, rfd, au, len, 0, dg, 512, lens, &res);
    neuron_lumen_rx_stats_get(rx, &st);
    before = st.bad_auth;
    dg[20] ^= 1;           /* frame bytes in the header of shard 0: bounds reject or auth fails */
    dg[2048 + 100] ^= 1;   /* payload of shard 1 */
    dg[2 * 2048 + 40] ^= 1; /* frame type */
    CHECK(neuron_lumen_rx_push(rx, dg + 2048, lens[1], NULL, 0) == NEURON_EAUTH);
    neuron_lumen_rx_stats_get(rx, &st);
    CHECK(st.bad_auth == before + 1);

    /* 5: hostile headers: lying lengths, huge shard counts, wrong session, truncated */
    uint8_t h[2048];
    memcpy(h, dg + 3 * 2048, lens[3]);
    h[26] = 0xff; h[27] = 0xff; /* k = 65535 */
    CHECK(neuron_lumen_rx_push(rx, h, lens[3], NULL, 0) == NEURON_EFORMAT);
    memcpy(h, dg + 3 * 2048, lens[3]);
    h[28] = 0xff; h[29] = 0xff; /* m = 65535 */
    CHECK(neuron_lumen_rx_push(rx, h, lens[3], NULL, 0) == NEURON_EFORMAT);
    memcpy(h, dg + 3 * 2048, lens[3]);
    h[20] = 0xff; h[21] = 0xff; h[22] = 0xff; h[23] = 0x7f; /* frame bytes 2 GiB */
    CHECK(neuron_lumen_rx_push(rx, h, lens[3], NULL, 0) == NEURON_EFORMAT);
    memcpy(h, dg + 3 * 2048, lens[3]);
    h[24] = 0xfe; h[25] = 0xff; /* shard index past k + m */
    CHECK(neuron_lumen_rx_push(rx, h, lens[3], NULL, 0) == NEURON_EFORMAT);
    memcpy(h, dg + 3 * 2048, lens[3]);
    h[30] = 0x40; h[31] = 0x00; /* shard bytes 64 */
    CHECK(neuron_lumen_rx_push(rx, h, lens[3], NULL, 0) == NEURON_EFORMAT);
    memcpy(h, dg + 3 * 2048, lens[3]);
    h[4] ^= 1; /* another session */
    CHECK(neuron_lumen_rx_push(rx, h, lens[3], NULL, 0) == NEURON_EFORMAT);
    CHECK(neuron_lumen_rx_push(rx, dg + 3 * 2048, 40, NULL, 0) == NEURON_EFORMAT);
    CHECK(neuron_lumen_rx_push(rx, dg + 3 * 2048, lens[3] - 1, NULL, 0) == NEURON_EFORMAT);
    CHECK(neuron_lumen_rx_push(rx, NULL, 0, NULL, 0) == NEURON_EFORMAT);

    /* 6: side planes round trip through the socket; replay refused */
    neuron_lumen_rx_config sc = {.keys = keys(7), .slots = 1, .ready_frames = 1};
    neuron_lumen_rx *srx = NULL;
    CHECK(neuron_lumen_rx_create(&sc, &srx) == NEURON_OK);
    uint8_t side[128], pl[64];
    int32_t sl = neuron_lumen_tx_seal_datagram(tx, 'I', (const uint8_t *)"keys!", 5, side, sizeof side);
    CHECK(sl == 37);
    CHECK(neuron_lumen_rx_push(srx, side, (uint32_t)sl, pl, sizeof pl) == ('I' << 16 | 5) && memcmp(pl, "keys!", 5) == 0);
    CHECK(neuron_lumen_rx_push(srx, side, (uint32_t)sl, pl, sizeof pl) == NEURON_EINVAL);
    CHECK(neuron_lumen_tx_send_datagram(tx, 'A', (const uint8_t *)"opus", 4) == 36);
    int got = 0;
    for (int spins = 0; spins < 1000 && !got; spins++) got = neuron_lumen_rx_recv(srx, rfd, 10, 64) > 0;
    int32_t r = neuron_lumen_rx_next_side(srx, pl, sizeof pl);
    CHECK(got && r == ('A' << 16 | 4) && memcmp(pl, "opus", 4) == 0);
    CHECK(neuron_lumen_tx_seal_datagram(tx, 'V', pl, 4, side, sizeof side) == NEURON_EINVAL);
    CHECK(neuron_lumen_tx_seal_datagram(tx, 'I', pl, 5000, side, sizeof side) == NEURON_EINVAL);

    /* 7: a stream over the socket with simulated 20 % loss: every frame recovered */
    neuron_lumen_rx_destroy(rx);
    CHECK(neuron_lumen_rx_create(&rc, &rx) == NEURON_OK);
    CHECK(neuron_lumen_rx_set_drop(rx, 200000, 1, 99) == NEURON_OK);
    uint32_t complete = 0;
    for (int fr = 0; fr < 30; fr++) {
        uint32_t flen = 2000 + rnd() % 60000;
        neuron_lumen_frame f = {.frame_type = 1, .loss_ppm = 200000, .burst = 1, .min_pct_x100 = 100, .max_pct_x100 = 5000};
        CHECK(neuron_lumen_tx_send_frame(tx, au, flen, &f, &res) == NEURON_OK);
        for (int spins = 0; spins < 50; spins++)
            if (neuron_lumen_rx_recv(rx, rfd, 5, 0) <= 0) break;
        int64_t got_len;
        while ((got_len = neuron_lumen_rx_next_frame(rx, out, 1 << 20, &info)) > 0) {
            CHECK(got_len == flen && memcmp(out, au, flen) == 0);
            complete++;
        }
    }
    neuron_lumen_rx_stats_get(rx, &st);
    CHECK(complete == 30);
    CHECK(st.dropped_sim > 0 && st.frames_recovered > 0);
    CHECK(neuron_lumen_rx_codec_bytes(rx) <= 4u * 8192u * S);

    /* 8: UDP GRO on the socket: GSO buffers arrive whole and are split by the segment size; the
     * same frames, a side datagram between them, and the counts match datagram for datagram */
    neuron_lumen_rx_destroy(rx);
    CHECK(neuron_lumen_rx_create(&rc, &rx) == NEURON_OK);
    CHECK(neuron_lumen_rx_set_gro(rx, rfd, 2) == NEURON_EINVAL);
    if (neuron_lumen_rx_set_gro(rx, rfd, 1) == NEURON_OK) {
        CHECK(neuron_lumen_tx_set_gso(tx, 1) == NEURON_OK);
        uint64_t sent = 0;
        complete = 0;
        for (int fr = 0; fr < 20; fr++) {
            uint32_t flen = 1000 + rnd() % (len - 1000);
            neuron_lumen_frame f = {.frame_type = 1, .loss_ppm = 10000, .burst = 1, .min_pct_x100 = 100, .max_pct_x100 = 5000};
            CHECK(neuron_lumen_tx_send_frame(tx, au, flen, &f, &res) == NEURON_OK);
            sent += res.data_shards + res.parity_shards;
            uint8_t side[5] = {9, 8, 7, 6, 5};
            CHECK(neuron_lumen_tx_send_datagram(tx, 'A', side, 5) == 37);
            sent++;
            for (int spins = 0; spins < 50; spins++)
                if (neuron_lumen_rx_recv(rx, rfd, 5, 0) <= 0) break;
            int64_t got_len;
            while ((got_len = neuron_lumen_rx_next_frame(rx, out, 1 << 20, &info)) > 0) {
                CHECK(got_len == flen && memcmp(out, au, flen) == 0);
                complete++;
            }
        }
        neuron_lumen_rx_stats_get(rx, &st);
        CHECK(complete == 20);
        CHECK(st.datagrams == sent && st.accepted == sent && st.bad_format == 0);
        uint8_t sd[64];
        CHECK(neuron_lumen_rx_next_side(rx, sd, sizeof sd) == ('A' << 16 | 5) && sd[0] == 9);
        CHECK(neuron_lumen_rx_set_gro(rx, rfd, 0) == NEURON_OK);
    }

    neuron_lumen_rx_destroy(srx);
    neuron_lumen_rx_destroy(rx);
    neuron_lumen_tx_destroy(tx);
    neuron_udp_close(sfd);
    neuron_udp_close(rfd);
    free(au);
    free(out);
    free(dg);
    return check_report("lumen");
}
