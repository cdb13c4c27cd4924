/*
 * Device flows of PROTOCOL.md §3–§5 over the CoAP endpoint.
 */
#include <errno.h>
#include <string.h>

#include "iog_device.h"

static void handler(void *ctx, const iog_addr_t *from, const iog_coap_msg_t *req,
                    iog_coap_resp_t *resp);

void iog_device_init(iog_device_t *d, const iog_platform_t *plat, const iog_addr_t *ch,
                     const iog_identity_t *me)
{
    memset(d, 0, sizeof(*d));
    d->plat = plat;
    d->ch = *ch;
    d->me = *me;
    d->forward_tokens = IOG_TALK_FORWARD_BURST;
    d->forward_ms = plat->now_ms ? plat->now_ms(plat->ctx) : 0;
    iog_coap_ep_init(&d->ep, plat);
    d->ep.handler = handler;
    d->ep.handler_ctx = d;
}

/* Sets code and diagnostic (@p n bytes of @p text, cut to fit), not sealed. */
static void set_refusal(iog_device_t *d, uint8_t code, const void *text, size_t n)
{
    d->code = code;
    d->sealed = 0;
    n = n < sizeof(d->diag) - 1 ? n : sizeof(d->diag) - 1;
    if (n) {
        memcpy(d->diag, text, n);
    }
    d->diag[n] = '\0';
}

/* Records a refusal: its code and its diagnostic text (Content-Format 0), never authentic. */
static void refused(iog_device_t *d, const iog_coap_msg_t *r)
{
    set_refusal(d, r->code, r->payload, r->payload_len);
}

/* Records @p s as the diagnostic of a local failure (no CoAP code). @return @p e. */
static int failed(iog_device_t *d, int e, const char *s)
{
    set_refusal(d, 0, s, strlen(s));
    return e;
}

static int cf_is(const iog_coap_msg_t *m, uint32_t cf)
{
    uint32_t v;
    return iog_coap_opt_uint(m, IOG_COAP_OPT_CONTENT_FORMAT, &v) == 0 && v == cf;
}

/*
 * POSTs the @p n bytes an encoder left in d->work; a negative @p n is that
 * encoder's error and is returned as is. Echoes travel inside payloads, but
 * with @p verified the request answers a peer's address verification (a
 * 4.01 with an Echo option, RFC 9175 §2.4) once: for /talk, whose answer is
 * several times the hello.
 */
static int post(iog_device_t *d, const iog_addr_t *to, const char *path, int32_t cf, int n,
                int verified, iog_coap_msg_t *resp)
{
    if (n < 0) {
        return n;
    }
    iog_coap_req_t req = { IOG_COAP_POST, 1, path, cf, IOG_CF_NONE, NULL, 0, d->work, (size_t)n, NULL, 0 };
    d->code = d->sealed = 0;
    d->diag[0] = '\0';
    if (verified) {
        return iog_coap_request_verified(&d->ep, to, &req, resp, d->rx, sizeof(d->rx), NULL, NULL);
    }
    return iog_coap_request(&d->ep, to, &req, resp, d->rx, sizeof(d->rx));
}

/* post() that takes any answer but @p want as a refusal (-EACCES, code and diagnostic kept). */
static int post_expect(iog_device_t *d, const iog_addr_t *to, const char *path, int32_t cf,
                       int n, int verified, uint8_t want, iog_coap_msg_t *resp)
{
    int e = post(d, to, path, cf, n, verified, resp);
    if (e) {
        return e;
    }
    if (resp->code != want) {
        refused(d, resp);
        return -EACCES;
    }
    return 0;
}

/* an Echo option iog_coap_echo() returns fits d->echo */
typedef char echo_option_fits[IOG_COAP_ECHO_MAX <= IOG_ECHO_MAX ? 1 : -1];

/*
 * The Echo option of a freshness challenge (RFC 9175: 4.01 with an Echo
 * option) to answer, on the first attempt only; NULL otherwise.
 */
static const iog_coap_opt_t *challenge(const iog_coap_msg_t *r, int attempt)
{
    return r->code == IOG_COAP_UNAUTHORIZED && attempt == 0 ? iog_coap_echo(r) : NULL;
}

/*
 * GETs the CH's public resource @p path (with @p query or NULL): 0 with its 2.05 answer in @p r,
 * -EACCES for another code. The CH first verifies the address of a source it
 * has not seen return an Echo (4.01 + Echo, PROTOCOL.md §6): the GET is sent
 * again with it, and the Echo is left in @p echo (IOG_ECHO_MAX bytes, or
 * NULL) and @p echo_len (0 without a challenge). With @p echo (the GET
 * /cluster whose Echo a join signs) the GET is padded to IOG_PADDED_REQUEST
 * bytes: the CH answers a padded GET /cluster at once, with an Echo
 * (PROTOCOL.md §2), unless its answer is over three times that (rotations in
 * it: then the challenge as above). The other public resources are
 * challenged whatever their size: padding them would only waste bytes; they
 * carry instead the Echo the last join signed, if any, which the CH made for
 * this address (PROTOCOL.md §9.2): a stale one draws the challenge, and the
 * repeat carries the new Echo in its place.
 */
static int get_public(iog_device_t *d, const char *path, const char *query, iog_coap_msg_t *r,
                      uint8_t *echo, size_t *echo_len)
{
    iog_coap_req_t req = { IOG_COAP_GET, 1, path, IOG_CF_NONE, IOG_CF_NONE, NULL, 0, NULL, 0, query,
                           echo ? IOG_PADDED_REQUEST : 0 };
    if (!echo && d->join_echo_len) {
        req.echo = d->echo;
        req.echo_len = d->join_echo_len;
    }
    d->code = 0;
    d->sealed = 0;
    int e = iog_coap_request_verified(&d->ep, &d->ch, &req, r, d->rx, sizeof(d->rx), echo,
                                      echo_len);
    if (e) {
        return e;
    }
    if (r->code != IOG_COAP_CONTENT) {
        refused(d, r);
        return -EACCES;
    }
    return 0;
}

