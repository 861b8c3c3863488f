/*
 * rs16_fft.c — the Lin–Chung–Han additive FFT over the novel polynomial basis, its inverse, the
 * formal derivative, and the Walsh–Hadamard transform used for error locators.
 *
 * With elements in Cantor coordinates (rs16_internal.h), the normalised subspace polynomial
 * of layer l is s_l(u) = u >> l. A polynomial of 2^(l+1) coefficients splits as
 * D = D0 + s_l·D1; on the coset r + W_{l+1} (r a multiple of 2^(l+1)) s_l takes the value
 * c = r >> l on the first half and c ^ 1 on the second, hence the butterflies
 *   FFT:  a ^= c·b; b ^= a        IFFT: b ^= a; a ^= c·b.
 */
#include "rs16_internal.h"

#include <string.h>

static const rs16_mt *twiddle(uint32_t point, unsigned layer) {
    uint32_t c = point >> layer;
    return c ? rs16_mul_table(rs16_log_of((uint16_t)c)) : NULL;
}

/*
 * Both transforms recurse depth first (halves before/after the layer that joins them), so once
 * a sub-transform's shards fit in cache all its remaining layers run there.
 */
static void ifft_rec(const rs16_kernels *k, uint8_t *const *out, const uint8_t *const *in, uint32_t n, uint32_t beta,
                     uint32_t count, uint8_t *const *acc, size_t bytes) {
    const uint32_t h = n / 2, q = n / 4;
    if (n == 2) { /* never with acc (rs16_ifft) */
        k->ifft(out[0], out[1], in[0], count > 1 ? in[1] : NULL, twiddle(beta, 0), bytes);
        return;
    }
    if (count > 3 * q && (n >= 8 || !acc)) {
        /* every quarter holds data: quarters first, then both joining layers fused */
        if (n >= 8)
            for (uint32_t i = 0; i < 4; i++)
                ifft_rec(k, out + i * q, in + i * q, q, beta + i * q, count - i * q < q ? count - i * q : q, NULL,
                         bytes);
        const uint8_t *const *src = n >= 8 ? (const uint8_t *const *)out : in;
        uint8_t *const *dst = acc ? acc : out;
        const unsigned lq = (unsigned)__builtin_ctz(q);
        const rs16_mt *t01 = twiddle(beta, lq + 1), *t0 = twiddle(beta, lq), *t1 = twiddle(beta + h, lq);
        for (uint32_t j = 0; j < q; j++) {
            uint8_t *o[4] = {dst[j], dst[j + q], dst[j + h], dst[j + h + q]};
            const uint8_t *i[4] = {src[j], src[j + q], src[j + h], src[j + h + q]};
            k->ifft4(o, i, t01, t0, t1, acc != NULL, bytes);
        }
        return;
    }
    ifft_rec(k, out, in, h, beta, count < h ? count : h, NULL, bytes);
    if (count > h) ifft_rec(k, out + h, in + h, h, beta + h, count - h, NULL, bytes);
    const rs16_mt *t = twiddle(beta, (unsigned)__builtin_ctz(h));
    const int bzero = count <= h;
    for (uint32_t j = 0; j < h; j++) k->ifft(out[j], out[j + h], out[j], bzero ? NULL : out[j + h], t, bytes);
}

void rs16_ifft(const rs16_kernels *k, uint8_t *const *out, const uint8_t *const *in, uint32_t n, uint32_t beta,
               uint32_t count, uint8_t *const *acc, size_t bytes) {
    if (acc && !(n >= 8 && count > 3 * (n / 4))) {
        /* the fused accumulate needs a full top step: transform, then add */
        rs16_ifft(k, out, in, n, beta, count, NULL, bytes);
        for (uint32_t j = 0; j < n; j++) k->xor_into(acc[j], out[j], bytes);
        return;
    }
    if (count == 0) {
        for (uint32_t j = 0; j < n; j++) memset(out[j], 0, bytes);
        return;
    }
    if (n == 1) {
        if (out[0] != in[0]) memcpy(out[0], in[0], bytes);
        return;
    }
    ifft_rec(k, out, in, n, beta, count < n ? count : n, acc, bytes);
}

static void fft_rec(const rs16_kernels *k, uint8_t *const *x, uint32_t n, uint32_t beta, const uint32_t *need,
                    size_t bytes) {
    const uint32_t h = n / 2;
    int na = 1, nb = 1;
    if (need) {
        na = need[h] > need[0];
        nb = need[n] > need[h];
        if (!na && !nb) return;
    }
    if (na && nb && n >= 4) {
        /* both halves wanted: the top two layers fused, then the four quarters */
        const uint32_t q = n / 4;
        const unsigned lq = (unsigned)__builtin_ctz(q);
        const rs16_mt *t01 = twiddle(beta, lq + 1), *t0 = twiddle(beta, lq), *t1 = twiddle(beta + h, lq);
        for (uint32_t j = 0; j < q; j++) k->fft4(x[j], x[j + q], x[j + h], x[j + h + q], t01, t0, t1, bytes);
        if (q == 1) return;
        for (uint32_t i = 0; i < 4; i++) fft_rec(k, x + i * q, q, beta + i * q, need ? need + i * q : NULL, bytes);
        return;
    }
    const rs16_mt *t = twiddle(beta, (unsigned)__builtin_ctz(h));
    for (uint32_t j = 0; j < h; j++) {
        if (nb)
            k->fft(x[j], x[j + h], t, bytes);
        else
            k->muladd(x[j], x[j + h], t, bytes);
    }
    if (h == 1) return;
    if (na) fft_rec(k, x, h, beta, need, bytes);
    if (nb) fft_rec(k, x + h, h, beta + h, need ? need + h : NULL, bytes);
}

void rs16_fft(const rs16_kernels *k, uint8_t *const *x, uint32_t n, uint32_t beta, const uint32_t *need_prefix,
              size_t bytes) {
    if (n < 2) return;
    fft_rec(k, x, n, beta, need_prefix, bytes);
}

/*
 * With X_j = prod over the bits b of j of s_b and s_b' = 1 (Cantor basis), X_j' = sum over the
 * bits b of j of X_(j - 2^b), so the coefficient q of D' is the XOR of d[q | 2^b] over the bits
 * b clear in q. This computes D + D' (keeping d[q] — harmless: the decoder only evaluates it
 * where D vanishes). In place in increasing q: every source index is above q, still original.
 * One multi-source XOR per coefficient instead of a read-modify-write per term.
 */
void rs16_derivative(const rs16_kernels *k, uint8_t *const *x, uint32_t n, size_t bytes) {
    const unsigned t = (unsigned)__builtin_ctz(n);
    const uint8_t *src[16];
    for (uint32_t q = 0; q + 1 < n; q++) {
        unsigned cnt = 0;
        for (unsigned b = 0; b < t; b++)
            if (!(q >> b & 1u)) src[cnt++] = x[q | 1u << b];
        k->xor_many(x[q], src, cnt, bytes);
    }
}

static inline uint32_t fold(uint32_t v) { return (v & 0xffffu) + (v >> 16); }

void rs16_fwht(uint32_t *x, uint32_t n) {
    for (uint32_t s = 1; s < n; s <<= 1) {
        for (uint32_t r = 0; r < n; r += 2 * s) {
            for (uint32_t j = r; j < r + s; j++) {
                uint32_t a = x[j], b = x[j + s];
                x[j] = fold(a + b);
                x[j + s] = fold(a + (RS16_MODULUS - b));
            }
        }
    }
}
