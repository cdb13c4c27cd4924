/*
 * Persistent records: framing, checksum, and the payload layouts.
 */
#include <errno.h>
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

/* ---- a little-endian cursor; the first overrun sets err and stops it ---- */

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

static void get(cur_t *c, void *b, size_t n)
{
    if (c->err || c->n + n > c->cap) {
        c->err = 1;
        memset(b, 0, n);
        return;
    }
    memcpy(b, c->r + c->n, n);
    c->n += n;
}

static void put_u64(cur_t *c, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++) {
        b[i] = (uint8_t)(v >> (8 * i));
    }
    put(c, b, 8);
}

static uint64_t get_u64(cur_t *c)
{
    uint8_t b[8];
    uint64_t v = 0;
    get(c, b, 8);
    for (int i = 7; i >= 0; i--) {
        v = v << 8 | b[i];
    }
    return v;
}

static void put_u8(cur_t *c, uint8_t v)
{
    put(c, &v, 1);
}

static uint8_t get_u8(cur_t *c)
{
    uint8_t v;
    get(c, &v, 1);
    return v;
}

/* An ID as length + bytes; length 0 is "unset" where @p may_unset. */
static void put_id(cur_t *c, const iog_id_t *id)
{
    put_u8(c, id->len);
    put(c, id->s, id->len);
}

static void get_id(cur_t *c, iog_id_t *id, int may_unset)
{
    uint8_t n = get_u8(c);
    char s[IOG_ID_MAX];
    memset(id, 0, sizeof(*id));
    if (n > IOG_ID_MAX) {
        c->err = 1;
        return;
    }
    get(c, s, n);
    if (c->err || (n == 0 && may_unset)) {
        return;
    }
    if (iog_id_set(id, s, n)) {
        c->err = 1;
    }
}

/* An address: family, 16 address bytes, port (unused bytes zero, as the core compares them). */
static void put_addr(cur_t *c, const iog_addr_t *a)
{
    put_u8(c, a->family);
    put(c, a->ip, sizeof(a->ip));
    put_u8(c, (uint8_t)a->port);
    put_u8(c, (uint8_t)(a->port >> 8));
}

static void get_addr(cur_t *c, iog_addr_t *a)
{
    memset(a, 0, sizeof(*a));
    a->family = get_u8(c);
    get(c, a->ip, sizeof(a->ip));
    a->port = get_u8(c);
    a->port |= (uint16_t)(get_u8(c) << 8);
}

/* A string of at most cap-1 bytes, NUL-terminated in memory. */
static void put_str(cur_t *c, const char *s)
{
    size_t n = strlen(s);
    put_u8(c, (uint8_t)n);
    put(c, s, n);
}

static void get_str(cur_t *c, char *s, size_t cap)
{
    uint8_t n = get_u8(c);
    if (n >= cap) {
        c->err = 1;
        s[0] = '\0';
        return;
    }
    get(c, s, n);
    s[n] = '\0';
    if (strlen(s) != n) { /* no NUL inside */
        c->err = 1;
    }
}

static int done_put(const cur_t *c)
{
    return c->err ? -ENOBUFS : (int)c->n;
}

/* A reader must use every byte. */
static int done_get(const cur_t *c)
{
    return c->err || c->n != c->cap ? -EBADMSG : 0;
}

#define WRITER(out, cap) { (out), NULL, 0, (cap), 0 }
#define READER(in, len) { NULL, (in), 0, (len), 0 }

/* ---- records ---- */

int iog_rec_key_encode(const iog_identity_t *me, uint8_t *out, size_t cap)
{
    cur_t c = WRITER(out, cap);
    put(&c, me->priv, sizeof(me->priv));
    put(&c, me->pub, sizeof(me->pub));
    return done_put(&c);
}

int iog_rec_key_decode(const uint8_t *p, size_t n, iog_identity_t *me)
{
    cur_t c = READER(p, n);
    get(&c, me->priv, sizeof(me->priv));
    get(&c, me->pub, sizeof(me->pub));
    return done_get(&c) || me->pub[0] != 0x04 ? -EBADMSG : 0;
}

