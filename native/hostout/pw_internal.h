/* Inside libneuron only: the PipeWire consumer feeding the encode pipeline's frame sink. */
#ifndef NEURON_PW_INTERNAL_H
#define NEURON_PW_INTERNAL_H
#include "../hostout.h"
#include "../capture/reader_sink.h"

/* neuron_pw_stream_next_frame() with the held buffer's rows handed to `sink` in place. */
int32_t neuron_pw_stream_next_frame_sink(neuron_pw_stream *s, uint32_t timeout_ms, const neuron_frame_sink *sink,
                                         neuron_frame_info *info);
#endif
