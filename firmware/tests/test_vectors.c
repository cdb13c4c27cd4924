/*
 * Replays the shared vectors of testdata/vectors/ (PROTOCOL.md §8): the same
 * files the Go tests use, compiled in by tools/gen_vectors.py. Each file is
 * recognised by its name; a file without a replayer fails the run, so a new
 * vector cannot be silently ignored.
 */
#include <errno.h>
#include <stdlib.h>

#include "iog_cbor.h"
#include "iog_proto.h"
#include "unit.h"
#include "vectors.h"

static const vec_t *cur;

static const char *field(const char *k)
{
    for (unsigned i = 0; i < cur->n; i++) {
        if (strcmp(cur->kv[i].k, k) == 0) {
            return cur->kv[i].v;
        }
    }
    printf("FAIL %s: no field %s\n", cur->file, k);
    unit_fail++;
    return "";
}

static int has(const char *k)
{
    for (unsigned i = 0; i < cur->n; i++) {
        if (strcmp(cur->kv[i].k, k) == 0) {
            return 1;
        }
    }
    return 0;
}

static size_t hexf(const char *k, uint8_t *out, size_t cap)
{
    size_t n = unit_hex(field(k), out, cap);
    if (n > cap) {
        printf("FAIL %s: field %s longer than %u bytes\n", cur->file, k, (unsigned)cap);
        unit_fail++;
        return cap;
    }
    return n;
}

static uint64_t numf(const char *k)
{
    return strtoull(field(k), NULL, 10);
}

static int64_t snumf(const char *k)
{
    return strtoll(field(k), NULL, 10);
}

static void idf(const char *k, iog_id_t *id)
{
    const char *s = field(k);
    CHECK_EQ(iog_id_set(id, s, strlen(s)), 0);
}

static int expect_ok(void)
{
    return strcmp(field("expect"), "ok") == 0;
}

/* A COSE_Key field as a point. */
static void keyf(const char *k, uint8_t pub[65])
{
    uint8_t b[100];
    size_t n = hexf(k, b, sizeof(b));
    CHECK_EQ(iog_cose_key_decode(b, n, pub), 0);
}

static void v_thumbprint(void)
{
    uint8_t priv[32], pub[65], x[32], y[32], t[32], want[32], ck[100], mine[100];
    hexf("priv", priv, 32);
    hexf("x", x, 32);
    hexf("y", y, 32);
    CHECK_EQ(iog_p256_public(priv, pub), 0);
    CHECK_MEM(pub + 1, x, 32);
    CHECK_MEM(pub + 33, y, 32);
    iog_thumbprint(pub, t);
    hexf("thumbprint", want, 32);
    CHECK_MEM(t, want, 32);
    size_t n = hexf("cose_key", ck, sizeof(ck));
    CHECK_EQ(iog_cose_key_encode(pub, mine, sizeof(mine)), n);
    CHECK_MEM(mine, ck, n);
}

