/* Opus encoder (CBR, restricted low delay) and a decoder for verification (../audio.h). */
#include "../audio.h"

#include <opus/opus_multistream.h>
#include <stdlib.h>
#include <string.h>

struct neuron_opus_encoder {
    OpusMSEncoder *enc;
    neuron_opus_config cfg;
    neuron_opus_layout layout;
};

struct neuron_opus_decoder {
    OpusMSDecoder *dec;
    uint32_t channels;
};

int32_t neuron_opus_encoder_open(const neuron_opus_config *cfg, neuron_opus_encoder **out) {
    if (!cfg || !out || cfg->sample_rate != 48000 || (cfg->channels != 2 && cfg->channels != 6 && cfg->channels != 8) ||
        cfg->bitrate_bps < 6000 || cfg->bitrate_bps > 1536000 ||
        (cfg->frame_samples != 120 && cfg->frame_samples != 240 && cfg->frame_samples != 480 && cfg->frame_samples != 960))
        return NEURON_EINVAL;
    neuron_opus_encoder *e = calloc(1, sizeof *e);
    if (!e) return NEURON_ENOMEM;
    e->cfg = *cfg;
    int streams = 0, coupled = 0, err = OPUS_OK;
    unsigned char mapping[8] = {0};
    e->enc = opus_multistream_surround_encoder_create(48000, (int)cfg->channels, cfg->channels == 2 ? 0 : 1, &streams,
                                                      &coupled, mapping, OPUS_APPLICATION_RESTRICTED_LOWDELAY, &err);
    if (!e->enc || err != OPUS_OK) {
        free(e);
        return NEURON_EUNSUPPORTED;
    }
    if (opus_multistream_encoder_ctl(e->enc, OPUS_SET_BITRATE((opus_int32)cfg->bitrate_bps)) != OPUS_OK ||
        opus_multistream_encoder_ctl(e->enc, OPUS_SET_VBR(0)) != OPUS_OK) {
        neuron_opus_encoder_close(e);
        return NEURON_EINVAL;
    }
    e->layout.streams = (uint32_t)streams;
    e->layout.coupled = (uint32_t)coupled;
    memcpy(e->layout.mapping, mapping, cfg->channels);
    *out = e;
    return NEURON_OK;
}

static int layout_valid(uint32_t channels, const neuron_opus_layout *layout) {
    if (!layout || layout->streams < 1 || layout->streams > channels || layout->coupled > layout->streams ||
        layout->streams + layout->coupled > channels)
        return 0;
    for (uint32_t i = 0; i < channels; i++)
        if (layout->mapping[i] != 255 && layout->mapping[i] >= layout->streams + layout->coupled) return 0;
    return 1;
}

int32_t neuron_opus_encoder_open_layout(const neuron_opus_config *cfg, const neuron_opus_layout *layout,
                                        neuron_opus_encoder **out) {
    if (!cfg || !out || cfg->sample_rate != 48000 || (cfg->channels != 2 && cfg->channels != 6 && cfg->channels != 8) ||
        cfg->bitrate_bps < 6000 || cfg->bitrate_bps > 2048000 ||
        (cfg->frame_samples != 120 && cfg->frame_samples != 240 && cfg->frame_samples != 480 && cfg->frame_samples != 960) ||
        !layout_valid(cfg->channels, layout))
        return NEURON_EINVAL;
    neuron_opus_encoder *e = calloc(1, sizeof *e);
    if (!e) return NEURON_ENOMEM;
    e->cfg = *cfg;
    int err = OPUS_OK;
    e->enc = opus_multistream_encoder_create(48000, (int)cfg->channels, (int)layout->streams, (int)layout->coupled,
                                             layout->mapping, OPUS_APPLICATION_RESTRICTED_LOWDELAY, &err);
    if (!e->enc || err != OPUS_OK) {
        free(e);
        return NEURON_EINVAL;
    }
    if (opus_multistream_encoder_ctl(e->enc, OPUS_SET_BITRATE((opus_int32)cfg->bitrate_bps)) != OPUS_OK ||
        opus_multistream_encoder_ctl(e->enc, OPUS_SET_VBR(0)) != OPUS_OK) {
        neuron_opus_encoder_close(e);
        return NEURON_EINVAL;
    }
    e->layout = *layout;
    memset(e->layout.mapping + cfg->channels, 0, sizeof e->layout.mapping - cfg->channels);
    *out = e;
    return NEURON_OK;
}

void neuron_opus_encoder_layout(const neuron_opus_encoder *e, neuron_opus_layout *out) {
    if (e && out) *out = e->layout;
}

int32_t neuron_opus_encode(neuron_opus_encoder *e, const int16_t *pcm, uint8_t *out, uint32_t cap) {
    if (!e || !pcm || !out || cap < 8) return NEURON_EINVAL;
    int n = opus_multistream_encode(e->enc, pcm, (int)e->cfg.frame_samples, out, (opus_int32)(cap > 1 << 20 ? 1 << 20 : cap));
    if (n == OPUS_BUFFER_TOO_SMALL) return NEURON_ERANGE;
    return n < 0 ? NEURON_EIO : n;
}

void neuron_opus_encoder_close(neuron_opus_encoder *e) {
    if (!e) return;
    opus_multistream_encoder_destroy(e->enc);
    free(e);
}

int32_t neuron_opus_decoder_open(uint32_t channels, const neuron_opus_layout *layout, neuron_opus_decoder **out) {
    if (!layout || !out || (channels != 2 && channels != 6 && channels != 8) || layout->streams < 1 ||
        layout->streams > channels || layout->coupled > layout->streams || layout->streams + layout->coupled > 255)
        return NEURON_EINVAL;
    for (uint32_t i = 0; i < channels; i++)
        if (layout->mapping[i] != 255 && layout->mapping[i] >= layout->streams + layout->coupled) return NEURON_EINVAL;
    neuron_opus_decoder *d = calloc(1, sizeof *d);
    if (!d) return NEURON_ENOMEM;
    int err = OPUS_OK;
    d->dec = opus_multistream_decoder_create(48000, (int)channels, (int)layout->streams, (int)layout->coupled,
                                             layout->mapping, &err);
    if (!d->dec || err != OPUS_OK) {
        free(d);
        return NEURON_EINVAL;
    }
    d->channels = channels;
    *out = d;
    return NEURON_OK;
}

int32_t neuron_opus_decode(neuron_opus_decoder *d, const uint8_t *packet, uint32_t len, int16_t *pcm,
                           uint32_t max_samples) {
    if (!d || !pcm || (!packet && len) || max_samples < 120 || len > 1 << 20) return NEURON_EINVAL;
    int n = opus_multistream_decode(d->dec, packet, (opus_int32)len, pcm, (int)(max_samples > 5760 ? 5760 : max_samples), 0);
    return n < 0 ? NEURON_EFORMAT : n;
}

void neuron_opus_decoder_close(neuron_opus_decoder *d) {
    if (!d) return;
    opus_multistream_decoder_destroy(d->dec);
    free(d);
}
