/*
 * lumen.h — data plane of the lumen/1 protocol (src/lumen/PROTOCOL.md is the full spec).
 *
 * Every lumen/1 datagram, both directions, is
 *
 *   off  size  field (cleartext, all of it authenticated as AAD)
 *   0    1     plane: 'V' video shard, 'A' audio, 'U' rumble, 'Q' probe reply (host → client);
 *              'I' input, 'R' loss report, 'P' clock probe (client → host)
 *   1    1     version: 1
 *   2    2     reserved: 0
 *   4    4     session id, LE32 (given by the host in Welcome)
 *   8    8     seq, LE64: per direction, 0, 1, 2 ... over every plane, never reused
 *   16   H     plane header (video: 28 bytes, below; other planes: none, H = 0)
 *   16+H 16    AES-128-GCM tag
 *   32+H ...   ciphertext of the plane's payload
 *
 * Nonce (12 bytes) = salt[4] ‖ LE64 seq, where salt is the direction's 4-byte nonce salt and
 * each direction has its own key (both from the control channel's key schedule). AAD = bytes
 * [0, 16 + H): the sequence number (and every header field) is authenticated.
 *
 * Video plane header (H = NEURON_LUMEN_VIDEO_HDR = 28):
 *   16   4     frame index, LE32 (1, 2, 3 ... per session)
 *   20   4     frame bytes, LE32: bytes of the access unit
 *   24   2     shard index, LE16: 0..k-1 data, k..k+m-1 parity
 *   26   2     k: data shards, LE16 = ceil(frame bytes / shard bytes)
 *   28   2     m: parity shards, LE16 (k + m <= 65,535)
 *   30   2     shard bytes, LE16: payload of every shard, a multiple of 64
 *   32   8     capture time, LE64 ns, host CLOCK_MONOTONIC
 *   40   1     frame type: 1 P, 2 IDR
 *   41   1     codec: 0 H.264, 1 HEVC
 *   42   2     config epoch, LE16 (bumped by every renegotiation)
 * Data shard i carries AU bytes [i*S, (i+1)*S), the last one zero-padded; parity shards are the
 * GF(2^16) Reed–Solomon parity (fec.h, neuron_rs16_*) of the k data payloads (plaintext).
 *
 * The receiver drops, before anything else: datagrams of the wrong length or plane, a version
 * it does not speak, a session id not its own, a seq outside or already seen in its replay
 * window (NEURON_LUMEN_REPLAY_WINDOW) — and only then decrypts (tag mismatch: dropped). A video
 * header is bounded before any state changes: shard bytes equal to the stream's, frame bytes
 * within the receiver's max_frame_bytes, k = ceil(frame bytes / shard bytes), 1 <= m <= k/2 + 64,
 * k + m within the receiver's shard budget, shard index < k + m, and every shard of a frame
 * agreeing on (frame bytes, k, m, capture, type, codec, epoch). All memory is allocated at
 * creation; the codec cache holds at most NEURON_LUMEN_CODEC_CACHE codecs.
 */
#ifndef NEURON_LUMEN_H
#define NEURON_LUMEN_H

#include "neuron.h"
#include "stream.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NEURON_LUMEN_VERSION 1u
#define NEURON_LUMEN_COMMON_HDR 16u
#define NEURON_LUMEN_VIDEO_HDR 28u
#define NEURON_LUMEN_TAG 16u
#define NEURON_LUMEN_VIDEO_OVERHEAD (NEURON_LUMEN_COMMON_HDR + NEURON_LUMEN_VIDEO_HDR + NEURON_LUMEN_TAG) /* 60 */
#define NEURON_LUMEN_SIDE_OVERHEAD (NEURON_LUMEN_COMMON_HDR + NEURON_LUMEN_TAG)                            /* 32 */
#define NEURON_LUMEN_MAX_SIDE_PAYLOAD 1400u
#define NEURON_LUMEN_MIN_SHARD 64u
#define NEURON_LUMEN_MAX_SHARD 8960u      /* fits a 9000-byte jumbo datagram */
#define NEURON_LUMEN_MAX_FRAME (64u << 20) /* bytes of one access unit */
#define NEURON_LUMEN_MAX_SHARDS 65535u
#define NEURON_LUMEN_MAX_SLOTS 16u
#define NEURON_LUMEN_REPLAY_WINDOW 4096u
#define NEURON_LUMEN_CODEC_CACHE 4u
#define NEURON_LUMEN_PARITY_SLACK 64u /* m <= k / 2 + this */

