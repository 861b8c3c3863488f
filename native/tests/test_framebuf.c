/* The NFB1 triple-buffered layout: reader vs the test producer, faults and hostile headers. */
#include "../framebuf.h"
#include "check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

#define W 256
#define H 128

static uint8_t frame[W * H * 4], expect[W * H * 4];

static void path_for(char *buf, size_t n, const char *tag) {
    snprintf(buf, n, "/dev/shm/neuron-test-nfb-%s-%d", tag, (int)getpid());
}

/* A little-endian header field, read through the file (not the reader's mapping). */
static uint64_t header_u64(const char *path, off_t at) {
    uint64_t v = 0;
    int fd = open(path, O_RDONLY);
    if (fd >= 0) {
        if (pread(fd, &v, sizeof v, at) != (ssize_t)sizeof v) v = 0;
        close(fd);
    }
    return v;
}

static uint32_t header_u32(const char *path, off_t at) {
    return (uint32_t)header_u64(path, at);
}

static void test_frames_cursor_audio(void) {
    char path[96];
    path_for(path, sizeof path, "ok");
    neuron_producer_config cfg = {.width = W, .height = H, .fps = 200};
    neuron_fb_producer *p = NULL;
    CHECK(neuron_fb_producer_start(path, &cfg, &p) == NEURON_OK);
    neuron_fb_reader *r = NULL;
    CHECK(neuron_fb_reader_open(path, 0, &r) == NEURON_OK);
    CHECK(neuron_fb_reader_attach(r, 1000) == NEURON_OK);
    neuron_frame_info info;
    uint32_t last = 0;
    int got = 0;
    for (int i = 0; i < 200 && got < 20; i++) {
        int32_t rc = neuron_fb_reader_next_frame(r, 200, frame, sizeof frame, &info);
        if (rc != NEURON_CAPTURE_FRAME) continue;
        uint32_t counter = neuron_testpattern_counter(frame, W, H, W * 4);
        neuron_testpattern_fill(expect, W, H, W * 4, counter);
        CHECK(memcmp(frame, expect, sizeof frame) == 0);
        CHECK(info.frame_serial == counter + 1);
        CHECK(info.frame_serial > last);
        last = info.frame_serial;
        got++;
    }
    CHECK(got == 20);
    neuron_cursor_info ci;
    static uint8_t shape[32 * 32 * 4];
    CHECK(neuron_fb_reader_cursor(r, &ci, shape, sizeof shape) == 32 * 32 * 4);
    CHECK(ci.visible == 1 && ci.shape_width == 32 && shape[0] == 0xff);
    static uint8_t pcm[48000 * 4];
    uint32_t overrun = 0;
    int64_t n = 0;
    for (int i = 0; i < 250 && n == 0; i++) { /* the producer writes audio as time passes */
        nanosleep(&(struct timespec){0, 20000000}, NULL);
        n = neuron_fb_reader_audio(r, pcm, sizeof pcm, &overrun);
    }
    CHECK(n > 0 && n % 4 == 0 && overrun == 0);
    int nonzero = 0;
    for (int64_t i = 0; i < n; i++) nonzero |= pcm[i];
    CHECK(nonzero);
    /* Let the producer write more than the ring holds (250 ms) past what was read. Watch its write
     * position in the header rather than sleeping a fixed time: a loaded machine starves its thread. */
    uint64_t wpos0 = header_u64(path, 168), ring = header_u32(path, 152);
    for (int i = 0; i < 200 && header_u64(path, 168) - wpos0 <= ring + 4096; i++)
        nanosleep(&(struct timespec){0, 50000000}, NULL);
    CHECK(header_u64(path, 168) - wpos0 > ring);
    n = neuron_fb_reader_audio(r, pcm, sizeof pcm, &overrun);
    CHECK(overrun == 1 && n > 0 && n <= 48000);
    int32_t small = NEURON_CAPTURE_TIMEOUT;
    for (int i = 0; i < 20 && small == NEURON_CAPTURE_TIMEOUT; i++)
        small = neuron_fb_reader_next_frame(r, 100, frame, 16, &info);
    CHECK(small == NEURON_ERANGE && info.bytes == W * H * 4);
    neuron_fb_reader_close(r);
    neuron_fb_producer_stop(p);
    unlink(path);
}

static void test_faults(void) {
    char path[96];
    path_for(path, sizeof path, "ver");
    neuron_producer_config cfg = {.width = W, .height = H, .fps = 100, .fault = NEURON_FAULT_WRONG_VERSION};
    neuron_fb_producer *p = NULL;
    CHECK(neuron_fb_producer_start(path, &cfg, &p) == NEURON_OK);
    neuron_fb_reader *r = NULL;
    CHECK(neuron_fb_reader_open(path, 0, &r) == NEURON_OK);
    CHECK(neuron_fb_reader_attach(r, 500) == NEURON_EUNSUPPORTED);
    CHECK(strstr(neuron_fb_reader_error(r), "version 2") && strstr(neuron_fb_reader_error(r), "version 1"));
    neuron_fb_reader_close(r);
    neuron_fb_producer_stop(p);

    cfg.fault = NEURON_FAULT_NEW_SESSION;
    cfg.fault_after = 10;
    CHECK(neuron_fb_producer_start(path, &cfg, &p) == NEURON_OK);
    CHECK(neuron_fb_reader_open(path, 0, &r) == NEURON_OK);
    CHECK(neuron_fb_reader_attach(r, 1000) == NEURON_OK);
    neuron_frame_info info;
    int restarted = 0, frames = 0;
    for (int i = 0; i < 300 && frames < 30; i++) {
        int32_t rc = neuron_fb_reader_next_frame(r, 100, frame, sizeof frame, &info);
        if (rc == NEURON_CAPTURE_RESTARTED) restarted++;
        if (rc == NEURON_CAPTURE_FRAME) frames++;
    }
    CHECK(restarted >= 1 && frames == 30);
    neuron_fb_reader_close(r);
    neuron_fb_producer_stop(p);

    /* hostile headers: slots outside the region, a corrupt middle index */
    cfg.fault = NEURON_FAULT_NONE;
    CHECK(neuron_fb_producer_start(path, &cfg, &p) == NEURON_OK);
    neuron_fb_producer_stop(p); /* leaves a well-formed but silent region */
    int fd = open(path, O_RDWR);
    uint8_t *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    CHECK(neuron_fb_reader_open(path, 0, &r) == NEURON_OK);
    CHECK(neuron_fb_reader_attach(r, 0) == NEURON_OK);
    uint32_t bad_mid = 3u | 4u;
    memcpy(m + 64, &bad_mid, 4);
    CHECK(neuron_fb_reader_next_frame(r, 50, frame, sizeof frame, &info) == NEURON_EFORMAT);
    uint64_t far = 1ull << 40;
    memcpy(m + 40, &far, 8);
    CHECK(neuron_fb_reader_attach(r, 0) == NEURON_EFORMAT);
    uint32_t huge = 100000;
    memcpy(m + 16, &huge, 4);
    CHECK(neuron_fb_reader_attach(r, 0) == NEURON_EFORMAT);
    uint32_t junk = 0xdeadbeef;
    memcpy(m, &junk, 4);
    CHECK(neuron_fb_reader_attach(r, 0) == NEURON_EFORMAT);
    neuron_fb_reader_close(r);
    munmap(m, 4096);
    unlink(path);
    CHECK(neuron_fb_reader_open("/nonexistent/x", 0, &r) == NEURON_EIO);
}

int main(void) {
    test_frames_cursor_audio();
    test_faults();
    return check_report("framebuf");
}
