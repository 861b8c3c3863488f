/* C-level tests of the GF(2^16) Reed–Solomon codec (built with ASan/UBSan by `make check`). */
#include "../fec.h"
#include "../fec/rs16_internal.h"
#include "check.h"

#include <stdlib.h>
#include <string.h>

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}
static uint32_t rnd_below(uint32_t n) { return (uint32_t)(((uint64_t)rnd() * n) >> 32); }

static void test_field(void) {
    CHECK(rs16_field_init() == NEURON_OK);
    /* Cantor coordinates: x^2 + x maps u to u >> 1 (s_1), for every element */
    int ok = 1;
    for (uint32_t u = 0; u < RS16_ORDER; u++)
        if ((uint16_t)(rs16_mul((uint16_t)u, (uint16_t)u) ^ u) != (u >> 1)) ok = 0;
    CHECK(ok);
    /* log/exp are inverse, 1 is the unit, every nonzero element has an inverse */
    ok = 1;
    for (uint32_t u = 1; u < RS16_ORDER; u++) {
        if (rs16_exp_of(rs16_log_of((uint16_t)u)) != u) ok = 0;
        if (rs16_mul((uint16_t)u, 1) != u) ok = 0;
        uint16_t inv = rs16_exp_of((RS16_MODULUS - rs16_log_of((uint16_t)u)) % RS16_MODULUS);
        if (rs16_mul((uint16_t)u, inv) != 1) ok = 0;
    }
    CHECK(ok);
    /* commutative, associative, distributive over XOR; tables agree with the product */
    ok = 1;
    for (int i = 0; i < 200000; i++) {
        uint16_t a = (uint16_t)rnd(), b = (uint16_t)rnd(), c = (uint16_t)rnd();
        if (rs16_mul(a, b) != rs16_mul(b, a)) ok = 0;
        if (rs16_mul(rs16_mul(a, b), c) != rs16_mul(a, rs16_mul(b, c))) ok = 0;
        if (rs16_mul(a, (uint16_t)(b ^ c)) != (rs16_mul(a, b) ^ rs16_mul(a, c))) ok = 0;
    }
    CHECK(ok);
    ok = 1;
    for (int i = 0; i < 2000; i++) {
        uint16_t a = (uint16_t)(rnd() | 1), x = (uint16_t)rnd();
        const rs16_mt *t = rs16_mul_table(rs16_log_of(a));
        unsigned lo = 0, hi = 0;
        for (unsigned j = 0; j < 4; j++) {
            lo ^= t->lo[j][(x >> (4 * j)) & 15];
            hi ^= t->hi[j][(x >> (4 * j)) & 15];
        }
        if ((uint16_t)(lo | hi << 8) != rs16_mul(a, x)) ok = 0;
    }
    CHECK(ok);
}

static void fill(uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)rnd();
}

