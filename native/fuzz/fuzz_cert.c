/* libFuzzer target: the certificate parser and every accessor on what it accepts.
 *   make -C native fuzz
 *   native/build/fuzz/fuzz_cert -max_total_time=60 native/fuzz/corpus/cert   (seeds: a serial-0 PEM and DER)
 * libcrypto itself is not instrumented, so coverage guidance sees only this library's code. */
#include "../crypto.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    neuron_cert *c = NULL;
    if (neuron_cert_parse(data, size, &c) != NEURON_OK) return 0;
    static uint8_t buf[NEURON_CRYPTO_MAX_INPUT * 2];
    uint8_t fp[32];
    int64_t nb, na;
    (void)neuron_cert_to_der(c, buf, sizeof buf);
    (void)neuron_cert_to_pem(c, buf, sizeof buf);
    (void)neuron_cert_signature(c, buf, sizeof buf);
    (void)neuron_cert_signature(c, buf, 3);
    (void)neuron_cert_fingerprint_sha256(c, fp);
    (void)neuron_cert_serial(c, buf, sizeof buf);
    (void)neuron_cert_serial(c, buf, 1);
    (void)neuron_cert_subject_cn(c, buf, sizeof buf);
    (void)neuron_cert_validity(c, &nb, &na);
    (void)neuron_cert_verify_sha256(c, data, size, buf, 256);
    neuron_cert_free(c);
    return 0;
}
