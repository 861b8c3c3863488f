/* Internal pieces shared by the lumen/1 sender and receiver (../lumen.h). */
#ifndef NEURON_LUMEN_INTERNAL_H
#define NEURON_LUMEN_INTERNAL_H
#include "../fec.h"
#include "../lumen.h"

#include <string.h>

static inline void lm_put16(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void lm_put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline void lm_put64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint32_t lm_get16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static inline uint32_t lm_get32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t lm_get64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* The 12-byte nonce of a datagram: salt ‖ LE64 seq. */
static inline void lm_nonce(uint8_t out[12], const uint8_t salt[4], uint64_t seq) {
    memcpy(out, salt, 4);
    lm_put64(out + 4, seq);
}

/* Largest parity count the protocol allows for k data shards. */
static inline uint32_t lm_max_parity(uint32_t k) {
    uint64_t m = (uint64_t)k / 2 + NEURON_LUMEN_PARITY_SLACK;
    if ((uint64_t)k + m > NEURON_LUMEN_MAX_SHARDS) m = NEURON_LUMEN_MAX_SHARDS - k;
    return (uint32_t)m;
}

/* A small cache of RS16 codecs keyed by (k, m), least recently used evicted first. */
typedef struct lm_codec_cache {
    struct {
        uint32_t k, m;
        uint64_t used;
        neuron_rs16 *codec;
    } e[NEURON_LUMEN_CODEC_CACHE];
    uint64_t clock;
    size_t shard_bytes;
} lm_codec_cache;

neuron_rs16 *lm_codec_get(lm_codec_cache *c, uint32_t k, uint32_t m);
void lm_codec_clear(lm_codec_cache *c);
uint64_t lm_codec_bytes(const lm_codec_cache *c);

#endif
