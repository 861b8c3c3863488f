/*
 * libFuzzer target for the NFB1 reader: the fuzz input is XORed over a
 * well-formed region (header, cursor and audio descriptors, middle index)
 * held in a memfd, then the reader attaches and reads frame, cursor and audio.
 *   make -C native fuzz && native/build/fuzz/fuzz_nfb -max_total_time=60
 */
#include "../framebuf.h"

#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define W 64
#define H 32
#define REGION (4096u * 8u)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void put32(uint8_t *m, uint32_t off, uint32_t v) { memcpy(m + off, &v, 4); }
static void put64(uint8_t *m, uint32_t off, uint64_t v) { memcpy(m + off, &v, 8); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int fd = -1;
    static uint8_t *m;
    static char path[64];
    static uint8_t dst[W * H * 4], shape[512 * 512 * 4], pcm[8192];
    if (fd < 0) {
        fd = memfd_create("neuron-fuzz-nfb", 0);
        if (fd < 0 || ftruncate(fd, REGION) != 0) return 0;
        m = mmap(NULL, REGION, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (m == MAP_FAILED) return 0;
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    memset(m, 0, REGION);
    put32(m, 0, NEURON_NFB_MAGIC);
    put32(m, 4, NEURON_NFB_VERSION);
    put32(m, 8, NEURON_NFB_HEADER_SIZE);
    put32(m, 12, 3);
    put32(m, 16, W);
    put32(m, 20, H);
    put32(m, 24, W * 4);
    put32(m, 28, NEURON_FRAME_BGRA);
    for (int i = 0; i < 3; i++) put64(m, 32 + 8 * i, 4096u * (1u + (unsigned)i * 2u));
    put64(m, 56, 8192);
    put32(m, 64, 1u | 4u);
    put32(m, 68, 2);
    put32(m, 124, 1);
    put32(m, 128, 8);
    put32(m, 132, 8);
    put64(m, 136, 4096u * 7u);
    put64(m, 144, 4096u * 7u + 512u);
    put32(m, 152, 1024);
    put32(m, 156, 48000);
    put32(m, 160, 2);
    put32(m, 164, 2);
    put64(m, 168, 4000);
    size_t n = size < NEURON_NFB_HEADER_SIZE ? size : NEURON_NFB_HEADER_SIZE;
    for (size_t i = 0; i < n; i++) m[i] ^= data[i];
    neuron_fb_reader *r = NULL;
    if (neuron_fb_reader_open(path, 0, &r) != NEURON_OK) return 0;
    if (neuron_fb_reader_attach(r, 0) == NEURON_OK) {
        neuron_frame_info info;
        neuron_cursor_info ci;
        uint32_t overrun;
        neuron_fb_reader_next_frame(r, 0, dst, sizeof dst, &info);
        neuron_fb_reader_cursor(r, &ci, shape, sizeof shape);
        neuron_fb_reader_audio(r, pcm, sizeof pcm, &overrun);
    }
    neuron_fb_reader_close(r);
    return 0;
}
