/*
 * Minimal deterministic CBOR (RFC 8949) encoder and decoder.
 */
#include <errno.h>
#include <string.h>

#include "iog_cbor.h"

/*
 * Every data item starts with a head (RFC 8949 §3):
 *
 *    7   6   5   4   3   2   1   0
 *  +-----------+-------------------+
 *  |  major    |  additional info  |   then 0, 1, 2, 4 or 8 bytes of argument
 *  |  type     |  (AI)             |   (big-endian) when AI = 24, 25, 26, 27
 *  +-----------+-------------------+
 *
 *  AI 0..23 is the argument itself; 28..30 are reserved; 31 is an indefinite
 *  length (rejected here, PROTOCOL.md §1). Deterministic encoding uses the
 *  shortest form of every argument (RFC 8949 §4.2.1).
 */

void iog_cbor_enc_init(iog_cbor_enc_t *e, uint8_t *buf, size_t cap)
{
    e->buf = buf;
    e->cap = cap;
    e->len = 0;
    e->err = 0;
}

size_t iog_cbor_head_len(uint64_t v)
{
    if (v < 24) {
        return 1;
    }
    if (v <= 0xFF) {
        return 2;
    }
    if (v <= 0xFFFF) {
        return 3;
    }
    if (v <= 0xFFFFFFFFu) {
        return 5;
    }
    return 9;
}

static void put_head(iog_cbor_enc_t *e, uint8_t mt, uint64_t v)
{
    size_t n = iog_cbor_head_len(v);
    if (e->err) {
        return;
    }
    if (e->cap - e->len < n) {
        e->err = -ENOBUFS;
        return;
    }
    /* AI: the argument itself, or 24..27 for 1, 2, 4 or 8 bytes of it, big-endian */
    static const uint8_t ai[10] = { 0, 0, 24, 25, 0, 26, 0, 0, 0, 27 }; /* by n */
    uint8_t *o = e->buf + e->len;
    o[0] = (uint8_t)(mt << 5 | (n == 1 ? (uint8_t)v : ai[n]));
    for (size_t i = n - 1; i > 0; i--, v >>= 8) {
        o[i] = (uint8_t)v;
    }
    e->len += n;
}

void iog_cbor_put_raw(iog_cbor_enc_t *e, const void *p, size_t n)
{
    if (e->err) {
        return;
    }
    if (e->cap - e->len < n) {
        e->err = -ENOBUFS;
        return;
    }
    if (n) {
        memcpy(e->buf + e->len, p, n);
    }
    e->len += n;
}

void iog_cbor_put_uint(iog_cbor_enc_t *e, uint64_t v)
{
    put_head(e, IOG_CBOR_UINT, v);
}

void iog_cbor_put_int(iog_cbor_enc_t *e, int64_t v)
{
    if (v >= 0) {
        put_head(e, IOG_CBOR_UINT, (uint64_t)v);
    }
    else {
        /* -1 - v without overflow for INT64_MIN */
        put_head(e, IOG_CBOR_NINT, (uint64_t)(-(v + 1)));
    }
}

void iog_cbor_put_bstr_head(iog_cbor_enc_t *e, size_t n)
{
    put_head(e, IOG_CBOR_BSTR, n);
}

void iog_cbor_put_bstr(iog_cbor_enc_t *e, const void *p, size_t n)
{
    put_head(e, IOG_CBOR_BSTR, n);
    iog_cbor_put_raw(e, p, n);
}

void iog_cbor_put_tstr(iog_cbor_enc_t *e, const void *p, size_t n)
{
    put_head(e, IOG_CBOR_TSTR, n);
    iog_cbor_put_raw(e, p, n);
}

void iog_cbor_put_cstr(iog_cbor_enc_t *e, const char *s)
{
    iog_cbor_put_tstr(e, s, strlen(s));
}

void iog_cbor_put_array(iog_cbor_enc_t *e, size_t n)
{
    put_head(e, IOG_CBOR_ARRAY, n);
}

void iog_cbor_put_map(iog_cbor_enc_t *e, size_t n)
{
    put_head(e, IOG_CBOR_MAP, n);
}

int iog_cbor_enc_finish(const iog_cbor_enc_t *e)
{
    return e->err ? e->err : (int)e->len;
}

/* ---- decoding ---- */

void iog_cbor_dec_init(iog_cbor_dec_t *d, const uint8_t *buf, size_t len)
{
    d->p = buf;
    d->end = buf + len;
}

