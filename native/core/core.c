/* Library identity and the first real primitive: SHA-256 through OpenSSL. */
#include "../neuron.h"

#include <openssl/evp.h>

const char *neuron_version(void) { return NEURON_VERSION_STRING; }

uint32_t neuron_abi_version(void) { return NEURON_ABI_VERSION; }

const char *neuron_status_name(int32_t status) {
    switch (status) {
    case NEURON_OK: return "NEURON_OK";
    case NEURON_EINVAL: return "NEURON_EINVAL";
    case NEURON_ENOMEM: return "NEURON_ENOMEM";
    case NEURON_ECRYPTO: return "NEURON_ECRYPTO";
    case NEURON_EAUTH: return "NEURON_EAUTH";
    case NEURON_ERANGE: return "NEURON_ERANGE";
    case NEURON_EUNRECOVERABLE: return "NEURON_EUNRECOVERABLE";
    case NEURON_EFORMAT: return "NEURON_EFORMAT";
    case NEURON_EUNSUPPORTED: return "NEURON_EUNSUPPORTED";
    case NEURON_EIO: return "NEURON_EIO";
    default: return "NEURON_EUNKNOWN";
    }
}

int32_t neuron_sha256(const uint8_t *data, size_t len, uint8_t *out) {
    static const uint8_t empty = 0;
    unsigned int outlen = 0;
    if (out == NULL || (data == NULL && len != 0)) return NEURON_EINVAL;
    if (EVP_Digest(data ? data : &empty, len, out, &outlen, EVP_sha256(), NULL) != 1 || outlen != 32)
        return NEURON_ECRYPTO;
    return NEURON_OK;
}