int iog_rec_settings_encode(const iog_settings_t *s, uint8_t *out, size_t cap)
{
    cur_t c = WRITER(out, cap);
    put_str(&c, s->ssid);
    put_str(&c, s->pass);
    put_addr(&c, &s->server);
    put_id(&c, &s->id);
    put_u8(&c, s->has_pos);
    put_u64(&c, (uint64_t)s->lat);
    put_u64(&c, (uint64_t)s->lon);
    put_u8(&c, s->has_pin);
    put(&c, s->pin, sizeof(s->pin));
    put_u8(&c, (uint8_t)s->port);
    put_u8(&c, (uint8_t)(s->port >> 8));
    put_u8(&c, s->mode);
    put_id(&c, &s->peer);
    put_addr(&c, &s->peer_addr);
    put_u64(&c, s->sleep_s);
    put_u8(&c, (uint8_t)s->cred_len);
    put_u8(&c, (uint8_t)(s->cred_len >> 8));
    if (s->cred_len > IOG_CRED_MAX) {
        return -ENOBUFS;
    }
    put(&c, s->cred, s->cred_len);
    return done_put(&c);
}

int iog_rec_settings_decode(const uint8_t *p, size_t n, iog_settings_t *s)
{
    cur_t c = READER(p, n);
    iog_settings_default(s);
    get_str(&c, s->ssid, sizeof(s->ssid));
    get_str(&c, s->pass, sizeof(s->pass));
    get_addr(&c, &s->server);
    get_id(&c, &s->id, 1);
    s->has_pos = get_u8(&c);
    s->lat = (int64_t)get_u64(&c);
    s->lon = (int64_t)get_u64(&c);
    s->has_pin = get_u8(&c);
    get(&c, s->pin, sizeof(s->pin));
    s->port = get_u8(&c);
    s->port |= (uint16_t)(get_u8(&c) << 8);
    s->mode = get_u8(&c);
    get_id(&c, &s->peer, 1);
    get_addr(&c, &s->peer_addr);
    uint64_t sl = get_u64(&c);
    s->cred_len = get_u8(&c);
    s->cred_len |= (uint16_t)(get_u8(&c) << 8);
    if (s->cred_len > IOG_CRED_MAX) {
        return -EBADMSG;
    }
    get(&c, s->cred, s->cred_len);
    /* what the console would refuse is refused here too */
    if (done_get(&c) || s->has_pos > 1 || s->has_pin > 1 || s->mode > IOG_MODE_SLEEPY ||
        s->port == 0 || sl == 0 || sl > 0xFFFFFFFFu || s->lat < -90000000 || s->lat > 90000000 ||
        s->lon < -180000000 || s->lon > 180000000) {
        iog_settings_default(s);
        return -EBADMSG;
    }
    s->sleep_s = (uint32_t)sl;
    return 0;
}

int iog_rec_member_encode(const iog_rec_member_t *r, uint8_t *out, size_t cap)
{
    const iog_member_t *m = &r->mem;
    cur_t c = WRITER(out, cap);
    put_id(&c, &m->ch.cluster);
    put(&c, m->ch.pub, sizeof(m->ch.pub));
    put_u64(&c, (uint64_t)m->ch.lat);
    put_u64(&c, (uint64_t)m->ch.lon);
    put_u64(&c, m->ch.radius);
    put(&c, m->nd, sizeof(m->nd));
    put(&c, m->nch, sizeof(m->nch));
    put_u64(&c, m->height);
    put(&c, m->block, sizeof(m->block));
    put_u64(&c, m->expires);
    put(&c, &m->keys, sizeof(m->keys)); /* K_m as its derived keys: byte arrays only */
    put_u64(&c, r->mark);
    put_u64(&c, r->clock);
    return done_put(&c);
}

