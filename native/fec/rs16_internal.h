/*
 * rs16_internal.h — internals of the GF(2^16) Reed–Solomon codec (not part of the ABI).
 *
 * Field: GF(2^16) = GF(2)[x] / (x^16 + x^5 + x^3 + x^2 + 1) (0x1002D, primitive). Elements are
 * stored in the coordinates of a Cantor basis v_0..v_15 (v_0 = 1, v_i^2 + v_i = v_{i-1}): the
 * 16-bit value u stands for XOR of v_b over the set bits b of u. In these coordinates the
 * subspace vanishing polynomials of the additive FFT are s_l(u) = u >> l, their normalisers are
 * 1 and their formal derivatives are 1, so the FFT twiddles cost nothing to compute and the
 * formal derivative in the novel basis is XOR-only. Addition is XOR in any coordinates;
 * multiplication goes through the log/exp tables below, built for these coordinates.
 */
#ifndef NEURON_RS16_INTERNAL_H
#define NEURON_RS16_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#define RS16_ORDER 65536u   /* field size */
#define RS16_MODULUS 65535u /* multiplicative group order; logs live in [0, 65534] */

/*
 * Multiplication by one constant c as four 4-bit table lookups: for a symbol
 * x = n0 | n1 << 4 | n2 << 8 | n3 << 12,
 *   c·x = XOR over j of (lo[j][nj] | hi[j][nj] << 8).
 * One per log value (rs16_mul_table()).
 */
typedef struct rs16_mt {
    uint8_t lo[4][16];
    uint8_t hi[4][16];
    /* The same map as four GF2P8AFFINEQB bit matrices (byte 7 - i = row of output bit i):
     * low<-low, low<-high, high<-low, high<-high; c·x = (A0·xl ^ A1·xh) | (A2·xl ^ A3·xh) << 8. */
    uint64_t aff[4];
    /* log of the constant itself (portable kernels: c·x = exp[log c + log x]) */
    uint32_t log;
} rs16_mt;

/* Builds the tables once per process (thread-safe). Returns 0 or a negative neuron_status. */
int rs16_field_init(void);

/* log of a nonzero element (in [0, 65534]); rs16_log_of(0) is 0 by convention (see the FWHT). */
uint16_t rs16_log_of(uint16_t a);
/* exp of a log value e in [0, 65535] (e = 65535 ≡ 0). */
uint16_t rs16_exp_of(uint32_t e);
/* Field product (scalar, for tests and table building). */
uint16_t rs16_mul(uint16_t a, uint16_t b);
/* exp over [0, 2·65535): exp2[a + b] for two logs without a modulo (portable kernels). */
extern const uint16_t *const rs16_exp2;
/* log table (log[0] = 0; callers test x == 0 themselves). */
extern const uint16_t *const rs16_logt;

/* The lookup tables of the constant whose log is `log` (< 65535). */
const rs16_mt *rs16_mul_table(uint32_t log);

/*
 * Kernels over one shard of `bytes` bytes (a multiple of 64). A shard is a sequence of 64-byte
 * chunks; chunk c holds 32 symbols: byte j (j < 32) is the low byte of symbol j and byte 32 + j
 * its high byte. A table pointer of NULL stands for the constant 0.
 */
typedef struct rs16_kernels {
    const char *name;
    /* dst ^= src */
    void (*xor_into)(uint8_t *dst, const uint8_t *src, size_t bytes);
    /* dst ^= src[0] ^ ... ^ src[n-1] (one pass over dst) */
    void (*xor_many)(uint8_t *dst, const uint8_t *const *src, unsigned n, size_t bytes);
    /* dst = c·src */
    void (*mul)(uint8_t *dst, const uint8_t *src, const rs16_mt *t, size_t bytes);
    /* dst ^= c·src */
    void (*muladd)(uint8_t *dst, const uint8_t *src, const rs16_mt *t, size_t bytes);
    /* FFT butterfly, in place: a ^= c·b; b ^= a */
    void (*fft)(uint8_t *a, uint8_t *b, const rs16_mt *t, size_t bytes);
    /* inverse FFT butterfly, out of place allowed (oa may equal ia, ob may equal ib):
     * ob = ia ^ ib; oa = ia ^ c·ob. ib == NULL stands for a zero shard. */
    void (*ifft)(uint8_t *oa, uint8_t *ob, const uint8_t *ia, const uint8_t *ib, const rs16_mt *t, size_t bytes);
    /* Two FFT layers over four shards, in place: (x0,x2) and (x1,x3) with t01, then (x0,x1)
     * with t0 and (x2,x3) with t1. */
    void (*fft4)(uint8_t *x0, uint8_t *x1, uint8_t *x2, uint8_t *x3, const rs16_mt *t01, const rs16_mt *t0,
                 const rs16_mt *t1, size_t bytes);
    /* The inverse: (i0,i1) with t0 and (i2,i3) with t1, then (0,2) and (1,3) with t01; the
     * result is stored in o[0..3] (o may equal i), or XORed into o when `accumulate` is set —
     * then the inputs are scratch and may be overwritten. */
    void (*ifft4)(uint8_t *const *o, const uint8_t *const *i, const rs16_mt *t01, const rs16_mt *t0,
                  const rs16_mt *t1, int accumulate, size_t bytes);
} rs16_kernels;

extern const rs16_kernels rs16_kernels_portable;
/* NULL when the CPU lacks AVX2. */
const rs16_kernels *rs16_kernels_avx2(void);
/* NULL when the CPU lacks AVX2 or GFNI. */
const rs16_kernels *rs16_kernels_gfni(void);
/* NULL when the CPU lacks AVX-512F/BW or GFNI (rs16_kernels_avx512.c). */
const rs16_kernels *rs16_kernels_gfni512(void);
/* The fastest kernels this CPU runs. */
const rs16_kernels *rs16_kernels_best(void);

/* Test hook: makes a codec run the given kernels (portable vs SIMD agreement tests). */
struct neuron_rs16;
void rs16_codec_use_kernels(struct neuron_rs16 *c, const rs16_kernels *k);

#endif /* NEURON_RS16_INTERNAL_H */

/* ---------- transforms (rs16_fft.c) ---------- */

/*
 * Inverse additive FFT of size n (a power of two) over the points beta + u, u < n (beta a
 * multiple of n): values in, novel-basis coefficients out. in[0..count) are the inputs (in[j]
 * for j >= count are zero and never read); out[0..n) receive the result (out may equal in).
 * With acc non-NULL the result is XORed into acc[0..n) instead (out is then scratch).
 */
void rs16_ifft(const rs16_kernels *k, uint8_t *const *out, const uint8_t *const *in, uint32_t n, uint32_t beta,
               uint32_t count, uint8_t *const *acc, size_t bytes);

/*
 * Additive FFT of size n in place over the points beta + u. Only outputs whose positions have
 * need_prefix[p + 1] > need_prefix[p] are guaranteed; need_prefix (n + 1 entries, running
 * count of needed positions) may be NULL for "all".
 */
void rs16_fft(const rs16_kernels *k, uint8_t *const *x, uint32_t n, uint32_t beta, const uint32_t *need_prefix,
              size_t bytes);

/* Formal derivative of a novel-basis polynomial of n coefficients, in place (XOR only). */
void rs16_derivative(const rs16_kernels *k, uint8_t *const *x, uint32_t n, size_t bytes);

/* Walsh–Hadamard transform of n values modulo 65535, in place (values in [0, 65535]). */
void rs16_fwht(uint32_t *x, uint32_t n);
