/*
 * fec.h — forward error correction of libneuron.
 *
 * Two systematic Reed–Solomon erasure codecs behind one small API shape:
 *
 *  - GF(2^8)  (neuron_rs8_*):  polynomial 0x11D, Cauchy parity matrix byte-identical to what
 *                              Moonlight clients use, up to 255 shards per block; also the fixed
 *                              4+2 GameStream audio matrix. Video/audio packet FEC.
 *  - GF(2^16) (neuron_rs16_*): FFT-based O(n log n) codec (additive FFT over the novel polynomial
 *                              basis), up to 65,535 shards per block. Large blocks.
 *
 * Conventions shared by both codecs:
 *  - A block has k data shards and m parity shards, each `shard_size` bytes, in caller-owned
 *    buffers passed as arrays of pointers (one call per block, no per-call allocation).
 *  - Shard index i < k is data shard i; index k + j is parity shard j.
 *  - Decode takes which shards are present and reconstructs the missing ones in place; it never
 *    returns wrong data: more than m losses → NEURON_EUNRECOVERABLE.
 *  - Errors are negative neuron_status values (neuron.h).
 */
#ifndef NEURON_FEC_H
#define NEURON_FEC_H

#include "neuron.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ===== GF(2^8) Reed–Solomon ===== */
/*
 * Field: GF(2^8) with polynomial x^8 + x^4 + x^3 + x^2 + 1 (0x11D), generator 2.
 *
 * Matrix: systematic; parity shard j (0 <= j < m) is
 *     parity[j] = XOR over i < k of  C[j][i] * data[i]      (byte-wise, field arithmetic)
 * with the Cauchy coefficients Moonlight clients use:  C[j][i] = INV[(m + i) XOR j]
 * (INV = multiplicative inverse; INV[2..5] = 8e f4 47 a7). Every square submatrix of C is
 * invertible, so any m lost shards (data or parity) are recoverable. The audio codec uses the
 * fixed GameStream 4+2 matrix {77 40 38 0e / c7 a7 0d 6c} instead.
 *
 * Limits: 1 <= k, 1 <= m, k + m <= NEURON_RS8_MAX_SHARDS; 1 <= shard_size <=
 * NEURON_RS8_MAX_SHARD_SIZE, any value (multiples of 64 take the fastest path).
 *
 * Kernels (the SIMD code doing the bulk multiply-accumulate) are chosen at creation; every
 * kernel produces byte-identical shards. AUTO takes the fastest one this CPU runs (measured:
 * GFNI_AVX512 > GFNI_AVX2 > AVX2 > PORTABLE). ISAL runs the bulk work on Intel ISA-L's
 * ec_encode_data (libisal.so.2, loaded at run time when first asked for); it exists as the
 * benchmark baseline and is never chosen by AUTO.
 *
 * Threads: a codec is immutable after creation except for decode's scratch space: encode calls
 * may run concurrently on one codec; a decode call needs the codec to itself. Calls use up to
 * ~40 KiB of stack (pointer arrays, zero-padded vector tails) and never allocate.
 */
#define NEURON_RS8_MAX_SHARDS 255u
#define NEURON_RS8_MAX_SHARD_SIZE (1u << 24) /* 16 MiB */

typedef enum neuron_rs8_kernel {
    NEURON_RS8_KERNEL_AUTO = 0,        /* the fastest kernel this CPU supports */
    NEURON_RS8_KERNEL_PORTABLE = 1,    /* plain C, 64 KiB multiplication table */
    NEURON_RS8_KERNEL_AVX2 = 2,        /* VPSHUFB 4-bit split tables, 256-bit vectors */
    NEURON_RS8_KERNEL_GFNI_AVX2 = 3,   /* GF2P8AFFINEQB, 256-bit vectors */
    NEURON_RS8_KERNEL_GFNI_AVX512 = 4, /* GF2P8AFFINEQB, 512-bit vectors, masked tails */
    NEURON_RS8_KERNEL_ISAL = 5         /* Intel ISA-L ec_encode_data (baseline) */
} neuron_rs8_kernel;

/* Opaque codec: the parity matrix, its precomputed kernel tables and decode scratch space. */
typedef struct neuron_rs8 neuron_rs8;

/* 1 when `kernel` (a neuron_rs8_kernel) can run here (AUTO always can), else 0. */
NEURON_EXPORT int32_t neuron_rs8_kernel_available(uint32_t kernel);

