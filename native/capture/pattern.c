/* The moving test pattern with a burned-in frame counter, and a frame checksum. */
#include "lgmp.h"

#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define SQUARE 8u
#define BITS 32u

/* Rows [y0, y1) of the pattern for `counter`. */
void neuron_testpattern_rows(uint8_t *dst, uint32_t width, uint32_t pitch, uint32_t y0, uint32_t y1,
                             uint32_t counter);

/* One row of the pattern without the counter squares: B = x + 2c, G = y + c,
 * R = ((x >> 4) ^ (y >> 4)) * 16 + c, A = 0xff (all mod 256). */
static void pattern_row(uint8_t *row, uint32_t width, uint32_t y, uint32_t counter) {
    uint32_t g = (uint8_t)(y + counter), yb = y >> 4;
    for (uint32_t x = 0; x < width; x++) {
        uint32_t px = (uint8_t)(x + 2u * counter) | g << 8 | (uint32_t)(uint8_t)(((x >> 4) ^ yb) * 16u + counter) << 16 |
                      0xff000000u;
        memcpy(row + 4ull * x, &px, 4);
    }
}

/* A row of the same 16-row band as `tpl`: only G differs, so it is tpl with G replaced. */
static void pattern_row_from(uint8_t *row, const uint8_t *tpl, uint32_t width, uint32_t y, uint32_t counter) {
    uint32_t g = (uint32_t)(uint8_t)(y + counter) << 8;
    uint32_t x = 0;
#ifdef __SSE2__
    const __m128i keep = _mm_set1_epi32((int)0xffff00ffu), gv = _mm_set1_epi32((int)g);
    for (; x + 4 <= width; x += 4) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(tpl + 4ull * x));
        _mm_storeu_si128((__m128i *)(void *)(row + 4ull * x), _mm_or_si128(_mm_and_si128(v, keep), gv));
    }
#endif
    for (; x < width; x++) {
        uint32_t px;
        memcpy(&px, tpl + 4ull * x, 4);
        px = (px & 0xffff00ffu) | g;
        memcpy(row + 4ull * x, &px, 4);
    }
}

void neuron_testpattern_rows(uint8_t *dst, uint32_t width, uint32_t pitch, uint32_t y0, uint32_t y1,
                             uint32_t counter) {
    const uint8_t *tpl = NULL; /* the first row written of the current 16-row band */
    uint32_t tpl_band = 0;
    for (uint32_t y = y0; y < y1; y++) {
        uint8_t *row = dst + (uint64_t)(y - y0) * pitch;
        if (tpl && tpl_band == y >> 4) {
            pattern_row_from(row, tpl, width, y, counter);
        } else {
            pattern_row(row, width, y, counter);
            tpl = row;
            tpl_band = y >> 4;
        }
    }
    /* The counter squares last, so that no template row carries them. */
    for (uint32_t y = y0; y < y1 && y < SQUARE; y++) {
        uint8_t *row = dst + (uint64_t)(y - y0) * pitch;
        uint32_t n = width / SQUARE < BITS ? width / SQUARE : BITS;
        for (uint32_t i = 0; i < n; i++) {
            uint8_t v = (counter >> (BITS - 1 - i)) & 1u ? 0xff : 0x00;
            memset(row + 4ull * i * SQUARE, v, 4 * SQUARE);
            for (uint32_t k = 0; k < SQUARE; k++) row[4 * (i * SQUARE + k) + 3] = 0xff;
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
