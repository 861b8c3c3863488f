/*
 * GFNI kernels: multiplying by a constant c is a linear map over GF(2)^8, so one
 * GF2P8AFFINEQB with c's 8x8 bit matrix (rs8_affine[c], 8 bytes) multiplies 32 or 64 bytes at
 * once, whatever the field polynomial. The kernels read the coefficient matrix and broadcast
 * rs8_affine[coefficient] from the 2 KiB table directly (measured as fast as a pre-laid-out
 * table, and it saves decode a table-preparation pass). Accumulation uses three-way XOR
 * (VPTERNLOGQ) on AVX-512.
 *
 * Work order: outputs in groups of up to GROUP rows kept in registers; for each 64-byte column
 * step, every source is loaded once per group.
 */
#include "rs8_internal.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define GROUP512 8
#define GROUP256 4

#define TGT512 __attribute__((target("avx512f,avx512bw,gfni")))
#define TGT256 __attribute__((target("avx2,gfni")))
#define INLINE static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 8")

/* ---- 512-bit ---- */

#define MAT512(c) _mm512_set1_epi64((long long)rs8_affine[(c)])
#define MUL512(x, c) _mm512_gf2p8affine_epi64_epi8((x), MAT512(c), 0)

static inline __mmask64 tail_mask(size_t rem) {
    return rem >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << rem) - 1);
}

/* One group of G rows (coefficients cf, row stride nsrc) over [0, len); the last step masked. */
INLINE TGT512 void group512(size_t len, uint32_t nsrc, const uint8_t *cf, const uint8_t *const *src,
                            uint8_t *const *out, const uint32_t G) {
    for (size_t off = 0; off < len; off += 64) {
        const __mmask64 mask = tail_mask(len - off);
        __m512i acc[GROUP512];
        const __m512i x = _mm512_maskz_loadu_epi8(mask, src[0] + off);
        UNROLL
        for (uint32_t g = 0; g < G; g++) acc[g] = MUL512(x, cf[g * nsrc]);
        uint32_t s = 1;
        for (; s + 1 < nsrc; s += 2) {
            const __m512i a = _mm512_maskz_loadu_epi8(mask, src[s] + off);
            const __m512i b = _mm512_maskz_loadu_epi8(mask, src[s + 1] + off);
            UNROLL
            for (uint32_t g = 0; g < G; g++)
                acc[g] = _mm512_ternarylogic_epi64(acc[g], MUL512(a, cf[g * nsrc + s]), MUL512(b, cf[g * nsrc + s + 1]),
                                                   0x96);
        }
        if (s < nsrc) {
            const __m512i a = _mm512_maskz_loadu_epi8(mask, src[s] + off);
            UNROLL
            for (uint32_t g = 0; g < G; g++) acc[g] = _mm512_xor_si512(acc[g], MUL512(a, cf[g * nsrc + s]));
        }
        UNROLL
        for (uint32_t g = 0; g < G; g++) _mm512_mask_storeu_epi8(out[g] + off, mask, acc[g]);
    }
}

#define GROUP512_CASE(n)                                                       \
    case n: group512(len, nsrc, coefs + (size_t)r0 * nsrc, src, out + r0, n); break;

static TGT512 void apply512(size_t len, uint32_t nsrc, uint32_t nout, const uint8_t *tables, const uint8_t *coefs,
                            const uint8_t *const *src, uint8_t *const *out) {
    (void)tables;
    for (uint32_t r0 = 0; r0 < nout; r0 += GROUP512) {
        switch (nout - r0 < GROUP512 ? nout - r0 : GROUP512) {
            GROUP512_CASE(1)
            GROUP512_CASE(2)
            GROUP512_CASE(3)
            GROUP512_CASE(4)
            GROUP512_CASE(5)
            GROUP512_CASE(6)
            GROUP512_CASE(7)
            GROUP512_CASE(8)
        }
    }
}

INLINE TGT512 void muladd512(uint8_t *dst, const uint8_t *src, uint8_t c, size_t n) {
    const __m512i m = MAT512(c);
    for (size_t off = 0; off < n; off += 64) {
        const __mmask64 mask = tail_mask(n - off);
        const __m512i x = _mm512_maskz_loadu_epi8(mask, src + off);
        const __m512i d = _mm512_maskz_loadu_epi8(mask, dst + off);
        _mm512_mask_storeu_epi8(dst + off, mask, _mm512_xor_si512(d, _mm512_gf2p8affine_epi64_epi8(x, m, 0)));
    }
}

INLINE TGT512 void mul512(uint8_t *dst, uint8_t c, size_t n) {
    const __m512i m = MAT512(c);
    for (size_t off = 0; off < n; off += 64) {
        const __mmask64 mask = tail_mask(n - off);
        const __m512i d = _mm512_maskz_loadu_epi8(mask, dst + off);
        _mm512_mask_storeu_epi8(dst + off, mask, _mm512_gf2p8affine_epi64_epi8(d, m, 0));
    }
}

static TGT512 int invert512(uint8_t *a, size_t stride, uint32_t n) {
    return rs8_gauss_jordan(a, stride, n, muladd512, mul512);
}

