/* C-level tests of the crypto module (built with ASan/UBSan by `make check`):
 * NIST known answers, GameStream pairing vectors, batch layouts, hostile inputs. */
#include "../crypto.h"
#include "check.h"

#include <stdlib.h>
#include <string.h>

static size_t unhex(const char *h, uint8_t *out) {
    size_t n = strlen(h) / 2;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf(h + 2 * i, "%2x", &v);
        out[i] = (uint8_t)v;
    }
    return n;
}

static int eqhex(const uint8_t *got, const char *h) {
    uint8_t want[256];
    size_t n = unhex(h, want);
    return memcmp(got, want, n) == 0;
}

/* McGrew–Viega GCM test cases 2 and 4 (AES-128), as published with NIST's GCM specification. */
static const char *GCM_K4 = "feffe9928665731c6d6a8f9467308308";
static const char *GCM_IV4 = "cafebabefacedbaddecaf888";
static const char *GCM_P4 = "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39";
static const char *GCM_A4 = "feedfacedeadbeeffeedfacedeadbeefabaddad2";
static const char *GCM_C4 = "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091";
static const char *GCM_T4 = "5bc94fbc3221a5db94fae95ae7121a47";

static neuron_gcm_layout plain_layout(uint32_t in_stride, uint32_t out_stride) {
    neuron_gcm_layout l = {in_stride, out_stride, 16, 0, -1, NEURON_GCM_IV_EXPLICIT, 12, 0, 0, 0};
    return l;
}

static void test_gcm_kat(void) {
    uint8_t key[16], iv[12], pt[64], aad[20], rec[16 + 64], back[64];
    unhex(GCM_K4, key);
    unhex(GCM_IV4, iv);
    uint32_t len = (uint32_t)unhex(GCM_P4, pt);
    unhex(GCM_A4, aad);
    neuron_aes_gcm *g = NULL;
    CHECK(neuron_aes_gcm_new(key, 16, &g) == NEURON_OK && g != NULL);
    neuron_gcm_layout l = plain_layout(64, sizeof rec);
    l.aad_len = 20;
    int32_t st = 99;
    CHECK(neuron_aes_gcm_seal_batch(g, &l, 1, pt, &len, rec, iv, 0, aad, &st) == 1 && st == NEURON_OK);
    CHECK(eqhex(rec, GCM_T4));
    CHECK(eqhex(rec + 16, GCM_C4));
    neuron_gcm_layout o = plain_layout(sizeof rec, sizeof back);
    o.aad_len = 20;
    uint32_t rlen = 16 + len;
    CHECK(neuron_aes_gcm_open_batch(g, &o, 1, rec, &rlen, back, iv, 0, aad, &st) == 1 && st == NEURON_OK);
    CHECK(memcmp(back, pt, len) == 0);
    /* flipped tag bit → EAUTH and zeroed plaintext */
    rec[3] ^= 1;
    memset(back, 0xAA, sizeof back);
    CHECK(neuron_aes_gcm_open_batch(g, &o, 1, rec, &rlen, back, iv, 0, aad, &st) == 0 && st == NEURON_EAUTH);
    uint8_t zero[64] = {0};
    CHECK(memcmp(back, zero, len) == 0);
    rec[3] ^= 1;
    /* wrong AAD → EAUTH */
    aad[0] ^= 1;
    CHECK(neuron_aes_gcm_open_batch(g, &o, 1, rec, &rlen, back, iv, 0, aad, &st) == 0 && st == NEURON_EAUTH);
    aad[0] ^= 1;
    /* truncated record → EFORMAT */
    uint32_t shortlen = 10;
    CHECK(neuron_aes_gcm_open_batch(g, &o, 1, rec, &shortlen, back, iv, 0, aad, &st) == 0 && st == NEURON_EFORMAT);
    /* truncated ciphertext (tag intact) → EAUTH */
    uint32_t cut = rlen - 1;
    CHECK(neuron_aes_gcm_open_batch(g, &o, 1, rec, &cut, back, iv, 0, aad, &st) == 0 && st == NEURON_EAUTH);
    neuron_aes_gcm_free(g);

    /* test case 2: zero key, zero IV, one zero block, no AAD */
    uint8_t k0[16] = {0}, iv0[12] = {0}, p0[16] = {0}, r0[32];
    uint32_t l16 = 16;
    CHECK(neuron_aes_gcm_new(k0, 16, &g) == NEURON_OK);
    neuron_gcm_layout l0 = plain_layout(16, 32);
    CHECK(neuron_aes_gcm_seal_batch(g, &l0, 1, p0, &l16, r0, iv0, 0, NULL, &st) == 1);
    CHECK(eqhex(r0, "ab6e47d42cec13bdf53a67b21257bddf"));
    CHECK(eqhex(r0 + 16, "0388dace60b6a392f328c2b971b2fe78"));
    /* test case 1: empty plaintext */
    uint32_t l00 = 0;
    CHECK(neuron_aes_gcm_seal_batch(g, &l0, 1, p0, &l00, r0, iv0, 0, NULL, &st) == 1 && st == NEURON_OK);
    CHECK(eqhex(r0, "58e2fccefa7e3061367f1d57a4e7455a"));
    neuron_aes_gcm_free(g);
}

