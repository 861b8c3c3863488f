/* C-level tests of the GF(2^8) Reed–Solomon codec (built with ASan/UBSan by `make check`). */
#include "../fec.h"
#include "check.h"

#include <stdlib.h>
#include <string.h>

static const uint32_t KERNELS[] = {NEURON_RS8_KERNEL_PORTABLE, NEURON_RS8_KERNEL_AVX2, NEURON_RS8_KERNEL_GFNI_AVX2,
                                   NEURON_RS8_KERNEL_GFNI_AVX512, NEURON_RS8_KERNEL_ISAL};
#define NKERNELS (sizeof KERNELS / sizeof KERNELS[0])

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

/* A block of n shards of `size` bytes, contiguous, with pointers. */
typedef struct {
    uint32_t n;
    size_t size;
    uint8_t *mem;
    uint8_t *ptr[NEURON_RS8_MAX_SHARDS];
} block;

static void block_init(block *b, uint32_t n, size_t size) {
    b->n = n;
    b->size = size;
    b->mem = malloc((size_t)n * size);
    for (uint32_t i = 0; i < n; i++) b->ptr[i] = b->mem + (size_t)i * size;
}

static void block_fill(block *b, uint32_t k) {
    for (size_t i = 0; i < (size_t)k * b->size; i++) b->mem[i] = (uint8_t)rnd();
}

static void test_field(void) {
    static const uint8_t inv25[4] = {0x8e, 0xf4, 0x47, 0xa7};
    for (int i = 0; i < 4; i++) CHECK(neuron_rs8_gf_inv((uint8_t)(2 + i)) == inv25[i]);
    CHECK(neuron_rs8_gf_inv(0) == 0);
    CHECK(neuron_rs8_gf_inv(1) == 1);
    for (unsigned a = 1; a < 256; a++) CHECK(neuron_rs8_gf_mul((uint8_t)a, neuron_rs8_gf_inv((uint8_t)a)) == 1);
    /* 0x80 * 2 = x^8 = x^4 + x^3 + x^2 + 1 = 0x1d under 0x11D */
    CHECK(neuron_rs8_gf_mul(0x80, 2) == 0x1d);
    CHECK(neuron_rs8_gf_mul(0, 0x55) == 0);
}

/* The Cauchy matrix for k = 3, m = 2: row j, column i = INV[(2 + i) ^ j]. */
static void test_matrix(void) {
    neuron_rs8 *c = NULL;
    CHECK(neuron_rs8_create(3, 2, NEURON_RS8_KERNEL_PORTABLE, &c) == NEURON_OK);
    uint8_t mat[6];
    static const uint8_t want[6] = {0x8e, 0xf4, 0x47,  /* INV[2], INV[3], INV[4] */
                                    0xf4, 0x8e, 0xa7}; /* INV[3], INV[2], INV[5] */
    CHECK(neuron_rs8_matrix(c, mat, 5) == NEURON_ERANGE);
    CHECK(neuron_rs8_matrix(c, mat, sizeof mat) == NEURON_OK);
    CHECK(memcmp(mat, want, 6) == 0);
    neuron_rs8_destroy(c);
}

/*
 * Hand-derived vectors, k = 3, m = 2, two-byte shards d0 = 01 02, d1 = 01 00, d2 = 00 01.
 *  byte 0: p0 = 8e*1 ^ f4*1 = 7a            p1 = f4*1 ^ 8e*1 = 7a
 *  byte 1: p0 = 8e*2 ^ 47*1 = 01 ^ 47 = 46  p1 = f4*2 ^ a7*1 = f5 ^ a7 = 52
 *  (8e*2 = 0x11c ^ 0x11d = 01;  f4*2 = 0x1e8 ^ 0x11d = f5)
 * Audio, d = 01 | 02 | 00 | 00: p0 = 77 ^ 40*2 = 77 ^ 80 = f7,  p1 = c7 ^ a7*2 = c7 ^ 53 = 94
 *  (a7*2 = 0x14e ^ 0x11d = 53)
 */
