/* The moving test pattern with a burned-in frame counter, and a frame checksum. */
#include "lgmp.h"

#include <string.h>

#define SQUARE 8u
#define BITS 32u

/* Rows [y0, y1) of the pattern for `counter`. */
void neuron_testpattern_rows(uint8_t *dst, uint32_t width, uint32_t pitch, uint32_t y0, uint32_t y1,
                             uint32_t counter);

void neuron_testpattern_rows(uint8_t *dst, uint32_t width, uint32_t pitch, uint32_t y0, uint32_t y1,
                             uint32_t counter) {
    for (uint32_t y = y0; y < y1; y++) {
        uint8_t *row = dst + (uint64_t)(y - y0) * pitch;
        uint8_t g = (uint8_t)(y + counter);
        uint32_t yb = y >> 4;
        for (uint32_t x = 0; x < width; x++) {
            row[4 * x + 0] = (uint8_t)(x + 2u * counter);
            row[4 * x + 1] = g;
            row[4 * x + 2] = (uint8_t)(((x >> 4) ^ yb) * 16u + counter);
            row[4 * x + 3] = 0xff;
        }
        if (y < SQUARE) {
            uint32_t n = width / SQUARE < BITS ? width / SQUARE : BITS;
            for (uint32_t i = 0; i < n; i++) {
                uint8_t v = (counter >> (BITS - 1 - i)) & 1u ? 0xff : 0x00;
                memset(row + 4ull * i * SQUARE, v, 4 * SQUARE);
                for (uint32_t k = 0; k < SQUARE; k++) row[4 * (i * SQUARE + k) + 3] = 0xff;
            }
        }
    }
}

void neuron_testpattern_fill(uint8_t *dst, uint32_t width, uint32_t height, uint32_t pitch, uint32_t counter) {
    if (!dst || pitch < width * 4u) return;
    neuron_testpattern_rows(dst, width, pitch, 0, height, counter);
}

uint32_t neuron_testpattern_counter(const uint8_t *src, uint32_t width, uint32_t height, uint32_t pitch) {
    if (!src || height < SQUARE || width < SQUARE * BITS || pitch < width * 4u) return 0;
    uint32_t v = 0;
    for (uint32_t i = 0; i < BITS; i++) {
        /* Centre pixel of the square, green channel: robust to chroma loss. */
        const uint8_t *p = src + (uint64_t)(SQUARE / 2) * pitch + 4ull * (i * SQUARE + SQUARE / 2);
        v = (v << 1) | (p[1] >= 128 ? 1u : 0u);
    }
    return v;
}

uint64_t neuron_checksum64(const uint8_t *data, uint64_t len) {
    uint64_t h = 0xcbf29ce484222325ull;
    if (!data) return h;
    for (uint64_t i = 0; i < len; i++) {
        h ^= data[i];
        h *= 0x100000001b3ull;
    }
    return h;
}
