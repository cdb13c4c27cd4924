/*
 * Protocol layer against independently computed bytes (selfvectors.h, made by
 * tests/selfvectors.py with Python's cryptography package and its own CBOR
 * encoder) and the RFC 9679 thumbprint example.
 */
#include <errno.h>

#include "iog_cbor.h"
#include "iog_proto.h"
#include "selfvectors.h"
#include "unit.h"

static iog_identity_t dev;
static iog_id_t cluster, m1, m2;

static void setup(void)
{
    memcpy(dev.priv, SV_DEV_PRIV, 32);
    iog_p256_public(dev.priv, dev.pub);
    iog_id_set(&dev.id, "m1", 2);
    iog_id_set(&cluster, "lab-1", 5);
    iog_id_set(&m1, "m1", 2);
    iog_id_set(&m2, "m2", 2);
}

static void test_ids(void)
{
    iog_id_t id;
    CHECK_EQ(iog_id_set(&id, "A-z_0.9", 7), 0);
    CHECK_EQ(iog_id_set(&id, "", 0), -EINVAL);
    CHECK_EQ(iog_id_set(&id, "a b", 3), -EINVAL);
    CHECK_EQ(iog_id_set(&id, "a/b", 3), -EINVAL);
    char long_id[66];
    memset(long_id, 'x', sizeof(long_id));
    CHECK_EQ(iog_id_set(&id, long_id, 64), 0);
    CHECK_EQ(iog_id_set(&id, long_id, 65), -EINVAL);
    CHECK_EQ(strcmp(iog_status_name(IOG_STATUS_REVOKED), "revoked"), 0);
}

static void test_cose_key(void)
{
    uint8_t k[100], pub[65];
    int n = iog_cose_key_encode(dev.pub, k, sizeof(k));
    CHECK_EQ(n, 77);
    uint8_t head[10];
    unit_hex("a5 0102 0326 2001 215820", head, sizeof(head));
    CHECK_MEM(k, head, 10);
    CHECK_EQ(iog_cose_key_decode(k, (size_t)n, pub), 0);
    CHECK_MEM(pub, dev.pub, 65);

    /* without alg is fine; key_ops, a private part, a short x are not */
    uint8_t b[120];
    size_t bl;
    b[0] = 0xa4;
    memcpy(b + 1, k + 1, 2);
    memcpy(b + 3, k + 5, 72);
    CHECK_EQ(iog_cose_key_decode(b, 75, pub), 0);
    b[0] = 0xa5;
    memcpy(b + 75, "\x04\x81\x02", 3); /* 4: [2] -- wrong order too, but unknown first */
    CHECK_EQ(iog_cose_key_decode(b, 78, pub), -EBADMSG);
    memcpy(b, k, 77);
    b[0] = 0xa6;
    memcpy(b + 77, "\x23\x41\x00", 3); /* -4: d */
    CHECK_EQ(iog_cose_key_decode(b, 80, pub), -EBADMSG);
    memcpy(b, k, 77);
    b[6] = 0x02; /* crv P-384 */
    CHECK_EQ(iog_cose_key_decode(b, 77, pub), -EBADMSG);
    memcpy(b, k, 77);
    b[76] ^= 1; /* off the curve */
    CHECK_EQ(iog_cose_key_decode(b, 77, pub), -EBADMSG);
    /* x of 31 bytes (a big-endian integer with its leading zero dropped) */
    bl = 0;
    b[bl++] = 0xa5;
    memcpy(b + bl, k + 1, 6);
    bl += 6;
    b[bl++] = 0x21;
    b[bl++] = 0x58;
    b[bl++] = 31;
    memcpy(b + bl, k + 11, 31);
    bl += 31;
    memcpy(b + bl, k + 42, 35);
    bl += 35;
    CHECK_EQ(iog_cose_key_decode(b, bl, pub), -EBADMSG);
}

static void test_thumbprint(void)
{
    /* RFC 9679 §6 example */
    uint8_t pub[65], t[32], want[32];
    unit_hex("04 65eda5a12577c2bae829437fe338701a10aaa375e1bb5b5de108de439c08551d"
             "1e52ed75701163f7f9e40ddf9f341b3dc9ba860af7e0ca7ca7e9eecd0084d19c", pub, 65);
    unit_hex("496bd8afadf307e5b08c64b0421bf9dc01528a344a43bda88fadd1669da253ec", want, 32);
    iog_thumbprint(pub, t);
    CHECK_MEM(t, want, 32);
}

