/*
 * The device as a server (iog_device_serve()): what datagrams from the
 * network make its state machines do — the address verification of /talk
 * (its Echo challenge, before any check of a hello), the hello memory of /talk and its
 * freshness check, its sessions (their end without a clock, their slots),
 * its forwarding while the CH is unreachable, the duplicate cache of its
 * CoAP endpoint and the size of its answers — against a scripted CH that
 * answers its protected /session.
 */
#include <errno.h>

#include "iog_cbor.h"
#include "unit.h"

static iog_device_t *dev;
static iog_platform_t plat;   /* unit_net's, with the clock of @p clock_s */
static uint64_t clock_s;      /* unix_s(): 0 is a device without a clock */
static unsigned ch_sessions;  /* /session requests the CH received */
static iog_coap_msg_t answer UNIT_BIG; /* the last answer to a peer, parsed from @p answer_buf */
static uint8_t answer_buf[IOG_COAP_SRV_PDU] UNIT_BIG;
static size_t answer_len; /* its length */
static const iog_addr_t stranger = { 2, { 127, 0, 0, 3 }, 40000 };

static uint64_t test_unix(void *ctx)
{
    (void)ctx;
    return clock_s;
}

/*
 * What the CH answers a /session: a warning about the peer, or with
 * ch_grants a session; a proof whose nonce starts 0xBA it refuses.
 */
static int ch_grants;
static const uint8_t grant_sk[16] = { 0x61, 0x62, 0x63 }, grant_sid[16] = { 0x41, 0x42 };

/*
 * A grant (PROTOCOL.md §4.4) of session grant_sid to the device, responder
 * to @p peer, until 1800000000: {1: sid, 2: expires, 3: initiator,
 * 4: responder, 5: recipient, 6: [h'A10101', {5: iv}, Sk sealed under the
 * device's ticket key]}.
 */
static size_t grant(const iog_id_t *peer, uint8_t *out, size_t cap)
{
    const iog_id_t *me = &dev->me.id;
    return unit_ticket(dev->mem.keys.ticket, &dev->mem.ch.cluster, grant_sid, 1800000000, peer, me, me, grant_sk,
                       out, cap);
}

/*
 * The CH: answers each protected /session that forwards a talk proof,
 * sealed under the member's response key: with ch_grants, a session
 * ({1: grant, 2: the peer's ticket}, here the grant's bytes again); else a
 * warning about the peer ({3: {1: peer, 2: left}}). Either way it accepted
 * the proof, so the listener keeps its claim. (A response is sealed as a
 * request under the response key with its unprotected header emptied: the
 * header is not in the AAD.)
 */
static int ch_silent;     /* 1: the CH is unreachable: it answers nothing */
static unsigned ch_sent;  /* datagrams the device sent its CH */

/*
 * How the CH refuses each protected request it opened (0: it answers): as
 * unit_refusal() does in mode ch_refuses, with ch_refusal_code and the
 * diagnostic ch_refusal_text.
 */
static int ch_refuses;
static uint8_t ch_refusal_code;
static const char *ch_refusal_text;
static const uint8_t *ch_refusal_echo; /* an Echo option in the refusal (NULL: none) */
static size_t ch_refusal_echo_len;

static void fake_ch(fake_net_t *nt, const iog_addr_t *to, const uint8_t *buf, size_t len)
{
    iog_coap_msg_t req;
    iog_id_t kid;
    uint64_t seq;
    iog_enc0_t x;
    iog_coap_pkt_t p;
    iog_cbor_enc_t e;
    uint8_t pt[IOG_MAX_PAYLOAD], sealed[400], out[440];
    if (memcmp(to, &unit_server_addr, sizeof(*to)) != 0) {
        if (len <= sizeof(answer_buf)) { /* an answer to a peer */
            memcpy(answer_buf, buf, len);
            answer_len = len;
            CHECK_EQ(iog_coap_parse(&answer, answer_buf, len), 0);
        }
        return;
    }
    ch_sent++;
    if (ch_silent) {
        return;
    }
    int n = iog_coap_parse(&req, buf, len) || req.type != IOG_COAP_CON ? -EINVAL : 0;
    const char *path = n == 0 && iog_coap_path_is(&req, "/session") ? IOG_PATH_SESSION
                       : n == 0 && iog_coap_path_is(&req, "/verify") ? IOG_PATH_VERIFY
                       : n == 0 && iog_coap_path_is(&req, "/leave")  ? IOG_PATH_LEAVE
                                                                       : NULL;
    n = path ? iog_prot_req_open(&dev->mem, path, req.payload, req.payload_len, &kid, &seq, pt, sizeof(pt))
             : -EINVAL;
    if (n >= 0 && ch_refuses) {
        ch_sessions += strcmp(path, IOG_PATH_SESSION) == 0;
        n = unit_refusal(&dev->mem, ch_refuses, ch_refusal_code, ch_refusal_text, ch_refusal_echo, ch_refusal_echo_len, &req, &kid, seq, path, out,
                         sizeof(out));
        fake_net_push(nt, &unit_server_addr, nt->now + 5, out, (size_t)n);
        return;
    }
    iog_id_t peer;
    iog_talk_proof_t proof;
    int has_proof;
    const uint8_t *echo;
    size_t el;
    if (n < 0 || strcmp(path, IOG_PATH_SESSION) != 0 ||
        iog_peer_req_decode(pt, (size_t)n, &peer, &proof, &has_proof, &echo, &el) || !has_proof) {
        return;
    }
    ch_sessions++;
    if (proof.nonce[0] == 0xBA) { /* made up: 4.01 bad talk proof, nothing granted */
        iog_coap_build(&p, out, sizeof(out), IOG_COAP_ACK, IOG_COAP_UNAUTHORIZED, req.mid, req.token, req.tkl);
        iog_coap_add_opt_uint(&p, IOG_COAP_OPT_CONTENT_FORMAT, IOG_CF_TEXT);
        iog_coap_add_payload(&p, "bad talk proof", 14);
        fake_net_push(nt, &unit_server_addr, nt->now + 5, out, (size_t)iog_coap_finish(&p));
        return;
    }
    iog_cbor_enc_init(&e, pt, sizeof(pt));
    if (ch_grants) {
        uint8_t g[200];
        size_t gl = grant(&peer, g, sizeof(g));
        iog_cbor_put_map(&e, 2);
        iog_cbor_put_uint(&e, 1);
        iog_cbor_put_raw(&e, g, gl);
        iog_cbor_put_uint(&e, 2);
        iog_cbor_put_raw(&e, g, gl);
    }
    else {
        iog_cbor_put_map(&e, 1);
        iog_cbor_put_uint(&e, 3);
        iog_cbor_put_map(&e, 2);
        iog_cbor_put_uint(&e, 1);
        iog_cbor_put_tstr(&e, peer.s, peer.len);
        iog_cbor_put_uint(&e, 2);
        iog_cbor_put_uint(&e, IOG_STATUS_LEFT);
    }
    iog_member_t as_resp = dev->mem;
    memcpy(as_resp.keys.req, dev->mem.keys.resp, sizeof(as_resp.keys.req));
    int sl = iog_prot_req_seal(&as_resp, &kid, seq, IOG_PATH_SESSION, pt, (size_t)iog_cbor_enc_finish(&e),
                               sealed, sizeof(sealed));
    CHECK(sl > 0 && iog_enc0_parse(sealed, (size_t)sl, &x) == 0);
    iog_cbor_enc_init(&e, pt, sizeof(pt));
    iog_cbor_put_raw(&e, "\x83\x43\xA1\x01\x01\xA0", 6); /* [h'A10101', {}, */
    iog_cbor_put_bstr(&e, x.ct, x.ct_len);
    iog_coap_build(&p, out, sizeof(out), IOG_COAP_ACK, IOG_COAP_CONTENT, req.mid, req.token, req.tkl);
    iog_coap_add_opt_uint(&p, IOG_COAP_OPT_CONTENT_FORMAT, IOG_CF_COSE_ENCRYPT0);
    iog_coap_add_payload(&p, pt, (size_t)iog_cbor_enc_finish(&e));
    fake_net_push(nt, &unit_server_addr, nt->now + 5, out, (size_t)iog_coap_finish(&p));
}