/* GET /cluster checked against @p pin (or none). */
static int get_cluster(iog_device_t *d, const uint8_t *pin, iog_cluster_t *out)
{
    iog_coap_msg_t r;
    uint8_t verified[IOG_COAP_ECHO_MAX];
    size_t verified_len = 0;
    int e = get_public(d, "/cluster", NULL, &r, verified, &verified_len);
    if (e) {
        return e;
    }
    e = iog_cluster_info_verify(r.payload, r.payload_len, pin, out);
    if (e == -EACCES) {
        failed(d, 0, d->has_pin && !iog_hash_eq(d->pin, out->thumb)
                         ? "untrusted CH key: re-pin if it changed"
                         : "cluster info: bad signature or pin");
    }
    /*
     * The answer's Echo option, or the one that verified this address on the
     * way (PROTOCOL.md §3.1), spares the join a challenge: one signature.
     */
    const iog_coap_opt_t *o = iog_coap_echo(&r);
    const uint8_t *echo = verified;
    size_t n = verified_len;
    if (o) {
        echo = o->val;
        n = o->len;
    }
    d->echo_len = d->join_echo_len = 0;
    if (e == 0 && n >= 1 && n <= IOG_ECHO_MAX) {
        memcpy(d->echo, echo, n);
        d->echo_len = (uint8_t)n;
    }
    return e == -EBADMSG ? -EPROTO : e;
}

int iog_device_cluster(iog_device_t *d, iog_cluster_t *out)
{
    int e = get_cluster(d, d->has_pin ? d->pin : NULL, out);
    if (e == 0) {
        memcpy(d->pin, out->thumb, IOG_HASH_LEN); /* the pinned key or, through a rotation, its successor */
    }
    return e;
}

/* Lets the system run between two P-256 operations (the watchdog on a chip). */
static void let_run(const iog_device_t *d)
{
    if (d->plat->yield) {
        d->plat->yield(d->plat->ctx);
    }
}

/*
 * Waits @p ms without serving: what arrives meanwhile is dropped (a peer's
 * CON request is retransmitted; the device is not a member while it joins).
 */
static void pause_ms(iog_device_t *d, uint32_t ms)
{
    const iog_platform_t *pl = d->plat;
    uint32_t start = pl->now_ms(pl->ctx);
    for (uint32_t elapsed = 0; elapsed < ms; elapsed = pl->now_ms(pl->ctx) - start) {
        iog_addr_t from;
        int n = pl->recv(pl->ctx, &from, d->rx, sizeof(d->rx), ms - elapsed);
        if (n < 0 && !iog_coap_recv_idle(n)) {
            return;
        }
    }
}

/* the /cluster fields a join keeps are the last of iog_cluster_t: lat, lon, radius */
typedef char cluster_ends_with_position[offsetof(iog_cluster_t, radius) + sizeof(uint64_t) ==
                                               sizeof(iog_cluster_t)
                                           ? 1
                                           : -1];

int iog_device_join(iog_device_t *d, int64_t lat, int64_t lon)
{
    iog_cluster_t c;
    iog_coap_msg_t r;
    uint8_t nd[IOG_NONCE_LEN];
    int e = iog_device_cluster(d, &c);
    if (e) {
        return e;
    }
    let_run(d);
    if (d->pend && iog_id_same(&d->pend_cluster, &c.cluster)) {
        memcpy(nd, d->pend_nonce, sizeof(nd)); /* the same join: it may be recorded */
    }
    else if ((e = d->plat->random(d->plat->ctx, nd, sizeof(nd)))) {
        return e;
    }
    /* the echo of the /cluster answer, if any: one signature, no challenge */
    iog_join_req_t jr = { &d->me, &c.cluster, lat, lon, nd, d->echo_len ? d->echo : NULL, d->echo_len,
                          d->cred, d->cred_len };
    for (int challenged = 0, retries = 0, n = 0;;) {
        if (n == 0) { /* (again) with the echo of a challenge */
            if ((n = iog_join_req_encode(&jr, d->work, sizeof(d->work))) < 0) {
                return n;
            }
            /* from here on the join may be recorded, until the ledger answers */
            memcpy(d->pend_nonce, nd, sizeof(nd));
            d->pend_cluster = c.cluster;
            d->pend = 1;
        }
        let_run(d);
        if ((e = post(d, &d->ch, "/join", IOG_CF_COSE_SIGN1, n, 0, &r))) {
            return e;
        }
        const iog_coap_opt_t *o = challenge(&r, challenged);
        if (o) {
            /* RFC 9175 freshness challenge: sign the echo into the same join, resend */
            memcpy(d->echo, o->val, o->len);
            jr.echo = d->echo;
            jr.echo_len = o->len;
            challenged = 1;
            n = 0;
            continue;
        }
        if (r.code == IOG_COAP_UNAVAILABLE) {
            /* the ledger has not decided (PROTOCOL.md §3.3): the same bytes, later */
            refused(d, &r);
            if (retries++ == IOG_JOIN_RETRIES) {
                return -EAGAIN;
            }
            uint32_t age = 60; /* CoAP's default Max-Age */
            iog_coap_opt_uint(&r, IOG_COAP_OPT_MAX_AGE, &age);
            pause_ms(d, age > IOG_JOIN_MAX_WAIT_MS / 1000u ? IOG_JOIN_MAX_WAIT_MS : age * 1000u);
            challenged = 0; /* the echo may go stale meanwhile */
            continue;
        }
        break;
    }
    /* A refusal keeps the nonce pending: it is not signed, and a 4.09 forged
     * on the path while the CH recorded the join would make the next join a
     * second one (PROTOCOL.md §3.3). A retry of a refused join is refused
     * again, and records nothing. */
    if (r.code != IOG_COAP_CREATED && r.code != IOG_COAP_CHANGED) {
        refused(d, &r);
        return -EACCES;
    }
    /* the answer must come from the key /cluster showed */
    e = iog_join_resp_verify(r.payload, r.payload_len, &jr, c.thumb, d->plat->unix_s(d->plat->ctx), &d->mem);
    let_run(d);
    if (e == -ESTALE) {
        /* the CH answered the join it recorded for this nonce, and that
         * membership is over (or this clock is wrong): not joined, and the
         * nonce is not pending any more */
        d->pend = 0;
        return failed(d, -EPROTO, "join answer: membership already expired");
    }
    if (e) {
        return e == -EACCES ? failed(d, -EACCES, "join answer: bad signature or binding")
                            : failed(d, -EPROTO, "join answer: malformed");
    }
    memcpy(&d->mem.ch.lat, &c.lat, sizeof(c) - offsetof(iog_cluster_t, lat)); /* lat, lon, radius */
    if ((e = iog_member_derive(&d->me, &d->mem))) {
        return e;
    }
    let_run(d);
    d->mem.seq = 0;
    /* no ticket sealed under an earlier K_m opens under this one (a nonce
     * pending from a join never answered gave no K_m before either) */
    memset(d->spent, 0, sizeof(d->spent));
    d->joined = 1;
    d->echo_len = 0;
    d->join_echo_len = (uint8_t)jr.echo_len; /* in d->echo; the CH took it, for this address */
    d->pend = 0;
    if (!d->has_pin) { /* trust on first use: from now on this CH key only */
        memcpy(d->pin, c.thumb, IOG_HASH_LEN);
        d->has_pin = 1;
    }
    if (d->persist && (e = d->persist(d->persist_ctx, d))) {
        return e;
    }
    return 0;
}

