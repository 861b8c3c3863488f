/* NVF1 host listener (vsock.h): one thread accepts a guest at a time on AF_VSOCK or a unix
 * socket, runs the parser over what it reads and hands complete frames to the reader. */
#include "../vsock.h"
#include "nvf_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct neuron_nvf_reader {
    int listen_fd;
    char unix_path[108];
    pthread_t thread;
    int thread_started;
    volatile int stop;
    neuron_nvf_parser *parser;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* guarded by mu */
    neuron_nvf_hello hello;
    uint32_t session;       /* bumps on every accepted hello */
    uint32_t seen_session;  /* the reader's */
    uint8_t *ready;
    uint64_t ready_cap;
    neuron_frame_info ready_info;
    uint64_t ready_seq, taken_seq;
    int rejected_pending;
    neuron_reader_stats stats;
    char error[256];
};

static __thread char last_error[256];
const char *neuron_nvf_last_error(void) { return last_error; }

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The CLOCK_MONOTONIC deadline (the reader's condition variable runs on that clock) timeout_ms from now. */
static struct timespec deadline_after(uint32_t timeout_ms) {
    uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000ull;
    return (struct timespec){.tv_sec = (time_t)(deadline / 1000000000ull), .tv_nsec = (long)(deadline % 1000000000ull)};
}

static void set_error(neuron_nvf_reader *r, const char *msg) {
    snprintf(r->error, sizeof r->error, "%s", msg);
}

/* Reads one connection until it ends, fails or the reader stops. */
static void serve(neuron_nvf_reader *r, int fd) {
    static const uint32_t CHUNK = 1u << 16;
    uint8_t *buf = malloc(CHUNK);
    if (!buf) return;
    neuron_nvf_parser_reset(r->parser);
    while (!r->stop) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int pr = poll(&pfd, 1, 100);
        if (pr < 0 && errno != EINTR) break;
        if (pr <= 0) continue;
        ssize_t n = read(fd, buf, CHUNK);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n <= 0) {
            if (neuron_nvf_parser_partial(r->parser)) {
                uint32_t expected = 0, got = nvf_parser_received(r->parser, &expected);
                char msg[160];
                if (expected) snprintf(msg, sizeof msg, "truncated frame: the connection ended after %u of %u payload bytes", got, expected);
                else snprintf(msg, sizeof msg, "truncated record: the connection ended inside a header");
                pthread_mutex_lock(&r->mu);
                set_error(r, msg);
                r->stats.wp_timeouts++; /* counts truncated frames */
                pthread_mutex_unlock(&r->mu);
            }
            break;
        }
        uint64_t off = 0;
        int failed = 0;
        while (off < (uint64_t)n) {
            uint32_t ev = 0;
            int64_t used = neuron_nvf_parser_feed(r->parser, buf + off, (uint64_t)n - off, &ev);
            if (used < 0) {
                pthread_mutex_lock(&r->mu);
                set_error(r, neuron_nvf_parser_error(r->parser));
                r->stats.rejected++;
                r->rejected_pending = 1;
                r->hello.valid = 0;
                pthread_cond_broadcast(&r->cv);
                pthread_mutex_unlock(&r->mu);
                failed = 1;
                break;
            }
            off += (uint64_t)used;
            if (ev == NEURON_NVF_HELLO) {
                pthread_mutex_lock(&r->mu);
                uint32_t conn = r->hello.connection;
                neuron_nvf_parser_hello(r->parser, &r->hello);
                r->hello.connection = conn;
                r->hello.valid = 1;
                r->session++;
                r->stats.session_id = r->session;
                r->stats.attached = 1;
                pthread_cond_broadcast(&r->cv);
                pthread_mutex_unlock(&r->mu);
            } else if (ev == NEURON_NVF_FRAME) {
                pthread_mutex_lock(&r->mu);
                neuron_nvf_parser_frame(r->parser, &r->ready_info);
                r->ready_info.read_time_ns = now_ns();
                r->ready_info.session_id = r->session;
                nvf_parser_swap_buffer(r->parser, &r->ready, &r->ready_cap);
                r->ready_seq++;
                pthread_cond_broadcast(&r->cv);
                pthread_mutex_unlock(&r->mu);
            }
        }
        if (failed) break;
    }
    free(buf);
    pthread_mutex_lock(&r->mu);
    r->hello.valid = 0;
    r->stats.attached = 0;
    pthread_mutex_unlock(&r->mu);
}

static void *listen_main(void *arg) {
    neuron_nvf_reader *r = arg;
    while (!r->stop) {
        struct pollfd pfd = {.fd = r->listen_fd, .events = POLLIN};
        int pr = poll(&pfd, 1, 100);
        if (pr <= 0) continue;
        int fd = accept4(r->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) continue;
        pthread_mutex_lock(&r->mu);
        r->hello.connection++;
        pthread_mutex_unlock(&r->mu);
        serve(r, fd);
        close(fd);
    }
    return NULL;
}

