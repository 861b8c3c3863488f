/* The ScreenCast backend interface of an xdg-desktop-portal implementation (hostout.h):
 * org.freedesktop.impl.portal.ScreenCast, called directly (no frontend, no dialog). */
#include "../hostout.h"

#include <dbus/dbus.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XDP_PATH "/org/freedesktop/portal/desktop"
#define XDP_SC_IFACE "org.freedesktop.impl.portal.ScreenCast"
#define XDP_SESSION_IFACE "org.freedesktop.impl.portal.Session"
#define XDP_REQUEST_BASE "/org/freedesktop/portal/desktop/request/neuron/"
#define XDP_SESSION_PATH "/org/freedesktop/portal/desktop/session/neuron/s"

struct neuron_xdp {
    DBusConnection *conn;
    char name[256]; /* the implementation's bus name */
    int created;    /* a session exists at XDP_SESSION_PATH */
    char error[512];
};

__attribute__((format(printf, 2, 3))) static int32_t fail(neuron_xdp *p, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->error, sizeof p->error, fmt, ap);
    va_end(ap);
    return NEURON_EIO;
}

int32_t neuron_xdp_open(const char *address, const char *bus_name, neuron_xdp **out) {
    if (!out || !address || !*address || !bus_name || !dbus_validate_bus_name(bus_name, NULL) || strlen(bus_name) >= 256)
        return NEURON_EINVAL;
    neuron_xdp *p = calloc(1, sizeof *p);
    if (!p) return NEURON_ENOMEM;
    strcpy(p->name, bus_name);
    DBusError err;
    dbus_error_init(&err);
    p->conn = dbus_connection_open_private(address, &err);
    if (!p->conn || !dbus_bus_register(p->conn, &err)) {
        if (p->conn) {
            dbus_connection_close(p->conn);
            dbus_connection_unref(p->conn);
        }
        dbus_error_free(&err);
        free(p);
        return NEURON_EIO;
    }
    dbus_connection_set_exit_on_disconnect(p->conn, FALSE);
    *out = p;
    return NEURON_OK;
}

int32_t neuron_xdp_available(neuron_xdp *p) {
    if (!p) return 0;
    DBusError err;
    dbus_error_init(&err);
    dbus_bool_t has = dbus_bus_name_has_owner(p->conn, p->name, &err);
    dbus_error_free(&err);
    return has ? 1 : 0;
}

/* Appends a{sv} with up to two uint32 entries (key NULL: left out). */
static void append_opts(DBusMessageIter *it, const char *k1, uint32_t v1, const char *k2, uint32_t v2) {
    DBusMessageIter dict, entry, var;
    dbus_message_iter_open_container(it, DBUS_TYPE_ARRAY, "{sv}", &dict);
    const char *keys[2] = {k1, k2};
    uint32_t vals[2] = {v1, v2};
    for (int i = 0; i < 2; i++) {
        if (!keys[i]) continue;
        dbus_message_iter_open_container(&dict, DBUS_TYPE_DICT_ENTRY, NULL, &entry);
        dbus_message_iter_append_basic(&entry, DBUS_TYPE_STRING, &keys[i]);
        dbus_message_iter_open_container(&entry, DBUS_TYPE_VARIANT, "u", &var);
        dbus_message_iter_append_basic(&var, DBUS_TYPE_UINT32, &vals[i]);
        dbus_message_iter_close_container(&entry, &var);
        dbus_message_iter_close_container(&dict, &entry);
    }
    dbus_message_iter_close_container(it, &dict);
}

/* The node id of the first stream in Start's results (a{sv} with "streams": a(ua{sv})); 0: none. */
static uint32_t first_stream_node(DBusMessageIter *results) {
    DBusMessageIter dict, entry, var, streams, st;
    if (dbus_message_iter_get_arg_type(results) != DBUS_TYPE_ARRAY) return 0;
    dbus_message_iter_recurse(results, &dict);
    for (; dbus_message_iter_get_arg_type(&dict) == DBUS_TYPE_DICT_ENTRY; dbus_message_iter_next(&dict)) {
        const char *key = NULL;
        dbus_message_iter_recurse(&dict, &entry);
        if (dbus_message_iter_get_arg_type(&entry) != DBUS_TYPE_STRING) continue;
        dbus_message_iter_get_basic(&entry, &key);
        if (strcmp(key, "streams") != 0 || !dbus_message_iter_next(&entry)) continue;
        dbus_message_iter_recurse(&entry, &var);
        if (dbus_message_iter_get_arg_type(&var) != DBUS_TYPE_ARRAY) return 0;
        dbus_message_iter_recurse(&var, &streams);
        if (dbus_message_iter_get_arg_type(&streams) != DBUS_TYPE_STRUCT) return 0;
        dbus_message_iter_recurse(&streams, &st);
        if (dbus_message_iter_get_arg_type(&st) != DBUS_TYPE_UINT32) return 0;
        uint32_t node = 0;
        dbus_message_iter_get_basic(&st, &node);
        return node;
    }
    return 0;
}

