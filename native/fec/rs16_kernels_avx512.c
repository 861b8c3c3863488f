/*
 * rs16_kernels_avx512.c — GF(2^16) kernels with GFNI on 512-bit registers: one register holds a
 * whole 64-byte chunk (32 low bytes | 32 high bytes). c·x = A·x ^ B·swap(x), where swap
 * exchanges the two halves, A holds the low<-low / high<-high matrices and B the low<-high /
 * high<-low ones (rs16_mt.aff). Chosen at run time when the CPU has AVX-512F/BW and GFNI.
 */
#include "rs16_internal.h"

#include <immintrin.h>
#include <string.h>

#define Z512 __attribute__((target("avx512f,avx512bw,gfni")))
#define ZLD(p) _mm512_loadu_si512((const void *)(p))
#define ZST(p, v) _mm512_storeu_si512((void *)(p), (v))

typedef struct {
    __m512i a, b;
} ztab;

Z512 static inline void z_load(ztab *r, const rs16_mt *t) {
    r->a = _mm512_inserti64x4(_mm512_set1_epi64((long long)t->aff[0]), _mm256_set1_epi64x((long long)t->aff[3]), 1);
    r->b = _mm512_inserti64x4(_mm512_set1_epi64((long long)t->aff[1]), _mm256_set1_epi64x((long long)t->aff[2]), 1);
}

Z512 __attribute__((always_inline)) static inline __m512i z_mul(const ztab *r, __m512i x) {
    const __m512i sw = _mm512_shuffle_i64x2(x, x, _MM_SHUFFLE(1, 0, 3, 2));
    return _mm512_xor_si512(_mm512_gf2p8affine_epi64_epi8(x, r->a, 0), _mm512_gf2p8affine_epi64_epi8(sw, r->b, 0));
}

Z512 static void z_xor(uint8_t *dst, const uint8_t *src, size_t bytes) {
    for (size_t c = 0; c < bytes; c += 64) ZST(dst + c, _mm512_xor_si512(ZLD(dst + c), ZLD(src + c)));
}

Z512 static void z_xor_many(uint8_t *dst, const uint8_t *const *src, unsigned n, size_t bytes) {
    for (size_t c = 0; c < bytes; c += 64) {
        __m512i v = ZLD(dst + c);
        for (unsigned s = 0; s < n; s++) v = _mm512_xor_si512(v, ZLD(src[s] + c));
        ZST(dst + c, v);
    }
}

Z512 static void z_mul_k(uint8_t *dst, const uint8_t *src, const rs16_mt *t, size_t bytes) {
    if (!t) {
        memset(dst, 0, bytes);
        return;
    }
    ztab r;
    z_load(&r, t);
    for (size_t c = 0; c < bytes; c += 64) ZST(dst + c, z_mul(&r, ZLD(src + c)));
}

Z512 static void z_muladd(uint8_t *dst, const uint8_t *src, const rs16_mt *t, size_t bytes) {
    if (!t) return;
    ztab r;
    z_load(&r, t);
    for (size_t c = 0; c < bytes; c += 64) ZST(dst + c, _mm512_xor_si512(ZLD(dst + c), z_mul(&r, ZLD(src + c))));
}

Z512 __attribute__((always_inline)) static inline void z_bfly_fft(__m512i *a, __m512i *b, const ztab *r) {
    if (r) *a = _mm512_xor_si512(*a, z_mul(r, *b));
    *b = _mm512_xor_si512(*b, *a);
}

Z512 __attribute__((always_inline)) static inline void z_bfly_ifft(__m512i *a, __m512i *b, const ztab *r) {
    *b = _mm512_xor_si512(*b, *a);
    if (r) *a = _mm512_xor_si512(*a, z_mul(r, *b));
}

Z512 static void z_fft(uint8_t *a, uint8_t *b, const rs16_mt *t, size_t bytes) {
    ztab r;
    if (t) z_load(&r, t);
    const ztab *p = t ? &r : NULL;
    for (size_t c = 0; c < bytes; c += 64) {
        __m512i x = ZLD(a + c), y = ZLD(b + c);
        z_bfly_fft(&x, &y, p);
        ZST(a + c, x);
        ZST(b + c, y);
    }
}

