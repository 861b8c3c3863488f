/*
 * rs16_kernels_256.h — the four 256-bit shard loops (mul, muladd, fft, ifft), written once for each
 * multiply implementation. Included by rs16_kernels.c with, defined before:
 *   K_NAME(x)   names a kernel (e.g. a_##x)      K_ATTR   the target attribute
 *   K_TAB       the multiplier's register table  K_LOAD   loads it from an rs16_mt
 *   K_MUL       (pl, ph) = c·(xl, xh) for one 64-byte chunk
 * and LD/ST, a_xor (the plain 256-bit XOR) in scope. Not a public header.
 */

K_ATTR static void K_NAME(mul)(uint8_t *dst, const uint8_t *src, const rs16_mt *t, size_t bytes) {
    if (!t) {
        memset(dst, 0, bytes);
        return;
    }
    K_TAB r;
    K_LOAD(&r, t);
    for (size_t c = 0; c < bytes; c += 64) {
        __m256i pl, ph;
        K_MUL(&r, LD(src + c), LD(src + c + 32), &pl, &ph);
        ST(dst + c, pl);
        ST(dst + c + 32, ph);
    }
}

K_ATTR static void K_NAME(muladd)(uint8_t *dst, const uint8_t *src, const rs16_mt *t, size_t bytes) {
    if (!t) return;
    K_TAB r;
    K_LOAD(&r, t);
    for (size_t c = 0; c < bytes; c += 64) {
        __m256i pl, ph;
        K_MUL(&r, LD(src + c), LD(src + c + 32), &pl, &ph);
        ST(dst + c, _mm256_xor_si256(LD(dst + c), pl));
        ST(dst + c + 32, _mm256_xor_si256(LD(dst + c + 32), ph));
    }
}

K_ATTR static void K_NAME(fft)(uint8_t *a, uint8_t *b, const rs16_mt *t, size_t bytes) {
    if (!t) {
        a_xor(b, a, bytes);
        return;
    }
    K_TAB r;
    K_LOAD(&r, t);
    for (size_t c = 0; c < bytes; c += 64) {
        __m256i bl = LD(b + c), bh = LD(b + c + 32), pl, ph;
        K_MUL(&r, bl, bh, &pl, &ph);
        __m256i al = _mm256_xor_si256(LD(a + c), pl), ah = _mm256_xor_si256(LD(a + c + 32), ph);
        ST(a + c, al);
        ST(a + c + 32, ah);
        ST(b + c, _mm256_xor_si256(bl, al));
        ST(b + c + 32, _mm256_xor_si256(bh, ah));
    }
}

K_ATTR static void K_NAME(ifft)(uint8_t *oa, uint8_t *ob, const uint8_t *ia, const uint8_t *ib, const rs16_mt *t,
                                size_t bytes) {
    K_TAB r;
    if (t) K_LOAD(&r, t);
    for (size_t c = 0; c < bytes; c += 64) {
        __m256i al = LD(ia + c), ah = LD(ia + c + 32);
        __m256i bl = al, bh = ah;
        if (ib) {
            bl = _mm256_xor_si256(bl, LD(ib + c));
            bh = _mm256_xor_si256(bh, LD(ib + c + 32));
        }
        if (t) {
            __m256i pl, ph;
            K_MUL(&r, bl, bh, &pl, &ph);
            al = _mm256_xor_si256(al, pl);
            ah = _mm256_xor_si256(ah, ph);
        }
        ST(ob + c, bl);
        ST(ob + c + 32, bh);
        ST(oa + c, al);
        ST(oa + c + 32, ah);
    }
}

#undef K_NAME
#undef K_ATTR
#undef K_TAB
#undef K_LOAD
#undef K_MUL