/* Every kernel of a SIMD set equals the portable one. */
static void test_kernels_of(const rs16_kernels *a, const char *what) {
    const rs16_kernels *p = &rs16_kernels_portable;
    if (!a) {
        printf("rs16: %s kernels not testable: this CPU lacks the instructions\n", what);
        return;
    }
    enum { B = 64 * 5 };
    uint8_t x[B], y[B], x2[B], y2[B], o1[B], o2[B], o3[B], o4[B];
    int ok = 1;
    for (int it = 0; it < 200; it++) {
        fill(x, B);
        fill(y, B);
        const rs16_mt *t = it % 7 == 0 ? NULL : rs16_mul_table(rnd_below(RS16_MODULUS));
        memcpy(x2, x, B);
        memcpy(y2, y, B);
        a->mul(o1, x, t, B);
        p->mul(o2, x, t, B);
        if (memcmp(o1, o2, B)) ok = 0;
        a->muladd(x2, y, t, B);
        memcpy(o1, x, B);
        p->muladd(o1, y, t, B);
        if (memcmp(o1, x2, B)) ok = 0;
        memcpy(x2, x, B);
        memcpy(y2, y, B);
        memcpy(o1, x, B);
        memcpy(o2, y, B);
        a->fft(x2, y2, t, B);
        p->fft(o1, o2, t, B);
        if (memcmp(o1, x2, B) || memcmp(o2, y2, B)) ok = 0;
        const uint8_t *ib = it % 3 == 0 ? NULL : y;
        a->ifft(o1, o2, x, ib, t, B);
        p->ifft(o3, o4, x, ib, t, B);
        if (memcmp(o1, o3, B) || memcmp(o2, o4, B)) ok = 0;
        /* the inverse butterfly undoes the forward one */
        memcpy(x2, o1, B);
        memcpy(y2, o2, B);
        if (ib) {
            a->fft(x2, y2, t, B);
            if (memcmp(x2, x, B) || memcmp(y2, y, B)) ok = 0;
        }
    }
    CHECK(ok);
    /* radix-4 steps */
    ok = 1;
    for (int it = 0; it < 100; it++) {
        uint8_t q[2][4][B];
        for (int i = 0; i < 4; i++) fill(q[0][i], B);
        memcpy(q[1], q[0], sizeof q[0]);
        const rs16_mt *t[3];
        for (int i = 0; i < 3; i++) t[i] = (it + i) % 5 == 0 ? NULL : rs16_mul_table(rnd_below(RS16_MODULUS));
        if (it & 1) {
            a->fft4(q[0][0], q[0][1], q[0][2], q[0][3], t[0], t[1], t[2], B);
            p->fft4(q[1][0], q[1][1], q[1][2], q[1][3], t[0], t[1], t[2], B);
        } else {
            /* out of place from shared inputs, into outputs that start equal (accumulate or not) */
            static uint8_t in[4][B];
            for (int i = 0; i < 4; i++) fill(in[i], B);
            const int accumulate = (it / 2) % 2;
            uint8_t in_a[4][B], in_p[4][B];
            memcpy(in_a, in, sizeof in);
            memcpy(in_p, in, sizeof in);
            uint8_t *oa[4] = {q[0][0], q[0][1], q[0][2], q[0][3]}, *op[4] = {q[1][0], q[1][1], q[1][2], q[1][3]};
            const uint8_t *ia[4] = {in_a[0], in_a[1], in_a[2], in_a[3]}, *ip[4] = {in_p[0], in_p[1], in_p[2], in_p[3]};
            a->ifft4(oa, ia, t[0], t[1], t[2], accumulate, B);
            p->ifft4(op, ip, t[0], t[1], t[2], accumulate, B);
            if (!accumulate && (memcmp(in_a, in, sizeof in) || memcmp(in_p, in, sizeof in))) ok = 0;
            /* in place too */
            uint8_t *xa[4] = {in_a[0], in_a[1], in_a[2], in_a[3]}, *xp[4] = {in_p[0], in_p[1], in_p[2], in_p[3]};
            memcpy(in_a, in, sizeof in);
            memcpy(in_p, in, sizeof in);
            a->ifft4(xa, (const uint8_t *const *)xa, t[0], t[1], t[2], 0, B);
            p->ifft4(xp, (const uint8_t *const *)xp, t[0], t[1], t[2], 0, B);
            if (memcmp(in_a, in_p, sizeof in)) ok = 0;
            if (!accumulate && memcmp(in_a, q[0], sizeof in)) ok = 0;
        }
        if (memcmp(q[0], q[1], sizeof q[0])) ok = 0;
    }
    CHECK(ok);
}

static void test_kernels(void) {
    test_kernels_of(rs16_kernels_avx2(), "AVX2");
    test_kernels_of(rs16_kernels_gfni(), "GFNI");
    test_kernels_of(rs16_kernels_gfni512(), "GFNI/AVX-512");
}

typedef struct {
    uint32_t k, m;
    size_t size;
    uint8_t *mem, *orig;
    uint8_t **ptr;
} block;

static void block_init(block *b, uint32_t k, uint32_t m, size_t size) {
    b->k = k;
    b->m = m;
    b->size = size;
    b->mem = malloc((size_t)(k + m) * size);
    b->orig = malloc((size_t)(k + m) * size);
    b->ptr = malloc((size_t)(k + m) * sizeof *b->ptr);
    for (uint32_t i = 0; i < k + m; i++) b->ptr[i] = b->mem + (size_t)i * size;
    fill(b->mem, (size_t)k * size);
}

static void block_free(block *b) {
    free(b->mem);
    free(b->orig);
    free(b->ptr);
}

static void pick_lost(uint32_t *lost, uint32_t count, uint32_t total) {
    for (uint32_t i = 0; i < count; i++) {
        uint32_t v;
        int dup;
        do {
            v = rnd_below(total);
            dup = 0;
            for (uint32_t j = 0; j < i; j++) dup |= lost[j] == v;
        } while (dup);
        lost[i] = v;
    }
}