/* The device's join request: same payload and to-be-signed bytes as Go's. */
static void v_join_request(void)
{
    static uint8_t want[400], mine[400], payload[300];
    iog_identity_t me;
    iog_id_t cluster;
    uint8_t nd[16], echo[40], kid[70];
    hexf("device_priv", me.priv, 32);
    CHECK_EQ(iog_p256_public(me.priv, me.pub), 0);
    idf("id", &me.id);
    idf("cluster", &cluster);
    hexf("nonce", nd, 16);
    size_t el = hexf("echo", echo, sizeof(echo));
    size_t wl = hexf("sign1", want, sizeof(want));
    size_t kl = hexf("kid", kid, sizeof(kid));
    size_t pl = hexf("payload", payload, sizeof(payload));

    /* the CH's checks, in PROTOCOL.md §3.2 order: shape, then kid = id and signature */
    iog_sign1_t s;
    iog_join_payload_t jp;
    int verdict = 0;
    if (iog_sign1_parse(want, wl, &s) || iog_join_payload_decode(s.payload, s.payload_len, &jp)) {
        verdict = -EBADMSG;
    }
    else if (!iog_id_eq(&jp.id, s.kid, s.kid_len) ||
             iog_sign1_verify(&s, jp.pub, IOG_AAD_JOIN_REQ)) {
        verdict = -EACCES;
    }
    if (expect_ok()) {
        CHECK_EQ(verdict, 0);
        CHECK_MEM(s.kid, kid, kl);
        /* ours: identical up to the (randomised in Go) signature */
        iog_join_req_t jr = { &me, &cluster, snumf("lat"), snumf("lon"), nd, echo, el, NULL, 0 };
        int n = iog_join_req_encode(&jr, mine, sizeof(mine));
        CHECK_EQ(n, wl);
        CHECK_MEM(mine, want, wl - 64);
        CHECK(s.payload_len == pl && memcmp(s.payload, payload, pl) == 0);
        iog_sign1_t ms;
        CHECK_EQ(iog_sign1_parse(mine, (size_t)n, &ms), 0);
        CHECK_EQ(iog_sign1_verify(&ms, me.pub, IOG_AAD_JOIN_REQ), 0);
    }
    else {
        CHECK(strcmp(field("expect"), "bad signature") == 0);
        CHECK_EQ(verdict, -EACCES);
    }
}

static void v_join_response(void)
{
    static uint8_t resp[500];
    iog_identity_t me;
    iog_id_t cluster;
    iog_member_t m;
    uint8_t nd[16], nch[16], thumb[32], hash[32];
    memset(&me, 0, sizeof(me));
    idf("id", &me.id);
    idf("cluster", &cluster);
    hexf("device_nonce", nd, 16);
    hexf("ch_nonce", nch, 16);
    hexf("thumbprint", thumb, 32);
    hexf("block_hash", hash, 32);
    size_t n = hexf("sign1", resp, sizeof(resp));
    iog_join_req_t jr = { &me, &cluster, 0, 0, nd, NULL, 0, NULL, 0 };
    CHECK_EQ(iog_join_resp_verify(resp, n, &jr, thumb, &m), 0);
    CHECK_MEM(m.ch.thumb, thumb, 32);
    CHECK_MEM(m.nch, nch, 16);
    CHECK_MEM(m.block, hash, 32);
    CHECK(m.height == numf("height"));
    CHECK(m.expires == numf("expires"));
    uint8_t pub[65];
    keyf("ch_cose_key", pub);
    CHECK_MEM(m.ch.pub, pub, 65);
}

static void v_kdf(void)
{
    iog_identity_t me;
    iog_member_t m;
    uint8_t z[32], want[32], chpriv[32], devpub[65], km[32];
    memset(&m, 0, sizeof(m));
    hexf("device_priv", me.priv, 32);
    iog_p256_public(me.priv, me.pub);
    keyf("device_cose_key", devpub);
    CHECK_MEM(me.pub, devpub, 65);
    idf("id", &me.id);
    idf("cluster", &m.ch.cluster);
    keyf("ch_cose_key", m.ch.pub);
    iog_thumbprint(m.ch.pub, m.ch.thumb);
    hexf("ch_thumbprint", want, 32);
    CHECK_MEM(m.ch.thumb, want, 32);
    hexf("device_nonce", m.nd, 16);
    hexf("ch_nonce", m.nch, 16);
    CHECK_EQ(iog_ecdh(me.priv, m.ch.pub, z), 0);
    hexf("z", want, 32);
    CHECK_MEM(z, want, 32);
    hexf("ch_priv", chpriv, 32);
    CHECK_EQ(iog_ecdh(chpriv, devpub, z), 0);
    CHECK_MEM(z, want, 32);
    CHECK_EQ(iog_derive_km(z, m.nd, m.nch, &m.ch.cluster, &me.id, m.ch.thumb, km), 0);
    hexf("km", want, 32);
    CHECK_MEM(km, want, 32);
    CHECK_EQ(iog_member_derive(&me, &m), 0);
    hexf("req_key", want, 16);
    CHECK_MEM(m.keys.req, want, 16);
    hexf("resp_key", want, 16);
    CHECK_MEM(m.keys.resp, want, 16);
    hexf("ticket_key", want, 16);
    CHECK_MEM(m.keys.ticket, want, 16);
    hexf("common_iv", want, 12);
    CHECK_MEM(m.keys.iv, want, 12);
}

