/*
 * libFuzzer target for the lumen/1 receiver (`make -C native fuzz`, then
 * build/fuzz/fuzz_lumen_rx -max_total_time=60).
 *
 * The input is a list of records: byte 0 = length L of the record (the datagram's first bytes),
 * byte 1 = mode. Mode bit 0 clear: the L bytes are offered as they are (unauthenticated junk).
 * Mode bit 0 set: the bytes become the cleartext header of a datagram sealed with the
 * receiver's own key (seq and every header field as the input says, the payload zero), so
 * authenticated but hostile headers reach the reassembler: lying lengths, shard counts,
 * indices, frames that disagree. The receiver must never crash, leak or read/write out of
 * bounds, its footprint must not change, and its codec cache must stay bounded.
 */
#include "../crypto.h"
#include "../lumen.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t len);

#define S 256u

static void fail(void) { abort(); }

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t len) {
    neuron_lumen_keys k;
    memset(&k, 0, sizeof k);
    memcpy(k.key, "0123456789abcdef", 16);
    memcpy(k.salt, "salt", 4);
    k.session_id = 0x01020304;
    neuron_lumen_rx_config cfg = {.keys = k, .shard_bytes = S, .max_frame_bytes = 64 * 1024, .slots = 3, .ready_frames = 2};
    neuron_lumen_rx *rx = NULL;
    if (neuron_lumen_rx_create(&cfg, &rx) != NEURON_OK) fail();
    const uint64_t footprint = neuron_lumen_rx_footprint(rx);
    neuron_aes_gcm *g = NULL;
    if (neuron_aes_gcm_new(k.key, 16, &g) != NEURON_OK) fail();
    static uint8_t dg[NEURON_LUMEN_VIDEO_OVERHEAD + S + 64];
    static uint8_t out[64 * 1024];
    uint8_t side[NEURON_LUMEN_MAX_SIDE_PAYLOAD];
    size_t off = 0;
    while (off + 2 <= len) {
        uint32_t l = in[off], mode = in[off + 1];
        off += 2;
        if (l > len - off) l = (uint32_t)(len - off);
        memset(dg, 0, sizeof dg);
        memcpy(dg, in + off, l);
        off += l;
        uint32_t dlen = l;
        if (mode & 1) {
            const int video = (mode & 2) != 0;
            const uint32_t hdr = video ? NEURON_LUMEN_COMMON_HDR + NEURON_LUMEN_VIDEO_HDR : NEURON_LUMEN_COMMON_HDR;
            dg[0] = video ? 'V' : (uint8_t)"AUQIRP"[mode % 6];
            dg[1] = 1;
            dg[2] = dg[3] = 0;
            memcpy(dg + 4, &k.session_id, 4);
            if (video) {
                dg[30] = (uint8_t)S;
                dg[31] = (uint8_t)(S >> 8);
                if (mode & 4) { /* a consistent k for the claimed frame bytes, to reach reassembly */
                    uint32_t fb = (uint32_t)dg[20] | (uint32_t)dg[21] << 8 | (uint32_t)(dg[22] & 0) << 16;
                    if (fb == 0) fb = 1;
                    memcpy(dg + 20, &fb, 4);
                    uint32_t kk = (fb + S - 1) / S;
                    dg[26] = (uint8_t)kk;
                    dg[27] = (uint8_t)(kk >> 8);
                }
            }
            const uint32_t plen = video ? S : (mode >> 3) % 64;
            dlen = hdr + 16 + plen;
            uint8_t iv[12];
            memcpy(iv, k.salt, 4);
            memcpy(iv + 4, dg + 8, 8);
            neuron_gcm_layout lay = {.in_stride = plen + 1, .out_stride = (uint32_t)sizeof dg, .ct_offset = hdr + 16,
                                     .tag_offset = hdr, .iv_offset = -1, .iv_mode = NEURON_GCM_IV_EXPLICIT,
                                     .iv_stride = 12, .aad_len = hdr};
            static uint8_t zero[S + 1];
            int32_t st;
            if (neuron_aes_gcm_seal_batch(g, &lay, 1, zero, &plen, dg, iv, 0, dg, &st) != 1) fail();
        }
        neuron_lumen_rx_push(rx, dg, dlen, side, sizeof side);
        neuron_lumen_frame_info info;
        int64_t r;
        while ((r = neuron_lumen_rx_next_frame(rx, out, sizeof out, &info)) > 0)
            if ((uint64_t)r != info.bytes || info.bytes > 64 * 1024) fail();
        if (neuron_lumen_rx_codec_bytes(rx) > (uint64_t)NEURON_LUMEN_CODEC_CACHE * 1024 * S) fail();
    }
    if (neuron_lumen_rx_footprint(rx) != footprint) fail();
    neuron_aes_gcm_free(g);
    neuron_lumen_rx_destroy(rx);
    return 0;
}
