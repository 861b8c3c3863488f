/*
 * vsock — frames exported by a guest over a stream socket ("NVF1"): AF_VSOCK
 * (guest -> host, port 5900 by default) for guests without IVSHMEM, or a unix
 * socket (a QEMU chardev, or a local exporter) through the same code.
 *
 * Wire format (little-endian; one direction, guest -> host; the bytes are untrusted):
 *
 *   Hello (32 bytes), first on a connection; may be sent again between frames (a
 *   mode change: the host re-validates, re-sizes and reports a restart):
 *     0  u32 magic 0x3146564e ("NVF1")
 *     4  u16 version (1)
 *     6  u16 hello_size (32)
 *     8  u32 codec: 1 = raw BGRA, 2 = H.264 Annex-B access units (encoded by the guest)
 *     12 u32 width  (pixels, 16-16384)
 *     16 u32 height (pixels, 16-16384)
 *     20 u32 fps (1-1000, nominal)
 *     24 u32 max_payload: the largest frame payload the guest will send (raw: at least
 *            width * 4 * height; the host refuses more than its own limit)
 *     28 u32 flags (0)
 *
 *   Frame: a 32-byte header, damage_count rects of 16 bytes, then payload_size bytes:
 *     0  u32 magic 0x4d415246 ("FRAM")
 *     4  u32 serial (strictly increasing on a connection)
 *     8  u64 timestamp_us (the guest's clock when the frame was captured)
 *     16 u32 stride: raw: bytes per row, width * 4 <= stride <= 65536; H.264: 0
 *     20 u32 payload_size: raw: exactly stride * height; H.264: 1 - max_payload
 *     24 u16 damage_count (0 = the whole frame, at most 64)
 *     26 u16 flags: bit 0 keyframe (H.264 IDR); other bits 0
 *     28 u32 reserved (0)
 *     32 damage[damage_count]: u32 x, y, w, h — inside width x height, w and h > 0
 *
 * Anything else (an unknown magic, a field out of range, a size that disagrees with the
 * geometry, a serial that goes back) ends the connection: the host records why, counts a
 * rejection and waits for the next connection. Sizes are checked before any allocation;
 * a truncated frame (the connection ends mid-frame) is dropped, never delivered.
 */
#ifndef NEURON_VSOCK_H
#define NEURON_VSOCK_H

#include "capture.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NEURON_NVF_MAGIC 0x3146564eu
#define NEURON_NVF_FRAME_MAGIC 0x4d415246u
#define NEURON_NVF_VERSION 1u
#define NEURON_NVF_HELLO_SIZE 32u
#define NEURON_NVF_FRAME_HEADER_SIZE 32u
#define NEURON_NVF_DAMAGE_SIZE 16u
#define NEURON_NVF_MAX_DAMAGE 64u
#define NEURON_NVF_MAX_STRIDE 65536u
#define NEURON_NVF_DEFAULT_PORT 5900u
#define NEURON_NVF_CODEC_RAW_BGRA 1u
#define NEURON_NVF_CODEC_H264 2u
/* neuron_frame_info.type of an H.264 access unit (raw frames are NEURON_FRAME_BGRA). */
#define NEURON_FRAME_H264_AU 0x100u
/* neuron_frame_info.flags bit of a keyframe. */
#define NEURON_NVF_FLAG_KEYFRAME 0x100u

/* A validated hello (caller-owned, 32 bytes). */
typedef struct neuron_nvf_hello {
    uint32_t codec;       /* 0 */
    uint32_t width;       /* 4 */
    uint32_t height;      /* 8 */
    uint32_t fps;         /* 12 */
    uint32_t max_payload; /* 16 */
    uint32_t connection;  /* 20: connections accepted so far (1 = the first) */
    uint32_t valid;       /* 24: 1 once a hello was accepted on the current connection */
    uint32_t reserved;    /* 28 */
} neuron_nvf_hello;
_Static_assert(sizeof(neuron_nvf_hello) == 32, "neuron_nvf_hello layout");

/* ---- the stream parser: bytes in, frames out; no I/O ---------------------------- */
typedef struct neuron_nvf_parser neuron_nvf_parser;

/* Parser events (neuron_nvf_parser_feed's *event). */
#define NEURON_NVF_NEED_MORE 0u
#define NEURON_NVF_HELLO 1u
#define NEURON_NVF_FRAME 2u

