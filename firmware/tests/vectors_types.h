#ifndef VECTORS_TYPES_H
#define VECTORS_TYPES_H
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
