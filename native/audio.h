/*
 * audio — the Opus encoder of the stream's audio: 48 kHz s16 interleaved PCM,
 * stereo, 5.1 or 7.1 (Vorbis channel order: FL FC FR RL RR LFE ..., as mapping
 * family 1), CBR, OPUS_APPLICATION_RESTRICTED_LOWDELAY, 5 ms frames by default.
 * Surround uses the multistream encoder; its stream count, coupled count and
 * channel mapping are reported for the session description.
 */
#ifndef NEURON_AUDIO_H
#define NEURON_AUDIO_H

#include "neuron.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct neuron_opus_config {
    uint32_t sample_rate;    /* 0: 48000 only */
    uint32_t channels;       /* 4: 2, 6 or 8 */
    uint32_t bitrate_bps;    /* 8: 6000-1536000 (whole stream) */
    uint32_t frame_samples;  /* 12: per channel: 120 (2.5 ms), 240 (5 ms), 480 (10 ms), 960 (20 ms) */
} neuron_opus_config;
_Static_assert(sizeof(neuron_opus_config) == 16, "neuron_opus_config layout");

/* Stream layout of an encoder (caller-owned, 16 bytes). */
typedef struct neuron_opus_layout {
    uint32_t streams;        /* 0 */
    uint32_t coupled;        /* 4 */
    uint8_t mapping[8];      /* 8: channel → stream index (first `channels` bytes used) */
} neuron_opus_layout;
_Static_assert(sizeof(neuron_opus_layout) == 16, "neuron_opus_layout layout");

typedef struct neuron_opus_encoder neuron_opus_encoder;
typedef struct neuron_opus_decoder neuron_opus_decoder;

NEURON_EXPORT int32_t neuron_opus_encoder_open(const neuron_opus_config *cfg, neuron_opus_encoder **out);
NEURON_EXPORT void neuron_opus_encoder_layout(const neuron_opus_encoder *e, neuron_opus_layout *out);

/*
 * Encoder with an explicit multistream layout (the one the session description
 * advertises, e.g. GameStream's surround-params): input channels in the
 * client's order, mapping[c] = coded channel of input channel c. Bitrate bound
 * 6000-2048000 (7.1 high quality). The layout is reported back unchanged.
 */
NEURON_EXPORT int32_t neuron_opus_encoder_open_layout(const neuron_opus_config *cfg, const neuron_opus_layout *layout,
                                                      neuron_opus_encoder **out);

/* Encodes one frame (frame_samples * channels s16 samples) into out; returns bytes or a status. */
NEURON_EXPORT int32_t neuron_opus_encode(neuron_opus_encoder *e, const int16_t *pcm, uint8_t *out, uint32_t cap);
NEURON_EXPORT void neuron_opus_encoder_close(neuron_opus_encoder *e);

/* Decoder for the same layout (verification and loopback tests): returns samples per channel. */
NEURON_EXPORT int32_t neuron_opus_decoder_open(uint32_t channels, const neuron_opus_layout *layout,
                                               neuron_opus_decoder **out);
NEURON_EXPORT int32_t neuron_opus_decode(neuron_opus_decoder *d, const uint8_t *packet, uint32_t len, int16_t *pcm,
                                         uint32_t max_samples);
NEURON_EXPORT void neuron_opus_decoder_close(neuron_opus_decoder *d);

#ifdef __cplusplus
}
#endif
#endif /* NEURON_AUDIO_H */
