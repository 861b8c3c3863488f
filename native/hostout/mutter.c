/* Mutter's ScreenCast D-Bus interface (hostout.h): one virtual output per handle. */
#include "../hostout.h"

#include <dbus/dbus.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SC_NAME "org.gnome.Mutter.ScreenCast"
#define SC_PATH "/org/gnome/Mutter/ScreenCast"
#define SC_IFACE "org.gnome.Mutter.ScreenCast"
#define SESSION_IFACE "org.gnome.Mutter.ScreenCast.Session"
#define STREAM_IFACE "org.gnome.Mutter.ScreenCast.Stream"
#define RD_NAME "org.gnome.Mutter.RemoteDesktop"
#define RD_PATH "/org/gnome/Mutter/RemoteDesktop"
#define RD_SESSION_IFACE "org.gnome.Mutter.RemoteDesktop.Session"

struct neuron_mutter {
    DBusConnection *conn;
    char session[256];
    char stream[256];
    char rd_session[256]; /* the linked RemoteDesktop session (input), if enabled */
    char rd_id[128];
    int started;
    char error[512];
};

__attribute__((format(printf, 2, 3))) static int32_t fail(neuron_mutter *m, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->error, sizeof m->error, fmt, ap);
    va_end(ap);
    return NEURON_EIO;
}

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int32_t neuron_mutter_open(const char *address, neuron_mutter **out) {
    if (!out) return NEURON_EINVAL;
    neuron_mutter *m = calloc(1, sizeof *m);
    if (!m) return NEURON_ENOMEM;
    DBusError err;
    dbus_error_init(&err);
    const char *addr = address && *address ? address : getenv("DBUS_SESSION_BUS_ADDRESS");
    if (!addr) {
        free(m);
        return NEURON_EINVAL;
    }
    m->conn = dbus_connection_open_private(addr, &err);
    if (!m->conn || !dbus_bus_register(m->conn, &err)) {
        if (m->conn) {
            dbus_connection_close(m->conn);
            dbus_connection_unref(m->conn);
        }
        dbus_error_free(&err);
        free(m);
        return NEURON_EIO;
    }
    dbus_connection_set_exit_on_disconnect(m->conn, FALSE);
    *out = m;
    return NEURON_OK;
}

int32_t neuron_mutter_name_has_owner(neuron_mutter *m, const char *name) {
    if (!m || !name || !dbus_validate_bus_name(name, NULL)) return 0;
    DBusError err;
    dbus_error_init(&err);
    dbus_bool_t has = dbus_bus_name_has_owner(m->conn, name, &err);
    dbus_error_free(&err);
    return has ? 1 : 0;
}

int32_t neuron_mutter_available(neuron_mutter *m) { return neuron_mutter_name_has_owner(m, SC_NAME); }

/* Appends an a{sv} with at most one entry (key NULL: empty): a uint32, or a string when str != NULL. */
static void append_props_s(DBusMessage *msg, const char *key, uint32_t value, const char *str) {
    DBusMessageIter it, dict, entry, var;
    dbus_message_iter_init_append(msg, &it);
    dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "{sv}", &dict);
    if (key) {
        dbus_message_iter_open_container(&dict, DBUS_TYPE_DICT_ENTRY, NULL, &entry);
        dbus_message_iter_append_basic(&entry, DBUS_TYPE_STRING, &key);
        dbus_message_iter_open_container(&entry, DBUS_TYPE_VARIANT, str ? "s" : "u", &var);
        if (str) dbus_message_iter_append_basic(&var, DBUS_TYPE_STRING, &str);
        else dbus_message_iter_append_basic(&var, DBUS_TYPE_UINT32, &value);
        dbus_message_iter_close_container(&entry, &var);
        dbus_message_iter_close_container(&dict, &entry);
    }
    dbus_message_iter_close_container(&it, &dict);
}

static void append_props(DBusMessage *msg, const char *key, uint32_t value) { append_props_s(msg, key, value, NULL); }

