/* lumen/1 control transport: QUIC through ngtcp2 + GnuTLS on one thread per endpoint (../lumen_quic.h). */
#include "../lumen_quic.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <ngtcp2/ngtcp2_crypto_gnutls.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/*
 * ngtcp2 0.x (Debian 12: 0.12) and 1.x (Arch) differ in the connection-close error API (renamed
 * to ngtcp2_ccerr in 1.0) and in the server's original_dcid_present flag; the rest used here is
 * the same. Built and tested against 0.12 here; compiled (not linked) against 1.25's headers.
 */
#include <ngtcp2/version.h>
#if NGTCP2_VERSION_NUM >= 0x010000
typedef ngtcp2_ccerr lq_ccerr;
#define lq_ccerr_default ngtcp2_ccerr_default
#define lq_ccerr_set_liberr(E, L) ngtcp2_ccerr_set_liberr((E), (L), NULL, 0)
#define lq_ccerr_set_app(E, C) ngtcp2_ccerr_set_application_error((E), (C), NULL, 0)
#define LQ_CCERR_APPLICATION NGTCP2_CCERR_TYPE_APPLICATION
static void lq_peer_ccerr(ngtcp2_conn *conn, lq_ccerr *out) { *out = *ngtcp2_conn_get_ccerr(conn); }
#define LQ_SET_ORIGINAL_DCID_PRESENT(P) ((P)->original_dcid_present = 1)
#else
typedef ngtcp2_connection_close_error lq_ccerr;
#define lq_ccerr_default ngtcp2_connection_close_error_default
#define lq_ccerr_set_liberr(E, L) ngtcp2_connection_close_error_set_transport_error_liberr((E), (L), NULL, 0)
#define lq_ccerr_set_app(E, C) ngtcp2_connection_close_error_set_application_error((E), (C), NULL, 0)
#define LQ_CCERR_APPLICATION NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_APPLICATION
static void lq_peer_ccerr(ngtcp2_conn *conn, lq_ccerr *out) { ngtcp2_conn_get_connection_close_error(conn, out); }
#define LQ_SET_ORIGINAL_DCID_PRESENT(P) ((void)(P))
#endif

#define PKT_CAP 1452u
#define ALPN "lumen/1"
#define PRIORITY "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:+CHACHA20-POLY1305"

typedef struct qbuf {
    uint8_t *p;
    size_t len, cap;
} qbuf;

typedef struct qdgram {
    uint32_t len;
    uint8_t data[NEURON_QUIC_MAX_DATAGRAM];
} qdgram;

typedef struct qconn {
    struct neuron_quic *q;
    uint32_t id;
    ngtcp2_conn *conn;
    gnutls_session_t tls;
    ngtcp2_crypto_conn_ref ref;
    struct sockaddr_storage remote;
    socklen_t remote_len;
    int64_t sid;       /* the control stream (-1 until opened / first seen) */
    qbuf out;          /* control-stream bytes not yet acknowledged, from stream offset out_base */
    uint64_t out_base; /* stream offset of out.p[0] */
    uint64_t out_sent; /* stream offset written up to */
    qdgram *dg;        /* NEURON_QUIC_DGRAM_QUEUE */
    uint32_t dg_head, dg_count;
    int opened, closing, dead, overflow;
    uint32_t close_code;
    uint64_t close_due; /* closing: CONNECTION_CLOSE once the stream is acknowledged, or at this time */
} qconn;

struct neuron_quic {
    int server;
    int fd, wake;
    gnutls_certificate_credentials_t cred;
    gnutls_priority_t prio;
    pthread_t thread;
    int have_thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    qconn *conns[NEURON_QUIC_MAX_CONNS];
    uint32_t nconns, max_conns, next_id;
    qbuf ev;
    size_t ev_head;
    neuron_quic_stats st;
    struct sockaddr_storage local;
    socklen_t local_len;
    void (*notify)(void); /* called (thread, no lock held) once events wait and the caller was told none yet */
    int notified;
};

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int qbuf_append(qbuf *b, const void *d, size_t n, size_t limit) {
    if (b->len + n > limit) return -1;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n) cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (p == NULL) return -1;
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->len, d, n);
    b->len += n;
    return 0;
}

