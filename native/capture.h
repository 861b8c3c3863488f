/*
 * capture — frames out of guest shared memory (IVSHMEM), Looking Glass B7 layout.
 *
 * Memory layout (LGMP protocol v6 / KVMFR v20; v5 / v19 read as well). Every
 * offset is from the start of the shared region, x86-64 little-endian, natural
 * alignment. The region is written by an untrusted guest: every offset, size
 * and count read from it is bounds-checked against the mapped size before use.
 *
 *   LGMP header (5760 bytes)            Queue (1144 bytes, 5 in the header)
 *   0    u32 magic  0x504d474c "LGMP"   0   u32 queueID
 *   4    u32 version (6; 5 = B6)        4   u32 numMessages (slots incl. 1 sentinel)
 *   8    u32 sessionID                  8   u32 newSubCount
 *   16   u64 timestamp (ms, heartbeat)  12  u32 maxTime (ms)
 *   24   u32 numQueues                  16  u32 position (writer index)
 *   32   queues[5]                      20  u32 messagesOffset (Message[numMessages])
 *   5752 u32 udataSize                  24  u64 timeout[32]
 *   5756 udata (KVMFR record)           280 u32 clientID[32]
 *                                       408 u32 lock (spinlock, CAS 0->1)
 *   Message (16 bytes)                  416 u64 subs (hi 32: subscribed, lo 32: bad)
 *   0 u32 udata (flags)                 424 u32 start (oldest pending slot)
 *   4 u32 size                          432 u64 msgTimeout (ms)
 *   8 u32 offset (payload)              440 u32 count (pending messages)
 *   12 u32 pendingSubs                  444.. client->host message ring (cMsg*)
 *
 *   KVMFR udata: char magic[8] "KVMFR---"; u32 version @8 (20; 19 = B6);
 *   char hostver[32] @12; u32 features @44; then records {u8 type; u32 size @4; data @8}.
 *   Queues: 1 = POINTER (20 messages), 2 = FRAME (2 messages).
 *
 *   KVMFRFrame v20 (1084 bytes): formatVer @0, frameSerial @4, type @8,
 *   screenWidth @12, screenHeight @16, dataWidth @20, dataHeight @24,
 *   frameWidth @28, frameHeight @32, rotation @36, stride @40 (pixels),
 *   pitch @44 (bytes), offset @48 (frame struct -> FrameBuffer),
 *   damageRectsCount @52, damageRects[64]{x,y,w,h} @56, flags @1080.
 *   v19 has no dataWidth/dataHeight: everything from frameWidth on sits 8 bytes
 *   earlier (1076 bytes); data size is then frameWidth x frameHeight.
 *   FrameBuffer: { u32 wp; u8 data[] } — wp counts bytes written (release store);
 *   the message is posted before the pixels, readers copy up to wp.
 *
 *   KVMFRCursor (24 bytes): i16 x @0, i16 y @2, u32 type @4, i8 hx @8, i8 hy @9,
 *   u32 width @12, u32 height @16, u32 pitch @20; shape bytes follow with SHAPE.
 *   Message udata flags: 0x1 POSITION, 0x2 VISIBLE, 0x4 SHAPE.
 */
#ifndef NEURON_CAPTURE_H
#define NEURON_CAPTURE_H

#include "neuron.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NEURON_LGMP_MAGIC 0x504d474cu
#define NEURON_LGMP_VERSION 6u
#define NEURON_LGMP_VERSION_B6 5u
#define NEURON_KVMFR_VERSION 20u
#define NEURON_KVMFR_VERSION_B6 19u