enum {
    NEURON_LUMEN_PLANE_VIDEO = 'V',
    NEURON_LUMEN_PLANE_AUDIO = 'A',
    NEURON_LUMEN_PLANE_RUMBLE = 'U',
    NEURON_LUMEN_PLANE_PROBE_REPLY = 'Q',
    NEURON_LUMEN_PLANE_INPUT = 'I',
    NEURON_LUMEN_PLANE_REPORT = 'R',
    NEURON_LUMEN_PLANE_PROBE = 'P'
};

/* Keys of one direction. */
typedef struct neuron_lumen_keys {
    uint8_t key[16];     /* 0: AES-128 key */
    uint8_t salt[4];     /* 16: nonce salt */
    uint32_t session_id; /* 20 */
} neuron_lumen_keys;
_Static_assert(sizeof(neuron_lumen_keys) == 24, "neuron_lumen_keys layout");

/*
 * Parity for one block of k data shards (the adaptive FEC rule, PROTOCOL.md "FEC"):
 *   pct = clamp(loss% × 1.4 + 1, min_pct, max_pct) (loss_ppm in millionths, pct in 0.01 %)
 *   m0  = ceil(k × pct / 100 %)
 *   m   = max(m0, the least m with P[more than m of the k + m shards lost] < 1e-6), losses
 *         modelled as bursts of `burst` packets (>= 1) arriving independently at rate loss/burst;
 *         exact binomial tail for small blocks, a normal bound beyond;
 * then 1 <= m <= k + NEURON_LUMEN_PARITY_SLACK and k + m <= 65,535. Returns m (>= 1) or
 * NEURON_EINVAL for k outside 1..65,534.
 */
NEURON_EXPORT int32_t neuron_lumen_parity(uint32_t k, uint32_t loss_ppm, uint32_t burst, uint32_t min_pct_x100,
                                          uint32_t max_pct_x100);

/* ===== Sender (host: video + side planes; client: side planes) ===== */

typedef struct neuron_lumen_tx_config {
    neuron_lumen_keys keys;   /* 0 */
    int32_t fd;               /* 24: UDP socket (neuron_udp_open; not owned) */
    uint32_t shard_bytes;     /* 28: multiple of 64, NEURON_LUMEN_MIN_SHARD..MAX_SHARD */
    uint32_t max_frame_bytes; /* 32: largest access unit, 1..NEURON_LUMEN_MAX_FRAME */
    uint32_t batch;           /* 36: datagrams per send call (GSO sendmsg or sendmmsg), 1..64 (0 = 64) */
} neuron_lumen_tx_config;
_Static_assert(sizeof(neuron_lumen_tx_config) == 40, "neuron_lumen_tx_config layout");

typedef struct neuron_lumen_frame {
    uint64_t capture_ns;  /* 0: host CLOCK_MONOTONIC of the capture */
    uint64_t pace_ns;     /* 8: spread the frame's datagrams over this many ns (0 = at once) */
    uint32_t frame_type;  /* 16: 1 P, 2 IDR */
    uint32_t codec;       /* 20: 0 H.264, 1 HEVC */
    uint32_t epoch;       /* 24: config epoch (0..65535) */
    uint32_t loss_ppm;    /* 28: the peer's reported loss (millionths) */
    uint32_t burst;       /* 32: the peer's mean loss burst length (packets, >= 1) */
    uint32_t min_pct_x100;/* 36: FEC floor (0.01 %; 100 = 1 %) */
    uint32_t max_pct_x100;/* 40: FEC ceiling (5000 = 50 %) */
    uint32_t reserved;    /* 44 */
} neuron_lumen_frame;
_Static_assert(sizeof(neuron_lumen_frame) == 48, "neuron_lumen_frame layout");

typedef struct neuron_lumen_tx_result {
    uint32_t frame_index;   /* 0 */
    uint32_t data_shards;   /* 4 */
    uint32_t parity_shards; /* 8 */
    uint32_t send_errors;   /* 12 */
    uint64_t bytes;         /* 16: bytes handed to the kernel */
    uint64_t done_ns;       /* 24: when the last datagram was handed over */
    uint64_t fec_ns;        /* 32: time in the RS encoder */
    uint64_t seal_ns;       /* 40: time in AES-GCM */
} neuron_lumen_tx_result;
_Static_assert(sizeof(neuron_lumen_tx_result) == 48, "neuron_lumen_tx_result layout");

