/* File copy with the xxh128-z64k digest (migrate.h). */
#include "../migrate.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <xxhash.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BLK ((uint64_t)NEURON_COPY_BLOCK)

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
    XXH3_state_t *ctx = XXH3_createState();
    if (!ctx) return NEURON_ENOMEM;
    int32_t rc = NEURON_OK;
    if (XXH3_128bits_reset(ctx) != XXH_OK) {
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
                if (XXH3_128bits_update(ctx, idx, 8) != XXH_OK || XXH3_128bits_update(ctx, buf + i, n) != XXH_OK) {
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
    if (XXH3_128bits_update(ctx, sz, 8) != XXH_OK) {
        rc = NEURON_ECRYPTO;
        goto done;
    }
    XXH128_canonical_t canon;
    XXH128_canonicalFromHash(&canon, XXH3_128bits_digest(ctx));
    memcpy(out, canon.digest, 16);
    memset(out + 16, 0, 16);
done:
    XXH3_freeState(ctx);
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

/* ---- batches over a thread pool ---- */

#include <stdatomic.h>

typedef struct batch {
    const uint8_t *paths;
    size_t paths_len;
    const uint64_t *regions;
    size_t region_pairs;
    neuron_copy_job *jobs;
    uint32_t count;
    atomic_uint next;
    uint8_t *bufs;
    size_t buf_len;
} batch;

typedef struct lane {
    batch *b;
    uint8_t *buf;
} lane;

static int path_ok(const batch *b, uint64_t off) {
    return off < b->paths_len && memchr(b->paths + off, 0, b->paths_len - off) != NULL;
}

static void run_job(batch *b, neuron_copy_job *j, uint8_t *buf) {
    memset(&j->stats, 0, sizeof j->stats);
    j->status = NEURON_OK;
    j->open_errno = 0;
    j->link_errno = 0;
    if (!path_ok(b, j->src_path) || !path_ok(b, j->part_path) || !path_ok(b, j->target_path) ||
        (j->region_count != UINT32_MAX && (j->region_first > b->region_pairs || j->region_count > b->region_pairs - j->region_first))) {
        j->status = NEURON_EINVAL;
        return;
    }
    const char *src = (const char *)b->paths + j->src_path;
    const char *part = (const char *)b->paths + j->part_path;
    const char *target = (const char *)b->paths + j->target_path;
    if (j->open_flags & ~NEURON_COPY_SRC_DIRECT) {
        j->status = NEURON_EINVAL;
        return;
    }
    int s = -1;
    if (j->open_flags & NEURON_COPY_SRC_DIRECT) {
        s = open(src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_DIRECT);
        if (s < 0 && errno != EINVAL) {
            j->open_errno = errno;
            j->status = NEURON_EIO;
            j->stats.failed_stage = NEURON_COPY_STAGE_READ;
            j->stats.os_errno = errno;
            return;
        }
    }
    if (s < 0) s = open(src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (s < 0) {
        j->open_errno = errno;
        j->status = NEURON_EIO;
        j->stats.failed_stage = NEURON_COPY_STAGE_READ;
        j->stats.os_errno = errno;
        return;
    }
    int d = open(part, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, (mode_t)(j->mode & 07777));
    if (d < 0) {
        j->status = NEURON_EIO;
        j->stats.failed_stage = NEURON_COPY_STAGE_WRITE;
        j->stats.os_errno = errno;
        close(s);
        return;
    }
    uint32_t flags = NEURON_COPY_VERIFY | NEURON_COPY_TIMES | (j->uid != UINT32_MAX ? NEURON_COPY_OWNER : 0);
    const uint64_t *regs = j->region_count == UINT32_MAX ? NULL : b->regions + 2 * j->region_first;
    uint32_t nregs = j->region_count == UINT32_MAX ? 0 : j->region_count;
    int32_t rc;
    if (regs && nregs == 0) {
        /* an explicit empty list: the whole file is a hole */
        static const uint64_t none[2] = { 0, 0 };
        rc = neuron_copy_fd(s, d, none, 1, buf, b->buf_len, flags, j->uid, j->gid, &j->stats);
    } else {
        rc = neuron_copy_fd(s, d, regs, nregs, buf, b->buf_len, flags, j->uid, j->gid, &j->stats);
    }
    if (rc == NEURON_OK && memcmp(j->stats.digest, j->stats.verify_digest, 32) != 0) {
        rc = NEURON_EIO;
        j->stats.failed_stage = NEURON_COPY_STAGE_VERIFY;
        j->stats.os_errno = 0;
    }
    if (rc == NEURON_OK && fchmod(d, (mode_t)(j->mode & 07777)) < 0) {
        rc = NEURON_EIO;
        j->stats.failed_stage = NEURON_COPY_STAGE_META;
        j->stats.os_errno = errno;
    }
    close(s);
    close(d);
    if (rc != NEURON_OK) {
        unlink(part);
        j->status = rc;
        return;
    }
    if (link(part, target) < 0) {
        j->link_errno = errno;
        unlink(part);
    }
}

static void *lane_main(void *arg) {
    lane *l = arg;
    batch *b = l->b;
    for (;;) {
        unsigned i = atomic_fetch_add(&b->next, 1);
        if (i >= b->count) break;
        run_job(b, &b->jobs[i], l->buf);
    }
    return NULL;
}

NEURON_EXPORT int32_t neuron_copy_batch(const uint8_t *paths, size_t paths_len, const uint64_t *regions, size_t region_pairs,
                                        neuron_copy_job *jobs, uint32_t count, uint32_t threads, uint8_t *bufs,
                                        size_t buf_len) {
    if (!paths || !jobs || !bufs || count > NEURON_COPY_MAX_JOBS || threads < 1 || threads > NEURON_COPY_MAX_THREADS ||
        !buf_ok(bufs, buf_len) || (region_pairs && !regions))
        return NEURON_EINVAL;
    if (count == 0) return NEURON_OK;
    batch b = { .paths = paths, .paths_len = paths_len, .regions = regions, .region_pairs = region_pairs, .jobs = jobs, .count = count, .bufs = bufs, .buf_len = buf_len };
    atomic_init(&b.next, 0);
    if (threads > count) threads = count;
    lane lanes[NEURON_COPY_MAX_THREADS];
    pthread_t tids[NEURON_COPY_MAX_THREADS];
    uint32_t started = 0;
    for (uint32_t t = 0; t < threads; t++) lanes[t] = (lane){ .b = &b, .buf = bufs + (size_t)t * buf_len };
    for (uint32_t t = 1; t < threads; t++) {
        if (pthread_create(&tids[t], NULL, lane_main, &lanes[t]) != 0) break;
        started = t;
    }
    lane_main(&lanes[0]);
    for (uint32_t t = 1; t <= started; t++) pthread_join(tids[t], NULL);
    return NEURON_OK;
}

/* ---- extended attributes ---- */

#include <sys/xattr.h>

NEURON_EXPORT int32_t neuron_xattr_copy(const char *src_path, const char *src_name, const char *dst_path,
                                        const char *dst_name, uint8_t *buf, size_t buf_len, uint32_t *size_out,
                                        int32_t *stage_out, int32_t *errno_out) {
    if (!src_path || !src_name || !dst_path || !dst_name || !buf || buf_len < 2 * (size_t)NEURON_XATTR_MAX ||
        !size_out || !stage_out || !errno_out)
        return NEURON_EINVAL;
    *size_out = 0;
    *stage_out = 0;
    *errno_out = 0;
    ssize_t n = lgetxattr(src_path, src_name, buf, NEURON_XATTR_MAX);
    if (n < 0) {
        *stage_out = NEURON_XATTR_STAGE_READ;
        *errno_out = errno;
        return NEURON_EIO;
    }
    if (lsetxattr(dst_path, dst_name, buf, (size_t)n, XATTR_CREATE) < 0) {
        *stage_out = NEURON_XATTR_STAGE_WRITE;
        *errno_out = errno;
        return NEURON_EIO;
    }
    uint8_t *back = buf + NEURON_XATTR_MAX;
    ssize_t m = lgetxattr(dst_path, dst_name, back, NEURON_XATTR_MAX);
    if (m != n || memcmp(buf, back, (size_t)n) != 0) {
        *stage_out = NEURON_XATTR_STAGE_VERIFY;
        *errno_out = m < 0 ? errno : 0;
        return NEURON_EIO;
    }
    *size_out = (uint32_t)n;
    return NEURON_OK;
}

NEURON_EXPORT int32_t neuron_xattr_set(const char *path, const char *name, const uint8_t *value, uint32_t len,
                                       int32_t *errno_out) {
    if (!path || !name || (!value && len) || len > NEURON_XATTR_MAX || !errno_out) return NEURON_EINVAL;
    *errno_out = 0;
    if (lsetxattr(path, name, value, len, XATTR_CREATE) < 0) {
        *errno_out = errno;
        return NEURON_EIO;
    }
    return NEURON_OK;
}
