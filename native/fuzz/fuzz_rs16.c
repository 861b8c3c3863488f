/*
 * libFuzzer target for the GF(2^16) decoder (`make -C native fuzz`, then
 * build/fuzz/fuzz_rs16 -max_total_time=60).
 *
 * Input: byte 0 → k (1..64), byte 1 → m (1..32), byte 2 → shard size (64..256), byte 3 → how
 * many lost indices follow, then 2 bytes per index (taken as is: out of range and duplicate
 * indices are part of the input space), then shard content. The block is encoded from the
 * content, the listed shards are wiped and decode is called: it must either refuse
 * (EINVAL/EUNRECOVERABLE, block unchanged) or restore every byte exactly.
 */
#include "../fec.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t len) {
    if (len < 4) return 0;
    const uint32_t k = 1u + in[0] % 64u, m = 1u + in[1] % 32u, total = k + m;
    const size_t size = 64u * (1u + in[2] % 4u);
    uint32_t nlost = in[3];
    in += 4;
    len -= 4;
    if ((size_t)nlost * 2 > len) nlost = (uint32_t)(len / 2);
    uint32_t lost[256];
    for (uint32_t i = 0; i < nlost; i++) {
        uint32_t v = (uint32_t)in[2 * i] | (uint32_t)in[2 * i + 1] << 8;
        lost[i] = v % 1024u < 1000u ? v % (total + 2u) : v; /* mostly near range, sometimes wild */
    }
    in += 2 * nlost;
    len -= 2 * nlost;

    neuron_rs16 *c = NULL;
    if (neuron_rs16_create(k, m, size, &c) != NEURON_OK) abort();
    uint8_t *mem = calloc(total, size), *orig = malloc(total * size);
    uint8_t *ptrs[96];
    for (uint32_t i = 0; i < total; i++) ptrs[i] = mem + (size_t)i * size;
    memcpy(mem, in, len < k * size ? len : k * size);
    if (neuron_rs16_encode(c, (const uint8_t *const *)ptrs, ptrs + k, size) != NEURON_OK) abort();
    memcpy(orig, mem, total * size);

    int valid = 1;
    for (uint32_t i = 0; i < nlost && valid; i++) {
        if (lost[i] >= total) valid = 0;
        for (uint32_t j = 0; j < i; j++)
            if (lost[j] == lost[i]) valid = 0;
    }
    if (valid)
        for (uint32_t i = 0; i < nlost; i++) memset(ptrs[lost[i]], 0xEE, size);
    uint8_t *before = malloc(total * size);
    memcpy(before, mem, total * size);
    int32_t rc = neuron_rs16_decode(c, ptrs, lost, nlost, size);
    if (!valid) {
        if (rc != NEURON_EINVAL || memcmp(mem, before, total * size) != 0) abort();
    } else if (nlost > m) {
        if (rc != NEURON_EUNRECOVERABLE || memcmp(mem, before, total * size) != 0) abort();
    } else if (rc != NEURON_OK || memcmp(mem, orig, total * size) != 0) {
        abort();
    }
    free(before);
    free(mem);
    free(orig);
    neuron_rs16_free(c);
    return 0;
}
