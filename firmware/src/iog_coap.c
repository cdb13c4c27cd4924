/*
 * CoAP (RFC 7252): message codec, client with CON retransmission, server.
 */
#include <errno.h>
#include <string.h>

#include "iog_coap.h"

/*
 * Message format (RFC 7252 §3):
 *
 *   0                   1                   2                   3
 *   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |Ver| T |  TKL  |      Code     |          Message ID           |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |   Token (if any, TKL bytes) ...
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |   Options (if any) ...
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |1 1 1 1 1 1 1 1|    Payload (if any) ...
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * Option format (RFC 7252 §3.1):
 *
 *    0   1   2   3   4   5   6   7
 *  +---------------+---------------+
 *  |  Option Delta | Option Length |   1 byte
 *  +---------------+---------------+
 *  /         Option Delta          /   0-2 bytes (delta 13: +13, 14: +269)
 *  +-------------------------------+
 *  /         Option Length         /   0-2 bytes (same extension rule)
 *  +-------------------------------+
 *  /         Option Value          /   0 or more bytes
 *  +-------------------------------+
 *
 *  Nibble 15 is reserved except as the 0xFF payload marker.
 */

/* Reads an extended delta/length nibble: 13 and 14 take 1 and 2 more bytes, 15 is reserved. */
static int opt_ext(uint32_t nib, const uint8_t **p, const uint8_t *end, uint32_t *out)
{
    size_t k = nib < 13 ? 0 : nib - 12;
    uint32_t x = 0;
    if (nib == 15 || (size_t)(end - *p) < k) {
        return -EBADMSG;
    }
    while (k--) {
        x = x << 8 | *(*p)++;
    }
    *out = nib < 13 ? nib : x + (nib == 13 ? 13u : 269u);
    return 0;
}

int iog_coap_parse(iog_coap_msg_t *m, const uint8_t *buf, size_t len)
{
    memset(m, 0, sizeof(*m));
    if (len < 4 || (buf[0] >> 6) != 1) {
        return -EBADMSG;
    }
    m->type = (buf[0] >> 4) & 3;
    m->tkl = buf[0] & 0x0F;
    m->code = buf[1];
    m->mid = (uint16_t)((buf[2] << 8) | buf[3]);
    if (m->tkl > 8 || len < 4u + m->tkl) {
        return -EBADMSG;
    }
    /* classes 1, 6 and 7 are reserved (RFC 7252 §3) */
    uint8_t cls = IOG_COAP_CLASS(m->code);
    if (cls == 1 || cls == 6 || cls == 7) {
        return -EBADMSG;
    }
    memcpy(m->token, buf + 4, m->tkl);
    if (m->code == IOG_COAP_EMPTY) {
        /* an empty message is exactly the 4-byte header (RFC 7252 §4.1) */
        return (len == 4) ? 0 : -EBADMSG;
    }
    const uint8_t *p = buf + 4 + m->tkl;
    const uint8_t *end = buf + len;
    uint32_t num = 0;
    while (p < end) {
        if (*p == 0xFF) {
            p++;
            if (p == end) {
                /* marker followed by nothing is a format error */
                return -EBADMSG;
            }
            m->payload = p;
            m->payload_len = (size_t)(end - p);
            return 0;
        }
        uint32_t delta, olen;
        uint8_t b = *p++;
        if (opt_ext(b >> 4, &p, end, &delta) || opt_ext(b & 0x0F, &p, end, &olen)) {
            return -EBADMSG;
        }
        num += delta;
        if (num > 0xFFFF || olen > (size_t)(end - p)) {
            return -EBADMSG;
        }
        if (m->nopts == IOG_COAP_MAX_OPTS) {
            return -ENOSPC;
        }
        m->opts[m->nopts].num = (uint16_t)num;
        m->opts[m->nopts].len = (uint16_t)olen;
        m->opts[m->nopts].val = p;
        m->nopts++;
        p += olen;
    }
    return 0;
}

const iog_coap_opt_t *iog_coap_opt(const iog_coap_msg_t *m, uint16_t num)
{
    for (unsigned i = 0; i < m->nopts; i++) {
        if (m->opts[i].num == num) {
            return &m->opts[i];
        }
    }
    return NULL;
}

const iog_coap_opt_t *iog_coap_echo(const iog_coap_msg_t *m)
{
    const iog_coap_opt_t *o = iog_coap_opt(m, IOG_COAP_OPT_ECHO);
    return o && o->len >= 1 && o->len <= IOG_COAP_ECHO_MAX ? o : NULL;
}