/* Queues an event for the caller (the thread holds q->mu). -1 when the queue is full. */
static int push_event(struct neuron_quic *q, uint32_t kind, uint32_t conn, uint32_t code, const void *data, size_t len) {
    if (q->ev_head && q->ev_head == q->ev.len) q->ev_head = q->ev.len = 0;
    if (q->ev_head > q->ev.len / 2) {
        memmove(q->ev.p, q->ev.p + q->ev_head, q->ev.len - q->ev_head);
        q->ev.len -= q->ev_head;
        q->ev_head = 0;
    }
    neuron_quic_event h = {.kind = kind, .conn = conn, .len = (uint32_t)len, .code = code};
    size_t pending = q->ev.len - q->ev_head;
    if (pending + sizeof h + len > NEURON_QUIC_EVENT_QUEUE) return -1;
    if (qbuf_append(&q->ev, &h, sizeof h, SIZE_MAX) != 0 || qbuf_append(&q->ev, data, len, SIZE_MAX) != 0) return -1;
    pthread_cond_broadcast(&q->cv);
    return 0;
}

/* Tells the caller (once per batch of events) that it has events to take: the thread calls it at
 * the end of a pass, outside the lock. */
static void (*take_notify(struct neuron_quic *q))(void) {
    if (q->notify == NULL || q->notified || q->ev.len == q->ev_head) return NULL;
    q->notified = 1;
    return q->notify;
}

static void rand_cb(uint8_t *dest, size_t len, const ngtcp2_rand_ctx *ctx) {
    (void)ctx;
    gnutls_rnd(GNUTLS_RND_RANDOM, dest, len);
}

static int new_cid_cb(ngtcp2_conn *conn, ngtcp2_cid *cid, uint8_t *token, size_t cidlen, void *user) {
    (void)conn;
    (void)user;
    if (gnutls_rnd(GNUTLS_RND_RANDOM, cid->data, cidlen) != 0) return NGTCP2_ERR_CALLBACK_FAILURE;
    cid->datalen = cidlen;
    if (gnutls_rnd(GNUTLS_RND_RANDOM, token, NGTCP2_STATELESS_RESET_TOKENLEN) != 0) return NGTCP2_ERR_CALLBACK_FAILURE;
    return 0;
}

static int recv_stream_cb(ngtcp2_conn *conn, uint32_t flags, int64_t sid, uint64_t offset, const uint8_t *data,
                          size_t len, void *user, void *stream_user) {
    (void)flags;
    (void)offset;
    (void)stream_user;
    qconn *c = user;
    /* the control stream: the client's first bidirectional stream; anything else is ignored */
    if (c->sid < 0 && c->q->server && (sid & 3) == 0) c->sid = sid;
    if (sid == c->sid && len && c->opened) {
        if (push_event(c->q, NEURON_QUIC_EV_STREAM, c->id, 0, data, len) != 0) {
            c->overflow = 1;
            return NGTCP2_ERR_CALLBACK_FAILURE;
        }
    }
    ngtcp2_conn_extend_max_stream_offset(conn, sid, len);
    ngtcp2_conn_extend_max_offset(conn, len);
    return 0;
}

static int recv_datagram_cb(ngtcp2_conn *conn, uint32_t flags, const uint8_t *data, size_t len, void *user) {
    (void)conn;
    (void)flags;
    qconn *c = user;
    if (!c->opened || len == 0) return 0;
    if (push_event(c->q, NEURON_QUIC_EV_DATAGRAM, c->id, 0, data, len) != 0) {
        c->overflow = 1;
        return NGTCP2_ERR_CALLBACK_FAILURE;
    }
    return 0;
}

static int acked_cb(ngtcp2_conn *conn, int64_t sid, uint64_t offset, uint64_t len, void *user, void *stream_user) {
    (void)conn;
    (void)stream_user;
    qconn *c = user;
    if (sid != c->sid) return 0;
    uint64_t end = offset + len;
    if (end > c->out_base) {
        size_t drop = (size_t)(end - c->out_base);
        if (drop > c->out.len) drop = c->out.len;
        memmove(c->out.p, c->out.p + drop, c->out.len - drop);
        c->out.len -= drop;
        c->out_base += drop;
    }
    return 0;
}

static int handshake_done_cb(ngtcp2_conn *conn, void *user) {
    qconn *c = user;
    const uint8_t *der = NULL;
    size_t der_len = 0;
    char addr[INET6_ADDRSTRLEN] = "";
    if (c->q->server) { /* the host learns the peer's address (text) */
        const void *a = c->remote.ss_family == AF_INET6 ? (const void *)&((struct sockaddr_in6 *)&c->remote)->sin6_addr
                                                          : (const void *)&((struct sockaddr_in *)&c->remote)->sin_addr;
        if (inet_ntop(c->remote.ss_family, a, addr, sizeof addr) == NULL) addr[0] = 0;
        der = (const uint8_t *)addr;
        der_len = strlen(addr);
    } else {
        int64_t sid = -1;
        if (ngtcp2_conn_open_bidi_stream(conn, &sid, NULL) != 0) return NGTCP2_ERR_CALLBACK_FAILURE;
        c->sid = sid;
        unsigned n = 0;
        const gnutls_datum_t *certs = gnutls_certificate_get_peers(c->tls, &n);
        if (certs == NULL || n == 0) return NGTCP2_ERR_CALLBACK_FAILURE;
        der = certs[0].data;
        der_len = certs[0].size;
    }
    c->opened = 1;
    c->q->st.conns_opened++;
    if (push_event(c->q, NEURON_QUIC_EV_OPEN, c->id, 0, der, der_len) != 0) return NGTCP2_ERR_CALLBACK_FAILURE;
    return 0;
}

