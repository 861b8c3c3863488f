/* Internal: consuming a frame's rows in place, as the guest's wp covers them (no copy). */
#ifndef NEURON_CAPTURE_READER_SINK_H
#define NEURON_CAPTURE_READER_SINK_H

#include "../capture.h"

typedef struct neuron_frame_sink {
    /* Called once the frame is validated (info filled, info->bytes = tight size):
     * 0 to take it, a negative status to refuse it (it is released, the status returned). */
    int (*begin)(void *ctx, const neuron_frame_info *info);
    /* Rows [y0, y1) of `height` are readable at src + y * pitch (shared memory: read once,
     * untrusted values). Returns the row it consumed up to (y0..y1). */
    uint32_t (*rows)(void *ctx, const uint8_t *src, uint32_t pitch, uint32_t y0, uint32_t y1, uint32_t height);
    void *ctx;
} neuron_frame_sink;

/* neuron_kvmfr_reader_next_frame() with the rows handed to a sink while the message is held. */
int32_t neuron_kvmfr_reader_next_frame_sink(neuron_kvmfr_reader *r, uint32_t timeout_ms, uint32_t wp_timeout_ms,
                                            const neuron_frame_sink *sink, neuron_frame_info *info);

#endif
