/* File copy with the sha256-z64k digest (migrate.h). */
#include "../migrate.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BLK ((uint64_t)NEURON_COPY_BLOCK)

/* SHA-256 fetched once: OpenSSL 3's implicit fetch in every EVP_DigestInit_ex (EVP_sha256())
 * costs more than digesting a small file. */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static void sha256_fetch(void) { sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL); }
static const EVP_MD *sha256(void) {
    pthread_once(&sha256_once, sha256_fetch);
    return sha256_md ? sha256_md : EVP_sha256();
}

static int all_zero(const uint8_t *p, size_t n) {
    const uint64_t *w = (const uint64_t *)p;
    size_t words = n / 8;
    uint64_t acc = 0;
    /* check the first word alone: data blocks almost always fail here */
    if (words && w[0]) return 0;
    for (size_t i = 0; i < words; i++) acc |= w[i];
    for (size_t i = words * 8; i < n; i++) acc |= p[i];
    return acc == 0;
}

static void put_u64le(uint8_t out[8], uint64_t v) {
    for (int i = 0; i < 8; i++) out[i] = (uint8_t)(v >> (8 * i));
}

/* pread until n bytes or end of file; returns bytes read or -1. */
static ssize_t pread_full(int fd, uint8_t *p, size_t n, uint64_t off) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, p + got, n - got, (off_t)(off + got));
        if (r < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

static int pwrite_full(int fd, const uint8_t *p, size_t n, uint64_t off) {
    size_t put = 0;
    while (put < n) {
        ssize_t w = pwrite(fd, p + put, n - put, (off_t)(off + put));
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        put += (size_t)w;
    }
    return 0;
}

typedef struct walker {
    int fd;
    uint64_t size;
    const uint64_t *regions; /* caller's, or NULL for SEEK_DATA */
    uint32_t count, next;
    int seek_ok;
    uint64_t pos; /* everything before pos is done */
} walker;

/* Next data region [*a, *b) at or after w->pos, aligned to blocks; 0 when none is left, -1 on error. */
static int next_region(walker *w, uint64_t *a, uint64_t *b) {
    while (w->pos < w->size) {
        uint64_t s, e;
        if (w->regions) {
            if (w->next >= w->count) return 0;
            s = w->regions[2 * w->next];
            e = s + w->regions[2 * w->next + 1];
            w->next++;
        } else if (w->seek_ok) {
            off_t d = lseek(w->fd, (off_t)w->pos, SEEK_DATA);
            if (d < 0) {
                if (errno == ENXIO) return 0;
                if (errno == EINVAL || errno == EOPNOTSUPP) {
                    w->seek_ok = 0;
                    s = w->pos;
                    e = w->size;
                } else {
                    return -1;
                }
            } else {
                off_t h = lseek(w->fd, d, SEEK_HOLE);
                if (h < 0) return -1;
                s = (uint64_t)d;
                e = (uint64_t)h;
            }
        } else {
            s = w->pos;
            e = w->size;
        }
        if (e > w->size) e = w->size;
        s -= s % BLK;
        if (s < w->pos) s = w->pos;
        if (e % BLK) e += BLK - e % BLK;
        if (e > w->size) e = w->size;
        if (e <= s) continue;
        w->pos = e;
        *a = s;
        *b = e;
        return 1;
    }
    return 0;
}

/* Walks fd's data, digesting non-zero blocks; writes them to dst_fd when it is >= 0. */
static int32_t digest_walk(walker *w, int dst_fd, uint8_t *buf, size_t buf_len, uint8_t out[32], uint64_t *read_bytes,
                           uint64_t *written_bytes, int32_t *stage, int32_t *err, int32_t read_stage) {
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx) return NEURON_ENOMEM;
    int32_t rc = NEURON_OK;
    if (EVP_DigestInit_ex(ctx, sha256(), NULL) != 1) {
        rc = NEURON_ECRYPTO;
        goto done;
    }
    uint64_t a, b;
    int nr;
    while ((nr = next_region(w, &a, &b)) == 1) {
        for (uint64_t off = a; off < b;) {
            size_t want = (size_t)((b - off) < buf_len ? (b - off) : buf_len);
            ssize_t got = pread_full(w->fd, buf, want, off);
            if (got < 0) {
                *stage = read_stage;
                *err = errno;
                rc = NEURON_EIO;
                goto done;
            }
            *read_bytes += (uint64_t)got;
            if ((size_t)got < want) memset(buf + got, 0, want - (size_t)got); /* shrank under us: zeros */
            size_t run_start = 0, run_len = 0;
            for (size_t i = 0; i < want; i += BLK) {
                size_t n = want - i < BLK ? want - i : BLK;
                if (all_zero(buf + i, n)) {
                    if (run_len && dst_fd >= 0) {
                        if (pwrite_full(dst_fd, buf + run_start, run_len, off + run_start) < 0) {
                            *stage = NEURON_COPY_STAGE_WRITE;
                            *err = errno;
                            rc = NEURON_EIO;
                            goto done;
                        }
                        *written_bytes += run_len;
                    }
                    run_len = 0;
                    continue;
                }
                uint8_t idx[8];
                put_u64le(idx, (off + i) / BLK);
                if (EVP_DigestUpdate(ctx, idx, 8) != 1 || EVP_DigestUpdate(ctx, buf + i, n) != 1) {
                    rc = NEURON_ECRYPTO;
                    goto done;
                }
                if (!run_len) run_start = i;
                run_len += n;
            }
            if (run_len && dst_fd >= 0) {
                if (pwrite_full(dst_fd, buf + run_start, run_len, off + run_start) < 0) {
                    *stage = NEURON_COPY_STAGE_WRITE;
                    *err = errno;
                    rc = NEURON_EIO;
                    goto done;
                }
                *written_bytes += run_len;
            }
            off += want;
        }
    }
    if (nr < 0) {
        *stage = read_stage;
        *err = errno;
        rc = NEURON_EIO;
        goto done;
    }
    uint8_t sz[8];
    put_u64le(sz, w->size);
    unsigned int outlen = 0;
    if (EVP_DigestUpdate(ctx, sz, 8) != 1 || EVP_DigestFinal_ex(ctx, out, &outlen) != 1 || outlen != 32) rc = NEURON_ECRYPTO;
done:
    EVP_MD_CTX_free(ctx);
    return rc;
}

