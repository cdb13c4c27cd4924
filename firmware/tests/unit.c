#include <errno.h>

#include "iog_cbor.h"
#include "unit.h"

unsigned unit_pass, unit_fail;
fake_net_t unit_net UNIT_BIG;
unit_flash_t unit_flash UNIT_BIG;

void unit_flash_reset(void)
{
    memset(&unit_flash, 0, sizeof(unit_flash));
}

static int flash_read(void *ctx, unsigned rec, uint8_t *buf, size_t cap)
{
    (void)ctx;
    if (rec >= IOG_REC_COUNT) {
        return -EIO;
    }
    if (!unit_flash.len[rec]) {
        return -ENOENT;
    }
    size_t n = unit_flash.len[rec] < cap ? unit_flash.len[rec] : cap;
    memcpy(buf, unit_flash.data[rec], n);
    return (int)n;
}

static int flash_write(void *ctx, unsigned rec, const uint8_t *buf, size_t len)
{
    (void)ctx;
    if (rec >= IOG_REC_COUNT || len > IOG_STORE_FRAME_MAX) {
        return -EIO;
    }
    if (unit_flash.full && rec != IOG_REC_RTC && len) {
        return -ENOSPC;
    }
    if (len) {
        memcpy(unit_flash.data[rec], buf, len);
    }
    unit_flash.len[rec] = len;
    unit_flash.writes++;
    return 0;
}

iog_storage_t unit_storage(void)
{
    iog_storage_t st = { NULL, flash_read, flash_write };
    return st;
}

const iog_addr_t unit_server_addr = { 2, { 127, 0, 0, 1 }, 5683 };
const iog_addr_t unit_peer_addr = { 2, { 127, 0, 0, 2 }, 5683 };

static int hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

size_t unit_hex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = 0;
    int hi = -1;
    for (; *hex; hex++) {
        int v = hexval(*hex);
        if (v < 0) {
            continue;
        }
        if (hi < 0) {
            hi = v;
        }
        else {
            if (n < cap) {
                out[n] = (uint8_t)(hi << 4 | v);
            }
            n++;
            hi = -1;
        }
    }
    return n;
}

const char *unit_i64(long long v, char *buf)
{
    char tmp[24];
    int n = 0, neg = v < 0;
    unsigned long long u = neg ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do {
        tmp[n++] = (char)('0' + (int)(u % 10));
        u /= 10;
    } while (u);
    int j = 0;
    if (neg) {
        buf[j++] = '-';
    }
    while (n) {
        buf[j++] = tmp[--n];
    }
    buf[j] = '\0';
    return buf;
}

void unit_dump(const char *label, const uint8_t *p, size_t n)
{
    printf("%s ", label);
    for (size_t i = 0; i < n; i++) {
        printf("%02x", p[i]);
    }
    printf("\n");
}

static int fake_send(void *ctx, const iog_addr_t *to, const uint8_t *buf, size_t len)
{
    fake_net_t *n = ctx;
    if (n->n_sent < sizeof(n->sent) / sizeof(n->sent[0]) && len <= sizeof(n->sent[0].buf)) {
        n->sent[n->n_sent].at = n->now;
        n->sent[n->n_sent].len = len;
        memcpy(n->sent[n->n_sent].buf, buf, len);
        n->n_sent++;
    }
    if (n->on_send) {
        n->on_send(n, to, buf, len);
    }
    return 0;
}

static int fake_recv(void *ctx, iog_addr_t *from, uint8_t *buf, size_t cap, uint32_t timeout_ms)
{
    fake_net_t *n = ctx;
    /* earliest queued datagram */
    unsigned best = n->n_in;
    for (unsigned i = 0; i < n->n_in; i++) {
        if (best == n->n_in || n->inbox[i].at < n->inbox[best].at) {
            best = i;
        }
    }
    if (best == n->n_in || n->inbox[best].at > n->now + timeout_ms) {
        n->now += timeout_ms;
        return -ETIMEDOUT;
    }
    if (n->inbox[best].at > n->now) {
        n->now = n->inbox[best].at;
    }
    size_t len = n->inbox[best].len;
    if (len > cap) {
        len = cap;
    }
    memcpy(buf, n->inbox[best].buf, len);
    *from = n->inbox[best].from;
    n->inbox[best] = n->inbox[n->n_in - 1];
    n->n_in--;
    return (int)len;
}

