/*
 * rs16_kernels.c — shard-wide GF(2^16) kernels for the rs16 codec: a portable version and an
 * AVX2 version (4-bit split tables through VPSHUFB), chosen at run time.
 * Shard layout (rs16_internal.h): 64-byte chunks, 32 low bytes then 32 high bytes.
 */
#include "rs16_internal.h"

#include <immintrin.h>
#include <string.h>

/* ---------- portable ---------- */

static inline uint16_t mul_sym(const rs16_mt *t, uint16_t x) {
    return x ? rs16_exp2[t->log + rs16_logt[x]] : 0;
}

static inline uint16_t get_sym(const uint8_t *chunk, unsigned j) {
    return (uint16_t)(chunk[j] | (unsigned)chunk[32 + j] << 8);
}

static inline void put_sym(uint8_t *chunk, unsigned j, uint16_t v) {
    chunk[j] = (uint8_t)v;
    chunk[32 + j] = (uint8_t)(v >> 8);
}

static void p_xor(uint8_t *dst, const uint8_t *src, size_t bytes) {
    for (size_t i = 0; i < bytes; i += 8) {
        uint64_t a, b;
        memcpy(&a, dst + i, 8);
        memcpy(&b, src + i, 8);
        a ^= b;
        memcpy(dst + i, &a, 8);
    }
}

static void p_xor_many(uint8_t *dst, const uint8_t *const *src, unsigned n, size_t bytes) {
    for (unsigned s = 0; s < n; s++) p_xor(dst, src[s], bytes);
}

static void p_mul(uint8_t *dst, const uint8_t *src, const rs16_mt *t, size_t bytes) {
    if (!t) {
        memset(dst, 0, bytes);
        return;
    }
    for (size_t c = 0; c < bytes; c += 64)
        for (unsigned j = 0; j < 32; j++) put_sym(dst + c, j, mul_sym(t, get_sym(src + c, j)));
}

static void p_muladd(uint8_t *dst, const uint8_t *src, const rs16_mt *t, size_t bytes) {
    if (!t) return;
    for (size_t c = 0; c < bytes; c += 64)
        for (unsigned j = 0; j < 32; j++)
            put_sym(dst + c, j, (uint16_t)(get_sym(dst + c, j) ^ mul_sym(t, get_sym(src + c, j))));
}

static void p_fft(uint8_t *a, uint8_t *b, const rs16_mt *t, size_t bytes) {
    p_muladd(a, b, t, bytes);
    p_xor(b, a, bytes);
}

static void p_ifft(uint8_t *oa, uint8_t *ob, const uint8_t *ia, const uint8_t *ib, const rs16_mt *t, size_t bytes) {
    for (size_t c = 0; c < bytes; c += 64) {
        for (unsigned j = 0; j < 32; j++) {
            uint16_t a = get_sym(ia + c, j);
            uint16_t b = (uint16_t)(a ^ (ib ? get_sym(ib + c, j) : 0));
            if (t) a ^= mul_sym(t, b);
            put_sym(ob + c, j, b);
            put_sym(oa + c, j, a);
        }
    }
}

/* Radix-4 steps composed of radix-2 butterflies (sets without a fused version). */
#define COMPOSED_RADIX4(prefix)                                                                              \
    static void prefix##_fft4(uint8_t *x0, uint8_t *x1, uint8_t *x2, uint8_t *x3, const rs16_mt *t01,         \
                              const rs16_mt *t0, const rs16_mt *t1, size_t bytes) {                         \
        prefix##_fft(x0, x2, t01, bytes);                                                                    \
        prefix##_fft(x1, x3, t01, bytes);                                                                    \
        prefix##_fft(x0, x1, t0, bytes);                                                                     \
        prefix##_fft(x2, x3, t1, bytes);                                                                     \
    }                                                                                                        \
    static void prefix##_ifft4(uint8_t *const *o, const uint8_t *const *i, const rs16_mt *t01,                \
                               const rs16_mt *t0, const rs16_mt *t1, int accumulate, size_t bytes) {        \
        uint8_t *w[4];                                                                                       \
        for (int r = 0; r < 4; r++) w[r] = accumulate ? (uint8_t *)(uintptr_t)i[r] : o[r];                  \
        prefix##_ifft(w[0], w[1], i[0], i[1], t0, bytes);                                                    \
        prefix##_ifft(w[2], w[3], i[2], i[3], t1, bytes);                                                    \
        prefix##_ifft(w[0], w[2], w[0], w[2], t01, bytes);                                                   \
        prefix##_ifft(w[1], w[3], w[1], w[3], t01, bytes);                                                   \
        if (accumulate)                                                                                      \
            for (int r = 0; r < 4; r++) prefix##_xor(o[r], w[r], bytes);                                     \
    }