int iog_coap_opt_uint(const iog_coap_msg_t *m, uint16_t num, uint32_t *v)
{
    const iog_coap_opt_t *o = iog_coap_opt(m, num);
    if (!o) {
        return -ENOENT;
    }
    if (o->len > 4) {
        return -EBADMSG;
    }
    uint32_t x = 0;
    for (unsigned i = 0; i < o->len; i++) {
        x = (x << 8) | o->val[i];
    }
    *v = x;
    return 0;
}

int iog_coap_path_is(const iog_coap_msg_t *m, const char *path)
{
    const char *s = path;
    for (unsigned i = 0; i < m->nopts; i++) {
        const iog_coap_opt_t *o = &m->opts[i];
        if (o->num != IOG_COAP_OPT_URI_PATH) {
            continue;
        }
        if (*s != '/') {
            return 0;
        }
        s++;
        size_t n = strcspn(s, "/");
        if (n != o->len || memcmp(s, o->val, n) != 0) {
            return 0;
        }
        s += n;
    }
    /* "/" alone matches a request without Uri-Path */
    return *s == '\0' || (s == path && s[0] == '/' && s[1] == '\0');
}

/* ---- building ---- */

static void put(iog_coap_pkt_t *p, const void *d, size_t n)
{
    if (p->err) {
        return;
    }
    if (p->cap - p->len < n) {
        p->err = -ENOBUFS;
        return;
    }
    if (d) {
        memcpy(p->buf + p->len, d, n);
    }
    else {
        memset(p->buf + p->len, 0, n); /* a Padding option's value */
    }
    p->len += n;
}

void iog_coap_build(iog_coap_pkt_t *p, uint8_t *buf, size_t cap, uint8_t type, uint8_t code,
                    uint16_t mid, const uint8_t *token, uint8_t tkl)
{
    p->buf = buf;
    p->cap = cap;
    p->len = 0;
    p->last = 0;
    p->err = tkl > 8 ? -EINVAL : 0;
    uint8_t h[4] = { (uint8_t)(0x40 | (type << 4) | (tkl & 0x0F)), code, (uint8_t)(mid >> 8),
                     (uint8_t)mid };
    put(p, h, 4);
    put(p, token, tkl);
}

void iog_coap_add_opt(iog_coap_pkt_t *p, uint16_t num, const void *val, size_t len)
{
    if (p->err) {
        return;
    }
    if (num < p->last || len > 0xFFFF) {
        p->err = -EINVAL;
        return;
    }
    /* the delta's and the length's nibbles, then their extensions (up to 2 bytes each) */
    uint8_t h[5] = { 0 };
    size_t n = 1;
    uint32_t v = (uint32_t)(num - p->last);
    for (int i = 4; i >= 0; i -= 4, v = (uint32_t)len) {
        /* nibble 13: v - 13 in 1 byte, 14: v - 269 in 2 bytes */
        uint32_t nib = v < 13 ? v : v < 269 ? 13 : 14, x = v - (nib == 13 ? 13 : 269);
        for (int k = nib < 13 ? 0 : (int)nib - 12; k-- > 0;) {
            h[n++] = (uint8_t)(x >> (8 * k));
        }
        h[0] |= (uint8_t)(nib << i);
    }
    put(p, h, n);
    put(p, val, len);
    p->last = num;
}

void iog_coap_add_opt_uint(iog_coap_pkt_t *p, uint16_t num, uint32_t v)
{
    uint8_t b[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };
    size_t skip = 0;
    while (skip < 4 && b[skip] == 0) {
        skip++;
    }
    iog_coap_add_opt(p, num, b + skip, 4 - skip);
}

void iog_coap_add_path(iog_coap_pkt_t *p, const char *path)
{
    while (*path == '/') {
        path++;
        size_t n = strcspn(path, "/");
        if (n == 0 && *path == '\0') {
            break;
        }
        iog_coap_add_opt(p, IOG_COAP_OPT_URI_PATH, path, n);
        path += n;
    }
}

void iog_coap_add_query(iog_coap_pkt_t *p, const char *query)
{
    size_t n;
    do {
        n = strcspn(query, "&");
        iog_coap_add_opt(p, IOG_COAP_OPT_URI_QUERY, query, n);
        query += n;
    } while (*query++);
}

void iog_coap_add_payload(iog_coap_pkt_t *p, const void *data, size_t len)
{
    if (len == 0) {
        return;
    }
    uint8_t m = 0xFF;
    put(p, &m, 1);
    put(p, data, len);
}

