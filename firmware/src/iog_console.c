/*
 * A board: settings, state across reboots, and the serial console.
 */
#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include "iog_b64.h"
#include "iog_console.h"

/* ---- output: one line at a time, built in b->out ---- */

/* Appends @p n bytes; anything that is not printable ASCII becomes '.'. */
static void o_n(iog_board_t *b, const void *s, size_t n)
{
    const uint8_t *p = s;
    for (size_t i = 0; i < n && b->out_len + 1 < sizeof(b->out); i++) {
        b->out[b->out_len++] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '.';
    }
    b->out[b->out_len] = '\0';
}

/* Appends @p v in decimal, with leading zeros to at least @p w digits (w <= 20). */
static void o_u(iog_board_t *b, uint64_t v, int w)
{
    char t[20];
    int i = (int)sizeof(t);
    do { /* one 64-bit division a digit: the remainder from the low 32 bits */
        uint64_t q = v / 10;
        t[--i] = (char)('0' + ((uint32_t)v - (uint32_t)q * 10u));
        v = q;
    } while (v || i > (int)sizeof(t) - w);
    o_n(b, t + i, sizeof(t) - (size_t)i);
}

static void o_f(iog_board_t *b, const char *f, ...);

/*
 * Appends @p f with its conversions, which take these arguments:
 *   %s  a string                   %u  an unsigned
 *   %U  a const uint64_t *, its number
 *   %d  a const int64_t * of microdegrees, as degrees with 6 decimals
 *   %a  a const iog_addr_t *, as IP:PORT
 *   %m  bytes as text (non-printable ones as '.'), %h in hex, %b in base64:
 *       a pointer and an unsigned length
 */
static void o_vf(iog_board_t *b, const char *f, va_list ap)
{
    static const char hx[] = "0123456789abcdef";
    for (;;) {
        size_t n = strcspn(f, "%");
        o_n(b, f, n);
        f += n;
        if (!*f) {
            return;
        }
        char c = f[1];
        f += 2;
        const uint8_t *p = c == 'u' ? NULL : (const uint8_t *)va_arg(ap, const void *);
        unsigned u = strchr("umhb", c) ? va_arg(ap, unsigned) : 0; /* c is not the NUL */
        if (c == 's') {
            o_n(b, p, strlen((const char *)p));
        }
        else if (c == 'u' || c == 'U') {
            o_u(b, c == 'u' ? u : *(const uint64_t *)(const void *)p, 1);
        }
        else if (c == 'd') {
            /* |udeg| <= 180,000,000: 32 bits */
            int64_t udeg = *(const int64_t *)(const void *)p;
            uint32_t a = (uint32_t)(udeg < 0 ? -udeg : udeg);
            o_n(b, "-", udeg < 0);
            o_u(b, a / 1000000u, 1);
            o_n(b, ".", 1);
            o_u(b, a % 1000000u, 6);
        }
        else if (c == 'a') {
            const iog_addr_t *a = (const iog_addr_t *)(const void *)p;
            o_f(b, "%u.%u.%u.%u:%u", a->ip[0], a->ip[1], a->ip[2], a->ip[3], a->port);
        }
        else {
            for (unsigned i = 0; i < u; i += c == 'b' ? 3 : 1) {
                char t[5] = { hx[p[i] >> 4], hx[p[i] & 15] };
                if (c == 'b') { /* three bytes at a time: no buffer of the whole */
                    iog_b64_encode(p + i, u - i < 3 ? u - i : 3, t, sizeof(t));
                }
                o_n(b, c == 'm' ? p + i : (const uint8_t *)t, c == 'm' ? 1 : c == 'h' ? 2 : 4);
            }
        }
    }
}

/* Appends @p f (see o_vf()). */
static void o_f(iog_board_t *b, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    o_vf(b, f, ap);
    va_end(ap);
}

static void o_end(iog_board_t *b)
{
    if (b->hooks.out) {
        b->hooks.out(b->hooks.ctx, b->out);
    }
    b->out_len = 0;
}

/* Starts a line with @p f (see o_vf()); a line still being built is printed first. */
static void o_line(iog_board_t *b, const char *f, ...)
{
    va_list ap;
    if (b->out_len) {
        o_end(b);
    }
    b->out[0] = '\0';
    va_start(ap, f);
    o_vf(b, f, ap);
    va_end(ap);
}

/* The line "W TEXT" (TEXT NULL or empty: "W"). */
static void say(iog_board_t *b, const char *w, const char *text)
{
    o_line(b, text && *text ? "%s %s" : "%s", w, text);
    o_end(b);
}

/* An "error WHAT" line. @return -EINVAL. */
static int bad(iog_board_t *b, const char *what)
{
    say(b, "error", what);
    return -EINVAL;
}

/* "error WHAT: strerror-like text (code diag)" */
static int fail(iog_board_t *b, const char *what, int e)
{
    static const struct {
        int e;
        const char *s;
    } names[] = {
        { -ETIMEDOUT, "no answer" },    { -EACCES, "refused" },
        { -EPROTO, "bad answer" },      { -ENOSPC, "flash full" },
        { -EIO, "flash or network I/O error" }, { -ENOTCONN, "not joined" },
        { -EINVAL, "invalid" },         { -EMSGSIZE, "too long" },
        { -ETIME, "expired" },          { -ENOBUFS, "too long" },
        { -ECONNRESET, "reset by peer" }, { -ERANGE, "out of range" },
        { -EBUSY, "busy" },
    };
    const char *s = "failed";
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (names[i].e == e) {
            s = names[i].s;
        }
    }
    unsigned c = b->dev.code;
    o_line(b, "error %s: %s", what, s);
    if (c) {
        o_f(b, " (%u.%s%u %s)", c >> 5, (c & 31) < 10 ? "0" : "", c & 31, b->dev.diag); /* 4.03 */
    }
    else if (b->dev.diag[0]) {
        o_f(b, " (%s)", b->dev.diag);
    }
    o_end(b);
    return e < 0 ? e : -EINVAL;
}

/* ---- the board's platform: the real one, counted, with the board's clock ---- */

static int p_send(void *ctx, const iog_addr_t *to, const uint8_t *buf, size_t len)
{
    iog_board_t *b = ctx;
    b->stats.tx_bytes += (uint32_t)len;
    b->stats.tx_dgrams++;
    return b->hw->send(b->hw->ctx, to, buf, len);
}