COMPOSED_RADIX4(p)

const rs16_kernels rs16_kernels_portable = {
    .name = "portable", .xor_into = p_xor, .xor_many = p_xor_many, .mul = p_mul, .muladd = p_muladd, .fft = p_fft, .ifft = p_ifft,
    .fft4 = p_fft4, .ifft4 = p_ifft4,
};

/* ---------- AVX2 ---------- */

#define AVX2 __attribute__((target("avx2")))

typedef struct {
    __m256i lo[4], hi[4];
} avx2_tab;

AVX2 static inline void avx2_load(avx2_tab *r, const rs16_mt *t) {
    for (unsigned j = 0; j < 4; j++) {
        r->lo[j] = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)t->lo[j]));
        r->hi[j] = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)t->hi[j]));
    }
}

/* (pl, ph) = c·(xl, xh) for the 32 symbols of one chunk. */
AVX2 static inline void avx2_mul(const avx2_tab *r, __m256i xl, __m256i xh, __m256i *pl, __m256i *ph) {
    const __m256i m = _mm256_set1_epi8(0x0f);
    __m256i n0 = _mm256_and_si256(xl, m);
    __m256i n1 = _mm256_and_si256(_mm256_srli_epi64(xl, 4), m);
    __m256i n2 = _mm256_and_si256(xh, m);
    __m256i n3 = _mm256_and_si256(_mm256_srli_epi64(xh, 4), m);
    __m256i l = _mm256_xor_si256(_mm256_shuffle_epi8(r->lo[0], n0), _mm256_shuffle_epi8(r->lo[1], n1));
    __m256i h = _mm256_xor_si256(_mm256_shuffle_epi8(r->hi[0], n0), _mm256_shuffle_epi8(r->hi[1], n1));
    l = _mm256_xor_si256(l, _mm256_xor_si256(_mm256_shuffle_epi8(r->lo[2], n2), _mm256_shuffle_epi8(r->lo[3], n3)));
    h = _mm256_xor_si256(h, _mm256_xor_si256(_mm256_shuffle_epi8(r->hi[2], n2), _mm256_shuffle_epi8(r->hi[3], n3)));
    *pl = l;
    *ph = h;
}

#define LD(p) _mm256_loadu_si256((const __m256i *)(const void *)(p))
#define ST(p, v) _mm256_storeu_si256((__m256i *)(void *)(p), (v))

AVX2 static void a_xor(uint8_t *dst, const uint8_t *src, size_t bytes) {
    for (size_t c = 0; c < bytes; c += 64) {
        ST(dst + c, _mm256_xor_si256(LD(dst + c), LD(src + c)));
        ST(dst + c + 32, _mm256_xor_si256(LD(dst + c + 32), LD(src + c + 32)));
    }
}

AVX2 static void a_xor_many(uint8_t *dst, const uint8_t *const *src, unsigned n, size_t bytes) {
    for (size_t c = 0; c < bytes; c += 64) {
        __m256i l = LD(dst + c), h = LD(dst + c + 32);
        for (unsigned s = 0; s < n; s++) {
            l = _mm256_xor_si256(l, LD(src[s] + c));
            h = _mm256_xor_si256(h, LD(src[s] + c + 32));
        }
        ST(dst + c, l);
        ST(dst + c + 32, h);
    }
}