/* A joined device "c-one" of cluster "lab-1", serving on the fake network, with the clock @p now. */
static void setup(uint64_t now)
{
    iog_identity_t me;
    memset(&me, 0, sizeof(me));
    iog_id_set(&me.id, "c-one", 5);
    fake_net_init(&unit_net);
    plat = unit_net.plat;
    plat.unix_s = test_unix;
    clock_s = now;
    dev = unit_board_device();
    iog_device_init(dev, &plat, &unit_server_addr, &me);
    iog_id_set(&dev->mem.ch.cluster, "lab-1", 5);
    memset(&dev->mem.keys, 0x5a, sizeof(dev->mem.keys));
    dev->mem.expires = 1800000000;
    dev->joined = 1;
    unit_net.on_send = fake_ch;
    ch_sessions = 0;
    ch_grants = 0;
    ch_silent = 0;
    ch_sent = 0;
    ch_refuses = 0;
    ch_refusal_code = IOG_COAP_FORBIDDEN;
    ch_refusal_text = "not a member: left";
    ch_refusal_echo = NULL;
    ch_refusal_echo_len = 0;
}

/*
 * Delivers a CON POST to @p path from @p from with message ID @p mid, with
 * the Echo option @p echo (NULL: none), and serves it. @return the request's length.
 */
static size_t deliver_echo(const iog_addr_t *from, uint16_t mid, const char *path, int cf,
                           const uint8_t *payload, size_t len, const uint8_t *echo, size_t echo_len)
{
    uint8_t b[IOG_COAP_SRV_PDU];
    iog_coap_pkt_t p;
    iog_coap_build(&p, b, sizeof(b), IOG_COAP_CON, IOG_COAP_POST, mid, (const uint8_t *)"\x7a\x7b", 2);
    iog_coap_add_path(&p, path);
    iog_coap_add_opt_uint(&p, IOG_COAP_OPT_CONTENT_FORMAT, (uint32_t)cf);
    if (echo) {
        iog_coap_add_opt(&p, IOG_COAP_OPT_ECHO, echo, echo_len);
    }
    iog_coap_add_payload(&p, payload, len);
    int n = iog_coap_finish(&p);
    CHECK(n > 0);
    memset(&answer, 0, sizeof(answer));
    answer_len = 0;
    fake_net_push(&unit_net, from, unit_net.now, b, (size_t)n);
    CHECK_EQ(iog_device_serve(dev, 100), 0);
    return (size_t)n;
}

/* Delivers a CON POST to @p path from @p from with message ID @p mid and serves it. */
static void deliver(const iog_addr_t *from, uint16_t mid, const char *path, int cf, const uint8_t *payload,
                    size_t len)
{
    deliver_echo(from, mid, path, cf, payload, len, NULL, 0);
}

static int answer_is(uint8_t code, const char *text)
{
    size_t n = strlen(text);
    return answer.code == code && answer.payload_len == n && memcmp(answer.payload, text, n) == 0;
}

/*
 * Whether the last answer is the challenge of address verification
 * (PROTOCOL.md §2): 4.01 "echo required" with an Echo option, at most three
 * times the request of @p req_len bytes; its Echo is copied to @p echo
 * (IOG_TALK_ECHO_LEN bytes).
 */
static int challenged(size_t req_len, uint8_t echo[IOG_TALK_ECHO_LEN])
{
    const iog_coap_opt_t *o = iog_coap_opt(&answer, IOG_COAP_OPT_ECHO);
    if (!answer_is(IOG_COAP_UNAUTHORIZED, "echo required") || !o || o->len != IOG_TALK_ECHO_LEN ||
        answer_len > 3 * req_len) {
        return 0;
    }
    memcpy(echo, o->val, IOG_TALK_ECHO_LEN);
    return 1;
}

/*
 * POSTs @p len bytes to /talk from @p from as a peer does: first without an
 * Echo (message ID @p mid + 0x4000), which must draw the challenge and reach
 * neither the hello checks nor the CH; then again with the challenge's Echo
 * (message ID @p mid), whose answer is left in @p answer.
 */
static void talk_verified(const iog_addr_t *from, uint16_t mid, const uint8_t *payload, size_t len)
{
    uint8_t echo[IOG_TALK_ECHO_LEN];
    unsigned sent = ch_sent, warnings = dev->warnings;
    size_t n = deliver_echo(from, (uint16_t)(mid + 0x4000), "/talk", IOG_CF_CBOR, payload, len, NULL, 0);
    CHECK(challenged(n, echo));
    CHECK_EQ(ch_sent, sent);
    CHECK_EQ(dev->warnings, warnings);
    deliver_echo(from, mid, "/talk", IOG_CF_CBOR, payload, len, echo, sizeof(echo));
}

/* A hello from @p name at @p time, its nonce starting @p n0 (one tag per time): @return its length in @p b. */
static size_t hello_bytes(const char *name, uint64_t time, uint8_t n0, uint8_t *b, size_t cap)
{
    iog_id_t m1, me;
    iog_talk_proof_t proof;
    iog_id_set(&m1, name, strlen(name));
    iog_id_set(&me, "c-one", 5);
    memset(proof.nonce, 0x17, sizeof(proof.nonce));
    proof.nonce[0] = n0;
    memset(proof.tag, 0x29, sizeof(proof.tag));
    memcpy(proof.tag, &time, sizeof(time)); /* a proof per time */
    proof.time = time;
    int n = iog_hello_encode(&m1, &me, &proof, b, cap);
    CHECK(n > 0);
    return n > 0 ? (size_t)n : 0;
}