static int p_recv(void *ctx, iog_addr_t *from, uint8_t *buf, size_t cap, uint32_t timeout_ms)
{
    iog_board_t *b = ctx;
    int n = b->hw->recv(b->hw->ctx, from, buf, cap, timeout_ms);
    if (n > 0) {
        b->stats.rx_bytes += (uint32_t)n;
        b->stats.rx_dgrams++;
    }
    return n;
}

static uint32_t p_now(void *ctx)
{
    iog_board_t *b = ctx;
    return b->hw->now_ms(b->hw->ctx);
}

static int p_random(void *ctx, uint8_t *buf, size_t len)
{
    iog_board_t *b = ctx;
    return b->hw->random(b->hw->ctx, buf, len);
}

uint64_t iog_board_now(const iog_board_t *b)
{
    uint64_t hw = b->hw->unix_s ? b->hw->unix_s(b->hw->ctx) : 0;
    if (!b->clock_unix) {
        return hw;
    }
    uint64_t est = b->clock_unix + (b->hw->now_ms(b->hw->ctx) - b->clock_ms) / 1000u;
    return hw > est ? hw : est;
}

static uint64_t p_unix(void *ctx)
{
    return iog_board_now(ctx);
}

static void p_yield(void *ctx)
{
    iog_board_t *b = ctx;
    if (b->hw->yield) {
        b->hw->yield(b->hw->ctx);
    }
}

/* Takes @p unix_s as a lower bound of the time now. */
static void clock_learn(iog_board_t *b, uint64_t unix_s)
{
    if (unix_s > iog_board_now(b)) {
        b->clock_unix = unix_s;
        b->clock_ms = p_now(b);
    }
}

/*
 * Takes @p unix_s as the time now, also when the clock is ahead of it (a sleep
 * timer that woke early): the time of a block at or
 * after this board's own join, which the CH signed after the join was sent
 * and before now, so it is the time now to within the join's round trips.
 */
static void clock_set(iog_board_t *b, uint64_t unix_s)
{
    b->clock_unix = unix_s;
    b->clock_ms = p_now(b);
}

/* ---- records ---- */

/*
 * Writes record @p rec from the @p n payload bytes an encoder left in b->io
 * past the frame header; a negative @p n is the encoder's error.
 */
static int save(iog_board_t *b, unsigned rec, int n)
{
    if (n < 0) {
        return n;
    }
    int e = iog_store_put(b->st, rec, b->io + 6, (size_t)n, b->io, sizeof(b->io));
    if (e == 0) {
        if (rec == IOG_REC_RTC) {
            b->stats.rtc_writes++;
        }
        else {
            b->stats.flash_writes++;
        }
    }
    iog_wipe(b->io, sizeof(b->io));
    return e;
}

/* Reads record @p rec into b->io (see iog_store_get()); its payload at *p. */
static int load(iog_board_t *b, unsigned rec, const uint8_t **p)
{
    return iog_store_get(b->st, rec, b->io, sizeof(b->io), p);
}

#define PAYLOAD_CAP (sizeof(((iog_board_t *)0)->io) - IOG_STORE_OVERHEAD)

static int save_settings(iog_board_t *b)
{
    return save(b, IOG_REC_SETTINGS, iog_rec_settings_encode(&b->set, b->io + 6, PAYLOAD_CAP));
}

/* Writes the membership with a new mark: @p next is the next number to use. */
static int save_member(iog_board_t *b, uint64_t next)
{
    iog_rec_member_t r;
    r.mem = b->dev.mem;
    r.log = b->dev.log;
    r.mark = next + IOG_SEQ_RESERVE;
    if (r.mark > IOG_SEQ_MAX + 1) {
        r.mark = IOG_SEQ_MAX + 1;
    }
    r.clock = iog_board_now(b);
    int e = save(b, IOG_REC_MEMBER, iog_rec_member_encode(&r, b->io + 6, PAYLOAD_CAP));
    if (e == 0) {
        b->member_mark = r.mark;
        b->member_dirty = 0;
    }
    iog_wipe(&r, sizeof(r));
    return e;
}

/*
 * Writes the RTC record: the exact next numbers (the kept session's, plus
 * @p ahead: a message about to be sealed in it), the clock and @p sleep_s,
 * the deep sleep about to begin (0: none), kept apart: only the sleep
 * timer's wake-up may add it (restore). When it cannot be written it is
 * erased, so that an older one never resumes; when that fails too the
 * caller must not send.
 */
static int save_rtc(iog_board_t *b, unsigned ahead, uint32_t sleep_s)
{
    iog_rec_rtc_t r;
    memset(&r, 0, sizeof(r));
    if (!b->dev.joined) {
        return 0;
    }
    memcpy(r.member_nd, b->dev.mem.nd, sizeof(r.member_nd));
    r.member_mark = b->member_mark;
    r.member_seq = b->dev.mem.seq;
    if (b->kept && b->kept->active) {
        r.has_session = 1;
        r.s = *b->kept;
        r.s.seq += ahead;
        r.addr = b->kept_addr;
    }
    r.clock = iog_board_now(b);
    r.sleep_s = sleep_s;
    r.wakes = b->wakes;
    /* the tickets used as M1: none is used again after a reset or a wake-up */
    for (unsigned i = 0; i < IOG_SPENT_TICKETS; i++) {
        if (b->dev.spent[i].expires) {
            r.spent[r.spent_n++] = b->dev.spent[i];
        }
    }
    int e = save(b, IOG_REC_RTC, iog_rec_rtc_encode(&r, b->io + 6, PAYLOAD_CAP));
    iog_wipe(&r, sizeof(r));
    if (e) {
        e = iog_store_erase(b->st, IOG_REC_RTC);
    }
    return e;
}

/* Forgets the membership, the kept session and their records. */
static void drop_member(iog_board_t *b)
{
    b->dev.joined = 0;
    iog_wipe(&b->dev.mem, sizeof(b->dev.mem));
    iog_wipe(b->dev.sessions, sizeof(b->dev.sessions));
    b->kept = NULL;
    b->member_mark = 0;
    iog_store_erase(b->st, IOG_REC_MEMBER);
    iog_store_erase(b->st, IOG_REC_RTC);
}

/*
 * The device's persist hook, called after a join and before each protected
 * request with dev.mem.seq already past the number about to be used: the
 * member record is written only when that number reaches the stored mark.
 */