Z512 static void z_ifft(uint8_t *oa, uint8_t *ob, const uint8_t *ia, const uint8_t *ib, const rs16_mt *t,
                        size_t bytes) {
    ztab r;
    if (t) z_load(&r, t);
    const ztab *p = t ? &r : NULL;
    for (size_t c = 0; c < bytes; c += 64) {
        __m512i x = ZLD(ia + c), y = ib ? ZLD(ib + c) : _mm512_setzero_si512();
        z_bfly_ifft(&x, &y, p);
        ZST(oa + c, x);
        ZST(ob + c, y);
    }
}

Z512 static void z_fft4(uint8_t *x0, uint8_t *x1, uint8_t *x2, uint8_t *x3, const rs16_mt *t01, const rs16_mt *t0,
                        const rs16_mt *t1, size_t bytes) {
    ztab r01, r0, r1;
    if (t01) z_load(&r01, t01);
    if (t0) z_load(&r0, t0);
    if (t1) z_load(&r1, t1);
    const ztab *p01 = t01 ? &r01 : NULL, *p0 = t0 ? &r0 : NULL, *p1 = t1 ? &r1 : NULL;
    for (size_t c = 0; c < bytes; c += 64) {
        __m512i a = ZLD(x0 + c), b = ZLD(x1 + c), d = ZLD(x2 + c), e = ZLD(x3 + c);
        z_bfly_fft(&a, &d, p01);
        z_bfly_fft(&b, &e, p01);
        z_bfly_fft(&a, &b, p0);
        z_bfly_fft(&d, &e, p1);
        ZST(x0 + c, a);
        ZST(x1 + c, b);
        ZST(x2 + c, d);
        ZST(x3 + c, e);
    }
}

Z512 static void z_ifft4(uint8_t *const *o, const uint8_t *const *i, const rs16_mt *t01, const rs16_mt *t0,
                         const rs16_mt *t1, int accumulate, size_t bytes) {
    ztab r01, r0, r1;
    if (t01) z_load(&r01, t01);
    if (t0) z_load(&r0, t0);
    if (t1) z_load(&r1, t1);
    const ztab *p01 = t01 ? &r01 : NULL, *p0 = t0 ? &r0 : NULL, *p1 = t1 ? &r1 : NULL;
    const uint8_t *i0 = i[0], *i1 = i[1], *i2 = i[2], *i3 = i[3];
    uint8_t *o0 = o[0], *o1 = o[1], *o2 = o[2], *o3 = o[3];
    for (size_t c = 0; c < bytes; c += 64) {
        __m512i a = ZLD(i0 + c), b = ZLD(i1 + c), d = ZLD(i2 + c), e = ZLD(i3 + c);
        z_bfly_ifft(&a, &b, p0);
        z_bfly_ifft(&d, &e, p1);
        z_bfly_ifft(&a, &d, p01);
        z_bfly_ifft(&b, &e, p01);
        if (accumulate) {
            a = _mm512_xor_si512(a, ZLD(o0 + c));
            b = _mm512_xor_si512(b, ZLD(o1 + c));
            d = _mm512_xor_si512(d, ZLD(o2 + c));
            e = _mm512_xor_si512(e, ZLD(o3 + c));
        }
        ZST(o0 + c, a);
        ZST(o1 + c, b);
        ZST(o2 + c, d);
        ZST(o3 + c, e);
    }
}

static const rs16_kernels k_gfni512 = {
    .name = "gfni-avx512", .xor_into = z_xor, .xor_many = z_xor_many, .mul = z_mul_k, .muladd = z_muladd,
    .fft = z_fft, .ifft = z_ifft, .fft4 = z_fft4, .ifft4 = z_ifft4,
};

const rs16_kernels *rs16_kernels_gfni512(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("gfni")
               ? &k_gfni512
               : NULL;
}