/* max_frame_bytes bounds any payload (and so any allocation), 4096 - 256 MiB. */
NEURON_EXPORT int32_t neuron_nvf_parser_new(uint64_t max_frame_bytes, neuron_nvf_parser **out);
/*
 * Consumes bytes until `len` is used up or an event happens (then it stops right after
 * it: call again with the rest). Returns the bytes consumed or NEURON_EFORMAT (the reason
 * in neuron_nvf_parser_error(); the parser stays failed until reset).
 */
NEURON_EXPORT int64_t neuron_nvf_parser_feed(neuron_nvf_parser *p, const uint8_t *data, uint64_t len,
                                            uint32_t *event);
/* The last hello, and the frame that the last NEURON_NVF_FRAME event completed: its
 * payload (valid until the next feed) and its description. */
NEURON_EXPORT void neuron_nvf_parser_hello(const neuron_nvf_parser *p, neuron_nvf_hello *out);
NEURON_EXPORT const uint8_t *neuron_nvf_parser_frame(const neuron_nvf_parser *p, neuron_frame_info *info);
/* Forgets the connection's state (a new connection starts with a hello). */
NEURON_EXPORT void neuron_nvf_parser_reset(neuron_nvf_parser *p);
/* 1 while a frame or hello is partly received (the connection ending now truncates it). */
NEURON_EXPORT int32_t neuron_nvf_parser_partial(const neuron_nvf_parser *p);
NEURON_EXPORT const char *neuron_nvf_parser_error(const neuron_nvf_parser *p);
NEURON_EXPORT void neuron_nvf_parser_free(neuron_nvf_parser *p);

/* ---- the host listener: a thread accepts one guest at a time ---------------------- */
typedef struct neuron_nvf_reader neuron_nvf_reader;

/* Listens on a unix socket at `path` (an existing socket file there is replaced). */
NEURON_EXPORT int32_t neuron_nvf_listen_unix(const char *path, uint64_t max_frame_bytes, neuron_nvf_reader **out);
/* Listens on AF_VSOCK port `port`, any CID. NEURON_EUNSUPPORTED when the kernel has no
 * AF_VSOCK; NEURON_EIO when bind/listen fail (errno text in *out's absence: see
 * neuron_nvf_last_error()). */
NEURON_EXPORT int32_t neuron_nvf_listen_vsock(uint32_t port, uint64_t max_frame_bytes, neuron_nvf_reader **out);
/* Text of the last listen failure on this thread. */
NEURON_EXPORT const char *neuron_nvf_last_error(void);
/* Waits up to timeout_ms for a guest whose hello was accepted. NEURON_EIO on timeout. */
NEURON_EXPORT int32_t neuron_nvf_reader_attach(neuron_nvf_reader *r, uint32_t timeout_ms);
/*
 * Waits up to timeout_ms for a frame newer than the last one returned and copies it into
 * dst: raw frames tightly packed (out_pitch = width * 4), H.264 access units as sent.
 * Returns NEURON_CAPTURE_FRAME / _TIMEOUT / _RESTARTED (a new connection or hello) /
 * _REJECTED (a connection was dropped for bad framing; reason in the error text), or
 * NEURON_ERANGE when dst is too small (info->bytes tells the need; the frame is skipped).
 * The guest's timestamp_us is in info->reserved[0] (low) and [1] (high).
 */
NEURON_EXPORT int32_t neuron_nvf_reader_next_frame(neuron_nvf_reader *r, uint32_t timeout_ms, uint8_t *dst,
                                                   uint64_t cap, neuron_frame_info *info);
NEURON_EXPORT void neuron_nvf_reader_hello(neuron_nvf_reader *r, neuron_nvf_hello *out);
NEURON_EXPORT void neuron_nvf_reader_stats(neuron_nvf_reader *r, neuron_reader_stats *out);
/* Text of the last rejection or error (copied into buf, NUL-terminated); returns its length. */
NEURON_EXPORT int32_t neuron_nvf_reader_error(neuron_nvf_reader *r, char *buf, uint32_t cap);
/* Stops the thread, closes the sockets (a unix socket file is removed), frees. NULL ignored. */
NEURON_EXPORT void neuron_nvf_reader_close(neuron_nvf_reader *r);

/* ---- the guest side ------------------------------------------------------------ */
/* Connects to AF_VSOCK cid:port within timeout_ms; returns the socket fd or a negative
 * status (NEURON_EUNSUPPORTED: no AF_VSOCK; NEURON_EIO: refused or timed out). */
NEURON_EXPORT int32_t neuron_nvf_connect_vsock(uint32_t cid, uint32_t port, uint32_t timeout_ms);

#ifdef __cplusplus
}
#endif
#endif /* NEURON_VSOCK_H */