static void test_sign1(void)
{
    uint8_t out[256];
    iog_sign1_t s;
    int n = iog_sign1_encode(dev.priv, (const uint8_t *)"m1", 2, "ctx", (const uint8_t *)"hi",
                             2, out, sizeof(out));
    CHECK_EQ(n, 1 + 4 + 5 + 3 + 2 + 64);
    uint8_t head[12];
    unit_hex("84 43a10126 a1 04 42 6d31 42 6869", head, 12);
    CHECK_MEM(out, head, 12);
    CHECK_EQ(iog_sign1_parse(out, (size_t)n, &s), 0);
    CHECK_EQ(iog_sign1_verify(&s, dev.pub, "ctx"), 0);
    CHECK_EQ(iog_sign1_verify(&s, dev.pub, "ctx2"), -EACCES);
    out[11] ^= 1; /* payload byte */
    CHECK_EQ(iog_sign1_verify(&s, dev.pub, "ctx"), -EACCES);
    out[2] = 0xa2; /* protected header not {1: -7} */
    CHECK_EQ(iog_sign1_parse(out, (size_t)n, &s), -EBADMSG);
    CHECK_EQ(iog_sign1_encode(dev.priv, (const uint8_t *)"m1", 2, "ctx",
                              (const uint8_t *)"hi", 2, out, 40), -ENOBUFS);
}

static iog_join_req_t join_inputs(uint8_t *nd, const uint8_t *echo)
{
    for (int i = 0; i < 16; i++) {
        nd[i] = (uint8_t)i;
    }
    iog_join_req_t jr = { &dev, &cluster, 52520000, -1930000, nd, echo, echo ? 12 : 0, NULL, 0 };
    return jr;
}