/*
 * A hello from @p from whose proof was made at @p time, its nonce starting
 * @p n0 (one tag per time), from a peer that answers the Echo challenge.
 */
static void hello_from(const char *from, uint16_t mid, uint64_t time, uint8_t n0)
{
    uint8_t b[200];
    talk_verified(&unit_peer_addr, mid, b, hello_bytes(from, time, n0, b, sizeof(b)));
}

/* A hello from "m1" at @p time, whose proof the CH accepts. */
static void hello(uint16_t mid, uint64_t time)
{
    hello_from("m1", mid, time, 0x17);
}

/*
 * A listener without a clock remembers a hello it forwarded whatever its
 * proof's time: one made at 2^64 - 60 (its last fresh second is 2^64 - 1)
 * is refused when replayed, not forwarded to the CH again.
 */
static void test_hello_memory_clockless(void)
{
    static const uint64_t times[] = { 1700000000, UINT64_MAX - 60, UINT64_MAX - 59, UINT64_MAX };
    for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
        setup(0);
        hello(1, times[i]);
        CHECK_EQ(ch_sessions, 1);
        CHECK(answer_is(IOG_COAP_FORBIDDEN, "warning: left"));
        hello(2, times[i]); /* replayed: another message ID */
        CHECK_EQ(ch_sessions, 1);
        CHECK(answer_is(IOG_COAP_UNAUTHORIZED, "bad talk proof: replay"));
    }
    unit_net.on_send = NULL;
}

/*
 * A listener's clock is a lower bound of now (the board's: the CH's signed
 * time, counted on; behind after a reset): a proof made after it is left to
 * the CH, which judges it on its own clock; one more than 60 s before it is
 * stale whatever the time now, refused without asking the CH.
 */
static void test_hello_time_lower_bound(void)
{
    setup(1700000000);
    hello(1, 1700000000 + 3600); /* the listener reset an hour ago: its clock is an hour behind */
    CHECK_EQ(ch_sessions, 1);
    CHECK(answer_is(IOG_COAP_FORBIDDEN, "warning: left"));
    hello(2, 1700000000 + 60);
    CHECK_EQ(ch_sessions, 2);
    hello(3, 1700000000 - 60);
    CHECK_EQ(ch_sessions, 3);
    hello(4, 1700000000 - 61);
    CHECK_EQ(ch_sessions, 3);
    CHECK(answer_is(IOG_COAP_UNAUTHORIZED, "bad talk proof: stale"));
    hello(5, 0);
    CHECK_EQ(ch_sessions, 3);
    CHECK(answer_is(IOG_COAP_UNAUTHORIZED, "bad talk proof: stale"));
    unit_net.on_send = NULL;
}

/* m1's message @p text in its session, as m1 seals it: the answer's code. */
static uint8_t m2m_from_m1(iog_m2m_t *m1_side, uint16_t mid, const char *text)
{
    iog_id_t m1;
    uint8_t msg[120];
    iog_id_set(&m1, "m1", 2);
    int n = iog_m2m_seal(m1_side, &m1, (const uint8_t *)text, strlen(text), msg, sizeof(msg));
    CHECK(n > 0);
    deliver(&unit_peer_addr, mid, "/m2m", IOG_CF_COSE_ENCRYPT0, msg, (size_t)n);
    return answer.code;
}

/*
 * A session a hello made: it carries messages until it ends — at the
 * ticket's expiry on a clock or, without one, IOG_SESSION_LOCAL_S after it
 * was made (the CH's session lifetime): the CH's expiry is the end of a
 * peer that left or was revoked. (Before, a listener without a clock kept
 * every session until another one took its slot.)
 */
static void test_session_ends(void)
{
    static iog_m2m_t m1_side UNIT_BIG;
    iog_id_t m1, me;
    iog_id_set(&m1, "m1", 2);
    iog_id_set(&me, "c-one", 5);
    for (int clocked = 0; clocked < 2; clocked++) {
        setup(clocked ? 1700000000 : 0);
        ch_grants = 1;
        hello(1, 1700000000);
        CHECK_EQ(ch_sessions, 1);
        CHECK_EQ(answer.code, IOG_COAP_CONTENT);
        CHECK_EQ(iog_m2m_init(&m1_side, grant_sk, grant_sid, 1800000000, &m1, &me), 0);
        CHECK_EQ(m2m_from_m1(&m1_side, 2, "one"), IOG_COAP_CHANGED);
        unit_net.now += IOG_SESSION_LOCAL_S * 1000u - 200u;
        CHECK_EQ(m2m_from_m1(&m1_side, 3, "two"), IOG_COAP_CHANGED);
        unit_net.now += 200u;
        CHECK_EQ(m2m_from_m1(&m1_side, 4, "three"), clocked ? IOG_COAP_CHANGED : IOG_COAP_UNAUTHORIZED);
        CHECK_EQ(dev->messages, clocked ? 3 : 2);
        if (clocked) {
            clock_s = 1800000000; /* the ticket's expiry */
            CHECK_EQ(m2m_from_m1(&m1_side, 5, "four"), IOG_COAP_UNAUTHORIZED);
        }
    }
    unit_net.on_send = NULL;
}

/*
 * Hellos whose proofs the CH refuses — naming the peer of a live session,
 * or new peers while every slot is taken — touch no session: each live one
 * still carries its peer's messages. One the CH accepts takes the slot of
 * the session that ends first.
 */
