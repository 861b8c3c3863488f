/* Encoder (libx264 through libavcodec) and the capture → encode pipeline. */
#include "../capture.h"
#include "../encode.h"
#include "../encode/au_tidy.h"
#include "check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define W 320
#define H 240

/* Bitmask of the H.264 NAL unit types in an Annex-B buffer. */
static uint32_t nal_types(const uint8_t *b, int64_t n) {
    uint32_t mask = 0;
    for (int64_t i = 0; i + 3 < n; i++)
        if (b[i] == 0 && b[i + 1] == 0 && b[i + 2] == 1) mask |= 1u << (b[i + 3] & 0x1f);
    return mask;
}

/* SEI/AUD removal and parameter sets first, on hand-made HEVC and H.264 units. */
static void test_au_tidy(void) {
    neuron_au_tidy t;
    neuron_au_tidy_init(&t, 1);
    /* HEVC IDR as x265 with info=1 writes it, behind an AUD: AUD, VPS, SPS, SEI, PPS, IDR slice */
    static const uint8_t idr[] = {0, 0, 0, 1, 0x46, 0x01, 0x50,           /* AUD (35) */
                                  0, 0, 0, 1, 0x40, 0x01, 0xaa,           /* VPS (32) */
                                  0, 0, 0, 1, 0x42, 0x01, 0xbb, 0xbb,     /* SPS (33) */
                                  0, 0, 1, 0x4e, 0x01, 5, 9, 9, 9, 9, 0x80, /* SEI (39) */
                                  0, 0, 0, 1, 0x44, 0x01, 0xcc,           /* PPS (34) */
                                  0, 0, 1, 0x28, 0x01, 0xdd, 0xdd, 0xdd}; /* IDR_N_LP (20) */
    static const uint8_t want[] = {0, 0, 0, 1, 0x40, 0x01, 0xaa, 0, 0, 0, 1, 0x42, 0x01, 0xbb, 0xbb,
                                   0, 0, 0, 1, 0x44, 0x01, 0xcc, 0, 0, 1, 0x28, 0x01, 0xdd, 0xdd, 0xdd};
    uint8_t buf[128];
    memcpy(buf, idr, sizeof idr);
    int64_t n = neuron_au_tidy_run(&t, buf, sizeof idr, sizeof buf, 1);
    CHECK(n == (int64_t)sizeof want && memcmp(buf, want, sizeof want) == 0);
    CHECK(t.sei_removed == 7 + 11);
    /* an IDR without parameter sets gets the stored ones; a P frame only loses its SEI */
    static const uint8_t bare[] = {0, 0, 1, 0x4e, 0x01, 1, 0x80, 0, 0, 1, 0x28, 0x01, 0xee};
    memcpy(buf, bare, sizeof bare);
    n = neuron_au_tidy_run(&t, buf, sizeof bare, sizeof buf, 1);
    CHECK(n == 22 + 6 && memcmp(buf, want, 22) == 0 && memcmp(buf + 22, "\0\0\1\x28\x01\xee", 6) == 0);
    memcpy(buf, bare, sizeof bare);
    CHECK(neuron_au_tidy_run(&t, buf, sizeof bare, 20, 1) == -2); /* no room for them: left as it was */
    CHECK(memcmp(buf, bare, sizeof bare) == 0);
    static const uint8_t p[] = {0, 0, 0, 1, 0x02, 0x01, 0x11, 0, 0, 1, 0x50, 0x01, 0x22, 0x80}; /* TRAIL_R, suffix SEI */
    memcpy(buf, p, sizeof p);
    CHECK(neuron_au_tidy_run(&t, buf, sizeof p, sizeof buf, 0) == 7 && memcmp(buf, p, 7) == 0);
    neuron_au_tidy_free(&t);

    /* H.264: x264's version SEI between PPS and the first slice */
    neuron_au_tidy_init(&t, 0);
    static const uint8_t h[] = {0, 0, 0, 1, 0x67, 1, 2, 0, 0, 0, 1, 0x68, 3, 0, 0, 1, 0x06, 5, 1, 0x78, 0x80,
                                0, 0, 1, 0x65, 7, 7, 0, 0, 1, 0x65, 8, 8};
    static const uint8_t hw[] = {0, 0, 0, 1, 0x67, 1, 2, 0, 0, 0, 1, 0x68, 3, 0, 0, 1, 0x65, 7, 7, 0, 0, 1, 0x65, 8, 8};
    memcpy(buf, h, sizeof h);
    n = neuron_au_tidy_run(&t, buf, sizeof h, sizeof buf, 1);
    CHECK(n == (int64_t)sizeof hw && memcmp(buf, hw, sizeof hw) == 0);
    /* global-header parameter sets (extradata) are the ones an IDR without its own gets */
    neuron_au_tidy_free(&t);
    neuron_au_tidy_init(&t, 0);
    CHECK(neuron_au_tidy_learn(&t, hw, 13) == 0 && t.ps_len == 13);
    static const uint8_t hs[] = {0, 0, 1, 0x65, 9};
    memcpy(buf, hs, sizeof hs);
    CHECK(neuron_au_tidy_run(&t, buf, sizeof hs, sizeof buf, 1) == 13 + 5 && memcmp(buf, hw, 13) == 0 && buf[13] == 0 && buf[16] == 0x65);
    neuron_au_tidy_free(&t);
}