static void test_join(void)
{
    uint8_t nd[16], echo[12], out[300];
    unit_hex("0102030405060708090a0b0c", echo, 12);
    iog_join_req_t jr = join_inputs(nd, echo);
    int n = iog_join_req_encode(&jr, out, sizeof(out));
    CHECK_EQ(n, sizeof(SV_JOIN_REQ));
    CHECK_MEM(out, SV_JOIN_REQ, sizeof(SV_JOIN_REQ));

    /* without an echo the map has 6 pairs */
    jr.echo = NULL;
    n = iog_join_req_encode(&jr, out, sizeof(out));
    CHECK_EQ(n, sizeof(SV_JOIN_REQ) - 14);
    iog_sign1_t s;
    CHECK_EQ(iog_sign1_parse(out, (size_t)n, &s), 0);
    CHECK_EQ(s.payload[0], 0xa6);
    CHECK_EQ(iog_sign1_verify(&s, dev.pub, IOG_AAD_JOIN_REQ), 0);
    jr.lat = 90000001;
    CHECK_EQ(iog_join_req_encode(&jr, out, sizeof(out)), -EINVAL);

    /* a fleet credential (PROTOCOL.md §3.5): key 8, the stored bytes as they are */
    uint8_t cred[IOG_CRED_MAX + 1], big[IOG_MAX_PAYLOAD]; /* stack: dram0 is for the test data */
    memset(cred, 0x5a, sizeof(cred));
    jr = join_inputs(nd, echo);
    jr.cred = cred;
    jr.cred_len = 143;
    n = iog_join_req_encode(&jr, big, sizeof(big));
    CHECK(n > (int)sizeof(SV_JOIN_REQ) + 143);
    CHECK_EQ(iog_sign1_parse(big, (size_t)n, &s), 0);
    CHECK_EQ(iog_sign1_verify(&s, dev.pub, IOG_AAD_JOIN_REQ), 0);
    CHECK_EQ(s.payload[0], 0xa8);
    iog_join_payload_t jp;
    CHECK_EQ(iog_join_payload_decode(s.payload, s.payload_len, &jp), 0);
    CHECK_EQ(jp.cred_len, 143);
    CHECK(jp.cred && memcmp(jp.cred, cred, 143) == 0);
    CHECK_EQ(iog_join_req_encode(&jr, big, (size_t)n - 1), -ENOBUFS);
    /* the largest join: 64-byte IDs, a 40-byte echo, a 256-byte credential */
    iog_identity_t longest = dev;
    iog_id_t longcluster;
    char id64[65];
    memset(id64, 'x', 64);
    id64[64] = 0;
    CHECK_EQ(iog_id_set(&longest.id, id64, 64), 0);
    CHECK_EQ(iog_id_set(&longcluster, id64, 64), 0);
    uint8_t echo40[IOG_ECHO_MAX] = { 0 };
    jr.me = &longest;
    jr.cluster = &longcluster;
    jr.echo = echo40;
    jr.echo_len = IOG_ECHO_MAX;
    jr.cred_len = IOG_CRED_MAX;
    n = iog_join_req_encode(&jr, big, sizeof(big));
    CHECK(n > 0 && n <= IOG_MAX_PAYLOAD);
    CHECK_EQ(iog_sign1_parse(big, (size_t)n, &s), 0);
    CHECK_EQ(iog_sign1_verify(&s, dev.pub, IOG_AAD_JOIN_REQ), 0);
    CHECK_EQ(iog_join_payload_decode(s.payload, s.payload_len, &jp), 0);
    CHECK_EQ(jp.cred_len, IOG_CRED_MAX);
    jr.cred_len = IOG_CRED_MAX + 1;
    CHECK_EQ(iog_join_req_encode(&jr, big, sizeof(big)), -EINVAL);
    jr.cred_len = 0;
    CHECK_EQ(iog_join_req_encode(&jr, big, sizeof(big)), -EINVAL);

    /* the CH's answer */
    jr = join_inputs(nd, echo);
    iog_member_t m;
    CHECK_EQ(iog_join_resp_verify(SV_JOIN_RESP, sizeof(SV_JOIN_RESP), &jr, NULL, 0, &m), 0);
    CHECK_MEM(m.ch.thumb, SV_CH_THUMB, 32);
    CHECK_EQ(m.height, 7);
    CHECK_EQ(m.expires, 1900000000);
    CHECK(iog_id_eq(&m.ch.cluster, "lab-1", 5));
    CHECK_EQ(m.nch[0], 16);
    CHECK_EQ(m.block[31], 0xab);
    CHECK_EQ(iog_join_resp_verify(SV_JOIN_RESP, sizeof(SV_JOIN_RESP), &jr, SV_CH_THUMB, 0, &m), 0);
    uint8_t pin[32];
    memcpy(pin, SV_CH_THUMB, 32);
    pin[0] ^= 1;
    CHECK_EQ(iog_join_resp_verify(SV_JOIN_RESP, sizeof(SV_JOIN_RESP), &jr, pin, 0, &m), -EACCES);
    nd[3] ^= 1; /* an answer to another join */
    CHECK_EQ(iog_join_resp_verify(SV_JOIN_RESP, sizeof(SV_JOIN_RESP), &jr, NULL, 0, &m), -EACCES);
    nd[3] ^= 1;
    iog_identity_t other = dev;
    iog_id_set(&other.id, "m3", 2);
    jr.me = &other;
    CHECK_EQ(iog_join_resp_verify(SV_JOIN_RESP, sizeof(SV_JOIN_RESP), &jr, NULL, 0, &m), -EACCES);
    jr.me = &dev;
    uint8_t bad[sizeof(SV_JOIN_RESP)];
    memcpy(bad, SV_JOIN_RESP, sizeof(bad));
    bad[sizeof(bad) - 1] ^= 1; /* signature */
    CHECK_EQ(iog_join_resp_verify(bad, sizeof(bad), &jr, NULL, 0, &m), -EACCES);
    CHECK_EQ(iog_join_resp_verify(bad, sizeof(bad) - 1, &jr, NULL, 0, &m), -EBADMSG);
    /* the refused answers left the membership m held as it was: a forged
     * answer to a rejoin must not wipe the device's membership */
    CHECK_EQ(m.height, 7);
    CHECK_MEM(m.ch.thumb, SV_CH_THUMB, 32);
    /* a device with a clock refuses a membership that expired (1900000000),
     * and keeps the one it held */
    iog_member_t held = m;
    CHECK_EQ(iog_join_resp_verify(SV_JOIN_RESP, sizeof(SV_JOIN_RESP), &jr, NULL, 1900000000, &m), -ESTALE);
    CHECK_MEM(&m, &held, sizeof(m));
    CHECK_EQ(iog_join_resp_verify(SV_JOIN_RESP, sizeof(SV_JOIN_RESP), &jr, NULL, 1899999999, &m), 0);

    /* K_m and the member keys, both through the pieces and iog_member_derive */
    CHECK_EQ(iog_join_resp_verify(SV_JOIN_RESP, sizeof(SV_JOIN_RESP), &jr, NULL, 0, &m), 0);
    uint8_t z[32], km[32];
    CHECK_EQ(iog_ecdh(dev.priv, m.ch.pub, z), 0);
    CHECK_EQ(iog_derive_km(z, nd, m.nch, &cluster, &dev.id, m.ch.thumb, km), 0);
    CHECK_MEM(km, SV_KM, 32);
    CHECK_EQ(iog_member_derive(&dev, &m), 0);
    CHECK_MEM(m.keys.req, SV_REQ_KEY, 16);
    CHECK_MEM(m.keys.resp, SV_RESP_KEY, 16);
    CHECK_MEM(m.keys.iv, SV_COMMON_IV, 12);
    CHECK_MEM(m.keys.ticket, SV_TICKET_KEY, 16);
    CHECK_MEM(m.keys.talk, SV_TALK_KEY, 16);
    /* the CH derives the same Z from its side */
    uint8_t z2[32];
    CHECK_EQ(iog_ecdh(SV_CH_PRIV, dev.pub, z2), 0);
    CHECK_MEM(z, z2, 32);
}

