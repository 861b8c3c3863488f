/* Inside libneuron only: what the NVF1 listener needs from the parser. */
#ifndef NEURON_NVF_INTERNAL_H
#define NEURON_NVF_INTERNAL_H
#include "../vsock.h"

/* Exchanges the parser's payload buffer with *buf (the frame just completed moves out, no copy). */
void nvf_parser_swap_buffer(neuron_nvf_parser *p, uint8_t **buf, uint64_t *cap);
/* Bytes of the current record received so far; *expected = the payload's size when inside one. */
uint32_t nvf_parser_received(const neuron_nvf_parser *p, uint32_t *expected);
#endif
