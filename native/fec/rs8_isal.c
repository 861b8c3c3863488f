/*
 * ISA-L kernel: the bulk multiply-accumulate runs on Intel ISA-L's ec_encode_data (it accepts any
 * coefficient matrix; same field, polynomial 0x11D). libisal.so.2 is opened at run time the first
 * time this kernel is asked for, so the library has no link-time dependency on it. Row operations
 * of the decode-matrix inversion use the fastest own kernel. Used as the benchmark baseline.
 */
#include "rs8_internal.h"

#include <dlfcn.h>
#include <pthread.h>

typedef void (*isal_init_tables_fn)(int k, int rows, unsigned char *a, unsigned char *gftbls);
typedef void (*isal_encode_fn)(int len, int k, int rows, unsigned char *gftbls, unsigned char **data,
                               unsigned char **coding);

static pthread_once_t isal_once = PTHREAD_ONCE_INIT;
static isal_init_tables_fn isal_init_tables;
static isal_encode_fn isal_encode;
static rs8_kernel isal;
static int isal_ok;

static void prepare(const uint8_t *coefs, uint32_t rows, uint32_t cols, uint8_t *tables) {
    isal_init_tables((int)cols, (int)rows, (unsigned char *)(uintptr_t)coefs, tables);
}

static void apply(size_t len, uint32_t nsrc, uint32_t nout, const uint8_t *tables, const uint8_t *coefs,
                  const uint8_t *const *src, uint8_t *const *out) {
    (void)coefs;
    isal_encode((int)len, (int)nsrc, (int)nout, (unsigned char *)(uintptr_t)tables,
                (unsigned char **)(uintptr_t)src, (unsigned char **)(uintptr_t)out);
}

static void isal_load(void) {
    void *h = dlopen("libisal.so.2", RTLD_NOW | RTLD_LOCAL);
    if (!h) return;
    isal_init_tables = (isal_init_tables_fn)dlsym(h, "ec_init_tables");
    isal_encode = (isal_encode_fn)dlsym(h, "ec_encode_data");
    if (!isal_init_tables || !isal_encode) {
        dlclose(h);
        return;
    }
    const rs8_kernel *rows = rs8_kernel_gfni_avx512();
    if (!rows) rows = rs8_kernel_gfni_avx2();
    if (!rows) rows = rs8_kernel_avx2();
    if (!rows) rows = rs8_kernel_portable();
    isal = (rs8_kernel){
        .id = NEURON_RS8_KERNEL_ISAL,
        .coef_bytes = 32,
        .prepare = prepare,
        .apply = apply,
        .invert = rows->invert,
    };
    isal_ok = 1; /* the handle stays open for the life of the process */
}

const rs8_kernel *rs8_kernel_isal(void) {
    pthread_once(&isal_once, isal_load);
    return isal_ok ? &isal : NULL;
}