static void member(iog_member_t *m)
{
    uint8_t nd[16];
    iog_join_req_t jr = join_inputs(nd, NULL);
    iog_join_resp_verify(SV_JOIN_RESP, sizeof(SV_JOIN_RESP), &jr, NULL, 0, m);
    iog_member_derive(&dev, m);
}

static void test_protected(void)
{
    static iog_member_t m;
    uint8_t pt[64], out[200], back[200];
    member(&m);

    int pl = iog_peer_req_encode(&m2, NULL, NULL, 0, pt, sizeof(pt));
    CHECK_EQ(pl, 5);
    int n = iog_prot_req_seal(&m, &m1, 5, IOG_PATH_VERIFY, pt, (size_t)pl, out, sizeof(out));
    CHECK_EQ(n, sizeof(SV_VERIFY_REQ));
    CHECK_MEM(out, SV_VERIFY_REQ, sizeof(SV_VERIFY_REQ));

    n = iog_prot_resp_open(&m, &m1, 5, IOG_PATH_VERIFY, SV_VERIFY_RESP, sizeof(SV_VERIFY_RESP),
                           back, sizeof(back));
    CHECK(n > 0);
    iog_verify_resp_t v;
    CHECK_EQ(iog_verify_resp_decode(back, (size_t)n, &v), 0);
    CHECK(iog_id_eq(&v.peer, "m2", 2));
    CHECK_EQ(v.status, IOG_STATUS_MEMBER);
    CHECK_EQ(v.height, 9);
    CHECK_EQ(v.expires, 1900000000);
    CHECK(v.has_block && v.block[0] == 0xcd);
    /* bound to its request: another seq or path does not open */
    CHECK_EQ(iog_prot_resp_open(&m, &m1, 6, IOG_PATH_VERIFY, SV_VERIFY_RESP,
                                sizeof(SV_VERIFY_RESP), back, sizeof(back)), -EACCES);
    CHECK_EQ(iog_prot_resp_open(&m, &m1, 5, IOG_PATH_SESSION, SV_VERIFY_RESP,
                                sizeof(SV_VERIFY_RESP), back, sizeof(back)), -EACCES);
    /* a request is not a response (its header is not {}) */
    CHECK_EQ(iog_prot_resp_open(&m, &m1, 5, IOG_PATH_VERIFY, SV_VERIFY_REQ,
                                sizeof(SV_VERIFY_REQ), back, sizeof(back)), -EBADMSG);

    /* after a CH restart: the echo inside, a 2-byte partial IV */
    uint8_t echo[12];
    unit_hex("0102030405060708090a0b0c", echo, 12);
    pl = iog_peer_req_encode(&m2, NULL, echo, 12, pt, sizeof(pt));
    n = iog_prot_req_seal(&m, &m1, 256, IOG_PATH_SESSION, pt, (size_t)pl, out, sizeof(out));
    CHECK_EQ(n, sizeof(SV_SESSION_REQ));
    CHECK_MEM(out, SV_SESSION_REQ, sizeof(SV_SESSION_REQ));
    CHECK_EQ(iog_prot_req_seal(&m, &m1, IOG_SEQ_MAX + 1, IOG_PATH_SESSION, pt, (size_t)pl, out,
                               sizeof(out)), -ERANGE);
    /* leave-req without echo is the empty map */
    CHECK_EQ(iog_peer_req_encode(NULL, NULL, NULL, 0, pt, sizeof(pt)), 1);
    CHECK_EQ(pt[0], 0xa0);

    uint8_t lr[40];
    uint64_t h;
    uint8_t hash[32];
    size_t ll = unit_hex("a2 01 0c 02 5820 00000000000000000000000000000000"
                         "000000000000000000000000000000ff", lr, sizeof(lr));
    CHECK_EQ(iog_leave_resp_decode(lr, ll, &h, hash), 0);
    CHECK_EQ(h, 12);
    CHECK_EQ(hash[31], 0xff);
    /* verify-resp: unknown key and bad status are malformed */
    uint8_t vr[16];
    size_t vl = unit_hex("a2 01 626d32 02 05", vr, sizeof(vr));
    CHECK_EQ(iog_verify_resp_decode(vr, vl, &v), -EBADMSG);
    vl = unit_hex("a3 01 626d32 02 01 06 00", vr, sizeof(vr));
    CHECK_EQ(iog_verify_resp_decode(vr, vl, &v), -EBADMSG);
    vl = unit_hex("a2 01 626d32 02 01", vr, sizeof(vr));
    CHECK_EQ(iog_verify_resp_decode(vr, vl, &v), 0);
    CHECK_EQ(v.status, IOG_STATUS_UNKNOWN);
}