static uint32_t fake_now(void *ctx)
{
    return ((fake_net_t *)ctx)->now;
}

static int fake_random(void *ctx, uint8_t *buf, size_t len)
{
    fake_net_t *n = ctx;
    for (size_t i = 0; i < len; i++) {
        n->rnd = n->rnd * 1103515245u + 12345u;
        buf[i] = (uint8_t)(n->rnd >> 16);
    }
    return 0;
}

static uint64_t fake_unix(void *ctx)
{
    (void)ctx;
    return 1700000000u;
}

void fake_net_init(fake_net_t *n)
{
    memset(n, 0, sizeof(*n));
    n->now = 1000;
    n->rnd = 42;
    n->plat.ctx = n;
    n->plat.send = fake_send;
    n->plat.recv = fake_recv;
    n->plat.now_ms = fake_now;
    n->plat.random = fake_random;
    n->plat.unix_s = fake_unix;
}

void fake_net_push(fake_net_t *n, const iog_addr_t *from, uint32_t at, const uint8_t *buf,
                   size_t len)
{
    if (n->n_in < sizeof(n->inbox) / sizeof(n->inbox[0]) && len <= sizeof(n->inbox[0].buf)) {
        n->inbox[n->n_in].from = *from;
        n->inbox[n->n_in].at = at;
        n->inbox[n->n_in].len = len;
        memcpy(n->inbox[n->n_in].buf, buf, len);
        n->n_in++;
    }
}

/*
 * Builds GET /cluster's answer signed by @p priv for key @p pub, carrying
 * @p nrot rotations (PROTOCOL.md §6): {1: cluster, 2: key, 3: thumbprint,
 * 4: lat, 5: lon, 6: radius, 7: [rotations]}.
 */
int unit_cluster_answer(const uint8_t priv[32], const uint8_t pub[65], const iog_id_t *cl,
                          const uint8_t *const *rot, const size_t *rot_len, size_t nrot,
                          uint8_t *out, size_t cap)
{
    static uint8_t payload[1300];
    uint8_t key[80], th[32];
    iog_cbor_enc_t e;
    int kl = iog_cose_key_encode(pub, key, sizeof(key));
    iog_thumbprint(pub, th);
    iog_cbor_enc_init(&e, payload, sizeof(payload));
    iog_cbor_put_map(&e, nrot ? 7 : 6);
    iog_cbor_put_uint(&e, 1);
    iog_cbor_put_tstr(&e, cl->s, cl->len);
    iog_cbor_put_uint(&e, 2);
    iog_cbor_put_raw(&e, key, (size_t)kl);
    iog_cbor_put_uint(&e, 3);
    iog_cbor_put_bstr(&e, th, 32);
    iog_cbor_put_uint(&e, 4);
    iog_cbor_put_int(&e, 48856600);
    iog_cbor_put_uint(&e, 5);
    iog_cbor_put_int(&e, 2352200);
    iog_cbor_put_uint(&e, 6);
    iog_cbor_put_uint(&e, 1000);
    if (nrot) {
        iog_cbor_put_uint(&e, 7);
        iog_cbor_put_array(&e, nrot);
        for (size_t i = 0; i < nrot; i++) {
            iog_cbor_put_bstr(&e, rot[i], rot_len[i]);
        }
    }
    int pl = iog_cbor_enc_finish(&e);
    return pl < 0 ? pl : iog_sign1_encode(priv, th, 32, IOG_AAD_CLUSTER, payload, (size_t)pl, out, cap);
}