static void test_refused_hello_evicts_nothing(void)
{
    static iog_m2m_t sides[IOG_MAX_SESSIONS] UNIT_BIG;
    static const char *const peers[IOG_MAX_SESSIONS] = { "m1", "m2", "m3", "m4" };
    iog_id_t me, id;
    uint8_t sk[16] = { 9 }, sid[16] = { 8 }, msg[120];
    setup(1700000000);
    iog_id_set(&me, "c-one", 5);
    for (unsigned i = 0; i < IOG_MAX_SESSIONS; i++) {
        iog_id_set(&id, peers[i], 2);
        sid[1] = (uint8_t)i;
        CHECK_EQ(iog_m2m_init(&dev->sessions[i], sk, sid, 1800000000 + i, &me, &id), 0);
        CHECK_EQ(iog_m2m_init(&sides[i], sk, sid, 1800000000 + i, &id, &me), 0);
    }
    uint16_t mid = 100;
    for (unsigned i = 0; i < 2 * IOG_MAX_SESSIONS; i++, mid++) {
        unit_net.now += 1000; /* the forwarding budget earns a token */
        char name[4] = { 'x', (char)('0' + i), 0, 0 };
        hello_from(i & 1 ? name : peers[i / 2], mid, 1700000000 + i, 0xBA);
        CHECK(answer_is(IOG_COAP_UNAUTHORIZED, "bad talk proof"));
    }
    CHECK_EQ(ch_sessions, 2 * IOG_MAX_SESSIONS);
    for (unsigned i = 0; i < IOG_MAX_SESSIONS; i++, mid++) {
        iog_id_set(&id, peers[i], 2);
        int n = iog_m2m_seal(&sides[i], &id, (const uint8_t *)"still", 5, msg, sizeof(msg));
        deliver(&unit_peer_addr, mid, "/m2m", IOG_CF_COSE_ENCRYPT0, msg, (size_t)n);
        CHECK_EQ(answer.code, IOG_COAP_CHANGED);
    }
    CHECK_EQ(dev->messages, IOG_MAX_SESSIONS);
    /* a member's accepted hello: the session with m1, which ends first, makes room */
    ch_grants = 1;
    unit_net.now += 1000;
    hello_from("m5", mid++, 1700000000, 0x17);
    CHECK_EQ(answer.code, IOG_COAP_CONTENT);
    CHECK(iog_id_eq(&dev->sessions[0].peer, "m5", 2));
    CHECK(iog_id_eq(&dev->sessions[1].peer, "m2", 2));
    unit_net.on_send = NULL;
}

/*
 * A peer's /m2m or /talk whose answer was lost is sent again (same message
 * ID): it gets the answer it missed from the duplicate cache, even after a
 * stranger's requests, which change nothing, and whose answers are not kept.
 * (Before, two of them pushed both answers out: 4.01 "replay" to each.)
 */
static void test_dedup_keeps_what_changed_state(void)
{
    iog_id_t m1, me;
    iog_m2m_t *s = &dev->sessions[0];
    static iog_m2m_t peer_side UNIT_BIG;
    uint8_t sk[16], sid[16], msg[100], first[IOG_COAP_SRV_PDU];
    setup(1700000000);
    iog_id_set(&m1, "m1", 2);
    iog_id_set(&me, "c-one", 5);
    memset(sk, 0x33, sizeof(sk));
    memset(sid, 0x44, sizeof(sid));
    CHECK_EQ(iog_m2m_init(s, sk, sid, 1800000000, &me, &m1), 0);
    CHECK_EQ(iog_m2m_init(&peer_side, sk, sid, 1800000000, &m1, &me), 0);
    int n = iog_m2m_seal(&peer_side, &m1, (const uint8_t *)"reading 1", 9, msg, sizeof(msg));
    CHECK(n > 0);
    deliver(&unit_peer_addr, 10, "/m2m", IOG_CF_COSE_ENCRYPT0, msg, (size_t)n);
    CHECK_EQ(answer.code, IOG_COAP_CHANGED);
    CHECK_EQ(dev->messages, 1);
    size_t first_len = (size_t)(answer.payload - answer_buf) + answer.payload_len;
    memcpy(first, answer_buf, first_len);
    hello(11, 1700000000); /* accepted by the CH, which warns about m1: the hello stays claimed */
    CHECK(answer_is(IOG_COAP_FORBIDDEN, "warning: left"));
    /* a stranger's requests, each answered: they change nothing */
    for (uint16_t mid = 1; mid <= 2 * IOG_COAP_DEDUP_ENTRIES; mid++) {
        deliver(&stranger, mid, mid & 1 ? "/nothing" : "/m2m", IOG_CF_COSE_ENCRYPT0, msg, 3);
        CHECK(answer.code == IOG_COAP_NOT_FOUND || answer.code == IOG_COAP_BAD_REQUEST);
    }
    /* the peer's retransmission: the answer it missed, not "4.01 replay" */
    deliver(&unit_peer_addr, 10, "/m2m", IOG_CF_COSE_ENCRYPT0, msg, (size_t)n);
    CHECK_EQ(answer.code, IOG_COAP_CHANGED);
    CHECK_MEM(answer_buf, first, first_len);
    CHECK_EQ(dev->messages, 1);
    hello(11, 1700000000);
    CHECK(answer_is(IOG_COAP_FORBIDDEN, "warning: left"));
    CHECK_EQ(ch_sessions, 1);
    /* the same message ID with another token is another request (a peer restarted, its IDs wrapped) */
    n = iog_m2m_seal(&peer_side, &m1, (const uint8_t *)"reading 2", 9, msg, sizeof(msg));
    uint8_t b[IOG_COAP_SRV_PDU];
    iog_coap_pkt_t p;
    iog_coap_build(&p, b, sizeof(b), IOG_COAP_CON, IOG_COAP_POST, 10, (const uint8_t *)"\x01\x02\x03", 3);
    iog_coap_add_path(&p, "/m2m");
    iog_coap_add_opt_uint(&p, IOG_COAP_OPT_CONTENT_FORMAT, IOG_CF_COSE_ENCRYPT0);
    iog_coap_add_payload(&p, msg, (size_t)n);
    fake_net_push(&unit_net, &unit_peer_addr, unit_net.now, b, (size_t)iog_coap_finish(&p));
    CHECK_EQ(iog_device_serve(dev, 100), 0);
    CHECK_EQ(answer.code, IOG_COAP_CHANGED);
    CHECK_EQ(answer.tkl, 3);
    CHECK_EQ(dev->messages, 2);
    unit_net.on_send = NULL;
}

/*
 * While the CH is unreachable, each forwarded hello holds the listener in
 * its /session until CoAP gives up (up to 93 s), serving no one. After one
 * such, hellos are answered 5.03 at once, unforwarded, for 30 s, then 60 s,
 * ... (at most 10 min) after each unanswered forward, until the CH answers
 * one: a stranger's hello (a fresh time, any tag) every 93 s no longer keeps
 * the listener from its peers' messages for the whole outage.
 */