int iog_device_ledger_head(iog_device_t *d, uint64_t *height, uint64_t *time_ms)
{
    iog_coap_msg_t r;
    uint8_t hash[IOG_HASH_LEN];
    if (!d->joined) {
        return -ENOTCONN;
    }
    int e = get_public(d, "/ledger/head", NULL, &r, NULL, NULL);
    if (e) {
        return e;
    }
    e = iog_ledger_head_verify(r.payload, r.payload_len, d->mem.ch.pub, height, hash, time_ms);
    if (e) {
        failed(d, 0, "ledger head: malformed or not signed by the CH");
    }
    return e == -EBADMSG ? -EPROTO : e;
}

int iog_device_check_join(iog_device_t *d, uint64_t *time_ms)
{
    static const struct {
        int16_t e;
        const char *why;
    } whys[] = {
        { -EBADMSG, "the proof is malformed" },
        { -EACCES, "the checkpoint is not signed by the CH key" },
        { -ENOENT, "the log proves another block than the join answer named" },
        { -EILSEQ, "the inclusion path does not lead to the checkpoint's root" },
        { -EXDEV, "the log is not an extension of the kept checkpoint (a fork)" },
    };
    iog_coap_msg_t r;
    char q[8 + IOG_ID_MAX + 26] = "id=";
    if (!d->joined) {
        return -ENOTCONN;
    }
    strcat(q, d->me.id.s);
    if (d->log.size) { /* a kept checkpoint: at most IOG_TLOG_MAX_SIZE */
        char num[11], *p = num + sizeof(num) - 1;
        uint32_t v = (uint32_t)d->log.size;
        *p = '\0';
        do { /* one division a digit */
            uint32_t tens = v / 10;
            *--p = (char)('0' + (v - tens * 10));
            v = tens;
        } while (v);
        strcat(q, "&from=");
        strcat(q, p);
    }
    int e = get_public(d, "/ledger/proof", q, &r, NULL, NULL);
    if (e) {
        return e == -EACCES && d->code == IOG_COAP_NOT_FOUND &&
                       strncmp(d->diag, "no transparency log", 19) == 0
                   ? -ENOTSUP
                   : e;
    }
    e = iog_tlog_check_join(r.payload, r.payload_len, &d->mem, &d->log, time_ms);
    for (unsigned i = 0; e && i < sizeof(whys) / sizeof(whys[0]); i++) {
        if (whys[i].e == e) {
            failed(d, 0, whys[i].why);
        }
    }
    return e ? -EPROTO : 0;
}

int iog_device_rekey(iog_device_t *d)
{
    iog_cluster_t c;
    iog_member_t *m = &d->mem;
    if (!d->joined) {
        return -ENOTCONN;
    }
    /* the new key through rotations from the key of the membership; a pin
     * elsewhere in the chain than at either end is not followed */
    int e = get_cluster(d, m->ch.thumb, &c);
    if (e) {
        return e;
    }
    if (!iog_id_same(&c.cluster, &m->ch.cluster) ||
        (d->has_pin && !iog_hash_eq(d->pin, m->ch.thumb) &&
         !iog_hash_eq(d->pin, c.thumb))) {
        return failed(d, -EACCES, "cluster info: another cluster, or a key the pin does not lead to");
    }
    memcpy(d->pin, c.thumb, IOG_HASH_LEN);
    if (iog_hash_eq(c.thumb, m->ch.thumb)) {
        return 0;
    }
    let_run(d);
    /* K_m' (PROTOCOL.md §6.2): the new key, the nonces and the sequence number of the join */
    memcpy(m->ch.pub, c.pub, IOG_P256_PUB_LEN);
    memcpy(m->ch.thumb, c.thumb, IOG_HASH_LEN);
    e = iog_member_derive(&d->me, m);
    return e ? e : 1;
}

/*
 * Records the CH's refusal @p r of protected request @p seq to @p path. A
 * sealed one (Content-Format 16, PROTOCOL.md §4.1) that opens is the CH's
 * own: its diagnostic, d->sealed = 1. Any other is text anyone on the path
 * could have sent: d->sealed = 0, and nothing may act on it.
 */