/* GameStream video layout: iv[12] ‖ LE32 frameIndex ‖ tag[16] ‖ ciphertext, counter IVs. */
static void test_gcm_batch_layouts(void) {
    enum { N = 37, PLEN = 1400, REC = 32 + PLEN };
    uint8_t key[16];
    for (int i = 0; i < 16; i++) key[i] = (uint8_t)(i * 7 + 1);
    uint8_t *pt = malloc((size_t)N * PLEN), *rec = malloc((size_t)N * REC), *back = malloc((size_t)N * PLEN);
    uint32_t lens[N], rlens[N];
    int32_t st[N];
    for (size_t i = 0; i < (size_t)N * PLEN; i++) pt[i] = (uint8_t)(i * 31 + 3);
    for (int i = 0; i < N; i++) lens[i] = (uint32_t)(PLEN - (i % 5) * 17), rlens[i] = 32 + lens[i];
    neuron_aes_gcm *g = NULL;
    CHECK(neuron_aes_gcm_new(key, 16, &g) == NEURON_OK);
    uint8_t tmpl[12] = {0};
    tmpl[11] = 'V';
    neuron_gcm_layout l = {PLEN, REC, 32, 16, 0, NEURON_GCM_IV_COUNTER64, 0, 0, 0, 0};
    uint64_t ctr = 0xFFFFFFF0ull; /* crosses the 32-bit boundary inside the batch */
    CHECK(neuron_aes_gcm_seal_batch(g, &l, N, pt, lens, rec, tmpl, ctr, NULL, st) == N);
    /* IVs written in the records: LE64 counter, zeros, 'V' */
    for (int i = 0; i < N; i++) {
        uint8_t *r = rec + (size_t)i * REC;
        uint64_t c = 0;
        for (int b = 0; b < 8; b++) c |= (uint64_t)r[b] << (8 * b);
        CHECK(c == ctr + (uint64_t)i && r[8] == 0 && r[9] == 0 && r[10] == 0 && r[11] == 'V');
    }
    /* open reading the IV from each record */
    neuron_gcm_layout o = {REC, PLEN, 32, 16, 0, NEURON_GCM_IV_IN_RECORD, 0, 0, 0, 0};
    CHECK(neuron_aes_gcm_open_batch(g, &o, N, rec, rlens, back, NULL, 0, NULL, st) == N);
    int same = 1;
    for (int i = 0; i < N; i++) same &= memcmp(back + (size_t)i * PLEN, pt + (size_t)i * PLEN, lens[i]) == 0;
    CHECK(same);
    /* the same records opened with the counter mode agree */
    neuron_gcm_layout oc = o;
    oc.iv_mode = NEURON_GCM_IV_COUNTER64;
    CHECK(neuron_aes_gcm_open_batch(g, &oc, N, rec, rlens, back, tmpl, ctr, NULL, st) == N);
    /* one bad packet in the middle fails alone */
    rec[5 * REC + 40] ^= 0x80;
    CHECK(neuron_aes_gcm_open_batch(g, &o, N, rec, rlens, back, NULL, 0, NULL, st) == N - 1);
    CHECK(st[5] == NEURON_EAUTH && st[4] == NEURON_OK && st[6] == NEURON_OK);
    rec[5 * REC + 40] ^= 0x80;
    /* in place: plaintext and ciphertext at the same address */
    neuron_gcm_layout ip = {REC, REC, 32, 16, 0, NEURON_GCM_IV_COUNTER64, 0, 0, 0, 0};
    uint8_t *work = malloc((size_t)N * REC);
    for (int i = 0; i < N; i++) memcpy(work + (size_t)i * REC + 32, pt + (size_t)i * PLEN, lens[i]);
    CHECK(neuron_aes_gcm_seal_batch(g, &ip, N, work + 32, lens, work, tmpl, ctr, NULL, st) == N);
    CHECK(memcmp(work, rec, REC) == 0);
    neuron_gcm_layout ipo = {REC, REC, 32, 16, 0, NEURON_GCM_IV_IN_RECORD, 0, 0, 0, 0};
    CHECK(neuron_aes_gcm_open_batch(g, &ipo, N, work, rlens, work + 32, NULL, 0, NULL, st) == N);
    CHECK(memcmp(work + 32, pt, lens[0]) == 0);
    free(work);

    /* control layout: LE16 type ‖ LE16 len ‖ LE32 seq ‖ tag ‖ ct, IV = LE32(seq) 0.. 'H','C' */
    uint8_t ctl_tmpl[12] = {0};
    ctl_tmpl[10] = 'H';
    ctl_tmpl[11] = 'C';
    neuron_gcm_layout cl = {PLEN, REC, 24, 8, -1, NEURON_GCM_IV_COUNTER32, 0, 0, 0, 0};
    CHECK(neuron_aes_gcm_seal_batch(g, &cl, 2, pt, lens, rec, ctl_tmpl, 0xFFFFFFFFull, NULL, st) == 2);
    /* packet 1 used counter 0 (32-bit wrap): same as an explicit IV of zeros + 'H','C' */
    neuron_gcm_layout ce = {PLEN, REC, 24, 8, -1, NEURON_GCM_IV_EXPLICIT, 12, 0, 0, 0};
    uint8_t one[REC];
    CHECK(neuron_aes_gcm_seal_batch(g, &ce, 1, pt + PLEN, lens + 1, one, ctl_tmpl, 0, NULL, st) == 1);
    CHECK(memcmp(one + 8, rec + REC + 8, 16 + lens[1]) == 0);

    /* hostile layouts and arguments: whole call refused, nothing written */
    neuron_gcm_layout bad = l;
    bad.tag_offset = 20; /* tag overlaps ciphertext */
    CHECK(neuron_aes_gcm_seal_batch(g, &bad, N, pt, lens, rec, tmpl, 0, NULL, st) == NEURON_EINVAL);
    bad = l;
    bad.iv_offset = 10; /* IV overlaps tag */
    CHECK(neuron_aes_gcm_seal_batch(g, &bad, N, pt, lens, rec, tmpl, 0, NULL, st) == NEURON_EINVAL);
    bad = l;
    bad.iv_mode = NEURON_GCM_IV_IN_RECORD; /* seal cannot read IVs from records */
    CHECK(neuron_aes_gcm_seal_batch(g, &bad, N, pt, lens, rec, tmpl, 0, NULL, st) == NEURON_EINVAL);
    bad = l;
    bad.iv_mode = 9;
    CHECK(neuron_aes_gcm_seal_batch(g, &bad, N, pt, lens, rec, tmpl, 0, NULL, st) == NEURON_EINVAL);
    bad = l;
    bad.reserved = 1;
    CHECK(neuron_aes_gcm_seal_batch(g, &bad, N, pt, lens, rec, tmpl, 0, NULL, st) == NEURON_EINVAL);
    bad = l;
    bad.out_stride = NEURON_GCM_MAX_STRIDE + 1;
    CHECK(neuron_aes_gcm_seal_batch(g, &bad, N, pt, lens, rec, tmpl, 0, NULL, st) == NEURON_EINVAL);
    bad = ce;
    bad.iv_stride = 4; /* explicit IVs closer than 12 bytes would repeat/overlap */
    CHECK(neuron_aes_gcm_seal_batch(g, &bad, 2, pt, lens, rec, tmpl, 0, NULL, st) == NEURON_EINVAL);
    CHECK(neuron_aes_gcm_seal_batch(g, &l, NEURON_GCM_MAX_BATCH + 1, pt, lens, rec, tmpl, 0, NULL, st) == NEURON_EINVAL);
    CHECK(neuron_aes_gcm_seal_batch(NULL, &l, 1, pt, lens, rec, tmpl, 0, NULL, st) == NEURON_EINVAL);
    CHECK(neuron_aes_gcm_seal_batch(g, NULL, 1, pt, lens, rec, tmpl, 0, NULL, st) == NEURON_EINVAL);
    CHECK(neuron_aes_gcm_seal_batch(g, &l, 1, pt, lens, rec, NULL, 0, NULL, st) == NEURON_EINVAL);
    CHECK(neuron_aes_gcm_seal_batch(g, &l, 0, NULL, NULL, NULL, NULL, 0, NULL, NULL) == 0);
    neuron_gcm_layout aadl = l;
    aadl.aad_len = 4;
    CHECK(neuron_aes_gcm_seal_batch(g, &aadl, 1, pt, lens, rec, tmpl, 0, NULL, st) == NEURON_EINVAL);
    /* a packet longer than its stride: that packet fails alone */
    uint32_t big[2] = {PLEN, PLEN + 1};
    CHECK(neuron_aes_gcm_seal_batch(g, &l, 2, pt, big, rec, tmpl, 0, NULL, st) == 1 && st[1] == NEURON_ERANGE);
    uint32_t huge[2] = {0xFFFFFFFFu, 5};
    CHECK(neuron_aes_gcm_open_batch(g, &o, 2, rec, huge, back, NULL, 0, NULL, st) == 0 && st[0] == NEURON_EFORMAT);
    /* open: plaintext larger than out_stride */
    neuron_gcm_layout small = o;
    small.out_stride = 100;
    CHECK(neuron_aes_gcm_open_batch(g, &small, 1, rec, rlens, back, NULL, 0, NULL, st) == 0 && st[0] == NEURON_ERANGE);
    neuron_aes_gcm_free(g);

    /* wrong key sizes */
    neuron_aes_gcm *none = (neuron_aes_gcm *)1;
    CHECK(neuron_aes_gcm_new(key, 15, &none) == NEURON_EINVAL && none == NULL);
    CHECK(neuron_aes_gcm_new(key, 32, &none) == NEURON_EINVAL);
    CHECK(neuron_aes_gcm_new(NULL, 16, &none) == NEURON_EINVAL);
    CHECK(neuron_aes_gcm_new(key, 16, NULL) == NEURON_EINVAL);
    neuron_aes_gcm_free(NULL);
    free(pt);
    free(rec);
    free(back);
}