/* Static name of a kernel ("gfni-avx512", ...); "unknown" for an unknown id. */
NEURON_EXPORT const char *neuron_rs8_kernel_name(uint32_t kernel);

/*
 * Creates a codec for k data + m parity shards with the Moonlight Cauchy matrix.
 * *out receives the codec (NULL on failure). Errors: NEURON_EINVAL (k, m out of range, NULL out,
 * unknown kernel), NEURON_EUNSUPPORTED (the kernel cannot run on this machine), NEURON_ENOMEM.
 */
NEURON_EXPORT int32_t neuron_rs8_create(uint32_t k, uint32_t m, uint32_t kernel, neuron_rs8 **out);

/* Creates the GameStream audio codec: k = 4, m = 2, fixed matrix {77 40 38 0e / c7 a7 0d 6c}. */
NEURON_EXPORT int32_t neuron_rs8_create_audio(uint32_t kernel, neuron_rs8 **out);

/* Frees a codec (NULL is a no-op). */
NEURON_EXPORT void neuron_rs8_destroy(neuron_rs8 *codec);

/* The kernel a codec runs (a neuron_rs8_kernel other than AUTO), or NEURON_EINVAL for NULL. */
NEURON_EXPORT int32_t neuron_rs8_kernel_of(const neuron_rs8 *codec);

/*
 * Copies the m x k parity matrix (row j = parity shard j, row-major) into out.
 * Errors: NEURON_EINVAL (NULL), NEURON_ERANGE (out_len < m * k).
 */
NEURON_EXPORT int32_t neuron_rs8_matrix(const neuron_rs8 *codec, uint8_t *out, size_t out_len);

/*
 * Encode: shards[0..k) are the data, shards[k..k+m) receive the parity. shard_count must be
 * k + m; every pointer non-NULL with shard_size bytes; parity buffers must not overlap data.
 * Errors: NEURON_EINVAL (and nothing is written).
 */
NEURON_EXPORT int32_t neuron_rs8_encode(const neuron_rs8 *codec, uint8_t *const *shards, uint32_t shard_count,
                                        size_t shard_size);

/*
 * Decode: `lost` lists the indices (0..k+m) of the shards that did not arrive, each once, in
 * any order; their buffers (still shards[i], non-NULL) receive the reconstructed bytes, the
 * others are read only. Lost data shards are rebuilt by inverting only the square submatrix of
 * the lost columns; lost parity shards are re-encoded.
 * Errors (nothing is written): NEURON_EINVAL (bad pointer, count, size, an index out of range
 * or repeated), NEURON_EUNRECOVERABLE (more than m lost).
 */
NEURON_EXPORT int32_t neuron_rs8_decode(neuron_rs8 *codec, uint8_t *const *shards, uint32_t shard_count,
                                        size_t shard_size, const uint32_t *lost, uint32_t lost_count);

/*
 * Same as encode/decode with the k + m shards at base + i * stride (stride >= shard_size),
 * e.g. one contiguous block, or the payloads inside an array of fixed-size packets.
 */
NEURON_EXPORT int32_t neuron_rs8_encode_block(const neuron_rs8 *codec, uint8_t *base, size_t stride,
                                              size_t shard_size);
NEURON_EXPORT int32_t neuron_rs8_decode_block(neuron_rs8 *codec, uint8_t *base, size_t stride, size_t shard_size,
                                              const uint32_t *lost, uint32_t lost_count);

/* Field arithmetic, for tests and tools: a * b, and the inverse of a (INV[0] = 0 by convention). */
NEURON_EXPORT uint8_t neuron_rs8_gf_mul(uint8_t a, uint8_t b);
NEURON_EXPORT uint8_t neuron_rs8_gf_inv(uint8_t a);

/* ===== GF(2^16) Reed–Solomon ===== */

