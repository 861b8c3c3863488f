/* Adaptive FEC of lumen/1 (lumen.h, neuron_lumen_parity) and the codec cache. */
#include "internal.h"

#include <math.h>
#include <stdlib.h>

neuron_rs16 *lm_codec_get(lm_codec_cache *c, uint32_t k, uint32_t m) {
    unsigned victim = 0;
    for (unsigned i = 0; i < NEURON_LUMEN_CODEC_CACHE; i++) {
        if (c->e[i].codec && c->e[i].k == k && c->e[i].m == m) {
            c->e[i].used = ++c->clock;
            return c->e[i].codec;
        }
        if (c->e[i].codec == NULL || (c->e[victim].codec && c->e[i].used < c->e[victim].used)) victim = i;
    }
    neuron_rs16_free(c->e[victim].codec);
    c->e[victim].codec = NULL;
    neuron_rs16 *codec = NULL;
    if (neuron_rs16_create(k, m, c->shard_bytes, &codec) != NEURON_OK) return NULL;
    c->e[victim].k = k;
    c->e[victim].m = m;
    c->e[victim].used = ++c->clock;
    c->e[victim].codec = codec;
    return codec;
}

void lm_codec_clear(lm_codec_cache *c) {
    for (unsigned i = 0; i < NEURON_LUMEN_CODEC_CACHE; i++) {
        neuron_rs16_free(c->e[i].codec);
        c->e[i].codec = NULL;
    }
}

uint64_t lm_codec_bytes(const lm_codec_cache *c) {
    uint64_t b = 0;
    for (unsigned i = 0; i < NEURON_LUMEN_CODEC_CACHE; i++)
        if (c->e[i].codec) b += neuron_rs16_work_bytes(c->e[i].codec);
    return b;
}

#define TAIL_TARGET 1e-6
#define TAIL_Z 4.75 /* one-sided normal quantile of 1e-6 */

/* P[Binomial(n, p) > t], exact (log-space terms from t + 1 until they vanish). */
static double binom_tail(uint32_t n, double p, uint32_t t) {
    if (t >= n) return 0.0;
    const double lp = log(p), lq = log1p(-p), ln = lgamma((double)n + 1);
    double sum = 0.0;
    for (uint32_t x = t + 1; x <= n; x++) {
        double term = exp(ln - lgamma((double)x + 1) - lgamma((double)(n - x) + 1) + x * lp + (n - x) * lq);
        sum += term;
        if ((double)x > n * p && term < sum * 1e-9) break;
    }
    return sum;
}

/* 1 when m parity shards of k make a frame fail with probability under the target. */
static int parity_enough(uint32_t k, uint32_t m, double p, uint32_t burst) {
    const uint32_t units = (k + m + burst - 1) / burst + (burst > 1 ? 1 : 0);
    const uint32_t tolerated = m / burst;
    if (units <= 2048) return binom_tail(units, p, tolerated) < TAIL_TARGET;
    const double mean = units * p, sd = sqrt(units * p * (1 - p));
    return (double)tolerated >= mean + TAIL_Z * sd + 1;
}

int32_t neuron_lumen_parity(uint32_t k, uint32_t loss_ppm, uint32_t burst, uint32_t min_pct_x100,
                            uint32_t max_pct_x100) {
    if (k == 0 || k >= NEURON_LUMEN_MAX_SHARDS) return NEURON_EINVAL;
    if (burst == 0) burst = 1;
    if (burst > 64) burst = 64;
    if (loss_ppm > 900000) loss_ppm = 900000;
    if (max_pct_x100 > 10000) max_pct_x100 = 10000;
    if (min_pct_x100 > max_pct_x100) min_pct_x100 = max_pct_x100;
    uint64_t pct = (uint64_t)loss_ppm * 14 / 1000 + 100;
    if (pct < min_pct_x100) pct = min_pct_x100;
    if (pct > max_pct_x100) pct = max_pct_x100;
    const uint32_t cap = lm_max_parity(k);
    uint64_t m0 = ((uint64_t)k * pct + 9999) / 10000;
    if (m0 < 1) m0 = 1;
    if (m0 > cap) m0 = cap;
    if (loss_ppm == 0) return (int32_t)m0;
    const double p = loss_ppm / 1e6;
    if (parity_enough(k, (uint32_t)m0, p, burst)) return (int32_t)m0;
    if (!parity_enough(k, cap, p, burst)) return (int32_t)cap;
    uint32_t lo = (uint32_t)m0, hi = cap; /* lo not enough, hi enough */
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (parity_enough(k, mid, p, burst))
            hi = mid;
        else
            lo = mid;
    }
    return (int32_t)hi;
}
