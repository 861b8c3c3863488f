/* X.509 certificates: self-signed creation, PEM/DER parsing and output, signature bytes,
 * fingerprint, verification with the certificate's key (OpenSSL). */
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

struct neuron_cert {
    X509 *x509;
};

/* 1950-01-01T00:00:00Z .. 9999-12-31T23:59:59Z: what UTCTime/GeneralizedTime can carry. */
#define CERT_TIME_MIN (-631152000LL)
#define CERT_TIME_MAX 253402300799LL
#define CERT_CN_MAX 64u

static int32_t wrap_cert(X509 *x, neuron_cert **out) {
    neuron_cert *c = calloc(1, sizeof *c);
    if (c == NULL) {
        X509_free(x);
        return NEURON_ENOMEM;
    }
    c->x509 = x;
    *out = c;
    return NEURON_OK;
}

int32_t neuron_cert_create(const neuron_rsa *key, const uint8_t *cn, size_t cn_len, uint64_t serial,
                           int64_t not_before, int64_t not_after, neuron_cert **out) {
    if (out == NULL) return NEURON_EINVAL;
    *out = NULL;
    if (key == NULL || cn == NULL || cn_len == 0 || cn_len > CERT_CN_MAX || memchr(cn, 0, cn_len) != NULL)
        return NEURON_EINVAL;
    if (not_before > not_after || not_before < CERT_TIME_MIN || not_after > CERT_TIME_MAX) return NEURON_EINVAL;
    X509 *x = X509_new();
    if (x == NULL) return NEURON_ENOMEM;
    X509_NAME *name = X509_NAME_new();
    int ok = name != NULL && X509_set_version(x, 2) == 1 &&
             ASN1_INTEGER_set_uint64(X509_get_serialNumber(x), serial) == 1 &&
             ASN1_TIME_set(X509_getm_notBefore(x), (time_t)not_before) != NULL &&
             ASN1_TIME_set(X509_getm_notAfter(x), (time_t)not_after) != NULL &&
             X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, cn, (int)cn_len, -1, 0) == 1 &&
             X509_set_subject_name(x, name) == 1 && X509_set_issuer_name(x, name) == 1 &&
             X509_set_pubkey(x, key->pkey) == 1 && X509_sign(x, key->pkey, EVP_sha256()) > 0;
    X509_NAME_free(name);
    ERR_clear_error();
    if (!ok) {
        X509_free(x);
        /* the only input-dependent failure left is a CN that is not valid UTF-8 */
        return NEURON_EINVAL;
    }
    return wrap_cert(x, out);
}

int32_t neuron_cert_parse(const uint8_t *data, size_t len, neuron_cert **out) {
    if (out == NULL) return NEURON_EINVAL;
    *out = NULL;
    if (data == NULL || len == 0 || len > NEURON_CRYPTO_MAX_INPUT) return NEURON_EINVAL;
    X509 *x = NULL;
    if (memmem(data, len, "-----BEGIN", 10) != NULL) {
        BIO *bio = BIO_new_mem_buf(data, (int)len);
        if (bio == NULL) return NEURON_ENOMEM;
        x = PEM_read_bio_X509(bio, NULL, neuron_pem_no_password, NULL);
        BIO_free(bio);
    } else {
        const unsigned char *p = data;
        x = d2i_X509(NULL, &p, (long)len);
        if (x != NULL && p != data + len) { /* trailing bytes: not one DER certificate */
            X509_free(x);
            x = NULL;
        }
    }
    ERR_clear_error();
    if (x == NULL) return NEURON_EFORMAT;
    return wrap_cert(x, out);
}

void neuron_cert_free(neuron_cert *c) {
    if (c == NULL) return;
    X509_free(c->x509);
    OPENSSL_cleanse(c, sizeof *c);
    free(c);
}

int32_t neuron_cert_to_pem(const neuron_cert *c, uint8_t *out, size_t cap) {
    if (c == NULL || out == NULL) return NEURON_EINVAL;
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL) return NEURON_ENOMEM;
    int32_t rc = PEM_write_bio_X509(bio, c->x509) == 1 ? neuron_bio_copy(bio, out, cap) : NEURON_ECRYPTO;
    BIO_free(bio);
    ERR_clear_error();
    return rc;
}