static ngtcp2_conn *get_conn(ngtcp2_crypto_conn_ref *ref) { return ((qconn *)ref->user_data)->conn; }

static void callbacks(ngtcp2_callbacks *cb, int server) {
    memset(cb, 0, sizeof *cb);
    if (server) {
        cb->recv_client_initial = ngtcp2_crypto_recv_client_initial_cb;
    } else {
        cb->client_initial = ngtcp2_crypto_client_initial_cb;
        cb->recv_retry = ngtcp2_crypto_recv_retry_cb;
    }
    cb->recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb;
    cb->encrypt = ngtcp2_crypto_encrypt_cb;
    cb->decrypt = ngtcp2_crypto_decrypt_cb;
    cb->hp_mask = ngtcp2_crypto_hp_mask_cb;
    cb->update_key = ngtcp2_crypto_update_key_cb;
    cb->delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb;
    cb->delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb;
    cb->get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb;
    cb->version_negotiation = ngtcp2_crypto_version_negotiation_cb;
    cb->rand = rand_cb;
    cb->get_new_connection_id = new_cid_cb;
    cb->recv_stream_data = recv_stream_cb;
    cb->recv_datagram = recv_datagram_cb;
    cb->acked_stream_data_offset = acked_cb;
    cb->handshake_completed = handshake_done_cb;
}

static void params_for(ngtcp2_transport_params *p, int server) {
    ngtcp2_transport_params_default(p);
    p->initial_max_stream_data_bidi_local = 1u << 20;
    p->initial_max_stream_data_bidi_remote = 1u << 20;
    p->initial_max_data = 4u << 20;
    p->initial_max_streams_bidi = server ? 1 : 0;
    p->initial_max_streams_uni = 0;
    p->max_idle_timeout = (uint64_t)NEURON_QUIC_IDLE_MS * 1000000ull;
    p->max_datagram_frame_size = 65535;
}

static void conn_free(qconn *c) {
    if (c == NULL) return;
    if (c->conn) ngtcp2_conn_del(c->conn);
    if (c->tls) gnutls_deinit(c->tls);
    free(c->out.p);
    free(c->dg);
    free(c);
}

static int tls_setup(struct neuron_quic *q, qconn *c) {
    unsigned flags = (q->server ? GNUTLS_SERVER : GNUTLS_CLIENT) | GNUTLS_ENABLE_EARLY_DATA | GNUTLS_NO_END_OF_EARLY_DATA;
    if (gnutls_init(&c->tls, flags) != 0) return -1;
    if (gnutls_priority_set(c->tls, q->prio) != 0) return -1;
    if (gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE, q->cred) != 0) return -1;
    int rc = q->server ? ngtcp2_crypto_gnutls_configure_server_session(c->tls)
                       : ngtcp2_crypto_gnutls_configure_client_session(c->tls);
    if (rc != 0) return -1;
    c->ref.get_conn = get_conn;
    c->ref.user_data = c;
    gnutls_session_set_ptr(c->tls, &c->ref);
    gnutls_datum_t alpn = {.data = (unsigned char *)ALPN, .size = sizeof ALPN - 1};
    if (gnutls_alpn_set_protocols(c->tls, &alpn, 1, GNUTLS_ALPN_MANDATORY) != 0) return -1;
    ngtcp2_conn_set_tls_native_handle(c->conn, c->tls);
    /* a streaming session's control stream may stay silent for minutes: PINGs keep it under the idle timeout */
    ngtcp2_conn_set_keep_alive_timeout(c->conn, (uint64_t)NEURON_QUIC_IDLE_MS / 3 * 1000000ull);
    return 0;
}

static qconn *conn_alloc(struct neuron_quic *q, const struct sockaddr_storage *remote, socklen_t rlen) {
    qconn *c = calloc(1, sizeof *c);
    if (c == NULL) return NULL;
    c->dg = malloc((size_t)NEURON_QUIC_DGRAM_QUEUE * sizeof *c->dg);
    if (c->dg == NULL) {
        free(c);
        return NULL;
    }
    c->q = q;
    c->sid = -1;
    c->remote = *remote;
    c->remote_len = rlen;
    c->id = ++q->next_id;
    return c;
}