static void test_encoder(void) {
    neuron_encoder_config cfg = {.codec = NEURON_CODEC_H264, .width = W, .height = H, .fps = 60,
                                 .bitrate_kbps = 2000, .threads = 2, .input_format = NEURON_FRAME_BGRA};
    neuron_encoder *e = NULL;
    CHECK(neuron_encoder_open(&cfg, &e) == NEURON_OK);
    CHECK(strcmp(neuron_encoder_name(e), "libx264") == 0);
    const char *rep = neuron_encoder_probe_report(e);
    CHECK(strstr(rep, "libx264: chosen") != NULL && strstr(rep, "h264_nvenc: ") != NULL);
    static uint8_t src[W * H * 4], out[W * H * 2];
    neuron_au_info info;
    for (uint32_t i = 0; i < 12; i++) {
        neuron_testpattern_fill(src, W, H, W * 4, i);
        int64_t n = neuron_encoder_encode(e, src, W * 4, i == 8, out, sizeof out, &info);
        CHECK(n > 0);
        CHECK(info.frame_index == i && info.size == (uint32_t)n);
        uint32_t types = nal_types(out, n);
        if (i == 0 || i == 8) {
            CHECK(info.idr == 1);
            CHECK((types & (1u << 7)) && (types & (1u << 8)) && (types & (1u << 5)));
            CHECK(out[0] == 0 && out[1] == 0 && out[2] == 0 && out[3] == 1 && (out[4] & 0x1f) == 7);
            CHECK(!(types & (1u << 6)) && !(types & (1u << 9))); /* no SEI (x264's version string), no AUD */
        } else {
            CHECK(info.idr == 0 && !(types & (1u << 5)) && (types & (1u << 1)));
        }
    }
    CHECK(neuron_encoder_encode(e, src, W * 4, 0, out, 8, &info) == NEURON_ERANGE);
    CHECK(neuron_encoder_set_bitrate(e, 50) == NEURON_EINVAL);
    CHECK(neuron_encoder_set_bitrate(e, 1000) == NEURON_OK);
    CHECK(neuron_encoder_encode(e, src, 4, 0, out, sizeof out, &info) == NEURON_EINVAL);
    neuron_encoder_close(e);

    /* No silent fallback: a named encoder that cannot open is an error with a reason. */
    snprintf(cfg.encoder, sizeof cfg.encoder, "h264_nvenc");
    CHECK(neuron_encoder_open(&cfg, &e) == NEURON_EUNSUPPORTED);
    CHECK(strstr(neuron_encoder_probe_report(NULL), "h264_nvenc: unavailable") != NULL);
    cfg.encoder[0] = 0;
    cfg.width = 8;
    CHECK(neuron_encoder_open(&cfg, &e) == NEURON_EINVAL);
}