/* dtls-psk.json: the coaps PSK is HKDF(km, "iotguard dtls psk") in hex. The
 * firmware speaks COSE, not DTLS; the replay pins the derivation for C
 * clients that will. */
static void v_dtls_psk(void)
{
    static const char hexdig[] = "0123456789abcdef";
    uint8_t km[32], raw[16], want[16];
    char psk[33];
    const char *info = field("info");
    hexf("km", km, 32);
    CHECK_EQ(iog_hkdf(NULL, 0, km, 32, (const uint8_t *)info, strlen(info), raw, sizeof(raw)), 0);
    hexf("psk_bytes", want, 16);
    CHECK_MEM(raw, want, 16);
    for (int i = 0; i < 16; i++) {
        psk[2 * i] = hexdig[raw[i] >> 4];
        psk[2 * i + 1] = hexdig[raw[i] & 15];
    }
    psk[32] = 0;
    CHECK(strcmp(psk, field("psk")) == 0);
}

static void v_protected(void)
{
    static uint8_t req[300], resp[300], pt[300], rpt[300], out[300];
    iog_member_t m;
    iog_id_t me, kid;
    memset(&m, 0, sizeof(m));
    idf("cluster", &m.ch.cluster);
    idf("id", &me);
    hexf("req_key", m.keys.req, 16);
    hexf("resp_key", m.keys.resp, 16);
    hexf("common_iv", m.keys.iv, 12);
    const char *path = field("path");
    uint64_t seq = numf("seq");
    size_t rl = hexf("request", req, sizeof(req));
    uint64_t got_seq = 0;
    int n = iog_prot_req_open(&m, path, req, rl, &kid, &got_seq, out, sizeof(out));
    if (!expect_ok()) {
        CHECK(strcmp(field("expect"), "decryption failed") == 0);
        CHECK_EQ(n, -EACCES);
        return;
    }
    size_t pl = hexf("plaintext", pt, sizeof(pt));
    CHECK_EQ(n, pl);
    CHECK_MEM(out, pt, pl);
    CHECK(got_seq == seq);
    CHECK(iog_id_eq(&kid, me.s, me.len));
    /* the device side: same request bytes, and the response opens */
    n = iog_prot_req_seal(&m, &me, seq, path, pt, pl, out, sizeof(out));
    CHECK_EQ(n, rl);
    CHECK_MEM(out, req, rl);
    size_t sl = hexf("response", resp, sizeof(resp));
    size_t rpl = hexf("response_plaintext", rpt, sizeof(rpt));
    n = iog_prot_resp_open(&m, &me, seq, path, resp, sl, out, sizeof(out));
    CHECK_EQ(n, rpl);
    CHECK_MEM(out, rpt, rpl);
}

static void v_ticket(void)
{
    static uint8_t tb[400];
    iog_ticket_t t;
    iog_id_t cluster, me, ini, resp;
    uint8_t key[16], sk[16], want[16];
    idf("cluster", &cluster);
    idf("me", &me);
    idf("initiator", &ini);
    idf("responder", &resp);
    hexf("ticket_key", key, 16);
    size_t n = hexf("ticket", tb, sizeof(tb));
    CHECK_EQ(iog_ticket_parse(tb, n, &t), 0);
    int r = iog_ticket_open(&t, key, &cluster, &me, &ini, &resp, numf("now"), sk);
    const char *e = field("expect");
    if (strcmp(e, "ok") == 0) {
        CHECK_EQ(r, 0);
        hexf("sk", want, 16);
        CHECK_MEM(sk, want, 16);
        CHECK(t.expires == numf("expires"));
    }
    else if (strcmp(e, "ticket expired") == 0) {
        CHECK_EQ(r, -ETIME);
    }
    else {
        CHECK(strcmp(e, "ticket for another recipient") == 0);
        CHECK_EQ(r, -EACCES);
    }
}

