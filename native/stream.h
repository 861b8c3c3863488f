/*
 * stream.h — GameStream video sender of libneuron: one call per encoded frame splits the
 * access unit into shards, adds the protocol headers, computes the Reed–Solomon parity per FEC
 * block, optionally seals every shard with AES-128-GCM, and hands the datagrams to the kernel
 * with sendmmsg. JS decides per frame; no packet crosses the FFI boundary.
 *
 * ===== Wire layout of one video shard (S = packet_size + 16 bytes) =====
 *
 *   off  size  field
 *   0    1     RTP header byte: 0x90 (version 2, extension bit)
 *   1    1     RTP payload type: 0
 *   2    2     RTP sequence number, big-endian; runs without gaps through data then parity shards
 *   4    4     RTP timestamp, big-endian, 90 kHz
 *   8    4     RTP SSRC: 0
 *   12   4     reserved (extension words): 0
 *   16   4     streamPacketIndex, little-endian: (sequence number of this shard) << 8
 *   20   4     frameIndex, little-endian: 1, 2, 3 ... without gaps
 *   24   1     flags: 0x1 PICDATA on every data shard, 0x4 SOF on the first data shard of each
 *              FEC block, 0x2 EOF on the last data shard of each FEC block
 *   25   1     extraFlags: 0
 *   26   1     multiFecFlags: 0x10
 *   27   1     multiFecBlocks: (block << 4) | (lastBlock << 6)
 *   28   4     fecInfo, little-endian: shardIndex << 12 | dataShards << 22 | fecPercent << 4
 *   32   S-32  payload: the frame's bytes, (S - 32) per data shard, the last one zero-padded
 *
 * The frame's bytes are an 8-byte header then the Annex-B access unit:
 *   0x01, LE16 host processing latency (0.1 ms units: capture → this call), frame type (1 P,
 *   2 IDR, 4 intra refresh, 5 P after reference invalidation), LE16 lastPayloadLen (bytes of
 *   the frame in the last data shard), 0, 0.
 *
 * FEC: the data shards are split into 1..4 blocks of at most 255 * 100 / (100 + pct) data shards
 * (blocks a multiple of whole shards, the last one taking the rest). Per block with d data
 * shards: parity p = ceil(d * pct / 100); if p < min_fec then p = min_fec and pct = 100 * p / d
 * (floor); d + p <= 255 and pct <= 255 are enforced by lowering p. A frame too large for 4
 * blocks at the configured percentage is sent in 4 blocks without parity (pct 0); one that does
 * not fit 4 blocks of 255 shards is refused with NEURON_ERANGE. The parity is computed over the
 * whole shard, headers included, after flags, streamPacketIndex, frameIndex, multiFecFlags and
 * multiFecBlocks are set and while the RTP header and fecInfo are still zero; those two (and
 * frameIndex, multiFecBlocks on parity shards) are written afterwards — exactly the fields a
 * client rewrites on a recovered shard. GF(2^8) Cauchy matrix of fec.h.
 *
 * Encryption (encrypt = 1): every shard goes out as
 *   iv[12] ‖ LE32 frameIndex ‖ tag[16] ‖ AES-128-GCM(key, shard)       (S + 32 bytes)
 * with iv = LE64 counter (0, 1, 2 ... per sender, never reused), bytes 8..10 zero, byte 11 'V'.
 *
 * Sending: batches of up to `batch` shards per sendmmsg to the peer set with
 * neuron_video_sender_set_peer. With pace_ns > 0 the batches are spread over that many
 * nanoseconds (the call sleeps between batches; it returns after the last one).
 *
 * Threads: a sender serves one thread at a time. Memory is allocated at creation (staging for
 * the largest frame) and when a new (data, parity) shape first appears (its RS codec, cached).
 */
#ifndef NEURON_STREAM_H
#define NEURON_STREAM_H

#include "neuron.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NEURON_VIDEO_HEADER_BYTES 32u      /* RTP 12 + reserved 4 + NV_VIDEO_PACKET 16 */
#define NEURON_VIDEO_FRAME_HEADER_BYTES 8u /* the short frame header before the access unit */
#define NEURON_VIDEO_ENC_PREFIX_BYTES 32u  /* iv 12 + frameIndex 4 + tag 16 */
#define NEURON_VIDEO_MAX_BLOCKS 4u
#define NEURON_VIDEO_MIN_PACKET 256u
#define NEURON_VIDEO_MAX_PACKET 16384u
#define NEURON_VIDEO_MAX_FRAME (64u << 20) /* bytes of one access unit */

/* ===== UDP socket (shared by the sessions of one port) ===== */

