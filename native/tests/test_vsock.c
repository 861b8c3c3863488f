/* NVF1 framing (vsock.h): the parser refuses hostile framing; the listener over a unix socket. */
#include "../vsock.h"
#include "check.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

static void hello(uint8_t *h, uint32_t codec, uint32_t w, uint32_t hh, uint32_t maxp) {
    memset(h, 0, 32);
    put32(h, NEURON_NVF_MAGIC);
    put16(h + 4, 1);
    put16(h + 6, 32);
    put32(h + 8, codec);
    put32(h + 12, w);
    put32(h + 16, hh);
    put32(h + 20, 60);
    put32(h + 24, maxp);
}

static void frame_hdr(uint8_t *f, uint32_t serial, uint32_t stride, uint32_t size, uint16_t damage) {
    memset(f, 0, 32);
    put32(f, NEURON_NVF_FRAME_MAGIC);
    put32(f + 4, serial);
    put64(f + 8, 1234567);
    put32(f + 16, stride);
    put32(f + 20, size);
    put16(f + 24, damage);
}

/* Feeds everything; returns the last status (bytes or negative) and counts frames. */
static int64_t feed_all(neuron_nvf_parser *p, const uint8_t *d, uint64_t n, int *frames, uint64_t step) {
    uint64_t off = 0;
    while (off < n) {
        uint32_t ev;
        uint64_t len = n - off < step ? n - off : step;
        int64_t used = neuron_nvf_parser_feed(p, d + off, len, &ev);
        if (used < 0) return used;
        off += (uint64_t)used;
        if (ev == NEURON_NVF_FRAME) (*frames)++;
    }
    return (int64_t)off;
}

