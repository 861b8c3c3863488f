/*
 * crypto.h — cryptography of libneuron, on OpenSSL libcrypto (no hand-written primitives).
 *
 *  - AES-128-GCM key objects with batched seal/open over strided packet records, with the IV
 *    layouts GameStream uses (explicit IVs, a 12-byte template with a little-endian 32- or
 *    64-bit counter in bytes 0.., or the IV read from the record itself).
 *  - AES-128-CBC with PKCS#7 padding (GameStream audio).
 *  - AES-128-ECB without padding (GameStream pairing).
 *  - SHA-256: neuron_sha256() in neuron.h.
 *  - RSA key pairs (2048..4096 bits): generation, PKCS#8 PEM in/out, PKCS#1 v1.5 SHA-256
 *    sign/verify.
 *  - X.509 certificates: self-signed creation (CN, serial, validity, SHA-256 with RSA),
 *    parsing of PEM or DER (serial 0 and no extensions accepted), PEM/DER output, the raw
 *    signatureValue bytes, the SHA-256 fingerprint of the DER, signature verification with the
 *    certificate's public key.
 *
 * Conventions:
 *  - Key material lives only inside the opaque objects below (OpenSSL contexts); every object
 *    is zeroed (OPENSSL_cleanse) before it is freed. Nothing here logs or prints.
 *  - Object constructors return a status and write the new object to *out (NULL on failure).
 *  - Functions that produce bytes write them to a caller-owned buffer of `cap` bytes and return
 *    the length written, or NEURON_ERANGE when `cap` is too small (nothing useful written).
 *  - Untrusted lengths are bounded before anything is allocated: certificates and PEM inputs at
 *    NEURON_CRYPTO_MAX_INPUT bytes, batches at NEURON_GCM_MAX_BATCH packets, records at
 *    NEURON_GCM_MAX_STRIDE bytes.
 */
#ifndef NEURON_CRYPTO_H
#define NEURON_CRYPTO_H

#include "neuron.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NEURON_AES128_KEY_BYTES 16u
#define NEURON_AES_BLOCK_BYTES 16u
#define NEURON_GCM_IV_BYTES 12u
#define NEURON_GCM_TAG_BYTES 16u
#define NEURON_GCM_MAX_BATCH 65536u        /* packets per batch call */
#define NEURON_GCM_MAX_STRIDE (1u << 24)   /* bytes per packet record (16 MiB) */
#define NEURON_CRYPTO_MAX_INPUT (1u << 20) /* bytes of a certificate / PEM / CBC message */

/* ===== AES-128-GCM, batched ===== */

typedef struct neuron_aes_gcm neuron_aes_gcm;

/* Where each packet's 12-byte IV comes from (neuron_gcm_layout.iv_mode). */
typedef enum neuron_gcm_iv_mode {
    /* packet i uses the 12 bytes at iv + i * iv_stride */
    NEURON_GCM_IV_EXPLICIT = 0,
    /* iv points at a 12-byte template; packet i uses it with bytes 0..3 = LE32(counter + i)
     * (GameStream control: template bytes 10..11 'H','C'; encrypted RTSP: 'H','R') */
    NEURON_GCM_IV_COUNTER32 = 1,
    /* as COUNTER32 with bytes 0..7 = LE64(counter + i) (GameStream video: byte 11 'V') */
    NEURON_GCM_IV_COUNTER64 = 2,
    /* open only: the IV is the 12 bytes at iv_offset inside each input record */
    NEURON_GCM_IV_IN_RECORD = 3
} neuron_gcm_iv_mode;

/*
 * Layout of one batch, fixed per stream (built once per session, read on every call).
 *
 * A "record" is one packet on the wire: a header region [0, ct_offset) that holds the tag (and
 * optionally the IV), then the ciphertext [ct_offset, ct_offset + payload length).
 *   seal: plaintext i   = in  + i*in_stride,  lens[i] bytes (lens[i] <= in_stride);
 *         record i      = out + i*out_stride, ct_offset + lens[i] bytes (<= out_stride).
 *   open: record i      = in  + i*in_stride,  lens[i] bytes (ct_offset <= lens[i] <= in_stride);
 *         plaintext i   = out + i*out_stride, lens[i] - ct_offset bytes (<= out_stride).
 * Only the tag, the IV (when iv_offset >= 0) and the ciphertext/plaintext bytes are written;
 * the rest of a record (protocol header fields) is left to the caller. In-place is allowed when
 * the ciphertext and plaintext of a packet start at the same address.
 */
typedef struct neuron_gcm_layout {
    uint32_t in_stride;  /* bytes between consecutive input packets/records */
    uint32_t out_stride; /* bytes between consecutive output records/plaintexts */
    uint32_t ct_offset;  /* offset of the ciphertext inside a record */
    uint32_t tag_offset; /* offset of the 16-byte tag inside a record; tag_offset + 16 <= ct_offset */
    int32_t iv_offset;   /* offset of the 12-byte IV inside a record, or -1: seal writes it
                            there, open reads it there in IV_IN_RECORD mode; + 12 <= ct_offset */
    uint32_t iv_mode;    /* neuron_gcm_iv_mode */
    uint32_t iv_stride;  /* IV_EXPLICIT: bytes between consecutive IVs (>= 12 when count > 1) */
    uint32_t aad_len;    /* bytes of additional authenticated data per packet (0: none) */
    uint32_t aad_stride; /* bytes between consecutive AADs (0: the same AAD for every packet) */
    uint32_t reserved;   /* must be 0 */
} neuron_gcm_layout;

