/* AES-128 in GCM (batched), CBC (PKCS#7) and ECB (no padding) modes, on OpenSSL EVP. */
#include "../crypto.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

/* Two contexts holding the key schedule; re-initialised with a new IV per packet. */
struct neuron_aes_gcm {
    EVP_CIPHER_CTX *enc;
    EVP_CIPHER_CTX *dec;
};

struct neuron_aes_cbc {
    EVP_CIPHER_CTX *enc;
    EVP_CIPHER_CTX *dec;
};

/* Builds an encrypt + decrypt context pair for `cipher` with `key`. */
static int32_t ctx_pair(const EVP_CIPHER *cipher, const uint8_t *key, size_t key_len, EVP_CIPHER_CTX **enc,
                        EVP_CIPHER_CTX **dec) {
    *enc = NULL;
    *dec = NULL;
    if (key == NULL || key_len != NEURON_AES128_KEY_BYTES) return NEURON_EINVAL;
    *enc = EVP_CIPHER_CTX_new();
    *dec = EVP_CIPHER_CTX_new();
    if (*enc == NULL || *dec == NULL) goto nomem;
    if (EVP_EncryptInit_ex(*enc, cipher, NULL, key, NULL) != 1 ||
        EVP_DecryptInit_ex(*dec, cipher, NULL, key, NULL) != 1) {
        EVP_CIPHER_CTX_free(*enc);
        EVP_CIPHER_CTX_free(*dec);
        *enc = *dec = NULL;
        return NEURON_ECRYPTO;
    }
    return NEURON_OK;
nomem:
    EVP_CIPHER_CTX_free(*enc);
    EVP_CIPHER_CTX_free(*dec);
    *enc = *dec = NULL;
    return NEURON_ENOMEM;
}

int32_t neuron_aes_gcm_new(const uint8_t *key, size_t key_len, neuron_aes_gcm **out) {
    if (out == NULL) return NEURON_EINVAL;
    *out = NULL;
    neuron_aes_gcm *g = calloc(1, sizeof *g);
    if (g == NULL) return NEURON_ENOMEM;
    int32_t rc = ctx_pair(EVP_aes_128_gcm(), key, key_len, &g->enc, &g->dec);
    if (rc != NEURON_OK) {
        free(g);
        return rc;
    }
    *out = g;
    return NEURON_OK;
}

void neuron_aes_gcm_free(neuron_aes_gcm *g) {
    if (g == NULL) return;
    EVP_CIPHER_CTX_free(g->enc); /* frees cleanse the key schedule */
    EVP_CIPHER_CTX_free(g->dec);
    OPENSSL_cleanse(g, sizeof *g);
    free(g);
}

/* Whole-call validation shared by seal and open. */
static int32_t check_layout(const neuron_gcm_layout *l, uint32_t count, const uint8_t *in, const uint32_t *lens,
                            const uint8_t *out, const uint8_t *iv, const uint8_t *aad, const int32_t *status,
                            int opening) {
    if (l == NULL || l->reserved != 0) return NEURON_EINVAL;
    if (count > NEURON_GCM_MAX_BATCH) return NEURON_EINVAL;
    if (l->in_stride > NEURON_GCM_MAX_STRIDE || l->out_stride > NEURON_GCM_MAX_STRIDE ||
        l->ct_offset > NEURON_GCM_MAX_STRIDE || l->aad_len > NEURON_GCM_MAX_STRIDE ||
        l->aad_stride > NEURON_GCM_MAX_STRIDE || l->iv_stride > NEURON_GCM_MAX_STRIDE)
        return NEURON_EINVAL;
    if ((uint64_t)l->tag_offset + NEURON_GCM_TAG_BYTES > l->ct_offset) return NEURON_EINVAL;
    if (l->iv_offset < -1) return NEURON_EINVAL;
    if (l->iv_offset >= 0) {
        uint64_t ivo = (uint64_t)l->iv_offset;
        if (ivo + NEURON_GCM_IV_BYTES > l->ct_offset) return NEURON_EINVAL;
        /* IV and tag regions must not overlap */
        if (ivo < (uint64_t)l->tag_offset + NEURON_GCM_TAG_BYTES && l->tag_offset < ivo + NEURON_GCM_IV_BYTES)
            return NEURON_EINVAL;
    }
    switch (l->iv_mode) {
    case NEURON_GCM_IV_EXPLICIT:
        if (count > 1 && l->iv_stride < NEURON_GCM_IV_BYTES) return NEURON_EINVAL;
        /* fallthrough */
    case NEURON_GCM_IV_COUNTER32:
    case NEURON_GCM_IV_COUNTER64:
        if (count > 0 && iv == NULL) return NEURON_EINVAL;
        break;
    case NEURON_GCM_IV_IN_RECORD:
        if (!opening || l->iv_offset < 0) return NEURON_EINVAL;
        break;
    default: return NEURON_EINVAL;
    }
    if (l->aad_len > 0 && (aad == NULL || (l->aad_stride != 0 && l->aad_stride < l->aad_len))) return NEURON_EINVAL;
    if (count > 0 && (in == NULL || lens == NULL || out == NULL || status == NULL)) return NEURON_EINVAL;
    return NEURON_OK;
}