static void test_piv_nonce(void)
{
    uint8_t p[5], n[12], iv[12];
    uint64_t s;
    CHECK_EQ(iog_piv_encode(0, p), 1);
    CHECK_EQ(p[0], 0);
    CHECK_EQ(iog_piv_encode(255, p), 1);
    CHECK_EQ(iog_piv_encode(256, p), 2);
    CHECK(p[0] == 1 && p[1] == 0);
    CHECK_EQ(iog_piv_encode(IOG_SEQ_MAX, p), 5);
    CHECK_EQ(iog_piv_decode(p, 5, &s), 0);
    CHECK(s == IOG_SEQ_MAX);
    CHECK_EQ(iog_piv_decode((const uint8_t *)"\x00\x01", 2, &s), -EBADMSG);
    CHECK_EQ(iog_piv_decode(p, 0, &s), -EBADMSG);
    CHECK_EQ(iog_piv_decode((const uint8_t *)"\x01\x02\x03\x04\x05\x06", 6, &s), -EBADMSG);
    memset(iv, 0xff, 12);
    iog_nonce(iv, 0x0102, n);
    CHECK(n[0] == 0xff && n[10] == 0xfe && n[11] == 0xfd);
}

static void test_tickets(void)
{
    iog_ticket_t t;
    uint8_t sk[16];
    CHECK_EQ(iog_ticket_parse(SV_TICKET, sizeof(SV_TICKET), &t), 0);
    CHECK_EQ(t.expires, 1800000000);
    CHECK_MEM(t.sid, SV_SID, 16);
    CHECK(iog_id_eq(&t.recipient, "m1", 2));
    CHECK_EQ(iog_ticket_open(&t, SV_TICKET_KEY, &cluster, &m1, &m1, &m2, 1700000000, sk), 0);
    CHECK_MEM(sk, SV_SK, 16);
    CHECK_EQ(iog_ticket_open(&t, SV_TICKET_KEY, &cluster, &m1, &m1, &m2, 0, sk), 0);
    CHECK_EQ(iog_ticket_open(&t, SV_TICKET_KEY, &cluster, &m1, &m1, &m2, 1800000000, sk), -ETIME);
    CHECK_EQ(iog_ticket_open(&t, SV_TICKET_KEY, &cluster, &m2, &m1, &m2, 1700000000, sk), -EACCES);
    CHECK_EQ(iog_ticket_open(&t, SV_TICKET_KEY, &cluster, &m1, &m2, &m1, 1700000000, sk), -EACCES);
    iog_id_t other;
    iog_id_set(&other, "lab-2", 5);
    CHECK_EQ(iog_ticket_open(&t, SV_TICKET_KEY, &other, &m1, &m1, &m2, 1700000000, sk), -EACCES);
    t.expires++; /* the expiry is authenticated */
    CHECK_EQ(iog_ticket_open(&t, SV_TICKET_KEY, &cluster, &m1, &m1, &m2, 1700000000, sk), -EACCES);

    /* talk-resp carries the ticket as is; session-resp splits into two */
    uint8_t buf[300];
    int n = iog_talk_resp_encode(&m2, SV_TICKET, sizeof(SV_TICKET), buf, sizeof(buf));
    CHECK_EQ(n, 1 + 1 + 3 + 1 + (int)sizeof(SV_TICKET));
    iog_id_t who;
    const uint8_t *tp;
    size_t tl;
    CHECK_EQ(iog_talk_resp_decode(buf, (size_t)n, &who, &tp, &tl), 0);
    CHECK(iog_id_eq(&who, "m2", 2));
    CHECK_EQ(tl, sizeof(SV_TICKET));
    CHECK_MEM(tp, SV_TICKET, tl);
    buf[0] = 0xa2;
    buf[1] = 0x01;
    memcpy(buf + 2, SV_TICKET, sizeof(SV_TICKET));
    buf[2 + sizeof(SV_TICKET)] = 0x02;
    memcpy(buf + 3 + sizeof(SV_TICKET), SV_TICKET, sizeof(SV_TICKET));
    const uint8_t *g, *w;
    size_t gl, wl;
    CHECK_EQ(iog_session_resp_split(buf, 3 + 2 * sizeof(SV_TICKET), &g, &gl, &tp, &tl, &w, &wl), 0);
    CHECK_EQ(gl, sizeof(SV_TICKET));
    CHECK_EQ(tl, sizeof(SV_TICKET));
    CHECK(g == buf + 2 && w == NULL);
    /* ... or, to a /session with a talk proof, a warning about the initiator */
    CHECK_EQ(iog_session_resp_split(SV_SESSION_RESP_WARN, sizeof(SV_SESSION_RESP_WARN), &g, &gl, &tp,
                                    &tl, &w, &wl), 0);
    CHECK(g == NULL && tp == NULL && w == SV_SESSION_RESP_WARN + 2);
    iog_verify_resp_t v;
    CHECK_EQ(iog_verify_resp_decode(w, wl, &v), 0);
    CHECK(iog_id_eq(&v.peer, "m1", 2) && v.status == IOG_STATUS_LEFT);
    uint8_t odd[sizeof(SV_SESSION_RESP_WARN)];
    memcpy(odd, SV_SESSION_RESP_WARN, sizeof(odd));
    odd[1] = 0x01; /* {1: verify-resp}: neither a session nor a warning */
    CHECK_EQ(iog_session_resp_split(odd, sizeof(odd), &g, &gl, &tp, &tl, &w, &wl), -EBADMSG);
}

