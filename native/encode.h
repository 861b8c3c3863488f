/*
 * encode — BGRA/RGBA frames to H.264/HEVC access units (libavcodec), and the
 * native capture → convert → encode pipeline that fills a ring of access units.
 *
 * Output is Annex-B (start codes). Every IDR begins with its parameter sets (HEVC:
 * VPS, SPS, PPS; H.264: SPS, PPS), then the slices; no access unit carries SEI or AUD
 * NAL units (encode/au_tidy.h: what Moonlight reads from a frame's first packet).
 * Low-latency settings: no B-frames, zero-latency tuning, CBR with a one-frame VBV
 * (bufsize = bitrate / fps), infinite GOP, IDR only on request (or periodic intra
 * refresh when asked). The encoder is chosen by probing
 * (hardware first, then software); the choice and the reason for every
 * candidate are reported, never a silent fallback. Colour conversion is libyuv
 * (BT.601 limited range, I420).
 */
#ifndef NEURON_ENCODE_H
#define NEURON_ENCODE_H

#include "neuron.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { NEURON_CODEC_H264 = 0, NEURON_CODEC_HEVC = 1 };

typedef struct neuron_encoder_config {
    uint32_t codec;          /* 0: NEURON_CODEC_* */
    uint32_t width;          /* 4: even, 16-8192 (odd sizes are cropped by one) */
    uint32_t height;         /* 8 */
    uint32_t fps;            /* 12: 1-240 */
    uint32_t bitrate_kbps;   /* 16: 100-500000 */
    uint32_t threads;        /* 20: 1-16 (software encoders) */
    uint32_t intra_refresh;  /* 24: 1 = periodic intra refresh instead of IDR frames */
    uint32_t input_format;   /* 28: NEURON_FRAME_BGRA (1) or NEURON_FRAME_RGBA (2) */
    char encoder[32];        /* 32: "" = probe; else a libavcodec encoder name to use (no fallback) */
} neuron_encoder_config;
_Static_assert(sizeof(neuron_encoder_config) == 64, "neuron_encoder_config layout");

/* One access unit's description (caller-owned, 64 bytes). */
typedef struct neuron_au_info {
    uint64_t frame_index;    /* 0: frames encoded before this one */
    uint64_t capture_ns;     /* 8: CLOCK_MONOTONIC when the frame was seen (pipeline) or submitted */
    uint64_t done_ns;        /* 16: CLOCK_MONOTONIC when the access unit was complete */
    uint32_t size;           /* 24: bytes */
    uint32_t idr;            /* 28: 1 for an IDR (parameter sets included) */
    uint32_t copy_us;        /* 32: pipeline: reading shared memory, not converting (waiting on the guest's writes) */
    uint32_t convert_us;     /* 36: RGB → I420 */
    uint32_t encode_us;      /* 40 */
    uint32_t frame_serial;   /* 44: KVMFR frameSerial (pipeline) */
    uint32_t width;          /* 48 */
    uint32_t height;         /* 52 */
    uint32_t reserved[2];    /* 56 */
} neuron_au_info;
_Static_assert(sizeof(neuron_au_info) == 64, "neuron_au_info layout");

typedef struct neuron_encoder neuron_encoder;

/* Probes and opens an encoder. NEURON_EUNSUPPORTED when none (or not the named one) opens;
 * the reason is in neuron_encoder_probe_report() of a NULL encoder until the next open. */
NEURON_EXPORT int32_t neuron_encoder_open(const neuron_encoder_config *cfg, neuron_encoder **out);

/* libavcodec name of the chosen encoder ("libx264", ...). */
NEURON_EXPORT const char *neuron_encoder_name(const neuron_encoder *e);

/* One line per candidate: "name: chosen|skipped|unavailable (reason)". For e == NULL, the
 * report of the last failed open on this thread. */
NEURON_EXPORT const char *neuron_encoder_probe_report(const neuron_encoder *e);

/*
 * Converts and encodes one frame (width x height pixels of the configured input
 * format at `pitch` bytes per row), forcing an IDR when force_idr != 0; writes the
 * access unit to out (cap bytes). Returns its size (0 when the encoder produced
 * nothing yet) or a negative status (NEURON_ERANGE: out too small, info->size says
 * how much is needed).
 */
NEURON_EXPORT int64_t neuron_encoder_encode(neuron_encoder *e, const uint8_t *src, uint32_t pitch,
                                            uint32_t force_idr, uint8_t *out, uint64_t cap, neuron_au_info *info);