/* Calls path.iface.method; an object-path reply is copied to out (cap bytes) when given. */
static int32_t call(neuron_mutter *m, const char *path, const char *iface, const char *method, int props,
                    const char *key, uint32_t value, char *out, size_t cap, int timeout_ms) {
    DBusMessage *msg = dbus_message_new_method_call(SC_NAME, path, iface, method);
    if (!msg) return NEURON_ENOMEM;
    if (props) append_props(msg, key, value);
    DBusError err;
    dbus_error_init(&err);
    DBusMessage *reply = dbus_connection_send_with_reply_and_block(m->conn, msg, timeout_ms, &err);
    dbus_message_unref(msg);
    if (!reply) {
        int32_t rc = fail(m, "%s.%s: %s", iface, method, err.message ? err.message : "no reply");
        dbus_error_free(&err);
        return rc;
    }
    int32_t rc = NEURON_OK;
    if (out) {
        const char *p = NULL;
        if (!dbus_message_get_args(reply, &err, DBUS_TYPE_OBJECT_PATH, &p, DBUS_TYPE_INVALID) || !p || strlen(p) >= cap) {
            rc = fail(m, "%s.%s: unexpected reply", iface, method);
            dbus_error_free(&err);
        } else {
            strcpy(out, p);
        }
    }
    dbus_message_unref(reply);
    return rc;
}

/* Sends msg (consumed), waits for the reply; an object path reply is copied to out when given. */
static int32_t send_path(neuron_mutter *m, DBusMessage *msg, const char *what, char *out, size_t cap, int timeout_ms) {
    DBusError err;
    dbus_error_init(&err);
    DBusMessage *reply = dbus_connection_send_with_reply_and_block(m->conn, msg, timeout_ms, &err);
    dbus_message_unref(msg);
    if (!reply) {
        int32_t rc = fail(m, "%s: %s", what, err.message ? err.message : "no reply");
        dbus_error_free(&err);
        return rc;
    }
    int32_t rc = NEURON_OK;
    if (out) {
        const char *p = NULL;
        if (!dbus_message_get_args(reply, &err, DBUS_TYPE_OBJECT_PATH, &p, DBUS_TYPE_INVALID) || !p || strlen(p) >= cap) {
            rc = fail(m, "%s: unexpected reply", what);
            dbus_error_free(&err);
        } else {
            strcpy(out, p);
        }
    }
    dbus_message_unref(reply);
    return rc;
}

int32_t neuron_mutter_enable_input(neuron_mutter *m, uint32_t timeout_ms) {
    if (!m) return NEURON_EINVAL;
    if (m->session[0] || m->rd_session[0]) return fail(m, "input must be enabled before the stream is recorded, once");
    int t = (int)(timeout_ms ? timeout_ms : 1);
    DBusMessage *msg = dbus_message_new_method_call(RD_NAME, RD_PATH, RD_NAME, "CreateSession");
    if (!msg) return NEURON_ENOMEM;
    int32_t rc = send_path(m, msg, "RemoteDesktop.CreateSession", m->rd_session, sizeof m->rd_session, t);
    if (rc) return rc;
    msg = dbus_message_new_method_call(RD_NAME, m->rd_session, "org.freedesktop.DBus.Properties", "Get");
    if (!msg) return NEURON_ENOMEM;
    const char *iface = RD_SESSION_IFACE, *prop = "SessionId";
    dbus_message_append_args(msg, DBUS_TYPE_STRING, &iface, DBUS_TYPE_STRING, &prop, DBUS_TYPE_INVALID);
    DBusError err;
    dbus_error_init(&err);
    DBusMessage *reply = dbus_connection_send_with_reply_and_block(m->conn, msg, t, &err);
    dbus_message_unref(msg);
    if (!reply) {
        rc = fail(m, "SessionId: %s", err.message ? err.message : "no reply");
        dbus_error_free(&err);
        return rc;
    }
    DBusMessageIter it, var;
    const char *id = NULL;
    if (dbus_message_iter_init(reply, &it) && dbus_message_iter_get_arg_type(&it) == DBUS_TYPE_VARIANT) {
        dbus_message_iter_recurse(&it, &var);
        if (dbus_message_iter_get_arg_type(&var) == DBUS_TYPE_STRING) dbus_message_iter_get_basic(&var, &id);
    }
    if (!id || strlen(id) >= sizeof m->rd_id) rc = fail(m, "SessionId: unexpected reply");
    else strcpy(m->rd_id, id);
    dbus_message_unref(reply);
    return rc;
}