/* Talk proofs and hellos (PROTOCOL.md §5.1) against the Python bytes. */
static void test_talk(void)
{
    uint8_t nonce[12], buf[200];
    iog_talk_proof_t p, q;
    for (int i = 0; i < 12; i++) {
        nonce[i] = (uint8_t)(0xa0 + i);
    }
    CHECK_EQ(iog_talk_proof_make(SV_TALK_KEY, &cluster, &m1, &m2, nonce, 1800000000, &p), 0);
    CHECK_MEM(p.tag, SV_TALK_TAG, 16);
    int n = iog_hello_encode(&m1, &m2, &p, buf, sizeof(buf));
    CHECK_EQ(n, sizeof(SV_HELLO));
    CHECK_MEM(buf, SV_HELLO, sizeof(SV_HELLO));

    /* the CH's check: fresh within 60 s either way, only for its responder */
    CHECK_EQ(iog_talk_proof_check(SV_TALK_KEY, &cluster, &m1, &m2, &p, 1800000060), 0);
    CHECK_EQ(iog_talk_proof_check(SV_TALK_KEY, &cluster, &m1, &m2, &p, 1799999940), 0);
    CHECK_EQ(iog_talk_proof_check(SV_TALK_KEY, &cluster, &m1, &m2, &p, 1800000061), -ETIME);
    CHECK_EQ(iog_talk_proof_check(SV_TALK_KEY, &cluster, &m1, &m2, &p, 1799999939), -ETIME);
    CHECK_EQ(iog_talk_proof_check(SV_TALK_KEY, &cluster, &m2, &m1, &p, 1800000000), -EACCES);
    CHECK_EQ(iog_talk_proof_check(SV_TICKET_KEY, &cluster, &m1, &m2, &p, 1800000000), -EACCES);
    q = p;
    q.time++;
    CHECK_EQ(iog_talk_proof_check(SV_TALK_KEY, &cluster, &m1, &m2, &q, 1800000000), -EACCES);
    q = p;
    q.tag[15] ^= 1;
    CHECK_EQ(iog_talk_proof_check(SV_TALK_KEY, &cluster, &m1, &m2, &q, 1800000000), -EACCES);
    CHECK(!iog_talk_fresh(UINT64_MAX - 10, 1800000000) && !iog_talk_fresh(0, 1800000000));

    /* the listener's decoding */
    iog_id_t who, resp;
    int has;
    CHECK_EQ(iog_hello_decode(SV_HELLO, sizeof(SV_HELLO), &who, &resp, &q, &has), 0);
    CHECK(has && iog_id_eq(&who, "m1", 2) && iog_id_eq(&resp, "m2", 2));
    CHECK(q.time == p.time && memcmp(q.nonce, p.nonce, 12) == 0 && memcmp(q.tag, p.tag, 16) == 0);
    /* a hello from before talk proofs decodes without one: the listener refuses it */
    size_t hl = unit_hex("a1 01 62 6d31", buf, sizeof(buf));
    CHECK_EQ(iog_hello_decode(buf, hl, &who, &resp, &q, &has), 0);
    CHECK(!has && iog_id_eq(&who, "m1", 2));
    hl = unit_hex("a1 01 62 6d20", buf, sizeof(buf)); /* "m " */
    CHECK_EQ(iog_hello_decode(buf, hl, &who, &resp, &q, &has), -EBADMSG);
    hl = unit_hex("a2 01 62 6d31 02 62 6d32", buf, sizeof(buf)); /* a responder, no proof */
    CHECK_EQ(iog_hello_decode(buf, hl, &who, &resp, &q, &has), -EBADMSG);
    hl = unit_hex("a2 02 62 6d32 03 83 4c a0a1a2a3a4a5a6a7a8a9aaab 01 50 00000000000000000000000000000000",
                  buf, sizeof(buf)); /* no initiator */
    CHECK_EQ(iog_hello_decode(buf, hl, &who, &resp, &q, &has), -EBADMSG);
    memcpy(buf, SV_HELLO, sizeof(SV_HELLO));
    buf[11] = 0x4b; /* a nonce of 11 bytes */
    CHECK_EQ(iog_hello_decode(buf, sizeof(SV_HELLO), &who, &resp, &q, &has), -EBADMSG);
    memcpy(buf, SV_HELLO, sizeof(SV_HELLO));
    buf[10] = 0x82; /* a proof of 2 items */
    CHECK_EQ(iog_hello_decode(buf, sizeof(SV_HELLO), &who, &resp, &q, &has), -EBADMSG);

    /* M2 forwards the proof in its /session; verify-req and leave-req take none */
    n = iog_peer_req_encode(&m1, &p, NULL, 0, buf, sizeof(buf));
    CHECK_EQ(n, sizeof(SV_SESSION_PT_PROOF));
    CHECK_MEM(buf, SV_SESSION_PT_PROOF, sizeof(SV_SESSION_PT_PROOF));
    const uint8_t *e;
    size_t el;
    CHECK_EQ(iog_peer_req_decode(buf, (size_t)n, &who, &q, &has, &e, &el), 0);
    CHECK(has && iog_id_eq(&who, "m1", 2) && memcmp(q.tag, p.tag, 16) == 0 && e == NULL);
    CHECK_EQ(iog_peer_req_decode(buf, (size_t)n, &who, NULL, NULL, &e, &el), -EBADMSG);
    CHECK_EQ(iog_peer_req_encode(NULL, &p, NULL, 0, buf, sizeof(buf)), -EINVAL);
}