/* One method of the ScreenCast interface; Start's node id to *node when given. */
static int32_t sc_call(neuron_xdp *p, const char *method, const char *k1, uint32_t v1, const char *k2, uint32_t v2,
                       int timeout_ms, uint32_t *node) {
    char handle[128];
    snprintf(handle, sizeof handle, XDP_REQUEST_BASE "%s", method);
    DBusMessage *msg = dbus_message_new_method_call(p->name, XDP_PATH, XDP_SC_IFACE, method);
    if (!msg) return NEURON_ENOMEM;
    const char *h = handle, *s = XDP_SESSION_PATH, *app = "", *parent = "";
    DBusMessageIter it;
    dbus_message_iter_init_append(msg, &it);
    dbus_message_iter_append_basic(&it, DBUS_TYPE_OBJECT_PATH, &h);
    dbus_message_iter_append_basic(&it, DBUS_TYPE_OBJECT_PATH, &s);
    dbus_message_iter_append_basic(&it, DBUS_TYPE_STRING, &app);
    if (node) dbus_message_iter_append_basic(&it, DBUS_TYPE_STRING, &parent);
    append_opts(&it, k1, v1, k2, v2);
    DBusError err;
    dbus_error_init(&err);
    DBusMessage *reply = dbus_connection_send_with_reply_and_block(p->conn, msg, timeout_ms, &err);
    dbus_message_unref(msg);
    if (!reply) {
        int32_t rc = fail(p, "%s.%s: %s", XDP_SC_IFACE, method, err.message ? err.message : "no reply");
        dbus_error_free(&err);
        return rc;
    }
    DBusMessageIter r;
    uint32_t response = 99;
    int32_t rc = NEURON_OK;
    if (!dbus_message_iter_init(reply, &r) || dbus_message_iter_get_arg_type(&r) != DBUS_TYPE_UINT32) {
        rc = fail(p, "%s: unexpected reply", method);
    } else {
        dbus_message_iter_get_basic(&r, &response);
        if (response != 0) {
            rc = fail(p, "%s: the portal answered %s (response %u)", method, response == 1 ? "cancelled" : "failed", response);
        } else if (node) {
            dbus_message_iter_next(&r);
            *node = first_stream_node(&r);
            if (!*node) rc = fail(p, "Start: the portal's results carry no stream");
        }
    }
    dbus_message_unref(reply);
    return rc;
}

int32_t neuron_xdp_start(neuron_xdp *p, uint32_t cursor_mode, uint32_t timeout_ms, uint32_t *node_id) {
    if (!p || !node_id || (cursor_mode != 1 && cursor_mode != 2 && cursor_mode != 4)) return NEURON_EINVAL;
    if (p->created) return fail(p, "this handle already has a session");
    int t = (int)(timeout_ms ? timeout_ms : 1);
    int32_t rc = sc_call(p, "CreateSession", NULL, 0, NULL, 0, t, NULL);
    if (rc) return rc;
    p->created = 1;
    /* types 1: a monitor (the implementation's own configuration picks which, without asking) */
    rc = sc_call(p, "SelectSources", "types", 1, "cursor_mode", cursor_mode, t, NULL);
    if (rc) return rc;
    return sc_call(p, "Start", NULL, 0, NULL, 0, t, node_id);
}

int32_t neuron_xdp_stop(neuron_xdp *p) {
    if (!p) return NEURON_EINVAL;
    if (!p->created) return NEURON_OK;
    p->created = 0;
    DBusMessage *msg = dbus_message_new_method_call(p->name, XDP_SESSION_PATH, XDP_SESSION_IFACE, "Close");
    if (!msg) return NEURON_ENOMEM;
    DBusError err;
    dbus_error_init(&err);
    DBusMessage *reply = dbus_connection_send_with_reply_and_block(p->conn, msg, 2000, &err);
    dbus_message_unref(msg);
    if (!reply) {
        int32_t rc = fail(p, "Session.Close: %s", err.message ? err.message : "no reply");
        dbus_error_free(&err);
        return rc;
    }
    dbus_message_unref(reply);
    return NEURON_OK;
}

int32_t neuron_xdp_error(neuron_xdp *p, char *buf, uint32_t cap) {
    if (!p || !buf || !cap) return NEURON_EINVAL;
    int n = snprintf(buf, cap, "%s", p->error);
    return n < 0 ? 0 : (n >= (int)cap ? (int32_t)cap - 1 : n);
}

void neuron_xdp_close(neuron_xdp *p) {
    if (!p) return;
    neuron_xdp_stop(p);
    dbus_connection_close(p->conn);
    dbus_connection_unref(p->conn);
    free(p);
}