/*
 * Systematic erasure code over GF(2^16) (polynomial 0x1002D, elements in Cantor-basis
 * coordinates) with O(n log n) encode and decode through the Lin–Chung–Han additive FFT over
 * the novel polynomial basis; MDS: any k of the k + m shards recover the block.
 *
 * Limits: 1 <= k, 1 <= m, k + m <= NEURON_RS16_MAX_SHARDS (65,535).
 * Shard size: a multiple of 64 bytes (NEURON_RS16_SHARD_ALIGN), at least 64 and at most the
 * codec's max_shard_size; anything else is NEURON_EINVAL.
 * Symbol layout inside a shard: 64-byte chunks; chunk c carries 32 symbols, byte j (j < 32) is
 * the low byte of symbol j and byte 32 + j its high byte. (Only encoder and decoder need to
 * agree on it; it is why shard sizes are multiples of 64.)
 *
 * Layout of the code (fixed per (k, m); m', k' the powers of two >= m, k): high rate (the usual
 * case) — parity shard j is the evaluation at point j, data shard i at point m' + i (points
 * m..m'-1 are never sent); low rate (k' < m') — data shard i at point i, parity shard j at
 * k' + j; when neither fits in the 65,536 points — data at i, parity at k + j.
 *
 * A codec holds the tables and the work area for one (k, m) and one maximum shard size:
 * N × max_shard_size bytes, N the power of two >= k + m' (high rate), k' + m (low rate) or
 * k + m, at most NEURON_RS16_MAX_WORK_BYTES. Encode/decode never allocate. One codec serves one
 * thread at a time; codecs are independent of each other. The field tables (about 11 MB) are
 * built once per process by the first neuron_rs16_create (tens of milliseconds).
 */
#define NEURON_RS16_MAX_SHARDS 65535u
#define NEURON_RS16_SHARD_ALIGN 64u
#define NEURON_RS16_MAX_WORK_BYTES (1ull << 30)

typedef struct neuron_rs16 neuron_rs16;

/*
 * Creates a codec for k data + m parity shards of up to max_shard_size bytes each and stores it
 * in *out. NEURON_EINVAL for k, m or max_shard_size out of range or a work area over the limit;
 * NEURON_ENOMEM when allocation fails; NEURON_EUNSUPPORTED if the field tables fail their
 * self-check. *out is untouched on error.
 */
NEURON_EXPORT int32_t neuron_rs16_create(uint32_t k, uint32_t m, size_t max_shard_size, neuron_rs16 **out);

/* Frees a codec (NULL is a no-op). */
NEURON_EXPORT void neuron_rs16_free(neuron_rs16 *codec);

/* Name of the kernels the codec runs: "gfni" (GFNI on 256-bit AVX registers, the default where
 * present), "avx2", "portable", or "gfni-avx512" when chosen (static string). */
NEURON_EXPORT const char *neuron_rs16_isa(const neuron_rs16 *codec);

/*
 * Makes the codec run the named kernels ("gfni-avx512", "gfni", "avx2" or "portable") instead of
 * the default (benchmarks, cross-checks). NEURON_EINVAL for an unknown name or NULL,
 * NEURON_EUNSUPPORTED when this CPU lacks the instructions. All kernels give identical bytes.
 */
NEURON_EXPORT int32_t neuron_rs16_set_isa(neuron_rs16 *codec, const char *name);

/* Size in bytes of the codec's work area (N × max_shard_size). */
NEURON_EXPORT uint64_t neuron_rs16_work_bytes(const neuron_rs16 *codec);

/*
 * Encodes one block: data[0..k) (k pointers to shard_size bytes each, read only) into
 * parity[0..m) (m pointers, written). Parity buffers must not overlap the data.
 * NEURON_EINVAL (nothing written) for a NULL codec/array/pointer or a bad shard_size.
 */
NEURON_EXPORT int32_t neuron_rs16_encode(neuron_rs16 *codec, const uint8_t *const *data, uint8_t *const *parity,
                                         size_t shard_size);

/*
 * Decodes one block in place. shards[0..k+m) points to every shard (data 0..k-1, then parity
 * 0..m-1), lost[0..lost_count) lists the indices whose content is missing; those shards are
 * rebuilt (data and parity alike), every other shard is read only. Shards must not overlap.
 * An erasure code: a shard passed as present must hold the bytes that were encoded.
 *   NEURON_EINVAL          NULL pointers, bad shard_size, an index >= k + m, a duplicate index,
 *                          or lost_count > k + m;
 *   NEURON_EUNRECOVERABLE  lost_count > m (no shard is written).
 * lost_count == 0 is a no-op success.
 */
NEURON_EXPORT int32_t neuron_rs16_decode(neuron_rs16 *codec, uint8_t *const *shards, const uint32_t *lost,
                                         uint32_t lost_count, size_t shard_size);

#ifdef __cplusplus
}
#endif
#endif /* NEURON_FEC_H */