static void test_m2m(void)
{
    static iog_m2m_t a, b;
    uint8_t out[100], back[100];
    CHECK_EQ(iog_m2m_init(&a, SV_SK, SV_SID, 1800000000, &m1, &m2), 0);
    CHECK_MEM(a.tx_key, SV_M2M_KEY_M1, 16);
    CHECK_MEM(a.tx_iv, SV_M2M_IV_M1, 12);
    int n = iog_m2m_seal(&a, &m1, (const uint8_t *)"hello m2", 8, out, sizeof(out));
    CHECK_EQ(n, sizeof(SV_M2M_1TO2));
    CHECK_MEM(out, SV_M2M_1TO2, sizeof(SV_M2M_1TO2));
    CHECK_EQ(a.seq, 1);

    CHECK_EQ(iog_m2m_open(&a, &m1, SV_M2M_2TO1, sizeof(SV_M2M_2TO1), back, sizeof(back)), 2);
    CHECK_MEM(back, "ok", 2);
    CHECK_EQ(iog_m2m_open(&a, &m1, SV_M2M_2TO1, sizeof(SV_M2M_2TO1), back, sizeof(back)),
             -EALREADY);

    /* the responder's side */
    CHECK_EQ(iog_m2m_init(&b, SV_SK, SV_SID, 1800000000, &m2, &m1), 0);
    CHECK_EQ(iog_m2m_open(&b, &m2, SV_M2M_1TO2, sizeof(SV_M2M_1TO2), back, sizeof(back)), 8);
    CHECK_MEM(back, "hello m2", 8);
    /* m1 cannot read its own message back as if from m2 */
    CHECK_EQ(iog_m2m_open(&a, &m1, SV_M2M_1TO2, sizeof(SV_M2M_1TO2), back, sizeof(back)),
             -EACCES);
    /* a long exchange (m2 already used seq 3, so it goes on from 4) */
    b.seq = 4;
    for (int i = 0; i < 100; i++) {
        char msg[16];
        int ml = snprintf(msg, sizeof(msg), "msg %d", i);
        n = iog_m2m_seal(&b, &m2, (const uint8_t *)msg, (size_t)ml, out, sizeof(out));
        CHECK_EQ(iog_m2m_open(&a, &m1, out, (size_t)n, back, sizeof(back)), ml);
    }
    /* another session's key does not open */
    uint8_t sk2[16];
    memcpy(sk2, SV_SK, 16);
    sk2[0] ^= 1;
    iog_m2m_init(&b, sk2, SV_SID, 1800000000, &m2, &m1);
    CHECK_EQ(iog_m2m_open(&b, &m2, SV_M2M_1TO2, sizeof(SV_M2M_1TO2), back, sizeof(back)), -EACCES);
    CHECK_EQ(iog_m2m_open(&b, &m2, SV_M2M_1TO2, 20, back, sizeof(back)), -EBADMSG);
}