/* The IV of packet i (except IN_RECORD, handled by the caller). */
static void packet_iv(const neuron_gcm_layout *l, const uint8_t *iv, uint64_t counter, uint32_t i,
                      uint8_t dst[NEURON_GCM_IV_BYTES]) {
    if (l->iv_mode == NEURON_GCM_IV_EXPLICIT) {
        memcpy(dst, iv + (size_t)i * l->iv_stride, NEURON_GCM_IV_BYTES);
        return;
    }
    memcpy(dst, iv, NEURON_GCM_IV_BYTES);
    uint64_t c = counter + i;
    unsigned n = l->iv_mode == NEURON_GCM_IV_COUNTER64 ? 8 : 4;
    for (unsigned b = 0; b < n; b++) dst[b] = (uint8_t)(c >> (8 * b));
}

static const uint8_t *packet_aad(const neuron_gcm_layout *l, const uint8_t *aad, uint32_t i) {
    return aad + (size_t)i * l->aad_stride;
}

int32_t neuron_aes_gcm_seal_batch(neuron_aes_gcm *g, const neuron_gcm_layout *l, uint32_t count, const uint8_t *in,
                                  const uint32_t *lens, uint8_t *out, const uint8_t *iv, uint64_t counter,
                                  const uint8_t *aad, int32_t *status) {
    if (g == NULL) return NEURON_EINVAL;
    int32_t rc = check_layout(l, count, in, lens, out, iv, aad, status, 0);
    if (rc != NEURON_OK) return rc;
    int32_t sealed = 0;
    uint8_t ivb[NEURON_GCM_IV_BYTES];
    for (uint32_t i = 0; i < count; i++) {
        uint32_t len = lens[i];
        if (len > l->in_stride || (uint64_t)l->ct_offset + len > l->out_stride) {
            status[i] = NEURON_ERANGE;
            continue;
        }
        const uint8_t *pt = in + (size_t)i * l->in_stride;
        uint8_t *rec = out + (size_t)i * l->out_stride;
        packet_iv(l, iv, counter, i, ivb);
        int outl = 0;
        /* OSSL_PARAM get/set of the tag: the legacy ctrl() path costs a translation per call */
        OSSL_PARAM tagp[2] = {OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, rec + l->tag_offset,
                                                                NEURON_GCM_TAG_BYTES),
                              OSSL_PARAM_construct_end()};
        int ok = EVP_CipherInit_ex2(g->enc, NULL, NULL, ivb, 1, NULL) == 1;
        if (ok && l->aad_len > 0) ok = EVP_EncryptUpdate(g->enc, NULL, &outl, packet_aad(l, aad, i), (int)l->aad_len) == 1;
        if (ok && len > 0) ok = EVP_EncryptUpdate(g->enc, rec + l->ct_offset, &outl, pt, (int)len) == 1;
        int fin = 0;
        if (ok) ok = EVP_EncryptFinal_ex(g->enc, rec + l->ct_offset + (len > 0 ? outl : 0), &fin) == 1;
        if (ok) ok = EVP_CIPHER_CTX_get_params(g->enc, tagp) == 1;
        if (!ok) {
            status[i] = NEURON_ECRYPTO;
            continue;
        }
        if (l->iv_offset >= 0) memcpy(rec + l->iv_offset, ivb, NEURON_GCM_IV_BYTES);
        status[i] = NEURON_OK;
        sealed++;
    }
    return sealed;
}

