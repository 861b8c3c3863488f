/* Inside libneuron only: what the NVF1 listener needs from the parser. */
#ifndef NEURON_NVF_INTERNAL_H
#define NEURON_NVF_INTERNAL_H
#include "../vsock.h"

/* Exchanges the parser's payload buffer with *buf (the frame just completed moves out, no copy). */
void nvf_parser_swap_buffer(neuron_nvf_parser *p, uint8_t **buf, uint64_t *cap);
/* Bytes of the current record received so far; *expected = the payload's size when inside one. */
uint32_t nvf_parser_received(const neuron_nvf_parser *p, uint32_t *expected);
#include "reader_sink.h"
/* neuron_nvf_reader_next_frame() with a raw frame's rows handed to `sink` in place (H.264 access
 * units are refused with NEURON_EUNSUPPORTED: they bypass the encoder). */
int32_t neuron_nvf_reader_next_frame_sink(neuron_nvf_reader *r, uint32_t timeout_ms, const neuron_frame_sink *sink,
                                          neuron_frame_info *info);
#endif
