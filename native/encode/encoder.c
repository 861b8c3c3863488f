/* libavcodec H.264/HEVC encoder with libyuv colour conversion (../encode.h). */
#include "../capture.h"
#include "../encode.h"
#include "au_tidy.h"
#include "encoder_rows.h"

#include <libavcodec/avcodec.h>
#include <libavutil/error.h>
#include <libavutil/hwcontext.h>
#include <libavutil/imgutils.h>
#include <libavutil/log.h>
#include <libavutil/opt.h>
#include <libyuv/convert.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REPORT_MAX 1024

struct neuron_encoder {
    AVCodecContext *ctx;
    AVFrame *frame;
    AVPacket *pkt;
    neuron_encoder_config cfg;
    uint32_t width, height; /* even */
    uint64_t index;
    int software;
    neuron_au_tidy tidy; /* SEI/AUD out, parameter sets first on every IDR (au_tidy.h) */
    char name[32];
    char report[REPORT_MAX];
};

static _Thread_local char last_report[REPORT_MAX];

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void appendf(char *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void appendf(char *buf, const char *fmt, ...) {
    size_t len = strlen(buf);
    if (len >= REPORT_MAX - 1) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + len, REPORT_MAX - len, fmt, ap);
    va_end(ap);
}

static void apply_rate(AVCodecContext *ctx, uint32_t kbps, uint32_t fps) {
    int64_t bps = (int64_t)kbps * 1000;
    ctx->bit_rate = bps;
    ctx->rc_max_rate = bps;
    ctx->rc_buffer_size = (int)(bps / fps); /* one frame of VBV */
}