static int persist(void *ctx, const iog_device_t *d)
{
    iog_board_t *b = ctx;
    if (b->in_join) {
        return 0; /* written once the join is complete, with the clock */
    }
    if (!d->joined) { /* after a leave */
        drop_member(b);
        return 0;
    }
    int e = 0;
    if (b->member_dirty || d->mem.seq > b->member_mark) {
        e = save_member(b, d->mem.seq - (d->mem.seq ? 1 : 0));
    }
    return e ? e : save_rtc(b, 0, 0);
}

/* ---- events from the device (M2 side) ---- */

static size_t on_message(void *ctx, const iog_id_t *peer, const uint8_t *msg, size_t len,
                         uint8_t *reply, size_t cap)
{
    iog_board_t *b = ctx;
    if (b->kept && b->kept->active && iog_id_same(&b->kept->peer, peer)) {
        /* the reply may be sealed in the kept session: its next number in RTC memory first */
        save_rtc(b, 1, 0);
    }
    o_line(b, "received %s %m", peer->s, msg, (unsigned)len);
    o_end(b);
    static const char ok[] = "ok";
    size_t n = sizeof(ok) - 1 < cap ? sizeof(ok) - 1 : cap;
    memcpy(reply, ok, n);
    return n;
}

/*
 * 1 when the CH refused the last protected request because this board is
 * not a member. Only its sealed refusal says so (PROTOCOL.md §4.1): an
 * unsealed "not a member" could come from anyone on the path, and a rejoin
 * on it would let him write to the ledger; it is reported and ignored.
 */
static int not_member(iog_board_t *b)
{
    const iog_device_t *d = &b->dev;
    if (d->code != IOG_COAP_FORBIDDEN || strncmp(d->diag, "not a member", 12) != 0) {
        return 0;
    }
    if (!d->sealed) {
        say(b, "error", "the cluster head's \"not a member\" is not sealed: ignored");
        return 0;
    }
    return 1;
}

static void on_warning(void *ctx, const iog_id_t *peer, const char *why)
{
    iog_board_t *b = ctx;
    o_line(b, "warning %s %s", peer->s, why);
    o_end(b);
    if (not_member(b)) { /* the CH says *we* are not a member */
        bad(b, "the cluster head says this board is not a member: rejoining");
        drop_member(b);
        b->join_due = 1;
        b->join_at = p_now(b);
    }
}

static void on_verified(void *ctx, const iog_id_t *peer, const iog_verify_resp_t *v)
{
    iog_board_t *b = ctx;
    /* a /verify names the join block; a /talk's grant does not */
    o_line(b, v->has_block ? "verified %s block=%U" : "verified %s", peer->s, &v->height);
    o_end(b);
}

/* ---- setup ---- */

/* A default ID from the key: "iog-" and 8 hex digits of its thumbprint. */
static void default_id(iog_board_t *b, iog_id_t *id)
{
    uint8_t t[IOG_HASH_LEN];
    static const char hx[] = "0123456789abcdef";
    char s[12] = "iog-";
    iog_thumbprint(b->dev.me.pub, t);
    for (int i = 0; i < 4; i++) {
        s[4 + 2 * i] = hx[t[i] >> 4];
        s[5 + 2 * i] = hx[t[i] & 15];
    }
    iog_id_set(id, s, 12);
}

/* Applies the ID, server and credential settings to the device. */
static void apply_settings(iog_board_t *b)
{
    if (b->set.id.len) {
        b->dev.me.id = b->set.id;
    }
    else {
        default_id(b, &b->dev.me.id);
    }
    b->dev.ch = b->set.server;
    b->dev.has_pin = b->set.has_pin;
    memcpy(b->dev.pin, b->set.pin, sizeof(b->dev.pin));
    b->dev.cred = b->set.cred_len ? b->set.cred : NULL;
    b->dev.cred_len = b->set.cred_len;
}

static int make_key(iog_board_t *b)
{
    int e = iog_p256_keygen(&b->plat, b->dev.me.priv, b->dev.me.pub);
    if (e) {
        return fail(b, "key generation", e);
    }
    e = save(b, IOG_REC_KEY, iog_rec_key_encode(&b->dev.me, b->io + 6, PAYLOAD_CAP));
    if (e) {
        return fail(b, "key not stored, it is lost at the next boot", e);
    }
    say(b, "ok", "new device key made and stored");
    return 0;
}

int iog_board_init(iog_board_t *b, const iog_platform_t *hw, const iog_storage_t *st,
                   const iog_board_hooks_t *hooks)
{
    const uint8_t *p;
    iog_identity_t me;
    memset(b, 0, sizeof(*b));
    b->hw = hw;
    b->st = st;
    b->hooks = *hooks;
    static const iog_platform_t counted = { 0, p_send, p_recv, p_now, p_random, p_unix, p_yield };
    b->plat = counted;
    b->plat.ctx = b;
    b->boot_ms = hw->now_ms(hw->ctx);
    memset(&me, 0, sizeof(me));
    iog_device_init(&b->dev, &b->plat, &b->set.server, &me);
    b->dev.persist = persist;
    b->dev.persist_ctx = b;
    b->dev.on_message = on_message;
    b->dev.on_warning = on_warning;
    b->dev.on_verified = on_verified;
    b->dev.cb_ctx = b;

    iog_settings_default(&b->set);
    int n = load(b, IOG_REC_SETTINGS, &p);
    if (n >= 0 && iog_rec_settings_decode(p, (size_t)n, &b->set)) {
        n = -EBADMSG;
    }
    if (n == -EBADMSG || (n < 0 && n != -ENOENT)) {
        bad(b, "stored settings are unreadable: defaults used, set them again");
    }
    n = load(b, IOG_REC_KEY, &p);
    int e = 0;
    if (n >= 0 && iog_rec_key_decode(p, (size_t)n, &b->dev.me) == 0) {
        /* the key as stored */
    }
    else {
        if (n != -ENOENT) {
            bad(b, "stored key is unreadable: a new one is made (the CH knows the old one)");
        }
        e = make_key(b);
    }
    iog_wipe(b->io, sizeof(b->io));
    apply_settings(b);
    return e;
}