void iog_coap_add_padding(iog_coap_pkt_t *p, size_t size, size_t payload_len)
{
    /*
     * Before the value: 1 byte and a 2-byte delta extension (the delta is 269
     * or more), then 1 more byte for a length from 13 and 2 from 269 (RFC 7252
     * §3.1). n + ext(n) grows with n: the first n that reaches size is the least.
     */
    size_t at = p->len + 3 + (payload_len ? 1 + payload_len : 0), n = 0;
    while (at + n + (n < 13 ? 0 : n < 269 ? 1 : 2) < size) {
        n++;
    }
    iog_coap_add_opt(p, IOG_COAP_OPT_PADDING, NULL, n);
}

int iog_coap_finish(const iog_coap_pkt_t *p)
{
    return p->err ? p->err : (int)p->len;
}

/* ---- endpoint ---- */

void iog_coap_ep_init(iog_coap_ep_t *ep, const iog_platform_t *plat)
{
    memset(ep, 0, sizeof(*ep));
    ep->plat = plat;
    ep->ack_timeout_ms = IOG_COAP_ACK_TIMEOUT_MS;
    ep->max_retransmit = IOG_COAP_MAX_RETRANSMIT;
    /* RFC 7252 §4.8.2 MAX_TRANSMIT_WAIT with the defaults is 93 s */
    ep->separate_timeout_ms = 30000;
    uint8_t r[2] = { 0, 0 };
    plat->random(plat->ctx, r, sizeof(r));
    ep->next_mid = (uint16_t)((r[0] << 8) | r[1]);
}

static int addr_eq(const iog_addr_t *a, const iog_addr_t *b)
{
    return a->family == b->family && a->port == b->port && memcmp(a->ip, b->ip, 16) == 0;
}

static void send_empty(iog_coap_ep_t *ep, const iog_addr_t *to, uint8_t type, uint16_t mid)
{
    uint8_t h[4] = { (uint8_t)(0x40 | (type << 4)), 0, (uint8_t)(mid >> 8), (uint8_t)mid };
    ep->plat->send(ep->plat->ctx, to, h, sizeof(h));
}

/*
 * Answers a duplicate CON request from the cache: the same message ID from
 * the same endpoint, and the same token (the cached answer's: a request
 * that only reuses the ID, its sender restarted or its IDs wrapped, is
 * new). @return 1 if it was one.
 */
static int dedup_answer(iog_coap_ep_t *ep, const iog_addr_t *from, const iog_coap_msg_t *m)
{
    if (m->type != IOG_COAP_CON) {
        return 0;
    }
    for (unsigned i = 0; i < IOG_COAP_DEDUP_ENTRIES; i++) {
        const uint8_t *b = ep->dedup[i].buf;
        if (ep->dedup[i].len && ep->dedup[i].mid == m->mid && addr_eq(&ep->dedup[i].from, from) &&
            (b[0] & 0x0F) == m->tkl && memcmp(b + 4, m->token, m->tkl) == 0) {
            ep->plat->send(ep->plat->ctx, from, ep->dedup[i].buf, ep->dedup[i].len);
            return 1;
        }
    }
    return 0;
}

int iog_coap_recv_idle(int n)
{
    return n == -ETIMEDOUT || n == -EAGAIN || n == -EINTR || n == -EMSGSIZE;
}