/* A rotation from @p old_priv's key to @p new_pub, signed by @p signer (PROTOCOL.md §6.1). */
int unit_rotation(const uint8_t old_priv[32], const uint8_t new_pub[65], const uint8_t signer[32],
                    const iog_id_t *cl, uint8_t *out, size_t cap)
{
    uint8_t payload[200], old_pub[65], th[32];
    iog_cbor_enc_t e;
    iog_p256_public(old_priv, old_pub);
    iog_thumbprint(old_pub, th);
    iog_cbor_enc_init(&e, payload, sizeof(payload));
    iog_cbor_put_map(&e, 4);
    iog_cbor_put_uint(&e, 1);
    iog_cbor_put_tstr(&e, cl->s, cl->len);
    iog_cbor_put_uint(&e, 2);
    e.len += (size_t)iog_cose_key_encode(old_pub, payload + e.len, sizeof(payload) - e.len);
    iog_cbor_put_uint(&e, 3);
    e.len += (size_t)iog_cose_key_encode(new_pub, payload + e.len, sizeof(payload) - e.len);
    iog_cbor_put_uint(&e, 4);
    iog_cbor_put_uint(&e, 1767222000);
    int pl = iog_cbor_enc_finish(&e);
    return iog_sign1_encode(signer, th, 32, IOG_AAD_ROTATE, payload, (size_t)pl, out, cap);
}

size_t unit_ticket(const uint8_t ticket_key[16], const iog_id_t *cluster, const uint8_t sid[16],
                   uint64_t expires, const iog_id_t *initiator, const iog_id_t *responder,
                   const iog_id_t *recipient, const uint8_t sk[16], uint8_t *out, size_t cap)
{
    static const uint8_t iv[12] = { 0x80, 0x81 };
    uint8_t ext[250], aad[270], ct[32];
    iog_cbor_enc_t e;
    iog_cbor_enc_init(&e, ext, sizeof(ext));
    iog_cbor_put_array(&e, 7);
    iog_cbor_put_cstr(&e, "iotguard ticket");
    iog_cbor_put_tstr(&e, cluster->s, cluster->len);
    iog_cbor_put_bstr(&e, sid, 16);
    iog_cbor_put_uint(&e, expires);
    iog_cbor_put_tstr(&e, initiator->s, initiator->len);
    iog_cbor_put_tstr(&e, responder->s, responder->len);
    iog_cbor_put_tstr(&e, recipient->s, recipient->len);
    int el = iog_cbor_enc_finish(&e);
    iog_cbor_enc_init(&e, aad, sizeof(aad));
    iog_cbor_put_raw(&e, "\x83\x68" "Encrypt0" "\x43\xA1\x01\x01", 14);
    iog_cbor_put_bstr(&e, ext, (size_t)el);
    iog_gcm_seal(ticket_key, iv, aad, (size_t)iog_cbor_enc_finish(&e), sk, 16, ct);
    iog_cbor_enc_init(&e, out, cap);
    iog_cbor_put_map(&e, 6);
    iog_cbor_put_uint(&e, 1);
    iog_cbor_put_bstr(&e, sid, 16);
    iog_cbor_put_uint(&e, 2);
    iog_cbor_put_uint(&e, expires);
    iog_cbor_put_uint(&e, 3);
    iog_cbor_put_tstr(&e, initiator->s, initiator->len);
    iog_cbor_put_uint(&e, 4);
    iog_cbor_put_tstr(&e, responder->s, responder->len);
    iog_cbor_put_uint(&e, 5);
    iog_cbor_put_tstr(&e, recipient->s, recipient->len);
    iog_cbor_put_uint(&e, 6);
    iog_cbor_put_raw(&e, "\x83\x43\xA1\x01\x01\xA1\x05\x4C", 8);
    iog_cbor_put_raw(&e, iv, 12);
    iog_cbor_put_bstr(&e, ct, 32);
    int n = iog_cbor_enc_finish(&e);
    CHECK(el > 0 && n > 0);
    return n > 0 ? (size_t)n : 0;
}

unit_m2_t unit_m2 UNIT_BIG;

void unit_m2_init(iog_device_t *dev, const char *id, uint64_t expires)
{
    memset(&unit_m2, 0, sizeof(unit_m2));
    unit_m2.dev = dev;
    iog_id_set(&unit_m2.id, id, strlen(id));
    memset(unit_m2.sk, 0x5c, sizeof(unit_m2.sk));
    memset(unit_m2.sid, 0x51, sizeof(unit_m2.sid));
    unit_m2.sid[0] = 1;
    unit_m2.expires = expires;
}