#define K_NAME(x) a_##x
#define K_ATTR AVX2
#define K_TAB avx2_tab
#define K_LOAD avx2_load
#define K_MUL avx2_mul
#include "rs16_kernels_256.h"

COMPOSED_RADIX4(a)

static const rs16_kernels k_avx2 = {
    .name = "avx2", .xor_into = a_xor, .xor_many = a_xor_many, .mul = a_mul, .muladd = a_muladd, .fft = a_fft, .ifft = a_ifft,
    .fft4 = a_fft4, .ifft4 = a_ifft4,
};

const rs16_kernels *rs16_kernels_avx2(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") ? &k_avx2 : NULL;
}

/* ---------- GFNI (VEX, 256-bit): one affine op per 8x8 block of the 16x16 bit matrix ---------- */

#define GFNI __attribute__((target("avx2,gfni")))

typedef struct {
    __m256i a0, a1, a2, a3;
} gfni_tab;

GFNI static inline void gfni_load(gfni_tab *r, const rs16_mt *t) {
    r->a0 = _mm256_set1_epi64x((long long)t->aff[0]);
    r->a1 = _mm256_set1_epi64x((long long)t->aff[1]);
    r->a2 = _mm256_set1_epi64x((long long)t->aff[2]);
    r->a3 = _mm256_set1_epi64x((long long)t->aff[3]);
}

GFNI static inline void gfni_mul(const gfni_tab *r, __m256i xl, __m256i xh, __m256i *pl, __m256i *ph) {
    *pl = _mm256_xor_si256(_mm256_gf2p8affine_epi64_epi8(xl, r->a0, 0), _mm256_gf2p8affine_epi64_epi8(xh, r->a1, 0));
    *ph = _mm256_xor_si256(_mm256_gf2p8affine_epi64_epi8(xl, r->a2, 0), _mm256_gf2p8affine_epi64_epi8(xh, r->a3, 0));
}

#define K_NAME(x) g_##x
#define K_ATTR GFNI
#define K_TAB gfni_tab
#define K_LOAD gfni_load
#define K_MUL gfni_mul
#include "rs16_kernels_256.h"

/* Fused radix-4: four shards stay in registers across both layers (half the loads/stores). */
typedef struct {
    __m256i l, h;
} sym32;

GFNI __attribute__((always_inline)) static inline void g_bfly_fft(sym32 *a, sym32 *b, const gfni_tab *r) {
    if (r) {
        __m256i pl, ph;
        gfni_mul(r, b->l, b->h, &pl, &ph);
        a->l = _mm256_xor_si256(a->l, pl);
        a->h = _mm256_xor_si256(a->h, ph);
    }
    b->l = _mm256_xor_si256(b->l, a->l);
    b->h = _mm256_xor_si256(b->h, a->h);
}

GFNI __attribute__((always_inline)) static inline void g_bfly_ifft(sym32 *a, sym32 *b, const gfni_tab *r) {
    b->l = _mm256_xor_si256(b->l, a->l);
    b->h = _mm256_xor_si256(b->h, a->h);
    if (r) {
        __m256i pl, ph;
        gfni_mul(r, b->l, b->h, &pl, &ph);
        a->l = _mm256_xor_si256(a->l, pl);
        a->h = _mm256_xor_si256(a->h, ph);
    }
}

GFNI __attribute__((always_inline)) static inline sym32 g_ld(const uint8_t *p) {
    sym32 v = {LD(p), LD(p + 32)};
    return v;
}

GFNI __attribute__((always_inline)) static inline void g_st(uint8_t *p, sym32 v) {
    ST(p, v.l);
    ST(p + 32, v.h);
}