/* Tries to open `name` with the low-latency settings; 0 on success, else an AVERROR. */
static int try_open(neuron_encoder *e, const char *name, char *why, size_t why_len) {
    const AVCodec *codec = avcodec_find_encoder_by_name(name);
    if (!codec) {
        snprintf(why, why_len, "not built into this libavcodec");
        return AVERROR_ENCODER_NOT_FOUND;
    }
    const neuron_encoder_config *c = &e->cfg;
    AVCodecContext *ctx = avcodec_alloc_context3(codec);
    if (!ctx) return AVERROR(ENOMEM);
    ctx->width = (int)e->width;
    ctx->height = (int)e->height;
    ctx->time_base = (AVRational){1, (int)c->fps};
    ctx->framerate = (AVRational){(int)c->fps, 1};
    ctx->pix_fmt = AV_PIX_FMT_YUV420P;
    ctx->max_b_frames = 0;
    ctx->gop_size = c->intra_refresh ? (int)c->fps : INT_MAX / 2;
    ctx->color_range = AVCOL_RANGE_MPEG;
    ctx->colorspace = AVCOL_SPC_SMPTE170M;
    ctx->color_primaries = AVCOL_PRI_SMPTE170M;
    ctx->color_trc = AVCOL_TRC_SMPTE170M;
    ctx->flags |= AV_CODEC_FLAG_LOW_DELAY;
    apply_rate(ctx, c->bitrate_kbps, c->fps);
    int sw = strncmp(name, "libx26", 6) == 0;
    if (sw) ctx->thread_count = (int)c->threads;
    AVDictionary *opts = NULL;
    av_dict_set(&opts, "forced-idr", "1", 0);
    if (strcmp(name, "libx264") == 0) {
        av_dict_set(&opts, "preset", "ultrafast", 0);
        av_dict_set(&opts, "tune", "zerolatency", 0);
        /* Spelled out rather than left to the tune: one frame's encode split across the threads
         * (sliced threads: no frame of delay per thread), no lookahead, no B-frames, no mbtree.
         * With the one-frame VBV above this is CBR at the ANNOUNCE bitrate; an IDR cannot
         * exceed the VBV either, so it costs quality for a frame, not a latency spike. */
        av_dict_set(&opts, "x264-params",
                    c->intra_refresh
                        ? "scenecut=0:intra-refresh=1:nal-hrd=none:sliced-threads=1:rc-lookahead=0:sync-lookahead=0:"
                          "bframes=0:mbtree=0"
                        : "keyint=infinite:scenecut=0:sliced-threads=1:rc-lookahead=0:sync-lookahead=0:bframes=0:mbtree=0",
                    0);
    } else if (strcmp(name, "libx265") == 0) {
        av_dict_set(&opts, "preset", "ultrafast", 0);
        av_dict_set(&opts, "tune", "zerolatency", 0);
        char p[128];
        /* info=0: no encoder-info SEI (~2.4 KB of option text in front of every IDR slice);
         * repeat-headers: VPS/SPS/PPS on every IDR; open-gop=0: a forced key frame is an IDR,
         * not a CRA; no AUD, no picture-hash SEI. */
        snprintf(p, sizeof p,
                 "%s:pools=%u:frame-threads=1:log-level=error:info=0:repeat-headers=1:open-gop=0:aud=0:hash=0",
                 c->intra_refresh ? "scenecut=0:intra-refresh=1" : "keyint=-1:scenecut=0", c->threads);
        av_dict_set(&opts, "x265-params", p, 0);
    } else if (strstr(name, "_vaapi")) {
        /* no AUD, no SEI (identifier/timing/recovery point; HEVC: HDR metadata) */
        av_dict_set(&opts, "aud", "0", 0);
        av_dict_set(&opts, "sei", "0", 0);
    } else { /* NVENC. Parameter sets on every IDR: libavcodec sets repeatSPSPPS when no global
              * header is asked for; no AUD, no SEI unless asked. */
        av_dict_set(&opts, "preset", "p1", 0);
        av_dict_set(&opts, "tune", "ull", 0);
        av_dict_set(&opts, "rc", "cbr", 0);
        av_dict_set(&opts, "zerolatency", "1", 0);
        av_dict_set(&opts, "aud", "0", 0);
        if (c->intra_refresh) av_dict_set(&opts, "intra-refresh", "1", 0);
    }
    int rc = avcodec_open2(ctx, codec, &opts);
    av_dict_free(&opts);
    if (rc < 0) {
        char err[AV_ERROR_MAX_STRING_SIZE] = {0};
        av_strerror(rc, err, sizeof err);
        snprintf(why, why_len, "open failed: %s%s", err,
                 strstr(name, "nvenc") ? " - needs an NVIDIA GPU and its driver's NVENC library" : "");
        avcodec_free_context(&ctx);
        return rc;
    }
    e->ctx = ctx;
    e->software = sw;
    neuron_au_tidy_init(&e->tidy, e->cfg.codec == NEURON_CODEC_HEVC);
    /* an encoder that keeps its parameter sets in a global header: IDRs get them from here */
    if (neuron_au_tidy_learn(&e->tidy, ctx->extradata, ctx->extradata ? (size_t)ctx->extradata_size : 0)) {
        avcodec_free_context(&e->ctx);
        snprintf(why, why_len, "out of memory");
        return AVERROR(ENOMEM);
    }
    snprintf(e->name, sizeof e->name, "%s", name);
    return 0;
}

static int32_t check_config(const neuron_encoder_config *c) {
    if (!c || c->codec > NEURON_CODEC_HEVC || c->width < 16 || c->height < 16 || c->width > 8192 ||
        c->height > 8192 || c->fps < 1 || c->fps > 240 || c->bitrate_kbps < 100 || c->bitrate_kbps > 500000 ||
        c->threads < 1 || c->threads > 16 || c->intra_refresh > 1 ||
        (c->input_format != NEURON_FRAME_BGRA && c->input_format != NEURON_FRAME_RGBA) ||
        memchr(c->encoder, 0, sizeof c->encoder) == NULL)
        return NEURON_EINVAL;
    return NEURON_OK;
}

