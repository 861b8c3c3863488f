/* PipeWire video consumer of one node (hostout.h). */
#include "../hostout.h"
#include "../capture/reader_sink.h"
#include "pw_internal.h"

#include <errno.h>
#include <linux/dma-buf.h>
#include <pipewire/pipewire.h>
#include <pthread.h>
#include <spa/param/video/format-utils.h>
#include <spa/utils/result.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

enum { ST_CONNECTING, ST_NEGOTIATED, ST_STREAMING, ST_ERROR, ST_GONE };

struct neuron_pw_stream {
    struct pw_thread_loop *loop;
    struct pw_context *context;
    struct pw_core *core;
    struct pw_stream *stream;
    struct spa_hook stream_listener;
    uint32_t want_w, want_h, want_fps;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* guarded by mu */
    struct pw_buffer *held; /* the newest buffer, not yet queued back */
    uint64_t held_seq, taken_seq;
    uint64_t held_time_ns;
    int state;
    neuron_pw_stats stats;
    char error[256];
};

static __thread char last_error[256];
const char *neuron_pw_last_error(void) { return last_error; }

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static struct timespec deadline_in(uint32_t ms) {
    uint64_t d = now_ns() + (uint64_t)ms * 1000000ull;
    return (struct timespec){.tv_sec = (time_t)(d / 1000000000ull), .tv_nsec = (long)(d % 1000000000ull)};
}

/* Callers hold mu. */
__attribute__((format(printf, 3, 4))) static void set_state(neuron_pw_stream *s, int state, const char *fmt, ...) {
    s->state = state;
    s->stats.state = (uint32_t)state;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(s->error, sizeof s->error, fmt, ap);
        va_end(ap);
    }
    pthread_cond_broadcast(&s->cv);
}

static void on_state_changed(void *data, enum pw_stream_state old, enum pw_stream_state state, const char *error) {
    (void)old;
    neuron_pw_stream *s = data;
    pthread_mutex_lock(&s->mu);
    if (state == PW_STREAM_STATE_ERROR) set_state(s, ST_ERROR, "stream error: %s", error ? error : "unknown");
    else if (state == PW_STREAM_STATE_STREAMING && s->state == ST_NEGOTIATED) set_state(s, ST_STREAMING, NULL);
    else if (state == PW_STREAM_STATE_UNCONNECTED && s->state == ST_CONNECTING)
        /* the session manager unlinked us before any format was agreed: nothing in common */
        set_state(s, ST_GONE, "the link ended before a format was agreed (the node offers no BGRx/BGRA at %ux%u)", s->want_w,
                  s->want_h);
    else if (state == PW_STREAM_STATE_UNCONNECTED && s->state != ST_ERROR) set_state(s, ST_GONE, "the producer went away");
    else if (state == PW_STREAM_STATE_PAUSED && s->state == ST_STREAMING) set_state(s, ST_NEGOTIATED, NULL);
    pthread_mutex_unlock(&s->mu);
}