/* One RemoteDesktop Notify* call (no reply awaited: input must not block on the bus). */
static int32_t notify(neuron_mutter *m, const char *method, int first_type, ...) {
    if (!m || !m->rd_session[0] || !m->started) return NEURON_EINVAL;
    DBusMessage *msg = dbus_message_new_method_call(RD_NAME, m->rd_session, RD_SESSION_IFACE, method);
    if (!msg) return NEURON_ENOMEM;
    va_list ap;
    va_start(ap, first_type);
    dbus_bool_t ok = dbus_message_append_args_valist(msg, first_type, ap);
    va_end(ap);
    dbus_message_set_no_reply(msg, TRUE);
    ok = ok && dbus_connection_send(m->conn, msg, NULL);
    dbus_message_unref(msg);
    dbus_connection_flush(m->conn);
    return ok ? NEURON_OK : NEURON_EIO;
}

int32_t neuron_mutter_pointer_absolute(neuron_mutter *m, double x, double y) {
    const char *stream = m ? m->stream : NULL;
    if (!stream || !stream[0]) return NEURON_EINVAL;
    return notify(m, "NotifyPointerMotionAbsolute", DBUS_TYPE_STRING, &stream, DBUS_TYPE_DOUBLE, &x, DBUS_TYPE_DOUBLE, &y,
                  DBUS_TYPE_INVALID);
}

int32_t neuron_mutter_pointer_button(neuron_mutter *m, int32_t button, uint32_t pressed) {
    dbus_bool_t st = pressed ? TRUE : FALSE;
    return notify(m, "NotifyPointerButton", DBUS_TYPE_INT32, &button, DBUS_TYPE_BOOLEAN, &st, DBUS_TYPE_INVALID);
}

int32_t neuron_mutter_key(neuron_mutter *m, uint32_t evdev_code, uint32_t pressed) {
    dbus_bool_t st = pressed ? TRUE : FALSE;
    return notify(m, "NotifyKeyboardKeycode", DBUS_TYPE_UINT32, &evdev_code, DBUS_TYPE_BOOLEAN, &st, DBUS_TYPE_INVALID);
}

int32_t neuron_mutter_pointer_relative(neuron_mutter *m, double dx, double dy) {
    return notify(m, "NotifyPointerMotionRelative", DBUS_TYPE_DOUBLE, &dx, DBUS_TYPE_DOUBLE, &dy, DBUS_TYPE_INVALID);
}

int32_t neuron_mutter_pointer_axis_discrete(neuron_mutter *m, uint32_t axis, int32_t steps) {
    if (axis > 1) return NEURON_EINVAL;
    return notify(m, "NotifyPointerAxisDiscrete", DBUS_TYPE_UINT32, &axis, DBUS_TYPE_INT32, &steps, DBUS_TYPE_INVALID);
}

int32_t neuron_mutter_pointer_axis(neuron_mutter *m, double dx, double dy, uint32_t flags) {
    if (flags > 0xf) return NEURON_EINVAL;
    return notify(m, "NotifyPointerAxis", DBUS_TYPE_DOUBLE, &dx, DBUS_TYPE_DOUBLE, &dy, DBUS_TYPE_UINT32, &flags,
                  DBUS_TYPE_INVALID);
}

