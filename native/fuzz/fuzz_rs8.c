/*
 * libFuzzer target for the GF(2^8) Reed–Solomon decoder: the input chooses the code shape, the
 * kernel, the shard size, the data and a raw (possibly hostile) list of lost shard indices.
 * Invariants checked: decode either restores the exact original block, or returns
 * NEURON_EINVAL / NEURON_EUNRECOVERABLE exactly when it must and leaves the block untouched.
 *
 *   make -C native fuzz && native/build/fuzz/fuzz_rs8 -max_total_time=60
 */
#include "../fec.h"

#include <stdlib.h>
#include <string.h>

#define REQUIRE(cond)                  \
    do {                               \
        if (!(cond)) __builtin_trap(); \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 6) return 0;
    const uint32_t k = 1 + data[0] % 220, m = 1 + data[1] % 64;
    const size_t shard = 1 + (((size_t)data[2] << 8 | data[3]) % 700);
    const uint32_t kernel = data[4] % 7; /* 6 = unknown id */
    uint32_t nlost = data[5];
    data += 6;
    size -= 6;

    neuron_rs8 *c = NULL;
    int32_t rc = neuron_rs8_create(k, m, kernel, &c);
    if (k + m > NEURON_RS8_MAX_SHARDS || kernel > NEURON_RS8_KERNEL_ISAL) {
        REQUIRE(rc == NEURON_EINVAL && c == NULL);
        return 0;
    }
    if (rc == NEURON_EUNSUPPORTED) return 0;
    REQUIRE(rc == NEURON_OK && c != NULL);

    const uint32_t n = k + m;
    uint32_t lost[256];
    if (nlost > size) nlost = (uint32_t)size;
    if (nlost > 256) nlost = 256;
    for (uint32_t i = 0; i < nlost; i++) lost[i] = data[i]; /* raw: may repeat or be >= n */
    data += nlost;
    size -= nlost;

    uint8_t *orig = malloc((size_t)n * shard), *work = malloc((size_t)n * shard), *damaged = malloc((size_t)n * shard);
    REQUIRE(orig && work && damaged);
    for (size_t i = 0; i < (size_t)k * shard; i++) orig[i] = size ? data[i % size] ^ (uint8_t)(i / size) : (uint8_t)i;
    REQUIRE(neuron_rs8_encode_block(c, orig, shard, shard) == NEURON_OK);

    memcpy(work, orig, (size_t)n * shard);
    uint8_t is_lost[256] = {0};
    int valid = nlost <= n;
    for (uint32_t i = 0; i < nlost; i++) {
        if (lost[i] >= n || is_lost[lost[i]]) {
            valid = 0;
            continue;
        }
        is_lost[lost[i]] = 1;
        memset(work + (size_t)lost[i] * shard, 0xcc, shard);
    }
    memcpy(damaged, work, (size_t)n * shard);

    rc = neuron_rs8_decode_block(c, work, shard, shard, lost, nlost);
    if (!valid) {
        REQUIRE(rc == NEURON_EINVAL);
        REQUIRE(memcmp(work, damaged, (size_t)n * shard) == 0);
    } else if (nlost > m) {
        REQUIRE(rc == NEURON_EUNRECOVERABLE);
        REQUIRE(memcmp(work, damaged, (size_t)n * shard) == 0);
    } else {
        REQUIRE(rc == NEURON_OK);
        REQUIRE(memcmp(work, orig, (size_t)n * shard) == 0);
    }
    neuron_rs8_destroy(c);
    free(orig);
    free(work);
    free(damaged);
    return 0;
}