static void on_param_changed(void *data, uint32_t id, const struct spa_pod *param) {
    neuron_pw_stream *s = data;
    if (!param || id != SPA_PARAM_Format) return;
    uint32_t mt = 0, mst = 0;
    struct spa_video_info_raw info;
    memset(&info, 0, sizeof info);
    if (spa_format_parse(param, &mt, &mst) < 0 || mt != SPA_MEDIA_TYPE_video || mst != SPA_MEDIA_SUBTYPE_raw ||
        spa_format_video_raw_parse(param, &info) < 0) {
        pthread_mutex_lock(&s->mu);
        set_state(s, ST_ERROR, "the producer chose a format that is not raw video");
        pthread_mutex_unlock(&s->mu);
        return;
    }
    if (info.size.width != s->want_w || info.size.height != s->want_h ||
        (info.format != SPA_VIDEO_FORMAT_BGRx && info.format != SPA_VIDEO_FORMAT_BGRA)) {
        pthread_mutex_lock(&s->mu);
        set_state(s, ST_ERROR, "negotiated %ux%u format %u, asked for %ux%u BGRx/BGRA", info.size.width, info.size.height,
                  info.format, s->want_w, s->want_h);
        pthread_mutex_unlock(&s->mu);
        return;
    }
    uint32_t stride = s->want_w * 4;
    uint8_t buf[512];
    struct spa_pod_builder b = SPA_POD_BUILDER_INIT(buf, sizeof buf);
    const struct spa_pod *params[2];
    params[0] = spa_pod_builder_add_object(
        &b, SPA_TYPE_OBJECT_ParamBuffers, SPA_PARAM_Buffers, SPA_PARAM_BUFFERS_buffers, SPA_POD_CHOICE_RANGE_Int(4, 3, 8),
        SPA_PARAM_BUFFERS_blocks, SPA_POD_Int(1), SPA_PARAM_BUFFERS_size, SPA_POD_Int((int32_t)(stride * s->want_h)),
        SPA_PARAM_BUFFERS_stride, SPA_POD_Int((int32_t)stride), SPA_PARAM_BUFFERS_dataType,
        SPA_POD_CHOICE_FLAGS_Int((1 << SPA_DATA_MemFd) | (1 << SPA_DATA_MemPtr) | (1 << SPA_DATA_DmaBuf)));
    params[1] = spa_pod_builder_add_object(&b, SPA_TYPE_OBJECT_ParamMeta, SPA_PARAM_Meta, SPA_PARAM_META_type,
                                           SPA_POD_Id(SPA_META_Header), SPA_PARAM_META_size,
                                           SPA_POD_Int(sizeof(struct spa_meta_header)));
    pw_stream_update_params(s->stream, params, 2);
    pthread_mutex_lock(&s->mu);
    s->stats.width = info.size.width;
    s->stats.height = info.size.height;
    s->stats.fps_num = info.max_framerate.num ? info.max_framerate.num : info.framerate.num;
    s->stats.fps_den = info.max_framerate.num ? info.max_framerate.denom : info.framerate.denom;
    s->stats.spa_format = info.format;
    if (s->state == ST_CONNECTING) set_state(s, ST_NEGOTIATED, NULL);
    pthread_mutex_unlock(&s->mu);
}

static void on_remove_buffer(void *data, struct pw_buffer *b) {
    neuron_pw_stream *s = data;
    pthread_mutex_lock(&s->mu);
    if (s->held == b) s->held = NULL;
    pthread_mutex_unlock(&s->mu);
}

/* A buffer's first plane is usable: mapped, a frame's worth of rows inside it. */
static int usable(const neuron_pw_stream *s, struct pw_buffer *b) {
    struct spa_buffer *sb = b->buffer;
    if (sb->n_datas < 1) return 0;
    struct spa_meta_header *h = spa_buffer_find_meta_data(sb, SPA_META_Header, sizeof *h);
    if (h && (h->flags & SPA_META_HEADER_FLAG_CORRUPTED)) return -1;
    struct spa_data *d = &sb->datas[0];
    if (!d->data || !d->chunk || d->chunk->size == 0) return 0; /* no new picture (e.g. cursor-only) */
    uint64_t row = (uint64_t)s->want_w * 4, stride = d->chunk->stride > 0 ? (uint64_t)d->chunk->stride : row;
    uint64_t end = (uint64_t)d->chunk->offset + stride * (s->want_h - 1) + row;
    if (stride < row || end > d->maxsize) return -1;
    return 1;
}

static void on_process(void *data) {
    neuron_pw_stream *s = data;
    struct pw_buffer *b, *last = NULL;
    while ((b = pw_stream_dequeue_buffer(s->stream))) {
        if (last) pw_stream_queue_buffer(s->stream, last);
        last = b;
    }
    if (!last) return;
    int ok = usable(s, last);
    pthread_mutex_lock(&s->mu);
    s->stats.buffers++;
    if (ok < 0) s->stats.corrupted++;
    struct pw_buffer *old = NULL;
    if (ok > 0) {
        old = s->held;
        s->held = last;
        s->held_seq++;
        s->held_time_ns = now_ns();
        s->stats.memory = last->buffer->datas[0].type == SPA_DATA_DmaBuf ? NEURON_PW_MEM_DMABUF : NEURON_PW_MEM_SHM;
        if (s->state == ST_NEGOTIATED) set_state(s, ST_STREAMING, NULL);
        pthread_cond_broadcast(&s->cv);
    } else {
        old = last;
    }
    pthread_mutex_unlock(&s->mu);
    if (old) pw_stream_queue_buffer(s->stream, old);
}