typedef struct neuron_lumen_tx neuron_lumen_tx;

NEURON_EXPORT int32_t neuron_lumen_tx_create(const neuron_lumen_tx_config *cfg, neuron_lumen_tx **out);
NEURON_EXPORT int32_t neuron_lumen_tx_set_peer(neuron_lumen_tx *tx, const neuron_udp_peer *peer);
/* Changes shard bytes (renegotiation); NEURON_EINVAL out of range. Memory stays as created
 * (shard_bytes may not exceed the creation value). */
NEURON_EXPORT int32_t neuron_lumen_tx_set_shard_bytes(neuron_lumen_tx *tx, uint32_t shard_bytes);
/* Splits, protects, seals and sends one access unit. NEURON_EINVAL (no peer, bad args),
 * NEURON_ERANGE (len over max_frame_bytes or over 65,535 shards). */
NEURON_EXPORT int32_t neuron_lumen_tx_send_frame(neuron_lumen_tx *tx, const uint8_t *au, uint32_t len,
                                                 const neuron_lumen_frame *frame, neuron_lumen_tx_result *result);
/* Seals and sends one side-plane datagram (plane other than 'V', payload <= MAX_SIDE_PAYLOAD).
 * Returns the datagram's length or a negative status. */
NEURON_EXPORT int32_t neuron_lumen_tx_send_datagram(neuron_lumen_tx *tx, uint32_t plane, const uint8_t *payload,
                                                    uint32_t len);
/* Seals a side-plane datagram into out (cap bytes) without sending (tests, tools); its length. */
NEURON_EXPORT int32_t neuron_lumen_tx_seal_datagram(neuron_lumen_tx *tx, uint32_t plane, const uint8_t *payload,
                                                    uint32_t len, uint8_t *out, uint32_t cap);
/* UDP GSO on (1, the default: one sendmsg per up to 64 KiB of datagrams) or off (0: sendmmsg).
 * Off is for paths that would see a GSO buffer as one packet (netfilter on loopback drops or
 * keeps a whole buffer). The sender also turns it off by itself when the kernel refuses it. */
NEURON_EXPORT int32_t neuron_lumen_tx_set_gso(neuron_lumen_tx *tx, uint32_t on);
/* Next seq this sender will use. */
NEURON_EXPORT uint64_t neuron_lumen_tx_seq(const neuron_lumen_tx *tx);
NEURON_EXPORT void neuron_lumen_tx_destroy(neuron_lumen_tx *tx);

/*
 * Thread use of a sender: one frame at a time (neuron_lumen_tx_send_frame calls must not
 * overlap: the pump below serializes them); side-plane datagrams, set_peer and seq may come
 * from any thread at any time. A frame is sealed under the sender's lock and sent outside it, so
 * a side datagram never waits for a paced frame's datagrams.
 */

/* ===== Frame pump: pacing and sending off the caller's thread ===== */

/*
 * The pump owns a thread that sends queued access units through a sender. Submitting a frame
 * either sends it on the caller's thread at once (unpaced and nothing queued: no hand-off, no
 * copy) or copies it into one of `slots` queue slots for the thread, which sends (and paces)
 * it; the caller returns at once either way. Results (per frame: the submit's serial, the
 * status and the sender's result) wait in a ring of 1,024 until taken. A full queue refuses the
 * frame (NEURON_ERANGE, counted in dropped). The sender must outlive the pump.
 */
typedef struct neuron_lumen_pump neuron_lumen_pump;

typedef struct neuron_lumen_pump_result {
    uint32_t serial;           /* 0: what neuron_lumen_pump_submit returned for the frame */
    int32_t status;            /* 4: the sender's status (NEURON_OK or negative) */
    neuron_lumen_tx_result tx; /* 8: the sender's result (zero unless status is NEURON_OK) */
} neuron_lumen_pump_result;
_Static_assert(sizeof(neuron_lumen_pump_result) == 56, "neuron_lumen_pump_result layout");

