/*
 * hostout — the host's own desktop as a frame source: a per-session virtual output the
 * compositor creates at the client's mode, whose frames arrive as a PipeWire video stream.
 *
 * Four parts:
 *  - neuron_pw_*: a PipeWire consumer (libpipewire-0.3, its own thread loop) of one node.
 *    It offers exactly one video format — BGRx/BGRA at width x height, fps/1 — so a
 *    compositor that sizes a virtual output by negotiation (Mutter's RecordVirtual) makes
 *    it that size. Buffers: shm (MemFd/MemPtr) or dmabuf (mapped for the CPU, bracketed by
 *    DMA_BUF_IOCTL_SYNC) — whichever the producer offers. The newest buffer is held (not
 *    queued back) until a newer one comes; next_frame copies from it straight into the
 *    caller's buffer: one copy, as from IVSHMEM. node.dont-reconnect is set; if the format
 *    is not agreed within the negotiation timeout the stream is destroyed at once (a wedged
 *    link stalls PipeWire's shared work queue for every client).
 *  - neuron_mutter_*: Mutter's org.gnome.Mutter.ScreenCast D-Bus interface (libdbus-1):
 *    CreateSession, Session.RecordVirtual, Session.Start, the stream's PipeWireStreamAdded
 *    signal (the node id), and Session.Stop on close — the virtual output goes away with it.
 *    The D-Bus connection is private and held for the session: Mutter also ends a session
 *    whose caller disconnects.
 *  - neuron_xdp_*: an xdg-desktop-portal implementation's backend interface
 *    (org.freedesktop.impl.portal.ScreenCast), called directly on a bus the caller names —
 *    the way to a wlroots compositor's output (xdg-desktop-portal-wlr, configured to pick
 *    one output without asking). Session.Close on close ends the stream.
 *  - neuron_kwin_*: KWin's zkde_screencast_unstable_v1 (libwayland-client; its client code is
 *    generated at build time from plasma-wayland-protocols into build/gen/): stream_virtual_output gives a virtual
 *    output and its PipeWire node; closing the stream (or the connection) removes it.
 */
#ifndef NEURON_HOSTOUT_H
#define NEURON_HOSTOUT_H

#include "capture.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct neuron_pw_stream neuron_pw_stream;

/* Memory the producer's buffers live in (neuron_pw_stats.memory). */
enum { NEURON_PW_MEM_NONE = 0, NEURON_PW_MEM_SHM = 1, NEURON_PW_MEM_DMABUF = 2 };

typedef struct neuron_pw_stats {
    uint64_t frames;        /* 0: frames copied out */
    uint64_t buffers;       /* 8: buffers received from the producer */
    uint64_t corrupted;     /* 16: buffers flagged corrupted or with a bad chunk (skipped) */
    uint32_t width;         /* 24: negotiated */
    uint32_t height;        /* 28 */
    uint32_t fps_num;       /* 32: negotiated max frame rate */
    uint32_t fps_den;       /* 36 */
    uint32_t memory;        /* 40: NEURON_PW_MEM_* of the last buffer */
    uint32_t state;         /* 44: 0 connecting, 1 negotiated, 2 streaming, 3 error, 4 gone */
    uint32_t spa_format;    /* 48: SPA_VIDEO_FORMAT_* negotiated */
    uint32_t reserved;      /* 52 */
} neuron_pw_stats;
_Static_assert(sizeof(neuron_pw_stats) == 56, "neuron_pw_stats layout");

/*
 * Connects to the PipeWire daemon (`remote`: a socket path, or NULL for the default of
 * $PIPEWIRE_RUNTIME_DIR/$XDG_RUNTIME_DIR) and to node `node_id` with the one format above.
 * Returns once the format is agreed and buffers are set up, or NEURON_EIO after
 * negotiate_timeout_ms (the stream is gone then; the reason in neuron_pw_last_error()).
 */