static int32_t start(int fd, uint64_t max_frame_bytes, const char *unix_path, neuron_nvf_reader **out) {
    neuron_nvf_reader *r = calloc(1, sizeof *r);
    if (!r) {
        close(fd);
        return NEURON_ENOMEM;
    }
    r->listen_fd = fd;
    if (unix_path) snprintf(r->unix_path, sizeof r->unix_path, "%s", unix_path);
    int32_t rc = neuron_nvf_parser_new(max_frame_bytes, &r->parser);
    if (rc != NEURON_OK) {
        close(fd);
        free(r);
        return rc;
    }
    pthread_mutex_init(&r->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&r->thread, NULL, listen_main, r) != 0) {
        neuron_nvf_reader_close(r);
        return NEURON_ENOMEM;
    }
    r->thread_started = 1;
    *out = r;
    return NEURON_OK;
}

int32_t neuron_nvf_listen_unix(const char *path, uint64_t max_frame_bytes, neuron_nvf_reader **out) {
    if (!path || !out) return NEURON_EINVAL;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path) {
        snprintf(last_error, sizeof last_error, "socket path longer than %zu bytes", sizeof sa.sun_path - 1);
        return NEURON_EINVAL;
    }
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return NEURON_EIO;
    unlink(path);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 2) != 0) {
        snprintf(last_error, sizeof last_error, "%s: %s", path, strerror(errno));
        close(fd);
        return NEURON_EIO;
    }
    return start(fd, max_frame_bytes, path, out);
}

int32_t neuron_nvf_listen_vsock(uint32_t port, uint64_t max_frame_bytes, neuron_nvf_reader **out) {
    if (!out) return NEURON_EINVAL;
    int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(last_error, sizeof last_error, "AF_VSOCK socket: %s", strerror(errno));
        return errno == EAFNOSUPPORT ? NEURON_EUNSUPPORTED : NEURON_EIO;
    }
    struct sockaddr_vm sa = {.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port};
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 2) != 0) {
        snprintf(last_error, sizeof last_error, "AF_VSOCK port %u: %s", port, strerror(errno));
        close(fd);
        return NEURON_EIO;
    }
    return start(fd, max_frame_bytes, NULL, out);
}

int32_t neuron_nvf_reader_attach(neuron_nvf_reader *r, uint32_t timeout_ms) {
    if (!r) return NEURON_EINVAL;
    struct timespec ts = deadline_after(timeout_ms);
    pthread_mutex_lock(&r->mu);
    int rc = 0;
    /* a guest is here, or was and left a frame behind */
#define NVF_ATTACHABLE (r->hello.valid || (r->session != 0 && r->ready_seq > r->taken_seq))
    while (!NVF_ATTACHABLE && rc == 0) rc = pthread_cond_timedwait(&r->cv, &r->mu, &ts);
    int ok = NVF_ATTACHABLE;
#undef NVF_ATTACHABLE
    if (ok) {
        r->seen_session = r->session;
        r->rejected_pending = 0;
    } else if (!r->error[0]) {
        snprintf(r->error, sizeof r->error, "no guest sent a hello within %u ms", timeout_ms);
    }
    pthread_mutex_unlock(&r->mu);
    return ok ? NEURON_OK : NEURON_EIO;
}

/*
 * Waits up to timeout_ms for what the caller reports next: a rejected guest, a new guest (restart;
 * the old mode's frame is dropped), or a frame. On NEURON_CAPTURE_FRAME the frame's info is in
 * *info, it counts as taken and the mutex stays held for the caller's copy; otherwise it is released.
 */
static int32_t take_ready(neuron_nvf_reader *r, uint32_t timeout_ms, neuron_frame_info *info) {
    struct timespec ts = deadline_after(timeout_ms);
    pthread_mutex_lock(&r->mu);
    for (;;) {
        if (r->rejected_pending) {
            r->rejected_pending = 0;
            pthread_mutex_unlock(&r->mu);
            return NEURON_CAPTURE_REJECTED;
        }
        if (r->session != r->seen_session) {
            r->seen_session = r->session;
            r->stats.restarts++;
            if (r->ready_info.session_id != r->session) r->taken_seq = r->ready_seq; /* the old mode's frame is gone */
            pthread_mutex_unlock(&r->mu);
            return NEURON_CAPTURE_RESTARTED;
        }
        if (r->ready_seq > r->taken_seq) break;
        if (pthread_cond_timedwait(&r->cv, &r->mu, &ts) != 0) {
            pthread_mutex_unlock(&r->mu);
            return NEURON_CAPTURE_TIMEOUT;
        }
    }
    *info = r->ready_info;
    r->taken_seq = r->ready_seq;
    return NEURON_CAPTURE_FRAME;
}

