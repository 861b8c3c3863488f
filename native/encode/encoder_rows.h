/* Internal: encoding a frame converted band by band (the pipeline converts straight out of shared memory). */
#ifndef NEURON_ENCODE_ENCODER_ROWS_H
#define NEURON_ENCODE_ENCODER_ROWS_H

#include "../encode.h"

/* Makes the encoder's I420 frame writable before rows are converted into it. */
int32_t neuron_encoder_begin_frame(neuron_encoder *e);

/* Converts source rows [y0, y1) (y0 even; rows past the encode height are ignored) into the frame. */
int32_t neuron_encoder_convert_rows(neuron_encoder *e, const uint8_t *src, uint32_t pitch, uint32_t y0, uint32_t y1);

/* Encodes the converted frame; fills frame_index, done_ns, size, idr, encode_us, width, height. */
int64_t neuron_encoder_encode_frame(neuron_encoder *e, uint32_t force_idr, uint8_t *out, uint64_t cap,
                                    neuron_au_info *info);

#endif