void unit_m2_on_send(fake_net_t *n, const iog_addr_t *to, const uint8_t *buf, size_t len)
{
    unit_m2_t *m = &unit_m2;
    iog_coap_msg_t req;
    iog_coap_pkt_t p;
    iog_id_t m1, responder;
    iog_talk_proof_t proof;
    int has_proof;
    uint8_t ticket[240], pl[300], out[400];
    int pn = -1;
    uint8_t code = IOG_COAP_CONTENT;
    uint32_t cf = IOG_CF_CBOR;
    if (memcmp(to, &unit_server_addr, sizeof(*to)) == 0 || iog_coap_parse(&req, buf, len) ||
        req.type != IOG_COAP_CON || req.code != IOG_COAP_POST) {
        return;
    }
    if (iog_coap_path_is(&req, "/talk")) {
        m->talks++;
        if (m->replay >= 1 && m->replay <= m->answers) {
            pn = (int)m->answer[m->replay - 1].len;
            memcpy(pl, m->answer[m->replay - 1].buf, (size_t)pn);
        }
        else if (m->replay == 0 &&
                 iog_hello_decode(req.payload, req.payload_len, &m1, &responder, &proof, &has_proof) == 0) {
            const iog_device_t *d = m->dev;
            size_t tl = unit_ticket(d->mem.keys.ticket, &d->mem.ch.cluster, m->sid, m->expires, &m1, &m->id,
                                    &m1, m->sk, ticket, sizeof(ticket));
            pn = iog_talk_resp_encode(&m->id, ticket, tl, pl, sizeof(m->answer[0].buf));
            CHECK(pn > 0 && iog_m2m_init(&m->s, m->sk, m->sid, m->expires, &m->id, &m1) == 0);
            if (pn > 0 && m->answers < sizeof(m->answer) / sizeof(m->answer[0])) {
                memcpy(m->answer[m->answers].buf, pl, (size_t)pn);
                m->answer[m->answers++].len = (size_t)pn;
            }
        }
    }
    else if (iog_coap_path_is(&req, "/m2m")) {
        uint8_t msg[IOG_M2M_MAX_MSG];
        code = IOG_COAP_UNAUTHORIZED;
        cf = IOG_CF_TEXT;
        m->m2ms++;
        int k = iog_m2m_open(&m->s, &m->id, req.payload, req.payload_len, msg, sizeof(msg));
        if (k == -EALREADY || k == -ESTALE) {
            m->replays++;
            memcpy(pl, "replay", pn = 6);
        }
        else if (k < 0) {
            memcpy(pl, "unauthorized", pn = 12);
        }
        else {
            m->messages++;
            code = IOG_COAP_CHANGED;
            cf = IOG_CF_COSE_ENCRYPT0;
            pn = iog_m2m_seal(&m->s, &m->id, (const uint8_t *)"ok", 2, pl, sizeof(pl));
        }
    }
    if (pn < 0) {
        return;
    }
    iog_coap_build(&p, out, sizeof(out), IOG_COAP_ACK, code, req.mid, req.token, req.tkl);
    iog_coap_add_opt_uint(&p, IOG_COAP_OPT_CONTENT_FORMAT, cf);
    iog_coap_add_payload(&p, pl, (size_t)pn);
    fake_net_push(n, to, n->now + 5, out, (size_t)iog_coap_finish(&p));
}

int unit_run_all(void)
{
    printf("-- cbor\n");
    test_cbor();
    printf("-- coap\n");
    test_coap();
#ifndef IOG_TEST_LX106
    printf("-- libcoap interop\n");
    test_libcoap();
#endif
    printf("-- crypto\n");
    test_crypto();
    printf("-- protocol\n");
    test_proto();
    printf("-- store\n");
    test_store();
    printf("-- console\n");
    test_console();
    printf("-- transparency log\n");
    test_tlog();
    printf("-- shared vectors\n");
    test_vectors();
    printf("-- device server\n");
    test_device_server();
    printf("-- fuzz\n");
    test_fuzz();
    printf("-- bench\n");
    test_bench();
    printf("%u passed, %u failed\n", unit_pass, unit_fail);
    return unit_fail ? 1 : 0;
}

/*
 * [h'A10101', {5: iv} (or {} for an answer), AES-128-GCM of @p pt under
 * the response key of @p m, nonce iv (for an answer the common IV XOR seq),
 * AAD the Enc_structure of request (@p kid, @p seq, @p path)'s external AAD].
 */