static int buf_ok(const uint8_t *buf, size_t buf_len) {
    return buf && buf_len >= BLK && buf_len % BLK == 0 && buf_len <= NEURON_COPY_MAX_BUF;
}

NEURON_EXPORT int32_t neuron_digest_fd(int32_t fd, uint8_t *buf, size_t buf_len, uint8_t *out, uint64_t *size_out,
                                       int32_t *errno_out) {
    if (fd < 0 || !buf_ok(buf, buf_len) || !out) return NEURON_EINVAL;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        if (errno_out) *errno_out = errno;
        return NEURON_EIO;
    }
    if (!S_ISREG(st.st_mode)) return NEURON_EINVAL;
    walker w = { .fd = fd, .size = (uint64_t)st.st_size, .seek_ok = 1 };
    uint64_t rd = 0, wr = 0;
    int32_t stage = 0, err = 0;
    int32_t rc = digest_walk(&w, -1, buf, buf_len, out, &rd, &wr, &stage, &err, NEURON_COPY_STAGE_READ);
    if (size_out) *size_out = w.size;
    if (errno_out) *errno_out = err;
    return rc;
}

NEURON_EXPORT int32_t neuron_copy_fd(int32_t src_fd, int32_t dst_fd, const uint64_t *regions, uint32_t region_count,
                                     uint8_t *buf, size_t buf_len, uint32_t flags, uint32_t uid, uint32_t gid,
                                     neuron_copy_stats *stats) {
    if (!stats) return NEURON_EINVAL;
    memset(stats, 0, sizeof *stats);
    if (src_fd < 0 || dst_fd < 0 || !buf_ok(buf, buf_len) || region_count > NEURON_COPY_MAX_REGIONS ||
        (region_count && !regions) || (flags & ~(NEURON_COPY_VERIFY | NEURON_COPY_TIMES | NEURON_COPY_OWNER)))
        return NEURON_EINVAL;
    for (uint32_t i = 1; i < region_count; i++)
        if (regions[2 * i] < regions[2 * i - 2] + regions[2 * i - 1]) return NEURON_EINVAL;
    struct stat st;
    if (fstat(src_fd, &st) < 0) {
        stats->failed_stage = NEURON_COPY_STAGE_META;
        stats->os_errno = errno;
        return NEURON_EIO;
    }
    if (!S_ISREG(st.st_mode)) return NEURON_EINVAL;
    stats->size = (uint64_t)st.st_size;
    walker w = { .fd = src_fd, .size = stats->size, .regions = region_count ? regions : NULL, .count = region_count, .seek_ok = 1 };
    int32_t rc = digest_walk(&w, dst_fd, buf, buf_len, stats->digest, &stats->read_bytes, &stats->written_bytes,
                             &stats->failed_stage, &stats->os_errno, NEURON_COPY_STAGE_READ);
    if (rc) return rc;
    if (ftruncate(dst_fd, (off_t)stats->size) < 0) {
        stats->failed_stage = NEURON_COPY_STAGE_WRITE;
        stats->os_errno = errno;
        return NEURON_EIO;
    }
    if (flags & NEURON_COPY_VERIFY) {
        walker v = { .fd = dst_fd, .size = stats->size, .seek_ok = 1 };
        uint64_t rd = 0, wr = 0;
        rc = digest_walk(&v, -1, buf, buf_len, stats->verify_digest, &rd, &wr, &stats->failed_stage, &stats->os_errno,
                         NEURON_COPY_STAGE_VERIFY);
        if (rc) return rc;
    }
    if ((flags & NEURON_COPY_OWNER) && fchown(dst_fd, (uid_t)uid, (gid_t)gid) < 0) {
        stats->failed_stage = NEURON_COPY_STAGE_META;
        stats->os_errno = errno;
        return NEURON_EIO;
    }
    if (flags & NEURON_COPY_TIMES) {
        struct timespec ts[2] = { st.st_atim, st.st_mtim };
        if (futimens(dst_fd, ts) < 0) {
            stats->failed_stage = NEURON_COPY_STAGE_META;
            stats->os_errno = errno;
            return NEURON_EIO;
        }
    }
    return NEURON_OK;
}