static void test_ch_outage(void)
{
    static iog_m2m_t m1_side UNIT_BIG;
    iog_id_t m1, me;
    uint8_t sk[16] = { 5 }, sid[16] = { 6 };
    setup(1700000000);
    iog_id_set(&m1, "m1", 2);
    iog_id_set(&me, "c-one", 5);
    CHECK_EQ(iog_m2m_init(&dev->sessions[0], sk, sid, 1800000000, &me, &m1), 0);
    CHECK_EQ(iog_m2m_init(&m1_side, sk, sid, 1800000000, &m1, &me), 0);
    ch_silent = 1;
    uint32_t t0 = unit_net.now;
    hello(1, 1700000001);
    CHECK(answer_is(IOG_COAP_UNAVAILABLE, "cluster head unavailable"));
    CHECK_EQ(ch_sent, 1u + IOG_COAP_MAX_RETRANSMIT);
    CHECK(unit_net.now - t0 >= 45000u); /* held that long */
    t0 = unit_net.now;
    static const struct {
        uint32_t after_ms; /* since the last unanswered forward ended */
        int forwarded;
    } steps[] = { { 1000, 0 }, { 29000, 0 }, { 30000, 1 }, { 59000, 0 }, { 60000, 1 } };
    uint16_t mid = 2;
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++, mid++) {
        unit_net.now = t0 + steps[i].after_ms;
        unsigned sent = ch_sent;
        hello(mid, 1700000000 + mid);
        CHECK(answer_is(IOG_COAP_UNAVAILABLE, "cluster head unavailable"));
        CHECK_EQ(ch_sent - sent, steps[i].forwarded ? 1u + IOG_COAP_MAX_RETRANSMIT : 0u);
        if (!steps[i].forwarded) {
            CHECK_EQ(unit_net.now, t0 + steps[i].after_ms); /* answered at once */
            CHECK_EQ(m2m_from_m1(&m1_side, (uint16_t)(100 + mid), "still here"), IOG_COAP_CHANGED);
        }
        t0 = steps[i].forwarded ? unit_net.now : t0;
    }
    /* the CH is back: the first hello after the pause goes through, and ends it */
    ch_silent = 0;
    unit_net.now = t0 + 120000;
    hello(mid++, 1700000100);
    CHECK(answer_is(IOG_COAP_FORBIDDEN, "warning: left"));
    hello(mid++, 1700000101);
    CHECK(answer_is(IOG_COAP_FORBIDDEN, "warning: left"));
    CHECK_EQ(ch_sessions, 2);
    unit_net.on_send = NULL;
}

/* Delivers @p len raw bytes from the stranger and serves them: the answer's length, 0 for none. */
static size_t raw_from_stranger(const char *hex)
{
    uint8_t b[64];
    size_t len = unit_hex(hex, b, sizeof(b));
    unsigned before = unit_net.n_sent;
    memset(&answer, 0, sizeof(answer));
    fake_net_push(&unit_net, &stranger, unit_net.now, b, len);
    CHECK_EQ(iog_device_serve(dev, 100), 0);
    return unit_net.n_sent > before ? unit_net.sent[unit_net.n_sent - 1].len : 0;
}

/*
 * To a request that changed nothing (from anyone: its source may be
 * spoofed), no answer is over three times the request (PROTOCOL.md §2): it
 * loses its diagnostic, then its option. A 4-byte CON GET drew a 22-byte
 * 4.04 "no such resource" before.
 */
static void test_answers_bounded(void)
{
    setup(1700000000);
    unit_net.n_sent = 0;
    size_t n = raw_from_stranger("40011234"); /* CON GET, no token, no path */
    CHECK(n > 0 && n <= 12);
    CHECK_EQ(answer.code, IOG_COAP_NOT_FOUND);
    CHECK_EQ(answer.mid, 0x1234);
    n = raw_from_stranger("420112357a7b"); /* with a token: kept in the answer */
    CHECK(n > 0 && n <= 18);
    CHECK_EQ(answer.code, IOG_COAP_NOT_FOUND);
    CHECK_EQ(answer.tkl, 2);
    CHECK_MEM(answer.token, "\x7a\x7b", 2);
    /* the smallest /talk (no token, Content-Format 60, no payload, 11 bytes) draws the
     * challenge, its Echo option kept whole within three times the request */
    n = raw_from_stranger("40021236b474616c6b113c");
    CHECK(n > 0 && n <= 33);
    CHECK_EQ(answer.code, IOG_COAP_UNAUTHORIZED);
    const iog_coap_opt_t *o = iog_coap_opt(&answer, IOG_COAP_OPT_ECHO);
    CHECK(o && o->len == IOG_TALK_ECHO_LEN);
    /* a hello without a proof, from a source that answers the challenge, is large
     * enough for its whole answer */
    iog_id_t m1;
    uint8_t b[16];
    iog_id_set(&m1, "m1", 2);
    iog_cbor_enc_t e;
    iog_cbor_enc_init(&e, b, sizeof(b));
    iog_cbor_put_map(&e, 1);
    iog_cbor_put_uint(&e, 1);
    iog_cbor_put_tstr(&e, m1.s, m1.len);
    talk_verified(&stranger, 7, b, (size_t)iog_cbor_enc_finish(&e));
    CHECK(answer_is(IOG_COAP_UNAUTHORIZED, "bad talk proof: missing"));
    unit_net.on_send = NULL;
}

static int no_random(void *ctx, uint8_t *buf, size_t len)
{
    (void)ctx;
    (void)buf;
    (void)len;
    return -EIO;
}

/* The Echo of a challenge to a /talk from @p from (a hello that is never checked). */
static void echo_for(const iog_addr_t *from, uint8_t echo[IOG_TALK_ECHO_LEN])
{
    uint8_t b[200];
    unsigned sessions = ch_sessions;
    size_t n = deliver_echo(from, 0x7000, "/talk", IOG_CF_CBOR, b, hello_bytes("m1", 1, 0x17, b, sizeof(b)),
                            NULL, 0);
    CHECK(challenged(n, echo));
    CHECK_EQ(ch_sessions, sessions);
}

/*
 * A hello from a source whose address the listener did not verify draws
 * 4.01 "echo required" with an Echo option (PROTOCOL.md §2, §5.1), before any
 * check of the hello: nothing goes to the CH, no warning. The same hello with
 * that Echo is served (forwarded to the CH). An Echo made for another
 * address, or the same address with another port, one more than 60 s old, one
 * from before a restart, one tampered with or cut short: challenged again,
 * nothing forwarded; so is one from an earlier turn of the millisecond clock
 * (its key is drawn anew at each wrap). A listener whose
 * random source fails answers 5.00. (Before, every hello was served at once:
 * a spoofed one drew the CH's verdict at its victim.)
 */
