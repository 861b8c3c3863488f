/* The process's malloc policy for large buffers (../neuron.h, neuron_mmap_threshold). */
#include "../neuron.h"

#include <malloc.h>

#define MMAP_THRESHOLD (1u << 20)

static uint32_t threshold;

/*
 * glibc raises its mmap threshold to the size of every mmapped block freed (up to 32 MiB), so
 * after the first stream session ends, the next session's ring slots, frame buffers and encoder
 * planes (1-8 MiB each) come from the malloc arenas instead, and stay resident when freed: RSS
 * grew by ~4 MiB per back-to-back 1080p session. A fixed threshold keeps every block of 1 MiB or
 * more in its own mapping, returned to the system when freed. Set once when the library loads.
 */
__attribute__((constructor)) static void set_malloc_policy(void) {
    if (mallopt(M_MMAP_THRESHOLD, (int)MMAP_THRESHOLD) == 1) threshold = MMAP_THRESHOLD;
}

uint32_t neuron_mmap_threshold(void) { return threshold; }