int32_t neuron_cert_to_der(const neuron_cert *c, uint8_t *out, size_t cap) {
    if (c == NULL || out == NULL) return NEURON_EINVAL;
    int n = i2d_X509(c->x509, NULL);
    if (n <= 0) return NEURON_ECRYPTO;
    if ((size_t)n > cap) return NEURON_ERANGE;
    unsigned char *p = out;
    if (i2d_X509(c->x509, &p) != n) return NEURON_ECRYPTO;
    return n;
}

int32_t neuron_cert_signature(const neuron_cert *c, uint8_t *out, size_t cap) {
    if (c == NULL || out == NULL) return NEURON_EINVAL;
    const ASN1_BIT_STRING *sig = NULL;
    const X509_ALGOR *alg = NULL;
    X509_get0_signature(&sig, &alg, c->x509);
    if (sig == NULL) return NEURON_EFORMAT;
    int n = ASN1_STRING_length(sig);
    if (n < 0) return NEURON_EFORMAT;
    if ((size_t)n > cap) return NEURON_ERANGE;
    if (n > 0) memcpy(out, ASN1_STRING_get0_data(sig), (size_t)n);
    return n;
}

int32_t neuron_cert_fingerprint_sha256(const neuron_cert *c, uint8_t *out) {
    if (c == NULL || out == NULL) return NEURON_EINVAL;
    unsigned char *der = NULL;
    int n = i2d_X509(c->x509, &der);
    if (n <= 0) return NEURON_ECRYPTO;
    int32_t rc = neuron_sha256(der, (size_t)n, out);
    OPENSSL_free(der);
    return rc;
}

int32_t neuron_cert_serial(const neuron_cert *c, uint8_t *out, size_t cap) {
    if (c == NULL || out == NULL) return NEURON_EINVAL;
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(c->x509), NULL);
    if (bn == NULL) return NEURON_EFORMAT;
    int32_t rc;
    if (BN_is_negative(bn)) {
        rc = NEURON_EFORMAT;
    } else if (BN_is_zero(bn)) {
        rc = cap >= 1 ? (out[0] = 0, 1) : NEURON_ERANGE;
    } else {
        int n = BN_num_bytes(bn);
        rc = (size_t)n > cap ? NEURON_ERANGE : BN_bn2bin(bn, out);
    }
    BN_free(bn);
    return rc;
}

int32_t neuron_cert_subject_cn(const neuron_cert *c, uint8_t *out, size_t cap) {
    if (c == NULL || out == NULL) return NEURON_EINVAL;
    const X509_NAME *name = X509_get_subject_name(c->x509);
    int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    if (idx < 0) return NEURON_EFORMAT;
    const ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
    unsigned char *utf8 = NULL;
    int n = ASN1_STRING_to_UTF8(&utf8, s);
    ERR_clear_error();
    if (n < 0) return NEURON_EFORMAT;
    int32_t rc = (size_t)n > cap ? NEURON_ERANGE : (memcpy(out, utf8, (size_t)n), n);
    OPENSSL_free(utf8);
    return rc;
}

static int asn1_to_unix(const ASN1_TIME *t, int64_t *out) {
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1) return 0;
    *out = (int64_t)timegm(&tm);
    return 1;
}

int32_t neuron_cert_validity(const neuron_cert *c, int64_t *not_before, int64_t *not_after) {
    if (c == NULL || not_before == NULL || not_after == NULL) return NEURON_EINVAL;
    int ok = asn1_to_unix(X509_get0_notBefore(c->x509), not_before) &&
             asn1_to_unix(X509_get0_notAfter(c->x509), not_after);
    ERR_clear_error();
    return ok ? NEURON_OK : NEURON_EFORMAT;
}

int32_t neuron_cert_verify_sha256(const neuron_cert *c, const uint8_t *data, size_t len, const uint8_t *sig,
                                  size_t sig_len) {
    if (c == NULL) return NEURON_EINVAL;
    EVP_PKEY *pkey = X509_get0_pubkey(c->x509);
    ERR_clear_error();
    if (pkey == NULL) return NEURON_EFORMAT;
    if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA) return NEURON_EUNSUPPORTED;
    return neuron_pkey_verify_sha256(pkey, data, len, sig, sig_len);
}

int32_t neuron_cert_matches_key(const neuron_cert *c, const neuron_rsa *key) {
    if (c == NULL || key == NULL) return NEURON_EINVAL;
    EVP_PKEY *pkey = X509_get0_pubkey(c->x509);
    int eq = pkey != NULL && EVP_PKEY_eq(pkey, key->pkey) == 1;
    ERR_clear_error();
    return eq ? NEURON_OK : NEURON_EAUTH;
}