#define NEURON_LGMP_HEADER_SIZE 5760u
#define NEURON_LGMP_QUEUE_SIZE 1144u
#define NEURON_LGMP_MAX_QUEUES 5u
#define NEURON_LGMP_UDATA_OFFSET 5756u
#define NEURON_LGMP_MESSAGE_SIZE 16u
#define NEURON_LGMP_MAX_MESSAGES 1024u /* reader's bound on numMessages */
#define NEURON_KVMFR_QUEUE_POINTER 1u
#define NEURON_KVMFR_QUEUE_FRAME 2u
#define NEURON_KVMFR_FRAME_SIZE 1084u
#define NEURON_KVMFR_FRAME_SIZE_B6 1076u
#define NEURON_KVMFR_MAX_DAMAGE_RECTS 64u
#define NEURON_KVMFR_CURSOR_SIZE 24u
#define NEURON_KVMFR_MAX_CURSOR_DIM 512u
#define NEURON_CAPTURE_MAX_DIM 16384u

/* KVMFR frame types. */
enum {
    NEURON_FRAME_INVALID = 0,
    NEURON_FRAME_BGRA = 1,
    NEURON_FRAME_RGBA = 2,
    NEURON_FRAME_RGBA10 = 3,
    NEURON_FRAME_RGBA16F = 4,
    NEURON_FRAME_BGR_32 = 5,
    NEURON_FRAME_RGB_24 = 6
};

/* KVMFR frame flags. */
#define NEURON_FRAME_FLAG_BLOCK_SCREENSAVER 0x1u
#define NEURON_FRAME_FLAG_REQUEST_ACTIVATION 0x2u
#define NEURON_FRAME_FLAG_TRUNCATED 0x4u
#define NEURON_FRAME_FLAG_HDR 0x8u
#define NEURON_FRAME_FLAG_HDR_PQ 0x10u

/* Cursor message flags. */
#define NEURON_CURSOR_POSITION 0x1u
#define NEURON_CURSOR_VISIBLE 0x2u
#define NEURON_CURSOR_SHAPE 0x4u

/* Non-negative results of neuron_kvmfr_reader_next_frame(). */
#define NEURON_CAPTURE_FRAME 0     /* a frame was copied out */
#define NEURON_CAPTURE_TIMEOUT 1   /* no new frame within the wait */
#define NEURON_CAPTURE_RESTARTED 2 /* the session was lost and re-attached; no frame */
#define NEURON_CAPTURE_REJECTED 3  /* a frame failed validation; it was released, nothing copied */

/*
 * What the reader reports about a frame it copied out (caller-owned, 1120 bytes).
 * Pixels are written tightly packed: out_pitch = data_width * bytes per pixel.
 */
typedef struct neuron_frame_info {
    uint32_t format_ver;     /* 0: KVMFR formatVer */
    uint32_t frame_serial;   /* 4 */
    uint32_t type;           /* 8: NEURON_FRAME_* */
    uint32_t screen_width;   /* 12 */
    uint32_t screen_height;  /* 16 */
    uint32_t data_width;     /* 20: pixels copied per row */
    uint32_t data_height;    /* 24: rows copied */
    uint32_t frame_width;    /* 28 */
    uint32_t frame_height;   /* 32 */
    uint32_t rotation;       /* 36: 0-3 */
    uint32_t out_pitch;      /* 40: bytes per row in the caller's buffer */
    uint32_t flags;          /* 44: NEURON_FRAME_FLAG_* */
    uint32_t session_id;     /* 48 */
    uint32_t damage_count;   /* 52: 0 = whole frame */
    uint64_t bytes;          /* 56: bytes written to the caller's buffer */
    uint64_t copy_ns;        /* 64: time spent copying (incl. waiting on wp) */
    uint64_t read_time_ns;   /* 72: CLOCK_MONOTONIC when the message was seen */
    uint32_t damage[NEURON_KVMFR_MAX_DAMAGE_RECTS * 4]; /* 80: x, y, w, h each */
    uint32_t reserved[4];    /* 1104 */
} neuron_frame_info;
_Static_assert(sizeof(neuron_frame_info) == 1120, "neuron_frame_info layout");

/* Latest cursor state seen on the pointer queue (caller-owned, 32 bytes). */
typedef struct neuron_cursor_info {
    int32_t x, y;            /* 0, 4 */
    uint32_t visible;        /* 8 */
    uint32_t shape_serial;   /* 12: increments on every accepted shape */
    uint32_t shape_width;    /* 16 */
    uint32_t shape_height;   /* 20 */
    uint32_t shape_type;     /* 24 */
    uint32_t updates;        /* 28: pointer messages accepted so far */
} neuron_cursor_info;
_Static_assert(sizeof(neuron_cursor_info) == 32, "neuron_cursor_info layout");