GFNI static void g_fft4(uint8_t *x0, uint8_t *x1, uint8_t *x2, uint8_t *x3, const rs16_mt *t01, const rs16_mt *t0,
                        const rs16_mt *t1, size_t bytes) {
    gfni_tab r01, r0, r1;
    if (t01) gfni_load(&r01, t01);
    if (t0) gfni_load(&r0, t0);
    if (t1) gfni_load(&r1, t1);
    const gfni_tab *p01 = t01 ? &r01 : NULL, *p0 = t0 ? &r0 : NULL, *p1 = t1 ? &r1 : NULL;
    for (size_t c = 0; c < bytes; c += 64) {
        sym32 a = g_ld(x0 + c), b = g_ld(x1 + c), d = g_ld(x2 + c), e = g_ld(x3 + c);
        g_bfly_fft(&a, &d, p01);
        g_bfly_fft(&b, &e, p01);
        g_bfly_fft(&a, &b, p0);
        g_bfly_fft(&d, &e, p1);
        g_st(x0 + c, a);
        g_st(x1 + c, b);
        g_st(x2 + c, d);
        g_st(x3 + c, e);
    }
}

GFNI static void g_ifft4(uint8_t *const *o, const uint8_t *const *i, const rs16_mt *t01, const rs16_mt *t0,
                         const rs16_mt *t1, int accumulate, size_t bytes) {
    gfni_tab r01, r0, r1;
    if (t01) gfni_load(&r01, t01);
    if (t0) gfni_load(&r0, t0);
    if (t1) gfni_load(&r1, t1);
    const gfni_tab *p01 = t01 ? &r01 : NULL, *p0 = t0 ? &r0 : NULL, *p1 = t1 ? &r1 : NULL;
    const uint8_t *i0 = i[0], *i1 = i[1], *i2 = i[2], *i3 = i[3];
    uint8_t *o0 = o[0], *o1 = o[1], *o2 = o[2], *o3 = o[3];
    for (size_t c = 0; c < bytes; c += 64) {
        sym32 a = g_ld(i0 + c), b = g_ld(i1 + c), d = g_ld(i2 + c), e = g_ld(i3 + c);
        g_bfly_ifft(&a, &b, p0);
        g_bfly_ifft(&d, &e, p1);
        g_bfly_ifft(&a, &d, p01);
        g_bfly_ifft(&b, &e, p01);
        if (accumulate) {
            sym32 u = g_ld(o0 + c), v = g_ld(o1 + c), w = g_ld(o2 + c), z = g_ld(o3 + c);
            a.l = _mm256_xor_si256(a.l, u.l), a.h = _mm256_xor_si256(a.h, u.h);
            b.l = _mm256_xor_si256(b.l, v.l), b.h = _mm256_xor_si256(b.h, v.h);
            d.l = _mm256_xor_si256(d.l, w.l), d.h = _mm256_xor_si256(d.h, w.h);
            e.l = _mm256_xor_si256(e.l, z.l), e.h = _mm256_xor_si256(e.h, z.h);
        }
        g_st(o0 + c, a);
        g_st(o1 + c, b);
        g_st(o2 + c, d);
        g_st(o3 + c, e);
    }
}

static const rs16_kernels k_gfni = {
    .name = "gfni", .xor_into = a_xor, .xor_many = a_xor_many, .mul = g_mul, .muladd = g_muladd, .fft = g_fft, .ifft = g_ifft,
    .fft4 = g_fft4, .ifft4 = g_ifft4,
};

const rs16_kernels *rs16_kernels_gfni(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("gfni") ? &k_gfni : NULL;
}

/* The 512-bit set measured no faster than the 256-bit GFNI one on this project's reference CPU
 * (AMD Zen 4: the transforms are bound by L2 traffic), so it is opt-in (neuron_rs16_set_isa). */
const rs16_kernels *rs16_kernels_best(void) {
    const rs16_kernels *k = rs16_kernels_gfni();
    if (!k) k = rs16_kernels_avx2();
    return k ? k : &rs16_kernels_portable;
}