typedef struct neuron_lumen_pump_stats {
    uint64_t frames_sent;   /* 0 */
    uint64_t frames_failed; /* 8: the sender refused them (status in their result) */
    uint64_t direct;        /* 16: sent on the submitting thread */
    uint64_t queued;        /* 24: handed to the pump's thread */
    uint64_t dropped;       /* 32: refused because the queue was full */
    uint32_t pending;       /* 40: frames queued or being sent now */
    uint32_t reserved;      /* 44 */
} neuron_lumen_pump_stats;
_Static_assert(sizeof(neuron_lumen_pump_stats) == 48, "neuron_lumen_pump_stats layout");

/* slots 1..16; au_cap: largest access unit (1..NEURON_LUMEN_MAX_FRAME), slots × au_cap allocated. */
NEURON_EXPORT int32_t neuron_lumen_pump_start(neuron_lumen_tx *tx, uint32_t slots, uint32_t au_cap, neuron_lumen_pump **out);
/* Returns the frame's serial (1, 2, ...), NEURON_EINVAL (bad arguments, len over au_cap) or
 * NEURON_ERANGE (the queue is full: the frame is dropped). */
NEURON_EXPORT int32_t neuron_lumen_pump_submit(neuron_lumen_pump *p, const uint8_t *au, uint32_t len,
                                               const neuron_lumen_frame *frame);
/* Takes up to cap results, oldest first; how many. */
NEURON_EXPORT uint32_t neuron_lumen_pump_results(neuron_lumen_pump *p, neuron_lumen_pump_result *out, uint32_t cap);
NEURON_EXPORT void neuron_lumen_pump_stats_get(neuron_lumen_pump *p, neuron_lumen_pump_stats *out);
/* Waits for the frame being sent (queued ones are dropped), stops the thread, frees the pump. */
NEURON_EXPORT void neuron_lumen_pump_stop(neuron_lumen_pump *p);

/* ===== Receiver: replay window, decryption, reassembly ===== */

typedef struct neuron_lumen_rx_config {
    neuron_lumen_keys keys;   /* 0 */
    uint32_t shard_bytes;     /* 24: the stream's shard bytes (0 = side planes only) */
    uint32_t max_frame_bytes; /* 28: largest access unit accepted */
    uint32_t slots;           /* 32: frames reassembled at once, 1..NEURON_LUMEN_MAX_SLOTS */
    uint32_t ready_frames;    /* 36: completed frames held until taken, 1..64 */
} neuron_lumen_rx_config;
_Static_assert(sizeof(neuron_lumen_rx_config) == 40, "neuron_lumen_rx_config layout");

typedef struct neuron_lumen_rx_stats {
    uint64_t datagrams;      /* 0: datagrams offered */
    uint64_t accepted;       /* 8: authenticated and new */
    uint64_t dropped_sim;    /* 16: dropped by the simulated loss (before parsing) */
    uint64_t bad_format;     /* 24: wrong length/plane/version/session, bounds */
    uint64_t bad_auth;       /* 32: tag mismatch */
    uint64_t replayed;       /* 40: seq seen or older than the window */
    uint64_t inconsistent;   /* 48: shard disagreeing with its frame */
    uint64_t frames_complete;/* 56: frames reassembled (all data arrived or recovered) */
    uint64_t frames_recovered;/* 64: of those, frames that needed FEC */
    uint64_t frames_lost;    /* 72: frames given up (too few shards when evicted) */
    uint64_t shards_late;    /* 80: shards of a frame already complete or given up */
    uint64_t highest_seq;    /* 88: highest authenticated seq + 1 (0: none yet) */
    uint64_t seq_received;   /* 96: authenticated seqs counted for loss (every plane) */
    uint64_t loss_runs;      /* 104: runs of missing seqs seen (for the mean burst length) */
    uint64_t ready_dropped;  /* 112: completed frames dropped because nobody took them */
    uint64_t decode_ns;      /* 120: time spent in RS decode */
} neuron_lumen_rx_stats;
_Static_assert(sizeof(neuron_lumen_rx_stats) == 128, "neuron_lumen_rx_stats layout");

