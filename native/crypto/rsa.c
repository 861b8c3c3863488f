/* RSA key pairs: generation, PEM in/out, PKCS#1 v1.5 SHA-256 signatures (OpenSSL EVP). */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

int neuron_pem_no_password(char *buf, int size, int rwflag, void *u) {
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

int32_t neuron_bio_copy(BIO *bio, uint8_t *out, size_t cap) {
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    if (n <= 0 || data == NULL) return NEURON_ECRYPTO;
    if (n > INT32_MAX) return NEURON_ERANGE;
    if (out == NULL || (size_t)n > cap) return NEURON_ERANGE;
    memcpy(out, data, (size_t)n);
    return (int32_t)n;
}

static int32_t wrap_key(EVP_PKEY *pkey, neuron_rsa **out) {
    neuron_rsa *k = calloc(1, sizeof *k);
    if (k == NULL) {
        EVP_PKEY_free(pkey);
        return NEURON_ENOMEM;
    }
    k->pkey = pkey;
    *out = k;
    return NEURON_OK;
}

int32_t neuron_rsa_generate(uint32_t bits, neuron_rsa **out) {
    if (out == NULL) return NEURON_EINVAL;
    *out = NULL;
    if (bits != 2048 && bits != 3072 && bits != 4096) return NEURON_EINVAL;
    EVP_PKEY *pkey = NULL;
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_id(EVP_PKEY_RSA, NULL);
    int ok = pc != NULL && EVP_PKEY_keygen_init(pc) == 1 && EVP_PKEY_CTX_set_rsa_keygen_bits(pc, (int)bits) == 1 &&
             EVP_PKEY_keygen(pc, &pkey) == 1;
    EVP_PKEY_CTX_free(pc);
    if (!ok) {
        EVP_PKEY_free(pkey);
        ERR_clear_error();
        return NEURON_ECRYPTO;
    }
    return wrap_key(pkey, out);
}

int32_t neuron_rsa_from_private(const uint8_t *data, size_t len, neuron_rsa **out) {
    if (out == NULL) return NEURON_EINVAL;
    *out = NULL;
    if (data == NULL || len == 0 || len > NEURON_CRYPTO_MAX_INPUT) return NEURON_EINVAL;
    EVP_PKEY *pkey = NULL;
    if (memmem(data, len, "-----BEGIN", 10) != NULL) {
        BIO *bio = BIO_new_mem_buf(data, (int)len);
        if (bio == NULL) return NEURON_ENOMEM;
        pkey = PEM_read_bio_PrivateKey(bio, NULL, neuron_pem_no_password, NULL);
        BIO_free(bio);
    } else {
        const unsigned char *p = data;
        pkey = d2i_AutoPrivateKey(NULL, &p, (long)len);
        if (pkey != NULL && p != data + len) {
            EVP_PKEY_free(pkey);
            pkey = NULL;
        }
    }
    ERR_clear_error();
    if (pkey == NULL) return NEURON_EFORMAT;
    int bits = EVP_PKEY_get_bits(pkey);
    if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA || bits < 2048 || bits > 4096) {
        EVP_PKEY_free(pkey);
        return NEURON_EUNSUPPORTED;
    }
    return wrap_key(pkey, out);
}

void neuron_rsa_free(neuron_rsa *k) {
    if (k == NULL) return;
    EVP_PKEY_free(k->pkey); /* RSA private components are BN_clear_free'd */
    OPENSSL_cleanse(k, sizeof *k);
    free(k);
}

int32_t neuron_rsa_bits(const neuron_rsa *k) {
    if (k == NULL) return NEURON_EINVAL;
    return (int32_t)EVP_PKEY_get_bits(k->pkey);
}

int32_t neuron_rsa_private_pem(const neuron_rsa *k, uint8_t *out, size_t cap) {
    if (k == NULL || out == NULL) return NEURON_EINVAL;
    BIO *bio = BIO_new(BIO_s_secmem()); /* cleansed on free */
    if (bio == NULL) return NEURON_ENOMEM;
    int32_t rc = PEM_write_bio_PrivateKey(bio, k->pkey, NULL, NULL, 0, NULL, NULL) == 1 ? neuron_bio_copy(bio, out, cap)
                                                                                     : NEURON_ECRYPTO;
    BIO_free(bio);
    ERR_clear_error();
    return rc;
}

int32_t neuron_rsa_public_pem(const neuron_rsa *k, uint8_t *out, size_t cap) {
    if (k == NULL || out == NULL) return NEURON_EINVAL;
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL) return NEURON_ENOMEM;
    int32_t rc = PEM_write_bio_PUBKEY(bio, k->pkey) == 1 ? neuron_bio_copy(bio, out, cap) : NEURON_ECRYPTO;
    BIO_free(bio);
    ERR_clear_error();
    return rc;
}

int32_t neuron_rsa_sign_sha256(const neuron_rsa *k, const uint8_t *data, size_t len, uint8_t *sig, size_t cap) {
    if (k == NULL || sig == NULL || (data == NULL && len > 0)) return NEURON_EINVAL;
    static const uint8_t empty = 0;
    size_t need = (size_t)EVP_PKEY_get_size(k->pkey);
    if (cap < need) return NEURON_ERANGE;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (md == NULL) return NEURON_ENOMEM;
    size_t siglen = cap;
    EVP_PKEY_CTX *pc = NULL;
    int ok = EVP_DigestSignInit(md, &pc, EVP_sha256(), NULL, k->pkey) == 1 &&
             EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PADDING) == 1 &&
             EVP_DigestSign(md, sig, &siglen, data ? data : &empty, len) == 1;
    EVP_MD_CTX_free(md);
    ERR_clear_error();
    return ok ? (int32_t)siglen : NEURON_ECRYPTO;
}

int32_t neuron_pkey_verify_sha256(EVP_PKEY *pkey, const uint8_t *data, size_t len, const uint8_t *sig,
                                  size_t sig_len) {
    static const uint8_t empty = 0;
    if ((data == NULL && len > 0) || (sig == NULL && sig_len > 0)) return NEURON_EINVAL;
    if (sig_len != (size_t)EVP_PKEY_get_size(pkey)) return NEURON_EAUTH;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (md == NULL) return NEURON_ENOMEM;
    EVP_PKEY_CTX *pc = NULL;
    int ok = EVP_DigestVerifyInit(md, &pc, EVP_sha256(), NULL, pkey) == 1 &&
             EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PADDING) == 1 &&
             EVP_DigestVerify(md, sig, sig_len, data ? data : &empty, len) == 1;
    EVP_MD_CTX_free(md);
    ERR_clear_error();
    return ok ? NEURON_OK : NEURON_EAUTH;
}

int32_t neuron_rsa_verify_sha256(const neuron_rsa *k, const uint8_t *data, size_t len, const uint8_t *sig,
                                 size_t sig_len) {
    if (k == NULL) return NEURON_EINVAL;
    return neuron_pkey_verify_sha256(k->pkey, data, len, sig, sig_len);
}