int iog_rec_member_decode(const uint8_t *p, size_t n, iog_rec_member_t *r)
{
    iog_member_t *m = &r->mem;
    cur_t c = READER(p, n);
    memset(r, 0, sizeof(*r));
    get_id(&c, &m->ch.cluster, 0);
    get(&c, m->ch.pub, sizeof(m->ch.pub));
    m->ch.lat = (int64_t)get_u64(&c);
    m->ch.lon = (int64_t)get_u64(&c);
    m->ch.radius = get_u64(&c);
    get(&c, m->nd, sizeof(m->nd));
    get(&c, m->nch, sizeof(m->nch));
    m->height = get_u64(&c);
    get(&c, m->block, sizeof(m->block));
    m->expires = get_u64(&c);
    get(&c, &m->keys, sizeof(m->keys));
    r->mark = get_u64(&c);
    r->clock = get_u64(&c);
    if (done_get(&c) || m->ch.pub[0] != 0x04 || r->mark > IOG_SEQ_MAX + 1) {
        iog_wipe(r, sizeof(*r));
        return -EBADMSG;
    }
    iog_thumbprint(m->ch.pub, m->ch.thumb);
    m->seq = r->mark;
    return 0;
}

/* An M2M session's keys and state; seq and the window included. */
static void put_m2m(cur_t *c, const iog_m2m_t *s)
{
    put_id(c, &s->peer);
    put(c, s->sid, sizeof(s->sid));
    put_u64(c, s->expires);
    put(c, s->tx_key, sizeof(s->tx_key));
    put(c, s->tx_iv, sizeof(s->tx_iv));
    put(c, s->rx_key, sizeof(s->rx_key));
    put(c, s->rx_iv, sizeof(s->rx_iv));
    put_u64(c, s->seq);
    put_u64(c, s->window.top);
    put_u64(c, s->window.bitmap);
    put_u8(c, s->window.init);
}

static void get_m2m(cur_t *c, iog_m2m_t *s)
{
    get_id(c, &s->peer, 0);
    get(c, s->sid, sizeof(s->sid));
    s->expires = get_u64(c);
    get(c, s->tx_key, sizeof(s->tx_key));
    get(c, s->tx_iv, sizeof(s->tx_iv));
    get(c, s->rx_key, sizeof(s->rx_key));
    get(c, s->rx_iv, sizeof(s->rx_iv));
    s->seq = get_u64(c);
    s->window.top = get_u64(c);
    s->window.bitmap = get_u64(c);
    s->window.init = get_u8(c);
    if (s->window.init > 1 || s->seq > IOG_SEQ_MAX + 1) {
        c->err = 1;
    }
    s->active = 1;
}

int iog_rec_rtc_encode(const iog_rec_rtc_t *r, uint8_t *out, size_t cap)
{
    cur_t c = WRITER(out, cap);
    put(&c, r->member_nd, sizeof(r->member_nd));
    put_u64(&c, r->member_mark);
    put_u64(&c, r->member_seq);
    put_u8(&c, r->has_session);
    if (r->has_session) {
        put_m2m(&c, &r->s);
        put_addr(&c, &r->addr);
    }
    put_u64(&c, r->clock);
    put_u64(&c, r->wakes);
    return done_put(&c);
}

int iog_rec_rtc_decode(const uint8_t *p, size_t n, iog_rec_rtc_t *r)
{
    cur_t c = READER(p, n);
    memset(r, 0, sizeof(*r));
    get(&c, r->member_nd, sizeof(r->member_nd));
    r->member_mark = get_u64(&c);
    r->member_seq = get_u64(&c);
    r->has_session = get_u8(&c);
    if (r->has_session == 1) {
        get_m2m(&c, &r->s);
        get_addr(&c, &r->addr);
    }
    r->clock = get_u64(&c);
    r->wakes = (uint32_t)get_u64(&c);
    /* the counter it carries must lie at or below the mark it resumes under */
    if (done_get(&c) || r->has_session > 1 || r->member_seq > r->member_mark) {
        iog_wipe(r, sizeof(*r));
        return -EBADMSG;
    }
    return 0;
}
