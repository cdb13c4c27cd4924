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
 * pair of loops: an integer as its value in so many bytes (a uint32_t
 * field takes 8 on the wire where the layout says u64), bytes as they are,
 * an ID or a string as a length byte and its bytes, a credential as the
 * bytes the integer field before it counts. The layouts are those of
 * IOG_STORE_VERSION 1.
 */

enum {
    F_BYTES, /* len bytes */
    F_INT,   /* len = memory size | wire size << 4 */
    F_ID,    /* a valid ID: length byte, bytes */
    F_ID0,   /* the same, or length 0: unset */
    F_STR,   /* a NUL-free string of < len bytes: length byte, bytes */
    F_VAR,   /* as many bytes (at most IOG_CRED_MAX) as the F_INT field before says */
};

/* 4 bytes a field: the tables are static RAM on the ESP8266 (its .rodata) */
typedef struct {
    uint16_t off; /* offsetof() in the record's struct */
    uint8_t len;  /* see the kinds */
    uint8_t kind;
} field_t;

#define FB(T, m) { offsetof(T, m), sizeof(((T *)0)->m), F_BYTES }
#define FI(T, m, wire) { offsetof(T, m), sizeof(((T *)0)->m) | (wire) << 4, F_INT }
#define FN(T, m) FI(T, m, sizeof(((T *)0)->m))
#define FK(T, m, kind, len) { offsetof(T, m), len, kind }
#define FSTR(T, m) FK(T, m, F_STR, sizeof(((T *)0)->m))
#define FADDR(T, m) FN(T, m.family), FB(T, m.ip), FN(T, m.port)

/* A cursor over the payload; the first overrun or bad field sets err and stops it. */
typedef struct {
    uint8_t *p;       /* writer (NULL when reading) */
    const uint8_t *r; /* reader */
    size_t n, cap;
    int err;
} cur_t;

static void put(cur_t *c, const void *b, size_t n)
{
    if (c->err || c->n + n > c->cap) {
        c->err = 1;
        return;
    }
    memcpy(c->p + c->n, b, n);
    c->n += n;
}

static const uint8_t *get(cur_t *c, size_t n)
{
    if (c->err || c->n + n > c->cap) {
        c->err = 1;
        return NULL;
    }
    c->n += n;
    return c->r + c->n - n;
}

/* An integer field of @p size bytes in memory. */
static uint64_t int_load(const uint8_t *p, unsigned size)
{
    switch (size) {
    case 1: return *p;
    case 2: return *(const uint16_t *)(const void *)p;
    case 4: return *(const uint32_t *)(const void *)p;
    default: return *(const uint64_t *)(const void *)p;
    }
}

static void int_store(uint8_t *p, unsigned size, uint64_t v)
{
    switch (size) {
    case 1: *p = (uint8_t)v; break;
    case 2: *(uint16_t *)(void *)p = (uint16_t)v; break;
    case 4: *(uint32_t *)(void *)p = (uint32_t)v; break;
    default: *(uint64_t *)(void *)p = v; break;
    }
}

static void fields_put(cur_t *c, const void *base, const field_t *f, size_t nf)
{
    uint64_t last = 0;
    for (; nf--; f++) {
        const uint8_t *p = (const uint8_t *)base + f->off;
        uint8_t b[8];
        size_t n = f->len;
        switch (f->kind) {
        case F_INT:
            last = int_load(p, f->len & 15);
            n = f->len >> 4;
            for (size_t i = 0; i < n; i++) {
                b[i] = (uint8_t)(last >> (8 * i));
            }
            p = b;
            break;
        case F_VAR:
            c->err |= last > IOG_CRED_MAX;
            n = (size_t)last;
            break;
        case F_BYTES:
            break;
        default: /* an ID (its length byte first) or a string */
            b[0] = (uint8_t)(f->kind == F_STR ? strlen((const char *)p) : *p);
            put(c, b, 1);
            n = b[0];
            p += f->kind != F_STR ? offsetof(iog_id_t, s) : 0;
            break;
        }
        put(c, p, n);
    }
}