/* Encodes, then recovers `patterns` random loss sets of up to m shards; returns 1 if all exact. */
static int round_trip(uint32_t k, uint32_t m, size_t size, int patterns, const rs16_kernels *kern) {
    neuron_rs16 *c = NULL;
    if (neuron_rs16_create(k, m, size, &c) != NEURON_OK) return 0;
    if (kern) rs16_codec_use_kernels(c, kern);
    block b;
    block_init(&b, k, m, size);
    int ok = neuron_rs16_encode(c, (const uint8_t *const *)b.ptr, b.ptr + k, size) == NEURON_OK;
    memcpy(b.orig, b.mem, (size_t)(k + m) * size);
    uint32_t *lost = malloc((size_t)m * sizeof *lost);
    for (int pat = 0; pat < patterns && ok; pat++) {
        uint32_t count = pat == 0 ? m : 1 + rnd_below(m);
        if (pat == 1 && m <= k) { /* all parity lost, then all of the first m data shards */
            for (uint32_t i = 0; i < m; i++) lost[i] = k + i;
            count = m;
        } else if (pat == 2) {
            for (uint32_t i = 0; i < m; i++) lost[i] = i < k ? i : k + i - k;
            count = m;
        } else {
            pick_lost(lost, count, k + m);
        }
        for (uint32_t i = 0; i < count; i++) memset(b.ptr[lost[i]], 0xA5, size);
        if (neuron_rs16_decode(c, b.ptr, lost, count, size) != NEURON_OK) ok = 0;
        if (memcmp(b.mem, b.orig, (size_t)(k + m) * size) != 0) ok = 0;
    }
    if (!ok) fprintf(stderr, "round trip failed: k=%u m=%u size=%zu kernels=%s\n", k, m, size, neuron_rs16_isa(c));
    free(lost);
    block_free(&b);
    neuron_rs16_free(c);
    return ok;
}

static void test_round_trips(void) {
    const rs16_kernels *kinds[4] = {&rs16_kernels_portable, rs16_kernels_avx2(), rs16_kernels_gfni(),
                                    rs16_kernels_gfni512()};
    for (int kk = 0; kk < 4; kk++) {
        const rs16_kernels *kern = kinds[kk];
        if (!kern) continue;
        CHECK(round_trip(1, 1, 64, 4, kern));
        CHECK(round_trip(1, 5, 128, 8, kern));
        CHECK(round_trip(5, 1, 64, 8, kern));
        CHECK(round_trip(2, 2, 64, 8, kern));
        CHECK(round_trip(60, 5, 192, 10, kern));   /* 65 shards */
        CHECK(round_trip(250, 7, 64, 6, kern));    /* 257 */
        CHECK(round_trip(100, 29, 128, 6, kern));  /* 129 */
        CHECK(round_trip(16, 16, 64, 10, kern));
        CHECK(round_trip(17, 33, 64, 10, kern));   /* low rate */
    }
    /* random shapes */
    for (int i = 0; i < 40; i++) {
        uint32_t k = 1 + rnd_below(300), m = 1 + rnd_below(100);
        size_t size = 64 * (1 + rnd_below(6));
        CHECK(round_trip(k, m, size, 4, NULL));
    }
    CHECK(round_trip(4000, 800, 64, 3, NULL));
    CHECK(round_trip(1000, 200, 128, 3, NULL));
    /* the fallback layout (k + m' > 65,536) and the largest blocks */
    CHECK(round_trip(1, 32769, 64, 2, NULL));
    CHECK(round_trip(30000, 35535, 64, 2, NULL));
    CHECK(round_trip(65534, 1, 64, 2, NULL));
}