int32_t neuron_aes_gcm_open_batch(neuron_aes_gcm *g, const neuron_gcm_layout *l, uint32_t count, const uint8_t *in,
                                  const uint32_t *lens, uint8_t *out, const uint8_t *iv, uint64_t counter,
                                  const uint8_t *aad, int32_t *status) {
    if (g == NULL) return NEURON_EINVAL;
    int32_t rc = check_layout(l, count, in, lens, out, iv, aad, status, 1);
    if (rc != NEURON_OK) return rc;
    int32_t opened = 0;
    uint8_t ivb[NEURON_GCM_IV_BYTES];
    uint8_t tag[NEURON_GCM_TAG_BYTES];
    for (uint32_t i = 0; i < count; i++) {
        uint32_t len = lens[i];
        if (len < l->ct_offset || len > l->in_stride) {
            status[i] = NEURON_EFORMAT;
            continue;
        }
        uint32_t ct_len = len - l->ct_offset;
        if (ct_len > l->out_stride) {
            status[i] = NEURON_ERANGE;
            continue;
        }
        const uint8_t *rec = in + (size_t)i * l->in_stride;
        uint8_t *pt = out + (size_t)i * l->out_stride;
        if (l->iv_mode == NEURON_GCM_IV_IN_RECORD)
            memcpy(ivb, rec + l->iv_offset, NEURON_GCM_IV_BYTES);
        else
            packet_iv(l, iv, counter, i, ivb);
        memcpy(tag, rec + l->tag_offset, NEURON_GCM_TAG_BYTES);
        int outl = 0;
        OSSL_PARAM tagp[2] = {OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag, NEURON_GCM_TAG_BYTES),
                              OSSL_PARAM_construct_end()};
        int ok = EVP_CipherInit_ex2(g->dec, NULL, NULL, ivb, 0, NULL) == 1;
        if (ok && l->aad_len > 0) ok = EVP_DecryptUpdate(g->dec, NULL, &outl, packet_aad(l, aad, i), (int)l->aad_len) == 1;
        if (ok && ct_len > 0) ok = EVP_DecryptUpdate(g->dec, pt, &outl, rec + l->ct_offset, (int)ct_len) == 1;
        if (ok) ok = EVP_CIPHER_CTX_set_params(g->dec, tagp) == 1;
        if (!ok) {
            if (ct_len > 0) OPENSSL_cleanse(pt, ct_len);
            status[i] = NEURON_ECRYPTO;
            continue;
        }
        int fin = 0;
        if (EVP_DecryptFinal_ex(g->dec, pt + (ct_len > 0 ? outl : 0), &fin) != 1) {
            if (ct_len > 0) OPENSSL_cleanse(pt, ct_len); /* never hand out unauthenticated plaintext */
            status[i] = NEURON_EAUTH;
            continue;
        }
        status[i] = NEURON_OK;
        opened++;
    }
    return opened;
}

/* ===== CBC ===== */

int32_t neuron_aes_cbc_new(const uint8_t *key, size_t key_len, neuron_aes_cbc **out) {
    if (out == NULL) return NEURON_EINVAL;
    *out = NULL;
    neuron_aes_cbc *c = calloc(1, sizeof *c);
    if (c == NULL) return NEURON_ENOMEM;
    int32_t rc = ctx_pair(EVP_aes_128_cbc(), key, key_len, &c->enc, &c->dec);
    if (rc != NEURON_OK) {
        free(c);
        return rc;
    }
    *out = c;
    return NEURON_OK;
}