static void test_parser(void) {
    enum { W = 32, H = 16, STRIDE = 160 };
    uint64_t size = 32 + 2 * (32 + 16 + STRIDE * H);
    uint8_t *s = calloc(1, size);
    hello(s, 1, W, H, STRIDE * H);
    uint8_t *p1 = s + 32;
    frame_hdr(p1, 1, STRIDE, STRIDE * H, 1);
    put32(p1 + 32, 2);
    put32(p1 + 36, 3);
    put32(p1 + 40, 4);
    put32(p1 + 44, 5);
    for (int i = 0; i < STRIDE * H; i++) p1[48 + i] = (uint8_t)i;
    uint8_t *p2 = p1 + 48 + STRIDE * H;
    memcpy(p2, p1, 48 + STRIDE * H);
    put32(p2 + 4, 2);

    neuron_nvf_parser *p;
    CHECK(neuron_nvf_parser_new(1 << 20, &p) == NEURON_OK);
    neuron_nvf_parser *tiny = NULL;
    CHECK(neuron_nvf_parser_new(16, &tiny) == NEURON_EINVAL && tiny == NULL);
    /* byte by byte and in one go give the same frames */
    const uint64_t steps[] = {1, 7, 4096, size};
    for (size_t si = 0; si < 4; si++) {
        uint64_t step = steps[si];
        neuron_nvf_parser_reset(p);
        int frames = 0;
        CHECK(feed_all(p, s, size, &frames, step) == (int64_t)size);
        CHECK(frames == 2);
        neuron_frame_info info;
        const uint8_t *px = neuron_nvf_parser_frame(p, &info);
        CHECK(info.frame_serial == 2 && info.data_width == W && info.data_height == H && info.out_pitch == STRIDE);
        CHECK(info.damage_count == 1 && info.damage[0] == 2 && info.damage[3] == 5);
        CHECK(info.reserved[0] == 1234567 && info.type == NEURON_FRAME_BGRA);
        CHECK(px && px[1] == 1 && px[STRIDE * H - 1] == (uint8_t)(STRIDE * H - 1));
    }

    /* hostile framing: every case is refused with a reason, nothing read out of bounds */
    struct {
        const char *name;
        uint32_t at;  /* offset into the stream */
        uint32_t value;
        int width; /* 2 or 4 bytes */
        const char *reason;
    } cases[] = {
        {"bad magic", 0, 0x12345678, 4, "magic"},
        {"version", 4, 9, 2, "version"},
        {"huge width", 12, 100000, 4, "outside"},
        {"max_payload too small", 24, 100, 4, "less than"},
        {"max_payload over limit", 24, 0xffffffff, 4, "outside"},
        {"stride < width", 32 + 16, W * 4 - 4, 4, "stride"},
        {"lying size", 32 + 20, STRIDE * H + 1, 4, "payload"},
        {"size overflow", 32 + 20, 0xfffffff0, 4, "payload"},
        {"too many rects", 32 + 24, 65, 2, "damage rects"},
        {"rect outside", 32 + 32, 30, 4, "outside"},
        {"rect width overflow", 32 + 40, 0xffffffff, 4, "outside"},
        {"reserved", 32 + 28, 1, 4, "reserved"},
        {"serial back", (uint32_t)(p2 - s) + 4, 1, 4, "does not follow"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t *bad = malloc(size);
        memcpy(bad, s, size);
        if (cases[i].width == 2) put16(bad + cases[i].at, (uint16_t)cases[i].value);
        else put32(bad + cases[i].at, cases[i].value);
        neuron_nvf_parser_reset(p);
        int frames = 0;
        int64_t rc = feed_all(p, bad, size, &frames, 13);
        CHECK(rc == NEURON_EFORMAT);
        const char *why = neuron_nvf_parser_error(p);
        if (rc != NEURON_EFORMAT || !strstr(why, cases[i].reason))
            fprintf(stderr, "case %s: rc %lld, error '%s'\n", cases[i].name, (long long)rc, why);
        CHECK(strstr(why, cases[i].reason) != NULL);
        uint32_t ev;
        CHECK(neuron_nvf_parser_feed(p, bad, 4, &ev) == NEURON_EFORMAT); /* stays failed */
        free(bad);
    }
    /* a frame before any hello */
    neuron_nvf_parser_reset(p);
    int frames = 0;
    CHECK(feed_all(p, p1, 48, &frames, 48) == NEURON_EFORMAT);
    CHECK(strstr(neuron_nvf_parser_error(p), "before hello") != NULL);
    /* truncation: partial() says a frame is incomplete */
    neuron_nvf_parser_reset(p);
    frames = 0;
    CHECK(feed_all(p, s, 32 + 48 + 100, &frames, 1000) == 32 + 48 + 100);
    CHECK(frames == 0 && neuron_nvf_parser_partial(p) == 1);
    /* H.264: stride must be 0, size bounded by max_payload */
    uint8_t hs[32 + 32 + 8];
    hello(hs, 2, 64, 64, 8);
    frame_hdr(hs + 32, 1, 0, 8, 0);
    put16(hs + 32 + 26, 1);
    memcpy(hs + 64, "\0\0\0\1\x65xyz", 8);
    neuron_nvf_parser_reset(p);
    frames = 0;
    CHECK(feed_all(p, hs, sizeof hs, &frames, 5) == (int64_t)sizeof hs && frames == 1);
    neuron_frame_info info;
    neuron_nvf_parser_frame(p, &info);
    CHECK(info.type == NEURON_FRAME_H264_AU && info.bytes == 8 && (info.flags & NEURON_NVF_FLAG_KEYFRAME));
    put32(hs + 32 + 20, 9);
    neuron_nvf_parser_reset(p);
    frames = 0;
    CHECK(feed_all(p, hs, sizeof hs, &frames, 5) == NEURON_EFORMAT);
    neuron_nvf_parser_free(p);
    free(s);
}

static int connect_unix(const char *path) {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, path);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void test_listener(void) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/neuron-nvf-test-%d.sock", (int)getpid());
    neuron_nvf_reader *r;
    CHECK(neuron_nvf_listen_unix(path, 1 << 20, &r) == NEURON_OK);
    CHECK(neuron_nvf_reader_attach(r, 50) == NEURON_EIO);
    int fd = connect_unix(path);
    CHECK(fd >= 0);
    enum { W = 16, H = 16 };
    uint8_t buf[32 + 32 + W * 4 * H];
    hello(buf, 1, W, H, W * 4 * H);
    frame_hdr(buf + 32, 1, W * 4, W * 4 * H, 0);
    memset(buf + 64, 0xab, W * 4 * H);
    CHECK(write(fd, buf, sizeof buf) == (ssize_t)sizeof buf);
    CHECK(neuron_nvf_reader_attach(r, 2000) == NEURON_OK);
    uint8_t dst[W * 4 * H];
    neuron_frame_info info;
    int rc = neuron_nvf_reader_next_frame(r, 2000, dst, sizeof dst, &info);
    CHECK(rc == NEURON_CAPTURE_FRAME && info.bytes == sizeof dst && dst[0] == 0xab && info.out_pitch == W * 4);
    CHECK(neuron_nvf_reader_next_frame(r, 20, dst, sizeof dst, &info) == NEURON_CAPTURE_TIMEOUT);
    /* a lying stride ends the connection with the reason */
    frame_hdr(buf + 32, 2, W * 4 - 4, W * 4 * H, 0);
    CHECK(write(fd, buf + 32, 32) == 32);
    CHECK(neuron_nvf_reader_next_frame(r, 2000, dst, sizeof dst, &info) == NEURON_CAPTURE_REJECTED);
    char why[256];
    neuron_nvf_reader_error(r, why, sizeof why);
    CHECK(strstr(why, "stride") != NULL);
    close(fd);
    /* a truncated frame on a new connection is counted, never delivered */
    fd = connect_unix(path);
    frame_hdr(buf + 32, 1, W * 4, W * 4 * H, 0);
    CHECK(write(fd, buf, 64 + 100) == 64 + 100);
    close(fd);
    CHECK(neuron_nvf_reader_next_frame(r, 2000, dst, sizeof dst, &info) == NEURON_CAPTURE_RESTARTED);
    CHECK(neuron_nvf_reader_next_frame(r, 200, dst, sizeof dst, &info) == NEURON_CAPTURE_TIMEOUT);
    neuron_reader_stats st;
    neuron_nvf_reader_stats(r, &st);
    CHECK(st.frames == 1 && st.rejected == 1 && st.wp_timeouts == 1);
    neuron_nvf_reader_error(r, why, sizeof why);
    CHECK(strstr(why, "truncated") != NULL);
    neuron_nvf_reader_close(r);
    CHECK(access(path, F_OK) != 0);
}

int main(void) {
    test_parser();
    test_listener();
    return check_report("vsock");
}