int iog_cbor_at_end(const iog_cbor_dec_t *d)
{
    return d->p == d->end;
}

/* Reads a head; rejects reserved and indefinite AI. Strings are consumed. */
static int read_head(iog_cbor_dec_t *d, iog_cbor_item_t *it)
{
    if (d->p >= d->end) {
        return -EBADMSG;
    }
    it->raw = d->p;
    uint8_t ib = *d->p++;
    uint8_t ai = ib & 0x1F;
    it->type = ib >> 5;
    it->ptr = NULL;
    if (ai < 24) {
        it->arg = ai;
    }
    else if (ai <= 27) {
        size_t n = (size_t)1 << (ai - 24);
        if ((size_t)(d->end - d->p) < n) {
            return -EBADMSG;
        }
        uint64_t v = 0;
        for (size_t i = 0; i < n; i++) {
            v = (v << 8) | *d->p++;
        }
        it->arg = v;
    }
    else {
        /* 28..30 reserved, 31 indefinite length / break */
        return ai == 31 ? -ENOTSUP : -EBADMSG;
    }
    if (it->type == IOG_CBOR_BSTR || it->type == IOG_CBOR_TSTR) {
        if (it->arg > (uint64_t)(d->end - d->p)) {
            return -EBADMSG;
        }
        it->ptr = d->p;
        d->p += (size_t)it->arg;
    }
    return 0;
}

int iog_cbor_next(iog_cbor_dec_t *d, iog_cbor_item_t *it)
{
    int r = read_head(d, it);
    return r == -ENOTSUP ? -EBADMSG : r;
}

/* RFC 3629 UTF-8 validation: no overlongs, no surrogates, <= U+10FFFF. */
static int utf8_ok(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c < 0xC0 || c >= 0xF8) { /* a continuation byte, or no lead byte at all */
            return 0;
        }
        /* 110xxxxx, 1110xxxx, 11110xxx: k continuation bytes, 6 - k bits of the code point */
        size_t k = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : 1;
        uint32_t cp = c & (0x3Fu >> k);
        if (n - i <= k) {
            return 0;
        }
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xC0) != 0x80) {
                return 0;
            }
            cp = (cp << 6) | (s[i + j] & 0x3F);
        }
        static const uint32_t min[4] = { 0, 0x80, 0x800, 0x10000 };
        if (cp < min[k] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            return 0;
        }
        i += k + 1;
    }
    return 1;
}

static int check_item(iog_cbor_dec_t *d, unsigned depth)
{
    iog_cbor_item_t it;
    int r = read_head(d, &it);
    if (r) {
        return r;
    }
    switch (it.type) {
    case IOG_CBOR_UINT:
    case IOG_CBOR_NINT:
    case IOG_CBOR_BSTR:
        return 0;
    case IOG_CBOR_TSTR:
        return utf8_ok(it.ptr, (size_t)it.arg) ? 0 : -EBADMSG;
    case IOG_CBOR_ARRAY:
    case IOG_CBOR_MAP: {
        /* a map's items are its keys and values, alternately */
        size_t map = it.type == IOG_CBOR_MAP;
        if (depth >= IOG_CBOR_MAX_DEPTH || it.arg > (map ? IOG_CBOR_MAX_MAP : IOG_CBOR_MAX_ARRAY)) {
            return -EBADMSG;
        }
        /* keys as raw encodings: a duplicate is two equal encodings */
        const uint8_t *kp[IOG_CBOR_MAX_MAP];
        size_t kl[IOG_CBOR_MAX_MAP];
        for (size_t i = 0; i < ((size_t)it.arg << map); i++) {
            const uint8_t *start = d->p;
            if ((r = check_item(d, depth + 1))) {
                return r;
            }
            if (map && !(i & 1)) {
                size_t k = i / 2;
                kp[k] = start;
                kl[k] = (size_t)(d->p - start);
                for (size_t j = 0; j < k; j++) {
                    if (kl[j] == kl[k] && memcmp(kp[j], kp[k], kl[k]) == 0) {
                        return -EBADMSG;
                    }
                }
            }
        }
        return 0;
    }
    default:
        /* tags, floats and simple values: none in PROTOCOL.md */
        return -ENOTSUP;
    }
}

