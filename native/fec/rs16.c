/*
 * rs16.c — the GF(2^16) Reed–Solomon codec of fec.h (neuron_rs16_*).
 *
 * The code: every block is a vector of evaluations of one polynomial on points of the additive
 * subgroup W_N = {0..N-1} (Cantor coordinates), in one of three layouts (m', k' the powers of
 * two >= m, k):
 *  - high rate: parity at points 0..m-1, data at m'..m'+k-1, points >= m'+k fixed to zero,
 *    degree < N - m';
 *  - low rate (k' < m'): data at 0..k-1, points k..k'-1 fixed to zero, parity at k'..k'+m-1,
 *    degree < k';
 *  - fallback (neither fits in 65,536 points): data at 0..k-1, parity at k..k+m-1, degree < k.
 *
 * Encode (high rate): each group of m' data shards is interpolated on its coset m'(g+1) + W_m'
 * (inverse FFT), the coefficients of all groups are summed and evaluated on W_m' (FFT).
 * Encode (low rate): the data are interpolated on W_k', the polynomial is evaluated on each
 * parity coset k'(g+1) + W_k'.
 * Decode (and fallback encode): with E the unknown points and Pi(x) = prod_{e in E}(x - e),
 * (f·Pi)' = f'·Pi + f·Pi' gives f(e) = (f·Pi)'(e) / Pi'(e) for e in E; f·Pi is known at every
 * point (zero on E), so IFFT → formal derivative → FFT recovers it, O(N log N). Pi and Pi' are
 * found in the log domain by one XOR-convolution (Walsh–Hadamard) of E's indicator with the
 * log table.
 */
#include "../fec.h"
#include "rs16_internal.h"

#include <stdlib.h>
#include <string.h>

enum { LAYOUT_HIGH_RATE = 0, LAYOUT_LOW_RATE = 1, LAYOUT_FALLBACK = 2 };

struct neuron_rs16 {
    uint32_t k, m;
    uint32_t mp;     /* m': power of two >= m */
    uint32_t kp;     /* k': power of two >= k */
    uint32_t n;      /* N: the transform size of decode */
    int layout;
    size_t max_shard;
    const rs16_kernels *kern;
    uint8_t *work;         /* n * max_shard bytes, 64-aligned */
    uint8_t **w;           /* n pointers into work */
    uint8_t **x;           /* n: pointer scratch (low-rate encode) */
    const uint8_t **src;   /* n: present shard at each point (NULL = zero or unknown) */
    uint8_t *erased;       /* n: 1 where the point is unknown */
    uint32_t *need;        /* n + 1: running count of points whose value is wanted */
    uint32_t *logpi;       /* n: log Pi(p) (known points) or log Pi'(p) (unknown points) */
    uint32_t *flog;        /* n: FWHT of log[0..n) times 1/n, modulo 65535 */
    uint8_t *mark;         /* k + m: duplicate detection for decode */
    uint32_t *outpos;      /* m: points to write on output */
    uint8_t **outdst;      /* m: where */
};

static uint32_t pow2_at_least(uint32_t v) {
    uint32_t p = 1;
    while (p < v) p <<= 1;
    return p;
}