static size_t seal_refusal(const iog_member_t *m, int answer, const iog_id_t *kid, uint64_t seq,
                           const char *path, const uint8_t *pt, size_t n, uint8_t *out, size_t cap)
{
    static const uint8_t iv[12] = { 0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xcb };
    uint8_t ext[200], aad[220], piv[5], nonce[12], ct[IOG_REFUSAL_MAX + 40];
    iog_cbor_enc_t e;
    iog_cbor_enc_init(&e, ext, sizeof(ext));
    iog_cbor_put_array(&e, 5);
    iog_cbor_put_cstr(&e, "iotguard");
    iog_cbor_put_tstr(&e, m->ch.cluster.s, m->ch.cluster.len);
    iog_cbor_put_bstr(&e, kid->s, kid->len);
    iog_cbor_put_bstr(&e, piv, iog_piv_encode(seq, piv));
    iog_cbor_put_cstr(&e, path);
    int el = iog_cbor_enc_finish(&e);
    iog_cbor_enc_init(&e, aad, sizeof(aad));
    iog_cbor_put_raw(&e, "\x83\x68" "Encrypt0" "\x43\xA1\x01\x01", 14);
    iog_cbor_put_bstr(&e, ext, (size_t)el);
    int al = iog_cbor_enc_finish(&e);
    if (el < 0 || al < 0 || n > sizeof(ct) - IOG_GCM_TAG_LEN) {
        return 0;
    }
    memcpy(nonce, answer ? m->keys.iv : iv, 12);
    for (int i = 11; answer && i >= 4; i--) {
        nonce[i] ^= (uint8_t)(seq >> (8 * (11 - i)));
    }
    iog_gcm_seal(m->keys.resp, nonce, aad, (size_t)al, pt, n, ct);
    iog_cbor_enc_init(&e, out, cap);
    iog_cbor_put_raw(&e, "\x83\x43\xA1\x01\x01", 5);
    iog_cbor_put_map(&e, answer ? 0 : 1);
    if (!answer) {
        iog_cbor_put_uint(&e, 5);
        iog_cbor_put_bstr(&e, iv, sizeof(iv));
    }
    iog_cbor_put_bstr(&e, ct, n + IOG_GCM_TAG_LEN);
    int ol = iog_cbor_enc_finish(&e);
    return ol > 0 ? (size_t)ol : 0;
}

int unit_refusal(const iog_member_t *m, int mode, uint8_t code, const char *text, const uint8_t *echo,
                 size_t echo_len, const iog_coap_msg_t *req, const iog_id_t *kid, uint64_t seq, const char *path,
                 uint8_t *out, size_t cap)
{
    uint8_t pt[IOG_REFUSAL_MAX + 8], sealed[IOG_REFUSAL_MAX + 80];
    iog_cbor_enc_t e;
    iog_coap_pkt_t p;
    size_t tl = strlen(text);
    iog_cbor_enc_init(&e, pt, sizeof(pt));
    if (mode == UNIT_R_MAP) {
        iog_cbor_put_map(&e, 1);
        iog_cbor_put_uint(&e, 1);
    }
    iog_cbor_put_tstr(&e, text, tl);
    int pl = iog_cbor_enc_finish(&e);
    iog_coap_build(&p, out, cap, IOG_COAP_ACK, code, req->mid, req->token, req->tkl);
    iog_coap_add_opt_uint(&p, IOG_COAP_OPT_CONTENT_FORMAT, mode == UNIT_R_TEXT ? IOG_CF_TEXT : IOG_CF_COSE_ENCRYPT0);
    if (echo) {
        iog_coap_add_opt(&p, IOG_COAP_OPT_ECHO, echo, echo_len);
    }
    if (mode == UNIT_R_TEXT) {
        iog_coap_add_payload(&p, text, tl);
    }
    else {
        size_t n = pl < 0 ? 0
                          : seal_refusal(m, mode == UNIT_R_ANSWER, kid, seq + (mode == UNIT_R_OTHER_SEQ), path, pt,
                                         (size_t)pl, sealed, sizeof(sealed));
        iog_coap_add_payload(&p, sealed, n);
    }
    int n = iog_coap_finish(&p);
    CHECK(n > 0 && pl > 0);
    return n;
}
