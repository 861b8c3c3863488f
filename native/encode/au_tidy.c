/* Access-unit tidying for Moonlight's frame-start rules (au_tidy.h). */
#include "au_tidy.h"

#include <stdlib.h>
#include <string.h>

typedef struct nal {
    size_t sc;   /* start of the start code */
    size_t body; /* first byte after the start code (the NAL header) */
    size_t end;  /* one past the last byte (next start code, or the end) */
} nal;

/* Offset of the next 00 00 01 at or after i, or len. */
static size_t next_sc3(const uint8_t *b, size_t i, size_t len) {
    while (i + 2 < len) {
        if (b[i + 2] > 1) i += 3;
        else if (b[i] == 0 && b[i + 1] == 0 && b[i + 2] == 1) return i;
        else i++;
    }
    return len;
}

static int nal_type(const neuron_au_tidy *t, const uint8_t *b, const nal *n) {
    if (n->body >= n->end) return -1;
    return t->hevc ? (b[n->body] >> 1) & 0x3f : b[n->body] & 0x1f;
}

static int is_param_set(const neuron_au_tidy *t, int type) {
    return t->hevc ? type >= 32 && type <= 34 : type == 7 || type == 8;
}

/* VPS < SPS < PPS; H.264 SPS < PPS. */
static int ps_rank(const neuron_au_tidy *t, int type) { return t->hevc ? type - 32 : type - 7; }

static int is_dropped(const neuron_au_tidy *t, int type) {
    /* SEI (HEVC prefix 39 / suffix 40) and access unit delimiters */
    return t->hevc ? type == 39 || type == 40 || type == 35 : type == 6 || type == 9;
}

/* Splits b[0, len) into NAL units; *out is malloc'd. Bytes before the first start code, if
 * any, are not a NAL and are dropped. A zero byte right before 00 00 01 belongs to the start
 * code (4-byte form). Returns the count, -1 on ENOMEM. */
static long split(const uint8_t *b, size_t len, nal **out) {
    size_t cap = 16, n = 0;
    nal *v = malloc(cap * sizeof *v);
    if (!v) return -1;
    size_t i = next_sc3(b, 0, len);
    while (i < len) {
        size_t sc = (i > 0 && b[i - 1] == 0) ? i - 1 : i;
        if (n && sc < v[n - 1].body) sc = i; /* never reach back into the previous start code */
        size_t body = i + 3;
        size_t nx = next_sc3(b, body, len);
        size_t end = nx;
        if (nx < len && end > body && b[end - 1] == 0) end--; /* the 4-byte form's zero */
        if (n == cap) {
            nal *w = realloc(v, 2 * cap * sizeof *v);
            if (!w) {
                free(v);
                return -1;
            }
            v = w;
            cap *= 2;
        }
        v[n++] = (nal){.sc = sc, .body = body, .end = end};
        i = nx;
    }
    *out = v;
    return (long)n;
}

static int reserve(uint8_t **p, size_t *cap, size_t need) {
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 4096;
    while (c < need) c *= 2;
    uint8_t *q = realloc(*p, c);
    if (!q) return -1;
    *p = q;
    *cap = c;
    return 0;
}

void neuron_au_tidy_init(neuron_au_tidy *t, int hevc) {
    memset(t, 0, sizeof *t);
    t->hevc = hevc;
}

void neuron_au_tidy_free(neuron_au_tidy *t) {
    free(t->ps);
    free(t->tmp);
    memset(t, 0, sizeof *t);
}

/* Stores the parameter sets of b[0, len) (ranked order, 4-byte start codes) when it has any. */
static int store_ps(neuron_au_tidy *t, const uint8_t *b, const nal *v, long n) {
    size_t need = 0;
    for (long k = 0; k < n; k++)
        if (is_param_set(t, nal_type(t, b, &v[k]))) need += 4 + (v[k].end - v[k].body);
    if (need == 0) return 0;
    if (reserve(&t->ps, &t->ps_cap, need)) return -1;
    size_t o = 0;
    for (int r = 0; r < 3; r++)
        for (long k = 0; k < n; k++) {
            int ty = nal_type(t, b, &v[k]);
            if (!is_param_set(t, ty) || ps_rank(t, ty) != r) continue;
            static const uint8_t sc4[4] = {0, 0, 0, 1};
            memcpy(t->ps + o, sc4, 4);
            memcpy(t->ps + o + 4, b + v[k].body, v[k].end - v[k].body);
            o += 4 + (v[k].end - v[k].body);
        }
    t->ps_len = o;
    return 0;
}

int neuron_au_tidy_learn(neuron_au_tidy *t, const uint8_t *hdr, size_t len) {
    if (!hdr || !len) return 0;
    nal *v = NULL;
    long n = split(hdr, len, &v);
    if (n < 0) return -1;
    int rc = store_ps(t, hdr, v, n);
    free(v);
    return rc;
}

int64_t neuron_au_tidy_run(neuron_au_tidy *t, uint8_t *au, size_t len, size_t cap, int idr) {
    nal *v = NULL;
    long n = split(au, len, &v);
    if (n < 0) return -1;
    unsigned have = 0; /* ranks of the parameter sets this unit carries */
    for (long k = 0; k < n; k++) {
        int ty = nal_type(t, au, &v[k]);
        if (is_param_set(t, ty)) have |= 1u << ps_rank(t, ty);
    }
    const unsigned all = t->hevc ? 7u : 3u;
    if (idr && have == all && store_ps(t, au, v, n)) {
        free(v);
        return -1;
    }
    /* an IDR missing any parameter set gets the stored ones in front instead of its own */
    const int use_stored = idr && have != all && t->ps_len > 0;
    if (reserve(&t->tmp, &t->tmp_cap, len + t->ps_len + 4)) {
        free(v);
        return -1;
    }
    uint8_t *o = t->tmp;
    size_t w = 0;
    uint64_t removed = 0;
    if (use_stored) {
        memcpy(o, t->ps, t->ps_len);
        w = t->ps_len;
    } else if (idr) {
        for (int r = 0; r < 3; r++)
            for (long k = 0; k < n; k++) {
                int ty = nal_type(t, au, &v[k]);
                if (!is_param_set(t, ty) || ps_rank(t, ty) != r) continue;
                memcpy(o + w, au + v[k].sc, v[k].end - v[k].sc);
                w += v[k].end - v[k].sc;
            }
    }
    for (long k = 0; k < n; k++) {
        int ty = nal_type(t, au, &v[k]);
        if (is_dropped(t, ty)) {
            removed += v[k].end - v[k].sc;
            continue;
        }
        if (idr && is_param_set(t, ty)) continue; /* already placed in front */
        memcpy(o + w, au + v[k].sc, v[k].end - v[k].sc);
        w += v[k].end - v[k].sc;
    }
    free(v);
    /* the first NAL gets the 4-byte start code (zero_byte) */
    if (w >= 3 && o[0] == 0 && o[1] == 0 && o[2] == 1) {
        memmove(o + 1, o, w);
        o[0] = 0;
        w++;
    }
    if (w > cap) return -2;
    memcpy(au, o, w);
    t->sei_removed += removed;
    return (int64_t)w;
}