/* Restores the membership and the RTC record. @return 1 when restored. */
static int restore(iog_board_t *b)
{
    const uint8_t *p;
    iog_rec_member_t m;
    iog_rec_rtc_t r;
    int n = load(b, IOG_REC_MEMBER, &p);
    if (n == -ENOENT) {
        return 0;
    }
    if (n < 0 || iog_rec_member_decode(p, (size_t)n, &m)) {
        bad(b, "stored membership is corrupt: rejoining (a new K_m, no number reused)");
        drop_member(b);
        return 0;
    }
    b->dev.mem = m.mem;
    b->dev.log = m.log;
    b->member_mark = m.mark;
    b->dev.joined = 1;
    clock_learn(b, m.clock);
    iog_wipe(&m, sizeof(m));
    if (b->set.has_pin && !iog_hash_eq(b->set.pin, b->dev.mem.ch.thumb)) {
        bad(b, "the stored CH key does not match the pin: rejoining");
        drop_member(b);
        return 0;
    }
    n = load(b, IOG_REC_RTC, &p);
    if (n >= 0 && iog_rec_rtc_decode(p, (size_t)n, &r) == 0 && r.member_mark == b->member_mark &&
        memcmp(r.member_nd, b->dev.mem.nd, sizeof(r.member_nd)) == 0) {
        b->dev.mem.seq = r.member_seq; /* exact: a reset or a wake-up */
        b->wakes = r.wakes + 1;
        /* the time slept only when the sleep timer woke the board: a reset
         * during the sleep (the pin, power on with RTC memory kept, the
         * watchdog) restarts from the clock as it was, behind, never ahead */
        int why = b->hooks.reset_reason ? b->hooks.reset_reason(b->hooks.ctx) : -1;
        clock_learn(b, r.clock && why == IOG_RESET_DEEP_SLEEP_AWAKE ? r.clock + r.sleep_s : r.clock);
        memcpy(b->dev.spent, r.spent, sizeof(r.spent));
        if (r.has_session) {
            b->dev.sessions[0] = r.s;
            b->dev.sessions[0].made_ms = p_now(b); /* its end without a clock: from now */
            b->kept = &b->dev.sessions[0];
            b->kept_addr = r.addr;
        }
    }
    else {
        /* RTC memory lost (a power loss), corrupt or an earlier membership's:
         * with it went the tickets this board used as M1 (one used again
         * would start its session's nonces from 0 again) and its clock (now
         * its member record's, behind: its talk proofs would be stale).
         * Rejoin: a new K_m, under which no ticket it used opens, and the
         * CH's time. */
        iog_wipe(&r, sizeof(r));
        iog_wipe(b->io, sizeof(b->io));
        bad(b, "RTC memory lost (a power loss): rejoining (the tickets used and the clock were in it)");
        drop_member(b);
        return 0;
    }
    iog_wipe(&r, sizeof(r));
    iog_wipe(b->io, sizeof(b->io));
    uint64_t now = iog_board_now(b);
    if (now && now >= b->dev.mem.expires) {
        bad(b, "membership expired: rejoining");
        drop_member(b);
        return 0;
    }
    return 1;
}

static int configured(iog_board_t *b, int quiet)
{
    if (b->set.server.family && b->set.has_pos) {
        return 1;
    }
    if (!quiet) {
        bad(b, "not configured: set server IP:PORT and position LAT,LON, then join");
    }
    return 0;
}

/* WORD cluster=C id=I block=H expires=E */
static void o_member(iog_board_t *b, const char *what)
{
    o_line(b, "%s cluster=%s id=%s block=%U expires=%U", what, b->dev.mem.ch.cluster.s,
           b->dev.me.id.s, &b->dev.mem.height, &b->dev.mem.expires);
}

/* A pin that followed a CH key rotation (PROTOCOL.md §6.1) is stored. */
/* The settings keep the device's pin: the CH key its first join met (trust
 * on first use) or, after a rotation it followed, the successor key. */
static void pin_follow(iog_board_t *b)
{
    if (b->dev.has_pin && (!b->set.has_pin || !iog_hash_eq(b->set.pin, b->dev.pin))) {
        b->set.has_pin = 1;
        memcpy(b->set.pin, b->dev.pin, IOG_HASH_LEN);
        int e = save_settings(b);
        if (e) {
            fail(b, "settings not stored", e); /* pinned until the next boot only */
        }
    }
}

static int do_join(iog_board_t *b)
{
    uint32_t t0 = p_now(b);
    iog_board_stats_t s0 = b->stats;
    uint64_t height, time_ms;
    if (!configured(b, 0)) {
        return -EINVAL;
    }
    apply_settings(b);
    b->join_due = 0;
    b->in_join = 1;
    int e = iog_device_join(&b->dev, b->set.lat, b->set.lon);
    b->in_join = 0;
    if (e) {
        b->dev.joined = 0;
        return fail(b, "join", e);
    }
    pin_follow(b);
    b->key_at = p_now(b) + IOG_REKEY_CHECK_MS; /* joined under the key in force */
    /* the join in the CH's log (PROTOCOL.md §9.2); the time of its signed
     * checkpoint, whose tree holds the join's block, or else of the signed
     * ledger head, at or after that block: the time now (clock_set) */
    int le = iog_device_check_join(&b->dev, &time_ms);
    if (le == 0) {
        clock_set(b, time_ms / 1000u);
    }
    else if (iog_device_ledger_head(&b->dev, &height, &time_ms) == 0) {
        if (height >= b->dev.mem.height) {
            clock_set(b, time_ms / 1000u);
        }
        else {
            clock_learn(b, time_ms / 1000u); /* an older head: a lower bound only */
        }
    }
    else {
        bad(b, "no signed time from the CH: expiry is left to its answers");
    }
    b->member_dirty = 1;
    b->dev.mem.seq = 0;
    e = save_member(b, 0);
    if (e == 0) {
        e = save_rtc(b, 0, 0);
    }
    o_member(b, "joined");
    uint64_t log_size = le ? 0 : b->dev.log.size;
    o_f(b, " log=%U ms=%u tx_bytes=%u rx_bytes=%u datagrams=%u", &log_size,
        p_now(b) - t0, b->stats.tx_bytes - s0.tx_bytes, b->stats.rx_bytes - s0.rx_bytes,
        b->stats.tx_dgrams - s0.tx_dgrams + b->stats.rx_dgrams - s0.rx_dgrams);
    o_end(b);
    if (le && le != -ENOTSUP) { /* the CH granted it: the membership stands */
        fail(b, "the join is not proven in the CH's log", le);
    }
    if (e) {
        /* member_dirty stays: no protected request goes out until it is written */
        return fail(b, "membership not stored", e);
    }
    return 0;
}

/*
 * Reads GET /cluster and, when the CH key changed, moves the membership to
 * the new key (PROTOCOL.md §6.2): K_m' is stored before any request uses it.
 */