static void refusal(iog_device_t *d, const iog_coap_msg_t *r, uint64_t seq, const char *path)
{
    if (!cf_is(r, IOG_CF_COSE_ENCRYPT0)) {
        refused(d, r);
        return;
    }
    int n = iog_prot_refusal_open(&d->mem, &d->me.id, seq, path, r->payload, r->payload_len, d->pt,
                                  sizeof(d->pt));
    if (n < 0) {
        static const char unopened[] = "sealed refusal does not open";
        set_refusal(d, r->code, unopened, sizeof(unopened) - 1);
        return;
    }
    set_refusal(d, r->code, d->pt, (size_t)n);
    d->sealed = 1;
}

/*
 * One protected request to @p path ("/" and the path the AAD names)
 * naming @p peer (NULL for /leave), with a forwarded talk proof (a /session
 * for a hello) or NULL: seal, send, answer a restart echo challenge once
 * when it is sealed (PROTOCOL.md §4.1, §4.2), open the response into d->pt.
 * @return the plaintext length or a negative errno.
 */
static int protected_call(iog_device_t *d, const char *path, const iog_id_t *peer,
                          const iog_talk_proof_t *proof, uint8_t ok_code)
{
    iog_coap_msg_t r;
    if (!d->joined) {
        return failed(d, -ENOTCONN, "not joined");
    }
    for (int attempt = 0;; attempt++) {
        uint64_t seq = d->mem.seq;
        if (seq > IOG_SEQ_MAX) {
            return failed(d, -ERANGE, "sequence numbers exhausted: rejoin");
        }
        d->mem.seq++;
        int e;
        if (d->persist && (e = d->persist(d->persist_ctx, d))) {
            return e;
        }
        int n = iog_peer_req_encode(peer, proof, d->echo_len ? d->echo : NULL, d->echo_len, d->pt,
                                    sizeof(d->pt));
        if (n < 0) {
            return n;
        }
        n = iog_prot_req_seal(&d->mem, &d->me.id, seq, path + 1, d->pt, (size_t)n, d->work,
                              sizeof(d->work));
        if ((e = post(d, &d->ch, path, IOG_CF_COSE_ENCRYPT0, n, 0, &r))) {
            return e;
        }
        if (r.code != ok_code) {
            refusal(d, &r, seq, path + 1);
            /* the CH restarted: resend with a new seq and the echo inside;
             * only the CH's own challenge, its diagnostic sealed for this
             * request (the code and options are not sealed): one forged on
             * the path would have the CH serve the request twice */
            const iog_coap_opt_t *o =
                d->sealed && strcmp(d->diag, "echo required") == 0 ? challenge(&r, attempt) : NULL;
            if (o) {
                memcpy(d->echo, o->val, o->len);
                d->echo_len = (uint8_t)o->len;
                d->join_echo_len = 0;
                continue;
            }
            d->echo_len = 0;
            return -EACCES;
        }
        d->echo_len = 0;
        n = iog_prot_resp_open(&d->mem, &d->me.id, seq, path + 1, r.payload, r.payload_len, d->pt,
                               sizeof(d->pt));
        if (n < 0) {
            return failed(d, -EPROTO, "protected response does not open");
        }
        return n;
    }
}

int iog_device_verify(iog_device_t *d, const iog_id_t *peer, iog_verify_resp_t *v)
{
    int n = protected_call(d, "/" IOG_PATH_VERIFY, peer, NULL, IOG_COAP_CONTENT);
    if (n < 0) {
        return n;
    }
    if (iog_verify_resp_decode(d->pt, (size_t)n, v) || !iog_id_same(&v->peer, peer)) {
        return failed(d, -EPROTO, "verify answer: malformed or about another peer");
    }
    return 0;
}

int iog_device_session(iog_device_t *d, const iog_id_t *peer, const iog_talk_proof_t *proof,
                       iog_m2m_t *s, uint8_t *ticket, size_t *ticket_len, size_t ticket_cap)
{
    const uint8_t *g, *t, *w;
    size_t gl, tl, wl;
    iog_ticket_t grant;
    uint8_t sk[16];
    int n = protected_call(d, "/" IOG_PATH_SESSION, peer, proof, IOG_COAP_CONTENT);
    if (n < 0) {
        return n;
    }
    if (iog_session_resp_split(d->pt, (size_t)n, &g, &gl, &t, &tl, &w, &wl)) {
        return failed(d, -EPROTO, "session answer: malformed");
    }
    if (w) { /* the CH accepted the peer's proof and warns about the peer */
        iog_verify_resp_t v;
        if (!proof || iog_verify_resp_decode(w, wl, &v) || !iog_id_same(&v.peer, peer) ||
            v.status == IOG_STATUS_MEMBER) {
            return failed(d, -EPROTO, "session answer: malformed warning");
        }
        return failed(d, -EPERM, iog_status_name(v.status));
    }
    if (iog_ticket_parse(g, gl, &grant) || tl > ticket_cap) {
        return failed(d, -EPROTO, "session answer: malformed");
    }
    /* the grant: sealed to me, I respond to the peer who initiated */
    int e = iog_ticket_open(&grant, d->mem.keys.ticket, &d->mem.ch.cluster, &d->me.id, peer,
                            &d->me.id, d->plat->unix_s(d->plat->ctx), sk);
    if (e) {
        return failed(d, -EPROTO, e == -ETIME ? "grant expired" : "grant does not open");
    }
    e = iog_m2m_init(s, sk, grant.sid, grant.expires, &d->me.id, peer);
    iog_wipe(sk, sizeof(sk));
    if (e) {
        return e;
    }
    s->made_ms = d->plat->now_ms(d->plat->ctx);
    memcpy(ticket, t, tl);
    *ticket_len = tl;
    return 0;
}

int iog_device_leave(iog_device_t *d, uint64_t *height, uint8_t hash[IOG_HASH_LEN])
{
    int n = protected_call(d, "/" IOG_PATH_LEAVE, NULL, NULL, IOG_COAP_CHANGED);
    if (n < 0) {
        return n;
    }
    if (iog_leave_resp_decode(d->pt, (size_t)n, height, hash)) {
        return failed(d, -EPROTO, "leave answer: malformed");
    }
    d->joined = 0;
    iog_wipe(&d->mem.keys, sizeof(d->mem.keys));
    if (d->persist) {
        d->persist(d->persist_ctx, d);
    }
    return 0;
}

