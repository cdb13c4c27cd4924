/*
 * Persistent records: framing, checksum, and the payload layouts.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "iog_store.h"

static const uint8_t magic[2] = { 'i', 'g' };

void iog_settings_default(iog_settings_t *s)
{
    memset(s, 0, sizeof(*s));
    s->port = 5700;
    s->mode = IOG_MODE_CONSOLE;
    s->sleep_s = 60;
}

/* The first 8 bytes of SHA-256 over the header and the payload. */
static void check_bytes(const uint8_t *frame, size_t n, uint8_t out[8])
{
    uint8_t h[IOG_SHA256_LEN];
    iog_sha256(frame, n, h);
    memcpy(out, h, 8);
}

int iog_store_put(const iog_storage_t *st, unsigned rec, const uint8_t *payload, size_t len,
                  uint8_t *scratch, size_t cap)
{
    if (len > 0xFFFF || len + IOG_STORE_OVERHEAD > cap || len + IOG_STORE_OVERHEAD > IOG_STORE_FRAME_MAX) {
        return -EMSGSIZE;
    }
    scratch[0] = magic[0];
    scratch[1] = magic[1];
    scratch[2] = (uint8_t)rec;
    scratch[3] = IOG_STORE_VERSION;
    scratch[4] = (uint8_t)len;
    scratch[5] = (uint8_t)(len >> 8);
    if (scratch + 6 != payload) {
        memmove(scratch + 6, payload, len);
    }
    check_bytes(scratch, 6 + len, scratch + 6 + len);
    return st->write(st->ctx, rec, scratch, len + IOG_STORE_OVERHEAD);
}

int iog_store_get(const iog_storage_t *st, unsigned rec, uint8_t *buf, size_t cap,
                  const uint8_t **payload)
{
    uint8_t c[8];
    int n = st->read(st->ctx, rec, buf, cap);
    if (n < 0) {
        return n;
    }
    if (n == 0) {
        return -ENOENT;
    }
    if ((size_t)n < IOG_STORE_OVERHEAD || memcmp(buf, magic, 2) != 0 || buf[2] != rec ||
        buf[3] != IOG_STORE_VERSION) {
        return -EBADMSG;
    }
    size_t len = (size_t)buf[4] | (size_t)buf[5] << 8;
    if (len + IOG_STORE_OVERHEAD != (size_t)n) {
        return -EBADMSG;
    }
    check_bytes(buf, 6 + len, c);
    if (!iog_ct_eq(c, buf + 6 + len, sizeof(c))) {
        return -EBADMSG;
    }
    *payload = buf + 6;
    return (int)len;
}

int iog_store_erase(const iog_storage_t *st, unsigned rec)
{
    return st->write(st->ctx, rec, NULL, 0);
}

/*
 * ---- record payloads: fields in order, little-endian, no padding ----
 *
 * Each record is a table of fields of its struct, written and read by one
 * pair of loops: an integer as its bytes in memory (the store is for
 * little-endian targets; a uint32_t takes 8 bytes where the layout says
 * u64), bytes as they are, an ID or a string as a length byte and its
 * bytes, the credential as the bytes its count says. The layouts are those
 * of IOG_STORE_VERSION 1.
 */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the store's records are little-endian: convert the integers for this target"
#endif

enum {
    F_BYTES, /* len bytes (an integer of len bytes too) */
    F_WIDE,  /* a uint32_t as 8 bytes, the high half zero */
    F_VAR,   /* as many bytes (at most IOG_CRED_MAX) as the uint16_t just before it counts */
    F_STR,   /* a NUL-free string of < len bytes: length byte, bytes */
    F_ID,    /* a valid ID: length byte, bytes */
    F_ID0,   /* the same, or length 0: unset */
};

/* 4 bytes a field: the tables are static RAM on the ESP8266 (its .rodata) */
typedef struct {
    uint16_t off; /* offsetof() in the record's struct */
    uint8_t len;  /* see the kinds */
    uint8_t kind;
} field_t;

#define FK(T, m, kind, len) { offsetof(T, m), len, kind }
#define FB(T, m) FK(T, m, F_BYTES, sizeof(((T *)0)->m))
#define FSTR(T, m) FK(T, m, F_STR, sizeof(((T *)0)->m))
#define FADDR(T, m) FB(T, m.family), FB(T, m.ip), FB(T, m.port)

/* the credential's count is the uint16_t just before its bytes */
typedef char cred_count_before_it[offsetof(iog_settings_t, cred) ==
                                  offsetof(iog_settings_t, cred_len) + 2 ? 1 : -1];

/*
 * A cursor over the payload, for writing (put) or reading; the first overrun
 * or bad field sets err and stops it.
 */
typedef struct {
    uint8_t *buf; /* read only when reading */
    size_t n, cap;
    int put, err;
} cur_t;

/* The next @p n bytes of the payload, or NULL past its end. */
static uint8_t *take(cur_t *c, size_t n)
{
    if (c->err || c->n + n > c->cap) {
        c->err = 1;
        return NULL;
    }
    c->n += n;
    return c->buf + c->n - n;
}