/* A peer address: IPv4 (family 4, addr[0..4)) or IPv6 (family 6, 16 bytes); port in host order. */
typedef struct neuron_udp_peer {
    uint8_t addr[16]; /* 0 */
    uint16_t port;    /* 16 */
    uint8_t family;   /* 18: 4 or 6 */
    uint8_t reserved; /* 19 */
    uint32_t scope;   /* 20: IPv6 scope id */
} neuron_udp_peer;
_Static_assert(sizeof(neuron_udp_peer) == 24, "neuron_udp_peer layout");

/*
 * Opens a UDP socket bound to the numeric address `ip` (IPv4 or IPv6 text) and `port` (0 = any),
 * with the given send/receive buffer sizes (0 = system default). *fd_out receives the
 * descriptor. Returns the bound port, or NEURON_EINVAL (bad address), NEURON_EIO (socket/bind).
 */
NEURON_EXPORT int32_t neuron_udp_open(const char *ip, uint32_t port, uint32_t sndbuf, uint32_t rcvbuf, int32_t *fd_out);

/* Receives one datagram without blocking: its length (truncated to cap), 0 when none is queued,
 * NEURON_EIO on a socket error. `from` receives the sender. */
NEURON_EXPORT int32_t neuron_udp_recv(int32_t fd, uint8_t *buf, uint32_t cap, neuron_udp_peer *from);

/* Sends one datagram (tests, tools). Returns the bytes sent or NEURON_EIO. */
NEURON_EXPORT int32_t neuron_udp_send(int32_t fd, const uint8_t *buf, uint32_t len, const neuron_udp_peer *to);

NEURON_EXPORT void neuron_udp_close(int32_t fd);

/* ===== Video sender ===== */

typedef struct neuron_video_config {
    uint32_t packet_size;     /* 0: ANNOUNCE packetSize, NEURON_VIDEO_MIN_PACKET..MAX_PACKET */
    uint32_t fec_percent;     /* 4: 0..255 (20 is the GameStream default) */
    uint32_t min_fec;         /* 8: fec.minRequiredFecPackets, 0..64 */
    uint32_t encrypt;         /* 12: 1 = AES-GCM per shard */
    uint8_t key[16];          /* 16: AES-128 key (rikey) when encrypt = 1 */
    int32_t fd;               /* 32: socket from neuron_udp_open (not owned) */
    uint32_t max_frame_bytes; /* 36: largest access unit accepted, 1..NEURON_VIDEO_MAX_FRAME */
    uint32_t batch;           /* 40: shards per sendmmsg, 1..64 (0 = 64) */
    uint32_t reserved;        /* 44: 0 */
} neuron_video_config;
_Static_assert(sizeof(neuron_video_config) == 48, "neuron_video_config layout");

typedef struct neuron_video_frame {
    uint64_t capture_ns;    /* 0: CLOCK_MONOTONIC of the capture (latency field; 0 = report 0) */
    uint32_t rtp_timestamp; /* 8: 90 kHz */
    uint32_t frame_type;    /* 12: 1 P, 2 IDR, 4 intra refresh, 5 P after invalidation */
    uint64_t pace_ns;       /* 16: spread the batches over this many ns (0 = send at once) */
} neuron_video_frame;
_Static_assert(sizeof(neuron_video_frame) == 24, "neuron_video_frame layout");

typedef struct neuron_video_result {
    uint32_t frame_index;   /* 0: the frameIndex this frame got */
    uint32_t shards;        /* 4: datagrams handed to the kernel */
    uint32_t data_shards;   /* 8 */
    uint32_t parity_shards; /* 12 */
    uint32_t blocks;        /* 16 */
    uint32_t send_errors;   /* 20: datagrams the kernel refused */
    uint64_t bytes;         /* 24: bytes handed to the kernel */
    uint64_t done_ns;       /* 32: CLOCK_MONOTONIC when the last datagram was handed over */
    uint32_t fec_percent;   /* 40: of the first block */
    uint32_t latency;       /* 44: the frame header's latency field (0.1 ms) */
    uint32_t first_seq;     /* 48: RTP sequence number of the first shard (low 16 bits on wire) */
    uint32_t reserved;      /* 52 */
} neuron_video_result;
_Static_assert(sizeof(neuron_video_result) == 56, "neuron_video_result layout");

typedef struct neuron_video_sender neuron_video_sender;

/* Creates a sender. NEURON_EINVAL for a field out of range, NEURON_ECRYPTO, NEURON_ENOMEM. */
NEURON_EXPORT int32_t neuron_video_sender_create(const neuron_video_config *cfg, neuron_video_sender **out);

/* Sets where shards go (learned from the client's pings). NEURON_EINVAL for a bad family. */
NEURON_EXPORT int32_t neuron_video_sender_set_peer(neuron_video_sender *s, const neuron_udp_peer *peer);

