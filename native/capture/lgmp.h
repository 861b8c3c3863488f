/* Internal: field offsets and atomic accessors of the LGMP/KVMFR layout (see ../capture.h). */
#ifndef NEURON_CAPTURE_LGMP_H
#define NEURON_CAPTURE_LGMP_H

#include <stdint.h>
#include <time.h>

#include "../capture.h"

/* Header */
#define H_MAGIC 0u
#define H_VERSION 4u
#define H_SESSION 8u
#define H_TIMESTAMP 16u
#define H_NUMQUEUES 24u
#define H_QUEUES 32u
#define H_UDATASIZE 5752u

/* Queue (relative to the queue) */
#define Q_ID 0u
#define Q_NUMMSG 4u
#define Q_NEWSUB 8u
#define Q_MAXTIME 12u
#define Q_POSITION 16u
#define Q_MSGOFF 20u
#define Q_TIMEOUT 24u
#define Q_CLIENTID 280u
#define Q_LOCK 408u
#define Q_SUBS 416u
#define Q_START 424u
#define Q_MSGTIMEOUT 432u
#define Q_COUNT 440u

/* Message (relative to the message) */
#define M_UDATA 0u
#define M_SIZE 4u
#define M_OFFSET 8u
#define M_PENDING 12u

/* KVMFR udata */
#define K_MAGIC 0u
#define K_VERSION 8u
#define K_HOSTVER 12u
#define K_FEATURES 44u
#define K_SIZE 48u

/* KVMFRFrame v20 */
#define F_FORMATVER 0u
#define F_SERIAL 4u
#define F_TYPE 8u
#define F_SCREENW 12u
#define F_SCREENH 16u
#define F_DATAW 20u
#define F_DATAH 24u
#define F_FRAMEW 28u
#define F_FRAMEH 32u
#define F_ROTATION 36u
#define F_STRIDE 40u
#define F_PITCH 44u
#define F_OFFSET 48u
#define F_DAMAGECOUNT 52u
#define F_DAMAGE 56u
#define F_FLAGS 1080u
#define F_B6_SHIFT 8u /* v19: fields from frameWidth on sit 8 bytes earlier */

/* KVMFRCursor */
#define C_X 0u
#define C_Y 2u
#define C_TYPE 4u
#define C_HX 8u
#define C_HY 9u
#define C_WIDTH 12u
#define C_HEIGHT 16u
#define C_PITCH 20u

#define LGMP_MAX_CLIENTS 32u

static inline volatile uint32_t *u32p(uint8_t *base, uint64_t off) { return (volatile uint32_t *)(base + off); }
static inline volatile uint64_t *u64p(uint8_t *base, uint64_t off) { return (volatile uint64_t *)(base + off); }

static inline uint32_t ld32(uint8_t *base, uint64_t off) {
    return __atomic_load_n((uint32_t *)(base + off), __ATOMIC_ACQUIRE);
}
static inline uint64_t ld64(uint8_t *base, uint64_t off) {
    return __atomic_load_n((uint64_t *)(base + off), __ATOMIC_ACQUIRE);
}
static inline void st32(uint8_t *base, uint64_t off, uint32_t v) {
    __atomic_store_n((uint32_t *)(base + off), v, __ATOMIC_RELEASE);
}
static inline void st64(uint8_t *base, uint64_t off, uint64_t v) {
    __atomic_store_n((uint64_t *)(base + off), v, __ATOMIC_RELEASE);
}

static inline int lgmp_trylock(uint8_t *base, uint64_t q) {
    uint32_t expected = 0;
    return __atomic_compare_exchange_n((uint32_t *)(base + q + Q_LOCK), &expected, 1u, 0, __ATOMIC_ACQUIRE,
                                       __ATOMIC_RELAXED);
}
static inline void lgmp_unlock(uint8_t *base, uint64_t q) { st32(base, q + Q_LOCK, 0); }

static inline uint64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint64_t wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000ull + (uint64_t)ts.tv_nsec / 1000000ull;
}

/* Sleeps for `us` microseconds. */
void neuron_capture_sleep_us(uint32_t us);

#endif