void neuron_aes_cbc_free(neuron_aes_cbc *c) {
    if (c == NULL) return;
    EVP_CIPHER_CTX_free(c->enc);
    EVP_CIPHER_CTX_free(c->dec);
    OPENSSL_cleanse(c, sizeof *c);
    free(c);
}

int32_t neuron_aes_cbc_encrypt(neuron_aes_cbc *c, const uint8_t *iv, const uint8_t *in, size_t len, uint8_t *out,
                               size_t cap) {
    if (c == NULL || iv == NULL || out == NULL || (in == NULL && len > 0)) return NEURON_EINVAL;
    if (len > NEURON_CRYPTO_MAX_INPUT) return NEURON_EINVAL;
    size_t need = (len / NEURON_AES_BLOCK_BYTES + 1) * NEURON_AES_BLOCK_BYTES;
    if (cap < need) return NEURON_ERANGE;
    int outl = 0, fin = 0;
    if (EVP_EncryptInit_ex(c->enc, NULL, NULL, NULL, iv) != 1) return NEURON_ECRYPTO;
    if (len > 0 && EVP_EncryptUpdate(c->enc, out, &outl, in, (int)len) != 1) return NEURON_ECRYPTO;
    if (EVP_EncryptFinal_ex(c->enc, out + outl, &fin) != 1) return NEURON_ECRYPTO;
    return (int32_t)(outl + fin);
}

int32_t neuron_aes_cbc_decrypt(neuron_aes_cbc *c, const uint8_t *iv, const uint8_t *in, size_t len, uint8_t *out,
                               size_t cap) {
    if (c == NULL || iv == NULL || out == NULL || (in == NULL && len > 0)) return NEURON_EINVAL;
    if (len > NEURON_CRYPTO_MAX_INPUT) return NEURON_EINVAL;
    if (len == 0 || len % NEURON_AES_BLOCK_BYTES != 0) return NEURON_EFORMAT;
    if (cap < len) return NEURON_ERANGE;
    int outl = 0, fin = 0;
    if (EVP_DecryptInit_ex(c->dec, NULL, NULL, NULL, iv) != 1) return NEURON_ECRYPTO;
    if (EVP_DecryptUpdate(c->dec, out, &outl, in, (int)len) != 1) return NEURON_ECRYPTO;
    if (EVP_DecryptFinal_ex(c->dec, out + outl, &fin) != 1) {
        OPENSSL_cleanse(out, len);
        return NEURON_EFORMAT; /* bad padding */
    }
    return (int32_t)(outl + fin);
}

/* ===== ECB ===== */

static int32_t ecb(int enc, const uint8_t *key, size_t key_len, const uint8_t *in, size_t len, uint8_t *out) {
    if (key == NULL || key_len != NEURON_AES128_KEY_BYTES || out == NULL || (in == NULL && len > 0))
        return NEURON_EINVAL;
    if (len > NEURON_CRYPTO_MAX_INPUT || len % NEURON_AES_BLOCK_BYTES != 0) return NEURON_EINVAL;
    if (len == 0) return NEURON_OK;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL) return NEURON_ENOMEM;
    int outl = 0, fin = 0;
    int ok = EVP_CipherInit_ex(ctx, EVP_aes_128_ecb(), NULL, key, NULL, enc) == 1 &&
             EVP_CIPHER_CTX_set_padding(ctx, 0) == 1 && EVP_CipherUpdate(ctx, out, &outl, in, (int)len) == 1 &&
             EVP_CipherFinal_ex(ctx, out + outl, &fin) == 1;
    EVP_CIPHER_CTX_free(ctx);
    return ok ? NEURON_OK : NEURON_ECRYPTO;
}

int32_t neuron_aes_ecb_encrypt(const uint8_t *key, size_t key_len, const uint8_t *in, size_t len, uint8_t *out) {
    return ecb(1, key, key_len, in, len, out);
}

int32_t neuron_aes_ecb_decrypt(const uint8_t *key, size_t key_len, const uint8_t *in, size_t len, uint8_t *out) {
    return ecb(0, key, key_len, in, len, out);
}