/* NIST SP 800-38A F.2.1 (CBC-AES128.Encrypt) and F.1.1 (ECB-AES128.Encrypt). */
static const char *SP_KEY = "2b7e151628aed2a6abf7158809cf4f3c";
static const char *SP_PT = "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
                           "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710";

static void test_cbc(void) {
    uint8_t key[16], iv[16], pt[64], ct[96], back[96];
    unhex(SP_KEY, key);
    unhex("000102030405060708090a0b0c0d0e0f", iv);
    unhex(SP_PT, pt);
    neuron_aes_cbc *c = NULL;
    CHECK(neuron_aes_cbc_new(key, 16, &c) == NEURON_OK);
    CHECK(neuron_aes_cbc_encrypt(c, iv, pt, 64, ct, sizeof ct) == 80); /* + one padding block */
    CHECK(eqhex(ct, "7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2"
                    "73bed6b8e3c1743b7116e69e222295163ff1caa1681fac09120eca307586e1a7"));
    CHECK(neuron_aes_cbc_decrypt(c, iv, ct, 80, back, sizeof back) == 64);
    CHECK(memcmp(back, pt, 64) == 0);
    /* PKCS#7: 5 bytes → one block; empty → one full padding block */
    CHECK(neuron_aes_cbc_encrypt(c, iv, pt, 5, ct, 16) == 16);
    CHECK(neuron_aes_cbc_decrypt(c, iv, ct, 16, back, 16) == 5 && memcmp(back, pt, 5) == 0);
    CHECK(neuron_aes_cbc_encrypt(c, iv, NULL, 0, ct, 16) == 16);
    CHECK(neuron_aes_cbc_decrypt(c, iv, ct, 16, back, 16) == 0);
    /* hostile */
    CHECK(neuron_aes_cbc_encrypt(c, iv, pt, 16, ct, 16) == NEURON_ERANGE);
    CHECK(neuron_aes_cbc_decrypt(c, iv, ct, 15, back, 16) == NEURON_EFORMAT);
    CHECK(neuron_aes_cbc_decrypt(c, iv, ct, 0, back, 16) == NEURON_EFORMAT);
    CHECK(neuron_aes_cbc_decrypt(c, iv, ct, 16, back, 8) == NEURON_ERANGE);
    CHECK(neuron_aes_cbc_encrypt(c, iv, pt, NEURON_CRYPTO_MAX_INPUT + 1, ct, sizeof ct) == NEURON_EINVAL);
    /* bad padding: decrypt a block whose plaintext ends in 0x00 */
    uint8_t zeros[16] = {0}, enc[32];
    neuron_aes_cbc_encrypt(c, iv, zeros, 16, enc, sizeof enc);
    CHECK(neuron_aes_cbc_decrypt(c, iv, enc, 16, back, 16) == NEURON_EFORMAT);
    neuron_aes_cbc *none = NULL;
    CHECK(neuron_aes_cbc_new(key, 24, &none) == NEURON_EINVAL && none == NULL);
    neuron_aes_cbc_free(c);
}