static void do_rekey(iog_board_t *b)
{
    iog_member_t old = b->dev.mem;
    b->key_at = p_now(b) + IOG_REKEY_CHECK_MS;
    int e = iog_device_rekey(&b->dev), w;
    if (e == 1 && ((w = save_member(b, b->dev.mem.seq)) ||
                   (w = save_rtc(b, 0, 0)))) {
        b->dev.mem = old; /* the CH accepts the old K_m until it sees K_m' */
        apply_settings(b);
        fail(b, "re-keyed, but the membership is not stored: the old key is kept", w);
    }
    else if (e == 1) {
        o_line(b, "rekeyed ch_key=%h", b->dev.mem.ch.thumb, 8u);
        o_end(b);
        pin_follow(b);
    }
    else if (e) {
        fail(b, "CH key check", e);
    }
    iog_wipe(&old, sizeof(old));
}

void iog_board_start(iog_board_t *b)
{
    if (restore(b)) {
        o_member(b, "restored");
        o_f(b, b->kept ? " seq=%U session=%s" : " seq=%U", &b->dev.mem.seq,
            b->kept ? b->kept->peer.s : "");
        o_end(b);
        /* at boot, then daily (iog_board_poll); a sleepy board at a cold start only */
        if (!b->wakes || b->set.mode == IOG_MODE_CONSOLE) {
            do_rekey(b);
        }
        return;
    }
    if (configured(b, 0)) {
        do_join(b);
        if (!b->dev.joined) {
            b->join_due = 1;
            b->join_at = p_now(b) + IOG_JOIN_RETRY_MS;
        }
    }
}

/* ---- parsing ---- */

/* Splits off the next space-separated word; NULL at the end. */
static char *tok(char **s)
{
    char *p = *s;
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    if (!*p) {
        *s = p;
        return NULL;
    }
    char *w = p;
    while (*p && *p != ' ' && *p != '\t') {
        p++;
    }
    if (*p) {
        *p++ = '\0';
    }
    *s = p;
    return w;
}

/* The rest of the line, leading blanks skipped. */
static char *rest(char **s)
{
    char *p = *s;
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    *s = p + strlen(p);
    return p;
}

/* A decimal number in [lo, hi], nothing else. @return 0, -EINVAL or -ERANGE. */
static int parse_u32(const char *s, uint32_t lo, uint32_t hi, uint32_t *out)
{
    uint32_t v = 0;
    if (!s || !*s) {
        return -EINVAL;
    }
    for (; *s; s++) {
        if (*s < '0' || *s > '9') {
            return -EINVAL;
        }
        if (v > hi) { /* hi < 2^28: no overflow before this */
            return -ERANGE;
        }
        v = v * 10 + (uint32_t)(*s - '0');
    }
    if (v < lo || v > hi) {
        return -ERANGE;
    }
    *out = v;
    return 0;
}

/*
 * Decimal degrees, at most 3 integer digits and 6 decimals, within +-@p max
 * degrees, to microdegrees (32 bits: at most 999,999,999 before the range check).
 */
static int parse_deg(const char *s, const char *end, uint32_t max, int64_t *out)
{
    int neg = s < end && *s == '-', digits = 0, decimals = -1;
    uint32_t v = 0;
    s += s < end && (*s == '-' || *s == '+');
    for (; s < end; s++) {
        if (*s == '.' && decimals < 0) {
            decimals = 0;
            continue;
        }
        if (*s < '0' || *s > '9' || decimals >= 6 || (decimals < 0 && digits >= 3)) {
            return -EINVAL;
        }
        v = v * 10 + (uint32_t)(*s - '0');
        digits++;
        decimals += decimals >= 0;
    }
    if (!digits) {
        return -EINVAL;
    }
    for (int i = decimals < 0 ? 0 : decimals; i < 6; i++) {
        v *= 10;
    }
    if (v > max * 1000000u) {
        return -ERANGE;
    }
    *out = neg ? -(int64_t)v : (int64_t)v;
    return 0;
}

/*
 * Dotted IPv4 with a port: "a.b.c.d:port", each number 1-5 decimal digits
 * (leading zeros allowed), the address bytes <= 255, the port 1-65535.
 */
static int parse_ip4port(const char *s, iog_addr_t *a)
{
    iog_addr_t t;
    memset(&t, 0, sizeof(t));
    t.family = 2;
    if (!s) {
        return -EINVAL;
    }
    for (int i = 0; i < 5; i++) {
        const char *d = s;
        uint32_t v = 0; /* at most 99,999 */
        while (*s >= '0' && *s <= '9' && s - d < 5) {
            v = v * 10 + (uint32_t)(*s++ - '0');
        }
        /* "...:"[4] is its NUL: the port ends the text */
        if (s == d || *s != "...:"[i] || v > (i < 4 ? 255u : 65535u) || (i == 4 && !v)) {
            return -EINVAL;
        }
        if (i < 4) {
            t.ip[i] = (uint8_t)v;
            s++;
        }
        else {
            t.port = (uint16_t)v;
        }
    }
    *a = t;
    return 0;
}

/* Exactly 2 @p n hex digits (either case) into @p out. @return 0 or -EINVAL. */
static int hex_decode(const char *s, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < 2 * n; i++) {
        char c = (char)(s[i] | 0x20);
        int v = s[i] >= '0' && s[i] <= '9' ? s[i] - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (v < 0) {
            return -EINVAL;
        }
        out[i / 2] = (uint8_t)(out[i / 2] << 4 | v);
    }
    return 0;
}

/* ---- commands ---- */

/* The settings of `set`, each as "name: what it takes" (its error line). */
enum { S_SSID, S_PASS, S_SERVER, S_ID, S_POSITION, S_PIN, S_PORT, S_PEER, S_SLEEP, S_MODE, S_COUNT };
static const char *const set_usage[S_COUNT] = {
    "wifi.ssid: 1-32 bytes",
    "wifi.pass: empty (open network) or 8-63 bytes",
    "server: IPv4 address and port, e.g. 192.168.1.10:5683",
    "id: 1-64 bytes of A-Z a-z 0-9 . _ -",
    "position: LAT,LON in degrees, at most 6 decimals, |LAT| <= 90, |LON| <= 180",
    "pin: 64 hex digits (ch_key_thumbprint) or none",
    "port: 1-65535",
    "peer: ID IP:PORT",
    "sleep: 1-12600 seconds", /* the ESP8266's deep-sleep timer reaches about 3.5 hours */
    "mode: console or sleepy",
};