static void path_of(struct neuron_quic *q, qconn *c, ngtcp2_path *path) {
    path->local.addr = (ngtcp2_sockaddr *)&q->local;
    path->local.addrlen = q->local_len;
    path->remote.addr = (ngtcp2_sockaddr *)&c->remote;
    path->remote.addrlen = c->remote_len;
    path->user_data = NULL;
}

static void settings_for(ngtcp2_settings *s) {
    ngtcp2_settings_default(s);
    s->initial_ts = now_ns();
    /* a connection that has not finished its handshake in this time gives its slot back (a
     * flood of Initials from made-up addresses holds slots only this long) */
    s->handshake_timeout = (uint64_t)NEURON_QUIC_HANDSHAKE_MS * 1000000ull;
}

static qconn *server_accept(struct neuron_quic *q, const uint8_t *pkt, size_t len, const struct sockaddr_storage *from,
                            socklen_t flen) {
    ngtcp2_pkt_hd hd;
    if (ngtcp2_accept(&hd, pkt, len) != 0 || q->nconns >= q->max_conns) {
        q->st.refused++;
        return NULL;
    }
    qconn *c = conn_alloc(q, from, flen);
    if (c == NULL) return NULL;
    ngtcp2_cid scid;
    scid.datalen = 16;
    gnutls_rnd(GNUTLS_RND_RANDOM, scid.data, scid.datalen);
    ngtcp2_callbacks cb;
    callbacks(&cb, 1);
    ngtcp2_settings s;
    settings_for(&s);
    ngtcp2_transport_params p;
    params_for(&p, 1);
    p.original_dcid = hd.dcid;
    LQ_SET_ORIGINAL_DCID_PRESENT(&p);
    p.stateless_reset_token_present = 1;
    gnutls_rnd(GNUTLS_RND_RANDOM, p.stateless_reset_token, sizeof p.stateless_reset_token);
    ngtcp2_path path;
    path_of(q, c, &path);
    if (ngtcp2_conn_server_new(&c->conn, &hd.scid, &scid, &path, hd.version, &cb, &s, &p, NULL, c) != 0 ||
        tls_setup(q, c) != 0) {
        q->next_id--;
        conn_free(c);
        q->st.refused++;
        return NULL;
    }
    q->conns[q->nconns++] = c;
    q->st.conns = q->nconns;
    return c;
}

static void send_pkt(struct neuron_quic *q, qconn *c, const uint8_t *buf, size_t n) {
    ssize_t r;
    do r = sendto(q->fd, buf, n, 0, (struct sockaddr *)&c->remote, c->remote_len);
    while (r < 0 && errno == EINTR);
    if (r >= 0) q->st.packets_out++;
}

/* Ends a connection: the CLOSED event (if the caller saw it open or is a client) and the free at the loop's end. */
static void conn_kill(struct neuron_quic *q, qconn *c, const char *reason, uint32_t code) {
    if (c->dead) return;
    c->dead = 1;
    q->st.conns_closed++;
    if (c->opened || !q->server) push_event(q, NEURON_QUIC_EV_CLOSED, c->id, code, reason, strlen(reason));
}

static void write_close(struct neuron_quic *q, qconn *c, lq_ccerr *ccerr) {
    uint8_t buf[PKT_CAP];
    ngtcp2_path_storage ps;
    ngtcp2_path_storage_zero(&ps);
    ngtcp2_pkt_info pi;
    ngtcp2_ssize n = ngtcp2_conn_write_connection_close(c->conn, &ps.path, &pi, buf, sizeof buf, ccerr, now_ns());
    if (n > 0) send_pkt(q, c, buf, (size_t)n);
}

static void close_with_liberr(struct neuron_quic *q, qconn *c, int liberr, const char *why) {
    lq_ccerr ccerr;
    lq_ccerr_default(&ccerr);
    lq_ccerr_set_liberr(&ccerr, liberr);
    write_close(q, c, &ccerr);
    char reason[128];
    snprintf(reason, sizeof reason, "%s: %s", why, ngtcp2_strerror(liberr));
    conn_kill(q, c, c->overflow ? "the caller did not take events in time" : reason, 0);
}