int32_t neuron_rs16_create(uint32_t k, uint32_t m, size_t max_shard_size, neuron_rs16 **out) {
    if (!out || k == 0 || m == 0 || (uint64_t)k + m > NEURON_RS16_MAX_SHARDS) return NEURON_EINVAL;
    if (max_shard_size == 0 || max_shard_size % NEURON_RS16_SHARD_ALIGN != 0) return NEURON_EINVAL;
    const uint32_t mp = pow2_at_least(m), kp = pow2_at_least(k);
    const int high_fits = (uint64_t)mp + k <= RS16_ORDER, low_fits = (uint64_t)kp + m <= RS16_ORDER;
    int layout;
    uint32_t n;
    if (low_fits && (kp < mp || !high_fits)) {
        layout = LAYOUT_LOW_RATE;
        n = pow2_at_least(kp + m);
    } else if (high_fits) {
        layout = LAYOUT_HIGH_RATE;
        n = pow2_at_least(mp + k);
    } else {
        layout = LAYOUT_FALLBACK;
        n = pow2_at_least(k + m);
    }
    if (max_shard_size > NEURON_RS16_MAX_WORK_BYTES / n) return NEURON_EINVAL;
    int rc = rs16_field_init();
    if (rc != NEURON_OK) return rc;

    neuron_rs16 *c = calloc(1, sizeof *c);
    if (!c) return NEURON_ENOMEM;
    c->k = k;
    c->m = m;
    c->mp = mp;
    c->kp = kp;
    c->n = n;
    c->layout = layout;
    c->max_shard = max_shard_size;
    c->kern = rs16_kernels_best();
    c->work = aligned_alloc(64, (size_t)n * max_shard_size);
    c->w = calloc(n, sizeof *c->w);
    c->x = calloc(n, sizeof *c->x);
    c->src = calloc(n, sizeof *c->src);
    c->erased = calloc(n, 1);
    c->need = calloc((size_t)n + 1, sizeof *c->need);
    c->logpi = calloc(n, sizeof *c->logpi);
    c->flog = calloc(n, sizeof *c->flog);
    c->mark = calloc((size_t)k + m, 1);
    c->outpos = calloc(m, sizeof *c->outpos);
    c->outdst = calloc(m, sizeof *c->outdst);
    if (!c->work || !c->w || !c->x || !c->src || !c->erased || !c->need || !c->logpi || !c->flog || !c->mark || !c->outpos ||
        !c->outdst) {
        neuron_rs16_free(c);
        return NEURON_ENOMEM;
    }
    for (uint32_t i = 0; i < n; i++) c->w[i] = c->work + (size_t)i * max_shard_size;
    /* flog = FWHT(log[0..n)) · n^-1 (n = 2^t, 2^16 ≡ 1 so n^-1 = 2^(16-t) mod 65535) */
    unsigned t = (unsigned)__builtin_ctz(n);
    for (uint32_t i = 0; i < n; i++) c->flog[i] = rs16_log_of((uint16_t)i);
    rs16_fwht(c->flog, n);
    for (uint32_t i = 0; i < n; i++) c->flog[i] = (uint32_t)(((uint64_t)c->flog[i] << (16 - t)) % RS16_MODULUS);
    *out = c;
    return NEURON_OK;
}

void neuron_rs16_free(neuron_rs16 *c) {
    if (!c) return;
    free(c->work);
    free(c->w);
    free(c->x);
    free(c->src);
    free(c->erased);
    free(c->need);
    free(c->logpi);
    free(c->flog);
    free(c->mark);
    free(c->outpos);
    free(c->outdst);
    free(c);
}

const char *neuron_rs16_isa(const neuron_rs16 *c) { return c ? c->kern->name : "none"; }

uint64_t neuron_rs16_work_bytes(const neuron_rs16 *c) { return c ? (uint64_t)c->n * c->max_shard : 0; }

int32_t neuron_rs16_set_isa(neuron_rs16 *c, const char *name) {
    if (!c || !name) return NEURON_EINVAL;
    const rs16_kernels *k;
    if (strcmp(name, "portable") == 0)
        k = &rs16_kernels_portable;
    else if (strcmp(name, "avx2") == 0)
        k = rs16_kernels_avx2();
    else if (strcmp(name, "gfni") == 0)
        k = rs16_kernels_gfni();
    else if (strcmp(name, "gfni-avx512") == 0)
        k = rs16_kernels_gfni512();
    else
        return NEURON_EINVAL;
    if (!k) return NEURON_EUNSUPPORTED;
    c->kern = k;
    return NEURON_OK;
}

/* Kernels override for tests (portable vs SIMD agreement); not exported. */
void rs16_codec_use_kernels(neuron_rs16 *c, const rs16_kernels *k) { c->kern = k; }

/* 1 if any of the n pointers is NULL (branch-free so it vectorises). */
static int any_null(const void *const *p, uint32_t n) {
    unsigned nulls = 0;
    for (uint32_t i = 0; i < n; i++) nulls |= p[i] == NULL;
    return nulls != 0;
}

