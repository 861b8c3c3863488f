/* Opus encoder: CBR packet sizes, stereo/5.1/7.1 layouts, a tone survives an encode/decode round trip. */
#include "../audio.h"
#include "check.h"

#include <math.h>
#include <string.h>

static double round_trip(uint32_t channels, uint32_t bitrate, uint32_t frame, neuron_opus_layout *lay, int *cbr) {
    neuron_opus_config cfg = {.sample_rate = 48000, .channels = channels, .bitrate_bps = bitrate, .frame_samples = frame};
    neuron_opus_encoder *e = NULL;
    neuron_opus_decoder *d = NULL;
    CHECK(neuron_opus_encoder_open(&cfg, &e) == NEURON_OK);
    neuron_opus_encoder_layout(e, lay);
    CHECK(neuron_opus_decoder_open(channels, lay, &d) == NEURON_OK);
    static int16_t in[960 * 8], outpcm[5760 * 8];
    static int16_t all_in[48000 * 8], all_out[48000 * 8];
    uint8_t pkt[4000];
    uint32_t pos = 0, sizes_same = 1;
    int32_t first = -1;
    for (uint32_t f = 0; f < 48000 / frame; f++) {
        for (uint32_t s = 0; s < frame; s++)
            for (uint32_t c = 0; c < channels; c++)
                in[s * channels + c] = (int16_t)(8000 * sin(2 * M_PI * 440.0 * (double)(f * frame + s) / 48000.0));
        int32_t n = neuron_opus_encode(e, in, pkt, sizeof pkt);
        CHECK(n > 0);
        if (f > 2) {
            if (first < 0) first = n;
            else if (n != first) sizes_same = 0;
        }
        int32_t got = neuron_opus_decode(d, pkt, (uint32_t)n, outpcm, 5760);
        CHECK(got == (int32_t)frame);
        memcpy(all_in + pos * channels, in, frame * channels * 2);
        memcpy(all_out + pos * channels, outpcm, frame * channels * 2);
        pos += frame;
    }
    *cbr = sizes_same;
    /* correlation of channel 0 after the codec delay (search a small lag window) */
    double best = 0;
    for (uint32_t lag = 0; lag < 800; lag++) {
        double xy = 0, xx = 0, yy = 0;
        for (uint32_t s = 4800; s < 40000; s++) {
            double x = all_in[s * channels], y = all_out[(s + lag) * channels];
            xy += x * y;
            xx += x * x;
            yy += y * y;
        }
        double r = xy / (sqrt(xx * yy) + 1e-9);
        if (r > best) best = r;
    }
    neuron_opus_decoder_close(d);
    neuron_opus_encoder_close(e);
    return best;
}

int main(void) {
    neuron_opus_layout lay;
    int cbr = 0;
    CHECK(round_trip(2, 128000, 240, &lay, &cbr) > 0.95);
    CHECK(cbr == 1 && lay.streams == 1 && lay.coupled == 1);
    CHECK(round_trip(6, 256000, 240, &lay, &cbr) > 0.9);
    CHECK(lay.streams == 4 && lay.coupled == 2);
    CHECK(round_trip(8, 450000, 480, &lay, &cbr) > 0.9);
    CHECK(lay.streams == 5 && lay.coupled == 3);
    neuron_opus_config bad = {.sample_rate = 44100, .channels = 2, .bitrate_bps = 96000, .frame_samples = 240};
    neuron_opus_encoder *e = NULL;
    CHECK(neuron_opus_encoder_open(&bad, &e) == NEURON_EINVAL);
    bad.sample_rate = 48000;
    bad.channels = 3;
    CHECK(neuron_opus_encoder_open(&bad, &e) == NEURON_EINVAL);
    bad.channels = 2;
    bad.frame_samples = 100;
    CHECK(neuron_opus_encoder_open(&bad, &e) == NEURON_EINVAL);
    neuron_opus_layout evil = {.streams = 1, .coupled = 1, .mapping = {0, 9}};
    neuron_opus_decoder *d = NULL;
    CHECK(neuron_opus_decoder_open(2, &evil, &d) == NEURON_EINVAL);
    evil.mapping[1] = 1;
    CHECK(neuron_opus_decoder_open(2, &evil, &d) == NEURON_OK);
    int16_t pcm[5760 * 2];
    uint8_t junk[64];
    memset(junk, 0xff, sizeof junk);
    int32_t rc = neuron_opus_decode(d, junk, sizeof junk, pcm, 5760);
    CHECK(rc == NEURON_EFORMAT || rc > 0);
    neuron_opus_decoder_close(d);
    /* explicit layouts: 7.1 high quality (8 uncoupled streams, 2048 kbps), a round trip keeps channel order */
    neuron_opus_layout l71 = {.streams = 5, .coupled = 3, .mapping = {0, 1, 4, 5, 6, 7, 2, 3}};
    neuron_opus_config c71 = {.sample_rate = 48000, .channels = 8, .bitrate_bps = 2048000, .frame_samples = 240};
    CHECK(neuron_opus_encoder_open_layout(&c71, &l71, &e) == NEURON_OK);
    neuron_opus_layout got;
    neuron_opus_encoder_layout(e, &got);
    CHECK(got.streams == 5 && got.coupled == 3 && memcmp(got.mapping, l71.mapping, 8) == 0);
    CHECK(neuron_opus_decoder_open(8, &l71, &d) == NEURON_OK);
    static int16_t in8[240 * 8];
    uint8_t pkt8[4000];
    int32_t sz = 0;
    for (int f = 0; f < 20; f++) {
        for (int s = 0; s < 240; s++)
            for (int c = 0; c < 8; c++) in8[s * 8 + c] = c == 6 ? (int16_t)(9000 * sin(2 * M_PI * 1000.0 * (f * 240 + s) / 48000.0)) : 0;
        sz = neuron_opus_encode(e, in8, pkt8, sizeof pkt8);
        CHECK(sz == 2048000 / 8 / 200);
        CHECK(neuron_opus_decode(d, pkt8, (uint32_t)sz, pcm, 5760) == 240);
    }
    double e6 = 0, eo = 0;
    for (int s = 0; s < 240; s++)
        for (int c = 0; c < 8; c++) *(c == 6 ? &e6 : &eo) += (double)pcm[s * 8 + c] * pcm[s * 8 + c];
    CHECK(e6 > 100 * (eo + 1));
    neuron_opus_decoder_close(d);
    neuron_opus_encoder_close(e);
    neuron_opus_layout badl = {.streams = 4, .coupled = 3, .mapping = {0, 1, 2, 3, 4, 5}};
    neuron_opus_config c51 = {.sample_rate = 48000, .channels = 6, .bitrate_bps = 256000, .frame_samples = 240};
    CHECK(neuron_opus_encoder_open_layout(&c51, &badl, &e) == NEURON_EINVAL);
    badl.coupled = 2;
    badl.mapping[5] = 6;
    CHECK(neuron_opus_encoder_open_layout(&c51, &badl, &e) == NEURON_EINVAL);
    CHECK(neuron_opus_encoder_open_layout(&c51, NULL, &e) == NEURON_EINVAL);
    c51.bitrate_bps = 3000000;
    badl.mapping[5] = 5;
    CHECK(neuron_opus_encoder_open_layout(&c51, &badl, &e) == NEURON_EINVAL);
    return check_report("audio");
}
