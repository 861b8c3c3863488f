/* Internals shared by the crypto module's files (not exported). */
#ifndef NEURON_CRYPTO_INTERNAL_H
#define NEURON_CRYPTO_INTERNAL_H

#include "../crypto.h"

#include <openssl/bio.h>
#include <openssl/evp.h>

struct neuron_rsa {
    EVP_PKEY *pkey; /* an RSA key pair */
};

/* PEM password callback that refuses: encrypted inputs fail instead of prompting a terminal. */
int neuron_pem_no_password(char *buf, int size, int rwflag, void *u);

/* PKCS#1 v1.5 SHA-256 verification with any RSA EVP_PKEY: NEURON_OK or NEURON_EAUTH. */
int32_t neuron_pkey_verify_sha256(EVP_PKEY *pkey, const uint8_t *data, size_t len, const uint8_t *sig,
                                  size_t sig_len);

/* Copies a memory BIO's contents to out (cap bytes): the length, or NEURON_ERANGE. */
int32_t neuron_bio_copy(BIO *bio, uint8_t *out, size_t cap);

#endif