/*
 * Packetizes, protects, encrypts and sends one access unit of `len` bytes (1..max_frame_bytes).
 * Errors (nothing sent, no index consumed): NEURON_EINVAL (bad arguments, no peer yet, frame
 * type out of range), NEURON_ERANGE (too large for 4 blocks of 255 shards or max_frame_bytes).
 * Send failures of single datagrams are counted in result->send_errors, not returned.
 */
NEURON_EXPORT int32_t neuron_video_send_frame(neuron_video_sender *s, const uint8_t *au, uint32_t len,
                                              const neuron_video_frame *frame, neuron_video_result *result);

NEURON_EXPORT void neuron_video_sender_destroy(neuron_video_sender *s);

/* ===== Video pump: access units from the encoder to the wire, no JS between ===== */

/*
 * Sends each access unit of a capture → encode pipeline (encode.h) with the sender, so no frame
 * passes through JS. Unpaced (pace_ns 0), the unit is sent on the pipeline's thread the moment
 * the encoder returns it (no copy, no wait for another thread to be scheduled); paced, the
 * pump's own thread takes it from the pipeline's ring and sleeps between batches there. The
 * thread also notices the pipeline stopping for good (stats.running 0). Frames are discarded until a
 * peer is set and then until the first IDR (setting a peer requests one). The pump owns the
 * sender from start to stop; the pipeline stays the caller's and must outlive the pump.
 * Latency samples (capture → last shard handed to the kernel, µs) go to a ring that
 * neuron_video_pump_latencies drains.
 */
typedef struct neuron_video_pump neuron_video_pump;

typedef struct neuron_video_pump_stats {
    uint64_t frames;          /* 0: frames sent */
    uint64_t shards;          /* 8 */
    uint64_t parity_shards;   /* 16 */
    uint64_t bytes;           /* 24 */
    uint64_t send_errors;     /* 32 */
    uint64_t discarded;       /* 40: access units taken before a peer / IDR */
    uint64_t last_latency_ns; /* 48 */
    uint32_t last_frame_index;/* 56 */
    uint32_t running;         /* 60: 1 while the thread runs */
    int32_t last_error;       /* 64: last negative status (0 = none) */
    uint32_t have_peer;       /* 68 */
    uint64_t reserved;        /* 72 */
} neuron_video_pump_stats;
_Static_assert(sizeof(neuron_video_pump_stats) == 80, "neuron_video_pump_stats layout");

struct neuron_pipeline;

/* Starts the thread. au_cap: largest access unit (bytes) it can take from the ring.
 * epoch_ns: CLOCK_MONOTONIC origin of the 90 kHz RTP timestamps. pace_ns: spread each frame's
 * datagrams over this many ns (neuron_video_frame.pace_ns; 0 = send at once, at most 1 s). */
NEURON_EXPORT int32_t neuron_video_pump_start(struct neuron_pipeline *pipeline, neuron_video_sender *sender,
                                              uint64_t epoch_ns, uint32_t au_cap, uint64_t pace_ns,
                                              neuron_video_pump **out);
NEURON_EXPORT int32_t neuron_video_pump_set_peer(neuron_video_pump *p, const neuron_udp_peer *peer);
NEURON_EXPORT void neuron_video_pump_stats_get(neuron_video_pump *p, neuron_video_pump_stats *out);
/* Copies up to cap latency samples (µs) taken since the last call; returns how many. */
NEURON_EXPORT uint32_t neuron_video_pump_latencies(neuron_video_pump *p, uint32_t *out, uint32_t cap);
/* Where one sent frame's time went after the encoder (16 bytes), each µs since the frame was seen
 * (neuron_au_info.capture_ns): encoded_us the access unit complete, taken_us the pump started
 * on it, sent_us its last shard handed to the kernel. */
typedef struct neuron_video_pump_timing {
    uint32_t frame_serial; /* 0: KVMFR frameSerial */
    uint32_t encoded_us;   /* 4 */
    uint32_t taken_us;     /* 8 */
    uint32_t sent_us;      /* 12 */
} neuron_video_pump_timing;
_Static_assert(sizeof(neuron_video_pump_timing) == 16, "neuron_video_pump_timing layout");

/* Copies up to cap timing records of the frames sent since the last call (oldest first; the
 * pump keeps the last 4096) and returns how many. */
NEURON_EXPORT uint32_t neuron_video_pump_timings(neuron_video_pump *p, neuron_video_pump_timing *out, uint32_t cap);
/* Stops and joins the thread (the sender and pipeline stay the caller's). NULL is ignored. */
NEURON_EXPORT void neuron_video_pump_stop(neuron_video_pump *p);

/* CLOCK_MONOTONIC in ns (the clock of capture_ns and done_ns). */
NEURON_EXPORT uint64_t neuron_monotonic_ns(void);

#ifdef __cplusplus
}
#endif
#endif /* NEURON_STREAM_H */