/* Writes or reads the fields @p f of the struct at @p base. */
static void fields_do(cur_t *c, void *base, const field_t *f, size_t nf)
{
    for (; nf-- && !c->err; f++) {
        uint8_t *p = (uint8_t *)base + f->off, *w;
        size_t n = f->kind == F_WIDE ? 8 : f->len;
        if (f->kind == F_VAR) {
            n = *(const uint16_t *)(void *)(p - 2);
            c->err |= n > IOG_CRED_MAX;
        }
        else if (f->kind >= F_STR) { /* its length byte first */
            if ((w = take(c, 1)) == NULL) {
                break;
            }
            if (c->put) {
                *w = f->kind == F_STR ? (uint8_t)strlen((const char *)p) : p[0];
            }
            n = *w;
        }
        if ((w = take(c, n)) == NULL) {
            break;
        }
        if (c->put) {
            memcpy(w, p + (f->kind >= F_ID), n > 4 && f->kind == F_WIDE ? 4 : n);
            if (f->kind == F_WIDE) {
                memset(w + 4, 0, 4);
            }
            continue;
        }
        switch (f->kind) {
        case F_WIDE:
            memcpy(p, w, 4);
            c->err = (w[4] | w[5] | w[6] | w[7]) != 0;
            break;
        case F_STR:
            c->err = n >= f->len || memchr(w, 0, n);
            memcpy(p, w, c->err ? 0 : n);
            p[c->err ? 0 : n] = '\0';
            break;
        case F_ID:
        case F_ID0:
            memset(p, 0, sizeof(iog_id_t));
            c->err = (n || f->kind == F_ID) && iog_id_set((iog_id_t *)(void *)p, w, n);
            break;
        default:
            memcpy(p, w, n);
            break;
        }
    }
}

#define NF(t) (sizeof(t) / sizeof((t)[0]))

/* Writes the fields; @return the length or -ENOBUFS. */
static int rec_put(const void *base, const field_t *f, size_t nf, uint8_t *out, size_t cap)
{
    cur_t c = { out, 0, cap, 1, 0 };
    fields_do(&c, (void *)(uintptr_t)base, f, nf);
    return c.err ? -ENOBUFS : (int)c.n;
}

/* A reader over @p n bytes at @p p. */
#define READER(p, n) { (uint8_t *)(uintptr_t)(p), 0, n, 0, 0 }

/* ---- records ---- */

static const field_t key_fields[] = { FB(iog_identity_t, priv), FB(iog_identity_t, pub) };

int iog_rec_key_encode(const iog_identity_t *me, uint8_t *out, size_t cap)
{
    return rec_put(me, key_fields, NF(key_fields), out, cap);
}

int iog_rec_key_decode(const uint8_t *p, size_t n, iog_identity_t *me)
{
    cur_t c = READER(p, n);
    fields_do(&c, me, key_fields, NF(key_fields));
    return c.err || c.n != n || me->pub[0] != 0x04 ? -EBADMSG : 0;
}

static const field_t settings_fields[] = {
    FSTR(iog_settings_t, ssid),
    FSTR(iog_settings_t, pass),
    FADDR(iog_settings_t, server),
    FK(iog_settings_t, id, F_ID0, 0),
    FB(iog_settings_t, has_pos),
    FB(iog_settings_t, lat),
    FB(iog_settings_t, lon),
    FB(iog_settings_t, has_pin),
    FB(iog_settings_t, pin),
    FB(iog_settings_t, port),
    FB(iog_settings_t, mode),
    FK(iog_settings_t, peer, F_ID0, 0),
    FADDR(iog_settings_t, peer_addr),
    FK(iog_settings_t, sleep_s, F_WIDE, 4),
    FB(iog_settings_t, cred_len),
    FK(iog_settings_t, cred, F_VAR, 0),
};

int iog_rec_settings_encode(const iog_settings_t *s, uint8_t *out, size_t cap)
{
    return rec_put(s, settings_fields, NF(settings_fields), out, cap);
}

int iog_rec_settings_decode(const uint8_t *p, size_t n, iog_settings_t *s)
{
    cur_t c = READER(p, n);
    iog_settings_default(s);
    fields_do(&c, s, settings_fields, NF(settings_fields));
    /* what the console would refuse is refused here too */
    if (c.err || c.n != n || s->has_pos > 1 || s->has_pin > 1 || s->mode > IOG_MODE_SLEEPY ||
        s->port == 0 || s->sleep_s == 0 || s->sleep_s > IOG_SLEEP_MAX_S || s->lat < -90000000 || s->lat > 90000000 ||
        s->lon < -180000000 || s->lon > 180000000) {
        iog_settings_default(s);
        return -EBADMSG;
    }
    return 0;
}