/* A slot for a session with @p peer: its existing one, a free one, or the oldest. */
static iog_m2m_t *slot_for(iog_device_t *d, const iog_id_t *peer)
{
    iog_m2m_t *freeslot = NULL, *oldest = &d->sessions[0];
    for (unsigned i = 0; i < IOG_MAX_SESSIONS; i++) {
        iog_m2m_t *s = &d->sessions[i];
        if (s->active && iog_id_same(&s->peer, peer)) {
            return s;
        }
        if (!s->active && !freeslot) {
            freeslot = s;
        }
        if (s->expires < oldest->expires) {
            oldest = s;
        }
    }
    return freeslot ? freeslot : oldest;
}

/*
 * The entry of d->spent that the ticket of session @p sid may take at unix
 * time @p now: -EACCES when the ticket was used (its sid is remembered);
 * -EBUSY when every entry holds a ticket that has not expired (without a
 * clock, @p now 0, none has); else a free entry or, when none is, the one
 * whose ticket expires first, expired. @p sid NULL asks only whether there
 * is room.
 */
static int spent_slot(const iog_device_t *d, const uint8_t *sid, uint64_t now)
{
    unsigned slot = 0;
    for (unsigned i = 0; i < IOG_SPENT_TICKETS; i++) {
        const iog_spent_t *x = &d->spent[i];
        if (sid && x->expires && memcmp(x->sid, sid, IOG_NONCE_LEN) == 0) {
            return -EACCES;
        }
        if (x->expires < d->spent[slot].expires) {
            slot = i;
        }
    }
    uint64_t e = d->spent[slot].expires;
    return e == 0 || (now && now >= e) ? (int)slot : -EBUSY;
}

int iog_device_talk(iog_device_t *d, const iog_addr_t *addr, const iog_id_t *peer,
                    iog_m2m_t **out)
{
    static const char full[] = "ticket memory full: too many new sessions";
    iog_coap_msg_t r;
    iog_id_t who;
    const uint8_t *t;
    size_t tl;
    iog_ticket_t ticket;
    iog_talk_proof_t proof;
    uint8_t sk[16], nonce[IOG_TALK_NONCE_LEN];
    uint64_t now = d->plat->unix_s(d->plat->ctx);
    if (!d->joined) {
        return failed(d, -ENOTCONN, "not joined");
    }
    if (!now) {
        return failed(d, -ETIME, "no clock: a talk proof needs the time");
    }
    if (spent_slot(d, NULL, now) < 0) { /* no room for the ticket: ask the peer for none */
        return failed(d, -EBUSY, full);
    }
    /* the proof of membership the peer's CH checks (PROTOCOL.md §5.1) */
    int e = d->plat->random(d->plat->ctx, nonce, sizeof(nonce));
    if (e || (e = iog_talk_proof_make(d->mem.keys.talk, &d->mem.ch.cluster, &d->me.id, peer, nonce,
                                      now, &proof))) {
        return e;
    }
    int n = iog_hello_encode(&d->me.id, peer, &proof, d->work, sizeof(d->work));
    e = post_expect(d, addr, "/talk", IOG_CF_CBOR, n, 1, IOG_COAP_CONTENT, &r);
    if (e) {
        return e;
    }
    if (!cf_is(&r, IOG_CF_CBOR) || iog_talk_resp_decode(r.payload, r.payload_len, &who, &t, &tl) ||
        !iog_id_same(&who, peer) || iog_ticket_parse(t, tl, &ticket)) {
        return failed(d, -EPROTO, "talk answer: malformed or from another peer");
    }
    /* the ticket: sealed to me by the CH, I initiated, the peer responds */
    uint64_t later = d->plat->unix_s(d->plat->ctx);
    now = later > now ? later : now; /* not 0: the ticket's expiry is checked */
    e = iog_ticket_open(&ticket, d->mem.keys.ticket, &d->mem.ch.cluster, &d->me.id, &d->me.id,
                        peer, now, sk);
    if (e) {
        return failed(d, -EACCES, e == -ETIME ? "ticket expired" : "ticket does not open");
    }
    /* used once: this answer may be an older one, not the peer's answer to
     * this hello; its session again would reuse its nonces */
    int slot = spent_slot(d, ticket.sid, now);
    if (slot < 0) {
        iog_wipe(sk, sizeof(sk));
        return failed(d, slot, slot == -EACCES ? "ticket already used" : full);
    }
    memcpy(d->spent[slot].sid, ticket.sid, IOG_NONCE_LEN);
    d->spent[slot].expires = ticket.expires; /* not 0: it opened at now != 0 */
    iog_m2m_t *s = slot_for(d, peer);
    e = iog_m2m_init(s, sk, ticket.sid, ticket.expires, &d->me.id, peer);
    iog_wipe(sk, sizeof(sk));
    if (e) {
        return e;
    }
    s->made_ms = d->plat->now_ms(d->plat->ctx);
    *out = s;
    return 0;
}

int iog_device_session_over(const iog_device_t *d, const iog_m2m_t *s, uint32_t margin_s)
{
    const iog_platform_t *pl = d->plat;
    uint64_t now = pl->unix_s(pl->ctx);
    return now ? now + margin_s >= s->expires
               : pl->now_ms(pl->ctx) - s->made_ms >= (IOG_SESSION_LOCAL_S - margin_s) * 1000u;
}