static void test_ecb_and_pairing(void) {
    uint8_t key[16], pt[64], ct[64], back[64];
    unhex(SP_KEY, key);
    unhex(SP_PT, pt);
    CHECK(neuron_aes_ecb_encrypt(key, 16, pt, 64, ct) == NEURON_OK);
    CHECK(eqhex(ct, "3ad77bb40d7a3660a89ecaf32466ef97f5d3d58503b9699de785895a96fdbaaf"
                    "43b1cd7f598ece23881b00e3ed0306887b0c785e27e8ad3f8223207104725dd4"));
    CHECK(neuron_aes_ecb_decrypt(key, 16, ct, 64, back) == NEURON_OK && memcmp(back, pt, 64) == 0);
    CHECK(neuron_aes_ecb_encrypt(key, 16, pt, 17, ct) == NEURON_EINVAL);
    CHECK(neuron_aes_ecb_encrypt(key, 8, pt, 16, ct) == NEURON_EINVAL);

    /* GameStream pairing: key = SHA-256(salt ‖ "1234")[0:16] */
    uint8_t salted[20], digest[32], msg[16], enc[16];
    for (int i = 0; i < 16; i++) salted[i] = (uint8_t)i, msg[i] = (uint8_t)(0x10 + i);
    memcpy(salted + 16, "1234", 4);
    CHECK(neuron_sha256(salted, 20, digest) == NEURON_OK);
    CHECK(eqhex(digest, "bad0b4f7cae08eb7c1b5acc763a8ed25"));
    CHECK(neuron_aes_ecb_encrypt(digest, 16, msg, 16, enc) == NEURON_OK);
    CHECK(eqhex(enc, "5febcdc985b2baddd65925da162380eb"));
}

