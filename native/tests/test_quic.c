/* lumen/1 QUIC control transport (lumen_quic.h) and frame pump (lumen.h) on loopback, under ASan/UBSan:
 * handshake, stream both ways, datagrams, junk packets, bad arguments, closes; pump direct and threaded sends. */
#include "../lumen.h"
#include "../lumen_quic.h"
#include "check.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = calloc(1, (size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    return b;
}

typedef struct seen {
    int open, closed, dgram;
    uint32_t conn, code;
    size_t stream_bytes;
    uint8_t last_dgram[8];
} seen;

/* Polls both endpoints for up to ms, accumulating what each saw. */
static void pump_events(neuron_quic *q, seen *s, int ms) {
    static uint8_t buf[1 << 16];
    for (int t = 0; t < ms; t++) {
        int32_t n = neuron_quic_poll(q, buf, sizeof buf, 1);
        for (int32_t off = 0; off + 16 <= n;) {
            neuron_quic_event h;
            memcpy(&h, buf + off, sizeof h);
            if (h.kind == NEURON_QUIC_EV_OPEN) {
                s->open++;
                s->conn = h.conn;
            } else if (h.kind == NEURON_QUIC_EV_STREAM) {
                s->stream_bytes += h.len;
            } else if (h.kind == NEURON_QUIC_EV_DATAGRAM) {
                s->dgram++;
                memcpy(s->last_dgram, buf + off + 16, h.len < 8 ? h.len : 8);
            } else if (h.kind == NEURON_QUIC_EV_CLOSED) {
                s->closed++;
                s->code = h.code;
            }
            off += 16 + (int32_t)h.len;
        }
    }
}

static int notified_count = 0;
static void on_notify(void) { __atomic_add_fetch(&notified_count, 1, __ATOMIC_SEQ_CST); }