int32_t neuron_encoder_open(const neuron_encoder_config *cfg, neuron_encoder **out) {
    last_report[0] = 0;
    if (!out || check_config(cfg)) return NEURON_EINVAL;
    /* Probe failures are reported through the probe report, not libav's stderr logger. */
    av_log_set_level(AV_LOG_FATAL);
    neuron_encoder *e = calloc(1, sizeof *e);
    if (!e) return NEURON_ENOMEM;
    e->cfg = *cfg;
    e->width = cfg->width & ~1u;
    e->height = cfg->height & ~1u;
    static const char *h264[] = {"h264_nvenc", "h264_vaapi", "libx264", NULL};
    static const char *hevc[] = {"hevc_nvenc", "hevc_vaapi", "libx265", NULL};
    const char *const *list = cfg->codec == NEURON_CODEC_HEVC ? hevc : h264;
    const char *named[2] = {cfg->encoder, NULL};
    if (cfg->encoder[0]) list = named;
    int chosen = 0;
    for (const char *const *n = list; *n; n++) {
        char why[256] = {0};
        if (chosen) {
            appendf(e->report, "%s: skipped (%s chosen first)\n", *n, e->name);
            continue;
        }
        if (strstr(*n, "_vaapi")) {
            /* VAAPI needs hardware frames: usable only where a render node opens. */
            AVBufferRef *dev = NULL;
            int rc = av_hwdevice_ctx_create(&dev, AV_HWDEVICE_TYPE_VAAPI, NULL, NULL, 0);
            if (rc < 0) {
                char err[AV_ERROR_MAX_STRING_SIZE] = {0};
                av_strerror(rc, err, sizeof err);
                appendf(e->report, "%s: unavailable (no VAAPI device: %s)\n", *n, err);
            } else {
                av_buffer_unref(&dev);
                appendf(e->report, "%s: unavailable (VAAPI device present; hardware-frame upload not built)\n", *n);
            }
            continue;
        }
        if (try_open(e, *n, why, sizeof why) == 0) {
            chosen = 1;
            appendf(e->report, "%s: chosen (%s)\n", *n,
                    e->software ? "software encoder; no hardware encoder opened before it" : "hardware encoder opened");
        } else {
            appendf(e->report, "%s: unavailable (%s)\n", *n, why);
        }
    }
    if (!chosen) {
        snprintf(last_report, sizeof last_report, "%s", e->report);
        free(e);
        return NEURON_EUNSUPPORTED;
    }
    e->frame = av_frame_alloc();
    e->pkt = av_packet_alloc();
    if (!e->frame || !e->pkt) goto nomem;
    e->frame->format = AV_PIX_FMT_YUV420P;
    e->frame->width = (int)e->width;
    e->frame->height = (int)e->height;
    if (av_frame_get_buffer(e->frame, 64) < 0) goto nomem;
    *out = e;
    return NEURON_OK;
nomem:
    neuron_encoder_close(e);
    return NEURON_ENOMEM;
}

const char *neuron_encoder_name(const neuron_encoder *e) { return e ? e->name : ""; }

const char *neuron_encoder_probe_report(const neuron_encoder *e) { return e ? e->report : last_report; }

int32_t neuron_encoder_begin_frame(neuron_encoder *e) {
    if (!e) return NEURON_EINVAL;
    return av_frame_make_writable(e->frame) < 0 ? NEURON_ENOMEM : NEURON_OK;
}

int32_t neuron_encoder_convert_rows(neuron_encoder *e, const uint8_t *src, uint32_t pitch, uint32_t y0, uint32_t y1) {
    if (!e || !src || (y0 & 1u) || y1 < y0 || pitch < e->width * 4u) return NEURON_EINVAL;
    if (y1 > e->height) y1 = e->height; /* an odd last row is cropped */
    if (y1 <= y0) return NEURON_OK;
    AVFrame *f = e->frame;
    const uint8_t *s0 = src + (uint64_t)y0 * pitch;
    uint8_t *py = f->data[0] + (ptrdiff_t)y0 * f->linesize[0];
    uint8_t *pu = f->data[1] + (ptrdiff_t)(y0 / 2) * f->linesize[1];
    uint8_t *pv = f->data[2] + (ptrdiff_t)(y0 / 2) * f->linesize[2];
    int h = (int)(y1 - y0);
    int rc = e->cfg.input_format == NEURON_FRAME_RGBA
                 ? ABGRToI420(s0, (int)pitch, py, f->linesize[0], pu, f->linesize[1], pv, f->linesize[2], (int)e->width, h)
                 : ARGBToI420(s0, (int)pitch, py, f->linesize[0], pu, f->linesize[1], pv, f->linesize[2], (int)e->width, h);
    return rc == 0 ? NEURON_OK : NEURON_EINVAL;
}

