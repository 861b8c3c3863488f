/* KWin's zkde_screencast_unstable_v1 (hostout.h): one virtual output per handle. */
#include "../hostout.h"
#include "zkde-screencast-unstable-v1-client.h" /* generated at build time (Makefile) */

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <wayland-client.h>

struct neuron_kwin {
    struct wl_display *display;
    struct wl_registry *registry;
    struct zkde_screencast_unstable_v1 *screencast;
    uint32_t screencast_version;
    struct zkde_screencast_stream_unstable_v1 *stream;
    int state; /* 0 waiting, 1 created, -1 failed, -2 closed */
    uint32_t node;
    struct {
        struct wl_output *output;
        char name[64];
    } outputs[16];
    uint32_t n_outputs;
    char error[512];
};

__attribute__((format(printf, 2, 3))) static int32_t fail(neuron_kwin *k, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(k->error, sizeof k->error, fmt, ap);
    va_end(ap);
    return NEURON_EIO;
}

static void on_output_geometry(void *d, struct wl_output *o, int32_t x, int32_t y, int32_t pw, int32_t ph, int32_t sp,
                               const char *make, const char *model, int32_t t) {
    (void)d, (void)o, (void)x, (void)y, (void)pw, (void)ph, (void)sp, (void)make, (void)model, (void)t;
}
static void on_output_mode(void *d, struct wl_output *o, uint32_t f, int32_t w, int32_t h, int32_t r) {
    (void)d, (void)o, (void)f, (void)w, (void)h, (void)r;
}
static void on_output_done(void *d, struct wl_output *o) { (void)d, (void)o; }
static void on_output_scale(void *d, struct wl_output *o, int32_t f) { (void)d, (void)o, (void)f; }
static void on_output_name(void *d, struct wl_output *o, const char *name) {
    neuron_kwin *k = d;
    for (uint32_t i = 0; i < k->n_outputs; i++)
        if (k->outputs[i].output == o) snprintf(k->outputs[i].name, sizeof k->outputs[i].name, "%s", name);
}
static void on_output_description(void *d, struct wl_output *o, const char *desc) { (void)d, (void)o, (void)desc; }
static const struct wl_output_listener output_listener = {on_output_geometry, on_output_mode, on_output_done,
                                                          on_output_scale, on_output_name, on_output_description};

static void on_global(void *data, struct wl_registry *r, uint32_t name, const char *iface, uint32_t version) {
    neuron_kwin *k = data;
    if (strcmp(iface, wl_output_interface.name) == 0 && version >= 4 && k->n_outputs < 16) {
        struct wl_output *o = wl_registry_bind(r, name, &wl_output_interface, 4);
        k->outputs[k->n_outputs].output = o;
        k->outputs[k->n_outputs].name[0] = 0;
        k->n_outputs++;
        wl_output_add_listener(o, &output_listener, k);
    }
    if (strcmp(iface, zkde_screencast_unstable_v1_interface.name) == 0 && !k->screencast) {
        k->screencast_version = version < 3 ? version : 3;
        k->screencast = wl_registry_bind(r, name, &zkde_screencast_unstable_v1_interface, k->screencast_version);
    }
}
static void on_global_remove(void *data, struct wl_registry *r, uint32_t name) {
    (void)data, (void)r, (void)name;
}
static const struct wl_registry_listener registry_listener = {on_global, on_global_remove};

static void on_closed(void *data, struct zkde_screencast_stream_unstable_v1 *s) {
    (void)s;
    neuron_kwin *k = data;
    if (k->state == 0) fail(k, "KWin closed the stream before it was created");
    k->state = -2;
}
static void on_created(void *data, struct zkde_screencast_stream_unstable_v1 *s, uint32_t node) {
    (void)s;
    neuron_kwin *k = data;
    k->node = node;
    k->state = 1;
}
static void on_failed(void *data, struct zkde_screencast_stream_unstable_v1 *s, const char *error) {
    (void)s;
    neuron_kwin *k = data;
    fail(k, "KWin: %s", error ? error : "stream failed");
    k->state = -1;
}
static const struct zkde_screencast_stream_unstable_v1_listener stream_listener = {on_closed, on_created, on_failed};

int32_t neuron_kwin_open(const char *display, neuron_kwin **out) {
    if (!out || !display || !*display) return NEURON_EINVAL;
    neuron_kwin *k = calloc(1, sizeof *k);
    if (!k) return NEURON_ENOMEM;
    k->display = wl_display_connect(display);
    if (!k->display) {
        free(k);
        return NEURON_EIO;
    }
    k->registry = wl_display_get_registry(k->display);
    wl_registry_add_listener(k->registry, &registry_listener, k);
    if (wl_display_roundtrip(k->display) < 0 || wl_display_roundtrip(k->display) < 0)
        fail(k, "the Wayland connection failed during the registry round trip");
    *out = k;
    return NEURON_OK;
}

