#ifndef VECTORS_TYPES_H
#define VECTORS_TYPES_H
/**
 * Where the vectors go: in the QEMU image, below the ESP8266's 80 KB dram0
 * (lx106/qemu.ld), which the tests' other data fills.
 */
#ifdef IOG_TEST_LX106
#define VEC_SECTION __attribute__((section(".qemu_vectors")))
#else
#define VEC_SECTION
#endif
/** One field of a shared vector, flattened ("a.b.0" = value). */
typedef struct {
    const char *k;
    const char *v;
} vec_kv_t;
/** One vector: its file and fields. */
typedef struct {
    const char *file;
    const vec_kv_t *kv;
    unsigned n;
} vec_t;
#endif