int32_t neuron_nvf_reader_next_frame(neuron_nvf_reader *r, uint32_t timeout_ms, uint8_t *dst, uint64_t cap,
                                     neuron_frame_info *info) {
    if (!r || !info || (!dst && cap)) return NEURON_EINVAL;
    int32_t rc = take_ready(r, timeout_ms, info);
    if (rc != NEURON_CAPTURE_FRAME) return rc;
    uint64_t t0 = now_ns();
    int raw = info->type == NEURON_FRAME_BGRA;
    uint64_t row = (uint64_t)info->data_width * 4, need = raw ? row * info->data_height : info->bytes;
    if (cap < need) {
        info->bytes = need;
        pthread_mutex_unlock(&r->mu);
        return NEURON_ERANGE;
    }
    if (raw) { /* the parser checked stride >= row and bytes == stride * height */
        uint32_t stride = info->out_pitch;
        for (uint32_t y = 0; y < info->data_height; y++) memcpy(dst + y * row, r->ready + (uint64_t)y * stride, row);
        info->out_pitch = (uint32_t)row;
    } else {
        memcpy(dst, r->ready, need);
        info->out_pitch = 0;
    }
    info->bytes = need;
    info->copy_ns = now_ns() - t0;
    r->stats.frames++;
    pthread_mutex_unlock(&r->mu);
    return NEURON_CAPTURE_FRAME;
}

int32_t neuron_nvf_reader_next_frame_sink(neuron_nvf_reader *r, uint32_t timeout_ms, const neuron_frame_sink *sink,
                                          neuron_frame_info *info) {
    if (!r || !sink || !info) return NEURON_EINVAL;
    int32_t rc = take_ready(r, timeout_ms, info);
    if (rc != NEURON_CAPTURE_FRAME) return rc;
    if (info->type != NEURON_FRAME_BGRA) {
        pthread_mutex_unlock(&r->mu);
        return NEURON_EUNSUPPORTED;
    }
    uint32_t stride = info->out_pitch; /* the parser checked stride >= width * 4, bytes == stride * height */
    info->out_pitch = info->data_width * 4;
    info->bytes = (uint64_t)info->out_pitch * info->data_height;
    rc = sink->begin(sink->ctx, info);
    if (rc < 0) {
        pthread_mutex_unlock(&r->mu);
        return rc;
    }
    uint64_t t0 = now_ns();
    uint32_t done = sink->rows(sink->ctx, r->ready, stride, 0, info->data_height, info->data_height);
    info->copy_ns = now_ns() - t0;
    r->stats.frames++;
    pthread_mutex_unlock(&r->mu);
    return done == info->data_height ? NEURON_CAPTURE_FRAME : NEURON_EFORMAT;
}

void neuron_nvf_reader_hello(neuron_nvf_reader *r, neuron_nvf_hello *out) {
    if (!r || !out) return;
    pthread_mutex_lock(&r->mu);
    *out = r->hello;
    pthread_mutex_unlock(&r->mu);
}

void neuron_nvf_reader_stats(neuron_nvf_reader *r, neuron_reader_stats *out) {
    if (!r || !out) return;
    pthread_mutex_lock(&r->mu);
    *out = r->stats;
    pthread_mutex_unlock(&r->mu);
}

int32_t neuron_nvf_reader_error(neuron_nvf_reader *r, char *buf, uint32_t cap) {
    if (!r || !buf || cap == 0) return NEURON_EINVAL;
    pthread_mutex_lock(&r->mu);
    int n = snprintf(buf, cap, "%s", r->error);
    pthread_mutex_unlock(&r->mu);
    return n < 0 ? 0 : (n >= (int)cap ? (int32_t)cap - 1 : n);
}

void neuron_nvf_reader_close(neuron_nvf_reader *r) {
    if (!r) return;
    r->stop = 1;
    if (r->thread_started) pthread_join(r->thread, NULL);
    if (r->listen_fd >= 0) close(r->listen_fd);
    if (r->unix_path[0]) unlink(r->unix_path);
    neuron_nvf_parser_free(r->parser);
    free(r->ready);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

int32_t neuron_nvf_connect_vsock(uint32_t cid, uint32_t port, uint32_t timeout_ms) {
    int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return errno == EAFNOSUPPORT ? NEURON_EUNSUPPORTED : NEURON_EIO;
    struct sockaddr_vm sa = {.svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port};
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        if (errno != EINPROGRESS) {
            snprintf(last_error, sizeof last_error, "vsock %u:%u: %s", cid, port, strerror(errno));
            close(fd);
            return NEURON_EIO;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        int err = 0;
        socklen_t len = sizeof err;
        if (poll(&pfd, 1, (int)timeout_ms) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
            snprintf(last_error, sizeof last_error, "vsock %u:%u: %s", cid, port, err ? strerror(err) : "timed out");
            close(fd);
            return NEURON_EIO;
        }
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    return fd;
}