static void flush(struct neuron_quic *q, qconn *c) {
    if (c->dead) return;
    const uint64_t ts = now_ns();
    uint8_t buf[PKT_CAP];
    for (int i = 0; i < 256; i++) {
        ngtcp2_path_storage ps;
        ngtcp2_path_storage_zero(&ps);
        ngtcp2_pkt_info pi;
        ngtcp2_ssize n;
        const uint64_t unsent = c->out_base + c->out.len - c->out_sent;
        if (c->opened && c->dg_count) {
            qdgram *d = &c->dg[c->dg_head];
            int accepted = 0;
            ngtcp2_vec v = {.base = d->data, .len = d->len};
            n = ngtcp2_conn_writev_datagram(c->conn, &ps.path, &pi, buf, sizeof buf, &accepted,
                                            NGTCP2_WRITE_DATAGRAM_FLAG_NONE, 0, &v, 1, ts);
            if (accepted || n == NGTCP2_ERR_INVALID_ARGUMENT || n == NGTCP2_ERR_INVALID_STATE) {
                if (!accepted) q->st.dgrams_dropped++;
                c->dg_head = (c->dg_head + 1) % NEURON_QUIC_DGRAM_QUEUE;
                c->dg_count--;
                if (!accepted) continue;
            }
        } else if (c->opened && c->sid >= 0 && unsent) {
            ngtcp2_ssize nd = -1;
            ngtcp2_vec v = {.base = c->out.p + (c->out_sent - c->out_base), .len = (size_t)unsent};
            n = ngtcp2_conn_writev_stream(c->conn, &ps.path, &pi, buf, sizeof buf, &nd, NGTCP2_WRITE_STREAM_FLAG_NONE,
                                          c->sid, &v, 1, ts);
            if (n == NGTCP2_ERR_STREAM_DATA_BLOCKED || n == NGTCP2_ERR_STREAM_SHUT_WR || n == NGTCP2_ERR_STREAM_NOT_FOUND)
                n = ngtcp2_conn_write_pkt(c->conn, &ps.path, &pi, buf, sizeof buf, ts);
            else if (nd > 0)
                c->out_sent += (uint64_t)nd;
        } else {
            n = ngtcp2_conn_write_pkt(c->conn, &ps.path, &pi, buf, sizeof buf, ts);
        }
        if (n < 0) {
            close_with_liberr(q, c, (int)n, "write");
            return;
        }
        if (n == 0) break;
        send_pkt(q, c, buf, (size_t)n);
    }
    /* the peer should have the last message (an error, a bye) before the close: wait for its
     * acknowledgement, a bounded while */
    if (c->closing && (c->out.len == 0 || now_ns() >= c->close_due)) {
        lq_ccerr ccerr;
        lq_ccerr_default(&ccerr);
        lq_ccerr_set_app(&ccerr, c->close_code);
        write_close(q, c, &ccerr);
        conn_kill(q, c, "closed", c->close_code);
    }
}

static qconn *conn_by_addr(struct neuron_quic *q, const struct sockaddr_storage *a, socklen_t len) {
    for (uint32_t i = 0; i < q->nconns; i++) {
        qconn *c = q->conns[i];
        if (!c->dead && c->remote_len == len && memcmp(&c->remote, a, len) == 0) return c;
    }
    return NULL;
}

static void on_packet(struct neuron_quic *q, const uint8_t *pkt, size_t len, const struct sockaddr_storage *from,
                      socklen_t flen) {
    qconn *c = conn_by_addr(q, from, flen);
    if (c == NULL && q->server) c = server_accept(q, pkt, len, from, flen);
    if (c == NULL) return;
    ngtcp2_path path;
    path_of(q, c, &path);
    ngtcp2_pkt_info pi = {0};
    int rv = ngtcp2_conn_read_pkt(c->conn, &path, &pi, pkt, len, now_ns());
    if (rv == 0) return;
    if (rv == NGTCP2_ERR_DRAINING || rv == NGTCP2_ERR_CLOSING) {
        lq_ccerr cc;
        lq_peer_ccerr(c->conn, &cc);
        uint32_t code = cc.type == LQ_CCERR_APPLICATION ? (uint32_t)cc.error_code : 0;
        conn_kill(q, c, "closed by the peer", code);
        return;
    }
    if (rv == NGTCP2_ERR_DROP_CONN) {
        conn_kill(q, c, "dropped", 0);
        return;
    }
    close_with_liberr(q, c, rv, "read");
}

static void reap(struct neuron_quic *q) {
    uint32_t j = 0;
    for (uint32_t i = 0; i < q->nconns; i++) {
        if (q->conns[i]->dead) conn_free(q->conns[i]);
        else q->conns[j++] = q->conns[i];
    }
    q->nconns = j;
    q->st.conns = j;
}

