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

void rs16_ifft(const rs16_kernels *k, uint8_t *const *out, const uint8_t *const *in, uint32_t n, uint32_t beta,
               uint32_t count, size_t bytes) {
    if (count == 0) {
        for (uint32_t j = 0; j < n; j++) memset(out[j], 0, bytes);
        return;
    }
    if (n == 1) {
        if (out[0] != in[0]) memcpy(out[0], in[0], bytes);
        return;
    }
    uint32_t cnt = count;
    for (unsigned l = 0; (1u << l) < n; l++) {
        const uint32_t s = 1u << l;
        const uint8_t *const *src = l == 0 ? in : (const uint8_t *const *)out;
        for (uint32_t r = 0; r < cnt; r += 2 * s) {
            const rs16_mt *t = twiddle(beta + r, l);
            const int bzero = r + s >= cnt;
            for (uint32_t j = r; j < r + s; j++)
                k->ifft(out[j], out[j + s], src[j], bzero ? NULL : src[j + s], t, bytes);
        }
        cnt = (cnt + 2 * s - 1) & ~(2 * s - 1);
    }
}

void rs16_fft(const rs16_kernels *k, uint8_t *const *x, uint32_t n, uint32_t beta, const uint32_t *need_prefix,
              size_t bytes) {
    if (n < 2) return;
    unsigned top = (unsigned)__builtin_ctz(n) - 1;
    for (int l = (int)top; l >= 0; l--) {
        const uint32_t s = 1u << l;
        for (uint32_t r = 0; r < n; r += 2 * s) {
            int na = 1, nb = 1;
            if (need_prefix) {
                na = need_prefix[r + s] > need_prefix[r];
                nb = need_prefix[r + 2 * s] > need_prefix[r + s];
                if (!na && !nb) continue;
            }
            const rs16_mt *t = twiddle(beta + r, (unsigned)l);
            for (uint32_t j = r; j < r + s; j++) {
                if (nb)
                    k->fft(x[j], x[j + s], t, bytes);
                else
                    k->muladd(x[j], x[j + s], t, bytes);
            }
        }
    }
}

void rs16_derivative(const rs16_kernels *k, uint8_t *const *x, uint32_t n, size_t bytes) {
    for (uint32_t i = 1; i < n; i++) {
        const uint32_t w = i & (0u - i);
        for (uint32_t t = 0; t < w; t++) k->xor_into(x[i - w + t], x[i + t], bytes);
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
