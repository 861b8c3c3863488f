/*
 * Internals of the GF(2^8) Reed–Solomon codec (rs8*.c): field tables and the kernel ops table.
 *
 * A kernel computes, for a coefficient matrix M (rows x cols, row-major):
 *     out[r] = XOR over c of M[r][c] * src[c]          for r < rows, over `len` bytes
 * from "tables" it prepared from M once (its own layout, coef_bytes per coefficient).
 */
#ifndef NEURON_RS8_INTERNAL_H
#define NEURON_RS8_INTERNAL_H

#include "../fec.h"

#include <stdint.h>
#include <stddef.h>

/* Field tables, filled once by rs8_tables_init() (idempotent, thread-safe), constant afterwards. */
extern uint8_t rs8_exp[512];         /* exp[i] = 2^i, doubled so exp[log a + log b] needs no mod */
extern uint8_t rs8_log[256];         /* log[0] unused */
extern uint8_t rs8_inv[256];         /* inv[0] = 0 */
extern uint8_t rs8_mul[256][256];    /* mul[a][b] = a * b */
extern uint64_t rs8_affine[256];     /* GF2P8AFFINEQB bit matrix of "multiply by c" */
extern uint8_t rs8_nibble[256][32];  /* c * x for x = 0..15 (bytes 0..15), c * (x << 4) (bytes 16..31) */

void rs8_tables_init(void);

/* Scalar region operations (the portable kernel, short tails of the AVX2 row operations). */
void rs8_region_muladd_scalar(uint8_t *dst, const uint8_t *src, uint8_t c, size_t n); /* dst ^= c * src */
void rs8_region_mul_scalar(uint8_t *dst, uint8_t c, size_t n);                        /* dst = c * dst */
/* out[r][from..len) for every row, straight from the coefficient matrix. */
void rs8_apply_scalar_range(size_t from, size_t len, uint32_t nsrc, uint32_t nout, const uint8_t *coefs,
                            const uint8_t *const *src, uint8_t *const *out);

/*
 * Gauss–Jordan inversion of the n x n matrix in the left half of `a` (n rows of 2n bytes at
 * `stride`, right half = I on entry, = the inverse on return). Returns 0 when singular.
 * `stride` is a multiple of 64 and the bytes of each row past 2n are zero: row operations then
 * run over whole 64-byte spans (no scalar tails; zeros stay zero). Row operations go through
 * the given region ops, which the compiler inlines per kernel.
 */
typedef void (*rs8_muladd_fn)(uint8_t *dst, const uint8_t *src, uint8_t c, size_t n);
typedef void (*rs8_mul_fn)(uint8_t *dst, uint8_t c, size_t n);

static inline __attribute__((always_inline)) int rs8_gauss_jordan(uint8_t *a, size_t stride, uint32_t n,
                                                                  rs8_muladd_fn muladd, rs8_mul_fn mul) {
    const size_t end = (2 * (size_t)n + 63) & ~(size_t)63;
    for (uint32_t col = 0; col < n; col++) {
        uint32_t p = col;
        while (p < n && a[(size_t)p * stride + col] == 0) p++;
        if (p == n) return 0;
        uint8_t *prow = a + (size_t)col * stride;
        if (p != col) {
            uint8_t *q = a + (size_t)p * stride;
            for (size_t i = col; i < end; i++) {
                const uint8_t t = prow[i];
                prow[i] = q[i];
                q[i] = t;
            }
        }
        /* the pivot row is zero before column col: start at the 64-byte span holding col */
        const size_t from = col & ~(size_t)63;
        const uint8_t piv = prow[col];
        if (piv != 1) mul(prow + from, rs8_inv[piv], end - from);
        for (uint32_t r = 0; r < n; r++) {
            uint8_t *row = a + (size_t)r * stride;
            const uint8_t f = row[col];
            if (r != col && f) muladd(row + from, prow + from, f, end - from);
        }
    }
    return 1;
}

typedef void (*rs8_apply_fn)(size_t len, uint32_t nsrc, uint32_t nout, const uint8_t *tables, const uint8_t *coefs,
                             const uint8_t *const *src, uint8_t *const *out);

/*
 * Bytes [done, len) (fewer than 32) through zero-padded 32-byte copies on the stack and one
 * more call of `apply` with len = 32: a vector step instead of a scalar tail.
 */
void rs8_apply_tail32(size_t done, size_t len, uint32_t nsrc, uint32_t nout, const uint8_t *tables,
                      const uint8_t *coefs, const uint8_t *const *src, uint8_t *const *out, rs8_apply_fn apply);

typedef struct rs8_kernel {
    uint32_t id;       /* neuron_rs8_kernel */
    size_t coef_bytes; /* table bytes per coefficient; 0: the kernel reads the coefficients directly */
    /* tables <- M (rows x cols); NULL when coef_bytes is 0. */
    void (*prepare)(const uint8_t *coefs, uint32_t rows, uint32_t cols, uint8_t *tables);
    /* out[r] = sum M[r][c] * src[c]; `coefs` is M itself (for tails). out never aliases src. */
    rs8_apply_fn apply;
    /* rs8_gauss_jordan with this kernel's row operations. */
    int (*invert)(uint8_t *a, size_t stride, uint32_t n);
} rs8_kernel;

/* The kernels; each returns NULL when it cannot run on this CPU / system. */
const rs8_kernel *rs8_kernel_portable(void);
const rs8_kernel *rs8_kernel_avx2(void);
const rs8_kernel *rs8_kernel_gfni_avx2(void);
const rs8_kernel *rs8_kernel_gfni_avx512(void);
const rs8_kernel *rs8_kernel_isal(void);

/* The kernel for an id (AUTO resolved), or NULL when unknown or unavailable. */
const rs8_kernel *rs8_kernel_get(uint32_t id);

#endif /* NEURON_RS8_INTERNAL_H */