int iog_coap_request(iog_coap_ep_t *ep, const iog_addr_t *to, const iog_coap_req_t *req,
                     iog_coap_msg_t *resp, uint8_t *buf, size_t cap)
{
    const iog_platform_t *pl = ep->plat;
    /* the token, then 2 bytes for the initial timeout: one draw */
    uint8_t token[IOG_COAP_TOKEN_LEN + 2];
    int r = pl->random(pl->ctx, token, sizeof(token));
    if (r) {
        return r;
    }
    uint16_t mid = ep->next_mid++;
    iog_coap_pkt_t p;
    iog_coap_build(&p, ep->tx, sizeof(ep->tx), req->confirmable ? IOG_COAP_CON : IOG_COAP_NON,
                   req->code, mid, token, IOG_COAP_TOKEN_LEN);
    iog_coap_add_path(&p, req->path);
    if (req->content_format >= 0) {
        iog_coap_add_opt_uint(&p, IOG_COAP_OPT_CONTENT_FORMAT, (uint32_t)req->content_format);
    }
    if (req->query) {
        iog_coap_add_query(&p, req->query);
    }
    if (req->accept >= 0) {
        iog_coap_add_opt_uint(&p, IOG_COAP_OPT_ACCEPT, (uint32_t)req->accept);
    }
    if (req->echo) {
        iog_coap_add_opt(&p, IOG_COAP_OPT_ECHO, req->echo, req->echo_len);
    }
    if (req->pad_to) {
        iog_coap_add_padding(&p, req->pad_to, req->payload_len);
    }
    iog_coap_add_payload(&p, req->payload, req->payload_len);
    int len = iog_coap_finish(&p);
    if (len < 0) {
        return len;
    }

    /* initial timeout: random in [ACK_TIMEOUT, ACK_TIMEOUT * RANDOM_FACTOR] */
    const uint8_t *rb = token + IOG_COAP_TOKEN_LEN;
    uint32_t timeout = ep->ack_timeout_ms;
    timeout += (uint32_t)(((uint32_t)((rb[0] << 8) | rb[1]) * (timeout / 2)) / 65535u);
    int acked = !req->confirmable; /* NON: nothing to retransmit */

    /* each transmission, then what arrives until it times out */
    for (unsigned tries = 0;; tries++) {
        if ((r = pl->send(pl->ctx, to, ep->tx, (size_t)len))) {
            return r;
        }
        uint32_t start = pl->now_ms(pl->ctx);
        uint32_t wait = acked ? ep->separate_timeout_ms : timeout;
        for (;;) {
            uint32_t elapsed = pl->now_ms(pl->ctx) - start;
            if (elapsed >= wait) {
                break;
            }
            iog_addr_t from;
            memset(&from, 0, sizeof(from));
            int n = pl->recv(pl->ctx, &from, buf, cap, wait - elapsed);
            if (n < 0) {
                if (iog_coap_recv_idle(n)) {
                    continue;
                }
                return n;
            }
            if (iog_coap_parse(resp, buf, (size_t)n)) {
                continue; /* not CoAP: ignore */
            }
            if (!addr_eq(&from, to)) {
                /* a request for our server meanwhile: only duplicates are answered */
                if (IOG_COAP_CLASS(resp->code) == 0 && resp->code != IOG_COAP_EMPTY) {
                    dedup_answer(ep, &from, resp);
                }
                continue;
            }
            int tok_ok = resp->tkl == IOG_COAP_TOKEN_LEN &&
                         memcmp(resp->token, token, IOG_COAP_TOKEN_LEN) == 0;
            if (resp->type == IOG_COAP_ACK || resp->type == IOG_COAP_RST) {
                if (resp->mid != mid || acked) {
                    continue;
                }
                if (resp->type == IOG_COAP_RST) {
                    return -ECONNRESET;
                }
                if (resp->code == IOG_COAP_EMPTY) {
                    /* RFC 7252 §5.2.2: separate response follows */
                    acked = 1;
                    start = pl->now_ms(pl->ctx);
                    wait = ep->separate_timeout_ms;
                    continue;
                }
                if (!tok_ok) {
                    continue;
                }
                return 0;
            }
            /* CON or NON: a separate response (or a stray message) */
            if (IOG_COAP_CLASS(resp->code) < 2) {
                if (IOG_COAP_CLASS(resp->code) == 0 && resp->code != IOG_COAP_EMPTY) {
                    dedup_answer(ep, &from, resp);
                }
                continue;
            }
            if (!tok_ok) {
                if (resp->type == IOG_COAP_CON) {
                    send_empty(ep, &from, IOG_COAP_RST, resp->mid);
                }
                continue;
            }
            if (resp->type == IOG_COAP_CON) {
                send_empty(ep, &from, IOG_COAP_ACK, resp->mid);
            }
            return 0;
        }
        if (acked || tries >= ep->max_retransmit) {
            return -ETIMEDOUT;
        }
        ep->retransmissions++;
        timeout *= 2;
    }
}

int iog_coap_request_verified(iog_coap_ep_t *ep, const iog_addr_t *to, const iog_coap_req_t *req,
                              iog_coap_msg_t *resp, uint8_t *buf, size_t cap, uint8_t *echo,
                              size_t *echo_len)
{
    if (echo_len) {
        *echo_len = 0;
    }
    int e = iog_coap_request(ep, to, req, resp, buf, cap);
    if (e || resp->code != IOG_COAP_UNAUTHORIZED) {
        return e;
    }
    const iog_coap_opt_t *o = iog_coap_echo(resp);
    if (!o) {
        return 0; /* a refusal, not a challenge */
    }
    /* the answer lives in buf, which the second exchange reuses */
    uint8_t challenge[IOG_COAP_ECHO_MAX];
    size_t n = o->len;
    memcpy(challenge, o->val, n);
    if (echo && echo_len) {
        memcpy(echo, challenge, n);
        *echo_len = n;
    }
    iog_coap_req_t again = *req;
    again.echo = challenge;
    again.echo_len = n;
    again.pad_to = 0; /* the Echo verifies the address: no need to pay for the answer in bytes */
    return iog_coap_request(ep, to, &again, resp, buf, cap);
}