static const struct pw_stream_events stream_events = {
    PW_VERSION_STREAM_EVENTS,
    .state_changed = on_state_changed,
    .param_changed = on_param_changed,
    .remove_buffer = on_remove_buffer,
    .process = on_process,
};

static pthread_once_t pw_once = PTHREAD_ONCE_INIT;
static void pw_init_once(void) { pw_init(NULL, NULL); }

int32_t neuron_pw_stream_open(const char *remote, uint32_t node_id, uint32_t width, uint32_t height, uint32_t fps,
                              uint32_t negotiate_timeout_ms, neuron_pw_stream **out) {
    if (!out || width < 16 || height < 16 || width > NEURON_CAPTURE_MAX_DIM || height > NEURON_CAPTURE_MAX_DIM || fps < 1 ||
        fps > 1000)
        return NEURON_EINVAL;
    pthread_once(&pw_once, pw_init_once);
    neuron_pw_stream *s = calloc(1, sizeof *s);
    if (!s) return NEURON_ENOMEM;
    s->want_w = width;
    s->want_h = height;
    s->want_fps = fps;
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    s->loop = pw_thread_loop_new("neuron-pw", NULL);
    if (!s->loop) goto fail_nomem;
    s->context = pw_context_new(pw_thread_loop_get_loop(s->loop), NULL, 0);
    if (!s->context) goto fail_nomem;
    if (pw_thread_loop_start(s->loop) < 0) goto fail_nomem;
    pw_thread_loop_lock(s->loop);
    struct pw_properties *cp = remote && *remote ? pw_properties_new(PW_KEY_REMOTE_NAME, remote, NULL) : NULL;
    s->core = pw_context_connect(s->context, cp, 0);
    if (!s->core) {
        snprintf(last_error, sizeof last_error, "cannot connect to PipeWire%s%s: %s", remote ? " at " : "", remote ? remote : "",
                 strerror(errno));
        pw_thread_loop_unlock(s->loop);
        neuron_pw_stream_close(s);
        return NEURON_EIO;
    }
    s->stream = pw_stream_new(s->core, "neuron-host-output",
                              pw_properties_new(PW_KEY_MEDIA_TYPE, "Video", PW_KEY_MEDIA_CATEGORY, "Capture", PW_KEY_MEDIA_ROLE,
                                                "Screen", PW_KEY_NODE_DONT_RECONNECT, "true", NULL));
    if (!s->stream) {
        pw_thread_loop_unlock(s->loop);
        neuron_pw_stream_close(s);
        return NEURON_ENOMEM;
    }
    pw_stream_add_listener(s->stream, &s->stream_listener, &stream_events, s);
    uint8_t buf[1024];
    struct spa_pod_builder b = SPA_POD_BUILDER_INIT(buf, sizeof buf);
    const struct spa_pod *params[1];
    params[0] = spa_pod_builder_add_object(
        &b, SPA_TYPE_OBJECT_Format, SPA_PARAM_EnumFormat, SPA_FORMAT_mediaType, SPA_POD_Id(SPA_MEDIA_TYPE_video),
        SPA_FORMAT_mediaSubtype, SPA_POD_Id(SPA_MEDIA_SUBTYPE_raw), SPA_FORMAT_VIDEO_format,
        SPA_POD_CHOICE_ENUM_Id(3, SPA_VIDEO_FORMAT_BGRx, SPA_VIDEO_FORMAT_BGRx, SPA_VIDEO_FORMAT_BGRA),
        SPA_FORMAT_VIDEO_size, SPA_POD_Rectangle(&SPA_RECTANGLE(width, height)), SPA_FORMAT_VIDEO_framerate,
        SPA_POD_Fraction(&SPA_FRACTION(0, 1)), SPA_FORMAT_VIDEO_maxFramerate,
        SPA_POD_CHOICE_RANGE_Fraction(&SPA_FRACTION(fps, 1), &SPA_FRACTION(1, 1), &SPA_FRACTION(fps, 1)));
    int rc = pw_stream_connect(s->stream, PW_DIRECTION_INPUT, node_id,
                               PW_STREAM_FLAG_AUTOCONNECT | PW_STREAM_FLAG_MAP_BUFFERS, params, 1);
    pw_thread_loop_unlock(s->loop);
    if (rc < 0) {
        snprintf(last_error, sizeof last_error, "connecting to node %u: %s", node_id, spa_strerror(rc));
        neuron_pw_stream_close(s);
        return NEURON_EIO;
    }
    struct timespec ts = deadline_in(negotiate_timeout_ms);
    pthread_mutex_lock(&s->mu);
    int w = 0;
    while (s->state != ST_STREAMING && s->state != ST_ERROR && s->state != ST_GONE && w == 0)
        w = pthread_cond_timedwait(&s->cv, &s->mu, &ts);
    int st = s->state;
    if (st != ST_STREAMING) {
        if (st == ST_ERROR || st == ST_GONE) snprintf(last_error, sizeof last_error, "node %u: %.200s", node_id, s->error);
        else
            snprintf(last_error, sizeof last_error, "node %u: format negotiation did not finish within %u ms (%s); stream torn down",
                     node_id, negotiate_timeout_ms, st == ST_NEGOTIATED ? "format agreed, no buffers" : "no format agreed");
    }
    pthread_mutex_unlock(&s->mu);
    if (st != ST_STREAMING) {
        neuron_pw_stream_close(s);
        return NEURON_EIO;
    }
    *out = s;
    return NEURON_OK;
fail_nomem:
    snprintf(last_error, sizeof last_error, "cannot start the PipeWire loop");
    neuron_pw_stream_close(s);
    return NEURON_ENOMEM;
}