int iog_cbor_check(const uint8_t *buf, size_t len)
{
    iog_cbor_dec_t d;
    iog_cbor_dec_init(&d, buf, len);
    int r = check_item(&d, 0);
    if (r) {
        return r;
    }
    return iog_cbor_at_end(&d) ? 0 : -EBADMSG;
}

/* Skips one item: the check of iog_cbor_check() walks it (what is skipped in was checked whole). */
int iog_cbor_skip(iog_cbor_dec_t *d)
{
    return check_item(d, 0) ? -EBADMSG : 0;
}

static int get_typed(iog_cbor_dec_t *d, uint8_t type, iog_cbor_item_t *it)
{
    const uint8_t *save = d->p;
    if (iog_cbor_next(d, it) || it->type != type) {
        d->p = save;
        return -EBADMSG;
    }
    return 0;
}

int iog_cbor_get_uint(iog_cbor_dec_t *d, uint64_t *v)
{
    iog_cbor_item_t it;
    if (get_typed(d, IOG_CBOR_UINT, &it)) {
        return -EBADMSG;
    }
    *v = it.arg;
    return 0;
}

int iog_cbor_get_int(iog_cbor_dec_t *d, int64_t *v)
{
    iog_cbor_item_t it;
    const uint8_t *save = d->p;
    if (iog_cbor_next(d, &it)) {
        return -EBADMSG;
    }
    if ((it.type != IOG_CBOR_UINT && it.type != IOG_CBOR_NINT) ||
        it.arg > (uint64_t)INT64_MAX) {
        d->p = save;
        return -EBADMSG;
    }
    *v = it.type == IOG_CBOR_UINT ? (int64_t)it.arg : -1 - (int64_t)it.arg;
    return 0;
}

int iog_cbor_get_key(iog_cbor_dec_t *d, int64_t *key)
{
    return iog_cbor_get_int(d, key);
}

/*
 * A string of @p type (its bytes in *p), or an array or map head of @p type
 * with at most @p max items (p NULL). *n is the length or count.
 */
static int get_sized(iog_cbor_dec_t *d, uint8_t type, uint64_t max, const uint8_t **p, size_t *n)
{
    iog_cbor_item_t it;
    if (get_typed(d, type, &it) || it.arg > max) {
        return -EBADMSG;
    }
    if (p) {
        *p = it.ptr;
    }
    *n = (size_t)it.arg;
    return 0;
}

int iog_cbor_get_bstr(iog_cbor_dec_t *d, const uint8_t **p, size_t *n)
{
    return get_sized(d, IOG_CBOR_BSTR, SIZE_MAX, p, n);
}

int iog_cbor_get_tstr(iog_cbor_dec_t *d, const uint8_t **p, size_t *n)
{
    return get_sized(d, IOG_CBOR_TSTR, SIZE_MAX, p, n);
}

int iog_cbor_get_array(iog_cbor_dec_t *d, size_t *n)
{
    return get_sized(d, IOG_CBOR_ARRAY, IOG_CBOR_MAX_ARRAY, NULL, n);
}

int iog_cbor_get_map(iog_cbor_dec_t *d, size_t *n)
{
    return get_sized(d, IOG_CBOR_MAP, IOG_CBOR_MAX_MAP, NULL, n);
}

int iog_cbor_get_bstr_exact(iog_cbor_dec_t *d, uint8_t *out, size_t n)
{
    const uint8_t *p;
    size_t len;
    if (iog_cbor_get_bstr(d, &p, &len) || len != n) {
        return -EBADMSG;
    }
    memcpy(out, p, n);
    return 0;
}

int iog_cbor_map_open(iog_cbor_dec_t *d, const uint8_t *buf, size_t len, size_t *n)
{
    if (iog_cbor_check(buf, len)) {
        return -EBADMSG;
    }
    iog_cbor_dec_init(d, buf, len);
    return iog_cbor_get_map(d, n) ? -EBADMSG : 0;
}

int iog_cbor_get_label(iog_cbor_dec_t *d, int *k)
{
    int64_t v;
    if (iog_cbor_get_int(d, &v) || v < -32767 || v > 32767) {
        return -EBADMSG;
    }
    *k = (int)v;
    return 0;
}

int iog_cbor_map_key(iog_cbor_dec_t *d, int max, int *k, uint32_t *seen)
{
    if (iog_cbor_get_label(d, k) || *k < 1 || *k > max) {
        return -EBADMSG;
    }
    *seen |= 1u << *k;
    return 0;
}