/* ---- 256-bit: 64 bytes per step (two vectors), then one 32-byte step, then scalar ---- */

#define MAT256(c) _mm256_set1_epi64x((long long)rs8_affine[(c)])
#define MUL256(x, m) _mm256_gf2p8affine_epi64_epi8((x), (m), 0)
#define LOAD256(p) _mm256_loadu_si256((const __m256i *)(const void *)(p))
#define STORE256(p, v) _mm256_storeu_si256((__m256i *)(void *)(p), (v))

INLINE TGT256 size_t group256(size_t len, uint32_t nsrc, const uint8_t *cf, const uint8_t *const *src,
                              uint8_t *const *out, const uint32_t G) {
    size_t off = 0;
    for (; off + 64 <= len; off += 64) {
        __m256i lo[GROUP256], hi[GROUP256];
        UNROLL
        for (uint32_t g = 0; g < G; g++) lo[g] = hi[g] = _mm256_setzero_si256();
        for (uint32_t s = 0; s < nsrc; s++) {
            const __m256i a = LOAD256(src[s] + off), b = LOAD256(src[s] + off + 32);
            UNROLL
            for (uint32_t g = 0; g < G; g++) {
                const __m256i m = MAT256(cf[g * nsrc + s]);
                lo[g] = _mm256_xor_si256(lo[g], MUL256(a, m));
                hi[g] = _mm256_xor_si256(hi[g], MUL256(b, m));
            }
        }
        UNROLL
        for (uint32_t g = 0; g < G; g++) {
            STORE256(out[g] + off, lo[g]);
            STORE256(out[g] + off + 32, hi[g]);
        }
    }
    if (off + 32 <= len) {
        __m256i acc[GROUP256];
        UNROLL
        for (uint32_t g = 0; g < G; g++) acc[g] = _mm256_setzero_si256();
        for (uint32_t s = 0; s < nsrc; s++) {
            const __m256i a = LOAD256(src[s] + off);
            UNROLL
            for (uint32_t g = 0; g < G; g++) acc[g] = _mm256_xor_si256(acc[g], MUL256(a, MAT256(cf[g * nsrc + s])));
        }
        UNROLL
        for (uint32_t g = 0; g < G; g++) STORE256(out[g] + off, acc[g]);
        off += 32;
    }
    return off;
}

#define GROUP256_CASE(n)                                                              \
    case n: done = group256(len, nsrc, coefs + (size_t)r0 * nsrc, src, out + r0, n); break;

static TGT256 void apply256(size_t len, uint32_t nsrc, uint32_t nout, const uint8_t *tables, const uint8_t *coefs,
                            const uint8_t *const *src, uint8_t *const *out) {
    (void)tables;
    size_t done = 0;
    for (uint32_t r0 = 0; r0 < nout; r0 += GROUP256) {
        switch (nout - r0 < GROUP256 ? nout - r0 : GROUP256) {
            GROUP256_CASE(1)
            GROUP256_CASE(2)
            GROUP256_CASE(3)
            GROUP256_CASE(4)
        }
    }
    rs8_apply_tail32(done, len, nsrc, nout, tables, coefs, src, out, apply256);
}

INLINE TGT256 void muladd256(uint8_t *dst, const uint8_t *src, uint8_t c, size_t n) {
    const __m256i m = MAT256(c);
    size_t off = 0;
    for (; off + 32 <= n; off += 32) STORE256(dst + off, _mm256_xor_si256(LOAD256(dst + off), MUL256(LOAD256(src + off), m)));
    rs8_region_muladd_scalar(dst + off, src + off, c, n - off);
}

INLINE TGT256 void mul256(uint8_t *dst, uint8_t c, size_t n) {
    const __m256i m = MAT256(c);
    size_t off = 0;
    for (; off + 32 <= n; off += 32) STORE256(dst + off, MUL256(LOAD256(dst + off), m));
    rs8_region_mul_scalar(dst + off, c, n - off);
}

static TGT256 int invert256(uint8_t *a, size_t stride, uint32_t n) {
    return rs8_gauss_jordan(a, stride, n, muladd256, mul256);
}

static const rs8_kernel gfni512 = {
    .id = NEURON_RS8_KERNEL_GFNI_AVX512,
    .coef_bytes = 0,
    .prepare = NULL,
    .apply = apply512,
    .invert = invert512,
};

static const rs8_kernel gfni256 = {
    .id = NEURON_RS8_KERNEL_GFNI_AVX2,
    .coef_bytes = 0,
    .prepare = NULL,
    .apply = apply256,
    .invert = invert256,
};

const rs8_kernel *rs8_kernel_gfni_avx512(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("gfni")
               ? &gfni512
               : NULL;
}

const rs8_kernel *rs8_kernel_gfni_avx2(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("gfni") ? &gfni256 : NULL;
}

#else /* not x86: the portable kernel serves */

const rs8_kernel *rs8_kernel_gfni_avx512(void) { return NULL; }
const rs8_kernel *rs8_kernel_gfni_avx2(void) { return NULL; }

#endif
