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
#include "iog_tlog.h"
#include "unit.h"
#include "vectors.h"

static const vec_t *cur;

const vec_t *unit_vectors(unsigned *n)
{
    *n = n_vectors;
    return vectors;
}

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

/*
 * The device's join request: same payload and to-be-signed bytes as Go's,
 * with the fleet credential (key 8) when the vector has one: the device sends
 * it as it is (join-request-credential.json).
 */
static void v_join_request(void)
{
    static uint8_t want[400], mine[400], payload[300];
    uint8_t cred[IOG_CRED_MAX]; /* on the stack: the lx106 image keeps dram0 for its data */
    iog_identity_t me;
    iog_id_t cluster;
    uint8_t nd[16], echo[40], kid[70];
    size_t cl = has("credential") ? hexf("credential", cred, sizeof(cred)) : 0;
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
        /* ours: identical up to the signature */
        iog_join_req_t jr = { &me, &cluster, snumf("lat"), snumf("lon"), nd, echo, el, cl ? cred : NULL, cl };
        int n = iog_join_req_encode(&jr, mine, sizeof(mine));
        CHECK_EQ(n, wl);
        CHECK_MEM(mine, want, wl - 64);
        CHECK(s.payload_len == pl && memcmp(s.payload, payload, pl) == 0);
        CHECK_EQ(jp.cred_len, cl);
        CHECK(cl == 0 || memcmp(jp.cred, cred, cl) == 0);
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
    CHECK_EQ(iog_join_resp_verify(resp, n, &jr, thumb, 0, &m), 0);
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
    hexf("talk_key", want, 16);
    CHECK_MEM(m.keys.talk, want, 16);
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

/*
 * The CH's sealed refusal (PROTOCOL.md §4.1) of the request of
 * protected-request.json opens, as the refusal of that request only, to its
 * diagnostic; tampered, of another request, or at another path it does not.
 */
static void v_refusal(void)
{
    static uint8_t ref[200], out[200], pt[200];
    iog_member_t m;
    iog_id_t me;
    memset(&m, 0, sizeof(m));
    idf("cluster", &m.ch.cluster);
    idf("id", &me);
    hexf("resp_key", m.keys.resp, 16);
    const char *path = field("path"), *diag = field("diagnostic");
    uint64_t seq = numf("seq");
    size_t rl = hexf("refusal", ref, sizeof(ref)), pl = hexf("plaintext", pt, sizeof(pt));
    /* the plaintext is the diagnostic as one CBOR text string */
    CHECK(pl == strlen(diag) + 1 && pt[0] == (uint8_t)(0x60 | strlen(diag)) && memcmp(pt + 1, diag, pl - 1) == 0);
    int n = iog_prot_refusal_open(&m, &me, seq, path, ref, rl, out, sizeof(out));
    CHECK_EQ(n, strlen(diag));
    CHECK(n > 0 && memcmp(out, diag, (size_t)n) == 0);
    /* in place: the refusal's own buffer is the output */
    memcpy(out, ref, rl);
    CHECK_EQ(iog_prot_refusal_open(&m, &me, seq, path, out, rl, out, sizeof(out)), strlen(diag));
    CHECK_EQ(iog_prot_refusal_open(&m, &me, seq + 1, path, ref, rl, out, sizeof(out)), -EACCES);
    CHECK_EQ(iog_prot_refusal_open(&m, &me, seq, IOG_PATH_SESSION, ref, rl, out, sizeof(out)), -EACCES);
    CHECK_EQ(iog_prot_refusal_open(&m, &m.ch.cluster, seq, path, ref, rl, out, sizeof(out)), -EACCES);
    for (size_t i = 0; i < rl; i++) { /* any bit flipped: the header's shape or the tag */
        memcpy(out, ref, rl);
        out[i] ^= 0x04;
        int e = iog_prot_refusal_open(&m, &me, seq, path, out, rl, out, sizeof(out));
        if (e != -EACCES && e != -EBADMSG) {
            printf("FAIL %s: byte %u flipped opens (%d)\n", cur->file, (unsigned)i, e);
            unit_fail++;
        }
    }
    /* a refusal is no response, and the output buffer must hold the ciphertext */
    CHECK_EQ(iog_prot_resp_open(&m, &me, seq, path, ref, rl, out, sizeof(out)), -EBADMSG);
    CHECK_EQ(iog_prot_refusal_open(&m, &me, seq, path, ref, rl, out, pl + 15), -ENOBUFS);
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

/*
 * A talk proof (PROTOCOL.md §5.1): the firmware makes the same tag, hello and
 * forwarding session-req as Go, and checks the proof as the CH does.
 */
static void v_talk_proof(void)
{
    static uint8_t want[200], mine[200];
    uint8_t key[16], nonce[12];
    iog_id_t cluster, init, resp, as, who, r2;
    iog_talk_proof_t p, q;
    int has;
    const uint8_t *e;
    size_t el;
    hexf("talk_key", key, 16);
    hexf("nonce", nonce, 12);
    idf("cluster", &cluster);
    idf("initiator", &init);
    idf("responder", &resp);
    idf("checked_as", &as);
    CHECK_EQ(iog_talk_proof_make(key, &cluster, &init, &resp, nonce, numf("time"), &p), 0);
    hexf("tag", want, 16);
    CHECK_MEM(p.tag, want, 16);
    size_t n = hexf("hello", want, sizeof(want));
    CHECK_EQ(iog_hello_encode(&init, &resp, &p, mine, sizeof(mine)), (int)n);
    CHECK_MEM(mine, want, n);
    CHECK_EQ(iog_hello_decode(want, n, &who, &r2, &q, &has), 0);
    CHECK(has && iog_id_eq(&who, init.s, init.len) && iog_id_eq(&r2, resp.s, resp.len));
    n = hexf("session_req", want, sizeof(want));
    CHECK_EQ(iog_peer_req_encode(&init, &p, NULL, 0, mine, sizeof(mine)), (int)n);
    CHECK_MEM(mine, want, n);
    CHECK_EQ(iog_peer_req_decode(want, n, &who, &q, &has, &e, &el), 0);
    int r = iog_talk_proof_check(key, &cluster, &init, &as, &q, numf("now"));
    const char *x = field("expect");
    if (strcmp(x, "ok") == 0) {
        CHECK_EQ(r, 0);
    }
    else if (strcmp(x, "talk proof stale") == 0) {
        CHECK_EQ(r, -ETIME);
    }
    else {
        CHECK(strcmp(x, "decryption failed") == 0);
        CHECK_EQ(r, -EACCES);
    }
}

static int decode_as(const char *type, const uint8_t *b, size_t n)
{
    iog_id_t id, resp;
    iog_talk_proof_t proof;
    int has;
    const uint8_t *p;
    size_t l;
    if (strcmp(type, "hello") == 0) {
        return iog_hello_decode(b, n, &id, &resp, &proof, &has);
    }
    if (strcmp(type, "verify-req") == 0) {
        return iog_peer_req_decode(b, n, &id, NULL, NULL, &p, &l);
    }
    if (strcmp(type, "session-req") == 0) {
        return iog_peer_req_decode(b, n, &id, &proof, &has, &p, &l);
    }
    if (strcmp(type, "leave-req") == 0) {
        return iog_peer_req_decode(b, n, NULL, NULL, NULL, &p, &l);
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
        if (ok != (r == 0)) { /* its note is in the JSON file: not compiled in */
            printf("FAIL decode-strict case %u (%s): got %d\n", i, type, r);
            unit_fail++;
        }
        else {
            unit_pass++;
        }
    }
}

/* A list field of hex hashes ("path.0", "path.1", ...) as a proof path
 * (IOG_TLOG_STRIDE bytes per hash, as the answer carries it). @return the count. */
static size_t pathf(const char *k, uint8_t *out, size_t cap)
{
    char key[48];
    size_t i;
    for (i = 0;; i++) {
        snprintf(key, sizeof(key), "%s.%u", k, (unsigned)i);
        if (!has(key) || (i + 1) * IOG_TLOG_STRIDE > cap) {
            break;
        }
        out[i * IOG_TLOG_STRIDE] = 0x58;
        out[i * IOG_TLOG_STRIDE + 1] = 0x20;
        hexf(key, out + i * IOG_TLOG_STRIDE + 2, IOG_HASH_LEN);
    }
    return i;
}

/* Leaf hashes of the hex list field @p k (RFC 9162: SHA-256(0x00 || input)). */
static size_t leavesf(const char *k, uint8_t (*leaf)[IOG_HASH_LEN], size_t cap)
{
    char key[48];
    uint8_t in[40];
    size_t i;
    for (i = 0; i < cap; i++) {
        snprintf(key, sizeof(key), "%s.%u", k, (unsigned)i);
        if (!has(key)) {
            break;
        }
        size_t n = hexf(key, in + 1, sizeof(in) - 1);
        in[0] = 0x00;
        iog_sha256(in, n + 1, leaf[i]);
    }
    return i;
}

/*
 * checkpoint.json, checkpoint-other-key.json, inclusion-proof-tampered.json
 * (PROTOCOL.md §9): the device's check of its join (block 7 of 11) on the CH's
 * answer, with the checkpoint of tree size 5 kept; the tree recomputed from
 * the block hashes by the reference of test_tlog.c.
 */
static void v_checkpoint(void)
{
    static uint8_t resp[700], cp[300], path[IOG_TLOG_MAX_PATH * IOG_TLOG_STRIDE];
    static uint8_t leaves[16][IOG_HASH_LEN];
    iog_member_t m;
    iog_tlog_cp_t kept, got;
    uint8_t want[IOG_HASH_LEN];
    uint64_t t = 0;
    memset(&m, 0, sizeof(m));
    idf("cluster", &m.ch.cluster);
    keyf("ch_cose_key", m.ch.pub);
    iog_thumbprint(m.ch.pub, m.ch.thumb);
    hexf("thumbprint", want, IOG_HASH_LEN);
    CHECK_MEM(m.ch.thumb, want, IOG_HASH_LEN);
    size_t nl = leavesf("block_hashes", leaves, 16);
    CHECK(nl == numf("tree_size"));
    unit_mth(leaves, nl, got.root);
    hexf("root", want, IOG_HASH_LEN);
    CHECK_MEM(got.root, want, IOG_HASH_LEN);
    m.height = numf("leaf_index");
    char key[32];
    snprintf(key, sizeof(key), "block_hashes.%u", (unsigned)m.height);
    hexf(key, m.block, IOG_HASH_LEN);
    hexf("leaf_hash", want, IOG_HASH_LEN);
    CHECK_MEM(leaves[m.height], want, IOG_HASH_LEN);
    kept.size = numf("old_size");
    hexf("old_root", kept.root, IOG_HASH_LEN);
    unit_mth(leaves, (size_t)kept.size, want);
    CHECK_MEM(kept.root, want, IOG_HASH_LEN);

    /* the checkpoint alone, and its time */
    size_t cl = hexf("checkpoint", cp, sizeof(cp));
    int r = iog_checkpoint_verify(cp, cl, &m.ch, &got, &t);
    const char *e = field("expect");
    CHECK_EQ(r, strcmp(e, "checkpoint signed by another key") == 0 ? -EACCES : 0);

    /* the answer, as the device checks it */
    size_t rl = hexf("proof_response", resp, sizeof(resp));
    iog_tlog_cp_t old = kept;
    r = iog_tlog_check_join(resp, rl, &m, &kept, &t);
    if (strcmp(e, "ok") == 0) {
        CHECK_EQ(r, 0);
        CHECK(kept.size == numf("tree_size"));
        hexf("root", want, IOG_HASH_LEN);
        CHECK_MEM(kept.root, want, IOG_HASH_LEN);
        CHECK(t == numf("time_ms"));
        /* the path and the consistency path alone */
        CHECK_EQ(iog_tlog_inclusion(m.height, leaves[m.height], &kept, path,
                                    pathf("path", path, sizeof(path))), 0);
        CHECK_EQ(iog_tlog_consistency(&old, &kept, path, pathf("consistency_path", path, sizeof(path))), 0);
        /* the same answer must fail for another join block, a kept root of
         * another tree, a kept tree of another size, a larger kept tree */
        iog_tlog_cp_t k2 = old;
        m.height++;
        CHECK_EQ(iog_tlog_check_join(resp, rl, &m, &k2, NULL), -ENOENT);
        m.height--;
        k2.root[0] ^= 1;
        CHECK_EQ(iog_tlog_check_join(resp, rl, &m, &k2, NULL), -EXDEV);
        k2 = old;
        k2.size = old.size + 1;
        CHECK_EQ(iog_tlog_check_join(resp, rl, &m, &k2, NULL), -EXDEV);
        k2 = kept;
        k2.size = 12;
        CHECK_EQ(iog_tlog_check_join(resp, rl, &m, &k2, NULL), -EXDEV);
        CHECK(k2.size == 12); /* unchanged on failure */
        /* with nothing kept the consistency part is not asked for */
        memset(&k2, 0, sizeof(k2));
        CHECK_EQ(iog_tlog_check_join(resp, rl, &m, &k2, NULL), 0);
        CHECK(k2.size == kept.size);
        /* another cluster's member refuses it */
        iog_member_t other = m;
        iog_id_set(&other.ch.cluster, "cluster-2", 9);
        CHECK_EQ(iog_tlog_check_join(resp, rl, &other, &k2, NULL), -EACCES);
    }
    else if (strcmp(e, "checkpoint signed by another key") == 0) {
        CHECK_EQ(r, -EACCES);
        CHECK(kept.size == old.size);
    }
    else {
        CHECK(strcmp(e, "proof does not verify") == 0);
        CHECK_EQ(r, -EILSEQ);
        CHECK(kept.size == old.size);
    }
}

/* testdata/rfc9162/merkle.json: RFC 9162's (RFC 6962's) tree test data. */
static void v_merkle(void)
{
    static uint8_t leaves[8][IOG_HASH_LEN], path[16 * IOG_TLOG_STRIDE];
    uint8_t root[IOG_HASH_LEN], want[IOG_HASH_LEN];
    char k[48];
    size_t n = leavesf("leaves", leaves, 8);
    CHECK_EQ(n, 8);
    for (size_t i = 1; i <= n; i++) {
        unit_mth(leaves, i, root);
        snprintf(k, sizeof(k), "roots.%u", (unsigned)(i - 1));
        hexf(k, want, IOG_HASH_LEN);
        CHECK_MEM(root, want, IOG_HASH_LEN);
    }
    unsigned cases = 0;
    for (unsigned i = 0;; i++, cases++) {
        snprintf(k, sizeof(k), "inclusion.%u.tree_size", i);
        if (!has(k)) {
            break;
        }
        iog_tlog_cp_t cp;
        cp.size = numf(k);
        snprintf(k, sizeof(k), "roots.%u", (unsigned)(cp.size - 1));
        hexf(k, cp.root, IOG_HASH_LEN);
        snprintf(k, sizeof(k), "inclusion.%u.leaf_index", i);
        uint64_t idx = numf(k);
        snprintf(k, sizeof(k), "inclusion.%u.path", i);
        size_t pn = pathf(k, path, sizeof(path));
        CHECK_EQ(iog_tlog_inclusion(idx, leaves[idx], &cp, path, pn), 0);
        CHECK_EQ(iog_tlog_inclusion(idx ^ 1, leaves[idx], &cp, path, pn), -EILSEQ);
    }
    for (unsigned i = 0;; i++, cases++) {
        snprintf(k, sizeof(k), "consistency.%u.size1", i);
        if (!has(k)) {
            break;
        }
        iog_tlog_cp_t a, b;
        a.size = numf(k);
        snprintf(k, sizeof(k), "consistency.%u.size2", i);
        b.size = numf(k);
        snprintf(k, sizeof(k), "roots.%u", (unsigned)(a.size - 1));
        hexf(k, a.root, IOG_HASH_LEN);
        snprintf(k, sizeof(k), "roots.%u", (unsigned)(b.size - 1));
        hexf(k, b.root, IOG_HASH_LEN);
        snprintf(k, sizeof(k), "consistency.%u.path", i);
        size_t pn = pathf(k, path, sizeof(path));
        CHECK_EQ(iog_tlog_consistency(&a, &b, path, pn), 0);
        b.root[31] ^= 1;
        CHECK_EQ(iog_tlog_consistency(&a, &b, path, pn), -EILSEQ);
    }
    CHECK(cases >= 10);
}

/*
 * rotation.json, rotation-bad-signature.json (PROTOCOL.md §6.1): the rotation
 * as GET /cluster carries it in key 7; a device pinned to the old key follows
 * it to the new key only when it verifies under the old key.
 */
static void v_rotation(void)
{
    static uint8_t rot[400], rot2[400], ans[1400];
    uint8_t old_priv[32], new_priv[32], old_pub[65], new_pub[65], third_priv[32] = { 7 };
    uint8_t third_pub[65], th[32], unrelated[32];
    iog_id_t cl;
    iog_cluster_t c;
    idf("cluster", &cl);
    hexf("old_priv", old_priv, 32);
    hexf("new_priv", new_priv, 32);
    keyf("old_cose_key", old_pub);
    keyf("new_cose_key", new_pub);
    hexf("old_thumbprint", th, 32);
    size_t rl = hexf("sign1", rot, sizeof(rot));
    const uint8_t *rv[2] = { rot, rot2 };
    size_t rlen[2] = { rl, 0 };
    int ok = expect_ok();
    if (!ok) {
        CHECK(strcmp(field("expect"), "bad signature") == 0);
    }
    /* the signature under the old key, as the vector's to_be_signed has it */
    iog_sign1_t s;
    CHECK_EQ(iog_sign1_parse(rot, rl, &s), 0);
    CHECK_EQ(iog_sign1_verify(&s, old_pub, IOG_AAD_ROTATE), ok ? 0 : -EACCES);

    /* GET /cluster by the new key with the rotation: pinned to the old key */
    int n = unit_cluster_answer(new_priv, new_pub, &cl, rv, rlen, 1, ans, sizeof(ans));
    CHECK(n > 0);
    CHECK_EQ(iog_cluster_info_verify(ans, (size_t)n, th, &c), ok ? 0 : -EACCES);
    CHECK_MEM(c.pub, new_pub, 65);
    /* pinned to the new key: no rotation to follow; unpinned: the key as is */
    iog_thumbprint(new_pub, unrelated);
    CHECK_EQ(iog_cluster_info_verify(ans, (size_t)n, unrelated, &c), 0);
    CHECK_EQ(iog_cluster_info_verify(ans, (size_t)n, NULL, &c), 0);
    /* pinned to an unrelated key: refused */
    memset(unrelated, 0x07, sizeof(unrelated));
    CHECK_EQ(iog_cluster_info_verify(ans, (size_t)n, unrelated, &c), -EACCES);
    /* another cluster's rotation: refused */
    iog_id_t cl2;
    iog_id_set(&cl2, "cluster-2", 9);
    n = unit_cluster_answer(new_priv, new_pub, &cl2, rv, rlen, 1, ans, sizeof(ans));
    CHECK_EQ(iog_cluster_info_verify(ans, (size_t)n, th, &c), -EACCES);
    if (!ok) {
        return;
    }
    /* two rotations, old -> new -> third, as the CH serves them after a second one */
    iog_p256_public(third_priv, third_pub);
    rlen[1] = (size_t)unit_rotation(new_priv, third_pub, new_priv, &cl, rot2, sizeof(rot2));
    n = unit_cluster_answer(third_priv, third_pub, &cl, rv, rlen, 2, ans, sizeof(ans));
    CHECK_EQ(iog_cluster_info_verify(ans, (size_t)n, th, &c), 0);
    CHECK_MEM(c.pub, third_pub, 65);
    iog_thumbprint(new_pub, unrelated); /* pinned to the middle key: the older rotation is skipped */
    CHECK_EQ(iog_cluster_info_verify(ans, (size_t)n, unrelated, &c), 0);
    /* a chain with a gap (the second rotation signed by the old key for the new one's) */
    rlen[1] = (size_t)unit_rotation(new_priv, third_pub, old_priv, &cl, rot2, sizeof(rot2));
    n = unit_cluster_answer(third_priv, third_pub, &cl, rv, rlen, 2, ans, sizeof(ans));
    CHECK_EQ(iog_cluster_info_verify(ans, (size_t)n, th, &c), -EACCES);
    /* a chain that does not end at the key offered */
    rlen[1] = (size_t)unit_rotation(new_priv, old_pub, new_priv, &cl, rot2, sizeof(rot2));
    n = unit_cluster_answer(third_priv, third_pub, &cl, rv, rlen, 2, ans, sizeof(ans));
    CHECK_EQ(iog_cluster_info_verify(ans, (size_t)n, th, &c), -EACCES);
    /* three rotations are more than key 7 holds */
    const uint8_t *r3[3] = { rot, rot, rot };
    size_t l3[3] = { rl, rl, rl };
    n = unit_cluster_answer(new_priv, new_pub, &cl, r3, l3, 3, ans, sizeof(ans));
    CHECK_EQ(iog_cluster_info_verify(ans, (size_t)n, th, &c), -EBADMSG);
    /* a byte changed anywhere in the rotation (7 places): refused, never followed */
    unsigned followed = 0;
    for (size_t i = 0; i < rl; i += rl / 6) {
        rot[i] ^= 0x20;
        n = unit_cluster_answer(new_priv, new_pub, &cl, rv, rlen, 1, ans, sizeof(ans));
        followed += iog_cluster_info_verify(ans, (size_t)n, th, &c) == 0;
        rot[i] ^= 0x20;
    }
    CHECK_EQ(followed, 0);
}

static const struct {
    const char *prefix;
    void (*fn)(void);
} replayers[] = {
    { "checkpoint", v_checkpoint },
    { "decode-strict", v_decode_strict },
    { "join-request", v_join_request },
    { "dtls-psk", v_dtls_psk },
    { "inclusion-proof", v_checkpoint },
    { "join-response", v_join_response },
    { "kdf", v_kdf },
    { "m2m", v_m2m },
    { "merkle", v_merkle },
    { "partial-iv", v_partial_iv },
    { "protected-refusal", v_refusal },
    { "protected-request", v_protected },
    { "replay-window", v_replay },
    { "rotation", v_rotation },
    { "talk-proof", v_talk_proof },
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
