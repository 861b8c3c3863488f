/*
 * migrate.h — file copy for data migration: one call per file copies, checksums and verifies.
 *
 * Content digest ("xxh128-z64k"), independent of how a file's holes are laid out on either side:
 *   XXH3-128 (libxxhash, streaming) over, for every 64 KiB-aligned block i of the file that holds
 *   a non-zero byte, u64le(i) followed by the block's bytes (the last block may be shorter), then
 *   u64le(size). Written as its 16-byte canonical (big-endian) form into the first half of a
 *   32-byte digest field, the second half zero. An integrity check of copies (as rsync's xxh128),
 *   not a defence against someone crafting collisions.
 *   All-zero blocks (holes or written zeros) contribute nothing, so they are never read where
 *   the source reports a hole and never written to the target: the target stays sparse.
 *
 * Source data regions come from the caller (e.g. an NTFS runlist) or from SEEK_DATA/SEEK_HOLE;
 * a file system without them is read whole. File descriptors are the caller's: the library
 * neither opens nor closes them.
 */
#ifndef NEURON_MIGRATE_H
#define NEURON_MIGRATE_H

#include "neuron.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NEURON_COPY_BLOCK 65536u          /* digest and sparseness granularity (bytes) */
#define NEURON_COPY_MAX_BUF (64u << 20)   /* the largest work buffer accepted */
#define NEURON_COPY_MAX_REGIONS 1048576u  /* data regions per call */

/* Flags of neuron_copy_fd. */
#define NEURON_COPY_VERIFY 1u   /* read the target back and digest it into verify_digest */
#define NEURON_COPY_TIMES 2u    /* give the target the source's atime and mtime (ns) */
#define NEURON_COPY_OWNER 4u    /* fchown the target to uid:gid */

/* Failed stages (neuron_copy_stats.failed_stage). */
#define NEURON_COPY_STAGE_NONE 0
#define NEURON_COPY_STAGE_READ 1     /* reading the source */
#define NEURON_COPY_STAGE_WRITE 2    /* writing or truncating the target */
#define NEURON_COPY_STAGE_VERIFY 3   /* reading the target back */
#define NEURON_COPY_STAGE_META 4     /* fstat, fchown, futimens */

typedef struct neuron_copy_stats {
    uint64_t size;              /* logical size of the source (bytes) */
    uint64_t read_bytes;        /* bytes read from the source (holes reported by it are not read) */
    uint64_t written_bytes;     /* bytes written to the target (zero blocks left as holes) */
    uint8_t digest[32];         /* xxh128-z64k of the source as read (16 bytes, then zeros) */
    uint8_t verify_digest[32];  /* the same of the target read back (zeros without VERIFY) */
    int32_t failed_stage;       /* NEURON_COPY_STAGE_* */
    int32_t os_errno;           /* errno of the failed system call, 0 if none */
} neuron_copy_stats;

_Static_assert(sizeof(neuron_copy_stats) == 96, "neuron_copy_stats layout");
_Static_assert(__builtin_offsetof(neuron_copy_stats, digest) == 24, "digest offset");
_Static_assert(__builtin_offsetof(neuron_copy_stats, failed_stage) == 88, "failed_stage offset");

/*
 * Copies src_fd (read from offset 0, size from fstat) into dst_fd (an empty regular file).
 * regions: NULL, or region_count (offset, length) pairs of u64 — the source's data, ascending;
 * outside them the source is taken as zeros. buf: a work buffer of buf_len bytes, a multiple of
 * NEURON_COPY_BLOCK, at most NEURON_COPY_MAX_BUF. Returns NEURON_OK, NEURON_EINVAL (arguments),
 * NEURON_ECRYPTO, or NEURON_EIO with stats->failed_stage and stats->os_errno saying where.
 */
NEURON_EXPORT int32_t neuron_copy_fd(int32_t src_fd, int32_t dst_fd, const uint64_t *regions, uint32_t region_count,
                                     uint8_t *buf, size_t buf_len, uint32_t flags, uint32_t uid, uint32_t gid,
                                     neuron_copy_stats *stats);

/*
 * xxh128-z64k of the whole file fd (holes skipped by SEEK_DATA/SEEK_HOLE where the file system
 * has them) into out[32]; *size_out gets its size. Same buffer rules as neuron_copy_fd.
 * Returns NEURON_OK, NEURON_EINVAL, NEURON_ECRYPTO or NEURON_EIO (errno in *errno_out).
 */
NEURON_EXPORT int32_t neuron_digest_fd(int32_t fd, uint8_t *buf, size_t buf_len, uint8_t *out, uint64_t *size_out,
                                       int32_t *errno_out);