static int bad_size(const neuron_rs16 *c, size_t bytes) {
    return bytes == 0 || bytes % NEURON_RS16_SHARD_ALIGN != 0 || bytes > c->max_shard;
}

/* need[] from a per-point 0/1 marking already in need[1..n] */
static void prefix(uint32_t *need, uint32_t n) {
    need[0] = 0;
    for (uint32_t p = 0; p < n; p++) need[p + 1] += need[p];
}

/*
 * The erasure decoder: c->src, c->erased and c->need (prefix) describe the block, points
 * >= count are zero-valued or unknown; writes the wanted points to outdst[i] (point outpos[i]).
 */
static void recover(neuron_rs16 *c, size_t bytes, uint32_t count, uint32_t nout) {
    const uint32_t n = c->n;
    const rs16_kernels *k = c->kern;
    uint32_t *lp = c->logpi;
    for (uint32_t p = 0; p < n; p++) lp[p] = c->erased[p];
    rs16_fwht(lp, n);
    for (uint32_t p = 0; p < n; p++) lp[p] = (uint32_t)(((uint64_t)lp[p] * c->flog[p]) % RS16_MODULUS);
    rs16_fwht(lp, n);
    for (uint32_t p = 0; p < n; p++) lp[p] %= RS16_MODULUS;

    for (uint32_t p = 0; p < count; p++) {
        if (c->src[p])
            k->mul(c->w[p], c->src[p], rs16_mul_table(lp[p]), bytes);
        else
            memset(c->w[p], 0, bytes);
    }
    rs16_ifft(k, c->w, (const uint8_t *const *)c->w, n, 0, count, NULL, bytes);
    rs16_derivative(k, c->w, n, bytes);
    rs16_fft(k, c->w, n, 0, c->need, bytes);
    for (uint32_t i = 0; i < nout; i++) {
        uint32_t p = c->outpos[i];
        k->mul(c->outdst[i], c->w[p], rs16_mul_table((RS16_MODULUS - lp[p]) % RS16_MODULUS), bytes);
    }
}

static void encode_high_rate(neuron_rs16 *c, const uint8_t *const *data, uint8_t *const *parity, size_t bytes) {
    const uint32_t mp = c->mp, k = c->k;
    const rs16_kernels *kern = c->kern;
    uint8_t **acc = c->w, **tmp = c->w + mp;
    for (uint32_t g = 0; g * mp < k; g++) {
        uint32_t cnt = k - g * mp < mp ? k - g * mp : mp;
        /* group 0 lands in acc, later groups are added into it */
        rs16_ifft(kern, g == 0 ? acc : tmp, data + (size_t)g * mp, mp, mp * (g + 1), cnt, g == 0 ? NULL : acc, bytes);
    }
    uint32_t *need = c->need;
    for (uint32_t p = 0; p <= mp; p++) need[p] = p < c->m ? p : c->m;
    rs16_fft(kern, acc, mp, 0, need, bytes);
    for (uint32_t j = 0; j < c->m; j++) memcpy(parity[j], acc[j], bytes);
}

static void encode_low_rate(neuron_rs16 *c, const uint8_t *const *data, uint8_t *const *parity, size_t bytes) {
    const uint32_t kp = c->kp, m = c->m;
    const rs16_kernels *kern = c->kern;
    uint8_t **coef = c->w, **spare = c->w + kp, **x = c->x;
    rs16_ifft(kern, coef, data, kp, 0, c->k, NULL, bytes);
    for (uint32_t g = 0; g * kp < m; g++) {
        /* evaluate on coset k'(g+1): wanted outputs straight into the parity buffers */
        const uint32_t cnt = m - g * kp < kp ? m - g * kp : kp;
        for (uint32_t j = 0; j < kp; j++) {
            x[j] = j < cnt ? parity[g * kp + j] : spare[j];
            memcpy(x[j], coef[j], bytes);
        }
        for (uint32_t p = 0; p <= kp; p++) c->need[p] = p < cnt ? p : cnt;
        rs16_fft(kern, x, kp, kp * (g + 1), c->need, bytes);
    }
}