static void v_m2m(void)
{
    static iog_m2m_t a, b;
    static uint8_t msg[300], reply[300], pt[300], out[300];
    uint8_t sk[16], sid[16], want[16];
    iog_id_t snd, rcv;
    hexf("sk", sk, 16);
    hexf("sid", sid, 16);
    idf("sender", &snd);
    idf("receiver", &rcv);
    CHECK_EQ(iog_m2m_init(&a, sk, sid, 0, &snd, &rcv), 0);
    hexf("sender_key", want, 16);
    CHECK_MEM(a.tx_key, want, 16);
    hexf("sender_iv", want, 12);
    CHECK_MEM(a.tx_iv, want, 12);
    hexf("receiver_key", want, 16);
    CHECK_MEM(a.rx_key, want, 16);
    hexf("receiver_iv", want, 12);
    CHECK_MEM(a.rx_iv, want, 12);
    size_t pl = hexf("plaintext", pt, sizeof(pt));
    size_t ml = hexf("message", msg, sizeof(msg));
    a.seq = numf("seq");
    int n = iog_m2m_seal(&a, &snd, pt, pl, out, sizeof(out));
    CHECK_EQ(n, ml);
    CHECK_MEM(out, msg, ml);
    /* the receiver opens it and answers with an empty reply at its seq */
    CHECK_EQ(iog_m2m_init(&b, sk, sid, 0, &rcv, &snd), 0);
    n = iog_m2m_open(&b, &rcv, msg, ml, out, sizeof(out));
    CHECK_EQ(n, pl);
    CHECK_MEM(out, pt, pl);
    CHECK_EQ(iog_m2m_open(&b, &rcv, msg, ml, out, sizeof(out)), -EALREADY);
    size_t rl = hexf("reply", reply, sizeof(reply));
    b.seq = numf("reply_seq");
    n = iog_m2m_seal(&b, &rcv, NULL, 0, out, sizeof(out));
    CHECK_EQ(n, rl);
    CHECK_MEM(out, reply, rl);
    CHECK_EQ(iog_m2m_open(&a, &snd, reply, rl, out, sizeof(out)), 0);
}

static void v_partial_iv(void)
{
    char k[48];
    for (unsigned i = 0;; i++) {
        snprintf(k, sizeof(k), "cases.%u.expect", i);
        if (!has(k)) {
            CHECK(i > 0);
            break;
        }
        const char *e = field(k);
        uint8_t enc[16], mine[5];
        snprintf(k, sizeof(k), "cases.%u.encoding", i);
        size_t n = hexf(k, enc, sizeof(enc));
        uint64_t seq = 0;
        int r = iog_piv_decode(enc, n, &seq);
        if (strcmp(e, "ok") == 0) {
            snprintf(k, sizeof(k), "cases.%u.seq", i);
            uint64_t want = numf(k);
            CHECK_EQ(r, 0);
            CHECK(seq == want);
            CHECK_EQ(iog_piv_encode(want, mine), n);
            CHECK_MEM(mine, enc, n);
        }
        else {
            CHECK_EQ(r, -EBADMSG);
        }
    }
}

static void v_replay(void)
{
    char k[48];
    iog_replay_t w;
    iog_replay_init(&w);
    CHECK(numf("window_size") == IOG_REPLAY_WINDOW);
    for (unsigned i = 0;; i++) {
        snprintf(k, sizeof(k), "cases.%u.expect", i);
        if (!has(k)) {
            CHECK(i > 0);
            break;
        }
        int ok = strcmp(field(k), "ok") == 0;
        snprintf(k, sizeof(k), "cases.%u.seq", i);
        int r = iog_replay_update(&w, numf(k));
        if (ok != (r == 0)) {
            char s[24];
            printf("FAIL replay-window case %u seq %s: got %d\n", i, unit_i64((long long)numf(k), s), r);
            unit_fail++;
        }
        else {
            unit_pass++;
        }
    }
}

