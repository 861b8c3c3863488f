/*
 * Benchmark-only baselines (never part of libneuron.so; `make -C native bench` builds
 * build/bench/libneuron_bench.so). Each is the library used the way its authors intend,
 * so the benchmarks compare against the best usual use, not a strawman:
 *
 *  - ISA-L erasure decode (libisal.so.2): the decode matrix holds only the rows of the lost
 *    data shards, built by inverting the e x e block of the parity rows at the lost columns
 *    (the surviving data rows are identity rows and need no inversion), then ec_init_tables +
 *    ec_encode_data over the k survivors.
 *  - OpenSSL AES-128-GCM per packet in process: one EVP_CIPHER_CTX keyed once, per packet a
 *    fresh IV (EVP_EncryptInit_ex with only the IV), EVP_EncryptUpdate, EVP_EncryptFinal_ex,
 *    EVP_CTRL_GCM_GET_TAG; the open side the same with EVP_CTRL_GCM_SET_TAG before Final.
 */
#include <isa-l/erasure_code.h>
#include <openssl/evp.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define EXPORT __attribute__((visibility("default")))

/* ------------------------------------------------------------------------- */
/* ISA-L decode                                                              */

static uint8_t mul_table[256][256];
static int mul_ready;

/* Gauss-Jordan inversion of an n x n GF(2^8) matrix with a 64 KiB product table (ISA-L's
 * gf_invert_matrix calls gf_mul per element, which dominates a small decode). in is destroyed.
 * Returns 0, or -1 when singular. */
static int invert_table(uint8_t *in, uint8_t *out, int n) {
    if (!mul_ready) {
        for (int a = 0; a < 256; a++)
            for (int b = 0; b < 256; b++) mul_table[a][b] = gf_mul((unsigned char)a, (unsigned char)b);
        mul_ready = 1;
    }
    memset(out, 0, (size_t)n * n);
    for (int i = 0; i < n; i++) out[i * n + i] = 1;
    for (int c = 0; c < n; c++) {
        int piv = c;
        while (piv < n && in[piv * n + c] == 0) piv++;
        if (piv == n) return -1;
        if (piv != c)
            for (int j = 0; j < n; j++) {
                uint8_t t = in[c * n + j];
                in[c * n + j] = in[piv * n + j];
                in[piv * n + j] = t;
                t = out[c * n + j];
                out[c * n + j] = out[piv * n + j];
                out[piv * n + j] = t;
            }
        const uint8_t *scale = mul_table[gf_inv(in[c * n + c])];
        for (int j = 0; j < n; j++) {
            in[c * n + j] = scale[in[c * n + j]];
            out[c * n + j] = scale[out[c * n + j]];
        }
        for (int r = 0; r < n; r++) {
            uint8_t f = in[r * n + c];
            if (r == c || f == 0) continue;
            const uint8_t *mf = mul_table[f];
            for (int j = 0; j < n; j++) {
                in[r * n + j] ^= mf[in[c * n + j]];
                out[r * n + j] ^= mf[out[c * n + j]];
            }
        }
    }
    return 0;
}

/*
 * Decode matrix of a systematic (n = k + m) x k encode matrix `a` (top k rows identity) for
 * the lost data shards `lost[0..e)` (each < k). Writes `survivors[0..k)` (the shard indices the
 * rows apply to, in order: surviving data shards, then the first e surviving parity shards)
 * and `rows` (e x k). `scratch` holds 2*e*e + 2*e*k + 32*e*e bytes. Returns 0, or -1 when too few
 * parity shards survive or the block is singular. The product Binv * a[P][S] is a GF(2^8)
 * matrix product, so ISA-L's own SIMD kernel computes it (rows of a[P][S] as its sources).
 */
EXPORT int bench_isal_decode_matrix(const uint8_t *a, int k, int m, const uint8_t *lost, int e, const uint8_t *parity_lost,
                                    int fast_invert, uint8_t *survivors, uint8_t *rows, uint8_t *scratch) {
    if (e <= 0 || e > m || k <= 0 || k + m > 255) return -1;
    uint8_t is_lost[256] = {0};
    for (int i = 0; i < e; i++) {
        if (lost[i] >= k) return -1;
        is_lost[lost[i]] = 1;
    }
    int ns = 0;
    for (int j = 0; j < k; j++)
        if (!is_lost[j]) survivors[ns++] = (uint8_t)j;
    int data_survivors = ns;
    for (int p = 0; p < m && ns < k; p++)
        if (!parity_lost || !parity_lost[p]) survivors[ns++] = (uint8_t)(k + p);
    if (ns < k) return -1;
    /* B = a[P][L] (e x e), inverted */
    uint8_t *b = scratch, *binv = scratch + e * e;
    for (int r = 0; r < e; r++)
        for (int c = 0; c < e; c++) b[r * e + c] = a[survivors[data_survivors + r] * k + lost[c]];
    if ((fast_invert ? invert_table(b, binv, e) : gf_invert_matrix(b, binv, e)) != 0) return -1;
    /* d_L = Binv (y_P + a[P][S] d_S): coefficients on the parity survivors are Binv, on the
     * data survivors Binv * a[P][S] */
    int ds = data_survivors;
    uint8_t *c = binv + e * e, *prod = c + e * ds, *tables = prod + e * ds;
    uint8_t *src[256], *dst[256];
    for (int p = 0; p < e; p++) {
        const uint8_t *arow = a + survivors[ds + p] * k;
        for (int s = 0; s < ds; s++) c[p * ds + s] = arow[survivors[s]];
        src[p] = c + p * ds;
        dst[p] = prod + p * ds;
    }
    if (ds > 0) {
        ec_init_tables(e, e, binv, tables);
        ec_encode_data(ds, e, e, tables, src, dst);
    }
    for (int i = 0; i < e; i++) {
        memcpy(rows + i * k, prod + i * ds, (size_t)ds);
        memcpy(rows + i * k + ds, binv + i * e, (size_t)e);
    }
    return 0;
}