static int cmd_set(iog_board_t *b, char *args)
{
    char *key = tok(&args), *x, *comma;
    iog_settings_t old = b->set, *s = &b->set; /* changed in place, restored unless stored */
    uint32_t v = 0;
    int k, e = 0, drop = 0;
    size_t kl = key ? strlen(key) : 0;
    for (k = 0; key && k < S_COUNT; k++) {
        if (!strncmp(set_usage[k], key, kl) && set_usage[k][kl] == ':') {
            break;
        }
    }
    if (!key || k == S_COUNT) {
        return bad(b, "usage: set KEY VALUE; KEY is wifi.ssid wifi.pass server id position pin port peer "
                      "sleep or mode");
    }
    x = k <= S_PASS ? rest(&args) : tok(&args);
    size_t n = x ? strlen(x) : 0;
    switch (k) {
    case S_SSID:
    case S_PASS:
        e = k == S_SSID ? !n || n > 32 : n && (n < 8 || n > 63);
        strcpy(k == S_SSID ? s->ssid : s->pass, e ? "" : x);
        break;
    case S_SERVER:
        e = parse_ip4port(x, &s->server);
        break;
    case S_ID:
        e = !x || iog_id_set(&s->id, x, n);
        drop = !e && !iog_id_eq(&b->dev.me.id, x, n);
        break;
    case S_POSITION:
        comma = x ? strchr(x, ',') : NULL;
        e = !comma || parse_deg(x, comma, 90, &s->lat) ||
            parse_deg(comma + 1, comma + strlen(comma), 180, &s->lon);
        s->has_pos = 1;
        break;
    case S_PIN:
        s->has_pin = !x || strcmp(x, "none");
        e = s->has_pin && (n != 2 * IOG_HASH_LEN || hex_decode(x, s->pin, IOG_HASH_LEN));
        drop = s->has_pin && !iog_hash_eq(s->pin, b->dev.mem.ch.thumb);
        break;
    case S_PORT:
    case S_SLEEP:
        e = parse_u32(x, 1, k == S_PORT ? 65535 : IOG_SLEEP_MAX_S, &v);
        if (k == S_PORT) {
            s->port = (uint16_t)v;
        }
        else {
            s->sleep_s = v;
        }
        break;
    case S_PEER:
        e = !x || iog_id_set(&s->peer, x, n) || parse_ip4port(tok(&args), &s->peer_addr);
        break;
    default: /* S_MODE */
        s->mode = x && !strcmp(x, "sleepy");
        e = !x || (!s->mode && strcmp(x, "console"));
        break;
    }
    if (e || tok(&args)) {
        b->set = old;
        return bad(b, set_usage[k]);
    }
    if ((e = save_settings(b))) {
        b->set = old;
        return fail(b, "settings not stored", e);
    }
    if (k == S_PIN && s->has_pin && (!old.has_pin || !iog_hash_eq(old.pin, s->pin))) {
        memset(&b->dev.log, 0, sizeof(b->dev.log)); /* a re-pin: another CH's log, not an extension */
    }
    if (drop && b->dev.joined) {
        drop_member(b);
        apply_settings(b);
        say(b, "ok", "stored; the membership belonged to the old id or CH key: join again");
        return 0;
    }
    apply_settings(b);
    say(b, "ok", k <= S_PASS || k == S_PORT ? "stored; takes effect at the next boot (reboot)" : "stored");
    return 0;
}

static int cmd_show(iog_board_t *b, char *args)
{
    (void)args;
    const iog_settings_t *s = &b->set;
    const iog_device_t *d = &b->dev;
    uint64_t now = iog_board_now(b);
    o_line(b, "show id %s%s", d->me.id.s, s->id.len ? "" : " (default from the key)");
    o_line(b, s->server.family ? "show server %a" : "show server unset", &s->server);
    o_line(b, s->has_pos ? "show position %d,%d" : "show position unset", &s->lat, &s->lon);
    o_line(b, s->has_pin ? "show pin %h" : "show pin none", s->pin, (unsigned)sizeof(s->pin));
    o_line(b, "show port %u", s->port);
    o_line(b, "show wifi.ssid %s %s", s->ssid[0] ? s->ssid : "unset",
           s->pass[0] ? "(passphrase set)" : "(no passphrase)");
    o_line(b, "show mode %s peer=", s->mode == IOG_MODE_SLEEPY ? "sleepy" : "console");
    o_f(b, s->peer.len ? "%s %a" : "unset", s->peer.s, &s->peer_addr);
    o_f(b, " sleep=%u", s->sleep_s);
    o_line(b, s->cred_len ? "show credential %b (sent in every join)" : "show credential none",
           s->cred, (unsigned)s->cred_len);
    if (d->joined) {
        o_line(b, "show member cluster=%s block=%U seq=%U mark=%U expires=%U ch_key=%h",
               d->mem.ch.cluster.s, &d->mem.height, &d->mem.seq, &b->member_mark, &d->mem.expires,
               d->mem.ch.thumb, 8u);
    }
    else {
        o_line(b, "show member none");
    }
    o_line(b, now ? "show clock %U (the time of the CH's signed checkpoint or ledger head, counted on)"
                  : "show clock unknown",
           &now);
    if (b->kept && b->kept->active) {
        o_line(b, "show session %s %a seq=%U expires=%U", b->kept->peer.s, &b->kept_addr,
               &b->kept->seq, &b->kept->expires);
    }
    o_line(b, "show stats flash_writes=%u rtc_writes=%u tx_bytes=%u rx_bytes=%u wakes=%u",
           b->stats.flash_writes, b->stats.rtc_writes, b->stats.tx_bytes, b->stats.rx_bytes,
           b->wakes);
#ifdef IOG_COUNT_OPS
    o_line(b, "show crypto sign=%u verify=%u ecdh=%u aead=%u keygen=%u", iog_ops.sign,
           iog_ops.verify, iog_ops.ecdh, iog_ops.aead, iog_ops.pub);
#endif
    o_end(b);
    if (b->hooks.mem) {
        iog_mem_t m;
        memset(&m, 0, sizeof(m));
        b->hooks.mem(b->hooks.ctx, &m);
        o_line(b, "show memory heap_free=%u heap_min=%u stack_free_min=%u bearssl_stack_max=%u",
               m.heap_free, m.heap_min, m.stack_free, m.bearssl_stack);
        o_end(b);
    }
    return 0;
}

