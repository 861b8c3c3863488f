/*
 * migrate.h — file copy for data migration: one call per file copies, checksums and verifies.
 *
 * Content digest ("sha256-z64k"), independent of how a file's holes are laid out on either side:
 *   SHA-256 over, for every 64 KiB-aligned block i of the file that holds a non-zero byte,
 *   u64le(i) followed by the block's bytes (the last block may be shorter), then u64le(size).
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
    uint8_t digest[32];         /* sha256-z64k of the source as read */
    uint8_t verify_digest[32];  /* sha256-z64k of the target read back (zeros without VERIFY) */
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
 * sha256-z64k of the whole file fd (holes skipped by SEEK_DATA/SEEK_HOLE where the file system
 * has them) into out[32]; *size_out gets its size. Same buffer rules as neuron_copy_fd.
 * Returns NEURON_OK, NEURON_EINVAL, NEURON_ECRYPTO or NEURON_EIO (errno in *errno_out).
 */
NEURON_EXPORT int32_t neuron_digest_fd(int32_t fd, uint8_t *buf, size_t buf_len, uint8_t *out, uint64_t *size_out,
                                       int32_t *errno_out);

#ifdef __cplusplus
}
#endif

#endif
