/*
 * libFuzzer target for the access-unit tidying (encode/au_tidy.h): byte 0 picks the codec and
 * whether the unit is an IDR, the rest is the Annex-B unit. Checked on every output: no SEI or
 * AUD NAL is left; an IDR that had (or was given) parameter sets starts with them in order,
 * then no parameter set follows; the unit only shrinks, except by the parameter sets added.
 *   make -C native fuzz && native/build/fuzz/fuzz_au_tidy -max_total_time=60
 */
#include "../encode/au_tidy.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int type_of(int hevc, uint8_t h) { return hevc ? (h >> 1) & 0x3f : h & 0x1f; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static neuron_au_tidy t[2];
    static int ready;
    if (!ready) {
        neuron_au_tidy_init(&t[0], 0);
        neuron_au_tidy_init(&t[1], 1);
        ready = 1;
    }
    if (size < 1) return 0;
    const int hevc = data[0] & 1, idr = (data[0] >> 1) & 1;
    const size_t len = size - 1;
    const size_t cap = len + 4096;
    uint8_t *au = malloc(cap ? cap : 1);
    if (!au) return 0;
    memcpy(au, data + 1, len);
    neuron_au_tidy *tt = &t[hevc];
    const size_t ps_before = tt->ps_len;
    int64_t n = neuron_au_tidy_run(tt, au, len, cap, idr);
    if (n == -1) {
        free(au);
        return 0;
    }
    if (n < 0 || (size_t)n > len + (ps_before > tt->ps_len ? ps_before : tt->ps_len) + 1) abort();
    int seen_other = 0, rank = -1;
    for (int64_t i = 0; i + 3 < n; i++) {
        if (au[i] != 0 || au[i + 1] != 0 || au[i + 2] != 1) continue;
        int ty = type_of(hevc, au[i + 3]);
        if (hevc ? ty == 35 || ty == 39 || ty == 40 : ty == 6 || ty == 9) abort();
        int ps = hevc ? ty >= 32 && ty <= 34 : ty == 7 || ty == 8;
        if (idr && ps) {
            int r = hevc ? ty - 32 : ty - 7;
            if (seen_other || r < rank) abort(); /* parameter sets first, ranked */
            rank = r;
        } else {
            seen_other = 1;
        }
        i += 2;
    }
    free(au);
    return 0;
}
