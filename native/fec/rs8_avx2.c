/*
 * AVX2 kernel: split-nibble multiplication. c * x = T_lo[x & 15] ^ T_hi[x >> 4], each 16-entry
 * table looked up 32 bytes at a time with VPSHUFB (rs8_nibble[c], 32 bytes per coefficient).
 *
 * Table layout: rows in groups of up to GROUP; inside a group, for each source s, the GROUP
 * 32-byte tables of (row, s) follow each other.
 */
#include "rs8_internal.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#include <string.h>

#define GROUP 4
#define TGT __attribute__((target("avx2")))
#define INLINE static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 8")
#define LOAD(p) _mm256_loadu_si256((const __m256i *)(const void *)(p))
#define STORE(p, v) _mm256_storeu_si256((__m256i *)(void *)(p), (v))
#define BCAST(p) _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)(p)))

static void prepare(const uint8_t *coefs, uint32_t rows, uint32_t cols, uint8_t *tables) {
    uint8_t *t = tables;
    for (uint32_t r0 = 0; r0 < rows; r0 += GROUP) {
        uint32_t g_n = rows - r0 < GROUP ? rows - r0 : GROUP;
        for (uint32_t s = 0; s < cols; s++)
            for (uint32_t g = 0; g < g_n; g++, t += 32) memcpy(t, rs8_nibble[coefs[(size_t)(r0 + g) * cols + s]], 32);
    }
}

/* acc ^= c * x where (tl, th) are c's nibble tables. */
INLINE TGT __m256i madd(__m256i acc, __m256i lo, __m256i hi, const uint8_t *tab) {
    const __m256i pl = _mm256_shuffle_epi8(BCAST(tab), lo);
    const __m256i ph = _mm256_shuffle_epi8(BCAST(tab + 16), hi);
    return _mm256_xor_si256(acc, _mm256_xor_si256(pl, ph));
}

INLINE TGT size_t group(size_t len, uint32_t nsrc, const uint8_t *t, const uint8_t *const *src, uint8_t *const *out,
                        const uint32_t G) {
    const __m256i mask = _mm256_set1_epi8(0x0f);
    size_t off = 0;
    for (; off + 64 <= len; off += 64) {
        __m256i a0[GROUP], a1[GROUP];
        UNROLL
        for (uint32_t g = 0; g < G; g++) a0[g] = a1[g] = _mm256_setzero_si256();
        for (uint32_t s = 0; s < nsrc; s++) {
            const __m256i x0 = LOAD(src[s] + off), x1 = LOAD(src[s] + off + 32);
            const __m256i l0 = _mm256_and_si256(x0, mask), h0 = _mm256_and_si256(_mm256_srli_epi16(x0, 4), mask);
            const __m256i l1 = _mm256_and_si256(x1, mask), h1 = _mm256_and_si256(_mm256_srli_epi16(x1, 4), mask);
            const uint8_t *ts = t + (size_t)s * G * 32;
            UNROLL
            for (uint32_t g = 0; g < G; g++) {
                a0[g] = madd(a0[g], l0, h0, ts + 32 * g);
                a1[g] = madd(a1[g], l1, h1, ts + 32 * g);
            }
        }
        UNROLL
        for (uint32_t g = 0; g < G; g++) {
            STORE(out[g] + off, a0[g]);
            STORE(out[g] + off + 32, a1[g]);
        }
    }
    if (off + 32 <= len) {
        __m256i a0[GROUP];
        UNROLL
        for (uint32_t g = 0; g < G; g++) a0[g] = _mm256_setzero_si256();
        for (uint32_t s = 0; s < nsrc; s++) {
            const __m256i x0 = LOAD(src[s] + off);
            const __m256i l0 = _mm256_and_si256(x0, mask), h0 = _mm256_and_si256(_mm256_srli_epi16(x0, 4), mask);
            const uint8_t *ts = t + (size_t)s * G * 32;
            UNROLL
            for (uint32_t g = 0; g < G; g++) a0[g] = madd(a0[g], l0, h0, ts + 32 * g);
        }
        UNROLL
        for (uint32_t g = 0; g < G; g++) STORE(out[g] + off, a0[g]);
        off += 32;
    }
    return off;
}

#define GROUP_CASE(n)                                              \
    case n: done = group(len, nsrc, t, src, out + r0, n); break;

static TGT void apply(size_t len, uint32_t nsrc, uint32_t nout, const uint8_t *tables, const uint8_t *coefs,
                      const uint8_t *const *src, uint8_t *const *out) {
    const uint8_t *t = tables;
    size_t done = 0;
    for (uint32_t r0 = 0; r0 < nout; r0 += GROUP, t += (size_t)GROUP * nsrc * 32) {
        switch (nout - r0 < GROUP ? nout - r0 : GROUP) {
            GROUP_CASE(1)
            GROUP_CASE(2)
            GROUP_CASE(3)
            GROUP_CASE(4)
        }
    }
    rs8_apply_tail32(done, len, nsrc, nout, tables, coefs, src, out, apply);
}

INLINE TGT void muladd(uint8_t *dst, const uint8_t *src, uint8_t c, size_t n) {
    const __m256i mask = _mm256_set1_epi8(0x0f);
    const uint8_t *tab = rs8_nibble[c];
    size_t off = 0;
    for (; off + 32 <= n; off += 32) {
        const __m256i x = LOAD(src + off);
        const __m256i lo = _mm256_and_si256(x, mask), hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), mask);
        STORE(dst + off, madd(LOAD(dst + off), lo, hi, tab));
    }
    rs8_region_muladd_scalar(dst + off, src + off, c, n - off);
}

INLINE TGT void mul(uint8_t *dst, uint8_t c, size_t n) {
    const __m256i mask = _mm256_set1_epi8(0x0f);
    const uint8_t *tab = rs8_nibble[c];
    size_t off = 0;
    for (; off + 32 <= n; off += 32) {
        const __m256i x = LOAD(dst + off);
        const __m256i lo = _mm256_and_si256(x, mask), hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), mask);
        STORE(dst + off, madd(_mm256_setzero_si256(), lo, hi, tab));
    }
    rs8_region_mul_scalar(dst + off, c, n - off);
}

static TGT int invert(uint8_t *a, size_t stride, uint32_t n) { return rs8_gauss_jordan(a, stride, n, muladd, mul); }

static const rs8_kernel avx2 = {
    .id = NEURON_RS8_KERNEL_AVX2,
    .coef_bytes = 32,
    .prepare = prepare,
    .apply = apply,
    .invert = invert,
};

const rs8_kernel *rs8_kernel_avx2(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") ? &avx2 : NULL;
}

#else /* not x86: the portable kernel serves */

const rs8_kernel *rs8_kernel_avx2(void) { return NULL; }

#endif