_Static_assert(sizeof(neuron_gcm_layout) == 40, "neuron_gcm_layout is 40 bytes");
_Static_assert(offsetof(neuron_gcm_layout, iv_offset) == 16, "iv_offset at 16");
_Static_assert(offsetof(neuron_gcm_layout, aad_stride) == 32, "aad_stride at 32");

/* New AES-128-GCM key object (key_len must be 16). Holds an encrypt and a decrypt context with
 * the key schedule; batch calls allocate nothing. Free with neuron_aes_gcm_free. */
NEURON_EXPORT int32_t neuron_aes_gcm_new(const uint8_t *key, size_t key_len, neuron_aes_gcm **out);
NEURON_EXPORT void neuron_aes_gcm_free(neuron_aes_gcm *ctx);

/*
 * Seals `count` packets (see neuron_gcm_layout). `iv` per iv_mode (IN_RECORD is invalid here),
 * `counter` is the counter of packet 0 in the COUNTER modes, `aad` may be NULL when aad_len is 0.
 * `status` (count entries) receives each packet's status: NEURON_OK, NEURON_ERANGE (record does
 * not fit its stride) or NEURON_ECRYPTO.
 * Returns the number of packets sealed, or a negative status for an invalid call (NULL object,
 * bad layout, count > NEURON_GCM_MAX_BATCH) in which case nothing is written.
 */
NEURON_EXPORT int32_t neuron_aes_gcm_seal_batch(neuron_aes_gcm *ctx, const neuron_gcm_layout *layout,
                                                uint32_t count, const uint8_t *in, const uint32_t *lens,
                                                uint8_t *out, const uint8_t *iv, uint64_t counter,
                                                const uint8_t *aad, int32_t *status);

/*
 * Opens `count` records. Per packet status: NEURON_OK, NEURON_EFORMAT (record shorter than
 * ct_offset or longer than in_stride: truncated), NEURON_ERANGE (plaintext does not fit
 * out_stride), NEURON_EAUTH (tag mismatch: the packet's plaintext bytes are zeroed).
 * Returns the number of packets authenticated, or a negative status for an invalid call.
 */
NEURON_EXPORT int32_t neuron_aes_gcm_open_batch(neuron_aes_gcm *ctx, const neuron_gcm_layout *layout,
                                                uint32_t count, const uint8_t *in, const uint32_t *lens,
                                                uint8_t *out, const uint8_t *iv, uint64_t counter,
                                                const uint8_t *aad, int32_t *status);

/* ===== AES-128-CBC, PKCS#7 ===== */

typedef struct neuron_aes_cbc neuron_aes_cbc;

NEURON_EXPORT int32_t neuron_aes_cbc_new(const uint8_t *key, size_t key_len, neuron_aes_cbc **out);
NEURON_EXPORT void neuron_aes_cbc_free(neuron_aes_cbc *ctx);

/* Encrypts `len` bytes (<= NEURON_CRYPTO_MAX_INPUT) with the 16-byte `iv` and PKCS#7 padding;
 * output is (len / 16 + 1) * 16 bytes. Returns that length or a negative status. */
NEURON_EXPORT int32_t neuron_aes_cbc_encrypt(neuron_aes_cbc *ctx, const uint8_t *iv, const uint8_t *in,
                                             size_t len, uint8_t *out, size_t cap);

/* Decrypts `len` bytes (a non-zero multiple of 16) and removes the padding. Returns the
 * plaintext length; NEURON_EFORMAT for a length that is not a block multiple or bad padding
 * (the output is zeroed then). `cap` must be >= len. */
NEURON_EXPORT int32_t neuron_aes_cbc_decrypt(neuron_aes_cbc *ctx, const uint8_t *iv, const uint8_t *in,
                                             size_t len, uint8_t *out, size_t cap);

/* ===== AES-128-ECB, no padding (pairing) ===== */

/* One-shot ECB over `len` bytes (a multiple of 16, <= NEURON_CRYPTO_MAX_INPUT) into `out`
 * (len bytes). The key schedule is cleansed before returning. */
NEURON_EXPORT int32_t neuron_aes_ecb_encrypt(const uint8_t *key, size_t key_len, const uint8_t *in, size_t len,
                                             uint8_t *out);
NEURON_EXPORT int32_t neuron_aes_ecb_decrypt(const uint8_t *key, size_t key_len, const uint8_t *in, size_t len,
                                             uint8_t *out);

/* ===== RSA ===== */

typedef struct neuron_rsa neuron_rsa;