/*
 * Full decode: decode matrix as above (fast_invert 0: ISA-L's gf_invert_matrix for the e x e
 * block, as its examples do; 1: the table-driven inversion above), tables, and the rebuild of
 * the lost data shards.
 * `shards` points to the n shards (len bytes each); `tables` holds 32*k*e bytes, `ptrs` 8*(k+e),
 * `work` k + 3*e*k + 34*e*e bytes. Returns 0 or -1.
 */
EXPORT int bench_isal_decode(const uint8_t *a, int k, int m, int len, uint8_t **shards, const uint8_t *lost, int e,
                             int fast_invert, uint8_t *tables, uint8_t **ptrs, uint8_t *work) {
    uint8_t *survivors = work, *rows = work + k, *scratch = rows + e * k;
    if (bench_isal_decode_matrix(a, k, m, lost, e, NULL, fast_invert, survivors, rows, scratch) != 0) return -1;
    ec_init_tables(k, e, rows, tables);
    uint8_t **src = ptrs, **out = ptrs + k;
    for (int i = 0; i < k; i++) src[i] = shards[survivors[i]];
    for (int i = 0; i < e; i++) out[i] = shards[lost[i]];
    ec_encode_data(len, k, e, tables, src, out);
    return 0;
}

/* ------------------------------------------------------------------------- */
/* OpenSSL EVP AES-128-GCM per packet                                        */

typedef struct bench_gcm {
    EVP_CIPHER_CTX *enc, *dec;
} bench_gcm;

EXPORT bench_gcm *bench_gcm_new(const uint8_t key[16]) {
    bench_gcm *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->enc = EVP_CIPHER_CTX_new();
    g->dec = EVP_CIPHER_CTX_new();
    if (!g->enc || !g->dec || EVP_EncryptInit_ex(g->enc, EVP_aes_128_gcm(), NULL, key, NULL) != 1 ||
        EVP_DecryptInit_ex(g->dec, EVP_aes_128_gcm(), NULL, key, NULL) != 1) {
        EVP_CIPHER_CTX_free(g->enc);
        EVP_CIPHER_CTX_free(g->dec);
        free(g);
        return NULL;
    }
    return g;
}

EXPORT void bench_gcm_free(bench_gcm *g) {
    if (!g) return;
    EVP_CIPHER_CTX_free(g->enc);
    EVP_CIPHER_CTX_free(g->dec);
    free(g);
}

static void counter_iv(uint8_t iv[12], uint64_t n) {
    memset(iv, 0, 12);
    for (int i = 0; i < 8; i++) iv[i] = (uint8_t)(n >> (8 * i));
    iv[11] = 'V';
}

/* Seals `count` packets of `len` bytes (in: count*len) to out (count*len) and tags (count*16),
 * IV i = counter + i. Returns the packets sealed. */
EXPORT int bench_gcm_seal(bench_gcm *g, int count, int len, const uint8_t *in, uint8_t *out, uint8_t *tags,
                          uint64_t counter) {
    uint8_t iv[12];
    int outl;
    for (int i = 0; i < count; i++) {
        counter_iv(iv, counter + (uint64_t)i);
        if (EVP_EncryptInit_ex(g->enc, NULL, NULL, NULL, iv) != 1 ||
            EVP_EncryptUpdate(g->enc, out + (size_t)i * len, &outl, in + (size_t)i * len, len) != 1 ||
            EVP_EncryptFinal_ex(g->enc, out + (size_t)i * len + outl, &outl) != 1 ||
            EVP_CIPHER_CTX_ctrl(g->enc, EVP_CTRL_GCM_GET_TAG, 16, tags + (size_t)i * 16) != 1)
            return i;
    }
    return count;
}

/* Opens what bench_gcm_seal sealed with the same counter; returns the packets that verified. */
EXPORT int bench_gcm_open(bench_gcm *g, int count, int len, const uint8_t *in, const uint8_t *tags, uint8_t *out,
                          uint64_t counter) {
    uint8_t iv[12];
    int outl;
    for (int i = 0; i < count; i++) {
        counter_iv(iv, counter + (uint64_t)i);
        if (EVP_DecryptInit_ex(g->dec, NULL, NULL, NULL, iv) != 1 ||
            EVP_DecryptUpdate(g->dec, out + (size_t)i * len, &outl, in + (size_t)i * len, len) != 1 ||
            EVP_CIPHER_CTX_ctrl(g->dec, EVP_CTRL_GCM_SET_TAG, 16, (void *)(uintptr_t)(tags + (size_t)i * 16)) != 1 ||
            EVP_DecryptFinal_ex(g->dec, out + (size_t)i * len + outl, &outl) != 1)
            return i;
    }
    return count;
}