static void *quic_main(void *arg) {
    struct neuron_quic *q = arg;
    uint8_t pkt[65536];
    pthread_mutex_lock(&q->mu);
    while (!q->stop) {
        uint64_t ts = now_ns(), due = ts + 100000000ull;
        for (uint32_t i = 0; i < q->nconns; i++) {
            uint64_t e = ngtcp2_conn_get_expiry(q->conns[i]->conn);
            if (e < due) due = e;
        }
        int timeout = due <= ts ? 0 : (int)((due - ts + 999999) / 1000000);
        pthread_mutex_unlock(&q->mu);
        struct pollfd pfd[2] = {{.fd = q->fd, .events = POLLIN}, {.fd = q->wake, .events = POLLIN}};
        poll(pfd, 2, timeout);
        pthread_mutex_lock(&q->mu);
        if (q->stop) break;
        if (pfd[1].revents & POLLIN) {
            uint64_t v;
            if (read(q->wake, &v, sizeof v) < 0) { /* nothing to do: the counter is drained or was empty */
            }
        }
        for (int i = 0; i < 256; i++) {
            struct sockaddr_storage from;
            socklen_t flen = sizeof from;
            ssize_t n = recvfrom(q->fd, pkt, sizeof pkt, MSG_DONTWAIT, (struct sockaddr *)&from, &flen);
            if (n < 0) {
                if (errno == EINTR || errno == ECONNREFUSED) continue;
                break;
            }
            q->st.packets_in++;
            on_packet(q, pkt, (size_t)n, &from, flen);
        }
        ts = now_ns();
        for (uint32_t i = 0; i < q->nconns; i++) {
            qconn *c = q->conns[i];
            if (c->dead || ngtcp2_conn_get_expiry(c->conn) > ts) continue;
            int rv = ngtcp2_conn_handle_expiry(c->conn, ts);
            if (rv == NGTCP2_ERR_IDLE_CLOSE) conn_kill(q, c, "idle timeout", 0);
            else if (rv == NGTCP2_ERR_HANDSHAKE_TIMEOUT) conn_kill(q, c, "handshake timeout", 0);
            else if (rv != 0) close_with_liberr(q, c, rv, "timer");
        }
        for (uint32_t i = 0; i < q->nconns; i++) flush(q, q->conns[i]);
        reap(q);
        void (*fn)(void) = take_notify(q);
        if (fn) {
            pthread_mutex_unlock(&q->mu);
            fn();
            pthread_mutex_lock(&q->mu);
        }
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

static int parse_addr(const char *host, uint32_t port, struct sockaddr_storage *ss, socklen_t *len) {
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        *len = sizeof *a4;
        return 0;
    }
    if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *len = sizeof *a6;
        return 0;
    }
    return -1;
}

static struct neuron_quic *endpoint_new(int server) {
    struct neuron_quic *q = calloc(1, sizeof *q);
    if (q == NULL) return NULL;
    q->server = server;
    q->fd = q->wake = -1;
    pthread_mutex_init(&q->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->cv, &ca);
    pthread_condattr_destroy(&ca);
    return q;
}

static int32_t endpoint_start(struct neuron_quic *q, int family) {
    if (gnutls_priority_init(&q->prio, PRIORITY, NULL) != 0) return NEURON_EINVAL;
    q->fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    q->wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (q->fd < 0 || q->wake < 0) return NEURON_EIO;
    return NEURON_OK;
}

static int32_t endpoint_run(struct neuron_quic *q) {
    q->local_len = sizeof q->local;
    if (getsockname(q->fd, (struct sockaddr *)&q->local, &q->local_len) != 0) return NEURON_EIO;
    q->st.port = ntohs(q->local.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&q->local)->sin6_port
                                                      : ((struct sockaddr_in *)&q->local)->sin_port);
    if (pthread_create(&q->thread, NULL, quic_main, q) != 0) return NEURON_EIO;
    q->have_thread = 1;
    return NEURON_OK;
}

int32_t neuron_quic_listen(const char *host, uint32_t port, const char *cert_pem, const char *key_pem, uint32_t max_conns,
                           neuron_quic **out) {
    if (out == NULL) return NEURON_EINVAL;
    *out = NULL;
    struct sockaddr_storage ss;
    socklen_t len;
    if (host == NULL || cert_pem == NULL || key_pem == NULL || port > 65535 || max_conns == 0 ||
        max_conns > NEURON_QUIC_MAX_CONNS || parse_addr(host, port, &ss, &len) != 0)
        return NEURON_EINVAL;
    struct neuron_quic *q = endpoint_new(1);
    if (q == NULL) return NEURON_ENOMEM;
    q->max_conns = max_conns;
    int32_t rc = NEURON_EINVAL;
    gnutls_datum_t cert = {.data = (unsigned char *)cert_pem, .size = (unsigned)strlen(cert_pem)};
    gnutls_datum_t key = {.data = (unsigned char *)key_pem, .size = (unsigned)strlen(key_pem)};
    if (gnutls_certificate_allocate_credentials(&q->cred) != 0) goto fail;
    if (gnutls_certificate_set_x509_key_mem(q->cred, &cert, &key, GNUTLS_X509_FMT_PEM) < 0) goto fail;
    rc = endpoint_start(q, ss.ss_family);
    if (rc != NEURON_OK) goto fail;
    int one = 1;
    setsockopt(q->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(q->fd, (struct sockaddr *)&ss, len) != 0) {
        rc = NEURON_EIO;
        goto fail;
    }
    rc = endpoint_run(q);
    if (rc != NEURON_OK) goto fail;
    *out = q;
    return NEURON_OK;
fail:
    neuron_quic_destroy(q);
    return rc;
}