/* Reader counters (caller-owned, 64 bytes). */
typedef struct neuron_reader_stats {
    uint64_t frames;          /* 0: frames copied out */
    uint64_t rejected;        /* 8: frames that failed validation */
    uint64_t resubscribes;    /* 16: queue timeouts recovered by resubscribing */
    uint64_t restarts;        /* 24: session changes / heartbeat stalls re-attached */
    uint64_t wp_timeouts;     /* 32: frames whose pixels never arrived within the wait */
    uint64_t cursor_updates;  /* 40 */
    uint32_t session_id;      /* 48 */
    uint32_t lgmp_version;    /* 52 */
    uint32_t kvmfr_version;   /* 56 */
    uint32_t attached;        /* 60 */
} neuron_reader_stats;
_Static_assert(sizeof(neuron_reader_stats) == 64, "neuron_reader_stats layout");

typedef struct neuron_kvmfr_reader neuron_kvmfr_reader;

/*
 * Maps the region at `path`: a regular file (/dev/shm/NAME, /proc/self/fd/N of
 * a memfd) or the kvmfr character device (size from its ioctl). `size` 0 means
 * "the whole file". Writes the handle to *out. Nothing is read from the region yet.
 */
NEURON_EXPORT int32_t neuron_kvmfr_reader_open(const char *path, uint64_t size, neuron_kvmfr_reader **out);

/* Same over a caller-provided mapping that outlives the reader (tests, fuzzing). */
NEURON_EXPORT int32_t neuron_kvmfr_reader_wrap(uint8_t *base, uint64_t size, neuron_kvmfr_reader **out);

/* Unsubscribes (if attached), unmaps and frees. NULL is ignored. */
NEURON_EXPORT void neuron_kvmfr_reader_close(neuron_kvmfr_reader *r);

/*
 * Attaches: validates magic, LGMP and KVMFR versions and the queues, waits up to
 * timeout_ms for the heartbeat to move (0: does not wait for the heartbeat, for a
 * caller that knows the guest is alive), subscribes to the frame and pointer
 * queues. NEURON_EUNSUPPORTED for a version it does not speak (the message,
 * naming both versions, is in neuron_kvmfr_reader_error()), NEURON_EFORMAT for
 * a malformed header, NEURON_EIO when the heartbeat does not move in time.
 */
NEURON_EXPORT int32_t neuron_kvmfr_reader_attach(neuron_kvmfr_reader *r, uint32_t timeout_ms);

/*
 * Waits up to timeout_ms for the next frame, copies its pixels (waiting on wp
 * for at most wp_timeout_ms) into dst (capacity dst_cap), releases the message
 * and fills *info. Drains the pointer queue on the way. Detects a session change
 * or a heartbeat stall (> 1000 ms) and re-attaches, resubscribes after a queue
 * timeout. Returns NEURON_CAPTURE_* or a negative status (NEURON_ERANGE when
 * dst is too small: the frame is released, info tells the size needed).
 */
NEURON_EXPORT int32_t neuron_kvmfr_reader_next_frame(neuron_kvmfr_reader *r, uint32_t timeout_ms,
                                                     uint32_t wp_timeout_ms, uint8_t *dst, uint64_t dst_cap,
                                                     neuron_frame_info *info);

/* Drains the pointer queue and copies the latest cursor state; shape pixels of
 * the last accepted shape (BGRA, width*4 pitch) into shape (cap bytes) if not NULL.
 * Returns the shape byte count copied (0 if none). */
NEURON_EXPORT int64_t neuron_kvmfr_reader_cursor(neuron_kvmfr_reader *r, neuron_cursor_info *info, uint8_t *shape,
                                                 uint64_t cap);