int32_t neuron_kwin_available(neuron_kwin *k) { return k && k->screencast ? (int32_t)k->screencast_version : 0; }

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Waits for created / failed / closed of the stream just requested. */
static int32_t await_stream(neuron_kwin *k, uint32_t timeout_ms, uint32_t *node_id) {
    zkde_screencast_stream_unstable_v1_add_listener(k->stream, &stream_listener, k);
    uint64_t deadline = now_ms() + timeout_ms;
    while (k->state == 0) {
        if (wl_display_flush(k->display) < 0 && errno != EAGAIN) return fail(k, "the Wayland connection failed");
        while (wl_display_prepare_read(k->display) != 0)
            if (wl_display_dispatch_pending(k->display) < 0) return fail(k, "the Wayland connection failed");
        if (k->state != 0) {
            wl_display_cancel_read(k->display);
            break;
        }
        uint64_t now = now_ms();
        if (now >= deadline) {
            wl_display_cancel_read(k->display);
            return fail(k, "KWin sent neither created nor failed within %u ms", timeout_ms);
        }
        struct pollfd p = {.fd = wl_display_get_fd(k->display), .events = POLLIN};
        int n = poll(&p, 1, (int)(deadline - now));
        if (n > 0) {
            if (wl_display_read_events(k->display) < 0) return fail(k, "the Wayland connection failed");
        } else {
            wl_display_cancel_read(k->display);
        }
        if (wl_display_dispatch_pending(k->display) < 0) return fail(k, "the Wayland connection failed");
    }
    if (k->state != 1) return NEURON_EIO;
    *node_id = k->node;
    return NEURON_OK;
}

static int32_t check_screencast(neuron_kwin *k) {
    if (!k->screencast)
        return fail(k, "zkde_screencast_unstable_v1 is not offered to this client (KWin lists it only to clients whose "
                       ".desktop file names it in X-KDE-Wayland-Interfaces)");
    if (k->stream) return fail(k, "this handle already has a stream");
    return NEURON_OK;
}

int32_t neuron_kwin_stream_virtual_output(neuron_kwin *k, const char *name, uint32_t width, uint32_t height,
                                          uint32_t pointer, uint32_t timeout_ms, uint32_t *node_id) {
    if (!k || !name || !*name || !node_id || width == 0 || height == 0 || width > 16384 || height > 16384 ||
        (pointer != 1 && pointer != 2 && pointer != 4))
        return NEURON_EINVAL;
    int32_t rc = check_screencast(k);
    if (rc) return rc;
    if (k->screencast_version < 2) return fail(k, "zkde_screencast_unstable_v1 version %u has no stream_virtual_output", k->screencast_version);
    k->stream = zkde_screencast_unstable_v1_stream_virtual_output(k->screencast, name, (int32_t)width, (int32_t)height,
                                                                   wl_fixed_from_int(1), pointer);
    return await_stream(k, timeout_ms, node_id);
}

int32_t neuron_kwin_stream_output(neuron_kwin *k, const char *output_name, uint32_t pointer, uint32_t timeout_ms,
                                  uint32_t *node_id) {
    if (!k || !output_name || !node_id || (pointer != 1 && pointer != 2 && pointer != 4)) return NEURON_EINVAL;
    int32_t rc = check_screencast(k);
    if (rc) return rc;
    struct wl_output *o = NULL;
    for (uint32_t i = 0; i < k->n_outputs && !o; i++)
        if (strcmp(k->outputs[i].name, output_name) == 0) o = k->outputs[i].output;
    if (!o) return fail(k, "no output named %s", output_name);
    k->stream = zkde_screencast_unstable_v1_stream_output(k->screencast, o, pointer);
    return await_stream(k, timeout_ms, node_id);
}

int32_t neuron_kwin_error(neuron_kwin *k, char *buf, uint32_t cap) {
    if (!k || !buf || !cap) return NEURON_EINVAL;
    int n = snprintf(buf, cap, "%s", k->error);
    return n < 0 ? 0 : (n >= (int)cap ? (int32_t)cap - 1 : n);
}

void neuron_kwin_close(neuron_kwin *k) {
    if (!k) return;
    if (k->stream) zkde_screencast_stream_unstable_v1_close(k->stream);
    if (k->screencast) zkde_screencast_unstable_v1_destroy(k->screencast);
    for (uint32_t i = 0; i < k->n_outputs; i++) wl_output_release(k->outputs[i].output);
    if (k->registry) wl_registry_destroy(k->registry);
    wl_display_roundtrip(k->display); /* KWin sees the close before the connection goes */
    wl_display_disconnect(k->display);
    free(k);
}