NEURON_EXPORT int32_t neuron_pw_stream_open(const char *remote, uint32_t node_id, uint32_t width, uint32_t height,
                                            uint32_t fps, uint32_t negotiate_timeout_ms, neuron_pw_stream **out);
NEURON_EXPORT const char *neuron_pw_last_error(void);
/* Waits up to timeout_ms for a buffer newer than the last returned, copies it (tightly packed
 * BGRA rows) into dst. NEURON_CAPTURE_FRAME / _TIMEOUT, NEURON_ERANGE (dst too small; info->bytes
 * says the need), NEURON_EIO once the stream failed or the producer went away. */
NEURON_EXPORT int32_t neuron_pw_stream_next_frame(neuron_pw_stream *s, uint32_t timeout_ms, uint8_t *dst, uint64_t cap,
                                                  neuron_frame_info *info);
NEURON_EXPORT void neuron_pw_stream_stats(neuron_pw_stream *s, neuron_pw_stats *out);
NEURON_EXPORT int32_t neuron_pw_stream_error(neuron_pw_stream *s, char *buf, uint32_t cap);
/* Disconnects and destroys the stream, its context and thread. NULL ignored. */
NEURON_EXPORT void neuron_pw_stream_close(neuron_pw_stream *s);

typedef struct neuron_mutter neuron_mutter;
/* Opens a private connection to the bus at `address` (NULL: $DBUS_SESSION_BUS_ADDRESS). */
NEURON_EXPORT int32_t neuron_mutter_open(const char *address, neuron_mutter **out);
/* 1 when org.gnome.Mutter.ScreenCast has an owner on that bus. */
NEURON_EXPORT int32_t neuron_mutter_available(neuron_mutter *m);
/* 1 when the well-known `name` has an owner on that bus (e.g. org.gnome.Mutter.RemoteDesktop). */
NEURON_EXPORT int32_t neuron_mutter_name_has_owner(neuron_mutter *m, const char *name);
/* Creates a session and a virtual stream (cursor_mode: 0 hidden, 1 embedded, 2 metadata),
 * starts it and waits up to timeout_ms for the PipeWire node id. One stream per handle. */
NEURON_EXPORT int32_t neuron_mutter_record_virtual(neuron_mutter *m, uint32_t cursor_mode, uint32_t timeout_ms,
                                                   uint32_t *node_id);
/* Links a RemoteDesktop session (org.gnome.Mutter.RemoteDesktop) to the stream recorded next, so
 * input can be injected into the host's session; call before neuron_mutter_record_virtual. */
NEURON_EXPORT int32_t neuron_mutter_enable_input(neuron_mutter *m, uint32_t timeout_ms);
/* Input into the session (after record_virtual with input enabled): the pointer to (x, y) in the
 * virtual output's pixels, a button (evdev BTN_*) and a key (evdev KEY_*) press or release. */
NEURON_EXPORT int32_t neuron_mutter_pointer_absolute(neuron_mutter *m, double x, double y);
NEURON_EXPORT int32_t neuron_mutter_pointer_button(neuron_mutter *m, int32_t button, uint32_t pressed);
NEURON_EXPORT int32_t neuron_mutter_key(neuron_mutter *m, uint32_t evdev_code, uint32_t pressed);
/* Relative pointer motion in pixels (NotifyPointerMotionRelative). */
NEURON_EXPORT int32_t neuron_mutter_pointer_relative(neuron_mutter *m, double dx, double dy);
/* Wheel clicks (NotifyPointerAxisDiscrete): axis 0 vertical, 1 horizontal; steps > 0 down / right. */
NEURON_EXPORT int32_t neuron_mutter_pointer_axis_discrete(neuron_mutter *m, uint32_t axis, int32_t steps);
/* Smooth scroll in pixels (NotifyPointerAxis; flags: bit 0 finish, bits 1-3 source wheel/finger/
 * continuous as in the interface's documentation). */