NEURON_EXPORT void neuron_kvmfr_reader_stats(const neuron_kvmfr_reader *r, neuron_reader_stats *out);

/* NUL-terminated text of the last error (empty if none), valid until the next call on r. */
NEURON_EXPORT const char *neuron_kvmfr_reader_error(const neuron_kvmfr_reader *r);

/* ------------------------------------------------------------------------- */
/* Synthetic producer: the guest side of the same protocol, for tests, demos  */
/* and benchmarks. It runs in its own thread.                                */

enum {
    NEURON_FAULT_NONE = 0,
    NEURON_FAULT_STALL_HEARTBEAT = 1, /* heartbeat stops for 1.5 s after `fault_after` frames */
    NEURON_FAULT_NEW_SESSION = 2,     /* re-initialises with a new sessionID after `fault_after` frames */
    NEURON_FAULT_WRONG_VERSION = 3,   /* writes LGMP version 7 / KVMFR 21 */
    NEURON_FAULT_TRUNCATED = 4,       /* frames flagged TRUNCATED, only the top half written */
    NEURON_FAULT_SLOW_WP = 5,         /* wp advances 1 MiB every 2 ms */
    NEURON_FAULT_HOSTILE = 6,         /* every other frame carries hostile offsets/sizes/counts */
    NEURON_FAULT_B6 = 7               /* writes the B6 layout (LGMP 5, KVMFR 19) */
};

typedef struct neuron_producer_config {
    uint32_t width;        /* 0 */
    uint32_t height;       /* 4 */
    uint32_t fps;          /* 8: frames per second (1-1000); 0 = as fast as the queue allows */
    uint32_t fault;        /* 12: NEURON_FAULT_* */
    uint32_t fault_after;  /* 16: frames delivered to a subscribed reader before a stall/new-session
                              fault (frames posted, for the others) */
    uint32_t session_id;   /* 20: 0 = random */
    uint32_t max_frames;   /* 24: stop posting after this many (0 = unlimited) */
    uint32_t reserved;     /* 28 */
} neuron_producer_config;
_Static_assert(sizeof(neuron_producer_config) == 32, "neuron_producer_config layout");

typedef struct neuron_producer neuron_producer;

/* Region size the documented rule gives for width x height (MiB, power of two). */
NEURON_EXPORT uint64_t neuron_kvmfr_region_size(uint32_t width, uint32_t height);

/*
 * Creates (or truncates) the file at `path` to `size` bytes (0 = the documented
 * rule), maps it, writes the header (magic last) and starts the producer thread.
 */
NEURON_EXPORT int32_t neuron_producer_start(const char *path, uint64_t size, const neuron_producer_config *cfg,
                                            neuron_producer **out);

/* Same over a caller-provided mapping that outlives the producer. */
NEURON_EXPORT int32_t neuron_producer_start_mem(uint8_t *base, uint64_t size, const neuron_producer_config *cfg,
                                                neuron_producer **out);

/* Frames posted so far. */
NEURON_EXPORT uint64_t neuron_producer_frames(const neuron_producer *p);

/* Stops the thread, unmaps, frees. The file stays. NULL is ignored. */
NEURON_EXPORT void neuron_producer_stop(neuron_producer *p);

/*
 * The test pattern: BGRA, moving with `counter`, the 32-bit counter burned in
 * as 32 black/white 8x8 squares along the top-left rows (bit 31 first).
 */
NEURON_EXPORT void neuron_testpattern_fill(uint8_t *dst, uint32_t width, uint32_t height, uint32_t pitch,
                                           uint32_t counter);

/* Reads the burned-in counter back from a BGRA frame (tolerates lossy coding). */
NEURON_EXPORT uint32_t neuron_testpattern_counter(const uint8_t *src, uint32_t width, uint32_t height,
                                                  uint32_t pitch);

/* FNV-1a 64 of `len` bytes (frame checksums in tests). */
NEURON_EXPORT uint64_t neuron_checksum64(const uint8_t *data, uint64_t len);

#ifdef __cplusplus
}
#endif
#endif /* NEURON_CAPTURE_H */