int32_t neuron_mutter_record_virtual(neuron_mutter *m, uint32_t cursor_mode, uint32_t timeout_ms, uint32_t *node_id) {
    if (!m || !node_id || cursor_mode > 2) return NEURON_EINVAL;
    if (m->session[0]) return fail(m, "this handle already has a session");
    int t = (int)(timeout_ms ? timeout_ms : 1);
    int32_t rc;
    if (m->rd_id[0]) {
        DBusMessage *msg = dbus_message_new_method_call(SC_NAME, SC_PATH, SC_IFACE, "CreateSession");
        if (!msg) return NEURON_ENOMEM;
        append_props_s(msg, "remote-desktop-session-id", 0, m->rd_id);
        rc = send_path(m, msg, "CreateSession", m->session, sizeof m->session, t);
    } else {
        rc = call(m, SC_PATH, SC_IFACE, "CreateSession", 1, NULL, 0, m->session, sizeof m->session, t);
    }
    if (rc) return rc;
    rc = call(m, m->session, SESSION_IFACE, "RecordVirtual", 1, "cursor-mode", cursor_mode, m->stream, sizeof m->stream, t);
    if (rc) return rc;
    char rule[512];
    snprintf(rule, sizeof rule, "type='signal',interface='" STREAM_IFACE "',member='PipeWireStreamAdded',path='%s'", m->stream);
    DBusError err;
    dbus_error_init(&err);
    dbus_bus_add_match(m->conn, rule, &err);
    if (dbus_error_is_set(&err)) {
        rc = fail(m, "AddMatch: %s", err.message);
        dbus_error_free(&err);
        return rc;
    }
    /* a linked session is started through its RemoteDesktop session */
    if (m->rd_session[0]) {
        DBusMessage *msg = dbus_message_new_method_call(RD_NAME, m->rd_session, RD_SESSION_IFACE, "Start");
        if (!msg) return NEURON_ENOMEM;
        rc = send_path(m, msg, "RemoteDesktop.Session.Start", NULL, 0, t);
    } else {
        rc = call(m, m->session, SESSION_IFACE, "Start", 0, NULL, 0, NULL, 0, t);
    }
    if (rc) return rc;
    m->started = 1;
    uint64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        DBusMessage *msg;
        while ((msg = dbus_connection_pop_message(m->conn))) {
            int match = dbus_message_is_signal(msg, STREAM_IFACE, "PipeWireStreamAdded") &&
                        dbus_message_has_path(msg, m->stream);
            uint32_t id = 0;
            if (match && dbus_message_get_args(msg, &err, DBUS_TYPE_UINT32, &id, DBUS_TYPE_INVALID)) {
                dbus_message_unref(msg);
                *node_id = id;
                return NEURON_OK;
            }
            dbus_error_free(&err);
            dbus_message_unref(msg);
        }
        uint64_t now = now_ms();
        if (now >= deadline) return fail(m, "no PipeWireStreamAdded for %s within %u ms", m->stream, timeout_ms);
        if (!dbus_connection_read_write(m->conn, (int)(deadline - now))) return fail(m, "the session bus connection closed");
    }
}

int32_t neuron_mutter_stop(neuron_mutter *m) {
    if (!m) return NEURON_EINVAL;
    if (!m->started) return NEURON_OK;
    m->started = 0;
    if (m->rd_session[0]) {
        DBusMessage *msg = dbus_message_new_method_call(RD_NAME, m->rd_session, RD_SESSION_IFACE, "Stop");
        return msg ? send_path(m, msg, "RemoteDesktop.Session.Stop", NULL, 0, 2000) : NEURON_ENOMEM;
    }
    return call(m, m->session, SESSION_IFACE, "Stop", 0, NULL, 0, NULL, 0, 2000);
}

int32_t neuron_mutter_error(neuron_mutter *m, char *buf, uint32_t cap) {
    if (!m || !buf || !cap) return NEURON_EINVAL;
    int n = snprintf(buf, cap, "%s", m->error);
    return n < 0 ? 0 : (n >= (int)cap ? (int32_t)cap - 1 : n);
}

void neuron_mutter_close(neuron_mutter *m) {
    if (!m) return;
    neuron_mutter_stop(m);
    dbus_connection_close(m->conn);
    dbus_connection_unref(m->conn);
    free(m);
}