static int decode_as(const char *type, const uint8_t *b, size_t n)
{
    iog_id_t id;
    const uint8_t *p;
    size_t l;
    if (strcmp(type, "hello") == 0) {
        return iog_hello_decode(b, n, &id);
    }
    if (strcmp(type, "verify-req") == 0 || strcmp(type, "session-req") == 0) {
        return iog_peer_req_decode(b, n, &id, &p, &l);
    }
    if (strcmp(type, "leave-req") == 0) {
        return iog_peer_req_decode(b, n, NULL, &p, &l);
    }
    if (strcmp(type, "verify-resp") == 0) {
        iog_verify_resp_t v;
        return iog_verify_resp_decode(b, n, &v);
    }
    if (strcmp(type, "talk-resp") == 0) {
        iog_ticket_t t;
        if (iog_talk_resp_decode(b, n, &id, &p, &l)) {
            return -EBADMSG;
        }
        return iog_ticket_parse(p, l, &t);
    }
    if (strcmp(type, "ticket") == 0) {
        iog_ticket_t t;
        return iog_ticket_parse(b, n, &t);
    }
    if (strcmp(type, "join-req") == 0) {
        iog_join_payload_t j;
        return iog_join_payload_decode(b, n, &j);
    }
    printf("FAIL decode-strict: no decoder for type %s\n", type);
    unit_fail++;
    return -ENOSYS;
}

static void v_decode_strict(void)
{
    char k[48];
    static uint8_t b[600];
    for (unsigned i = 0;; i++) {
        snprintf(k, sizeof(k), "cases.%u.expect", i);
        if (!has(k)) {
            CHECK(i > 0);
            break;
        }
        int ok = strcmp(field(k), "ok") == 0;
        snprintf(k, sizeof(k), "cases.%u.bytes", i);
        size_t n = hexf(k, b, sizeof(b));
        snprintf(k, sizeof(k), "cases.%u.type", i);
        const char *type = field(k);
        int r = decode_as(type, b, n);
        if (ok != (r == 0)) {
            snprintf(k, sizeof(k), "cases.%u.note", i);
            printf("FAIL decode-strict case %u (%s, %s): got %d\n", i, type, field(k), r);
            unit_fail++;
        }
        else {
            unit_pass++;
        }
    }
}

static const struct {
    const char *prefix;
    void (*fn)(void);
} replayers[] = {
    { "decode-strict", v_decode_strict },
    { "join-request", v_join_request },
    { "dtls-psk", v_dtls_psk },
    { "join-response", v_join_response },
    { "kdf", v_kdf },
    { "m2m", v_m2m },
    { "partial-iv", v_partial_iv },
    { "protected-request", v_protected },
    { "replay-window", v_replay },
    { "thumbprint", v_thumbprint },
    { "ticket", v_ticket },
};

void test_vectors(void)
{
    unsigned run = 0;
    for (unsigned i = 0; i < n_vectors; i++) {
        cur = &vectors[i];
        unsigned before = unit_fail;
        unsigned r;
        for (r = 0; r < sizeof(replayers) / sizeof(replayers[0]); r++) {
            if (strncmp(cur->file, replayers[r].prefix, strlen(replayers[r].prefix)) == 0) {
                replayers[r].fn();
                run++;
                break;
            }
        }
        if (r == sizeof(replayers) / sizeof(replayers[0])) {
            printf("FAIL %s: no replayer for this vector file\n", cur->file);
            unit_fail++;
        }
        else if (unit_fail != before) {
            printf("  ^ in %s\n", cur->file);
        }
    }
    printf("  shared vectors: %u of %u files replayed\n", run, n_vectors);
}