/*
 * Waits up to timeout_ms for a buffer newer than the last one taken. On NEURON_CAPTURE_FRAME the
 * frame's info (BGRA at the wanted mode, tightly packed) is in *info, the buffer counts as taken and
 * the mutex stays held while the caller reads it; otherwise the mutex is released.
 */
static int32_t take_held(neuron_pw_stream *s, uint32_t timeout_ms, neuron_frame_info *info) {
    struct timespec ts = deadline_in(timeout_ms);
    pthread_mutex_lock(&s->mu);
    while (!(s->held && s->held_seq > s->taken_seq) && s->state != ST_ERROR && s->state != ST_GONE) {
        if (pthread_cond_timedwait(&s->cv, &s->mu, &ts) != 0) {
            pthread_mutex_unlock(&s->mu);
            return NEURON_CAPTURE_TIMEOUT;
        }
    }
    if (!(s->held && s->held_seq > s->taken_seq)) {
        pthread_mutex_unlock(&s->mu);
        return NEURON_EIO;
    }
    uint64_t row = (uint64_t)s->want_w * 4;
    memset(info, 0, sizeof *info);
    info->frame_serial = (uint32_t)s->held_seq;
    info->type = NEURON_FRAME_BGRA;
    info->screen_width = info->data_width = info->frame_width = s->want_w;
    info->screen_height = info->data_height = info->frame_height = s->want_h;
    info->out_pitch = (uint32_t)row;
    info->bytes = row * s->want_h;
    info->read_time_ns = s->held_time_ns;
    s->taken_seq = s->held_seq;
    return NEURON_CAPTURE_FRAME;
}

/* Brackets a CPU read of a dmabuf-backed buffer (DMA_BUF_SYNC_START, then _END). */
static void dmabuf_sync(const struct spa_data *d, uint64_t phase) {
    struct dma_buf_sync sync = {.flags = phase | DMA_BUF_SYNC_READ};
    ioctl((int)d->fd, DMA_BUF_IOCTL_SYNC, &sync);
}

