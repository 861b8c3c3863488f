/*
 * GF(2^8) Reed–Solomon codec: Moonlight Cauchy matrix / GameStream audio matrix, systematic
 * encode, erasure decode by inverting only the square submatrix of the lost data columns.
 *
 * Decode with e lost data shards (columns L) and some lost parity shards:
 *   1. pick the first e surviving parity rows R; invert S = C[R][L] (e x e, Gauss–Jordan);
 *   2. since S * lost = parity[R] + C[R][present] * present, the lost data are
 *        lost = S^-1 * parity[R] + (S^-1 * C[R])[present columns] * present.
 *      Sources: the k data slots, with lost slot L[l] holding parity shard R[l] instead.
 *      D = S^-1 * C[R] (e x k, computed on the same kernel, rows of C taken as shards),
 *      then column L[l] of D is replaced by column l of S^-1: lost = D * sources;
 *   3. one kernel pass for the lost data, then the lost parity rows are re-encoded from the
 *      now complete data.
 * Every argument is checked before anything is written; an error leaves the shards untouched.
 */
#include "rs8_internal.h"

#include <stdlib.h>
#include <string.h>

struct neuron_rs8 {
    uint32_t k, m;
    const rs8_kernel *kern;
    uint8_t *matrix;     /* m x k parity coefficients */
    uint8_t *enc_tables; /* kern->prepare(matrix); NULL for kernels that read coefficients */
    /* decode scratch */
    uint8_t *dec_tables; /* up to m x k kernel tables (table kernels only) */
    uint8_t *dec_coefs;  /* up to m x k: the decode matrix D, then the lost parity rows */
    uint8_t *mpad;       /* the parity matrix again, rows zero-padded to kpad bytes */
    uint8_t *dpad;       /* up to m rows of kpad bytes: S^-1 * C[R] */
    size_t kpad;         /* k rounded up to 64 */
    uint8_t *sinv;       /* up to m x m: S^-1, row-major */
    uint8_t *elim;       /* m rows x elim_stride: [S | I] being inverted */
    size_t elim_stride;
};

static const uint8_t audio_matrix[2 * 4] = {0x77, 0x40, 0x38, 0x0e, 0xc7, 0xa7, 0x0d, 0x6c};

const rs8_kernel *rs8_kernel_get(uint32_t id) {
    switch (id) {
    case NEURON_RS8_KERNEL_AUTO: {
        const rs8_kernel *k = rs8_kernel_gfni_avx512();
        if (!k) k = rs8_kernel_gfni_avx2();
        if (!k) k = rs8_kernel_avx2();
        return k ? k : rs8_kernel_portable();
    }
    case NEURON_RS8_KERNEL_PORTABLE: return rs8_kernel_portable();
    case NEURON_RS8_KERNEL_AVX2: return rs8_kernel_avx2();
    case NEURON_RS8_KERNEL_GFNI_AVX2: return rs8_kernel_gfni_avx2();
    case NEURON_RS8_KERNEL_GFNI_AVX512: return rs8_kernel_gfni_avx512();
    case NEURON_RS8_KERNEL_ISAL: return rs8_kernel_isal();
    default: return NULL;
    }
}

int32_t neuron_rs8_kernel_available(uint32_t kernel) {
    rs8_tables_init();
    return rs8_kernel_get(kernel) != NULL;
}

const char *neuron_rs8_kernel_name(uint32_t kernel) {
    switch (kernel) {
    case NEURON_RS8_KERNEL_AUTO: return "auto";
    case NEURON_RS8_KERNEL_PORTABLE: return "portable";
    case NEURON_RS8_KERNEL_AVX2: return "avx2";
    case NEURON_RS8_KERNEL_GFNI_AVX2: return "gfni-avx2";
    case NEURON_RS8_KERNEL_GFNI_AVX512: return "gfni-avx512";
    case NEURON_RS8_KERNEL_ISAL: return "isal";
    default: return "unknown";
    }
}

static void *alloc64(size_t n) {
    n = (n + 63) & ~(size_t)63;
    return aligned_alloc(64, n ? n : 64);
}

void neuron_rs8_destroy(neuron_rs8 *c) {
    if (!c) return;
    free(c->matrix);
    free(c->enc_tables);
    free(c->dec_tables);
    free(c->dec_coefs);
    free(c->sinv);
    free(c->mpad);
    free(c->dpad);
    free(c->elim);
    free(c);
}

