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

/* ===== GF(2^16) Reed–Solomon ===== */

#ifdef __cplusplus
}
#endif
#endif /* NEURON_FEC_H */