static void test_replay(void)
{
    iog_replay_t w;
    iog_replay_init(&w);
    CHECK_EQ(iog_replay_update(&w, 0), 0);
    CHECK_EQ(iog_replay_update(&w, 0), -EALREADY);
    CHECK_EQ(iog_replay_update(&w, 5), 0);
    CHECK_EQ(iog_replay_update(&w, 3), 0);
    CHECK_EQ(iog_replay_update(&w, 3), -EALREADY);
    CHECK_EQ(iog_replay_update(&w, 68), 0);
    CHECK_EQ(iog_replay_check(&w, 5), -EALREADY); /* 63 behind: inside, seen */
    CHECK_EQ(iog_replay_check(&w, 4), -ESTALE);   /* 64 behind: outside */
    CHECK_EQ(iog_replay_update(&w, 6), 0);
    CHECK_EQ(iog_replay_update(&w, 6), -EALREADY);
    CHECK_EQ(iog_replay_update(&w, 1000), 0);
    CHECK_EQ(iog_replay_update(&w, 68), -ESTALE);
    CHECK_EQ(iog_replay_update(&w, 999), 0);
    CHECK_EQ(iog_replay_update(&w, IOG_SEQ_MAX), 0);
}

/* ledger-head {1: 5, 2: hash, 3: time_ms} signed with "iotguard head" (PROTOCOL.md §6) */
static void test_ledger_head(void)
{
    uint8_t payload[64], out[200], hash[32], other[65], k2[32] = { [31] = 3 };
    uint64_t h, t;
    size_t pl = unit_hex("a3 0105 025820 1111111111111111111111111111111111111111111111111111111111111111"
                         "03 1b0000018bcfe5687b", payload, sizeof(payload));
    int n = iog_sign1_encode(dev.priv, (const uint8_t *)"ch", 2, IOG_AAD_HEAD, payload, pl, out, sizeof(out));
    CHECK(n > 0);
    CHECK_EQ(iog_ledger_head_verify(out, (size_t)n, dev.pub, &h, hash, &t), 0);
    CHECK_EQ(h, 5);
    CHECK_EQ(t, 1700000000123ll);
    CHECK_EQ(hash[31], 0x11);
    iog_p256_public(k2, other);
    CHECK_EQ(iog_ledger_head_verify(out, (size_t)n, other, &h, hash, &t), -EACCES); /* another CH */
    n = iog_sign1_encode(dev.priv, (const uint8_t *)"ch", 2, IOG_AAD_CLUSTER, payload, pl, out, sizeof(out));
    CHECK_EQ(iog_ledger_head_verify(out, (size_t)n, dev.pub, &h, hash, &t), -EACCES); /* another AAD */
    payload[0] = 0xa2; /* without time_ms */
    n = iog_sign1_encode(dev.priv, (const uint8_t *)"ch", 2, IOG_AAD_HEAD, payload, pl - 10, out, sizeof(out));
    CHECK_EQ(iog_ledger_head_verify(out, (size_t)n, dev.pub, &h, hash, &t), -EBADMSG);
}

void test_proto(void)
{
    setup();
    test_ids();
    test_cose_key();
    test_thumbprint();
    test_sign1();
    test_ledger_head();
    test_join();
    test_protected();
    test_piv_nonce();
    test_tickets();
    test_talk();
    test_m2m();
    test_replay();
}
