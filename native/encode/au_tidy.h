/*
 * Internal: puts an encoder's Annex-B access unit into the shape Moonlight's depacketizer
 * reads a frame from. That depacketizer decides from the frame's FIRST packet only: it skips
 * one AUD and SEIs that end inside that packet, calls the frame an IDR only when the next NAL
 * is the SPS (H.264) or VPS (HEVC), and stops waiting for an IDR only when the IDR slice's
 * first byte is in that packet too. An encoder-info SEI (x265: ~2.4 KB, x264: ~0.7 KB) in
 * front of the slice pushes it out of a 992- or 1360-byte packet. So:
 *   - SEI and AUD NAL units are removed (the client discards them unread);
 *   - an IDR starts with its parameter sets, in order VPS, SPS, PPS (H.264: SPS, PPS), then
 *     the slices; parameter sets the encoder left out of an IDR are taken from the last IDR
 *     that had them (or from the encoder's global header) and put in front.
 * Start codes are kept as the encoder wrote them; a leading one is made 4 bytes.
 */
#ifndef NEURON_ENCODE_AU_TIDY_H
#define NEURON_ENCODE_AU_TIDY_H

#include <stddef.h>
#include <stdint.h>

typedef struct neuron_au_tidy {
    int hevc;
    uint8_t *ps;      /* last parameter sets seen (Annex-B, in output order) */
    size_t ps_len, ps_cap;
    uint8_t *tmp;     /* scratch for one access unit */
    size_t tmp_cap;
    uint64_t sei_removed; /* bytes of SEI/AUD removed so far */
} neuron_au_tidy;

void neuron_au_tidy_init(neuron_au_tidy *t, int hevc);
void neuron_au_tidy_free(neuron_au_tidy *t);

/* Remembers the parameter sets of an out-of-band header (codec extradata, Annex-B). */
int neuron_au_tidy_learn(neuron_au_tidy *t, const uint8_t *hdr, size_t len);

/* Rewrites au[0, len) in place (cap bytes available) as described above; returns the new
 * length, -1 when out of memory, -2 when cap is too small for the parameter sets to add (the
 * unit is then left as it was). */
int64_t neuron_au_tidy_run(neuron_au_tidy *t, uint8_t *au, size_t len, size_t cap, int idr);

#endif