#define MEM(m) mem.m
static const field_t member_fields[] = {
    FK(iog_rec_member_t, MEM(ch.cluster), F_ID, 0),
    FB(iog_rec_member_t, MEM(ch.pub)),
    FB(iog_rec_member_t, MEM(ch.lat)),
    FB(iog_rec_member_t, MEM(ch.lon)),
    FB(iog_rec_member_t, MEM(ch.radius)),
    FB(iog_rec_member_t, MEM(nd)),
    FB(iog_rec_member_t, MEM(nch)),
    FB(iog_rec_member_t, MEM(height)),
    FB(iog_rec_member_t, MEM(block)),
    FB(iog_rec_member_t, MEM(expires)),
    FB(iog_rec_member_t, MEM(keys)), /* K_m as its derived keys: byte arrays only */
    FB(iog_rec_member_t, mark),
    FB(iog_rec_member_t, clock),
    /* the log trailer, when there is a checkpoint */
    FB(iog_rec_member_t, log.size),
    FB(iog_rec_member_t, log.root),
};

int iog_rec_member_encode(const iog_rec_member_t *r, uint8_t *out, size_t cap)
{
    return rec_put(r, member_fields, NF(member_fields) - (r->log.size ? 0 : 2), out, cap);
}

int iog_rec_member_decode(const uint8_t *p, size_t n, iog_rec_member_t *r)
{
    cur_t c = READER(p, n);
    memset(r, 0, sizeof(*r));
    fields_do(&c, r, member_fields, NF(member_fields) - 2);
    if (c.n < n) { /* the log trailer: a size >= 1 and its root */
        fields_do(&c, r, member_fields + NF(member_fields) - 2, 2);
        c.err |= r->log.size == 0;
    }
    if (c.err || c.n != n || r->mem.ch.pub[0] != 0x04 || r->mark > IOG_SEQ_MAX + 1) {
        iog_wipe(r, sizeof(*r));
        return -EBADMSG;
    }
    iog_thumbprint(r->mem.ch.pub, r->mem.ch.thumb);
    r->mem.seq = r->mark;
    return 0;
}

/* The RTC record: its head, the session when there is one (its seq and window included), its tail. */
static const field_t rtc_fields[] = {
    FB(iog_rec_rtc_t, member_nd),
    FB(iog_rec_rtc_t, member_mark),
    FB(iog_rec_rtc_t, member_seq),
    FB(iog_rec_rtc_t, has_session),
    FK(iog_rec_rtc_t, s.peer, F_ID, 0),
    FB(iog_rec_rtc_t, s.sid),
    FB(iog_rec_rtc_t, s.expires),
    FB(iog_rec_rtc_t, s.tx_key),
    FB(iog_rec_rtc_t, s.tx_iv),
    FB(iog_rec_rtc_t, s.rx_key),
    FB(iog_rec_rtc_t, s.rx_iv),
    FB(iog_rec_rtc_t, s.seq),
    FB(iog_rec_rtc_t, s.window.top),
    FB(iog_rec_rtc_t, s.window.bitmap),
    FB(iog_rec_rtc_t, s.window.init),
    FADDR(iog_rec_rtc_t, addr),
    FB(iog_rec_rtc_t, clock),
    FB(iog_rec_rtc_t, sleep_s),
    FK(iog_rec_rtc_t, wakes, F_WIDE, 4),
    FB(iog_rec_rtc_t, spent_n),
};
#define RTC_HEAD 4    /* member_nd .. has_session */
#define RTC_SESSION 14 /* s.peer .. addr: the tail (clock .. spent_n) is always there */

static const field_t spent_fields[] = { FB(iog_spent_t, sid), FB(iog_spent_t, expires) };

/* The RTC record's fields: the session's only when it has one; then spent_n used tickets. */
static void rtc_fields_do(cur_t *c, iog_rec_rtc_t *r)
{
    fields_do(c, r, rtc_fields, RTC_HEAD);
    if (r->has_session == 1) {
        fields_do(c, r, rtc_fields + RTC_HEAD, RTC_SESSION);
    }
    fields_do(c, r, rtc_fields + RTC_HEAD + RTC_SESSION, NF(rtc_fields) - RTC_HEAD - RTC_SESSION);
    c->err |= r->spent_n > IOG_SPENT_TICKETS;
    for (unsigned i = 0; i < r->spent_n && !c->err; i++) {
        fields_do(c, &r->spent[i], spent_fields, NF(spent_fields));
        c->err |= r->spent[i].expires == 0;
    }
}

int iog_rec_rtc_encode(const iog_rec_rtc_t *r, uint8_t *out, size_t cap)
{
    cur_t c = { out, 0, cap, 1, 0 };
    rtc_fields_do(&c, (iog_rec_rtc_t *)(uintptr_t)r);
    return c.err ? -ENOBUFS : (int)c.n;
}

int iog_rec_rtc_decode(const uint8_t *p, size_t n, iog_rec_rtc_t *r)
{
    cur_t c = READER(p, n);
    memset(r, 0, sizeof(*r));
    rtc_fields_do(&c, r);
    r->s.active = r->has_session == 1;
    /* the counter it carries must lie at or below the mark it resumes under */
    if (c.err || c.n != n || r->has_session > 1 || r->member_seq > r->member_mark ||
        r->s.window.init > 1 || r->s.seq > IOG_SEQ_MAX + 1) {
        iog_wipe(r, sizeof(*r));
        return -EBADMSG;
    }
    return 0;
}