/*
 * A batch of file copies over a pool of threads (each with its own slice of bufs). Per job: open
 * the source (O_NOFOLLOW), create the part file (O_EXCL, mode), copy with VERIFY|TIMES (and OWNER
 * when uid != UINT32_MAX), compare the digests, set the mode, then link(2) the part file to the
 * target: link never replaces, so an existing target is never overwritten (link_errno EEXIST, part
 * file removed). The part file's name is left in place for the caller to remove once it has
 * recorded the copy (crash safety). A digest mismatch leaves no file: status NEURON_EIO,
 * failed_stage VERIFY, os_errno 0.
 */
typedef struct neuron_copy_job {
    uint64_t src_path;     /* offset in paths of the NUL-terminated source path */
    uint64_t part_path;    /* offset in paths of the part file to create */
    uint64_t target_path;  /* offset in paths of the final name */
    uint64_t region_first; /* index of the job's first (offset, length) pair in regions */
    uint32_t region_count; /* pairs; UINT32_MAX: no list (SEEK_DATA/SEEK_HOLE) */
    uint32_t mode;         /* permission bits of the target */
    uint32_t uid;          /* owner; UINT32_MAX leaves it */
    uint32_t gid;
    neuron_copy_stats stats; /* out */
    int32_t status;        /* out: NEURON_OK or a negative status */
    int32_t open_errno;    /* out: errno opening the source (0 if it opened) */
    int32_t link_errno;    /* out: errno of link(2), 0 when linked */
    uint32_t open_flags;   /* in: NEURON_COPY_SRC_* */
} neuron_copy_job;
/* neuron_copy_job.open_flags */
#define NEURON_COPY_SRC_DIRECT 1u /* open the source O_DIRECT (a FUSE source: the daemon's replies land
                                     in the buffer without a page cache copy); plain open if refused */

_Static_assert(sizeof(neuron_copy_job) == 160, "neuron_copy_job layout");
_Static_assert(__builtin_offsetof(neuron_copy_job, stats) == 48, "stats offset");
_Static_assert(__builtin_offsetof(neuron_copy_job, status) == 144, "status offset");
_Static_assert(__builtin_offsetof(neuron_copy_job, open_flags) == 156, "open_flags offset");

#define NEURON_COPY_MAX_JOBS 65536u
#define NEURON_COPY_MAX_THREADS 16u

/* Runs count jobs on `threads` threads (1..NEURON_COPY_MAX_THREADS); bufs holds threads * buf_len
 * bytes. Returns NEURON_OK (per-job outcomes in the jobs) or NEURON_EINVAL / NEURON_ENOMEM. */
NEURON_EXPORT int32_t neuron_copy_batch(const uint8_t *paths, size_t paths_len, const uint64_t *regions, size_t region_pairs,
                                        neuron_copy_job *jobs, uint32_t count, uint32_t threads, uint8_t *bufs,
                                        size_t buf_len);

/*
 * Extended attributes, for what NTFS keeps beside the data (named streams through ntfs-3g's
 * streams_interface=xattr, Windows attributes). Paths and names are NUL-terminated; links are
 * never followed (l*xattr). Values are at most NEURON_XATTR_MAX bytes.
 */
#define NEURON_XATTR_MAX 65536u
#define NEURON_XATTR_STAGE_READ 1   /* reading the source's attribute */
#define NEURON_XATTR_STAGE_WRITE 2  /* creating the target's */
#define NEURON_XATTR_STAGE_VERIFY 3 /* reading it back: absent or different */

/*
 * Copies attribute src_name of src_path to a new attribute dst_name of dst_path (XATTR_CREATE:
 * never replaces one), reads it back and compares. buf: at least 2 * NEURON_XATTR_MAX bytes.
 * Returns NEURON_OK (*size_out = the value's size) or NEURON_EIO with *stage_out
 * (NEURON_XATTR_STAGE_*) and *errno_out (ERANGE: larger than NEURON_XATTR_MAX; ENOTSUP: the
 * target file system keeps none; 0 on a read-back mismatch), or NEURON_EINVAL.
 */
NEURON_EXPORT int32_t neuron_xattr_copy(const char *src_path, const char *src_name, const char *dst_path,
                                        const char *dst_name, uint8_t *buf, size_t buf_len, uint32_t *size_out,
                                        int32_t *stage_out, int32_t *errno_out);

/* Creates attribute name = value[len] on path (XATTR_CREATE, no link followed). NEURON_OK or
 * NEURON_EIO with *errno_out; NEURON_EINVAL for len > NEURON_XATTR_MAX. */
NEURON_EXPORT int32_t neuron_xattr_set(const char *path, const char *name, const uint8_t *value, uint32_t len,
                                       int32_t *errno_out);

#ifdef __cplusplus
}
#endif

#endif