static void test_vectors(void) {
    for (size_t kx = 0; kx < NKERNELS; kx++) {
        if (!neuron_rs8_kernel_available(KERNELS[kx])) continue;
        neuron_rs8 *c = NULL;
        CHECK(neuron_rs8_create(3, 2, KERNELS[kx], &c) == NEURON_OK);
        uint8_t blk[5][2] = {{0x01, 0x02}, {0x01, 0x00}, {0x00, 0x01}, {0}, {0}};
        CHECK(neuron_rs8_encode_block(c, &blk[0][0], 2, 2) == NEURON_OK);
        CHECK(blk[3][0] == 0x7a && blk[3][1] == 0x46);
        CHECK(blk[4][0] == 0x7a && blk[4][1] == 0x52);
        neuron_rs8_destroy(c);

        CHECK(neuron_rs8_create_audio(KERNELS[kx], &c) == NEURON_OK);
        uint8_t mat[8];
        CHECK(neuron_rs8_matrix(c, mat, sizeof mat) == NEURON_OK);
        static const uint8_t audio[8] = {0x77, 0x40, 0x38, 0x0e, 0xc7, 0xa7, 0x0d, 0x6c};
        CHECK(memcmp(mat, audio, 8) == 0);
        uint8_t a[6] = {0x01, 0x02, 0x00, 0x00, 0, 0};
        CHECK(neuron_rs8_encode_block(c, a, 1, 1) == NEURON_OK);
        CHECK(a[4] == 0xf7 && a[5] == 0x94);
        neuron_rs8_destroy(c);
    }
}

/* All kernels give byte-identical parity for odd and SIMD-friendly sizes. */
static void test_kernels_agree(void) {
    static const size_t sizes[] = {1, 7, 31, 32, 33, 63, 64, 65, 100, 127, 128, 129, 1408, 1409, 4096 + 17};
    static const uint32_t km[][2] = {{1, 1}, {3, 2}, {4, 2}, {9, 7}, {17, 5}, {64, 16}, {128, 32}, {200, 55}, {1, 254}};
    for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++) {
        for (size_t q = 0; q < sizeof km / sizeof km[0]; q++) {
            const uint32_t k = km[q][0], m = km[q][1];
            if (sizes[z] > 1500 && k > 20) continue;
            block ref, b;
            block_init(&ref, k + m, sizes[z]);
            block_init(&b, k + m, sizes[z]);
            block_fill(&ref, k);
            neuron_rs8 *c = NULL;
            CHECK(neuron_rs8_create(k, m, NEURON_RS8_KERNEL_PORTABLE, &c) == NEURON_OK);
            CHECK(neuron_rs8_encode(c, ref.ptr, k + m, sizes[z]) == NEURON_OK);
            neuron_rs8_destroy(c);
            for (size_t kx = 1; kx < NKERNELS; kx++) {
                if (!neuron_rs8_kernel_available(KERNELS[kx])) continue;
                memcpy(b.mem, ref.mem, (size_t)k * sizes[z]);
                memset(b.mem + (size_t)k * sizes[z], 0xee, (size_t)m * sizes[z]);
                CHECK(neuron_rs8_create(k, m, KERNELS[kx], &c) == NEURON_OK);
                CHECK(neuron_rs8_kernel_of(c) == (int32_t)KERNELS[kx]);
                CHECK(neuron_rs8_encode(c, b.ptr, k + m, sizes[z]) == NEURON_OK);
                int same = memcmp(b.mem, ref.mem, (size_t)(k + m) * sizes[z]) == 0;
                CHECK(same);
                if (!same) fprintf(stderr, "  kernel %s k=%u m=%u size=%zu\n", neuron_rs8_kernel_name(KERNELS[kx]), k, m, sizes[z]);
                neuron_rs8_destroy(c);
            }
            free(ref.mem);
            free(b.mem);
        }
    }
}

/* Erase the shards in `lost`, decode, compare with the original. */
static int roundtrip(neuron_rs8 *c, const block *orig, block *b, const uint32_t *lost, uint32_t nlost) {
    memcpy(b->mem, orig->mem, (size_t)b->n * b->size);
    for (uint32_t i = 0; i < nlost; i++) memset(b->ptr[lost[i]], 0xa5, b->size);
    if (neuron_rs8_decode(c, b->ptr, b->n, b->size, lost, nlost) != NEURON_OK) return 0;
    return memcmp(b->mem, orig->mem, (size_t)b->n * b->size) == 0;
}