static void test_talk_address_verified(void)
{
    static const iog_addr_t other_port = { 2, { 127, 0, 0, 2 }, 5684 };
    uint8_t b[200], echo[IOG_TALK_ECHO_LEN], bad[IOG_TALK_ECHO_LEN];
    uint64_t t = 1700000000;
    setup(t);
    size_t hl = hello_bytes("m1", t, 0x17, b, sizeof(b));
    /* a hello without an Echo: challenged, nothing checked or forwarded */
    size_t n = deliver_echo(&unit_peer_addr, 1, "/talk", IOG_CF_CBOR, b, hl, NULL, 0);
    CHECK(challenged(n, echo));
    CHECK_EQ(ch_sent, 0);
    CHECK_EQ(dev->warnings, 0);
    /* with the Echo: forwarded to the CH, which warns about m1 */
    deliver_echo(&unit_peer_addr, 2, "/talk", IOG_CF_CBOR, b, hl, echo, sizeof(echo));
    CHECK_EQ(ch_sessions, 1);
    CHECK(answer_is(IOG_COAP_FORBIDDEN, "warning: left"));
    /* the same Echo again within 60 s: served (here the replay of the hello is refused) */
    deliver_echo(&unit_peer_addr, 3, "/talk", IOG_CF_CBOR, b, hl, echo, sizeof(echo));
    CHECK(answer_is(IOG_COAP_UNAUTHORIZED, "bad talk proof: replay"));
    CHECK_EQ(ch_sessions, 1);

    /* Echoes that do not verify unit_peer_addr: each draws a new challenge, nothing forwarded */
    unsigned sent = ch_sent;
    uint16_t mid = 10;
    hl = hello_bytes("m1", ++t, 0x17, b, sizeof(b)); /* a new hello: only the Echo can stop it */
    echo_for(&stranger, bad);                        /* another address */
    n = deliver_echo(&unit_peer_addr, mid++, "/talk", IOG_CF_CBOR, b, hl, bad, sizeof(bad));
    CHECK(challenged(n, echo));
    echo_for(&other_port, bad); /* the same address, another port */
    n = deliver_echo(&unit_peer_addr, mid++, "/talk", IOG_CF_CBOR, b, hl, bad, sizeof(bad));
    CHECK(challenged(n, echo));
    for (size_t i = 0; i < IOG_TALK_ECHO_LEN; i++) { /* a bit flipped: in the time, in the MAC */
        memcpy(bad, echo, sizeof(bad));
        bad[i] ^= 0x01;
        n = deliver_echo(&unit_peer_addr, mid++, "/talk", IOG_CF_CBOR, b, hl, bad, sizeof(bad));
        CHECK(challenged(n, bad));
    }
    n = deliver_echo(&unit_peer_addr, mid++, "/talk", IOG_CF_CBOR, b, hl, echo, sizeof(echo) - 1); /* cut short */
    CHECK(challenged(n, bad));
    n = deliver_echo(&unit_peer_addr, mid++, "/talk", IOG_CF_CBOR, b, hl, NULL, 0);
    CHECK(challenged(n, echo));
    unit_net.now += IOG_TALK_ECHO_MS + 1; /* stale */
    n = deliver_echo(&unit_peer_addr, mid++, "/talk", IOG_CF_CBOR, b, hl, echo, sizeof(echo));
    CHECK(challenged(n, bad));
    CHECK_EQ(ch_sent, sent);
    CHECK_EQ(ch_sessions, 1);
    CHECK_EQ(dev->warnings, 2); /* the warning and the replay above */
    /* 60 s old is still fresh */
    n = deliver_echo(&unit_peer_addr, mid++, "/talk", IOG_CF_CBOR, b, hl, NULL, 0);
    CHECK(challenged(n, echo));
    unit_net.now += IOG_TALK_ECHO_MS;
    deliver_echo(&unit_peer_addr, mid++, "/talk", IOG_CF_CBOR, b, hl, echo, sizeof(echo));
    CHECK_EQ(ch_sessions, 2);

    /*
     * A stamp comes round again every 2^32 ms (49.7 days of one boot): an Echo
     * fresh 30 s after it was made does not check 2^32 ms later, the listener
     * served all along (before, it did: the same stamp under the same key).
     */
    hl = hello_bytes("m1", ++t, 0x17, b, sizeof(b));
    n = deliver_echo(&unit_peer_addr, mid++, "/talk", IOG_CF_CBOR, b, hl, NULL, 0);
    CHECK(challenged(n, echo));
    unit_net.now += 30000u;
    deliver_echo(&unit_peer_addr, mid++, "/talk", IOG_CF_CBOR, b, hl, echo, sizeof(echo));
    CHECK_EQ(ch_sessions, 3);
    hl = hello_bytes("m1", ++t, 0x17, b, sizeof(b));
    for (int i = 0; i < 8; i++) { /* 8 * 2^29 ms = 2^32 ms */
        unit_net.now += 1u << 29;
        CHECK_EQ(iog_device_serve(dev, 0), -ETIMEDOUT);
    }
    n = deliver_echo(&unit_peer_addr, mid++, "/talk", IOG_CF_CBOR, b, hl, echo, sizeof(echo));
    CHECK(challenged(n, bad));
    CHECK_EQ(ch_sessions, 3);
    /* so one made just before the wrap is refused just after, and the new one serves */
    unit_net.now = 0xFFFFFFFFu - 30000u;
    n = deliver_echo(&unit_peer_addr, mid++, "/talk", IOG_CF_CBOR, b, hl, NULL, 0);
    CHECK(challenged(n, echo));
    unit_net.now += 59000u; /* past the wrap */
    n = deliver_echo(&unit_peer_addr, mid++, "/talk", IOG_CF_CBOR, b, hl, echo, sizeof(echo));
    CHECK(challenged(n, echo));
    CHECK_EQ(ch_sessions, 3);
    deliver_echo(&unit_peer_addr, mid++, "/talk", IOG_CF_CBOR, b, hl, echo, sizeof(echo));
    CHECK_EQ(ch_sessions, 4);
    /* a clock that went back (the Echo is from the future): refused */
    hl = hello_bytes("m1", ++t, 0x17, b, sizeof(b));
    n = deliver_echo(&unit_peer_addr, mid++, "/talk", IOG_CF_CBOR, b, hl, NULL, 0);
    CHECK(challenged(n, echo));
    unit_net.now -= 1000u;
    n = deliver_echo(&unit_peer_addr, mid++, "/talk", IOG_CF_CBOR, b, hl, echo, sizeof(echo));
    CHECK(challenged(n, bad));
    CHECK_EQ(ch_sessions, 4);

    /* after a restart (a new key), the Echo of the last boot is refused */
    unit_net.now += 1000u;
    n = deliver_echo(&unit_peer_addr, mid++, "/talk", IOG_CF_CBOR, b, hl, NULL, 0);
    CHECK(challenged(n, echo));
    iog_identity_t me = dev->me;
    iog_member_t mem = dev->mem;
    iog_device_init(dev, &plat, &unit_server_addr, &me);
    dev->mem = mem;
    dev->joined = 1;
    n = deliver_echo(&unit_peer_addr, mid++, "/talk", IOG_CF_CBOR, b, hl, echo, sizeof(echo));
    CHECK(challenged(n, bad));
    CHECK_EQ(ch_sessions, 4);
    deliver_echo(&unit_peer_addr, mid++, "/talk", IOG_CF_CBOR, b, hl, bad, sizeof(bad));
    CHECK_EQ(ch_sessions, 5);

    /* a listener that cannot draw its key answers 5.00, without an Echo, and forwards nothing */
    plat.random = no_random;
    iog_device_init(dev, &plat, &unit_server_addr, &me);
    dev->mem = mem;
    dev->joined = 1;
    sent = ch_sent;
    deliver_echo(&unit_peer_addr, mid++, "/talk", IOG_CF_CBOR, b, hl, bad, sizeof(bad));
    CHECK(answer_is(IOG_COAP_INTERNAL, "internal error") && !iog_coap_opt(&answer, IOG_COAP_OPT_ECHO));
    CHECK_EQ(ch_sent, sent);
    unit_net.on_send = NULL;
}