static void fields_get(cur_t *c, void *base, const field_t *f, size_t nf)
{
    uint64_t last = 0;
    for (; nf-- && !c->err; f++) {
        uint8_t *p = (uint8_t *)base + f->off;
        const uint8_t *w;
        size_t n = f->len;
        if (f->kind == F_INT) {
            unsigned size = f->len & 15;
            n = f->len >> 4;
            last = 0;
            if ((w = get(c, n))) {
                while (n--) {
                    last = last << 8 | w[n];
                }
                c->err |= size < 8 && last >> (8 * size);
                int_store(p, size, last);
            }
            continue;
        }
        if (f->kind == F_VAR) {
            c->err |= last > IOG_CRED_MAX;
            n = (size_t)last;
        }
        else if (f->kind != F_BYTES) {
            w = get(c, 1);
            n = w ? *w : 0;
            if (f->kind == F_STR) {
                c->err |= n >= f->len;
                p[n < f->len ? n : 0] = '\0';
            }
        }
        if ((w = get(c, c->err ? 0 : n)) == NULL) {
            break;
        }
        if (f->kind == F_STR) {
            memcpy(p, w, n);
            c->err |= strlen((const char *)p) != n; /* no NUL inside */
        }
        else if (f->kind == F_ID || f->kind == F_ID0) {
            memset(p, 0, sizeof(iog_id_t));
            c->err |= (n || f->kind == F_ID) && iog_id_set((iog_id_t *)(void *)p, w, n);
        }
        else {
            memcpy(p, w, n);
        }
    }
}

#define NF(t) (sizeof(t) / sizeof((t)[0]))

/* Writes the fields; @return the length or -ENOBUFS. */
static int rec_put(const void *base, const field_t *f, size_t nf, uint8_t *out, size_t cap)
{
    cur_t c = { out, NULL, 0, cap, 0 };
    fields_put(&c, base, f, nf);
    return c.err ? -ENOBUFS : (int)c.n;
}

/* ---- records ---- */

static const field_t key_fields[] = { FB(iog_identity_t, priv), FB(iog_identity_t, pub) };

int iog_rec_key_encode(const iog_identity_t *me, uint8_t *out, size_t cap)
{
    return rec_put(me, key_fields, NF(key_fields), out, cap);
}

int iog_rec_key_decode(const uint8_t *p, size_t n, iog_identity_t *me)
{
    cur_t c = { NULL, p, 0, n, 0 };
    fields_get(&c, me, key_fields, NF(key_fields));
    return c.err || c.n != n || me->pub[0] != 0x04 ? -EBADMSG : 0;
}

static const field_t settings_fields[] = {
    FSTR(iog_settings_t, ssid),
    FSTR(iog_settings_t, pass),
    FADDR(iog_settings_t, server),
    FK(iog_settings_t, id, F_ID0, 0),
    FN(iog_settings_t, has_pos),
    FN(iog_settings_t, lat),
    FN(iog_settings_t, lon),
    FN(iog_settings_t, has_pin),
    FB(iog_settings_t, pin),
    FN(iog_settings_t, port),
    FN(iog_settings_t, mode),
    FK(iog_settings_t, peer, F_ID0, 0),
    FADDR(iog_settings_t, peer_addr),
    FI(iog_settings_t, sleep_s, 8),
    FN(iog_settings_t, cred_len),
    FK(iog_settings_t, cred, F_VAR, 0),
};

int iog_rec_settings_encode(const iog_settings_t *s, uint8_t *out, size_t cap)
{
    return rec_put(s, settings_fields, NF(settings_fields), out, cap);
}