/* Every loss pattern of up to m shards for small codes, each kernel. */
static void test_decode_exhaustive(void) {
    static const uint32_t km[][2] = {{1, 1}, {2, 2}, {5, 3}, {4, 4}, {3, 6}, {10, 2}};
    static const size_t sizes[] = {1, 70, 192};
    for (size_t kx = 0; kx < NKERNELS; kx++) {
        if (!neuron_rs8_kernel_available(KERNELS[kx])) continue;
        for (size_t q = 0; q < sizeof km / sizeof km[0]; q++)
            for (size_t z = 0; z < 3; z++) {
                const uint32_t k = km[q][0], m = km[q][1], n = k + m;
                neuron_rs8 *c = NULL;
                CHECK(neuron_rs8_create(k, m, KERNELS[kx], &c) == NEURON_OK);
                block orig, b;
                block_init(&orig, n, sizes[z]);
                block_init(&b, n, sizes[z]);
                block_fill(&orig, k);
                CHECK(neuron_rs8_encode(c, orig.ptr, n, sizes[z]) == NEURON_OK);
                int bad = 0;
                for (uint32_t mask = 1; mask < (1u << n); mask++) {
                    uint32_t lost[32], nl = 0;
                    for (uint32_t i = 0; i < n; i++)
                        if (mask & (1u << i)) lost[nl++] = i;
                    /* reverse order for half of them: order must not matter */
                    if (mask & 1)
                        for (uint32_t i = 0; i < nl / 2; i++) {
                            uint32_t t = lost[i];
                            lost[i] = lost[nl - 1 - i];
                            lost[nl - 1 - i] = t;
                        }
                    if (nl <= m) {
                        if (!roundtrip(c, &orig, &b, lost, nl)) bad++;
                    } else {
                        memcpy(b.mem, orig.mem, (size_t)n * sizes[z]);
                        if (neuron_rs8_decode(c, b.ptr, n, sizes[z], lost, nl) != NEURON_EUNRECOVERABLE) bad++;
                        if (memcmp(b.mem, orig.mem, (size_t)n * sizes[z]) != 0) bad++; /* nothing written */
                    }
                }
                CHECK(bad == 0);
                if (bad) fprintf(stderr, "  %s k=%u m=%u size=%zu: %d bad\n", neuron_rs8_kernel_name(KERNELS[kx]), k, m, sizes[z], bad);
                neuron_rs8_destroy(c);
                free(orig.mem);
                free(b.mem);
            }
    }
}

/* The audio matrix recovers every pattern of up to 2 losses. */
static void test_audio_decode(void) {
    neuron_rs8 *c = NULL;
    CHECK(neuron_rs8_create_audio(NEURON_RS8_KERNEL_AUTO, &c) == NEURON_OK);
    block orig, b;
    block_init(&orig, 6, 203);
    block_init(&b, 6, 203);
    block_fill(&orig, 4);
    CHECK(neuron_rs8_encode(c, orig.ptr, 6, 203) == NEURON_OK);
    for (uint32_t i = 0; i < 6; i++) {
        uint32_t one[1] = {i};
        CHECK(roundtrip(c, &orig, &b, one, 1));
        for (uint32_t j = i + 1; j < 6; j++) {
            uint32_t two[2] = {j, i};
            CHECK(roundtrip(c, &orig, &b, two, 2));
        }
    }
    neuron_rs8_destroy(c);
    free(orig.mem);
    free(b.mem);
}