int32_t neuron_quic_connect(const char *host, uint32_t port, neuron_quic **out) {
    if (out == NULL) return NEURON_EINVAL;
    *out = NULL;
    struct sockaddr_storage ss;
    socklen_t len;
    if (host == NULL || port == 0 || port > 65535 || parse_addr(host, port, &ss, &len) != 0) return NEURON_EINVAL;
    struct neuron_quic *q = endpoint_new(0);
    if (q == NULL) return NEURON_ENOMEM;
    q->max_conns = 1;
    int32_t rc = NEURON_EINVAL;
    if (gnutls_certificate_allocate_credentials(&q->cred) != 0) goto fail;
    rc = endpoint_start(q, ss.ss_family);
    if (rc != NEURON_OK) goto fail;
    rc = NEURON_EIO;
    if (connect(q->fd, (struct sockaddr *)&ss, len) != 0) goto fail;
    q->local_len = sizeof q->local;
    if (getsockname(q->fd, (struct sockaddr *)&q->local, &q->local_len) != 0) goto fail;
    rc = NEURON_ENOMEM;
    qconn *c = conn_alloc(q, &ss, len);
    if (c == NULL) goto fail;
    ngtcp2_cid dcid, scid;
    dcid.datalen = 18;
    scid.datalen = 16;
    gnutls_rnd(GNUTLS_RND_RANDOM, dcid.data, dcid.datalen);
    gnutls_rnd(GNUTLS_RND_RANDOM, scid.data, scid.datalen);
    ngtcp2_callbacks cb;
    callbacks(&cb, 0);
    ngtcp2_settings s;
    settings_for(&s);
    ngtcp2_transport_params p;
    params_for(&p, 0);
    ngtcp2_path path;
    path_of(q, c, &path);
    if (ngtcp2_conn_client_new(&c->conn, &dcid, &scid, &path, NGTCP2_PROTO_VER_V1, &cb, &s, &p, NULL, c) != 0 ||
        tls_setup(q, c) != 0) {
        conn_free(c);
        rc = NEURON_ECRYPTO;
        goto fail;
    }
    q->conns[q->nconns++] = c;
    q->st.conns = 1;
    rc = endpoint_run(q);
    if (rc != NEURON_OK) goto fail;
    uint64_t one = 1;
    if (write(q->wake, &one, sizeof one) < 0) { /* the thread's first pass writes the Initial anyway */
    }
    *out = q;
    return NEURON_OK;
fail:
    neuron_quic_destroy(q);
    return rc;
}

int32_t neuron_quic_poll(neuron_quic *q, uint8_t *out, uint32_t cap, uint32_t timeout_ms) {
    if (q == NULL || out == NULL) return NEURON_EINVAL;
    pthread_mutex_lock(&q->mu);
    if (q->ev.len == q->ev_head && timeout_ms) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t due = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec + (uint64_t)timeout_ms * 1000000ull;
        ts.tv_sec = (time_t)(due / 1000000000ull);
        ts.tv_nsec = (long)(due % 1000000000ull);
        while (q->ev.len == q->ev_head)
            if (pthread_cond_timedwait(&q->cv, &q->mu, &ts) == ETIMEDOUT) break;
    }
    uint32_t done = 0;
    while (q->ev_head < q->ev.len) {
        neuron_quic_event h;
        memcpy(&h, q->ev.p + q->ev_head, sizeof h);
        size_t whole = sizeof h + h.len;
        if (done + whole > cap) {
            if (done == 0) {
                pthread_mutex_unlock(&q->mu);
                return NEURON_ERANGE;
            }
            break;
        }
        memcpy(out + done, q->ev.p + q->ev_head, whole);
        done += (uint32_t)whole;
        q->ev_head += whole;
    }
    if (q->ev_head == q->ev.len) q->notified = 0; /* all taken: the next event notifies again */
    pthread_mutex_unlock(&q->mu);
    return (int32_t)done;
}

static qconn *open_conn(struct neuron_quic *q, uint32_t id) {
    for (uint32_t i = 0; i < q->nconns; i++)
        if (q->conns[i]->id == id && !q->conns[i]->dead && q->conns[i]->opened && !q->conns[i]->closing) return q->conns[i];
    return NULL;
}