int iog_device_send(iog_device_t *d, iog_m2m_t *s, const iog_addr_t *addr, const uint8_t *msg,
                    size_t len, uint8_t *reply, size_t reply_cap)
{
    iog_coap_msg_t r;
    if (!s->active || iog_device_session_over(d, s, 0)) {
        return failed(d, -ETIME, "session expired");
    }
    int n = iog_m2m_seal(s, &d->me.id, msg, len, d->work, sizeof(d->work));
    int e = post_expect(d, addr, "/m2m", IOG_CF_COSE_ENCRYPT0, n, 0, IOG_COAP_CHANGED, &r);
    if (e) {
        return e;
    }
    if (r.payload_len > reply_cap) {
        return -ENOBUFS;
    }
    n = iog_m2m_open(s, &d->me.id, r.payload, r.payload_len, reply, reply_cap);
    if (n < 0) {
        return failed(d, -EPROTO, "reply does not open");
    }
    return n;
}

/*
 * The millisecond clock of the /talk Echo values. Their key lives within one
 * turn of it: a read below the last one means the clock wrapped since, and
 * the key is forgotten (the next challenge draws another), so that a stamp,
 * which comes round again every 2^32 ms (49.7 days), never checks under the
 * key that made it. An Echo made just before a wrap is refused just after
 * (its source is challenged again). iog_device_serve() reads it at every
 * call, so that a wrap is seen as long as the listener is served at least
 * once in 49.7 days.
 */
static uint32_t echo_now(iog_device_t *d)
{
    uint32_t now = d->plat->now_ms(d->plat->ctx);
    if (now < d->echo_seen) {
        d->echo_keyed = 0;
    }
    d->echo_seen = now;
    return now;
}

int iog_device_serve(iog_device_t *d, uint32_t timeout_ms)
{
    echo_now(d); /* sees each wrap of the clock */
    return iog_coap_serve(&d->ep, timeout_ms);
}

/* ---- server side: /talk and /m2m ---- */

static void diag(iog_coap_resp_t *resp, uint8_t code, const char *text, const char *more)
{
    size_t n = strlen(text), m = more ? strlen(more) : 0;
    if (n + m > resp->cap) {
        n = m = 0;
    }
    resp->code = code;
    resp->content_format = IOG_CF_TEXT;
    memcpy(resp->payload, text, n);
    if (m) {
        memcpy(resp->payload + n, more, m);
    }
    resp->len = n + m;
}

static void warn(iog_device_t *d, iog_coap_resp_t *resp, const iog_id_t *peer, const char *why)
{
    d->warnings++;
    if (d->on_warning) {
        d->on_warning(d->cb_ctx, peer, why);
    }
    diag(resp, IOG_COAP_FORBIDDEN, "warning: ", why);
}

/* Refuses a hello for its talk proof: 4.01 "bad talk proof..." (PROTOCOL.md §5.1). */
static void refuse_proof(iog_device_t *d, iog_coap_resp_t *resp, const iog_id_t *peer,
                         const char *text, const char *more)
{
    diag(resp, IOG_COAP_UNAUTHORIZED, text, more);
    d->warnings++;
    if (d->on_warning) {
        char why[sizeof(d->diag)];
        size_t n = resp->len < sizeof(why) - 1 ? resp->len : sizeof(why) - 1;
        memcpy(why, resp->payload, n);
        why[n] = '\0';
        d->on_warning(d->cb_ctx, peer, why);
    }
}

/*
 * Claims the hello with proof @p p for forwarding: 0 when it is new, -1 when
 * this listener forwarded it already and it is not stale yet. Without a
 * clock (@p now 0) a remembered proof counts until its slot is reused.
 */
static int hello_claim(iog_device_t *d, const iog_talk_proof_t *p, uint64_t now)
{
    unsigned slot = IOG_HELLO_MEMORY;
    for (unsigned i = 0; i < IOG_HELLO_MEMORY; i++) {
        int live = d->hellos[i].until != 0 && (now == 0 || now <= d->hellos[i].until);
        if (live && iog_ct_eq(d->hellos[i].tag, p->tag, sizeof(p->tag))) {
            return -1;
        }
        if (!live && slot == IOG_HELLO_MEMORY) {
            slot = i;
        }
    }
    if (slot == IOG_HELLO_MEMORY) { /* all live: the oldest claim goes */
        slot = d->hello_next;
        d->hello_next = (d->hello_next + 1) % IOG_HELLO_MEMORY;
    }
    memcpy(d->hellos[slot].tag, p->tag, sizeof(p->tag));
    /* saturated: a wrap to 0 would free the slot (a clockless listener checks no time) */
    d->hellos[slot].until = p->time > UINT64_MAX - IOG_TALK_LIFETIME_S ? UINT64_MAX
                                                                         : p->time + IOG_TALK_LIFETIME_S;
    return 0;
}

/* Forgets the claim of @p p: the CH did not accept the proof. */
static void hello_release(iog_device_t *d, const iog_talk_proof_t *p)
{
    for (unsigned i = 0; i < IOG_HELLO_MEMORY; i++) {
        if (d->hellos[i].until && iog_ct_eq(d->hellos[i].tag, p->tag, sizeof(p->tag))) {
            d->hellos[i].until = 0;
        }
    }
}

/* Token bucket of forwarded hellos: 1 when one more may go to the CH now. */
static int forward_allowed(iog_device_t *d)
{
    uint32_t now = d->plat->now_ms(d->plat->ctx);
    uint32_t earned = (now - d->forward_ms) / IOG_TALK_FORWARD_MS; /* wrap-safe elapsed time */
    if (d->forward_tokens + earned >= IOG_TALK_FORWARD_BURST) {
        d->forward_tokens = IOG_TALK_FORWARD_BURST;
        d->forward_ms = now;
    }
    else {
        d->forward_tokens += earned;
        d->forward_ms += earned * IOG_TALK_FORWARD_MS;
    }
    if (d->forward_tokens == 0) {
        return 0;
    }
    d->forward_tokens--;
    return 1;
}

/* 1 while hellos are not forwarded: the CH left the last one unanswered (IOG_TALK_CH_PAUSE_MS). */
static int forward_paused(iog_device_t *d)
{
    if (d->paused && d->plat->now_ms(d->plat->ctx) - d->pause_from >= d->pause_len) {
        d->paused = 0; /* over: the next forward tries the CH */
    }
    return d->paused;
}