/* Random k, m, sizes and loss sets for the large codes. */
static void test_decode_random(void) {
    for (int iter = 0; iter < 120; iter++) {
        const uint32_t k = 1 + rnd() % 220;
        const uint32_t m = 1 + rnd() % (255 - k < 60 ? 255 - k : 60);
        const size_t size = 1 + rnd() % 600;
        const uint32_t kernel = KERNELS[rnd() % NKERNELS];
        if (!neuron_rs8_kernel_available(kernel)) continue;
        neuron_rs8 *c = NULL;
        CHECK(neuron_rs8_create(k, m, kernel, &c) == NEURON_OK);
        block orig, b;
        block_init(&orig, k + m, size);
        block_init(&b, k + m, size);
        block_fill(&orig, k);
        CHECK(neuron_rs8_encode(c, orig.ptr, k + m, size) == NEURON_OK);
        uint32_t perm[NEURON_RS8_MAX_SHARDS];
        for (uint32_t i = 0; i < k + m; i++) perm[i] = i;
        for (uint32_t i = k + m - 1; i > 0; i--) {
            uint32_t j = rnd() % (i + 1), t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        const uint32_t nl = rnd() % (m + 1);
        CHECK(roundtrip(c, &orig, &b, perm, nl));
        /* all data shards lost that parity allows */
        uint32_t dl[NEURON_RS8_MAX_SHARDS], nd = 0;
        for (uint32_t i = 0; i < k && nd < m; i++) dl[nd++] = i;
        CHECK(roundtrip(c, &orig, &b, dl, nd));
        neuron_rs8_destroy(c);
        free(orig.mem);
        free(b.mem);
    }
}

static void test_hostile(void) {
    neuron_rs8 *c = (neuron_rs8 *)(uintptr_t)1;
    CHECK(neuron_rs8_create(0, 2, 0, &c) == NEURON_EINVAL && c == NULL);
    CHECK(neuron_rs8_create(2, 0, 0, &c) == NEURON_EINVAL);
    CHECK(neuron_rs8_create(200, 56, 0, &c) == NEURON_EINVAL);
    CHECK(neuron_rs8_create(0xffffffffu, 2, 0, &c) == NEURON_EINVAL);
    CHECK(neuron_rs8_create(2, 0xffffffffu, 0, &c) == NEURON_EINVAL);
    CHECK(neuron_rs8_create(2, 2, 99, &c) == NEURON_EINVAL);
    CHECK(neuron_rs8_create(2, 2, 0, NULL) == NEURON_EINVAL);
    CHECK(neuron_rs8_create_audio(77, &c) == NEURON_EINVAL);
    CHECK(neuron_rs8_kernel_available(99) == 0);
    CHECK(strcmp(neuron_rs8_kernel_name(99), "unknown") == 0);
    CHECK(neuron_rs8_kernel_of(NULL) == NEURON_EINVAL);
    CHECK(neuron_rs8_matrix(NULL, NULL, 0) == NEURON_EINVAL);
    neuron_rs8_destroy(NULL);

    CHECK(neuron_rs8_create(200, 55, 0, &c) == NEURON_OK);
    neuron_rs8_destroy(c);
    CHECK(neuron_rs8_create(4, 3, 0, &c) == NEURON_OK);
    block b;
    block_init(&b, 7, 64);
    block_fill(&b, 4);
    CHECK(neuron_rs8_encode(c, b.ptr, 7, 64) == NEURON_OK);
    uint8_t *saved = malloc(7 * 64);
    memcpy(saved, b.mem, 7 * 64);

    CHECK(neuron_rs8_encode(NULL, b.ptr, 7, 64) == NEURON_EINVAL);
    CHECK(neuron_rs8_encode(c, NULL, 7, 64) == NEURON_EINVAL);
    CHECK(neuron_rs8_encode(c, b.ptr, 6, 64) == NEURON_EINVAL);
    CHECK(neuron_rs8_encode(c, b.ptr, 8, 64) == NEURON_EINVAL);
    CHECK(neuron_rs8_encode(c, b.ptr, 7, 0) == NEURON_EINVAL);
    CHECK(neuron_rs8_encode(c, b.ptr, 7, (size_t)NEURON_RS8_MAX_SHARD_SIZE + 1) == NEURON_EINVAL);
    CHECK(neuron_rs8_encode(c, b.ptr, 7, SIZE_MAX) == NEURON_EINVAL);
    uint8_t *keep = b.ptr[5];
    b.ptr[5] = NULL;
    CHECK(neuron_rs8_encode(c, b.ptr, 7, 64) == NEURON_EINVAL);
    uint32_t l0[1] = {0};
    CHECK(neuron_rs8_decode(c, b.ptr, 7, 64, l0, 1) == NEURON_EINVAL);
    b.ptr[5] = keep;

    const uint32_t out_of_range[2] = {1, 7};
    const uint32_t huge[1] = {0xffffffffu};
    const uint32_t dup[3] = {2, 5, 2};
    const uint32_t four[4] = {0, 1, 2, 3};
    CHECK(neuron_rs8_decode(c, b.ptr, 7, 64, out_of_range, 2) == NEURON_EINVAL);
    CHECK(neuron_rs8_decode(c, b.ptr, 7, 64, huge, 1) == NEURON_EINVAL);
    CHECK(neuron_rs8_decode(c, b.ptr, 7, 64, dup, 3) == NEURON_EINVAL);
    CHECK(neuron_rs8_decode(c, b.ptr, 7, 64, NULL, 1) == NEURON_EINVAL);
    CHECK(neuron_rs8_decode(c, b.ptr, 7, 64, four, 0xffffffffu) == NEURON_EINVAL);
    CHECK(neuron_rs8_decode(c, b.ptr, 7, 64, four, 4) == NEURON_EUNRECOVERABLE);
    CHECK(neuron_rs8_decode(c, b.ptr, 7, 0, four, 1) == NEURON_EINVAL);
    CHECK(neuron_rs8_decode(c, b.ptr, 7, 64, NULL, 0) == NEURON_OK);

    CHECK(neuron_rs8_encode_block(c, b.mem, 63, 64) == NEURON_EINVAL); /* stride < size */
    CHECK(neuron_rs8_encode_block(c, NULL, 64, 64) == NEURON_EINVAL);
    CHECK(neuron_rs8_encode_block(c, b.mem, SIZE_MAX / 2, 64) == NEURON_EINVAL);
    CHECK(neuron_rs8_encode_block(c, (uint8_t *)(UINTPTR_MAX - 100), 64, 64) == NEURON_EINVAL);
    CHECK(neuron_rs8_decode_block(c, b.mem, 64, 64, dup, 3) == NEURON_EINVAL);
    CHECK(neuron_rs8_decode_block(c, b.mem, 64, 64, four, 4) == NEURON_EUNRECOVERABLE);
    CHECK(memcmp(saved, b.mem, 7 * 64) == 0); /* none of the above wrote anything */

    const uint32_t three[3] = {6, 0, 3};
    memset(b.ptr[6], 0, 64);
    memset(b.ptr[0], 0, 64);
    memset(b.ptr[3], 0, 64);
    CHECK(neuron_rs8_decode_block(c, b.mem, 64, 64, three, 3) == NEURON_OK);
    CHECK(memcmp(saved, b.mem, 7 * 64) == 0);

    neuron_rs8_destroy(c);
    free(saved);
    free(b.mem);
}

/* Shards inside packets: stride > shard size; bytes between shards are untouched. */
static void test_strided(void) {
    neuron_rs8 *c = NULL;
    CHECK(neuron_rs8_create(6, 3, NEURON_RS8_KERNEL_AUTO, &c) == NEURON_OK);
    const size_t stride = 100, size = 80;
    uint8_t *mem = malloc(9 * stride), *ref = malloc(9 * stride);
    for (size_t i = 0; i < 9 * stride; i++) mem[i] = (uint8_t)rnd();
    CHECK(neuron_rs8_encode_block(c, mem, stride, size) == NEURON_OK);
    memcpy(ref, mem, 9 * stride);
    const uint32_t lost[3] = {8, 2, 5};
    for (int i = 0; i < 3; i++) memset(mem + lost[i] * stride, 0, size);
    CHECK(neuron_rs8_decode_block(c, mem, stride, size, lost, 3) == NEURON_OK);
    CHECK(memcmp(mem, ref, 9 * stride) == 0);
    neuron_rs8_destroy(c);
    free(mem);
    free(ref);
}

int main(void) {
    test_field();
    test_matrix();
    test_vectors();
    test_kernels_agree();
    test_decode_exhaustive();
    test_audio_decode();
    test_decode_random();
    test_hostile();
    test_strided();
    for (size_t kx = 0; kx < NKERNELS; kx++)
        printf("rs8 kernel %-12s %s\n", neuron_rs8_kernel_name(KERNELS[kx]),
               neuron_rs8_kernel_available(KERNELS[kx]) ? "available" : "not available here");
    return check_report("rs8");
}