static void test_quic(const char *cert, const char *key) {
    neuron_quic *srv = NULL, *cli = NULL;
    /* bad arguments: refused, nothing made */
    CHECK(neuron_quic_listen("not an address", 0, cert, key, 4, &srv) == NEURON_EINVAL && srv == NULL);
    CHECK(neuron_quic_listen("127.0.0.1", 0, "junk", key, 4, &srv) == NEURON_EINVAL && srv == NULL);
    CHECK(neuron_quic_listen("127.0.0.1", 0, cert, key, 0, &srv) == NEURON_EINVAL);
    CHECK(neuron_quic_connect("127.0.0.1", 0, &cli) == NEURON_EINVAL && cli == NULL);

    CHECK(neuron_quic_listen("127.0.0.1", 0, cert, key, 2, &srv) == NEURON_OK);
    neuron_quic_stats st;
    neuron_quic_stats_get(srv, &st);
    CHECK(st.port > 0);

    /* junk at the port: refused, no connection */
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)st.port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    uint8_t junk[1300];
    for (int i = 0; i < 20; i++) {
        for (size_t j = 0; j < sizeof junk; j++) junk[j] = (uint8_t)(rand() & 0xff);
        junk[0] = i & 1 ? 0xc0 : 0x40; /* long and short header forms */
        sendto(fd, junk, (size_t)(1 + rand() % (int)sizeof junk), 0, (struct sockaddr *)&a, sizeof a);
    }
    close(fd);

    CHECK(neuron_quic_connect("127.0.0.1", st.port, &cli) == NEURON_OK);
    seen cs = {0}, ss = {0};
    for (int i = 0; i < 200 && !(cs.open && ss.open); i++) {
        pump_events(cli, &cs, 5);
        pump_events(srv, &ss, 5);
    }
    CHECK(cs.open == 1 && ss.open == 1);
    neuron_quic_stats_get(srv, &st);
    CHECK(st.refused >= 1 && st.conns == 1);

    /* stream both ways, datagrams both ways */
    static uint8_t big[200000];
    for (size_t i = 0; i < sizeof big; i++) big[i] = (uint8_t)i;
    CHECK(neuron_quic_send(cli, 1, NEURON_QUIC_SEND_STREAM, big, sizeof big) == NEURON_OK);
    uint8_t d[4] = {'I', 1, 2, 3};
    CHECK(neuron_quic_send(cli, 1, NEURON_QUIC_SEND_DATAGRAM, d, sizeof d) == NEURON_OK);
    CHECK(neuron_quic_send(cli, 1, NEURON_QUIC_SEND_DATAGRAM, big, NEURON_QUIC_MAX_DATAGRAM + 1) == NEURON_EINVAL);
    CHECK(neuron_quic_send(cli, 1, 9, d, 1) == NEURON_EINVAL);
    CHECK(neuron_quic_send(cli, 2, NEURON_QUIC_SEND_STREAM, d, 1) == NEURON_EINVAL);
    for (int i = 0; i < 400 && !(ss.stream_bytes >= sizeof big && ss.dgram); i++) {
        pump_events(cli, &cs, 2);
        pump_events(srv, &ss, 2);
    }
    CHECK(ss.stream_bytes == sizeof big);
    CHECK(ss.dgram == 1 && ss.last_dgram[0] == 'I');
    uint8_t r[2] = {'A', 9};
    CHECK(neuron_quic_send(srv, ss.conn, NEURON_QUIC_SEND_STREAM, big, 1000) == NEURON_OK);
    CHECK(neuron_quic_send(srv, ss.conn, NEURON_QUIC_SEND_DATAGRAM, r, 2) == NEURON_OK);
    for (int i = 0; i < 200 && !(cs.stream_bytes >= 1000 && cs.dgram); i++) {
        pump_events(cli, &cs, 2);
        pump_events(srv, &ss, 2);
    }
    CHECK(cs.stream_bytes == 1000 && cs.dgram == 1 && cs.last_dgram[0] == 'A');

    /* the thread signals once events wait, and again only after they were all taken */
    CHECK(neuron_quic_set_notify(NULL, on_notify) == NEURON_EINVAL);
    CHECK(neuron_quic_set_notify(cli, on_notify) == NEURON_OK);
    CHECK(neuron_quic_send(srv, ss.conn, NEURON_QUIC_SEND_DATAGRAM, r, 2) == NEURON_OK);
    CHECK(neuron_quic_send(srv, ss.conn, NEURON_QUIC_SEND_DATAGRAM, r, 2) == NEURON_OK);
    for (int i = 0; i < 500 && __atomic_load_n(&notified_count, __ATOMIC_SEQ_CST) == 0; i++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    {
        struct timespec ts = {0, 20000000};
        nanosleep(&ts, NULL);
    }
    CHECK(__atomic_load_n(&notified_count, __ATOMIC_SEQ_CST) == 1); /* two datagrams, one signal */
    pump_events(cli, &cs, 2);
    CHECK(cs.dgram == 3);
    CHECK(neuron_quic_send(srv, ss.conn, NEURON_QUIC_SEND_DATAGRAM, r, 2) == NEURON_OK);
    for (int i = 0; i < 500 && __atomic_load_n(&notified_count, __ATOMIC_SEQ_CST) == 1; i++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    CHECK(__atomic_load_n(&notified_count, __ATOMIC_SEQ_CST) == 2);
    pump_events(cli, &cs, 2);
    CHECK(cs.dgram == 4);
    CHECK(neuron_quic_set_notify(cli, NULL) == NEURON_OK);

    /* poll into a buffer too small for the next event: ERANGE, the event stays */
    CHECK(neuron_quic_send(srv, ss.conn, NEURON_QUIC_SEND_DATAGRAM, r, 2) == NEURON_OK);
    uint8_t tiny[8];
    int32_t pr = 0;
    for (int i = 0; i < 200 && pr == 0; i++) pr = neuron_quic_poll(cli, tiny, sizeof tiny, 5);
    CHECK(pr == NEURON_ERANGE);
    pump_events(cli, &cs, 5);
    CHECK(cs.dgram == 5);

    /* the host closes with an application code: the client sees CLOSED with it */
    CHECK(neuron_quic_close(srv, ss.conn, 7) == NEURON_OK);
    CHECK(neuron_quic_close(srv, 999, 0) == NEURON_EINVAL);
    for (int i = 0; i < 200 && !cs.closed; i++) {
        pump_events(cli, &cs, 2);
        pump_events(srv, &ss, 2);
    }
    CHECK(cs.closed == 1 && cs.code == 7);
    CHECK(ss.closed == 1);
    CHECK(neuron_quic_send(cli, 1, NEURON_QUIC_SEND_STREAM, d, 1) == NEURON_EINVAL);
    neuron_quic_destroy(cli);

    /* a second client, destroyed without a close: the host sees it go */
    cli = NULL;
    CHECK(neuron_quic_connect("127.0.0.1", st.port, &cli) == NEURON_OK);
    seen c2 = {0}, s2 = {0};
    for (int i = 0; i < 200 && !(c2.open && s2.open); i++) {
        pump_events(cli, &c2, 5);
        pump_events(srv, &s2, 5);
    }
    CHECK(c2.open == 1 && s2.open == 1);
    neuron_quic_destroy(cli);
    for (int i = 0; i < 200 && !s2.closed; i++) pump_events(srv, &s2, 5);
    CHECK(s2.closed == 1);
    neuron_quic_destroy(srv);
}

/* A half-open connection (an Initial whose sender never answers) holds one of max_conns slots
 * only until the handshake timeout; meanwhile a further client is not served. */
static void test_half_open(const char *cert, const char *key) {
    /* capture a real client's Initial: point it at a UDP socket of ours */
    int trap = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in ta = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &ta.sin_addr);
    CHECK(bind(trap, (struct sockaddr *)&ta, sizeof ta) == 0);
    socklen_t tl = sizeof ta;
    getsockname(trap, (struct sockaddr *)&ta, &tl);
    neuron_quic *bait = NULL;
    CHECK(neuron_quic_connect("127.0.0.1", ntohs(ta.sin_port), &bait) == NEURON_OK);
    static uint8_t initial[2048];
    struct timeval tv = {.tv_sec = 2};
    setsockopt(trap, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ssize_t il = recv(trap, initial, sizeof initial, 0);
    CHECK(il >= 1200);
    neuron_quic_destroy(bait);

    neuron_quic *srv = NULL;
    CHECK(neuron_quic_listen("127.0.0.1", 0, cert, key, 1, &srv) == NEURON_OK);
    neuron_quic_stats st;
    neuron_quic_stats_get(srv, &st);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)st.port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    /* the Initial replayed from the trap socket: the host answers into the void */
    CHECK(sendto(trap, initial, (size_t)il, 0, (struct sockaddr *)&sa, sizeof sa) == il);
    seen ss = {0};
    pump_events(srv, &ss, 50);
    neuron_quic_stats_get(srv, &st);
    CHECK(st.conns == 1 && ss.open == 0);
    /* the one slot is taken: a real client is not served while it is */
    neuron_quic *cli = NULL;
    CHECK(neuron_quic_connect("127.0.0.1", st.port, &cli) == NEURON_OK);
    seen cs = {0};
    pump_events(cli, &cs, 300);
    pump_events(srv, &ss, 1);
    CHECK(cs.open == 0 && ss.open == 0);
    neuron_quic_stats_get(srv, &st);
    CHECK(st.refused >= 1);
    neuron_quic_destroy(cli);
    /* after the handshake timeout the slot is free: a new client connects */
    for (int i = 0; i < 80; i++) {
        neuron_quic_stats_get(srv, &st);
        if (st.conns == 0) break;
        pump_events(srv, &ss, 100);
    }
    CHECK(st.conns == 0 && ss.closed == 0); /* never opened: no event for the caller */
    cli = NULL;
    CHECK(neuron_quic_connect("127.0.0.1", st.port, &cli) == NEURON_OK);
    seen c2 = {0};
    for (int i = 0; i < 200 && !(c2.open && ss.open); i++) {
        pump_events(cli, &c2, 5);
        pump_events(srv, &ss, 5);
    }
    CHECK(c2.open == 1 && ss.open == 1);
    neuron_quic_destroy(cli);
    neuron_quic_destroy(srv);
    close(trap);
}