static void encode_fallback(neuron_rs16 *c, const uint8_t *const *data, uint8_t *const *parity, size_t bytes) {
    const uint32_t n = c->n, k = c->k, m = c->m;
    memset(c->need, 0, ((size_t)n + 1) * sizeof *c->need);
    for (uint32_t p = 0; p < n; p++) {
        c->src[p] = p < k ? data[p] : NULL;
        c->erased[p] = p >= k;
    }
    for (uint32_t j = 0; j < m; j++) {
        c->need[k + j + 1] = 1;
        c->outpos[j] = k + j;
        c->outdst[j] = parity[j];
    }
    prefix(c->need, n);
    recover(c, bytes, k, m);
}

int32_t neuron_rs16_encode(neuron_rs16 *c, const uint8_t *const *data, uint8_t *const *parity, size_t bytes) {
    if (!c || !data || !parity || bad_size(c, bytes)) return NEURON_EINVAL;
    if (any_null((const void *const *)data, c->k) || any_null((const void *const *)parity, c->m)) return NEURON_EINVAL;
    if (c->layout == LAYOUT_HIGH_RATE)
        encode_high_rate(c, data, parity, bytes);
    else if (c->layout == LAYOUT_LOW_RATE)
        encode_low_rate(c, data, parity, bytes);
    else
        encode_fallback(c, data, parity, bytes);
    return NEURON_OK;
}

static uint32_t point_of(const neuron_rs16 *c, uint32_t index) {
    if (c->layout == LAYOUT_HIGH_RATE) return index < c->k ? c->mp + index : index - c->k;
    if (c->layout == LAYOUT_LOW_RATE) return index < c->k ? index : c->kp + index - c->k;
    return index;
}

int32_t neuron_rs16_decode(neuron_rs16 *c, uint8_t *const *shards, const uint32_t *lost, uint32_t lost_count,
                           size_t bytes) {
    if (!c || !shards || bad_size(c, bytes)) return NEURON_EINVAL;
    const uint32_t k = c->k, m = c->m, total = k + m, n = c->n;
    if (lost_count > total || (lost_count && !lost)) return NEURON_EINVAL;
    if (any_null((const void *const *)shards, total)) return NEURON_EINVAL;
    int32_t rc = NEURON_OK;
    for (uint32_t i = 0; i < lost_count; i++) {
        if (lost[i] >= total || c->mark[lost[i]]) {
            rc = NEURON_EINVAL;
            lost_count = i;
            break;
        }
        c->mark[lost[i]] = 1;
    }
    for (uint32_t i = 0; i < lost_count; i++) c->mark[lost[i]] = 0;
    if (rc != NEURON_OK) return rc;
    if (lost_count > m) return NEURON_EUNRECOVERABLE;
    if (lost_count == 0) return NEURON_OK;

    memset(c->src, 0, (size_t)n * sizeof *c->src);
    memset(c->need, 0, ((size_t)n + 1) * sizeof *c->need);
    memset(c->erased, 0, n);
    uint32_t count;
    if (c->layout == LAYOUT_HIGH_RATE) {
        for (uint32_t p = m; p < c->mp; p++) c->erased[p] = 1;
        count = c->mp + k;
    } else if (c->layout == LAYOUT_LOW_RATE) {
        /* points k..k'-1 are known zeros (src NULL, not erased) */
        for (uint32_t p = c->kp + m; p < n; p++) c->erased[p] = 1;
        count = c->kp + m;
    } else {
        for (uint32_t p = total; p < n; p++) c->erased[p] = 1;
        count = total;
    }
    for (uint32_t i = 0; i < total; i++) c->src[point_of(c, i)] = shards[i];
    for (uint32_t i = 0; i < lost_count; i++) {
        uint32_t p = point_of(c, lost[i]);
        c->src[p] = NULL;
        c->erased[p] = 1;
        c->need[p + 1] = 1;
        c->outpos[i] = p;
        c->outdst[i] = shards[lost[i]];
    }
    prefix(c->need, n);
    recover(c, bytes, count, lost_count);
    return NEURON_OK;
}