/* Generates an RSA key pair with e = 65537; bits is 2048, 3072 or 4096. */
NEURON_EXPORT int32_t neuron_rsa_generate(uint32_t bits, neuron_rsa **out);

/* Loads a private key from PEM (PKCS#8 or traditional "RSA PRIVATE KEY", unencrypted) or DER.
 * Only RSA keys of 2048..4096 bits are accepted (NEURON_EUNSUPPORTED otherwise). */
NEURON_EXPORT int32_t neuron_rsa_from_private(const uint8_t *data, size_t len, neuron_rsa **out);
NEURON_EXPORT void neuron_rsa_free(neuron_rsa *key);

/* Modulus size in bits. */
NEURON_EXPORT int32_t neuron_rsa_bits(const neuron_rsa *key);

/* Private key as PKCS#8 PEM text (a secret: the caller zeroes its buffer after use). */
NEURON_EXPORT int32_t neuron_rsa_private_pem(const neuron_rsa *key, uint8_t *out, size_t cap);

/* Public key as SubjectPublicKeyInfo PEM text ("-----BEGIN PUBLIC KEY-----"). */
NEURON_EXPORT int32_t neuron_rsa_public_pem(const neuron_rsa *key, uint8_t *out, size_t cap);

/* RSASSA-PKCS1-v1_5 with SHA-256 over `len` bytes; writes bits/8 bytes, returns that length. */
NEURON_EXPORT int32_t neuron_rsa_sign_sha256(const neuron_rsa *key, const uint8_t *data, size_t len,
                                             uint8_t *sig, size_t cap);

/* NEURON_OK when `sig` is a valid PKCS#1 v1.5 SHA-256 signature of `data`, NEURON_EAUTH when it
 * is not (wrong length included). */
NEURON_EXPORT int32_t neuron_rsa_verify_sha256(const neuron_rsa *key, const uint8_t *data, size_t len,
                                               const uint8_t *sig, size_t sig_len);

/* ===== X.509 certificates ===== */

typedef struct neuron_cert neuron_cert;

/*
 * Self-signed X.509 v3 certificate for `key`: subject = issuer = CN=<cn> (1..64 bytes of
 * UTF-8 without NUL), serial (any uint64, 0 allowed), validity [not_before, not_after] in Unix
 * seconds (not_before <= not_after, years 1950..9999), signed with SHA-256 with RSA, no
 * extensions.
 */
NEURON_EXPORT int32_t neuron_cert_create(const neuron_rsa *key, const uint8_t *cn, size_t cn_len, uint64_t serial,
                                         int64_t not_before, int64_t not_after, neuron_cert **out);

/* Parses one certificate from PEM text ("-----BEGIN CERTIFICATE-----", the first one) or DER;
 * len <= NEURON_CRYPTO_MAX_INPUT. NEURON_EFORMAT for anything else. */
NEURON_EXPORT int32_t neuron_cert_parse(const uint8_t *data, size_t len, neuron_cert **out);
NEURON_EXPORT void neuron_cert_free(neuron_cert *cert);

NEURON_EXPORT int32_t neuron_cert_to_pem(const neuron_cert *cert, uint8_t *out, size_t cap);
NEURON_EXPORT int32_t neuron_cert_to_der(const neuron_cert *cert, uint8_t *out, size_t cap);

/* The raw bytes of the certificate's signatureValue BIT STRING (what GameStream pairing hashes). */
NEURON_EXPORT int32_t neuron_cert_signature(const neuron_cert *cert, uint8_t *out, size_t cap);

/* SHA-256 of the DER encoding into out (32 bytes). */
NEURON_EXPORT int32_t neuron_cert_fingerprint_sha256(const neuron_cert *cert, uint8_t *out);

/* Serial number as unsigned big-endian bytes (a zero serial is one byte 0x00); NEURON_EFORMAT
 * for a negative serial. */
NEURON_EXPORT int32_t neuron_cert_serial(const neuron_cert *cert, uint8_t *out, size_t cap);

/* The subject's first commonName as UTF-8 (no NUL); NEURON_EFORMAT when it has none. */
NEURON_EXPORT int32_t neuron_cert_subject_cn(const neuron_cert *cert, uint8_t *out, size_t cap);

/* Validity bounds in Unix seconds. */
NEURON_EXPORT int32_t neuron_cert_validity(const neuron_cert *cert, int64_t *not_before, int64_t *not_after);

/* NEURON_OK when the certificate's public key is RSA and verifies `sig` as PKCS#1 v1.5 SHA-256
 * over `data`; NEURON_EAUTH when not; NEURON_EUNSUPPORTED for a non-RSA key. */
NEURON_EXPORT int32_t neuron_cert_verify_sha256(const neuron_cert *cert, const uint8_t *data, size_t len,
                                                const uint8_t *sig, size_t sig_len);

/* NEURON_OK when the certificate's public key is the public half of `key`, NEURON_EAUTH if not. */
NEURON_EXPORT int32_t neuron_cert_matches_key(const neuron_cert *cert, const neuron_rsa *key);

#ifdef __cplusplus
}
#endif
#endif /* NEURON_CRYPTO_H */