int iog_rec_settings_decode(const uint8_t *p, size_t n, iog_settings_t *s)
{
    cur_t c = { NULL, p, 0, n, 0 };
    iog_settings_default(s);
    fields_get(&c, s, settings_fields, NF(settings_fields));
    /* what the console would refuse is refused here too */
    if (c.err || c.n != n || s->has_pos > 1 || s->has_pin > 1 || s->mode > IOG_MODE_SLEEPY ||
        s->port == 0 || s->sleep_s == 0 || s->lat < -90000000 || s->lat > 90000000 ||
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
    FN(iog_rec_member_t, MEM(ch.lat)),
    FN(iog_rec_member_t, MEM(ch.lon)),
    FN(iog_rec_member_t, MEM(ch.radius)),
    FB(iog_rec_member_t, MEM(nd)),
    FB(iog_rec_member_t, MEM(nch)),
    FN(iog_rec_member_t, MEM(height)),
    FB(iog_rec_member_t, MEM(block)),
    FN(iog_rec_member_t, MEM(expires)),
    FB(iog_rec_member_t, MEM(keys)), /* K_m as its derived keys: byte arrays only */
    FN(iog_rec_member_t, mark),
    FN(iog_rec_member_t, clock),
    /* the log trailer, when there is a checkpoint */
    FN(iog_rec_member_t, log.size),
    FB(iog_rec_member_t, log.root),
};

int iog_rec_member_encode(const iog_rec_member_t *r, uint8_t *out, size_t cap)
{
    return rec_put(r, member_fields, NF(member_fields) - (r->log.size ? 0 : 2), out, cap);
}

int iog_rec_member_decode(const uint8_t *p, size_t n, iog_rec_member_t *r)
{
    cur_t c = { NULL, p, 0, n, 0 };
    memset(r, 0, sizeof(*r));
    fields_get(&c, r, member_fields, NF(member_fields) - 2);
    if (c.n < n) { /* the log trailer: a size >= 1 and its root */
        fields_get(&c, r, member_fields + NF(member_fields) - 2, 2);
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
    FN(iog_rec_rtc_t, member_mark),
    FN(iog_rec_rtc_t, member_seq),
    FN(iog_rec_rtc_t, has_session),
    FK(iog_rec_rtc_t, s.peer, F_ID, 0),
    FB(iog_rec_rtc_t, s.sid),
    FN(iog_rec_rtc_t, s.expires),
    FB(iog_rec_rtc_t, s.tx_key),
    FB(iog_rec_rtc_t, s.tx_iv),
    FB(iog_rec_rtc_t, s.rx_key),
    FB(iog_rec_rtc_t, s.rx_iv),
    FN(iog_rec_rtc_t, s.seq),
    FN(iog_rec_rtc_t, s.window.top),
    FN(iog_rec_rtc_t, s.window.bitmap),
    FN(iog_rec_rtc_t, s.window.init),
    FADDR(iog_rec_rtc_t, addr),
    FN(iog_rec_rtc_t, clock),
    FI(iog_rec_rtc_t, wakes, 8),
};
#define RTC_HEAD 4
#define RTC_SESSION 16

static void rtc_fields_do(cur_t *c, iog_rec_rtc_t *r, const iog_rec_rtc_t *w)
{
    const field_t *f = rtc_fields;
    for (int part = 0; part < 3; part++) {
        size_t n = part == 0 ? RTC_HEAD : part == 1 ? RTC_SESSION : NF(rtc_fields) - RTC_HEAD - RTC_SESSION;
        if (part != 1 || (w ? w->has_session : r->has_session) == 1) {
            if (w) {
                fields_put(c, w, f, n);
            }
            else {
                fields_get(c, r, f, n);
            }
        }
        f += n;
    }
}

int iog_rec_rtc_encode(const iog_rec_rtc_t *r, uint8_t *out, size_t cap)
{
    cur_t c = { out, NULL, 0, cap, 0 };
    rtc_fields_do(&c, NULL, r);
    return c.err ? -ENOBUFS : (int)c.n;
}

int iog_rec_rtc_decode(const uint8_t *p, size_t n, iog_rec_rtc_t *r)
{
    cur_t c = { NULL, p, 0, n, 0 };
    memset(r, 0, sizeof(*r));
    rtc_fields_do(&c, r, NULL);
    r->s.active = r->has_session == 1;
    /* the counter it carries must lie at or below the mark it resumes under */
    if (c.err || c.n != n || r->has_session > 1 || r->member_seq > r->member_mark ||
        r->s.window.init > 1 || r->s.seq > IOG_SEQ_MAX + 1) {
        iog_wipe(r, sizeof(*r));
        return -EBADMSG;
    }
    return 0;
}