/*
 * The CH's refusal of a protected request (PROTOCOL.md §4.1): only one it
 * sealed for that very request is authentic (dev->sealed), with its
 * diagnostic as the text; a plain-text one keeps its text, not authentic;
 * one sealed for another request, or not as a refusal (a map, or an
 * answer's header), does not open. (Before, every refusal was taken as
 * text: a forged 4.03 "not a member" looked like the CH's.) A listener
 * relays the CH's sealed refusal of its /session as the text it opened.
 */
static void test_sealed_refusals(void)
{
    static const struct {
        int mode;
        const char *diag;
        uint8_t sealed;
    } cases[] = {
        { UNIT_R_SEALED, "not a member: left", 1 },
        { UNIT_R_TEXT, "not a member: left", 0 },
        { UNIT_R_OTHER_SEQ, "sealed refusal does not open", 0 },
        { UNIT_R_MAP, "sealed refusal does not open", 0 },
        { UNIT_R_ANSWER, "sealed refusal does not open", 0 },
        { UNIT_R_SEALED, "not a member: left", 1 },
    };
    static char long_text[IOG_REFUSAL_MAX + 2]; /* "not a member: xxx...", 128 bytes, then 129 */
    iog_verify_resp_t v;
    iog_id_t m1;
    setup(1700000000);
    memset(dev->mem.keys.resp, 0xa5, sizeof(dev->mem.keys.resp)); /* not the request key */
    iog_id_set(&m1, "m1", 2);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ch_refuses = cases[i].mode;
        uint64_t seq = dev->mem.seq;
        CHECK_EQ(iog_device_verify(dev, &m1, &v), -EACCES);
        CHECK_EQ(dev->mem.seq, seq + 1);
        CHECK_EQ(dev->code, IOG_COAP_FORBIDDEN);
        CHECK_EQ(dev->sealed, cases[i].sealed);
        if (strcmp(dev->diag, cases[i].diag) != 0) {
            printf("FAIL test_device.c: refusal %u: diag \"%s\", want \"%s\"\n", (unsigned)i, dev->diag,
                   cases[i].diag);
            unit_fail++;
        }
    }
    /* the longest diagnostic opens (kept to the first 79 bytes); one byte more is malformed */
    memset(long_text, 'x', IOG_REFUSAL_MAX);
    memcpy(long_text, "not a member: ", 14);
    ch_refuses = UNIT_R_SEALED;
    ch_refusal_text = long_text;
    CHECK_EQ(iog_device_verify(dev, &m1, &v), -EACCES);
    CHECK(dev->sealed && strlen(dev->diag) == sizeof(dev->diag) - 1 &&
          memcmp(dev->diag, long_text, sizeof(dev->diag) - 1) == 0);
    long_text[IOG_REFUSAL_MAX] = 'x';
    CHECK_EQ(iog_device_verify(dev, &m1, &v), -EACCES);
    CHECK(!dev->sealed && strcmp(dev->diag, "sealed refusal does not open") == 0);
    /* a leave refused, sealed: its diagnostic; the membership stays */
    uint64_t height;
    uint8_t hash[IOG_HASH_LEN];
    ch_refusal_text = "not a member: left";
    CHECK_EQ(iog_device_leave(dev, &height, hash), -EACCES);
    CHECK(dev->sealed && strcmp(dev->diag, "not a member: left") == 0);
    CHECK_EQ(dev->joined, 1);

    /* a listener: the CH's sealed refusal of its /session, relayed as the text it opened */
    hello(1, 1700000000);
    CHECK_EQ(ch_sessions, 1);
    CHECK(answer_is(IOG_COAP_FORBIDDEN, "warning: not a member: left"));
    CHECK_EQ(dev->sealed, 1);
    ch_refusal_code = IOG_COAP_UNAUTHORIZED;
    ch_refusal_text = "bad talk proof";
    hello(2, 1700000001);
    CHECK_EQ(ch_sessions, 2);
    CHECK(answer_is(IOG_COAP_UNAUTHORIZED, "bad talk proof"));
    ch_refuses = UNIT_R_TEXT; /* unsealed: relayed too (the peer could be told as much directly) */
    hello(3, 1700000002);
    CHECK(answer_is(IOG_COAP_UNAUTHORIZED, "bad talk proof"));
    CHECK_EQ(dev->sealed, 0);
    unit_net.on_send = NULL;
}

/*
 * The CH's echo challenge to a protected request (4.01 with an Echo option,
 * after it restarted: PROTOCOL.md §4.2) is followed only when it is sealed
 * for that request (§4.1) and its sealed diagnostic says "echo required"
 * (the code and options are not sealed): the request is sent again once, a
 * new number with the Echo inside. One in plain text, which anyone on the path can send
 * after the CH served the request, is not: following it would have the CH
 * serve the request twice (two sessions granted and recorded).
 */