static int cmd_pubkey(iog_board_t *b, char *args)
{
    (void)args;
    uint8_t der[IOG_P256_SPKI_LEN];
    iog_p256_spki(b->dev.me.pub, der);
    o_line(b, "pubkey %b", der, (unsigned)sizeof(der));
    o_end(b);
    return 0;
}

static int cmd_credential(iog_board_t *b, char *args)
{
    char *x = tok(&args);
    uint8_t buf[IOG_CRED_MAX];
    int n;
    if (!x || tok(&args)) {
        return bad(b, "usage: credential BASE64 | credential none");
    }
    if (!strcmp(x, "none")) {
        n = 0;
    }
    else if ((n = iog_b64_decode(x, buf, sizeof(buf))) < 0) {
        return bad(b, n == -EMSGSIZE ? "credential: at most 256 bytes" : "credential: not base64");
    }
    iog_settings_t old = b->set;
    b->set.cred_len = (uint16_t)n;
    memcpy(b->set.cred, buf, (size_t)n);
    int e = save_settings(b);
    if (e) {
        b->set = old;
        return fail(b, "credential not stored", e);
    }
    apply_settings(b);
    say(b, "ok", n ? "credential stored (every join carries it)" : "credential removed");
    return 0;
}

/*
 * Runs a protected-request command; when the CH answers, sealed, that this
 * board is not a member, drops the membership, rejoins once and tries again.
 */
static int with_rejoin(iog_board_t *b, int (*fn)(iog_board_t *, const iog_id_t *),
                       const iog_id_t *peer)
{
    if (!b->dev.joined && do_join(b)) {
        return -ENOTCONN;
    }
    int e = fn(b, peer);
    if (e == -EACCES && not_member(b)) {
        fail(b, "the cluster head says this board is not a member: rejoining", e);
        drop_member(b);
        if (do_join(b)) {
            return -ENOTCONN;
        }
        e = fn(b, peer);
    }
    return e;
}

static int verify_fn(iog_board_t *b, const iog_id_t *peer)
{
    iog_verify_resp_t v;
    int e = iog_device_verify(&b->dev, peer, &v);
    if (e) {
        return e;
    }
    if (v.status != IOG_STATUS_MEMBER) {
        o_line(b, "warning %s %s", peer->s, iog_status_name(v.status));
        o_end(b);
        return 0;
    }
    on_verified(b, peer, &v);
    return 0;
}

static int cmd_verify(iog_board_t *b, char *args)
{
    iog_id_t peer;
    char *x = tok(&args);
    if (!x || tok(&args) || iog_id_set(&peer, x, strlen(x))) {
        return bad(b, "usage: verify PEER");
    }
    int e = with_rejoin(b, verify_fn, &peer);
    return e && e != -ENOTCONN ? fail(b, "verify", e) : e;
}

/* The kept session when it is with @p peer at @p addr and still valid. */
static iog_m2m_t *kept_for(iog_board_t *b, const iog_id_t *peer, const iog_addr_t *addr)
{
    iog_m2m_t *s = b->kept;
    if (!s || !s->active || !iog_id_same(&s->peer, peer) ||
        memcmp(&b->kept_addr, addr, sizeof(*addr)) != 0) {
        return NULL;
    }
    if (iog_device_session_over(&b->dev, s, 5)) { /* 5 s before its end, as the peer may see it */
        s->active = 0;
        return NULL;
    }
    return s;
}

/*
 * Sends @p msg to @p peer: in the kept session when it is still valid, else
 * in a new one (/talk), which is then kept. A peer that lost the kept
 * session (4.01) gets one new /talk. @return the reply length or -errno;
 * *fresh tells whether a new session was made.
 */
static int talk(iog_board_t *b, const iog_id_t *peer, const iog_addr_t *addr, const uint8_t *msg,
                size_t len, uint8_t *reply, size_t cap, int *fresh)
{
    for (int attempt = 0;; attempt++) {
        iog_m2m_t *s = kept_for(b, peer, addr);
        *fresh = s == NULL;
        if (!s) {
            int e = iog_device_talk(&b->dev, addr, peer, &s);
            if (e) {
                return e;
            }
            b->kept = s;
            b->kept_addr = *addr;
        }
        /* the next number is in RTC memory before it is on air (s is the kept session),
         * and so is a new session's ticket, used once (iog_device_talk()): after a reset
         * or a wake-up a replayed /talk answer with it is refused */
        int e = save_rtc(b, 1, 0);
        if (e) {
            return e;
        }
        int n = iog_device_send(&b->dev, s, addr, msg, len, reply, cap);
        if (n == -EACCES && !*fresh && attempt == 0 && b->dev.code == IOG_COAP_UNAUTHORIZED) {
            s->active = 0; /* the peer restarted or dropped it */
            continue;
        }
        if (n >= 0) {
            save_rtc(b, 0, 0); /* the reply's number in the window */
        }
        return n;
    }
}

/* "sent PEER reply=REPLY session=new|kept" */
static void o_talk_result(iog_board_t *b, const iog_id_t *peer, int n, const uint8_t *reply, int fresh)
{
    o_line(b, "sent %s reply=%m session=%s", peer->s, reply, (unsigned)n, fresh ? "new" : "kept");
}

static int refused_talk(iog_board_t *b, const iog_id_t *peer, int e)
{
    if (e == -EACCES && strncmp(b->dev.diag, "warning: ", 9) == 0) {
        o_line(b, "warning %s refused: %s", peer->s, b->dev.diag + 9);
        o_end(b);
        return e;
    }
    return fail(b, "talk", e);
}

static int cmd_talk(iog_board_t *b, char *args)
{
    iog_id_t peer;
    iog_addr_t addr;
    uint8_t reply[IOG_M2M_MAX_MSG];
    char *x = tok(&args), *a = tok(&args), *text = rest(&args);
    int fresh;
    if (!x || iog_id_set(&peer, x, strlen(x)) || parse_ip4port(a, &addr) || !*text ||
        strlen(text) > IOG_M2M_MAX_MSG) {
        return bad(b, "usage: talk PEER IP:PORT TEXT (at most 256 bytes)");
    }
    if (!b->dev.joined) {
        return bad(b, "not joined: join first");
    }
    int n = talk(b, &peer, &addr, (const uint8_t *)text, strlen(text), reply, sizeof(reply), &fresh);
    if (n < 0) {
        return refused_talk(b, &peer, n);
    }
    o_talk_result(b, &peer, n, reply, fresh);
    o_end(b);
    return 0;
}

