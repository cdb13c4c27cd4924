/**
 * @file
 * @brief Minimal deterministic CBOR (RFC 8949) for IoT-Guard, no malloc.
 *
 * The encoder writes core deterministic CBOR (RFC 8949 §4.2.1): every head in
 * its shortest form. Map keys must be written by the caller in deterministic
 * order (for the small integer keys of PROTOCOL.md: 0, 1, ... 23, then
 * -1, -2, ...). Errors are sticky: after the first failure every call is a
 * no-op and iog_cbor_enc_finish() returns the error.
 *
 * The decoder is a pull parser over a caller-owned buffer. iog_cbor_check()
 * validates one whole item against the limits of PROTOCOL.md §1 (no
 * indefinite lengths, no tags, no floats or simple values, no duplicate map
 * keys, nesting <= 8, arrays <= 64 items, maps <= 32 pairs, valid UTF-8 in
 * text strings, no trailing bytes) before any field is read, so the typed
 * readers that follow need only check the shape of the message.
 */
#ifndef IOG_CBOR_H
#define IOG_CBOR_H

#include <stddef.h>
#include <stdint.h>

#include "iog_config.h"

#ifdef __cplusplus
extern "C" {
#endif

/** CBOR major types. */
enum {
    IOG_CBOR_UINT = 0,  /**< unsigned integer */
    IOG_CBOR_NINT = 1,  /**< negative integer, value -1 - arg */
    IOG_CBOR_BSTR = 2,  /**< byte string */
    IOG_CBOR_TSTR = 3,  /**< text string */
    IOG_CBOR_ARRAY = 4, /**< array of arg items */
    IOG_CBOR_MAP = 5,   /**< map of arg pairs */
    IOG_CBOR_TAG = 6,   /**< tag (always rejected) */
    IOG_CBOR_SIMPLE = 7 /**< simple/float (always rejected) */
};

/** Encoder state over a caller-owned buffer. */
typedef struct {
    uint8_t *buf; /**< output buffer */
    size_t cap;   /**< its capacity */
    size_t len;   /**< bytes written so far */
    int err;      /**< first error (negative errno) or 0 */
} iog_cbor_enc_t;

/** Starts encoding into @p buf of @p cap bytes. */
void iog_cbor_enc_init(iog_cbor_enc_t *e, uint8_t *buf, size_t cap);
/** Writes an unsigned integer. */
void iog_cbor_put_uint(iog_cbor_enc_t *e, uint64_t v);
/** Writes a signed integer (major type 0 or 1). */
void iog_cbor_put_int(iog_cbor_enc_t *e, int64_t v);
/** Writes a byte string. */
void iog_cbor_put_bstr(iog_cbor_enc_t *e, const void *p, size_t n);
/** Writes a text string (the caller guarantees UTF-8). */
void iog_cbor_put_tstr(iog_cbor_enc_t *e, const void *p, size_t n);
/** Writes a NUL-terminated text string. */
void iog_cbor_put_cstr(iog_cbor_enc_t *e, const char *s);
/** Writes an array head; @p n items must follow. */
void iog_cbor_put_array(iog_cbor_enc_t *e, size_t n);
/** Writes a map head; @p n key/value pairs must follow. */
void iog_cbor_put_map(iog_cbor_enc_t *e, size_t n);
/** Writes a byte string head of @p n bytes; the content must follow. */
void iog_cbor_put_bstr_head(iog_cbor_enc_t *e, size_t n);
/** Copies already encoded bytes. */
void iog_cbor_put_raw(iog_cbor_enc_t *e, const void *p, size_t n);
/**
 * @brief Ends encoding.
 * @return the number of bytes written, or -ENOBUFS if the buffer was too small.
 */
int iog_cbor_enc_finish(const iog_cbor_enc_t *e);

/** Number of bytes a head with argument @p v takes (1, 2, 3, 5 or 9). */
size_t iog_cbor_head_len(uint64_t v);

/** Decoder cursor over a caller-owned buffer. */
typedef struct {
    const uint8_t *p;   /**< next byte */
    const uint8_t *end; /**< one past the last byte */
} iog_cbor_dec_t;

/** One decoded data item head. */
typedef struct {
    uint8_t type;       /**< major type */
    uint64_t arg;       /**< argument: value, length or count */
    const uint8_t *ptr; /**< start of string content (strings only) */
    const uint8_t *raw; /**< start of the item's encoding */
} iog_cbor_item_t;

/** Starts decoding @p len bytes at @p buf. */
void iog_cbor_dec_init(iog_cbor_dec_t *d, const uint8_t *buf, size_t len);

/**
 * @brief Validates that @p buf holds exactly one well-formed item within the
 *        limits of PROTOCOL.md §1.
 * @return 0, -EBADMSG if malformed or over a limit, -ENOTSUP on a tag,
 *         indefinite length, float or simple value.
 */
int iog_cbor_check(const uint8_t *buf, size_t len);

/**
 * @brief Reads the next item head; strings are consumed whole.
 * @return 0, or -EBADMSG on truncation or a reserved/indefinite encoding.
 */
int iog_cbor_next(iog_cbor_dec_t *d, iog_cbor_item_t *it);
/**
 * @brief Skips one whole item (with its children), checking it as
 *        iog_cbor_check() does. @return 0 or -EBADMSG.
 */
int iog_cbor_skip(iog_cbor_dec_t *d);

/** Reads an unsigned integer. @return 0 or -EBADMSG on another type. */
int iog_cbor_get_uint(iog_cbor_dec_t *d, uint64_t *v);
/** Reads a signed integer that fits int64_t. @return 0 or -EBADMSG. */
int iog_cbor_get_int(iog_cbor_dec_t *d, int64_t *v);
/** Reads a byte string. @return 0 or -EBADMSG. */
int iog_cbor_get_bstr(iog_cbor_dec_t *d, const uint8_t **p, size_t *n);
/** Reads a text string. @return 0 or -EBADMSG. */
int iog_cbor_get_tstr(iog_cbor_dec_t *d, const uint8_t **p, size_t *n);
/** Reads an array head. @return 0 or -EBADMSG. */
int iog_cbor_get_array(iog_cbor_dec_t *d, size_t *n);
/** Reads a map head. @return 0 or -EBADMSG. */
int iog_cbor_get_map(iog_cbor_dec_t *d, size_t *n);
/** Reads a byte string of exactly @p n bytes into @p out. @return 0 or -EBADMSG. */
int iog_cbor_get_bstr_exact(iog_cbor_dec_t *d, uint8_t *out, size_t n);
/** Reads an integer map key (-2^63..2^63-1). @return 0 or -EBADMSG. */
int iog_cbor_get_key(iog_cbor_dec_t *d, int64_t *key);
/**
 * @brief Reads a map key or COSE label that is a small integer (|k| < 2^15);
 *        a larger one is no key a message of PROTOCOL.md knows.
 * @return 0 or -EBADMSG.
 */
int iog_cbor_get_label(iog_cbor_dec_t *d, int *k);
/** True when the whole buffer has been consumed. */
int iog_cbor_at_end(const iog_cbor_dec_t *d);

/**
 * @brief Starts decoding the CBOR map in @p buf: well-formedness and the
 *        limits first (iog_cbor_check()), then the map head.
 * @param[out] n its number of pairs
 * @return 0 or -EBADMSG.
 */
int iog_cbor_map_open(iog_cbor_dec_t *d, const uint8_t *buf, size_t len, size_t *n);

/**
 * @brief Reads the next key of a map whose keys are 1..@p max (max <= 31) and
 *        sets its bit in @p seen (iog_cbor_check() already refused duplicates).
 * @return 0 or -EBADMSG.
 */
int iog_cbor_map_key(iog_cbor_dec_t *d, int max, int *k, uint32_t *seen);

#ifdef __cplusplus
}
#endif

#endif /* IOG_CBOR_H */
