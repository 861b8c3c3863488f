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

/* Scalar helpers shared by every kernel (tails, inversion). */
void rs8_region_muladd_scalar(uint8_t *dst, const uint8_t *src, uint8_t c, size_t n); /* dst ^= c * src */
void rs8_region_mul_scalar(uint8_t *dst, uint8_t c, size_t n);                        /* dst = c * dst */
/* out[r][from..len) for every row, from the coefficient matrix (used for SIMD tails). */
void rs8_apply_scalar_range(size_t from, size_t len, uint32_t nsrc, uint32_t nout, const uint8_t *coefs,
                            const uint8_t *const *src, uint8_t *const *out);

typedef struct rs8_kernel {
    uint32_t id;       /* neuron_rs8_kernel */
    size_t coef_bytes; /* table bytes per coefficient */
    /* tables <- M (rows x cols). */
    void (*prepare)(const uint8_t *coefs, uint32_t rows, uint32_t cols, uint8_t *tables);
    /* out[r] = sum M[r][c] * src[c]; `coefs` is M itself (for tails). out never aliases src. */
    void (*apply)(size_t len, uint32_t nsrc, uint32_t nout, const uint8_t *tables, const uint8_t *coefs,
                  const uint8_t *const *src, uint8_t *const *out);
    /* dst ^= c * src and dst = c * dst over n bytes (matrix inversion rows). */
    void (*muladd)(uint8_t *dst, const uint8_t *src, uint8_t c, size_t n);
    void (*mul)(uint8_t *dst, uint8_t c, size_t n);
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
