/*
 * rs16_gf.c — GF(2^16) arithmetic in Cantor-basis coordinates for the rs16 codec.
 * See rs16_internal.h for the representation.
 */
#include "rs16_internal.h"

#include "../neuron.h"

#include <pthread.h>
#include <stdlib.h>

#define RS16_POLY 0x1002Du

static uint16_t g_log[RS16_ORDER];
static uint16_t g_exp[2 * RS16_MODULUS + 1];
const uint16_t *const rs16_exp2 = g_exp;
const uint16_t *const rs16_logt = g_log;
static rs16_mt g_mt[RS16_MODULUS] __attribute__((aligned(64)));
static int g_status = NEURON_ENOMEM;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

/* Product in the polynomial basis through its own log tables. */
static uint16_t poly_mul(const uint16_t *plog, const uint16_t *pexp, uint16_t a, uint16_t b) {
    if (a == 0 || b == 0) return 0;
    return pexp[((uint32_t)plog[a] + plog[b]) % RS16_MODULUS];
}

static void build_mul_table(rs16_mt *t, uint32_t log) {
    t->log = log;
    uint16_t prod[16];
    for (unsigned b = 0; b < 16; b++) {
        uint32_t e = log + g_log[1u << b];
        prod[b] = g_exp[e >= RS16_MODULUS ? e - RS16_MODULUS : e];
    }
    for (unsigned j = 0; j < 4; j++) {
        uint16_t tab[16];
        tab[0] = 0;
        for (unsigned v = 1; v < 16; v++)
            tab[v] = (uint16_t)(tab[v & (v - 1)] ^ prod[4 * j + (unsigned)__builtin_ctz(v)]);
        for (unsigned v = 0; v < 16; v++) {
            t->lo[j][v] = (uint8_t)tab[v];
            t->hi[j][v] = (uint8_t)(tab[v] >> 8);
        }
    }
    /* aff[2*ho + hi_in]: output bits 8*ho.., input bits 8*hi_in.. */
    for (unsigned q = 0; q < 4; q++) {
        const unsigned out_base = (q >> 1) * 8, in_base = (q & 1) * 8;
        uint64_t a = 0;
        for (unsigned i = 0; i < 8; i++) {
            unsigned row = 0;
            for (unsigned b = 0; b < 8; b++) row |= ((prod[in_base + b] >> (out_base + i)) & 1u) << b;
            a |= (uint64_t)row << (8 * (7 - i));
        }
        t->aff[q] = a;
    }
}

static int build(void) {
    uint16_t *plog = malloc(RS16_ORDER * sizeof *plog);
    uint16_t *pexp = malloc(RS16_ORDER * sizeof *pexp);
    uint16_t *phi = malloc(RS16_ORDER * sizeof *phi);
    uint16_t *phi_inv = malloc(RS16_ORDER * sizeof *phi_inv);
    uint8_t *seen = calloc(RS16_ORDER, 1);
    int rc = NEURON_ENOMEM;
    if (!plog || !pexp || !phi || !phi_inv || !seen) goto out;
    rc = NEURON_EUNSUPPORTED; /* a table that fails its own consistency check */

    /* Polynomial-basis exp/log; the generator x must have order 65535. */
    uint32_t x = 1;
    for (uint32_t i = 0; i < RS16_MODULUS; i++) {
        if (seen[x]) goto out;
        seen[x] = 1;
        pexp[i] = (uint16_t)x;
        plog[x] = (uint16_t)i;
        x <<= 1;
        if (x & RS16_ORDER) x ^= RS16_POLY;
    }
    if (x != 1) goto out;
    pexp[RS16_MODULUS] = pexp[0];
    plog[0] = 0;

    /* Cantor basis: v_0 = 1, v_i a root of y^2 + y = v_{i-1}. y -> y^2 + y is GF(2)-linear:
     * tabulate it from its values on the 16 unit vectors (phi is free scratch here). */
    uint16_t v[16], unit[16];
    for (unsigned b = 0; b < 16; b++) {
        uint16_t y = (uint16_t)(1u << b);
        unit[b] = (uint16_t)(poly_mul(plog, pexp, y, y) ^ y);
    }
    phi[0] = 0;
    for (uint32_t y = 1; y < RS16_ORDER; y++) phi[y] = (uint16_t)(phi[y & (y - 1)] ^ unit[__builtin_ctz(y)]);
    v[0] = 1;
    for (unsigned i = 1; i < 16; i++) {
        v[i] = 0;
        for (uint32_t y = 2; y < RS16_ORDER; y++) {
            if (phi[y] == v[i - 1]) {
                v[i] = (uint16_t)y;
                break;
            }
        }
        if (v[i] == 0) goto out;
    }

    /* phi: Cantor coordinates -> polynomial basis; must be a bijection. */
    for (uint32_t i = 0; i < RS16_ORDER; i++) seen[i] = 0;
    phi[0] = 0;
    for (uint32_t u = 1; u < RS16_ORDER; u++)
        phi[u] = (uint16_t)(phi[u & (u - 1)] ^ v[__builtin_ctz(u)]);
    for (uint32_t u = 0; u < RS16_ORDER; u++) {
        if (seen[phi[u]]) goto out;
        seen[phi[u]] = 1;
        phi_inv[phi[u]] = (uint16_t)u;
    }

    g_log[0] = 0;
    for (uint32_t u = 1; u < RS16_ORDER; u++) g_log[u] = plog[phi[u]];
    for (uint32_t e = 0; e < RS16_MODULUS; e++) g_exp[e] = phi_inv[pexp[e]];
    for (uint32_t e = RS16_MODULUS; e < 2 * RS16_MODULUS + 1; e++) g_exp[e] = g_exp[e - RS16_MODULUS];

    for (uint32_t l = 0; l < RS16_MODULUS; l++) build_mul_table(&g_mt[l], l);
    rc = NEURON_OK;
out:
    free(plog);
    free(pexp);
    free(phi);
    free(phi_inv);
    free(seen);
    return rc;
}

static void init_once(void) { g_status = build(); }

int rs16_field_init(void) {
    pthread_once(&g_once, init_once);
    return g_status;
}

uint16_t rs16_log_of(uint16_t a) { return g_log[a]; }

uint16_t rs16_exp_of(uint32_t e) { return g_exp[e % RS16_ORDER]; /* e = 65535 → g_exp[65535] = 1 */ }

uint16_t rs16_mul(uint16_t a, uint16_t b) {
    if (a == 0 || b == 0) return 0;
    return g_exp[((uint32_t)g_log[a] + g_log[b]) % RS16_MODULUS];
}

const rs16_mt *rs16_mul_table(uint32_t log) { return &g_mt[log % RS16_MODULUS]; }
