/*
 * lumen_quic.h — the control transport of lumen/1: QUIC v1 (RFC 9000) through ngtcp2 with
 * GnuTLS (TLS 1.3, ALPN "lumen/1"), on its own thread (src/lumen/PROTOCOL.md "Control").
 *
 * One endpoint is either a host (listens, many connections) or a client (one connection).
 * Per connection the endpoint carries two things for its caller:
 *   - the control stream: the client's first bidirectional stream (id 0), a byte stream (the
 *     caller frames messages on it: u32 BE length ‖ JSON);
 *   - QUIC DATAGRAM frames (RFC 9221): whole payloads of up to NEURON_QUIC_MAX_DATAGRAM bytes,
 *     unreliable; lumen/1 demultiplexes them by their first byte (its side planes: 'I' input,
 *     'A' audio, 'U' rumble).
 *
 * The host presents its certificate (PEM, e.g. the GameStream certificate); the client does not
 * verify it against any CA: the OPEN event hands the caller the peer certificate's DER so that
 * it can check its pinned SHA-256 fingerprint and close the connection on a mismatch.
 *
 * The caller talks to the thread through two calls: neuron_quic_send queues bytes (the thread
 * writes them as flow and congestion control allow), neuron_quic_poll takes events. Events are
 * packed records, each a neuron_quic_event header followed by `len` bytes:
 *   NEURON_QUIC_EV_OPEN      handshake complete; data: the client side gets the peer
 *                            certificate's DER, the host the client's address as text (it
 *                            asks for no client certificate: clients prove a pairing key)
 *   NEURON_QUIC_EV_STREAM    bytes that arrived on the control stream, in order
 *   NEURON_QUIC_EV_DATAGRAM  one DATAGRAM frame's payload
 *   NEURON_QUIC_EV_CLOSED    the connection is gone (peer close, idle timeout, error, or the
 *                            caller's close); data: a short reason (UTF-8); `code` carries the
 *                            peer's application error code when it sent one
 * Connections are numbered from 1 per endpoint and never reused. A connection is identified by
 * its peer address (no connection migration). Idle timeout NEURON_QUIC_IDLE_MS; both ends send
 * PINGs after a third of it without traffic; a handshake not done in NEURON_QUIC_HANDSHAKE_MS
 * ends the connection (its slot among max_conns is free again). Bounds: at most max_conns connections (more are
 * refused by closing them at once), NEURON_QUIC_EVENT_QUEUE bytes of events not yet taken (a
 * connection whose events would overflow it is closed: the caller is not keeping up), and
 * NEURON_QUIC_SEND_QUEUE unsent control-stream bytes per connection.
 */
#ifndef NEURON_LUMEN_QUIC_H
#define NEURON_LUMEN_QUIC_H

#include "neuron.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NEURON_QUIC_MAX_DATAGRAM 1200u
#define NEURON_QUIC_EVENT_QUEUE (4u << 20)
#define NEURON_QUIC_SEND_QUEUE (4u << 20)
#define NEURON_QUIC_MAX_CONNS 64u
#define NEURON_QUIC_DGRAM_QUEUE 256u
#define NEURON_QUIC_IDLE_MS 30000u
#define NEURON_QUIC_HANDSHAKE_MS 5000u

enum {
    NEURON_QUIC_EV_OPEN = 1,
    NEURON_QUIC_EV_STREAM = 2,
    NEURON_QUIC_EV_DATAGRAM = 3,
    NEURON_QUIC_EV_CLOSED = 4
};

enum { NEURON_QUIC_SEND_STREAM = 1, NEURON_QUIC_SEND_DATAGRAM = 2 };

typedef struct neuron_quic_event {
    uint32_t kind; /* 0: NEURON_QUIC_EV_* */
    uint32_t conn; /* 4: connection number (1, 2, ...) */
    uint32_t len;  /* 8: bytes that follow this header */
    uint32_t code; /* 12: CLOSED: the peer's application error code (0 otherwise) */
} neuron_quic_event;
_Static_assert(sizeof(neuron_quic_event) == 16, "neuron_quic_event layout");

typedef struct neuron_quic_stats {
    uint64_t packets_in;     /* 0: UDP datagrams read */
    uint64_t packets_out;    /* 8: UDP datagrams written */
    uint64_t refused;        /* 16: Initial packets refused (not QUIC v1, over max_conns) */
    uint64_t conns_opened;   /* 24: handshakes completed */
    uint64_t conns_closed;   /* 32 */
    uint64_t dgrams_dropped; /* 40: datagrams the caller queued that never left (queue full, too big) */
    uint32_t conns;          /* 48: connections now */
    uint32_t port;           /* 52: local UDP port */
} neuron_quic_stats;
_Static_assert(sizeof(neuron_quic_stats) == 56, "neuron_quic_stats layout");

typedef struct neuron_quic neuron_quic;

/* Host: binds UDP host:port (port 0: any) and answers QUIC with the certificate and key (PEM,
 * NUL-terminated). NEURON_EINVAL (bad arguments, unusable certificate/key), NEURON_EIO (bind). */
NEURON_EXPORT int32_t neuron_quic_listen(const char *host, uint32_t port, const char *cert_pem, const char *key_pem,
                                         uint32_t max_conns, neuron_quic **out);
/* Client: one connection to host:port (a numeric IPv4/IPv6 address), numbered 1. The
 * handshake runs on the thread: OPEN or CLOSED follows. */
NEURON_EXPORT int32_t neuron_quic_connect(const char *host, uint32_t port, neuron_quic **out);
/* Takes whole events into out (cap bytes): the bytes written (0: none within timeout_ms),
 * NEURON_ERANGE when cap cannot hold the next event. */
NEURON_EXPORT int32_t neuron_quic_poll(neuron_quic *q, uint8_t *out, uint32_t cap, uint32_t timeout_ms);
/* Queues bytes for the control stream (kind STREAM) or one DATAGRAM frame (kind DATAGRAM,
 * 1..NEURON_QUIC_MAX_DATAGRAM bytes). NEURON_EINVAL (no such open connection, bad kind or
 * length), NEURON_ERANGE (the connection's send queue is full). */
NEURON_EXPORT int32_t neuron_quic_send(neuron_quic *q, uint32_t conn, uint32_t kind, const uint8_t *data, uint32_t len);
/* Closes a connection (CONNECTION_CLOSE with an application error code) once what is queued on
 * its control stream has been acknowledged by the peer (at most 2 s later); a CLOSED event
 * follows. */
NEURON_EXPORT int32_t neuron_quic_close(neuron_quic *q, uint32_t conn, uint32_t code);
/*
 * A function the endpoint's thread calls (without holding any lock) when events wait to be taken
 * and it has not called it since the caller last took every event: the caller then polls. NULL
 * turns it off. (bun:ffi: a threadsafe JSCallback, which queues the call on the JS thread.)
 */
NEURON_EXPORT int32_t neuron_quic_set_notify(neuron_quic *q, void (*fn)(void));
NEURON_EXPORT void neuron_quic_stats_get(neuron_quic *q, neuron_quic_stats *out);
/* Stops the thread, closes every connection and frees the endpoint. */
NEURON_EXPORT void neuron_quic_destroy(neuron_quic *q);

#ifdef __cplusplus
}
#endif
#endif /* NEURON_LUMEN_QUIC_H */