/*
 * A hello (PROTOCOL.md §5.1). What this device can check itself — a proof is
 * there, names it, is fresh, was not forwarded before — it checks before it
 * asks its CH anything; the CH checks the rest in the one /session that
 * forwards the proof. Only an accepted proof of a current member touches
 * the sessions.
 */
static void serve_talk(iog_device_t *d, const iog_coap_msg_t *req, iog_coap_resp_t *resp)
{
    iog_id_t peer, responder;
    iog_talk_proof_t proof;
    int has_proof;
    static const char *const internal = "internal error";
    /* as the Go device: a CH that cannot be reached is 5.03, not a warning */
    static const char *const unavailable = "cluster head unavailable";
    static const char *const bad = "bad talk proof: ";
    d->code = d->sealed = 0; /* what on_warning() reads is this hello's, not an older refusal's */
    d->diag[0] = '\0';
    if (iog_hello_decode(req->payload, req->payload_len, &peer, &responder, &proof, &has_proof)) {
        diag(resp, IOG_COAP_BAD_REQUEST, "malformed hello", NULL);
        return;
    }
    uint64_t now = d->plat->unix_s(d->plat->ctx);
    if (!has_proof) {
        refuse_proof(d, resp, &peer, bad, "missing");
        return;
    }
    if (!iog_id_same(&responder, &d->me.id)) {
        refuse_proof(d, resp, &peer, bad, "wrong responder");
        return;
    }
    if (iog_id_same(&peer, &d->me.id)) {
        /* what the CH would answer (the requester naming itself), without asking it */
        warn(d, resp, &peer, "peer not a member: peer is the requester");
        return;
    }
    /* unix_s() may be a lower bound of now (a board's clock after a reset): only a proof
     * older than its lifetime before it is stale for sure; a later one is the CH's to judge */
    if (now && now > proof.time && now - proof.time > IOG_TALK_LIFETIME_S) {
        refuse_proof(d, resp, &peer, bad, "stale");
        return;
    }
    if (forward_paused(d)) {
        diag(resp, IOG_COAP_UNAVAILABLE, unavailable, NULL);
        return;
    }
    if (hello_claim(d, &proof, now)) {
        refuse_proof(d, resp, &peer, bad, "replay");
        return;
    }
    if (!forward_allowed(d)) {
        hello_release(d, &proof);
        diag(resp, IOG_COAP_TOO_MANY, "rate limited", NULL);
        return;
    }
    iog_m2m_t *s = slot_for(d, &peer);
    uint8_t ticket[IOG_TICKET_MAX];
    size_t tl;
    int e = iog_device_session(d, &peer, &proof, s, ticket, &tl, sizeof(ticket));
    if (e == -ETIMEDOUT) { /* no answer: pause forwarding, twice as long as last time */
        d->pause_len = d->pause_len ? d->pause_len * 2 : IOG_TALK_CH_PAUSE_MS;
        d->pause_len = d->pause_len > IOG_TALK_CH_PAUSE_MAX_MS ? IOG_TALK_CH_PAUSE_MAX_MS : d->pause_len;
        d->pause_from = d->plat->now_ms(d->plat->ctx);
        d->paused = 1;
    }
    else {
        d->pause_len = 0;
    }
    if (e == -EPERM) { /* the CH warns about the peer it authenticated */
        warn(d, resp, &peer, d->diag);
        resp->keep = 1; /* the hello stays claimed: a duplicate gets this answer, not "replay" */
        return;
    }
    if (e) {
        hello_release(d, &proof);
        if (e == -EACCES && d->code == IOG_COAP_UNAUTHORIZED) {
            refuse_proof(d, resp, &peer, d->diag, NULL); /* the CH's diagnostic, as is */
        }
        else if (e == -EACCES && d->code == IOG_COAP_FORBIDDEN) {
            warn(d, resp, &peer, d->diag);
        }
        else {
            diag(resp, IOG_COAP_UNAVAILABLE, unavailable, NULL);
        }
        return;
    }
    if (d->on_verified) {
        iog_verify_resp_t v;
        memset(&v, 0, sizeof(v));
        v.peer = peer;
        v.status = IOG_STATUS_MEMBER;
        d->on_verified(d->cb_ctx, &peer, &v);
    }
    int n = iog_talk_resp_encode(&d->me.id, ticket, tl, resp->payload, resp->cap);
    if (n < 0) {
        diag(resp, IOG_COAP_INTERNAL, internal, NULL);
        return;
    }
    resp->code = IOG_COAP_CONTENT;
    resp->content_format = IOG_CF_CBOR;
    resp->len = (size_t)n;
    resp->keep = 1; /* a new session */
}

static void serve_m2m(iog_device_t *d, const iog_coap_msg_t *req, iog_coap_resp_t *resp)
{
    iog_enc0_t x;
    iog_id_t sender;
    iog_m2m_t *s = NULL;
    if (iog_enc0_parse(req->payload, req->payload_len, &x) || !x.kid || !x.kidctx ||
        iog_id_set(&sender, x.kid, x.kid_len) || x.kidctx_len != IOG_NONCE_LEN) {
        diag(resp, IOG_COAP_BAD_REQUEST, "malformed", NULL);
        return;
    }
    for (unsigned i = 0; i < IOG_MAX_SESSIONS; i++) {
        iog_m2m_t *c = &d->sessions[i];
        if (c->active && iog_id_same(&c->peer, &sender) &&
            memcmp(c->sid, x.kidctx, IOG_NONCE_LEN) == 0) {
            s = c;
        }
    }
    if (!s || iog_device_session_over(d, s, 0)) {
        diag(resp, IOG_COAP_UNAUTHORIZED, "unauthorized", NULL);
        return;
    }
    int n = iog_m2m_open(s, &d->me.id, req->payload, req->payload_len, d->pt, sizeof(d->pt));
    if (n == -EALREADY || n == -ESTALE) {
        diag(resp, IOG_COAP_UNAUTHORIZED, "replay", NULL);
        return;
    }
    if (n < 0) {
        diag(resp, IOG_COAP_UNAUTHORIZED, "unauthorized", NULL);
        return;
    }
    d->messages++;
    resp->keep = 1; /* the window moved: a duplicate gets this answer, not "replay" */
    /* the reply: same form, my key, IV and seq; the application's text or empty */
    uint8_t reply[IOG_M2M_MAX_MSG];
    size_t rl = 0;
    if (d->on_message) {
        rl = d->on_message(d->cb_ctx, &sender, d->pt, (size_t)n, reply, sizeof(reply));
    }
    n = iog_m2m_seal(s, &d->me.id, reply, rl > sizeof(reply) ? 0 : rl, resp->payload, resp->cap);
    if (n < 0) {
        diag(resp, IOG_COAP_INTERNAL, "internal error", NULL);
        return;
    }
    resp->code = IOG_COAP_CHANGED;
    resp->content_format = IOG_CF_COSE_ENCRYPT0;
    resp->len = (size_t)n;
}

