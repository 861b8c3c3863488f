/* LGMP/KVMFR reader against the synthetic producer, every fault mode, hostile bytes. */
#include "../capture.h"
#include "check.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#define W 320
#define H 240
#define REGION (16u << 20)

static uint8_t *region(void) {
    void *m = mmap(NULL, REGION, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    return m == MAP_FAILED ? NULL : m;
}

static neuron_producer *produce(uint8_t *mem, uint32_t fault, uint32_t after) {
    neuron_producer_config cfg = {.width = W, .height = H, .fps = 200, .fault = fault, .fault_after = after};
    neuron_producer *p = NULL;
    CHECK(neuron_producer_start_mem(mem, REGION, &cfg, &p) == NEURON_OK);
    return p;
}

static uint8_t frame[W * H * 4], expect[W * H * 4];

/* Reads up to `want` frames; checks pixels and order. Returns frames read. */
static int read_frames(neuron_kvmfr_reader *r, int want, int *restarted, int *rejected, uint32_t wp_ms) {
    neuron_frame_info info;
    int got = 0;
    uint32_t last_counter = 0, last_serial = 0;
    for (int i = 0; i < want * 20 && got < want; i++) {
        int32_t rc = neuron_kvmfr_reader_next_frame(r, 200, wp_ms, frame, sizeof frame, &info);
        if (rc == NEURON_CAPTURE_RESTARTED) {
            if (restarted) (*restarted)++;
            last_counter = last_serial = 0;
            continue;
        }
        if (rc == NEURON_CAPTURE_REJECTED) {
            if (rejected) (*rejected)++;
            continue;
        }
        if (rc != NEURON_CAPTURE_FRAME) continue;
        CHECK(info.type == NEURON_FRAME_BGRA);
        CHECK(info.data_width == W && info.out_pitch == W * 4);
        uint32_t counter = neuron_testpattern_counter(frame, W, info.data_height, W * 4);
        neuron_testpattern_fill(expect, W, info.data_height, W * 4, counter);
        CHECK(memcmp(frame, expect, (size_t)W * 4 * info.data_height) == 0);
        CHECK(neuron_checksum64(frame, info.bytes) == neuron_checksum64(expect, info.bytes));
        if (last_serial) {
            CHECK(info.frame_serial > last_serial);
            CHECK(counter > last_counter);
        }
        last_serial = info.frame_serial;
        last_counter = counter;
        got++;
    }
    return got;
}

static void test_normal_and_cursor(void) {
    uint8_t *mem = region();
    neuron_producer *p = produce(mem, NEURON_FAULT_NONE, 0);
    neuron_kvmfr_reader *r = NULL;
    CHECK(neuron_kvmfr_reader_wrap(mem, REGION, &r) == NEURON_OK);
    CHECK(neuron_kvmfr_reader_attach(r, 1000) == NEURON_OK);
    CHECK(read_frames(r, 40, NULL, NULL, 200) == 40);
    neuron_cursor_info ci;
    static uint8_t shape[512 * 512 * 8];
    int64_t n = neuron_kvmfr_reader_cursor(r, &ci, shape, sizeof shape);
    CHECK(ci.updates > 0 && ci.visible == 1);
    CHECK(ci.shape_serial >= 1 && ci.shape_width == 32 && n == 32 * 32 * 4);
    neuron_frame_info info;
    CHECK(neuron_kvmfr_reader_next_frame(r, 200, 200, frame, 16, &info) == NEURON_ERANGE);
    CHECK(info.bytes == W * H * 4);
    neuron_reader_stats st;
    neuron_kvmfr_reader_stats(r, &st);
    CHECK(st.frames == 40 && st.lgmp_version == 6 && st.kvmfr_version == 20 && st.attached == 1);
    neuron_kvmfr_reader_close(r);
    neuron_producer_stop(p);
    munmap(mem, REGION);
}

static void test_wrong_version(void) {
    uint8_t *mem = region();
    neuron_producer *p = produce(mem, NEURON_FAULT_WRONG_VERSION, 0);
    neuron_kvmfr_reader *r = NULL;
    CHECK(neuron_kvmfr_reader_wrap(mem, REGION, &r) == NEURON_OK);
    CHECK(neuron_kvmfr_reader_attach(r, 500) == NEURON_EUNSUPPORTED);
    const char *e = neuron_kvmfr_reader_error(r);
    CHECK(strstr(e, "version 7") != NULL && strstr(e, "version 6") != NULL);
    neuron_kvmfr_reader_close(r);
    neuron_producer_stop(p);
    munmap(mem, REGION);
}

static void test_fault(uint32_t fault, int want_restart, int want_reject) {
    uint8_t *mem = region();
    neuron_producer *p = produce(mem, fault, 10);
    neuron_kvmfr_reader *r = NULL;
    CHECK(neuron_kvmfr_reader_wrap(mem, REGION, &r) == NEURON_OK);
    CHECK(neuron_kvmfr_reader_attach(r, 1000) == NEURON_OK);
    int restarted = 0, rejected = 0;
    CHECK(read_frames(r, 40, &restarted, &rejected, 500) == 40);
    if (want_restart) CHECK(restarted >= 1);
    if (want_reject) CHECK(rejected >= 1);
    neuron_reader_stats st;
    neuron_kvmfr_reader_stats(r, &st);
    if (want_restart) CHECK(st.restarts >= 1);
    neuron_kvmfr_reader_close(r);
    neuron_producer_stop(p);
    munmap(mem, REGION);
}

static void test_truncated_b6_slow(void) {
    neuron_frame_info info;
    uint8_t *mem = region();
    neuron_producer *p = produce(mem, NEURON_FAULT_TRUNCATED, 0);
    neuron_kvmfr_reader *r = NULL;
    CHECK(neuron_kvmfr_reader_wrap(mem, REGION, &r) == NEURON_OK);
    CHECK(neuron_kvmfr_reader_attach(r, 1000) == NEURON_OK);
    CHECK(read_frames(r, 5, NULL, NULL, 200) == 5);
    CHECK(neuron_kvmfr_reader_next_frame(r, 500, 200, frame, sizeof frame, &info) == NEURON_CAPTURE_FRAME);
    CHECK((info.flags & NEURON_FRAME_FLAG_TRUNCATED) && info.data_height == H / 2 && info.frame_height == H);
    neuron_kvmfr_reader_close(r);
    neuron_producer_stop(p);

    p = produce(mem, NEURON_FAULT_B6, 0);
    CHECK(neuron_kvmfr_reader_wrap(mem, REGION, &r) == NEURON_OK);
    CHECK(neuron_kvmfr_reader_attach(r, 1000) == NEURON_OK);
    CHECK(read_frames(r, 5, NULL, NULL, 200) == 5);
    neuron_reader_stats st;
    neuron_kvmfr_reader_stats(r, &st);
    CHECK(st.lgmp_version == 5 && st.kvmfr_version == 19);
    neuron_kvmfr_reader_close(r);
    neuron_producer_stop(p);

    /* Slow wp: a patient reader gets whole frames, an impatient one rejects them. */
    static uint8_t big[1280 * 1024 * 4];
    neuron_producer_config cfg = {.width = 1280, .height = 1024, .fps = 30, .fault = NEURON_FAULT_SLOW_WP};
    uint64_t size = neuron_kvmfr_region_size(1280, 1024);
    CHECK(size == 32u << 20);
    uint8_t *m2 = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(neuron_producer_start_mem(m2, size, &cfg, &p) == NEURON_OK);
    CHECK(neuron_kvmfr_reader_wrap(m2, size, &r) == NEURON_OK);
    CHECK(neuron_kvmfr_reader_attach(r, 1000) == NEURON_OK);
    int ok = 0, rej = 0;
    for (int i = 0; i < 20 && (ok < 2 || rej < 1); i++) {
        int32_t rc = neuron_kvmfr_reader_next_frame(r, 500, ok < 2 ? 500 : 1, big, sizeof big, &info);
        if (rc == NEURON_CAPTURE_FRAME) {
            ok++;
            static uint8_t want[1280 * 1024 * 4];
            neuron_testpattern_fill(want, 1280, 1024, 1280 * 4,
                                    neuron_testpattern_counter(big, 1280, 1024, 1280 * 4));
            CHECK(memcmp(big, want, sizeof want) == 0); /* every row arrived, in full */
        } else if (rc == NEURON_CAPTURE_REJECTED) rej++;
    }
    CHECK(ok >= 2 && rej >= 1);
    neuron_kvmfr_reader_stats(r, &st);
    CHECK(st.wp_timeouts >= 1);
    neuron_kvmfr_reader_close(r);
    neuron_producer_stop(p);
    munmap(m2, size);
    munmap(mem, REGION);
}

static void test_eviction(void) {
    uint8_t *mem = region();
    neuron_producer *p = produce(mem, NEURON_FAULT_NONE, 0);
    neuron_kvmfr_reader *r = NULL;
    CHECK(neuron_kvmfr_reader_wrap(mem, REGION, &r) == NEURON_OK);
    CHECK(neuron_kvmfr_reader_attach(r, 1000) == NEURON_OK);
    struct timespec ts = {.tv_sec = 1, .tv_nsec = 300000000};
    nanosleep(&ts, NULL); /* hold the head past the queue timeout: the producer evicts us */
    uint64_t before = neuron_producer_frames(p);
    CHECK(read_frames(r, 10, NULL, NULL, 200) == 10);
    neuron_reader_stats st;
    neuron_kvmfr_reader_stats(r, &st);
    CHECK(st.resubscribes >= 1);
    CHECK(neuron_producer_frames(p) > before);
    neuron_kvmfr_reader_close(r);
    neuron_producer_stop(p);
    munmap(mem, REGION);
}

static void test_garbage(void) {
    uint8_t *mem = region();
    neuron_kvmfr_reader *r = NULL;
    CHECK(neuron_kvmfr_reader_wrap(mem, REGION, &r) == NEURON_OK);
    CHECK(neuron_kvmfr_reader_attach(r, 20) == NEURON_EIO); /* nothing written */
    uint32_t bad = 0x12345678;
    memcpy(mem, &bad, 4);
    CHECK(neuron_kvmfr_reader_attach(r, 20) == NEURON_EFORMAT);
    srand(7);
    for (int i = 0; i < 200; i++) {
        for (uint32_t k = 0; k < 8192; k++) mem[k] = (uint8_t)rand();
        uint32_t magic = NEURON_LGMP_MAGIC, ver = 6;
        memcpy(mem, &magic, 4);
        memcpy(mem + 4, &ver, 4);
        memcpy(mem + 5756, "KVMFR---", 8);
        uint32_t kv = 20, usize = 64;
        memcpy(mem + 5756 + 8, &kv, 4);
        memcpy(mem + 5752, &usize, 4);
        neuron_frame_info info;
        int32_t rc = neuron_kvmfr_reader_next_frame(r, 5, 5, frame, sizeof frame, &info);
        CHECK(rc == NEURON_CAPTURE_TIMEOUT || rc == NEURON_EFORMAT || rc == NEURON_CAPTURE_RESTARTED ||
              rc == NEURON_CAPTURE_REJECTED || rc == NEURON_EIO || rc == NEURON_CAPTURE_FRAME);
    }
    neuron_kvmfr_reader *none = NULL;
    CHECK(neuron_kvmfr_reader_open("/nonexistent/region", 0, &none) == NEURON_EIO && none == NULL);
    neuron_kvmfr_reader_close(r);
    munmap(mem, REGION);
}

/* A sealed-memfd style backing: the region is an anonymous memfd opened through /proc/self/fd/N. */
static void test_memfd(void) {
    int fd = memfd_create("neuron-test-region", MFD_CLOEXEC);
    CHECK(fd >= 0);
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    neuron_producer_config cfg = {.width = W, .height = H, .fps = 200};
    neuron_producer *p = NULL;
    CHECK(neuron_producer_start(path, 0, &cfg, &p) == NEURON_OK);
    neuron_kvmfr_reader *r = NULL;
    CHECK(neuron_kvmfr_reader_open(path, 0, &r) == NEURON_OK);
    CHECK(neuron_kvmfr_reader_attach(r, 1000) == NEURON_OK);
    CHECK(read_frames(r, 5, NULL, NULL, 200) == 5);
    neuron_kvmfr_reader_close(r);
    neuron_producer_stop(p);
    close(fd);
}

/* The pattern, pixel by pixel from its definition (capture.h), against the band-template fill. */
static uint32_t pattern_px(uint32_t x, uint32_t y, uint32_t w, uint32_t c) {
    if (y < 8 && x / 8 < 32 && x / 8 < w / 8) return (c >> (31 - x / 8)) & 1u ? 0xffffffffu : 0xff000000u;
    return (uint8_t)(x + 2u * c) | (uint32_t)(uint8_t)(y + c) << 8 | (uint32_t)(uint8_t)(((x >> 4) ^ (y >> 4)) * 16u + c) << 16 |
           0xff000000u;
}

static void test_pattern_definition(void) {
    static const uint32_t dims[][2] = {{333, 37}, {256, 40}, {7, 5}, {1, 1}, {1920, 20}};
    static uint8_t buf[1 + 2000 * 4 * 40];
    for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++) {
        uint32_t w = dims[d][0], h = dims[d][1], pitch = w * 4 + 4 * (uint32_t)(d & 1);
        for (uint32_t c = 0; c < 600; c += 123) {
            uint8_t *dst = buf + 1; /* unaligned on purpose */
            memset(buf, 0x5a, sizeof buf);
            neuron_testpattern_fill(dst, w, h, pitch, c);
            int bad = 0;
            for (uint32_t y = 0; y < h && !bad; y++) {
                for (uint32_t x = 0; x < w; x++) {
                    uint32_t px;
                    memcpy(&px, dst + (uint64_t)y * pitch + 4ull * x, 4);
                    if (px != pattern_px(x, y, w, c)) bad = 1;
                }
                for (uint32_t k = w * 4; k < pitch; k++)
                    if (dst[(uint64_t)y * pitch + k] != 0x5a) bad = 1; /* row padding untouched */
            }
            CHECK(!bad);
            if (w >= 256 && h >= 8) CHECK(neuron_testpattern_counter(dst, w, h, pitch) == c);
        }
    }
}

int main(void) {
    test_pattern_definition();
    test_memfd();
    test_normal_and_cursor();
    test_wrong_version();
    test_fault(NEURON_FAULT_NEW_SESSION, 1, 0);
    test_fault(NEURON_FAULT_STALL_HEARTBEAT, 1, 0);
    test_fault(NEURON_FAULT_HOSTILE, 0, 1);
    test_truncated_b6_slow();
    test_eviction();
    test_garbage();
    return check_report("capture");
}
