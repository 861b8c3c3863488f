/*
 * libneuron — the native core of neuron-appliance.
 *
 * ABI contract (checked by ffi/ at load time through neuron_abi_version()):
 *  - Every exported symbol is prefixed `neuron_`.
 *  - Buffers are caller-owned: the library never keeps a pointer past the call
 *    unless the function's comment says so, and never allocates per call on a
 *    hot path.
 *  - Errors are negative `neuron_status` values; 0 is success. A function that
 *    returns a length returns it as a non-negative value or a negative status.
 *  - Integer widths are fixed (uint8_t/uint32_t/uint64_t/size_t); no struct is
 *    passed by value across the boundary.
 *
 * Bump NEURON_ABI_VERSION whenever an exported signature or a documented
 * layout changes; ffi/native.ts refuses a library whose ABI it does not speak.
 *
 * Module headers: fec.h (Reed–Solomon), crypto.h (OpenSSL-backed crypto), ...
 */
#ifndef NEURON_H
#define NEURON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NEURON_ABI_VERSION 1u
#define NEURON_VERSION_STRING "0.1.0"

#define NEURON_EXPORT __attribute__((visibility("default")))

/* Status codes shared by every module. */
typedef enum neuron_status {
    NEURON_OK = 0,
    NEURON_EINVAL = -1,     /* an argument is out of its documented range */
    NEURON_ENOMEM = -2,     /* allocation failed */
    NEURON_ECRYPTO = -3,    /* the crypto backend reported an error */
    NEURON_EAUTH = -4,      /* authentication tag mismatch */
    NEURON_ERANGE = -5,     /* output buffer too small */
    NEURON_EUNRECOVERABLE = -6, /* more losses than parity (FEC) */
    NEURON_EFORMAT = -7,    /* malformed input (parse error) */
    NEURON_EUNSUPPORTED = -8, /* a version or feature this build does not speak */
    NEURON_EIO = -9         /* an operating-system call failed */
} neuron_status;

/* Library version, a static NUL-terminated string such as "0.1.0". */
NEURON_EXPORT const char *neuron_version(void);

/* ABI version: equals NEURON_ABI_VERSION of the header the library was built with. */
NEURON_EXPORT uint32_t neuron_abi_version(void);

/* The malloc mmap threshold the library fixed when it loaded (bytes; 0 if glibc refused): blocks of
 * 1 MiB or more get their own mapping and go back to the system when freed, so an ended stream
 * session's buffers do not stay resident (glibc's dynamic threshold would keep them in arenas). */
NEURON_EXPORT uint32_t neuron_mmap_threshold(void);

/* Static NUL-terminated name of a status code ("NEURON_EINVAL", ...). */
NEURON_EXPORT const char *neuron_status_name(int32_t status);

/*
 * SHA-256 of `len` bytes at `data` into `out` (32 bytes).
 * data may be NULL only when len == 0. Returns NEURON_OK or NEURON_ECRYPTO.
 */
NEURON_EXPORT int32_t neuron_sha256(const uint8_t *data, size_t len, uint8_t *out);

#ifdef __cplusplus
}
#endif
#endif /* NEURON_H */