int64_t neuron_encoder_encode_frame(neuron_encoder *e, uint32_t force_idr, uint8_t *out, uint64_t cap,
                                    neuron_au_info *info) {
    if (!e || !info || (!out && cap)) return NEURON_EINVAL;
    uint64_t t1 = now_ns();
    AVFrame *f = e->frame;
    f->pts = (int64_t)e->index;
    f->pict_type = force_idr ? AV_PICTURE_TYPE_I : AV_PICTURE_TYPE_NONE;
    f->key_frame = force_idr ? 1 : 0;
    int rc = avcodec_send_frame(e->ctx, f);
    if (rc < 0) return NEURON_EIO;
    int64_t total = 0;
    int32_t status = NEURON_OK;
    info->idr = 0;
    for (;;) {
        rc = avcodec_receive_packet(e->ctx, e->pkt);
        if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) break;
        if (rc < 0) return NEURON_EIO;
        if ((uint64_t)total + (uint64_t)e->pkt->size > cap) status = NEURON_ERANGE;
        else memcpy(out + total, e->pkt->data, (size_t)e->pkt->size);
        total += e->pkt->size;
        if (e->pkt->flags & AV_PKT_FLAG_KEY) info->idr = 1;
        av_packet_unref(e->pkt);
    }
    if (status == NEURON_OK && total > 0) {
        int64_t n = neuron_au_tidy_run(&e->tidy, out, (size_t)total, (size_t)cap, (int)info->idr);
        if (n == -1) return NEURON_ENOMEM;
        if (n == -2) status = NEURON_ERANGE; /* total: the size without the parameter sets to add */
        else total = n;
    }
    uint64_t t2 = now_ns();
    info->frame_index = e->index++;
    info->done_ns = t2;
    info->size = (uint32_t)total;
    info->encode_us = (uint32_t)((t2 - t1) / 1000);
    info->width = e->width;
    info->height = e->height;
    return status ? status : total;
}

int64_t neuron_encoder_encode(neuron_encoder *e, const uint8_t *src, uint32_t pitch, uint32_t force_idr, uint8_t *out,
                              uint64_t cap, neuron_au_info *info) {
    if (!e || !src || !info || (!out && cap) || pitch < e->width * 4u) return NEURON_EINVAL;
    uint64_t t0 = now_ns();
    memset(info, 0, sizeof *info);
    info->capture_ns = t0;
    int32_t rc = neuron_encoder_begin_frame(e);
    if (rc) return rc;
    rc = neuron_encoder_convert_rows(e, src, pitch, 0, e->height);
    if (rc) return rc;
    info->convert_us = (uint32_t)((now_ns() - t0) / 1000);
    return neuron_encoder_encode_frame(e, force_idr, out, cap, info);
}

int32_t neuron_encoder_set_bitrate(neuron_encoder *e, uint32_t kbps) {
    if (!e || kbps < 100 || kbps > 500000) return NEURON_EINVAL;
    e->cfg.bitrate_kbps = kbps;
    apply_rate(e->ctx, kbps, e->cfg.fps);
    return NEURON_OK;
}

void neuron_encoder_close(neuron_encoder *e) {
    if (!e) return;
    avcodec_free_context(&e->ctx);
    neuron_au_tidy_free(&e->tidy);
    av_frame_free(&e->frame);
    av_packet_free(&e->pkt);
    free(e);
}