/*
 * The MAC of a /talk Echo value stamped @p t for @p a: HMAC-SHA-256 under
 * this boot's key over the stamp, the address family and bytes and the port.
 */
static void echo_mac(const iog_device_t *d, const uint8_t t[4], const iog_addr_t *a,
                     uint8_t mac[IOG_SHA256_LEN])
{
    uint8_t m[4 + 1 + sizeof(a->ip) + 2];
    memcpy(m, t, 4);
    m[4] = a->family;
    memcpy(m + 5, a->ip, sizeof(a->ip));
    m[sizeof(m) - 2] = (uint8_t)(a->port >> 8);
    m[sizeof(m) - 1] = (uint8_t)a->port;
    iog_hmac_sha256(d->echo_key, sizeof(d->echo_key), m, sizeof(m), mac);
}

/*
 * 1 when @p req carries an Echo this listener made for @p from within the
 * last IOG_TALK_ECHO_MS (IOG_TALK_ECHO_LEN), under its key of this turn of
 * the clock (echo_now()); a stamp after now is a huge age.
 */
static int echo_fresh(iog_device_t *d, const iog_addr_t *from, const iog_coap_msg_t *req)
{
    const iog_coap_opt_t *o = iog_coap_opt(req, IOG_COAP_OPT_ECHO);
    uint8_t mac[IOG_SHA256_LEN];
    uint32_t now = echo_now(d);
    if (!d->echo_keyed || !o || o->len != IOG_TALK_ECHO_LEN) {
        return 0;
    }
    const uint8_t *v = o->val;
    uint32_t t = (uint32_t)v[0] << 24 | (uint32_t)v[1] << 16 | (uint32_t)v[2] << 8 | v[3];
    if (now - t > IOG_TALK_ECHO_MS) {
        return 0;
    }
    echo_mac(d, v, from, mac);
    return iog_ct_eq(mac, v + 4, IOG_TALK_ECHO_LEN - 4);
}

/* the challenge (head, token, Echo option) is within three times the smallest /talk (head, token, Uri-Path) */
typedef char talk_challenge_bounded[IOG_TALK_ECHO_LEN <= IOG_COAP_ECHO_MAX &&
                                            4 + 2 + IOG_TALK_ECHO_LEN <= 3 * (4 + 5)
                                        ? 1
                                        : -1];

/*
 * Answers an unverified source 4.01 "echo required" with an Echo option made
 * for it (PROTOCOL.md §2). The key is drawn at the first challenge of a boot
 * and of each turn of the clock (echo_now()).
 */
static void ask_echo(iog_device_t *d, const iog_addr_t *from, iog_coap_resp_t *resp)
{
    const iog_platform_t *pl = d->plat;
    uint8_t mac[IOG_SHA256_LEN];
    uint32_t now = echo_now(d);
    if (!d->echo_keyed && pl->random(pl->ctx, d->echo_key, sizeof(d->echo_key))) {
        diag(resp, IOG_COAP_INTERNAL, "internal error", NULL);
        return;
    }
    d->echo_keyed = 1;
    uint8_t *v = d->talk_echo;
    v[0] = (uint8_t)(now >> 24);
    v[1] = (uint8_t)(now >> 16);
    v[2] = (uint8_t)(now >> 8);
    v[3] = (uint8_t)now;
    echo_mac(d, v, from, mac);
    memcpy(v + 4, mac, IOG_TALK_ECHO_LEN - 4);
    diag(resp, IOG_COAP_UNAUTHORIZED, "echo required", NULL);
    resp->echo = v;
    resp->echo_len = IOG_TALK_ECHO_LEN;
}

static void handler(void *ctx, const iog_addr_t *from, const iog_coap_msg_t *req,
                    iog_coap_resp_t *resp)
{
    iog_device_t *d = ctx;
    int talk = iog_coap_path_is(req, "/talk");
    if (!talk && !iog_coap_path_is(req, "/m2m")) {
        diag(resp, IOG_COAP_NOT_FOUND, "no such resource", NULL);
        return;
    }
    if (req->code != IOG_COAP_POST) {
        diag(resp, IOG_COAP_METHOD_NOT_ALLOWED, "method not allowed", NULL);
        return;
    }
    if (!cf_is(req, talk ? IOG_CF_CBOR : IOG_CF_COSE_ENCRYPT0)) {
        diag(resp, IOG_COAP_UNSUPPORTED_CF, "unsupported content-format", NULL);
        return;
    }
    if (talk) {
        /* its answer is several times the hello: the source's address first, before
         * any check of the hello (PROTOCOL.md §5.1); /m2m authenticates instead */
        if (!echo_fresh(d, from, req)) {
            ask_echo(d, from, resp);
            return;
        }
        serve_talk(d, req, resp);
    }
    else {
        serve_m2m(d, req, resp);
    }
}
