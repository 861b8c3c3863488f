/*
 * libFuzzer target for the LGMP/KVMFR reader. A well-formed region (header,
 * two queues, one posted frame of 16x16 BGRA and one cursor shape) is built,
 * the reader attaches, then the fuzz input is XORed over the first bytes of the
 * region (header, queues, messages, frame and cursor structs, pixels) before the
 * reader reads from it.
 *   make -C native fuzz && native/build/fuzz/fuzz_kvmfr -max_total_time=60
 */
#include "../capture.h"

#include <stdlib.h>
#include <string.h>

#define REGION (64u * 1024u)
#define MSG_PTR 6144u
#define MSG_FRAME 6528u
#define CURSOR 7168u
#define FRAME 8192u
#define PIXELS (FRAME + 4096u)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void put32(uint8_t *m, uint32_t off, uint32_t v) { memcpy(m + off, &v, 4); }
static void put64(uint8_t *m, uint32_t off, uint64_t v) { memcpy(m + off, &v, 8); }

static void build(uint8_t *m, int b6) {
    memset(m, 0, REGION);
    put32(m, 0, NEURON_LGMP_MAGIC);
    put32(m, 4, b6 ? NEURON_LGMP_VERSION_B6 : NEURON_LGMP_VERSION);
    put32(m, 8, 1234);
    put64(m, 16, 5000);
    put32(m, 24, 2);
    uint32_t q0 = 32, q1 = 32 + NEURON_LGMP_QUEUE_SIZE;
    put32(m, q0 + 0, NEURON_KVMFR_QUEUE_POINTER);
    put32(m, q0 + 4, 21);
    put32(m, q0 + 12, 1000);
    put32(m, q0 + 20, MSG_PTR);
    put32(m, q1 + 0, NEURON_KVMFR_QUEUE_FRAME);
    put32(m, q1 + 4, 3);
    put32(m, q1 + 12, 1000);
    put32(m, q1 + 20, MSG_FRAME);
    put32(m, 5752, 64);
    memcpy(m + NEURON_LGMP_UDATA_OFFSET, "KVMFR---", 8);
    put32(m, NEURON_LGMP_UDATA_OFFSET + 8, b6 ? NEURON_KVMFR_VERSION_B6 : NEURON_KVMFR_VERSION);
}

static void post(uint8_t *m, int b6) {
    uint32_t q0 = 32, q1 = 32 + NEURON_LGMP_QUEUE_SIZE, sh = b6 ? 8 : 0;
    /* frame message + struct */
    put32(m, MSG_FRAME + 4, b6 ? NEURON_KVMFR_FRAME_SIZE_B6 : NEURON_KVMFR_FRAME_SIZE);
    put32(m, MSG_FRAME + 8, FRAME);
    put32(m, MSG_FRAME + 12, 0xffffffffu);
    put32(m, q1 + 16, 1);
    put32(m, q1 + 440, 1);
    put32(m, FRAME + 4, 7);
    put32(m, FRAME + 8, NEURON_FRAME_BGRA);
    put32(m, FRAME + 12, 16);
    put32(m, FRAME + 16, 16);
    if (!b6) {
        put32(m, FRAME + 20, 16);
        put32(m, FRAME + 24, 16);
    }
    put32(m, FRAME + 28 - sh, 16);
    put32(m, FRAME + 32 - sh, 16);
    put32(m, FRAME + 40 - sh, 16);
    put32(m, FRAME + 44 - sh, 64);
    put32(m, FRAME + 48 - sh, 4092);
    put32(m, FRAME + 52 - sh, 1);
    put32(m, FRAME + 56 - sh + 8, 16);
    put32(m, FRAME + 56 - sh + 12, 16);
    put32(m, PIXELS - 4, 1024);
    /* cursor message with a shape */
    put32(m, MSG_PTR + 0, NEURON_CURSOR_POSITION | NEURON_CURSOR_VISIBLE | NEURON_CURSOR_SHAPE);
    put32(m, MSG_PTR + 4, NEURON_KVMFR_CURSOR_SIZE + 8 * 8 * 4);
    put32(m, MSG_PTR + 8, CURSOR);
    put32(m, MSG_PTR + 12, 0xffffffffu);
    put32(m, q0 + 16, 1);
    put32(m, q0 + 440, 1);
    put32(m, CURSOR + 12, 8);
    put32(m, CURSOR + 16, 8);
    put32(m, CURSOR + 20, 32);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static uint8_t *mem;
    static uint8_t dst[64 * 64 * 8];
    static uint8_t shape[512 * 1024 * 4];
    if (!mem && !(mem = aligned_alloc(4096, REGION))) return 0;
    int b6 = size && (data[0] & 1);
    build(mem, b6);
    neuron_kvmfr_reader *r = NULL;
    if (neuron_kvmfr_reader_wrap(mem, REGION, &r) != NEURON_OK) return 0;
    if (neuron_kvmfr_reader_attach(r, 0) == NEURON_OK) {
        post(mem, b6);
        size_t n = size < REGION ? size : REGION;
        for (size_t i = 1; i < n; i++) mem[i] ^= data[i];
        neuron_frame_info info;
        neuron_cursor_info ci;
        for (int i = 0; i < 3; i++) {
            int32_t rc = neuron_kvmfr_reader_next_frame(r, 0, 0, dst, sizeof dst, &info);
            if (rc < 0 && rc != NEURON_ERANGE) break;
        }
        neuron_kvmfr_reader_cursor(r, &ci, shape, sizeof shape);
    }
    neuron_kvmfr_reader_close(r);
    return 0;
}