/* Changes the target bitrate (and VBV) from the next frame. */
NEURON_EXPORT int32_t neuron_encoder_set_bitrate(neuron_encoder *e, uint32_t kbps);

NEURON_EXPORT void neuron_encoder_close(neuron_encoder *e);

/* ------------------------------------------------------------------------- */
/* Pipeline: a native thread reads frames from an LGMP/KVMFR region, converts  */
/* and encodes them, and appends access units to a ring JS drains by polling. */

typedef struct neuron_pipeline_config {
    neuron_encoder_config enc;  /* 0: width/height 0 = take them from the frames */
    uint32_t ring_slots;        /* 64: 2-64 access units held */
    uint32_t slot_bytes;        /* 68: capacity of one slot (0 = width*height*3/2 + 64 KiB) */
    uint32_t frame_timeout_ms;  /* 72: wait per frame before checking for stop (1-1000) */
    uint32_t wp_timeout_ms;     /* 76: bounded wait on a frame's pixels (1-1000) */
} neuron_pipeline_config;
_Static_assert(sizeof(neuron_pipeline_config) == 80, "neuron_pipeline_config layout");

typedef struct neuron_pipeline_stats {
    uint64_t frames_in;      /* 0: frames read from shared memory */
    uint64_t aus_out;        /* 8: access units put in the ring (or handed to the consumer) */
    uint64_t dropped;        /* 16: access units dropped (ring full or too big) */
    uint64_t rejected;       /* 24: frames the reader rejected */
    uint64_t restarts;       /* 32: guest sessions re-attached */
    int32_t last_error;      /* 40: last negative status of the thread (0 = none) */
    uint32_t running;        /* 44: 1 while the thread runs */
    uint32_t width;          /* 48: current encode size */
    uint32_t height;         /* 52 */
    uint32_t idr_requests;   /* 56 */
    uint32_t reserved;       /* 60 */
} neuron_pipeline_stats;
_Static_assert(sizeof(neuron_pipeline_stats) == 64, "neuron_pipeline_stats layout");

typedef struct neuron_pipeline neuron_pipeline;

/* Opens the region at `path` (as neuron_kvmfr_reader_open) and starts the thread. */
NEURON_EXPORT int32_t neuron_pipeline_start(const char *path, const neuron_pipeline_config *cfg,
                                            neuron_pipeline **out);

/* Same, reading a host virtual output's PipeWire stream (hostout.h) instead of a region: rows are
 * converted straight out of the producer's buffer. The stream is borrowed: stop the pipeline
 * before closing it. */
typedef struct neuron_pw_stream neuron_pw_stream;
NEURON_EXPORT int32_t neuron_pipeline_start_pw(neuron_pw_stream *stream, const neuron_pipeline_config *cfg,
                                               neuron_pipeline **out);

/* Same over an NVF1 listener (vsock.h): raw BGRA frames a guest exports over vsock or a unix
 * socket, converted straight out of the listener's frame buffer. Borrowed, as above. */
typedef struct neuron_nvf_reader neuron_nvf_reader;
NEURON_EXPORT int32_t neuron_pipeline_start_nvf(neuron_nvf_reader *reader, const neuron_pipeline_config *cfg,
                                                neuron_pipeline **out);

/* Takes the oldest access unit: returns its size, 0 when the ring is empty, or
 * NEURON_ERANGE (info->size tells the size; the unit stays in the ring). */
NEURON_EXPORT int64_t neuron_pipeline_poll(neuron_pipeline *p, uint8_t *dst, uint64_t cap, neuron_au_info *info);

/* Waits up to timeout_ms until the ring holds an access unit; 1 if it does. */
NEURON_EXPORT int32_t neuron_pipeline_wait(neuron_pipeline *p, uint32_t timeout_ms);

NEURON_EXPORT void neuron_pipeline_request_idr(neuron_pipeline *p);
NEURON_EXPORT int32_t neuron_pipeline_set_bitrate(neuron_pipeline *p, uint32_t kbps);
NEURON_EXPORT void neuron_pipeline_stats_get(neuron_pipeline *p, neuron_pipeline_stats *out);

/* Encoder report of the pipeline's current encoder (empty before the first frame). Copied to buf. */
NEURON_EXPORT int32_t neuron_pipeline_encoder_report(neuron_pipeline *p, char *buf, uint32_t cap);

/* Stops the thread and frees everything. NULL is ignored. */
NEURON_EXPORT void neuron_pipeline_stop(neuron_pipeline *p);