static int32_t create(uint32_t k, uint32_t m, const uint8_t *matrix, uint32_t kernel, neuron_rs8 **out) {
    if (!out) return NEURON_EINVAL;
    *out = NULL;
    if (k < 1 || m < 1 || k > NEURON_RS8_MAX_SHARDS || m > NEURON_RS8_MAX_SHARDS || k + m > NEURON_RS8_MAX_SHARDS)
        return NEURON_EINVAL;
    if (kernel > NEURON_RS8_KERNEL_ISAL) return NEURON_EINVAL;
    rs8_tables_init();
    const rs8_kernel *kern = rs8_kernel_get(kernel);
    if (!kern) return NEURON_EUNSUPPORTED;

    neuron_rs8 *c = calloc(1, sizeof *c);
    if (!c) return NEURON_ENOMEM;
    const size_t coefs = (size_t)m * k;
    c->k = k;
    c->m = m;
    c->kern = kern;
    c->elim_stride = (2 * (size_t)m + 63) & ~(size_t)63;
    c->matrix = alloc64(coefs);
    c->dec_coefs = alloc64(coefs);
    c->sinv = alloc64((size_t)m * m);
    c->elim = alloc64((size_t)m * c->elim_stride);
    c->kpad = ((size_t)k + 63) & ~(size_t)63;
    c->mpad = alloc64((size_t)m * c->kpad);
    c->dpad = alloc64((size_t)m * c->kpad);
    int ok = c->matrix && c->dec_coefs && c->sinv && c->elim && c->mpad && c->dpad;
    if (ok && kern->coef_bytes) {
        c->enc_tables = alloc64(coefs * kern->coef_bytes);
        c->dec_tables = alloc64(coefs * kern->coef_bytes);
        ok = c->enc_tables && c->dec_tables;
    }
    if (!ok) {
        neuron_rs8_destroy(c);
        return NEURON_ENOMEM;
    }
    if (matrix) {
        memcpy(c->matrix, matrix, coefs);
    } else {
        for (uint32_t j = 0; j < m; j++)
            for (uint32_t i = 0; i < k; i++) c->matrix[(size_t)j * k + i] = rs8_inv[(m + i) ^ j];
    }
    memset(c->mpad, 0, (size_t)m * c->kpad);
    for (uint32_t j = 0; j < m; j++) memcpy(c->mpad + (size_t)j * c->kpad, c->matrix + (size_t)j * k, k);
    if (kern->prepare) kern->prepare(c->matrix, m, k, c->enc_tables);
    *out = c;
    return NEURON_OK;
}

int32_t neuron_rs8_create(uint32_t k, uint32_t m, uint32_t kernel, neuron_rs8 **out) {
    return create(k, m, NULL, kernel, out);
}

int32_t neuron_rs8_create_audio(uint32_t kernel, neuron_rs8 **out) { return create(4, 2, audio_matrix, kernel, out); }

int32_t neuron_rs8_kernel_of(const neuron_rs8 *c) { return c ? (int32_t)c->kern->id : NEURON_EINVAL; }

int32_t neuron_rs8_matrix(const neuron_rs8 *c, uint8_t *out, size_t out_len) {
    if (!c || !out) return NEURON_EINVAL;
    if (out_len < (size_t)c->m * c->k) return NEURON_ERANGE;
    memcpy(out, c->matrix, (size_t)c->m * c->k);
    return NEURON_OK;
}

static int shards_valid(const neuron_rs8 *c, uint8_t *const *shards, uint32_t count, size_t size) {
    if (!c || !shards || count != c->k + c->m || size < 1 || size > NEURON_RS8_MAX_SHARD_SIZE) return 0;
    for (uint32_t i = 0; i < count; i++)
        if (!shards[i]) return 0;
    return 1;
}

int32_t neuron_rs8_encode(const neuron_rs8 *c, uint8_t *const *shards, uint32_t shard_count, size_t shard_size) {
    if (!shards_valid(c, shards, shard_count, shard_size)) return NEURON_EINVAL;
    c->kern->apply(shard_size, c->k, c->m, c->enc_tables, c->matrix, (const uint8_t *const *)shards, shards + c->k);
    return NEURON_OK;
}

/* out[r] = M[r] * src over len bytes, preparing tables first for table kernels. */
static void run(neuron_rs8 *c, size_t len, uint32_t nsrc, uint32_t nout, const uint8_t *coefs,
                const uint8_t *const *src, uint8_t *const *out) {
    if (c->kern->prepare) c->kern->prepare(coefs, nout, nsrc, c->dec_tables);
    c->kern->apply(len, nsrc, nout, c->dec_tables, coefs, src, out);
}