/* a request padded for GET /cluster fits the client's buffers */
typedef char padded_request_fits[IOG_PADDED_REQUEST <= IOG_COAP_MAX_PDU ? 1 : -1];

/* a head, the longest token, a Content-Format and an Echo option fit in a server answer */
typedef char srv_pdu_fits_a_head[IOG_COAP_SRV_PDU >= 4 + 8 + 5 + 2 + IOG_COAP_ECHO_MAX ? 1 : -1];

int iog_coap_serve(iog_coap_ep_t *ep, uint32_t timeout_ms)
{
    const iog_platform_t *pl = ep->plat;
    iog_addr_t from;
    memset(&from, 0, sizeof(from));
    int n = pl->recv(pl->ctx, &from, ep->srx, sizeof(ep->srx), timeout_ms);
    if (n < 0) {
        return n == -EMSGSIZE ? 0 : n;
    }
    iog_coap_msg_t req;
    if (iog_coap_parse(&req, ep->srx, (size_t)n)) {
        return 0; /* never answer what does not parse: no amplification */
    }
    if (req.code == IOG_COAP_EMPTY || IOG_COAP_CLASS(req.code) != 0 || req.type == IOG_COAP_ACK ||
        req.type == IOG_COAP_RST) {
        if (req.type == IOG_COAP_CON) {
            send_empty(ep, &from, IOG_COAP_RST, req.mid); /* a CoAP ping, or an unexpected response */
        }
        return 0;
    }
    if (dedup_answer(ep, &from, &req)) {
        return 0;
    }
    iog_coap_resp_t resp = { IOG_COAP_CONTENT, IOG_CF_NONE, ep->spay, sizeof(ep->spay), 0, 0, NULL, 0 };
    if (ep->handler) {
        ep->handler(ep->handler_ctx, &from, &req, &resp);
    }
    else {
        resp.code = IOG_COAP_NOT_FOUND;
    }
    uint8_t out[IOG_COAP_SRV_PDU];
    iog_coap_pkt_t p;
    int con = req.type == IOG_COAP_CON, len;
    uint16_t mid = con ? req.mid : ep->next_mid++;
    for (;;) {
        iog_coap_build(&p, out, sizeof(out), con ? IOG_COAP_ACK : IOG_COAP_NON, resp.code, mid,
                       req.token, req.tkl);
        if (resp.content_format >= 0) {
            iog_coap_add_opt_uint(&p, IOG_COAP_OPT_CONTENT_FORMAT, (uint32_t)resp.content_format);
        }
        if (resp.echo) {
            iog_coap_add_opt(&p, IOG_COAP_OPT_ECHO, resp.echo, resp.echo_len);
        }
        iog_coap_add_payload(&p, resp.payload, resp.len > resp.cap ? 0 : resp.len);
        len = iog_coap_finish(&p);
        /*
         * To a request that changed nothing (from any source: it may be spoofed),
         * no answer over three times the request (PROTOCOL.md §2): it loses its
         * diagnostic, then its option. Its head and token are the request's size at most;
         * an Echo option is kept (iog_coap_resp_t::echo: the handler bounded it).
         */
        int big = len >= 0 && !resp.keep && (size_t)len > 3 * (size_t)n;
        if ((len >= 0 && !big) || (!resp.len && resp.content_format < 0)) {
            break; /* without a payload it fits (srv_pdu_fits_a_head) */
        }
        if (len < 0) { /* the handler's answer does not fit: a bare 5.00 says so rather than silence */
            resp.code = IOG_COAP_INTERNAL;
            resp.content_format = IOG_CF_NONE;
            resp.len = 0;
        }
        else if (resp.len) {
            resp.len = 0;
        }
        else {
            resp.content_format = IOG_CF_NONE;
        }
    }
    if (con && resp.keep && (size_t)len <= IOG_COAP_DEDUP_MAX) {
        unsigned s = ep->dedup_next;
        ep->dedup_next = (uint8_t)((s + 1) % IOG_COAP_DEDUP_ENTRIES);
        ep->dedup[s].from = from;
        ep->dedup[s].mid = req.mid;
        ep->dedup[s].len = (uint16_t)len;
        memcpy(ep->dedup[s].buf, out, (size_t)len);
    }
    return pl->send(pl->ctx, &from, out, (size_t)len);
}