static void test_pipeline(void) {
    char path[64];
    snprintf(path, sizeof path, "/dev/shm/neuron-test-encode-%d", (int)getpid());
    neuron_producer_config pc = {.width = W, .height = H, .fps = 120};
    neuron_producer *prod = NULL;
    CHECK(neuron_producer_start(path, 0, &pc, &prod) == NEURON_OK);
    neuron_pipeline_config cfg = {.enc = {.codec = NEURON_CODEC_H264, .fps = 60, .bitrate_kbps = 2000, .threads = 2},
                                  .ring_slots = 8, .frame_timeout_ms = 50, .wp_timeout_ms = 100};
    neuron_pipeline *p = NULL;
    CHECK(neuron_pipeline_start(path, &cfg, &p) == NEURON_OK);
    static uint8_t au[W * H * 2];
    neuron_au_info info;
    int got = 0, idrs = 0;
    uint32_t last_serial = 0;
    for (int i = 0; i < 800 && got < 30; i++) {
        if (!neuron_pipeline_wait(p, 50)) continue;
        int64_t n = neuron_pipeline_poll(p, au, sizeof au, &info);
        if (n <= 0) continue;
        CHECK(info.width == W && info.height == H && info.done_ns >= info.capture_ns);
        CHECK(info.frame_serial > last_serial);
        last_serial = info.frame_serial;
        if (info.idr) idrs++;
        if (got == 10) neuron_pipeline_request_idr(p);
        got++;
    }
    CHECK(got == 30); /* the ring holds 8: the IDR requested at unit 10 arrives by unit 19 */
    /* One timing record per unit put in the ring, in ring order. */
    static neuron_pipeline_timing tm[1024];
    uint32_t nt = neuron_pipeline_timings(p, tm, 1024);
    CHECK(nt >= 30 && tm[0].idr == 1);
    for (uint32_t i = 0; i < nt; i++) {
        CHECK(tm[i].size > 0 && tm[i].encode_us > 0);
        CHECK(tm[i].encoded_us + 3 >= tm[i].encode_us + tm[i].convert_us + tm[i].wait_us);
        if (i) CHECK(tm[i].frame_serial > tm[i - 1].frame_serial);
    }
    CHECK(neuron_pipeline_timings(p, tm, 0) == 0 && neuron_pipeline_timings(NULL, tm, 4) == 0);
    CHECK(neuron_pipeline_timings(p, NULL, 4) == 0);
    CHECK(idrs >= 2);
    char rep[1024];
    CHECK(neuron_pipeline_encoder_report(p, rep, sizeof rep) == NEURON_OK && strstr(rep, "libx264: chosen"));
    neuron_pipeline_stats st;
    neuron_pipeline_stats_get(p, &st);
    CHECK(st.running == 1 && st.frames_in >= 30 && st.width == W && st.idr_requests == 1);
    neuron_pipeline_stop(p);
    neuron_producer_stop(prod);
    unlink(path);
    CHECK(neuron_pipeline_start("/nonexistent/region", &cfg, &p) == NEURON_EIO);
    cfg.ring_slots = 1;
    CHECK(neuron_pipeline_start(path, &cfg, &p) == NEURON_EINVAL);
}

static void test_speed(void) {
    neuron_encoder_config cfg = {.codec = NEURON_CODEC_H264, .width = W, .height = H, .fps = 60,
                                 .bitrate_kbps = 2000, .threads = 2, .input_format = NEURON_FRAME_BGRA};
    neuron_encoder_speed_job *j = NULL;
    CHECK(neuron_encoder_speed_start(&cfg, 10, 5000, &j) == NEURON_OK);
    neuron_encoder_speed s;
    for (int i = 0; i < 1000; i++) {
        neuron_encoder_speed_get(j, &s);
        if (s.done) break;
        usleep(10000);
    }
    CHECK(s.done == 1 && s.status == NEURON_OK && s.frames == 10 && s.warmup == 2);
    CHECK(s.busy_us > 0 && s.encode_p50_us > 0 && s.encode_max_us >= s.encode_p50_us);
    CHECK(strcmp(s.encoder, "libx264") == 0 && s.software == 1 && s.width == W && s.height == H);
    char rep[1024];
    CHECK(neuron_encoder_speed_report(j, rep, sizeof rep) == NEURON_OK && strstr(rep, "libx264: chosen"));
    neuron_encoder_speed_free(j);

    /* A named encoder that cannot open: done with the reason, nothing timed. */
    snprintf(cfg.encoder, sizeof cfg.encoder, "h264_nvenc");
    CHECK(neuron_encoder_speed_start(&cfg, 10, 5000, &j) == NEURON_OK);
    for (int i = 0; i < 1000; i++) {
        neuron_encoder_speed_get(j, &s);
        if (s.done) break;
        usleep(10000);
    }
    CHECK(s.done == 1 && s.status == NEURON_EUNSUPPORTED && s.frames == 0 && s.encoder[0] == 0);
    CHECK(neuron_encoder_speed_report(j, rep, sizeof rep) == NEURON_OK && strstr(rep, "h264_nvenc: unavailable"));
    neuron_encoder_speed_free(j);

    /* Stopped while it runs: joins and frees. */
    cfg.encoder[0] = 0;
    CHECK(neuron_encoder_speed_start(&cfg, 600, 60000, &j) == NEURON_OK);
    neuron_encoder_speed_free(j);

    CHECK(neuron_encoder_speed_start(&cfg, 0, 100, &j) == NEURON_EINVAL);
    CHECK(neuron_encoder_speed_start(&cfg, 10, 0, &j) == NEURON_EINVAL);
    CHECK(neuron_encoder_speed_start(NULL, 10, 100, &j) == NEURON_EINVAL);
    neuron_encoder_speed_free(NULL);
}

int main(void) {
    test_au_tidy();
    test_encoder();
    test_speed();
    test_pipeline();
    return check_report("encode");
}