static void test_echo_challenge_sealed_only(void)
{
    static const uint8_t echo[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    iog_verify_resp_t v;
    iog_id_t m1;
    setup(1700000000);
    memset(dev->mem.keys.resp, 0xa5, sizeof(dev->mem.keys.resp));
    iog_id_set(&m1, "m1", 2);
    ch_refusal_code = IOG_COAP_UNAUTHORIZED;
    ch_refusal_text = "echo required";
    ch_refusal_echo = echo;
    ch_refusal_echo_len = sizeof(echo);

    ch_refuses = UNIT_R_TEXT;
    uint64_t seq = dev->mem.seq;
    CHECK_EQ(iog_device_verify(dev, &m1, &v), -EACCES);
    CHECK_EQ(ch_sent, 1);
    CHECK_EQ(dev->mem.seq, seq + 1);
    CHECK(!dev->sealed && strcmp(dev->diag, "echo required") == 0);
    CHECK_EQ(dev->echo_len, 0);

    ch_refusal_text = "replay"; /* sealed, but a replay with an Echo added on the path */
    ch_refuses = UNIT_R_SEALED;
    CHECK_EQ(iog_device_verify(dev, &m1, &v), -EACCES);
    CHECK_EQ(ch_sent, 2);
    CHECK(dev->sealed && strcmp(dev->diag, "replay") == 0);

    ch_refusal_text = "echo required"; /* followed once; the CH challenging again is a refusal */
    CHECK_EQ(iog_device_verify(dev, &m1, &v), -EACCES);
    CHECK_EQ(ch_sent, 4);
    CHECK_EQ(dev->mem.seq, seq + 4);
    CHECK(dev->sealed && strcmp(dev->diag, "echo required") == 0);
    CHECK_EQ(dev->echo_len, 0);
    unit_net.on_send = NULL;
}

/* M1 asks "m2" at unit_peer_addr to talk (unit_m2 answers): what iog_device_talk() returned. */
static int talk_to_m2(iog_m2m_t **s)
{
    iog_id_t m2;
    iog_id_set(&m2, "m2", 2);
    *s = NULL;
    return iog_device_talk(dev, &unit_peer_addr, &m2, s);
}

/*
 * An initiator uses a ticket once (PROTOCOL.md §4.4, §5.1): a /talk answer
 * is not bound to the hello it answers, so someone on the path who recorded
 * one answers a later hello of the same initiator to the same peer with it,
 * its ticket unexpired. The device refuses it, "ticket already used": its
 * session slot, keys and sequence numbers untouched. (Before, it started
 * the session again, numbers from 0 under the same keys: AES-GCM nonces
 * reused.) A fresh ticket still makes a session. Its memory of used tickets
 * is full with IOG_SPENT_TICKETS unexpired ones: the next talk is refused,
 * without a hello, rather than a sid forgotten; one whose ticket expired
 * makes room. When the clock then falls back (a join sets it, behind or
 * ahead) below the forgotten one's expiry, the memory is full again: it
 * cannot come back.
 */
static void test_ticket_used_once(void)
{
    static iog_m2m_t before[IOG_MAX_SESSIONS] UNIT_BIG;
    const uint64_t t = 1700000000;
    uint8_t msg[64];
    iog_m2m_t *s, *s1;
    setup(t);
    unit_net.on_send = unit_m2_on_send;
    unit_m2_init(dev, "m2", t + 600);
    CHECK_EQ(talk_to_m2(&s1), 0);
    CHECK(s1 && s1->active && s1->seq == 0 && s1->sid[0] == 1);
    CHECK(iog_m2m_seal(s1, &dev->me.id, (const uint8_t *)"one", 3, msg, sizeof(msg)) > 0); /* a message sent */
    CHECK_EQ(s1->seq, 1);

    /* a later talk to m2, answered with the recorded answer: refused, nothing touched */
    memcpy(before, dev->sessions, sizeof(before));
    unit_m2.replay = 1;
    CHECK_EQ(talk_to_m2(&s), -EACCES);
    CHECK_EQ(unit_m2.talks, 2);
    CHECK(strcmp(dev->diag, "ticket already used") == 0);
    CHECK(s == NULL);
    CHECK_MEM(dev->sessions, before, sizeof(before));
    CHECK_EQ(s1->seq, 1);

    /* a fresh ticket: a new session with m2, in the same slot */
    unit_m2.replay = 0;
    unit_m2.sid[0] = 2;
    unit_m2.expires = t + 601;
    CHECK_EQ(talk_to_m2(&s), 0);
    CHECK(s == s1 && s->sid[0] == 2 && s->seq == 0);
    unit_m2.replay = 1; /* the first again, and the second */
    CHECK_EQ(talk_to_m2(&s), -EACCES);
    unit_m2.replay = 2;
    CHECK_EQ(talk_to_m2(&s), -EACCES);
    CHECK(s1->sid[0] == 2 && s1->active);

    /* three more: IOG_SPENT_TICKETS (5) unexpired; the third ends first */
    static const uint64_t ends[] = { t + 100, t + 602, t + 603 };
    for (unsigned i = 0; i < 3; i++) {
        unit_m2.replay = 0;
        unit_m2.sid[0] = (uint8_t)(3 + i);
        unit_m2.expires = ends[i];
        CHECK_EQ(talk_to_m2(&s), 0);
    }
    CHECK_EQ(IOG_SPENT_TICKETS, 5);
    unsigned talks = unit_m2.talks;
    unit_m2.sid[0] = 6;
    unit_m2.expires = t + 604;
    memcpy(before, dev->sessions, sizeof(before));
    CHECK_EQ(talk_to_m2(&s), -EBUSY); /* full: refused, no hello sent, nothing forgotten */
    CHECK_EQ(unit_m2.talks, talks);
    CHECK(strncmp(dev->diag, "ticket memory full", 18) == 0);
    CHECK_MEM(dev->sessions, before, sizeof(before));
    for (unsigned i = 0; i < IOG_SPENT_TICKETS; i++) {
        CHECK(dev->spent[i].expires != 0 && dev->spent[i].sid[0] == i + 1);
    }

    /* the third's ticket expires: the first is still remembered, a new one takes the third's place */
    clock_s = t + 100;
    unit_m2.replay = 1;
    CHECK_EQ(talk_to_m2(&s), -EACCES);
    CHECK(strcmp(dev->diag, "ticket already used") == 0);
    unit_m2.replay = 0;
    CHECK_EQ(talk_to_m2(&s), 0);
    CHECK(s->sid[0] == 6 && dev->spent[2].sid[0] == 6 && dev->spent[2].expires == t + 604);
    /* the clock falls back (a join's signed time): the third, forgotten, unexpired again, cannot come back */
    clock_s = t + 50;
    talks = unit_m2.talks;
    unit_m2.replay = 3;
    CHECK_EQ(talk_to_m2(&s), -EBUSY);
    CHECK_EQ(unit_m2.talks, talks);
    CHECK(s1->sid[0] == 6 && s1->seq == 0);
    unit_net.on_send = NULL;
}

/*
 * A hello naming the listener itself as initiator, with a proof anyone can
 * make up, is answered as the CH would answer its /session ("peer not a
 * member: peer is the requester") without asking it: no forward, no flash
 * write for a hello.
 */
static void test_hello_from_itself(void)
{
    setup(1700000000);
    hello_from("c-one", 1, 1700000000, 0x17);
    CHECK_EQ(ch_sent, 0);
    CHECK(answer_is(IOG_COAP_FORBIDDEN, "warning: peer not a member: peer is the requester"));
    hello(2, 1700000000); /* another initiator's is forwarded */
    CHECK_EQ(ch_sent, 1);
    unit_net.on_send = NULL;
}

void test_device_server(void)
{
    test_hello_from_itself();
    test_ticket_used_once();
    test_sealed_refusals();
    test_echo_challenge_sealed_only();
    test_answers_bounded();
    test_talk_address_verified();
    test_hello_memory_clockless();
    test_hello_time_lower_bound();
    test_session_ends();
    test_refused_hello_evicts_nothing();
    test_ch_outage();
    test_dedup_keeps_what_changed_state();
}