NEURON_EXPORT int32_t neuron_mutter_pointer_axis(neuron_mutter *m, double dx, double dy, uint32_t flags);
/* Stops the session (the virtual output goes away). Idempotent. */
NEURON_EXPORT int32_t neuron_mutter_stop(neuron_mutter *m);
NEURON_EXPORT int32_t neuron_mutter_error(neuron_mutter *m, char *buf, uint32_t cap);
/* Stops (if started) and closes the connection. NULL ignored. */
NEURON_EXPORT void neuron_mutter_close(neuron_mutter *m);

typedef struct neuron_xdp neuron_xdp;
/* A private connection to the bus at `address`, for the xdg-desktop-portal implementation that
 * owns `bus_name` (e.g. org.freedesktop.impl.portal.desktop.wlr). */
NEURON_EXPORT int32_t neuron_xdp_open(const char *address, const char *bus_name, neuron_xdp **out);
/* 1 when bus_name has an owner on that bus. */
NEURON_EXPORT int32_t neuron_xdp_available(neuron_xdp *p);
/* org.freedesktop.impl.portal.ScreenCast CreateSession, SelectSources (one monitor; cursor_mode 1
 * hidden, 2 embedded, 4 metadata) and Start, each bounded by timeout_ms; the first stream's
 * PipeWire node id to *node_id. Which monitor is the implementation's own (non-interactive)
 * configuration. One session per handle. */
NEURON_EXPORT int32_t neuron_xdp_start(neuron_xdp *p, uint32_t cursor_mode, uint32_t timeout_ms, uint32_t *node_id);
/* Closes the session (org.freedesktop.impl.portal.Session.Close): its stream ends. Idempotent. */
NEURON_EXPORT int32_t neuron_xdp_stop(neuron_xdp *p);
NEURON_EXPORT int32_t neuron_xdp_error(neuron_xdp *p, char *buf, uint32_t cap);
/* Stops (if started) and closes the connection. NULL ignored. */
NEURON_EXPORT void neuron_xdp_close(neuron_xdp *p);

typedef struct neuron_kwin neuron_kwin;
/* Connects to the Wayland display `display` (a socket name or absolute path) and looks for
 * KWin's zkde_screencast_unstable_v1 (KWin offers it only to clients whose .desktop file lists
 * it in X-KDE-Wayland-Interfaces). The connection is held for the session: KWin removes the
 * virtual output when the stream closes or the client goes. */
NEURON_EXPORT int32_t neuron_kwin_open(const char *display, neuron_kwin **out);
/* The bound zkde_screencast_unstable_v1 version (2+ has stream_virtual_output); 0: not offered. */
NEURON_EXPORT int32_t neuron_kwin_available(neuron_kwin *k);
/* stream_virtual_output: a virtual output `name` of width x height (scale 1; pointer 1 hidden,
 * 2 embedded, 4 metadata); waits up to timeout_ms for `created` (the PipeWire node id) or
 * `failed` (its message in neuron_kwin_error). One stream per handle. */
NEURON_EXPORT int32_t neuron_kwin_stream_virtual_output(neuron_kwin *k, const char *name, uint32_t width, uint32_t height,
                                                        uint32_t pointer, uint32_t timeout_ms, uint32_t *node_id);
/* stream_output: an existing output by its wl_output name (e.g. "Virtual-0"); as above. */
NEURON_EXPORT int32_t neuron_kwin_stream_output(neuron_kwin *k, const char *output_name, uint32_t pointer,
                                                uint32_t timeout_ms, uint32_t *node_id);
NEURON_EXPORT int32_t neuron_kwin_error(neuron_kwin *k, char *buf, uint32_t cap);
/* Closes the stream (the output goes), then the connection. NULL ignored. */
NEURON_EXPORT void neuron_kwin_close(neuron_kwin *k);

#ifdef __cplusplus
}
#endif
#endif /* NEURON_HOSTOUT_H */
