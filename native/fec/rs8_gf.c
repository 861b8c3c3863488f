/* GF(2^8) field tables (polynomial 0x11D, generator 2) and the portable kernel. */
#include "rs8_internal.h"

#include <pthread.h>
#include <string.h>

uint8_t rs8_exp[512];
uint8_t rs8_log[256];
uint8_t rs8_inv[256];
uint8_t rs8_mul[256][256];
uint64_t rs8_affine[256];
uint8_t rs8_nibble[256][32];

static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static void tables_build(void) {
    unsigned x = 1;
    for (unsigned i = 0; i < 255; i++) {
        rs8_exp[i] = (uint8_t)x;
        rs8_exp[i + 255] = (uint8_t)x;
        rs8_log[x] = (uint8_t)i;
        x <<= 1;
        if (x & 0x100) x ^= 0x11D;
    }
    rs8_exp[510] = rs8_exp[0];
    rs8_exp[511] = rs8_exp[1];
    rs8_log[0] = 0;
    rs8_inv[0] = 0;
    for (unsigned a = 1; a < 256; a++) rs8_inv[a] = rs8_exp[255 - rs8_log[a]];
    for (unsigned a = 0; a < 256; a++)
        for (unsigned b = 0; b < 256; b++)
            rs8_mul[a][b] = (a && b) ? rs8_exp[rs8_log[a] + rs8_log[b]] : 0;
    for (unsigned c = 0; c < 256; c++) {
        /* Multiplying by c is linear over GF(2): column j of its bit matrix is c * x^j.
         * GF2P8AFFINEQB computes result bit i from matrix byte (7 - i): row i, bit j. */
        uint64_t m = 0;
        for (unsigned i = 0; i < 8; i++) {
            unsigned row = 0;
            for (unsigned j = 0; j < 8; j++) row |= ((rs8_mul[c][1u << j] >> i) & 1u) << j;
            m |= (uint64_t)row << (8 * (7 - i));
        }
        rs8_affine[c] = m;
        for (unsigned n = 0; n < 16; n++) {
            rs8_nibble[c][n] = rs8_mul[c][n];
            rs8_nibble[c][16 + n] = rs8_mul[c][n << 4];
        }
    }
}

void rs8_tables_init(void) { pthread_once(&tables_once, tables_build); }

uint8_t neuron_rs8_gf_mul(uint8_t a, uint8_t b) {
    rs8_tables_init();
    return rs8_mul[a][b];
}

uint8_t neuron_rs8_gf_inv(uint8_t a) {
    rs8_tables_init();
    return rs8_inv[a];
}

void rs8_region_muladd_scalar(uint8_t *dst, const uint8_t *src, uint8_t c, size_t n) {
    if (c == 0) return;
    const uint8_t *t = rs8_mul[c];
    for (size_t i = 0; i < n; i++) dst[i] ^= t[src[i]];
}

void rs8_region_mul_scalar(uint8_t *dst, uint8_t c, size_t n) {
    const uint8_t *t = rs8_mul[c];
    for (size_t i = 0; i < n; i++) dst[i] = t[dst[i]];
}

void rs8_apply_scalar_range(size_t from, size_t len, uint32_t nsrc, uint32_t nout, const uint8_t *coefs,
                            const uint8_t *const *src, uint8_t *const *out) {
    if (from >= len) return;
    for (uint32_t r = 0; r < nout; r++) {
        uint8_t *o = out[r] + from;
        const size_t n = len - from;
        const uint8_t *t = rs8_mul[coefs[(size_t)r * nsrc]];
        const uint8_t *s0 = src[0] + from;
        for (size_t i = 0; i < n; i++) o[i] = t[s0[i]];
        for (uint32_t c = 1; c < nsrc; c++) rs8_region_muladd_scalar(o, src[c] + from, coefs[(size_t)r * nsrc + c], n);
    }
}

void rs8_apply_tail32(size_t done, size_t len, uint32_t nsrc, uint32_t nout, const uint8_t *tables,
                      const uint8_t *coefs, const uint8_t *const *src, uint8_t *const *out, rs8_apply_fn apply) {
    if (done >= len) return;
    const size_t rem = len - done; /* < 32 */
    _Alignas(32) uint8_t in[NEURON_RS8_MAX_SHARDS][32];
    _Alignas(32) uint8_t res[NEURON_RS8_MAX_SHARDS][32];
    const uint8_t *ip[NEURON_RS8_MAX_SHARDS];
    uint8_t *op[NEURON_RS8_MAX_SHARDS];
    ip[0] = in[0];
    op[0] = res[0];
    for (uint32_t s = 0; s < nsrc; s++) {
        memset(in[s] + rem, 0, 32 - rem);
        memcpy(in[s], src[s] + done, rem);
        ip[s] = in[s];
    }
    for (uint32_t r = 0; r < nout; r++) op[r] = res[r];
    apply(32, nsrc, nout, tables, coefs, ip, op);
    for (uint32_t r = 0; r < nout; r++) memcpy(out[r] + done, res[r], rem);
}

/* ---- portable kernel: reads the coefficients, 64 KiB multiplication table ---- */

static void portable_apply(size_t len, uint32_t nsrc, uint32_t nout, const uint8_t *tables, const uint8_t *coefs,
                           const uint8_t *const *src, uint8_t *const *out) {
    (void)tables;
    rs8_apply_scalar_range(0, len, nsrc, nout, coefs, src, out);
}

static int portable_invert(uint8_t *a, size_t stride, uint32_t n) {
    return rs8_gauss_jordan(a, stride, n, rs8_region_muladd_scalar, rs8_region_mul_scalar);
}

static const rs8_kernel portable = {
    .id = NEURON_RS8_KERNEL_PORTABLE,
    .coef_bytes = 0,
    .prepare = NULL,
    .apply = portable_apply,
    .invert = portable_invert,
};

const rs8_kernel *rs8_kernel_portable(void) { return &portable; }