int32_t neuron_pw_stream_next_frame(neuron_pw_stream *s, uint32_t timeout_ms, uint8_t *dst, uint64_t cap,
                                    neuron_frame_info *info) {
    if (!s || !info || (!dst && cap)) return NEURON_EINVAL;
    int32_t rc = take_held(s, timeout_ms, info);
    if (rc != NEURON_CAPTURE_FRAME) return rc;
    uint64_t row = info->out_pitch, need = info->bytes;
    if (cap < need) {
        pthread_mutex_unlock(&s->mu);
        return NEURON_ERANGE;
    }
    uint64_t t0 = now_ns();
    struct spa_data *d = &s->held->buffer->datas[0];
    uint64_t stride = d->chunk->stride > 0 ? (uint64_t)d->chunk->stride : row; /* checked by usable() */
    const uint8_t *src = (const uint8_t *)d->data + d->chunk->offset;
    int dmabuf = d->type == SPA_DATA_DmaBuf;
    if (dmabuf) dmabuf_sync(d, DMA_BUF_SYNC_START);
    for (uint32_t y = 0; y < s->want_h; y++) memcpy(dst + y * row, src + y * stride, row);
    if (dmabuf) dmabuf_sync(d, DMA_BUF_SYNC_END);
    info->copy_ns = now_ns() - t0;
    s->stats.frames++;
    pthread_mutex_unlock(&s->mu);
    return NEURON_CAPTURE_FRAME;
}

int32_t neuron_pw_stream_next_frame_sink(neuron_pw_stream *s, uint32_t timeout_ms, const neuron_frame_sink *sink,
                                         neuron_frame_info *info) {
    if (!s || !sink || !info) return NEURON_EINVAL;
    int32_t rc = take_held(s, timeout_ms, info);
    if (rc != NEURON_CAPTURE_FRAME) return rc;
    uint64_t row = info->out_pitch;
    rc = sink->begin(sink->ctx, info);
    if (rc < 0) {
        pthread_mutex_unlock(&s->mu);
        return rc;
    }
    uint64_t t0 = now_ns();
    struct spa_data *d = &s->held->buffer->datas[0];
    uint32_t stride = d->chunk->stride > 0 ? (uint32_t)d->chunk->stride : (uint32_t)row; /* checked by usable() */
    const uint8_t *src = (const uint8_t *)d->data + d->chunk->offset;
    int dmabuf = d->type == SPA_DATA_DmaBuf;
    if (dmabuf) dmabuf_sync(d, DMA_BUF_SYNC_START);
    /* rows go straight from the producer's buffer into the converter: no copy */
    uint32_t done = sink->rows(sink->ctx, src, stride, 0, s->want_h, s->want_h);
    if (dmabuf) dmabuf_sync(d, DMA_BUF_SYNC_END);
    info->copy_ns = now_ns() - t0;
    s->stats.frames++;
    pthread_mutex_unlock(&s->mu);
    return done == s->want_h ? NEURON_CAPTURE_FRAME : NEURON_EFORMAT;
}

void neuron_pw_stream_stats(neuron_pw_stream *s, neuron_pw_stats *out) {
    if (!s || !out) return;
    pthread_mutex_lock(&s->mu);
    *out = s->stats;
    pthread_mutex_unlock(&s->mu);
}

int32_t neuron_pw_stream_error(neuron_pw_stream *s, char *buf, uint32_t cap) {
    if (!s || !buf || !cap) return NEURON_EINVAL;
    pthread_mutex_lock(&s->mu);
    int n = snprintf(buf, cap, "%s", s->error);
    pthread_mutex_unlock(&s->mu);
    return n < 0 ? 0 : (n >= (int)cap ? (int32_t)cap - 1 : n);
}

void neuron_pw_stream_close(neuron_pw_stream *s) {
    if (!s) return;
    if (s->loop) {
        pw_thread_loop_lock(s->loop);
        if (s->stream) {
            pthread_mutex_lock(&s->mu);
            s->held = NULL; /* the stream takes every buffer back */
            pthread_mutex_unlock(&s->mu);
            spa_hook_remove(&s->stream_listener);
            pw_stream_disconnect(s->stream);
            pw_stream_destroy(s->stream);
        }
        if (s->core) pw_core_disconnect(s->core);
        pw_thread_loop_unlock(s->loop);
        pw_thread_loop_stop(s->loop);
    }
    if (s->context) pw_context_destroy(s->context);
    if (s->loop) pw_thread_loop_destroy(s->loop);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
