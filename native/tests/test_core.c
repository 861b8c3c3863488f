/* C-level tests of the core module (built with ASan/UBSan by `make check`). */
#include "../neuron.h"
#include "check.h"

#include <string.h>

static void test_version(void) {
    CHECK(neuron_abi_version() == NEURON_ABI_VERSION);
#ifdef __SANITIZE_ADDRESS__
    CHECK(neuron_mmap_threshold() == 0); /* ASan's allocator has no mmap threshold to fix */
#else
    CHECK(neuron_mmap_threshold() == (1u << 20)); /* the library fixed it when it loaded */
#endif
    CHECK(strcmp(neuron_version(), NEURON_VERSION_STRING) == 0);
    CHECK(strcmp(neuron_status_name(NEURON_EAUTH), "NEURON_EAUTH") == 0);
    CHECK(strcmp(neuron_status_name(12345), "NEURON_EUNKNOWN") == 0);
}

static void test_sha256(void) {
    uint8_t out[32];
    /* FIPS 180-2 vector: SHA-256("abc") */
    static const uint8_t abc[32] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
                                    0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
                                    0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
    CHECK(neuron_sha256((const uint8_t *)"abc", 3, out) == NEURON_OK);
    CHECK(memcmp(out, abc, 32) == 0);
    /* empty input, NULL data */
    static const uint8_t empty[4] = {0xe3, 0xb0, 0xc4, 0x42};
    CHECK(neuron_sha256(NULL, 0, out) == NEURON_OK);
    CHECK(memcmp(out, empty, 4) == 0);
    CHECK(neuron_sha256(NULL, 5, out) == NEURON_EINVAL);
    CHECK(neuron_sha256((const uint8_t *)"abc", 3, NULL) == NEURON_EINVAL);
}

int main(void) {
    test_version();
    test_sha256();
    return check_report("core");
}