static void test_pump(void) {
    neuron_udp_peer peer;
    int32_t rfd = -1, sfd = -1;
    CHECK(neuron_udp_open("127.0.0.1", 0, 8 << 20, 8 << 20, &rfd) > 0);
    CHECK(neuron_udp_open("127.0.0.1", 0, 8 << 20, 8 << 20, &sfd) > 0);
    struct sockaddr_in la;
    socklen_t ll = sizeof la;
    getsockname(rfd, (struct sockaddr *)&la, &ll);
    memset(&peer, 0, sizeof peer);
    peer.family = 4;
    peer.port = ntohs(la.sin_port);
    memcpy(peer.addr, &la.sin_addr, 4);
    neuron_lumen_tx_config tc = {.fd = sfd, .shard_bytes = 1344, .max_frame_bytes = 1 << 20};
    for (int i = 0; i < 16; i++) tc.keys.key[i] = (uint8_t)i;
    tc.keys.session_id = 3;
    neuron_lumen_tx *tx = NULL;
    CHECK(neuron_lumen_tx_create(&tc, &tx) == NEURON_OK);
    CHECK(neuron_lumen_tx_set_peer(tx, &peer) == NEURON_OK);
    neuron_lumen_pump *p = NULL;
    CHECK(neuron_lumen_pump_start(NULL, 2, 1000, &p) == NEURON_EINVAL);
    CHECK(neuron_lumen_pump_start(tx, 0, 1000, &p) == NEURON_EINVAL);
    CHECK(neuron_lumen_pump_start(tx, 2, 300000, &p) == NEURON_OK);
    static uint8_t au[300001];
    neuron_lumen_frame f = {.capture_ns = 1, .frame_type = 2, .burst = 1, .min_pct_x100 = 1000};
    CHECK(neuron_lumen_pump_submit(p, au, 5000, &f) == 1); /* direct */
    f.pace_ns = 20000000;
    CHECK(neuron_lumen_pump_submit(p, au, 300000, &f) == 2); /* to the thread */
    CHECK(neuron_lumen_pump_submit(p, au, 300001, &f) == NEURON_EINVAL);
    uint8_t side[3] = {1, 2, 3};
    CHECK(neuron_lumen_tx_send_datagram(tx, 'A', side, 3) > 0); /* while the thread paces */
    neuron_lumen_pump_result res[4];
    uint32_t got = 0;
    for (int i = 0; i < 500 && got < 2; i++) {
        got += neuron_lumen_pump_results(p, res + got, 4 - got);
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    CHECK(got == 2 && res[0].serial == 1 && res[1].serial == 2 && res[0].status == 0 && res[1].status == 0);
    CHECK(res[1].tx.data_shards == 224 && res[1].tx.done_ns > res[1].tx.fec_ns);
    neuron_lumen_pump_stats ps;
    neuron_lumen_pump_stats_get(p, &ps);
    CHECK(ps.frames_sent == 2 && ps.direct == 1 && ps.queued == 1 && ps.pending == 0);
    /* stopping with a paced frame in flight waits for it */
    CHECK(neuron_lumen_pump_submit(p, au, 300000, &f) == 3);
    neuron_lumen_pump_stop(p);
    neuron_lumen_tx_destroy(tx);
    neuron_udp_close(rfd);
    neuron_udp_close(sfd);
}

int main(void) {
    char dir[] = "/tmp/neuron-quic-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char cmd[512], certp[128], keyp[128];
    snprintf(certp, sizeof certp, "%s/c.pem", dir);
    snprintf(keyp, sizeof keyp, "%s/k.pem", dir);
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey rsa:2048 -nodes -keyout %s -out %s -days 2 -subj /CN=test >/dev/null 2>&1", keyp,
             certp);
    CHECK(system(cmd) == 0);
    char *cert = slurp(certp), *key = slurp(keyp);
    CHECK(cert != NULL && key != NULL);
    if (cert && key) {
        test_quic(cert, key);
        test_half_open(cert, key);
    }
    test_pump();
    free(cert);
    free(key);
    unlink(certp);
    unlink(keyp);
    rmdir(dir);
    return check_report("quic+pump");
}
