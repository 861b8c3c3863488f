/*
 * libFuzzer target for the NVF1 stream parser (vsock.h): the first input byte picks a
 * chunk size, the rest is fed as a guest's byte stream — once bare, once after a valid
 * hello so the frame paths are reached. Every completed frame's payload is read in full.
 *   make -C native fuzz && native/build/fuzz/fuzz_nvf -max_total_time=60
 */
#include "../vsock.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile uint8_t sink;

static void run(neuron_nvf_parser *p, const uint8_t *d, size_t n, size_t step) {
    size_t off = 0;
    while (off < n) {
        uint32_t ev;
        size_t len = n - off < step ? n - off : step;
        int64_t used = neuron_nvf_parser_feed(p, d + off, len, &ev);
        if (used < 0) return;
        off += (size_t)used;
        if (ev == NEURON_NVF_FRAME) {
            neuron_frame_info info;
            const uint8_t *px = neuron_nvf_parser_frame(p, &info);
            uint8_t acc = 0;
            for (uint64_t i = 0; i < info.bytes; i++) acc ^= px[i];
            sink = acc;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    static neuron_nvf_parser *p;
    if (!p && neuron_nvf_parser_new(1u << 20, &p) != NEURON_OK) return 0;
    size_t step = (size_t)data[0] % 64 + 1;
    neuron_nvf_parser_reset(p);
    run(p, data + 1, size - 1, step);
    static const uint8_t hello[32] = {0x4e, 0x56, 0x46, 0x31, 1, 0, 32, 0, 1, 0, 0, 0, 16, 0, 0, 0,
                                      16, 0, 0, 0, 60, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0};
    neuron_nvf_parser_reset(p);
    run(p, hello, sizeof hello, 32);
    run(p, data + 1, size - 1, step);
    return 0;
}