int32_t neuron_quic_send(neuron_quic *q, uint32_t conn, uint32_t kind, const uint8_t *data, uint32_t len) {
    if (q == NULL || (data == NULL && len)) return NEURON_EINVAL;
    if (kind != NEURON_QUIC_SEND_STREAM && kind != NEURON_QUIC_SEND_DATAGRAM) return NEURON_EINVAL;
    if (kind == NEURON_QUIC_SEND_DATAGRAM && (len == 0 || len > NEURON_QUIC_MAX_DATAGRAM)) return NEURON_EINVAL;
    pthread_mutex_lock(&q->mu);
    qconn *c = open_conn(q, conn);
    int32_t rc = NEURON_OK;
    if (c == NULL) {
        rc = NEURON_EINVAL;
    } else if (kind == NEURON_QUIC_SEND_STREAM) {
        if (qbuf_append(&c->out, data, len, NEURON_QUIC_SEND_QUEUE) != 0) rc = NEURON_ERANGE;
    } else {
        if (c->dg_count == NEURON_QUIC_DGRAM_QUEUE) { /* full: the oldest goes (datagrams are unreliable anyway) */
            c->dg_head = (c->dg_head + 1) % NEURON_QUIC_DGRAM_QUEUE;
            c->dg_count--;
            q->st.dgrams_dropped++;
        }
        qdgram *d = &c->dg[(c->dg_head + c->dg_count) % NEURON_QUIC_DGRAM_QUEUE];
        memcpy(d->data, data, len);
        d->len = len;
        c->dg_count++;
    }
    pthread_mutex_unlock(&q->mu);
    if (rc == NEURON_OK) {
        uint64_t one = 1;
        if (write(q->wake, &one, sizeof one) < 0) rc = NEURON_OK; /* a full counter: the thread is awake already */
    }
    return rc;
}

int32_t neuron_quic_close(neuron_quic *q, uint32_t conn, uint32_t code) {
    if (q == NULL) return NEURON_EINVAL;
    pthread_mutex_lock(&q->mu);
    qconn *c = NULL;
    for (uint32_t i = 0; i < q->nconns; i++)
        if (q->conns[i]->id == conn && !q->conns[i]->dead) c = q->conns[i];
    if (c) {
        c->closing = 1;
        c->close_code = code;
        c->close_due = now_ns() + 2000000000ull;
        if (!c->opened) conn_kill(q, c, "closed", code);
    }
    pthread_mutex_unlock(&q->mu);
    if (c == NULL) return NEURON_EINVAL;
    uint64_t one = 1;
    if (write(q->wake, &one, sizeof one) < 0) return NEURON_OK;
    return NEURON_OK;
}

int32_t neuron_quic_set_notify(neuron_quic *q, void (*fn)(void)) {
    if (q == NULL) return NEURON_EINVAL;
    pthread_mutex_lock(&q->mu);
    q->notify = fn;
    q->notified = 0;
    pthread_mutex_unlock(&q->mu);
    uint64_t one = 1;
    if (write(q->wake, &one, sizeof one) < 0) return NEURON_OK; /* the next pass notifies of what waits */
    return NEURON_OK;
}

void neuron_quic_stats_get(neuron_quic *q, neuron_quic_stats *out) {
    if (q == NULL || out == NULL) return;
    pthread_mutex_lock(&q->mu);
    *out = q->st;
    pthread_mutex_unlock(&q->mu);
}

void neuron_quic_destroy(neuron_quic *q) {
    if (q == NULL) return;
    if (q->have_thread) {
        pthread_mutex_lock(&q->mu);
        q->stop = 1;
        pthread_mutex_unlock(&q->mu);
        uint64_t one = 1;
        if (write(q->wake, &one, sizeof one) < 0) { /* the thread wakes within 100 ms regardless */
        }
        pthread_join(q->thread, NULL);
    }
    for (uint32_t i = 0; i < q->nconns; i++) {
        qconn *c = q->conns[i];
        /* what the caller queued last (a bye) goes out before the close, as far as the
         * congestion window lets it: the thread is gone, so this runs here */
        if (!c->dead && c->conn && c->opened) flush(q, c);
        if (!c->dead && c->conn && c->opened) {
            lq_ccerr ccerr;
            lq_ccerr_default(&ccerr);
            lq_ccerr_set_app(&ccerr, 0);
            write_close(q, c, &ccerr);
        }
        conn_free(c);
    }
    if (q->fd >= 0) close(q->fd);
    if (q->wake >= 0) close(q->wake);
    if (q->prio) gnutls_priority_deinit(q->prio);
    if (q->cred) gnutls_certificate_free_credentials(q->cred);
    free(q->ev.p);
    pthread_cond_destroy(&q->cv);
    pthread_mutex_destroy(&q->mu);
    free(q);
}