static int cmd_leave(iog_board_t *b, char *args)
{
    (void)args;
    uint64_t h;
    uint8_t hash[IOG_HASH_LEN];
    if (!b->dev.joined) {
        return bad(b, "not joined");
    }
    int e = iog_device_leave(&b->dev, &h, hash);
    if (e) {
        return fail(b, "leave", e);
    }
    drop_member(b);
    o_line(b, "left block=%U", &h);
    o_end(b);
    return 0;
}

static int cmd_reset(iog_board_t *b, char *args)
{
    (void)args;
    int e = 0;
    for (unsigned r = 0; r < IOG_REC_COUNT; r++) {
        int x = iog_store_erase(b->st, r);
        e = e ? e : x;
    }
    drop_member(b);
    memset(&b->dev.log, 0, sizeof(b->dev.log));
    iog_settings_default(&b->set);
    iog_wipe(&b->dev.me, sizeof(b->dev.me));
    if (e) {
        return fail(b, "reset: flash not erased", e);
    }
    e = make_key(b);
    apply_settings(b);
    say(b, "ok", "reset: everything forgotten");
    return e;
}

static const char help[] =
    "help set wifi.ssid S|wifi.pass P|server IP:PORT|id ID|position LAT,LON|pin HEX|none|port N|"
    "peer ID IP:PORT|sleep S|mode console|sleepy; show; pubkey; credential BASE64|none; join; "
    "verify PEER; talk PEER IP:PORT TEXT; leave; reset; reboot";

static int cmd_join(iog_board_t *b, char *args)
{
    (void)args;
    return do_join(b);
}

static int cmd_reboot(iog_board_t *b, char *args)
{
    (void)args;
    save_rtc(b, 0, 0);
    if (b->hooks.restart) {
        b->hooks.restart(b->hooks.ctx);
    }
    return bad(b, "reboot: not possible here");
}

static int cmd_help(iog_board_t *b, char *args)
{
    (void)args;
    say(b, help, NULL);
    return 0;
}

static const struct {
    const char *name;
    uint8_t args; /* 0: takes none */
    int (*fn)(iog_board_t *b, char *args);
} commands[] = {
    { "set", 1, cmd_set },       { "show", 0, cmd_show },     { "pubkey", 0, cmd_pubkey },
    { "credential", 1, cmd_credential }, { "join", 0, cmd_join }, { "verify", 1, cmd_verify },
    { "talk", 1, cmd_talk },     { "leave", 0, cmd_leave },   { "reset", 0, cmd_reset },
    { "reboot", 0, cmd_reboot }, { "help", 0, cmd_help },
};

int iog_board_exec(iog_board_t *b, char *line)
{
    char *args = line;
    b->dev.code = 0;
    b->dev.diag[0] = '\0';
    for (char *p = line; *p; p++) {
        if (((uint8_t)*p < 0x20 || (uint8_t)*p > 0x7e) && *p != '\t') {
            return bad(b, "only printable ASCII is accepted");
        }
    }
    char *cmd = tok(&args);
    if (!cmd) {
        return 0; /* an empty line */
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (!strcmp(cmd, commands[i].name)) {
            if (!commands[i].args && tok(&(char *){ args })) {
                return bad(b, "this command takes no arguments");
            }
            return commands[i].fn(b, args);
        }
    }
    return bad(b, "unknown command (try help)");
}

void iog_board_input(iog_board_t *b, const char *data, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = data[i];
        if (c == '\n' || c == '\r') {
            if (b->line_bad) {
                bad(b, "line too long: ignored");
            }
            else if (b->line_len) {
                b->line[b->line_len] = '\0';
                iog_board_exec(b, b->line);
            }
            b->line_len = 0;
            b->line_bad = 0;
            continue;
        }
        if (b->line_len >= IOG_CONSOLE_LINE) {
            b->line_bad = 1;
            continue;
        }
        b->line[b->line_len++] = c;
    }
}

void iog_board_poll(iog_board_t *b, uint32_t timeout_ms)
{
    uint32_t now = p_now(b);
    /* the clock's base moves on daily, long before the ms counter wraps (49.7 days) */
    if (b->clock_unix && now - b->clock_ms >= 24u * 3600u * 1000u) {
        uint32_t s = (now - b->clock_ms) / 1000u;
        b->clock_unix += s;
        b->clock_ms += s * 1000u;
    }
    if (b->join_due && (int32_t)(now - b->join_at) >= 0) {
        if (do_join(b)) {
            b->join_due = 1;
            b->join_at = p_now(b) + IOG_JOIN_RETRY_MS;
        }
    }
    else if (b->dev.joined && (int32_t)(now - b->key_at) >= 0) {
        do_rekey(b);
    }
    iog_device_serve(&b->dev, timeout_ms);
}

int iog_board_wake(iog_board_t *b, const uint8_t *msg, size_t len)
{
    uint8_t reply[IOG_M2M_MAX_MSG];
    int fresh = 0, n;
    if (!b->set.peer.len) {
        n = bad(b, "sleepy mode: set peer ID IP:PORT first");
    }
    else if (!b->dev.joined && do_join(b)) {
        n = -ENOTCONN;
    }
    else {
        n = talk(b, &b->set.peer, &b->set.peer_addr, msg, len, reply, sizeof(reply), &fresh);
        if (n < 0) {
            refused_talk(b, &b->set.peer, n);
        }
        else {
            /* the whole wake cycle: everything since the board started */
            o_talk_result(b, &b->set.peer, n, reply, fresh);
            o_f(b, " wake=%u tx_bytes=%u rx_bytes=%u datagrams=%u flash_writes=%u ms=%u", b->wakes,
                b->stats.tx_bytes, b->stats.rx_bytes, b->stats.tx_dgrams + b->stats.rx_dgrams,
                b->stats.flash_writes, p_now(b) - b->boot_ms);
#ifdef IOG_COUNT_OPS
            o_f(b, " sign=%u verify=%u ecdh=%u aead=%u", iog_ops.sign, iog_ops.verify,
                iog_ops.ecdh, iog_ops.aead);
#endif
            o_end(b);
        }
    }
    save_rtc(b, 0, b->set.sleep_s);
    o_line(b, "sleep %u", b->set.sleep_s);
    o_end(b);
    if (b->hooks.sleep) {
        b->hooks.sleep(b->hooks.ctx, b->set.sleep_s * 1000u);
    }
    return n;
}