static void test_unrecoverable_and_hostile(void) {
    const uint32_t k = 20, m = 6;
    const size_t size = 128;
    neuron_rs16 *c = NULL;
    CHECK(neuron_rs16_create(k, m, size, &c) == NEURON_OK);
    block b;
    block_init(&b, k, m, size);
    CHECK(neuron_rs16_encode(c, (const uint8_t *const *)b.ptr, b.ptr + k, size) == NEURON_OK);
    memcpy(b.orig, b.mem, (size_t)(k + m) * size);
    uint32_t lost[32];
    pick_lost(lost, m + 1, k + m);
    CHECK(neuron_rs16_decode(c, b.ptr, lost, m + 1, size) == NEURON_EUNRECOVERABLE);
    uint32_t all[26];
    for (uint32_t i = 0; i < k + m; i++) all[i] = i;
    CHECK(neuron_rs16_decode(c, b.ptr, all, k + m, size) == NEURON_EUNRECOVERABLE);
    CHECK(neuron_rs16_decode(c, b.ptr, all, k + m + 1, size) == NEURON_EINVAL);
    uint32_t bad[3] = {1, 26, 2};
    CHECK(neuron_rs16_decode(c, b.ptr, bad, 3, size) == NEURON_EINVAL);
    uint32_t huge[1] = {0xffffffffu};
    CHECK(neuron_rs16_decode(c, b.ptr, huge, 1, size) == NEURON_EINVAL);
    uint32_t dup[3] = {3, 4, 3};
    CHECK(neuron_rs16_decode(c, b.ptr, dup, 3, size) == NEURON_EINVAL);
    uint32_t one[1] = {3};
    CHECK(neuron_rs16_decode(c, b.ptr, one, 1, 0) == NEURON_EINVAL);
    CHECK(neuron_rs16_decode(c, b.ptr, one, 1, 96) == NEURON_EINVAL);
    CHECK(neuron_rs16_decode(c, b.ptr, one, 1, 192) == NEURON_EINVAL); /* over max */
    CHECK(neuron_rs16_decode(c, b.ptr, NULL, 1, size) == NEURON_EINVAL);
    CHECK(neuron_rs16_decode(NULL, b.ptr, one, 1, size) == NEURON_EINVAL);
    CHECK(neuron_rs16_decode(c, NULL, one, 1, size) == NEURON_EINVAL);
    CHECK(neuron_rs16_encode(c, (const uint8_t *const *)b.ptr, b.ptr + k, 100) == NEURON_EINVAL);
    CHECK(neuron_rs16_encode(c, NULL, b.ptr + k, size) == NEURON_EINVAL);
    uint8_t *saved = b.ptr[5];
    b.ptr[5] = NULL;
    CHECK(neuron_rs16_encode(c, (const uint8_t *const *)b.ptr, b.ptr + k, size) == NEURON_EINVAL);
    CHECK(neuron_rs16_decode(c, b.ptr, one, 1, size) == NEURON_EINVAL);
    b.ptr[5] = saved;
    /* nothing above changed a byte */
    CHECK(memcmp(b.mem, b.orig, (size_t)(k + m) * size) == 0);
    /* and the codec still works after the rejections (duplicate marks were cleared) */
    uint32_t ok2[2] = {3, 4};
    memset(b.ptr[3], 0, size);
    memset(b.ptr[4], 0, size);
    CHECK(neuron_rs16_decode(c, b.ptr, ok2, 2, size) == NEURON_OK);
    CHECK(memcmp(b.mem, b.orig, (size_t)(k + m) * size) == 0);
    CHECK(neuron_rs16_decode(c, b.ptr, ok2, 0, size) == NEURON_OK);
    block_free(&b);
    neuron_rs16_free(c);

    neuron_rs16 *x = (neuron_rs16 *)&rng_state;
    CHECK(neuron_rs16_create(0, 4, 64, &x) == NEURON_EINVAL);
    CHECK(x == (neuron_rs16 *)&rng_state);
    CHECK(neuron_rs16_create(4, 0, 64, &x) == NEURON_EINVAL);
    CHECK(neuron_rs16_create(65535, 1, 64, &x) == NEURON_EINVAL);
    CHECK(neuron_rs16_create(40000, 25536, 64, &x) == NEURON_EINVAL);
    CHECK(neuron_rs16_create(0xffffffffu, 2, 64, &x) == NEURON_EINVAL);
    CHECK(neuron_rs16_create(4, 4, 0, &x) == NEURON_EINVAL);
    CHECK(neuron_rs16_create(4, 4, 1408 + 1, &x) == NEURON_EINVAL);
    CHECK(neuron_rs16_create(4, 4, (size_t)1 << 40, &x) == NEURON_EINVAL);
    CHECK(neuron_rs16_create(4, 4, 64, NULL) == NEURON_EINVAL);
    CHECK(x == (neuron_rs16 *)&rng_state);
    neuron_rs16_free(NULL);
    CHECK(strcmp(neuron_rs16_isa(NULL), "none") == 0);

    CHECK(neuron_rs16_create(4, 4, 64, &x) == NEURON_OK);
    CHECK(neuron_rs16_set_isa(x, "portable") == NEURON_OK);
    CHECK(strcmp(neuron_rs16_isa(x), "portable") == 0);
    CHECK(neuron_rs16_set_isa(x, "sse9") == NEURON_EINVAL);
    CHECK(neuron_rs16_set_isa(x, NULL) == NEURON_EINVAL);
    CHECK(neuron_rs16_set_isa(NULL, "avx2") == NEURON_EINVAL);
    CHECK(strcmp(neuron_rs16_isa(x), "portable") == 0);
    int32_t rc = neuron_rs16_set_isa(x, "gfni");
    CHECK(rc == (rs16_kernels_gfni() ? NEURON_OK : NEURON_EUNSUPPORTED));
    neuron_rs16_free(x);
}

int main(void) {
    test_field();
    test_kernels();
    test_unrecoverable_and_hostile();
    test_round_trips();
    return check_report("rs16");
}
