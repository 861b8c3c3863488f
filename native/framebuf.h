/*
 * framebuf — the appliance's own simple shared-memory frame layout ("NFB1"):
 * a triple-buffered frame region with one lock-free atomic slot index, plus a
 * cursor area and an audio ring. A second frame source beside the Looking
 * Glass layout (capture.h), for guests that run our own capture agent.
 *
 * Layout (little-endian, offsets from the region start; the header is one page):
 *   0    u32 magic 0x3142464e ("NFB1")
 *   4    u32 version (1)
 *   8    u32 header_size (4096)
 *   12   u32 slot_count (3)
 *   16   u32 width (pixels, 16-16384)
 *   20   u32 height (pixels, 16-16384)
 *   24   u32 pitch (bytes per row, >= width * 4)
 *   28   u32 format (NEURON_FRAME_BGRA or NEURON_FRAME_RGBA)
 *   32   u64 slot_offset[3] (page-aligned, each slot holds height * pitch bytes)
 *   56   u64 slot_size
 *   64   u32 middle — the shared slot: bits 0-1 its index, bit 2 "holds a new frame".
 *        The writer owns a back slot, the reader a front slot, both private. The
 *        writer fills its back slot, then atomically exchanges back <-> middle with
 *        the new-frame bit set; the reader, when the bit is set, atomically exchanges
 *        its front <-> middle (clearing the bit). Initial: back 0, middle 1, front 2.
 *   68   u32 front — the reader's current front slot (reader-owned; lets a restarted
 *        reader continue the rotation)
 *   72   u64 frame_seq[3] — sequence number of the frame in each slot (set before publishing)
 *   96   u64 heartbeat_ms — the writer's clock, advanced at least every 100 ms
 *   104  u32 session_id — changes when the writer re-initialises
 *   108  u32 reserved
 *   112  cursor: i32 x @112, i32 y @116, u32 visible @120, u32 shape_serial @124,
 *        u32 shape_width @128, u32 shape_height @132 (<= 512), u64 shape_offset @136
 *        (BGRA, width*4 pitch; 0 = no shape)
 *   144  audio: u64 audio_offset @144, u32 audio_size @152 (ring bytes, multiple of
 *        the frame size), u32 audio_rate @156, u32 audio_channels @160,
 *        u32 audio_bytes_per_sample @164 (2: s16le), u64 audio_wpos @168 (bytes
 *        written since start, monotonic; the ring holds the last audio_size bytes)
 */
#ifndef NEURON_FRAMEBUF_H
#define NEURON_FRAMEBUF_H

#include "capture.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NEURON_NFB_MAGIC 0x3142464eu
#define NEURON_NFB_VERSION 1u
#define NEURON_NFB_HEADER_SIZE 4096u

typedef struct neuron_fb_reader neuron_fb_reader;
typedef struct neuron_fb_producer neuron_fb_producer;

/* Maps the region at `path` (size 0 = whole file). */
NEURON_EXPORT int32_t neuron_fb_reader_open(const char *path, uint64_t size, neuron_fb_reader **out);

/* Validates the header (NEURON_EUNSUPPORTED names both versions; NEURON_EFORMAT for bad
 * geometry) and waits up to timeout_ms for the heartbeat to move (0: no wait). */
NEURON_EXPORT int32_t neuron_fb_reader_attach(neuron_fb_reader *r, uint32_t timeout_ms);

/* Waits up to timeout_ms for a newer frame and copies it (tightly packed) into dst.
 * Returns NEURON_CAPTURE_FRAME / _TIMEOUT / _RESTARTED or a negative status. */
NEURON_EXPORT int32_t neuron_fb_reader_next_frame(neuron_fb_reader *r, uint32_t timeout_ms, uint8_t *dst,
                                                  uint64_t dst_cap, neuron_frame_info *info);

/* Latest cursor state (shape pixels into shape when given). Returns shape bytes copied. */
NEURON_EXPORT int64_t neuron_fb_reader_cursor(neuron_fb_reader *r, neuron_cursor_info *info, uint8_t *shape,
                                              uint64_t cap);

/* Copies audio written since the last call (at most cap bytes, whole sample frames).
 * Returns bytes copied; *overrun is set when audio was lost because the reader lagged. */
NEURON_EXPORT int64_t neuron_fb_reader_audio(neuron_fb_reader *r, uint8_t *dst, uint64_t cap, uint32_t *overrun);

NEURON_EXPORT void neuron_fb_reader_stats(const neuron_fb_reader *r, neuron_reader_stats *out);
NEURON_EXPORT const char *neuron_fb_reader_error(const neuron_fb_reader *r);
NEURON_EXPORT void neuron_fb_reader_close(neuron_fb_reader *r);

/* Test producer: test-pattern frames at cfg->fps, cursor moves, a 48 kHz stereo s16 tone.
 * Faults: NEURON_FAULT_WRONG_VERSION (writes version 2), NEURON_FAULT_NEW_SESSION. */
NEURON_EXPORT int32_t neuron_fb_producer_start(const char *path, const neuron_producer_config *cfg,
                                               neuron_fb_producer **out);
NEURON_EXPORT uint64_t neuron_fb_producer_frames(const neuron_fb_producer *p);
NEURON_EXPORT void neuron_fb_producer_stop(neuron_fb_producer *p);

#ifdef __cplusplus
}
#endif
#endif /* NEURON_FRAMEBUF_H */