/* Rebuilds the e lost data shards lost_data[] (is_lost marks every lost index). */
static int decode_data(neuron_rs8 *c, uint8_t *const *shards, size_t size, const uint8_t *is_lost,
                       const uint32_t *lost_data, uint32_t e) {
    const uint32_t k = c->k, m = c->m;
    const uint8_t *src[NEURON_RS8_MAX_SHARDS], *crow[NEURON_RS8_MAX_SHARDS];
    uint8_t *dst[NEURON_RS8_MAX_SHARDS], *drow[NEURON_RS8_MAX_SHARDS];
    for (uint32_t i = 0; i < k; i++) src[i] = shards[i];
    for (uint32_t j = 0, r = 0; j < m && r < e; j++) {
        if (is_lost[k + j]) continue;
        src[lost_data[r]] = shards[k + j];
        dst[r] = shards[lost_data[r]];
        crow[r] = c->mpad + (size_t)j * c->kpad;
        drow[r] = c->dpad + (size_t)r * c->kpad;
        r++;
    }
    /* [S | I] */
    for (uint32_t r = 0; r < e; r++) {
        uint8_t *a = c->elim + (size_t)r * c->elim_stride;
        memset(a, 0, c->elim_stride); /* the inversion relies on zero padding past 2e */
        for (uint32_t l = 0; l < e; l++) a[l] = crow[r][lost_data[l]];
        a[e + r] = 1;
    }
    if (!c->kern->invert(c->elim, c->elim_stride, e)) return 0; /* not for an MDS matrix */
    for (uint32_t r = 0; r < e; r++) memcpy(c->sinv + (size_t)r * e, c->elim + (size_t)r * c->elim_stride + e, e);

    run(c, c->kpad, e, e, c->sinv, crow, drow); /* S^-1 * C[R], whole 64-byte spans */
    for (uint32_t r = 0; r < e; r++) {
        uint8_t *d = c->dec_coefs + (size_t)r * k;
        memcpy(d, drow[r], k);
        for (uint32_t l = 0; l < e; l++) d[lost_data[l]] = c->sinv[(size_t)r * e + l];
    }
    run(c, size, k, e, c->dec_coefs, src, dst);
    return 1;
}

int32_t neuron_rs8_decode(neuron_rs8 *c, uint8_t *const *shards, uint32_t shard_count, size_t shard_size,
                          const uint32_t *lost, uint32_t lost_count) {
    if (!shards_valid(c, shards, shard_count, shard_size)) return NEURON_EINVAL;
    if (lost_count == 0) return NEURON_OK;
    if (!lost || lost_count > shard_count) return NEURON_EINVAL;
    uint8_t is_lost[NEURON_RS8_MAX_SHARDS] = {0};
    for (uint32_t i = 0; i < lost_count; i++) {
        if (lost[i] >= shard_count || is_lost[lost[i]]) return NEURON_EINVAL;
        is_lost[lost[i]] = 1;
    }
    if (lost_count > c->m) return NEURON_EUNRECOVERABLE;

    const uint32_t k = c->k, m = c->m;
    uint32_t lost_data[NEURON_RS8_MAX_SHARDS], e = 0;
    for (uint32_t i = 0; i < k; i++)
        if (is_lost[i]) lost_data[e++] = i;
    if (e > 0 && !decode_data(c, shards, shard_size, is_lost, lost_data, e))
        return NEURON_EUNRECOVERABLE; /* nothing written yet */

    uint8_t *dst[NEURON_RS8_MAX_SHARDS];
    uint32_t ep = 0;
    for (uint32_t j = 0; j < m; j++) {
        if (!is_lost[k + j]) continue;
        memcpy(c->dec_coefs + (size_t)ep * k, c->matrix + (size_t)j * k, k);
        dst[ep++] = shards[k + j];
    }
    if (ep > 0) run(c, shard_size, k, ep, c->dec_coefs, (const uint8_t *const *)shards, dst);
    return NEURON_OK;
}

static int block_pointers(const neuron_rs8 *c, uint8_t *base, size_t stride, size_t size, uint8_t **ptrs) {
    if (!c || !base || size < 1 || size > NEURON_RS8_MAX_SHARD_SIZE || stride < size) return 0;
    const uint32_t n = c->k + c->m;
    if (stride > (SIZE_MAX - size) / n) return 0;
    if ((uintptr_t)base > UINTPTR_MAX - ((size_t)(n - 1) * stride + size)) return 0;
    for (uint32_t i = 0; i < n; i++) ptrs[i] = base + (size_t)i * stride;
    return 1;
}

int32_t neuron_rs8_encode_block(const neuron_rs8 *c, uint8_t *base, size_t stride, size_t shard_size) {
    uint8_t *ptrs[NEURON_RS8_MAX_SHARDS];
    if (!block_pointers(c, base, stride, shard_size, ptrs)) return NEURON_EINVAL;
    return neuron_rs8_encode(c, ptrs, c->k + c->m, shard_size);
}

int32_t neuron_rs8_decode_block(neuron_rs8 *c, uint8_t *base, size_t stride, size_t shard_size, const uint32_t *lost,
                                uint32_t lost_count) {
    uint8_t *ptrs[NEURON_RS8_MAX_SHARDS];
    if (!block_pointers(c, base, stride, shard_size, ptrs)) return NEURON_EINVAL;
    return neuron_rs8_decode(c, ptrs, c->k + c->m, shard_size, lost, lost_count);
}