/* A completed frame's description. */
typedef struct neuron_lumen_frame_info {
    uint32_t frame_index;  /* 0 */
    uint32_t bytes;        /* 4 */
    uint64_t capture_ns;   /* 8: host clock */
    uint64_t complete_ns;  /* 16: receiver CLOCK_MONOTONIC when it was reassembled */
    uint32_t frame_type;   /* 24 */
    uint32_t codec;        /* 28 */
    uint32_t epoch;        /* 32 */
    uint32_t recovered;    /* 36: 1 when FEC rebuilt data shards */
    uint32_t data_shards;  /* 40 */
    uint32_t parity_shards;/* 44 */
} neuron_lumen_frame_info;
_Static_assert(sizeof(neuron_lumen_frame_info) == 48, "neuron_lumen_frame_info layout");

typedef struct neuron_lumen_rx neuron_lumen_rx;

NEURON_EXPORT int32_t neuron_lumen_rx_create(const neuron_lumen_rx_config *cfg, neuron_lumen_rx **out);
/* Simulated loss of incoming datagrams (harness, --loss): drop_ppm millionths in bursts of
 * `burst` datagrams (>= 1), deterministic from seed. drop_ppm 0 turns it off. */
NEURON_EXPORT int32_t neuron_lumen_rx_set_drop(neuron_lumen_rx *rx, uint32_t drop_ppm, uint32_t burst, uint64_t seed);
/*
 * Offers one datagram. Side planes: the payload goes to out (cap bytes) and the return value
 * is (plane << 16) | payload length. Video shards: returns 'V' << 16 (0 length) when accepted.
 * A dropped datagram returns a negative status (NEURON_EFORMAT, NEURON_EAUTH, NEURON_EINVAL
 * for a replay, NEURON_EIO for a simulated loss) and changes nothing but the counters.
 */
NEURON_EXPORT int32_t neuron_lumen_rx_push(neuron_lumen_rx *rx, const uint8_t *pkt, uint32_t len, uint8_t *out,
                                           uint32_t cap);
/*
 * Receives what the socket has (recvmmsg, waiting up to timeout_ms for the first datagram)
 * and pushes each; side-plane datagrams are queued for neuron_lumen_rx_next_side. Returns the
 * datagrams read (0 on timeout) or NEURON_EIO.
 */
NEURON_EXPORT int32_t neuron_lumen_rx_recv(neuron_lumen_rx *rx, int32_t fd, uint32_t timeout_ms, uint32_t max_datagrams);
/*
 * UDP GRO on the socket (1) or off (0): the kernel then hands over up to 64 KiB of equal-sized
 * datagrams of one flow per read (what a GSO sender's buffer was), which neuron_lumen_rx_recv
 * splits by the segment size the kernel reports — fewer reads and fewer socket buffers per
 * datagram. With GRO one read may take a buffer's datagrams past max_datagrams (by at most 64).
 * NEURON_EUNSUPPORTED where the kernel refuses it (the receiver keeps reading datagram by
 * datagram).
 */
NEURON_EXPORT int32_t neuron_lumen_rx_set_gro(neuron_lumen_rx *rx, int32_t fd, uint32_t on);
/* Takes the oldest completed frame: copies it to out, returns its bytes (0: none ready),
 * NEURON_ERANGE if cap is too small (the frame stays). */
NEURON_EXPORT int64_t neuron_lumen_rx_next_frame(neuron_lumen_rx *rx, uint8_t *out, uint64_t cap,
                                                 neuron_lumen_frame_info *info);
/* Takes the oldest queued side datagram: returns (plane << 16) | length, 0 when none. */
NEURON_EXPORT int32_t neuron_lumen_rx_next_side(neuron_lumen_rx *rx, uint8_t *out, uint32_t cap);
NEURON_EXPORT void neuron_lumen_rx_stats_get(const neuron_lumen_rx *rx, neuron_lumen_rx_stats *out);
/* Bytes the receiver allocated at creation (its whole footprint but cached codecs). */
NEURON_EXPORT uint64_t neuron_lumen_rx_footprint(const neuron_lumen_rx *rx);
/* Bytes currently held by cached RS codecs (at most NEURON_LUMEN_CODEC_CACHE of them). */
NEURON_EXPORT uint64_t neuron_lumen_rx_codec_bytes(const neuron_lumen_rx *rx);
NEURON_EXPORT void neuron_lumen_rx_destroy(neuron_lumen_rx *rx);

#ifdef __cplusplus
}
#endif
#endif /* NEURON_LUMEN_H */