static void test_rsa_and_cert(void) {
    neuron_rsa *k = NULL;
    CHECK(neuron_rsa_generate(1024, &k) == NEURON_EINVAL && k == NULL);
    CHECK(neuron_rsa_generate(2048, &k) == NEURON_OK && k != NULL);
    CHECK(neuron_rsa_bits(k) == 2048);
    uint8_t sig[256], sig2[512];
    const uint8_t msg[] = "server secret";
    CHECK(neuron_rsa_sign_sha256(k, msg, sizeof msg, sig, 255) == NEURON_ERANGE);
    CHECK(neuron_rsa_sign_sha256(k, msg, sizeof msg, sig, sizeof sig) == 256);
    CHECK(neuron_rsa_verify_sha256(k, msg, sizeof msg, sig, 256) == NEURON_OK);
    CHECK(neuron_rsa_verify_sha256(k, msg, sizeof msg - 1, sig, 256) == NEURON_EAUTH);
    CHECK(neuron_rsa_verify_sha256(k, msg, sizeof msg, sig, 255) == NEURON_EAUTH);
    sig[100] ^= 1;
    CHECK(neuron_rsa_verify_sha256(k, msg, sizeof msg, sig, 256) == NEURON_EAUTH);
    sig[100] ^= 1;

    /* private PEM round trip: the reloaded key verifies the old signature and signs identically */
    uint8_t *pem = malloc(8192);
    int32_t n = neuron_rsa_private_pem(k, pem, 8192);
    CHECK(n > 0 && memcmp(pem, "-----BEGIN PRIVATE KEY-----", 27) == 0);
    CHECK(neuron_rsa_private_pem(k, pem, 10) == NEURON_ERANGE);
    neuron_rsa *k2 = NULL;
    CHECK(neuron_rsa_from_private(pem, (size_t)n, &k2) == NEURON_OK);
    CHECK(neuron_rsa_sign_sha256(k2, msg, sizeof msg, sig2, sizeof sig2) == 256 && memcmp(sig, sig2, 256) == 0);
    neuron_rsa_free(k2);
    n = neuron_rsa_public_pem(k, pem, 8192);
    CHECK(n > 0 && memcmp(pem, "-----BEGIN PUBLIC KEY-----", 26) == 0);
    /* a public key is not a private key; garbage is rejected */
    k2 = NULL;
    CHECK(neuron_rsa_from_private(pem, (size_t)n, &k2) == NEURON_EFORMAT && k2 == NULL);
    CHECK(neuron_rsa_from_private((const uint8_t *)"garbage", 7, &k2) == NEURON_EFORMAT);
    CHECK(neuron_rsa_from_private(pem, NEURON_CRYPTO_MAX_INPUT + 1, &k2) == NEURON_EINVAL);
    free(pem);

    /* self-signed certificate, serial 0, no extensions */
    neuron_cert *c = NULL;
    const char *cn = "NeuronOS host";
    CHECK(neuron_cert_create(k, (const uint8_t *)cn, strlen(cn), 0, 1700000000, 2330000000LL, &c) == NEURON_OK);
    uint8_t der[4096], der2[4096], fp[32], fp2[32], buf[512];
    int32_t dn = neuron_cert_to_der(c, der, sizeof der);
    CHECK(dn > 300);
    CHECK(neuron_cert_to_der(c, der, 10) == NEURON_ERANGE);
    CHECK(neuron_cert_fingerprint_sha256(c, fp) == NEURON_OK);
    CHECK(neuron_sha256(der, (size_t)dn, fp2) == NEURON_OK && memcmp(fp, fp2, 32) == 0);
    CHECK(neuron_cert_serial(c, buf, sizeof buf) == 1 && buf[0] == 0);
    CHECK(neuron_cert_subject_cn(c, buf, sizeof buf) == (int32_t)strlen(cn) && memcmp(buf, cn, strlen(cn)) == 0);
    int64_t nb = 0, na = 0;
    CHECK(neuron_cert_validity(c, &nb, &na) == NEURON_OK && nb == 1700000000 && na == 2330000000LL);
    CHECK(neuron_cert_matches_key(c, k) == NEURON_OK);
    /* the signatureValue verifies over the TBS part with the certificate's own key: checked via
     * a re-parse from PEM and DER, which must give the same DER and signature */
    uint8_t pemc[4096];
    int32_t pn = neuron_cert_to_pem(c, pemc, sizeof pemc);
    CHECK(pn > 0 && memcmp(pemc, "-----BEGIN CERTIFICATE-----", 27) == 0);
    neuron_cert *p1 = NULL, *p2 = NULL;
    CHECK(neuron_cert_parse(pemc, (size_t)pn, &p1) == NEURON_OK);
    CHECK(neuron_cert_parse(der, (size_t)dn, &p2) == NEURON_OK);
    CHECK(neuron_cert_to_der(p1, der2, sizeof der2) == dn && memcmp(der, der2, (size_t)dn) == 0);
    uint8_t s1[512], s2[512];
    CHECK(neuron_cert_signature(c, s1, sizeof s1) == 256);
    CHECK(neuron_cert_signature(p2, s2, sizeof s2) == 256 && memcmp(s1, s2, 256) == 0);
    CHECK(neuron_cert_signature(p2, s2, 100) == NEURON_ERANGE);
    CHECK(neuron_cert_verify_sha256(p1, msg, sizeof msg, sig, 256) == NEURON_OK);
    CHECK(neuron_cert_verify_sha256(p1, msg, 3, sig, 256) == NEURON_EAUTH);
    neuron_cert_free(p1);
    neuron_cert_free(p2);

    /* hostile certificate inputs */
    neuron_cert *x = NULL;
    CHECK(neuron_cert_parse(der, (size_t)dn - 1, &x) == NEURON_EFORMAT && x == NULL); /* truncated DER */
    uint8_t trail[4096 + 1];
    memcpy(trail, der, (size_t)dn);
    trail[dn] = 0;
    CHECK(neuron_cert_parse(trail, (size_t)dn + 1, &x) == NEURON_EFORMAT); /* trailing byte */
    static const char bad_pem[] = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    CHECK(neuron_cert_parse((const uint8_t *)bad_pem, sizeof bad_pem - 1, &x) == NEURON_EFORMAT);
    CHECK(neuron_cert_parse((const uint8_t *)"\x30\x82\xff\xff", 4, &x) == NEURON_EFORMAT);
    CHECK(neuron_cert_parse(der, 0, &x) == NEURON_EINVAL);
    CHECK(neuron_cert_parse(der, NEURON_CRYPTO_MAX_INPUT + 1, &x) == NEURON_EINVAL);
    CHECK(neuron_cert_parse(pemc, 40, &x) == NEURON_EFORMAT); /* truncated PEM */
    CHECK(neuron_cert_create(k, (const uint8_t *)"", 0, 1, 0, 1, &x) == NEURON_EINVAL);
    CHECK(neuron_cert_create(k, (const uint8_t *)"a\0b", 3, 1, 0, 1, &x) == NEURON_EINVAL);
    CHECK(neuron_cert_create(k, (const uint8_t *)"\xff\xfe", 2, 1, 0, 1, &x) == NEURON_EINVAL); /* not UTF-8 */
    CHECK(neuron_cert_create(k, (const uint8_t *)"x", 1, 1, 10, 5, &x) == NEURON_EINVAL);
    CHECK(neuron_cert_create(k, (const uint8_t *)"x", 1, 1, 0, 253402300800LL, &x) == NEURON_EINVAL);
    CHECK(x == NULL);

    /* a certificate of another key does not match */
    neuron_rsa *other = NULL;
    CHECK(neuron_rsa_generate(2048, &other) == NEURON_OK);
    CHECK(neuron_cert_matches_key(c, other) == NEURON_EAUTH);
    neuron_rsa_free(other);
    neuron_cert_free(c);
    neuron_rsa_free(k);
    neuron_rsa_free(NULL);
    neuron_cert_free(NULL);
}

int main(void) {
    test_gcm_kat();
    test_gcm_batch_layouts();
    test_cbc();
    test_ecb_and_pairing();
    test_rsa_and_cert();
    return check_report("crypto");
}