/* Where one frame's time went inside the pipeline (caller-owned, 32 bytes). "Seen" is the
 * moment the frame's message was read (neuron_au_info.capture_ns). */
typedef struct neuron_pipeline_timing {
    uint32_t frame_serial;   /* 0: KVMFR frameSerial */
    uint32_t wait_us;        /* 4: seen -> last row readable, not spent converting: waiting on the guest's writes */
    uint32_t convert_us;     /* 8: RGB -> I420, summed over the bands converted as the guest wrote them */
    uint32_t encode_us;      /* 12: the encoder call */
    uint32_t encoded_us;     /* 16: seen -> access unit in the ring (or handed to the consumer) */
    uint32_t size;           /* 20: access unit bytes */
    uint32_t idr;            /* 24: 1 for an IDR */
    uint32_t reserved;       /* 28 */
} neuron_pipeline_timing;
_Static_assert(sizeof(neuron_pipeline_timing) == 32, "neuron_pipeline_timing layout");

/* Copies up to cap timing records of the frames put in the ring since the last call (oldest
 * first; the pipeline keeps the last 1024) and returns how many. */
NEURON_EXPORT uint32_t neuron_pipeline_timings(neuron_pipeline *p, neuron_pipeline_timing *out, uint32_t cap);

/*
 * Inside the library only (not exported): a consumer that takes each access unit on the
 * pipeline thread the moment the encoder returns it, instead of the ring (no copy, no thread
 * hand-off). `au` is valid during the call only. Setting one drops what the ring holds;
 * neuron_pipeline_set_consumer(p, NULL, NULL) detaches it and returns once no call to it is
 * under way. The timing records, aus_out and IDR requests work as with the ring.
 */
typedef void (*neuron_pipeline_consumer_fn)(void *ctx, const uint8_t *au, uint32_t len, const neuron_au_info *info);
void neuron_pipeline_set_consumer(neuron_pipeline *p, neuron_pipeline_consumer_fn fn, void *ctx);

/* ------------------------------------------------------------------------- */
/* Speed measurement: a native thread opens an encoder with `cfg` and encodes a */
/* moving test pattern (BGRA → I420 → access unit, as the pipeline does), so   */
/* the caller learns the frames per second this machine sustains at a mode.    */

typedef struct neuron_encoder_speed {
    uint32_t done;           /* 0: 1 once the thread finished (the fields below are final) */
    int32_t status;          /* 4: NEURON_OK, or why it stopped (EUNSUPPORTED: no encoder opened) */
    uint32_t frames;         /* 8: frames timed (after the warm-up frames) */
    uint32_t warmup;         /* 12: frames encoded before timing started */
    uint64_t busy_us;        /* 16: time spent converting and encoding the timed frames */
    uint32_t encode_p50_us;  /* 24: median per-frame convert + encode time */
    uint32_t encode_max_us;  /* 28: slowest timed frame */
    uint32_t width;          /* 32: encoded size (even) */
    uint32_t height;         /* 36 */
    uint32_t software;       /* 40: 1 for libx264/libx265 */
    uint32_t reserved;       /* 44 */
    char encoder[32];        /* 48: the encoder that opened ("" when none) */
} neuron_encoder_speed;
_Static_assert(sizeof(neuron_encoder_speed) == 80, "neuron_encoder_speed layout");

typedef struct neuron_encoder_speed_job neuron_encoder_speed_job;

/* Starts the measurement thread: 2 warm-up frames, then frames until max_frames (1-600) are
 * timed or max_ms (1-60000) of converting and encoding passed, whichever is first. */
NEURON_EXPORT int32_t neuron_encoder_speed_start(const neuron_encoder_config *cfg, uint32_t max_frames, uint32_t max_ms,
                                                 neuron_encoder_speed_job **out);

/* Copies the current state (done = 0 while it runs). */
NEURON_EXPORT void neuron_encoder_speed_get(neuron_encoder_speed_job *job, neuron_encoder_speed *out);

/* The encoder's probe report ("name: status (reason)" lines), once done. Copied to buf. */
NEURON_EXPORT int32_t neuron_encoder_speed_report(neuron_encoder_speed_job *job, char *buf, uint32_t cap);

/* Stops the thread early if it still runs, joins it and frees the job. NULL is ignored. */
NEURON_EXPORT void neuron_encoder_speed_free(neuron_encoder_speed_job *job);

#ifdef __cplusplus
}
#endif
#endif /* NEURON_ENCODE_H */
