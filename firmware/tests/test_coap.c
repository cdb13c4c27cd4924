/*
 * CoAP codec, client state machine and server, on real wire bytes.
 *
 * The LIBCOAP_* datagrams were captured from libcoap 4.3.1's
 * coap-client-notls sending to a local UDP socket (see test_libcoap.c, which
 * repeats the capture live on the host build), e.g.
 *   coap-client-notls -m post -t 60 -e hello -B 1 coap://127.0.0.1:46524/talk
 */
#include <errno.h>

#include "iog_coap.h"
#include "unit.h"

/* GET /.well-known/core, CON, mid 0xaf07, token 01, Uri-Port 46524 */
static const char LIBCOAP_GET_WKC[] = "4101af070172b5bc4b2e77656c6c2d6b6e6f776e04636f7265";
/* POST /talk, CON, Content-Format 60, payload "hello" */
static const char LIBCOAP_POST_TALK[] = "41025a2a0172b5bc4474616c6b113cff68656c6c6f";
/* GET /cluster, Accept 0 (empty value), Echo 0102030405 (option 252) */
static const char LIBCOAP_GET_ECHO[] = "41012dd60172b5bc47636c757374657260d5de0102030405";
/* POST /m2m, NON, 4-byte token 63616666 (what libcoap made of "-T cafe"),
 * Content-Format 16, payload "x" */
static const char LIBCOAP_NON_M2M[] = "5402461e6361666672b5bc436d326d1110ff78";

const char *const unit_libcoap[UNIT_LIBCOAP] = { LIBCOAP_GET_WKC, LIBCOAP_POST_TALK, LIBCOAP_GET_ECHO,
                                                 LIBCOAP_NON_M2M };

static void test_parse_libcoap(void)
{
    uint8_t b[128];
    iog_coap_msg_t m;
    uint32_t v;
    size_t n = unit_hex(LIBCOAP_GET_WKC, b, sizeof(b));
    CHECK_EQ(iog_coap_parse(&m, b, n), 0);
    CHECK_EQ(m.type, IOG_COAP_CON);
    CHECK_EQ(m.code, IOG_COAP_GET);
    CHECK_EQ(m.mid, 0xaf07);
    CHECK_EQ(m.tkl, 1);
    CHECK_EQ(m.token[0], 1);
    CHECK_EQ(m.nopts, 3);
    CHECK_EQ(iog_coap_opt_uint(&m, IOG_COAP_OPT_URI_PORT, &v), 0);
    CHECK_EQ(v, 46524);
    CHECK(iog_coap_path_is(&m, "/.well-known/core"));
    CHECK(!iog_coap_path_is(&m, "/.well-known"));
    CHECK(!iog_coap_path_is(&m, "/.well-known/core/x"));
    CHECK(m.payload == NULL);

    n = unit_hex(LIBCOAP_POST_TALK, b, sizeof(b));
    CHECK_EQ(iog_coap_parse(&m, b, n), 0);
    CHECK_EQ(m.code, IOG_COAP_POST);
    CHECK(iog_coap_path_is(&m, "/talk"));
    CHECK_EQ(iog_coap_opt_uint(&m, IOG_COAP_OPT_CONTENT_FORMAT, &v), 0);
    CHECK_EQ(v, 60);
    CHECK_EQ(m.payload_len, 5);
    CHECK_MEM(m.payload, "hello", 5);

    n = unit_hex(LIBCOAP_GET_ECHO, b, sizeof(b));
    CHECK_EQ(iog_coap_parse(&m, b, n), 0);
    CHECK_EQ(iog_coap_opt_uint(&m, IOG_COAP_OPT_ACCEPT, &v), 0);
    CHECK_EQ(v, 0);
    const iog_coap_opt_t *o = iog_coap_opt(&m, IOG_COAP_OPT_ECHO);
    CHECK(o != NULL);
    CHECK(o && o->len == 5 && memcmp(o->val, "\x01\x02\x03\x04\x05", 5) == 0);
    CHECK_EQ(iog_coap_opt_uint(&m, IOG_COAP_OPT_SIZE1, &v), -ENOENT);

    n = unit_hex(LIBCOAP_NON_M2M, b, sizeof(b));
    CHECK_EQ(iog_coap_parse(&m, b, n), 0);
    CHECK_EQ(m.type, IOG_COAP_NON);
    CHECK_EQ(m.tkl, 4);
    CHECK_MEM(m.token, "caff", 4);
    CHECK(iog_coap_path_is(&m, "/m2m"));
}

/* Our encoder reproduces libcoap's bytes for the same message. */
static void test_build_like_libcoap(void)
{
    uint8_t out[128], want[128];
    iog_coap_pkt_t p;
    iog_coap_build(&p, out, sizeof(out), IOG_COAP_CON, IOG_COAP_GET, 0xaf07,
                   (const uint8_t *)"\x01", 1);
    iog_coap_add_opt_uint(&p, IOG_COAP_OPT_URI_PORT, 46524);
    iog_coap_add_path(&p, "/.well-known/core");
    size_t n = unit_hex(LIBCOAP_GET_WKC, want, sizeof(want));
    CHECK_EQ(iog_coap_finish(&p), n);
    CHECK_MEM(out, want, n);

    iog_coap_build(&p, out, sizeof(out), IOG_COAP_CON, IOG_COAP_GET, 0x2dd6,
                   (const uint8_t *)"\x01", 1);
    iog_coap_add_opt_uint(&p, IOG_COAP_OPT_URI_PORT, 46524);
    iog_coap_add_path(&p, "/cluster");
    iog_coap_add_opt_uint(&p, IOG_COAP_OPT_ACCEPT, 0);
    iog_coap_add_opt(&p, IOG_COAP_OPT_ECHO, "\x01\x02\x03\x04\x05", 5);
    n = unit_hex(LIBCOAP_GET_ECHO, want, sizeof(want));
    CHECK_EQ(iog_coap_finish(&p), n);
    CHECK_MEM(out, want, n);

    iog_coap_build(&p, out, sizeof(out), IOG_COAP_CON, IOG_COAP_POST, 0x5a2a,
                   (const uint8_t *)"\x01", 1);
    iog_coap_add_opt_uint(&p, IOG_COAP_OPT_URI_PORT, 46524);
    iog_coap_add_path(&p, "/talk");
    iog_coap_add_opt_uint(&p, IOG_COAP_OPT_CONTENT_FORMAT, 60);
    iog_coap_add_payload(&p, "hello", 5);
    n = unit_hex(LIBCOAP_POST_TALK, want, sizeof(want));
    CHECK_EQ(iog_coap_finish(&p), n);
    CHECK_MEM(out, want, n);

    /* options must not go backwards; 269+ deltas use the 2-byte extension */
    iog_coap_build(&p, out, sizeof(out), IOG_COAP_CON, IOG_COAP_GET, 1, NULL, 0);
    iog_coap_add_opt_uint(&p, IOG_COAP_OPT_ACCEPT, 0);
    iog_coap_add_opt_uint(&p, IOG_COAP_OPT_CONTENT_FORMAT, 0);
    CHECK_EQ(iog_coap_finish(&p), -EINVAL);
    iog_coap_build(&p, out, sizeof(out), IOG_COAP_CON, IOG_COAP_GET, 1, NULL, 0);
    iog_coap_add_opt(&p, 2000, "a", 1);
    n = (size_t)iog_coap_finish(&p);
    CHECK_EQ(n, 8);
    CHECK_EQ(out[4], 0xE1);
    iog_coap_msg_t m;
    CHECK_EQ(iog_coap_parse(&m, out, n), 0);
    CHECK_EQ(m.opts[0].num, 2000);
}

static void bad(const char *hex, int want)
{
    uint8_t b[64];
    iog_coap_msg_t m;
    size_t n = unit_hex(hex, b, sizeof(b));
    CHECK_EQ(iog_coap_parse(&m, b, n), want);
}

static void test_parse_errors(void)
{
    bad("4101", -EBADMSG);              /* short header */
    bad("8101af0701", -EBADMSG);        /* version 2 */
    bad("4901af07 0102030405060708 09", -EBADMSG); /* TKL 9 */
    bad("4201af07 01", -EBADMSG);       /* token truncated */
    bad("4121af07 01", -EBADMSG);       /* class 1 is reserved */
    bad("41c1af07 01", -EBADMSG);       /* class 6 */
    bad("41e1af07 01", -EBADMSG);       /* class 7 */
    bad("4100af07 01", -EBADMSG);       /* empty message with a token */
    bad("4000af07 ff", -EBADMSG);       /* empty message with bytes */
    bad("4101af07 01 ff", -EBADMSG);    /* payload marker, no payload */
    bad("4101af07 01 f1 00", -EBADMSG); /* delta nibble 15 */
    bad("4101af07 01 1f 00", -EBADMSG); /* length nibble 15 */
    bad("4101af07 01 14 6869", -EBADMSG); /* option value truncated */
    bad("4101af07 01 d0", -EBADMSG);    /* delta extension missing */
    bad("4000af07", 0);                 /* empty CON (ping) */
    bad("7000af07", 0);                 /* RST */
}

/*
 * The Padding option (PROTOCOL.md §2), on the builder: for every token
 * length, Uri-Path lengths on both sides of the path option's 1-byte length
 * extension, queries, payloads and two targets (the second takes the Padding value past
 * 269 bytes: a 2-byte length), the padded datagram reaches the target, and a
 * value one byte shorter would not: it is the smallest datagram that does.
 * It parses back with the Padding option last, its value zeros, the other
 * options and the payload as they were.
 */
static int padded_build(uint8_t *out, size_t cap, uint8_t tkl, size_t path_len, const char *query,
                        size_t payload_len, size_t target, long value_len)
{
    static const uint8_t token[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    static const uint8_t payload[120] = { 0x5a };
    char path[132] = "/";
    memset(path + 1, 'p', path_len);
    path[1 + path_len] = '\0';
    iog_coap_pkt_t p;
    iog_coap_build(&p, out, cap, IOG_COAP_CON, IOG_COAP_GET, 0x1234, token, tkl);
    iog_coap_add_path(&p, path);
    if (query) {
        iog_coap_add_query(&p, query);
    }
    iog_coap_add_opt(&p, IOG_COAP_OPT_ECHO, "echo", 4);
    if (value_len < 0) {
        iog_coap_add_padding(&p, target, payload_len);
    }
    else {
        iog_coap_add_opt(&p, IOG_COAP_OPT_PADDING, NULL, (size_t)value_len);
    }
    iog_coap_add_payload(&p, payload, payload_len);
    return iog_coap_finish(&p);
}

static void test_padding(void)
{
    static const char *const queries[] = { NULL, "id=c-one", "id=a-longer-device-id&from=12345" };
    static const size_t payloads[] = { 0, 1, 60, 120 };
    static const size_t targets[] = { IOG_PADDED_REQUEST, 300 };
    static uint8_t out[512];
    unsigned runs = 0, good = 0, exact = 0, over = 0, empty = 0;
    for (unsigned t = 0; t < sizeof(targets) / sizeof(targets[0]); t++) {
        for (uint8_t tkl = 0; tkl <= 8; tkl++) {
            for (size_t path_len = 1; path_len <= 130; path_len += (path_len < 20 ? 1 : 7)) {
                for (unsigned q = 0; q < 3; q++) {
                    for (unsigned b = 0; b < sizeof(payloads) / sizeof(payloads[0]); b++) {
                        size_t target = targets[t], body = payloads[b];
                        int len = padded_build(out, sizeof(out), tkl, path_len, queries[q], body, target, -1);
                        iog_coap_msg_t m;
                        int ok = len > 0 && iog_coap_parse(&m, out, (size_t)len) == 0 && m.nopts >= 3;
                        const iog_coap_opt_t *pad = ok ? &m.opts[m.nopts - 1] : NULL;
                        ok = ok && pad->num == IOG_COAP_OPT_PADDING && iog_coap_opt(&m, IOG_COAP_OPT_PADDING) == pad &&
                             m.opts[m.nopts - 2].num == IOG_COAP_OPT_ECHO && m.tkl == tkl &&
                             m.payload_len == body && (body == 0 || m.payload[0] == 0x5a) &&
                             m.opts[0].num == IOG_COAP_OPT_URI_PATH && m.opts[0].len == path_len;
                        for (unsigned i = 0; ok && i < pad->len; i++) {
                            ok = pad->val[i] == 0;
                        }
                        /* reached, and one byte less of value would not reach it */
                        ok = ok && (size_t)len >= target &&
                             (pad->len == 0 || padded_build(out, sizeof(out), tkl, path_len, queries[q], body,
                                                            target, (long)pad->len - 1) < (int)target);
                        if (ok && (size_t)len == target) {
                            exact++;
                        }
                        else if (ok && pad->len > 0) {
                            /* the value's length took a byte more at 13 (or 269): one over */
                            ok = (size_t)len == target + 1 && (pad->len == 13 || pad->len == 269);
                            over++;
                        }
                        else if (ok) {
                            /* large enough already: an empty option */
                            empty++;
                        }
                        runs++;
                        good += ok;
                        if (!ok && runs - good == 1) {
                            printf("padding: target %u, token %u, path %u, query %u, payload %u: %d bytes\n",
                                   (unsigned)target, tkl, (unsigned)path_len, q, (unsigned)body, len);
                        }
                    }
                }
            }
        }
    }
    CHECK_EQ(good, runs);
    CHECK(exact > 0 && over > 0 && empty > 0 && exact + over + empty == runs);

    /* padding past the buffer: -ENOBUFS */
    iog_coap_pkt_t p;
    iog_coap_build(&p, out, 100, IOG_COAP_CON, IOG_COAP_GET, 1, NULL, 0);
    iog_coap_add_padding(&p, IOG_PADDED_REQUEST, 0);
    CHECK_EQ(iog_coap_finish(&p), -ENOBUFS);

    /* the option's number: elective, safe to forward, no cache key (RFC 7252 §5.4.6) */
    CHECK((IOG_COAP_OPT_PADDING & 1) == 0 && (IOG_COAP_OPT_PADDING & 2) == 0 &&
          (IOG_COAP_OPT_PADDING & 0x1e) == 0x1c && IOG_COAP_OPT_PADDING >= 65000);
}

/* ---- client over the fake network ---- */

typedef struct {
    int answer_on;        /* answer the n-th transmission (1-based), 0 = never */
    int count;
    int mode;             /* 0 piggyback, 1 separate, 2 RST, 3 wrong token first, 4 from wrong peer */
} script_t;

static void scripted_peer(fake_net_t *n, const iog_addr_t *to, const uint8_t *buf, size_t len)
{
    script_t *s = n->user;
    iog_coap_msg_t req;
    (void)to;
    if (iog_coap_parse(&req, buf, len) || IOG_COAP_CLASS(req.code) != 0 ||
        req.code == IOG_COAP_EMPTY) {
        return; /* the client's own ACKs */
    }
    s->count++;
    if (s->answer_on == 0 || s->count != s->answer_on) {
        return;
    }
    uint8_t out[64];
    iog_coap_pkt_t p;
    int l;
    switch (s->mode) {
    case 0:
    case 4:
        iog_coap_build(&p, out, sizeof(out), IOG_COAP_ACK, IOG_COAP_CONTENT, req.mid, req.token,
                       req.tkl);
        iog_coap_add_opt_uint(&p, IOG_COAP_OPT_CONTENT_FORMAT, 0);
        iog_coap_add_payload(&p, "pong", 4);
        l = iog_coap_finish(&p);
        fake_net_push(n, s->mode == 4 ? &unit_peer_addr : &unit_server_addr, n->now + 10, out,
                      (size_t)l);
        break;
    case 1:
        iog_coap_build(&p, out, sizeof(out), IOG_COAP_ACK, IOG_COAP_EMPTY, req.mid, NULL, 0);
        fake_net_push(n, &unit_server_addr, n->now + 10, out, (size_t)iog_coap_finish(&p));
        iog_coap_build(&p, out, sizeof(out), IOG_COAP_CON, IOG_COAP_CHANGED, 0x7777, req.token,
                       req.tkl);
        iog_coap_add_payload(&p, "late", 4);
        fake_net_push(n, &unit_server_addr, n->now + 5000, out, (size_t)iog_coap_finish(&p));
        break;
    case 2:
        iog_coap_build(&p, out, sizeof(out), IOG_COAP_RST, IOG_COAP_EMPTY, req.mid, NULL, 0);
        fake_net_push(n, &unit_server_addr, n->now + 10, out, (size_t)iog_coap_finish(&p));
        break;
    case 3: {
        uint8_t tok[8];
        memcpy(tok, req.token, req.tkl);
        tok[0] ^= 0xFF;
        iog_coap_build(&p, out, sizeof(out), IOG_COAP_ACK, IOG_COAP_CONTENT, req.mid, tok,
                       req.tkl);
        iog_coap_add_payload(&p, "evil", 4);
        fake_net_push(n, &unit_server_addr, n->now + 10, out, (size_t)iog_coap_finish(&p));
        s->answer_on++; /* the retransmission gets the right answer */
        s->mode = 0;
        break;
    }
    }
}

static int client_run(fake_net_t *n, iog_coap_ep_t *ep, script_t *s, iog_coap_msg_t *resp,
                      uint8_t *buf)
{
    fake_net_init(n);
    n->on_send = scripted_peer;
    n->user = s;
    iog_coap_ep_init(ep, &n->plat);
    iog_coap_req_t req = { IOG_COAP_POST, 1, "/verify", IOG_CF_COSE_ENCRYPT0, IOG_CF_NONE,
                           NULL, 0, (const uint8_t *)"ping", 4, NULL, 0 };
    return iog_coap_request(ep, &unit_server_addr, &req, resp, buf, IOG_COAP_MAX_PDU);
}

/* one endpoint and one receive buffer for the client and server tests (RAM is
 * scarce in the QEMU image) */
static iog_coap_ep_t ep;
static uint8_t client_buf[IOG_COAP_MAX_PDU];

static void test_client(void)
{
    fake_net_t *const np = &unit_net;
    iog_coap_msg_t resp, sent;
    uint32_t v;

    /* piggybacked answer to the first transmission */
    script_t s = { 1, 0, 0 };
    CHECK_EQ(client_run(np, &ep, &s, &resp, client_buf), 0);
    CHECK_EQ(resp.code, IOG_COAP_CONTENT);
    CHECK_MEM(resp.payload, "pong", 4);
    CHECK_EQ(ep.retransmissions, 0);
    CHECK_EQ(np->n_sent, 1);
    CHECK_EQ(iog_coap_parse(&sent, np->sent[0].buf, np->sent[0].len), 0);
    CHECK_EQ(sent.type, IOG_COAP_CON);
    CHECK_EQ(sent.tkl, IOG_COAP_TOKEN_LEN);
    CHECK(iog_coap_path_is(&sent, "/verify"));
    CHECK_EQ(iog_coap_opt_uint(&sent, IOG_COAP_OPT_CONTENT_FORMAT, &v), 0);
    CHECK_EQ(v, 16);

    /* lost twice: retransmitted with exponential backoff, same MID */
    s = (script_t){ 3, 0, 0 };
    CHECK_EQ(client_run(np, &ep, &s, &resp, client_buf), 0);
    CHECK_EQ(ep.retransmissions, 2);
    CHECK_EQ(np->n_sent, 3);
    uint32_t t1 = np->sent[1].at - np->sent[0].at, t2 = np->sent[2].at - np->sent[1].at;
    CHECK(t1 >= 2000 && t1 <= 3000);
    CHECK_EQ(t2, 2 * t1);
    CHECK_MEM(np->sent[0].buf, np->sent[2].buf, np->sent[0].len);

    /* never answered: 1 + MAX_RETRANSMIT transmissions, then -ETIMEDOUT */
    s = (script_t){ 0, 0, 0 };
    uint32_t start = 1000;
    CHECK_EQ(client_run(np, &ep, &s, &resp, client_buf), -ETIMEDOUT);
    CHECK_EQ(np->n_sent, 5);
    uint32_t total = np->now - start;
    CHECK(total >= 62000 && total <= 93000); /* (1+2+4+8+16) * [2, 3] s */

    /* empty ACK, then a separate CON response 5 s later that we acknowledge */
    s = (script_t){ 1, 0, 1 };
    CHECK_EQ(client_run(np, &ep, &s, &resp, client_buf), 0);
    CHECK_EQ(resp.code, IOG_COAP_CHANGED);
    CHECK_MEM(resp.payload, "late", 4);
    CHECK_EQ(ep.retransmissions, 0);
    CHECK_EQ(np->n_sent, 2);
    CHECK_EQ(iog_coap_parse(&sent, np->sent[1].buf, np->sent[1].len), 0);
    CHECK_EQ(sent.type, IOG_COAP_ACK);
    CHECK_EQ(sent.code, IOG_COAP_EMPTY);
    CHECK_EQ(sent.mid, 0x7777);

    /* RST */
    s = (script_t){ 1, 0, 2 };
    CHECK_EQ(client_run(np, &ep, &s, &resp, client_buf), -ECONNRESET);

    /* an ACK with the right MID but a wrong token is not our response */
    s = (script_t){ 1, 0, 3 };
    CHECK_EQ(client_run(np, &ep, &s, &resp, client_buf), 0);
    CHECK_MEM(resp.payload, "pong", 4);
    CHECK_EQ(ep.retransmissions, 1);

    /* an answer from another address is ignored */
    s = (script_t){ 1, 0, 4 };
    CHECK_EQ(client_run(np, &ep, &s, &resp, client_buf), -ETIMEDOUT);

    /* a configurable base timeout scales everything (tests run fast) */
    fake_net_init(np);
    s = (script_t){ 0, 0, 0 };
    np->on_send = scripted_peer;
    np->user = &s;
    iog_coap_ep_init(&ep, &np->plat);
    ep.ack_timeout_ms = 100;
    iog_coap_req_t rq = { IOG_COAP_GET, 1, "/", IOG_CF_NONE, IOG_CF_NONE, NULL, 0, NULL, 0, NULL, 0 };
    CHECK_EQ(iog_coap_request(&ep, &unit_server_addr, &rq, &resp, client_buf, sizeof(client_buf)), -ETIMEDOUT);
    CHECK(np->now - 1000 >= 3100 && np->now - 1000 <= 4650);
}

/*
 * The cluster head's address verification (RFC 9175 §2.4): its 4.01 to a GET
 * /cluster from an address it has not verified, as the Go CH sent it to a
 * CON GET /cluster with MID 1f17 and token a1a2a3a4 (captured from
 * `iotguard serve`): ACK 4.01, Content-Format 0, Echo (12 bytes), "echo
 * required". The fake CH sends these bytes with the request's MID and token.
 */
static const char GO_CH_ECHO_CHALLENGE[] =
    "64811f17a1a2a3a4c0dce36b15656ffd2a962694d9c903ff6563686f207265717569726564";
static const uint8_t GO_CH_ECHO[] = { 0x6b, 0x15, 0x65, 0x6f, 0xfd, 0x2a,
                                      0x96, 0x26, 0x94, 0xd9, 0xc9, 0x03 };

typedef struct {
    int challenges;  /* how many requests to challenge before answering */
    int no_echo;     /* challenge with a 4.01 that carries no Echo */
    int count;       /* requests seen */
    int echoed;      /* requests that carried GO_CH_ECHO */
} verifier_t;

static void verifying_peer(fake_net_t *n, const iog_addr_t *to, const uint8_t *buf, size_t len)
{
    verifier_t *v = n->user;
    iog_coap_msg_t req;
    (void)to;
    if (iog_coap_parse(&req, buf, len) || IOG_COAP_CLASS(req.code) != 0 ||
        req.code == IOG_COAP_EMPTY) {
        return;
    }
    v->count++;
    const iog_coap_opt_t *o = iog_coap_opt(&req, IOG_COAP_OPT_ECHO);
    if (o && o->len == sizeof(GO_CH_ECHO) && memcmp(o->val, GO_CH_ECHO, sizeof(GO_CH_ECHO)) == 0) {
        v->echoed++;
    }
    uint8_t out[64];
    if (v->count <= v->challenges) {
        size_t l = unit_hex(GO_CH_ECHO_CHALLENGE, out, sizeof(out));
        if (v->no_echo) { /* the same 4.01 without its Echo option: a plain refusal */
            static const uint8_t refusal[] = { 0x64, 0x81, 0, 0, 0, 0, 0, 0, 0xc0, 0xff, 'n', 'o' };
            memcpy(out, refusal, sizeof(refusal));
            l = sizeof(refusal);
        }
        out[2] = (uint8_t)(req.mid >> 8);
        out[3] = (uint8_t)req.mid;
        memcpy(out + 4, req.token, 4);
        fake_net_push(n, &unit_server_addr, n->now + 10, out, l);
        return;
    }
    iog_coap_pkt_t p;
    iog_coap_build(&p, out, sizeof(out), IOG_COAP_ACK, IOG_COAP_CONTENT, req.mid, req.token,
                   req.tkl);
    iog_coap_add_payload(&p, "pong", 4);
    fake_net_push(n, &unit_server_addr, n->now + 10, out, (size_t)iog_coap_finish(&p));
}

static int verified_run_padded(fake_net_t *n, verifier_t *v, iog_coap_msg_t *resp, uint8_t *buf,
                               uint8_t *echo, size_t *echo_len, uint16_t pad_to)
{
    fake_net_init(n);
    n->on_send = verifying_peer;
    n->user = v;
    iog_coap_ep_init(&ep, &n->plat);
    iog_coap_req_t req = { IOG_COAP_GET, 1, "/cluster", IOG_CF_NONE, IOG_CF_NONE,
                           NULL, 0, NULL, 0, NULL, pad_to };
    return iog_coap_request_verified(&ep, &unit_server_addr, &req, resp, buf, IOG_COAP_MAX_PDU,
                                     echo, echo_len);
}

static int verified_run(fake_net_t *n, verifier_t *v, iog_coap_msg_t *resp, uint8_t *buf,
                        uint8_t *echo, size_t *echo_len)
{
    return verified_run_padded(n, v, resp, buf, echo, echo_len, 0);
}

/* How many of the datagrams @p n sent carry a Padding option. */
static unsigned sent_padded(const fake_net_t *n)
{
    unsigned k = 0;
    for (unsigned i = 0; i < n->n_sent; i++) {
        iog_coap_msg_t m;
        k += iog_coap_parse(&m, n->sent[i].buf, n->sent[i].len) == 0 &&
             iog_coap_opt(&m, IOG_COAP_OPT_PADDING) != NULL;
    }
    return k;
}

static void test_client_follows_echo(void)
{
    fake_net_t *const np = &unit_net;
    iog_coap_msg_t resp;
    uint8_t echo[IOG_COAP_ECHO_MAX];
    size_t echo_len = 99;

    /* challenged once: sent again with the Echo, answered; the Echo given back */
    verifier_t v = { 1, 0, 0, 0 };
    CHECK_EQ(verified_run(np, &v, &resp, client_buf, echo, &echo_len), 0);
    CHECK_EQ(resp.code, IOG_COAP_CONTENT);
    CHECK_MEM(resp.payload, "pong", 4);
    CHECK_EQ(v.count, 2);
    CHECK_EQ(v.echoed, 1);
    CHECK_EQ(echo_len, sizeof(GO_CH_ECHO));
    CHECK_MEM(echo, GO_CH_ECHO, sizeof(GO_CH_ECHO));

    /* not challenged: one request, no Echo */
    v = (verifier_t){ 0, 0, 0, 0 };
    CHECK_EQ(verified_run(np, &v, &resp, client_buf, echo, &echo_len), 0);
    CHECK_EQ(resp.code, IOG_COAP_CONTENT);
    CHECK_EQ(v.count, 1);
    CHECK_EQ(echo_len, 0);

    /* challenged twice: the second 4.01 is returned, never a third request */
    v = (verifier_t){ 2, 0, 0, 0 };
    CHECK_EQ(verified_run(np, &v, &resp, client_buf, NULL, NULL), 0);
    CHECK_EQ(resp.code, IOG_COAP_UNAUTHORIZED);
    CHECK_EQ(v.count, 2);

    /* a 4.01 without an Echo is a refusal: returned as it is */
    v = (verifier_t){ 1, 1, 0, 0 };
    CHECK_EQ(verified_run(np, &v, &resp, client_buf, echo, &echo_len), 0);
    CHECK_EQ(resp.code, IOG_COAP_UNAUTHORIZED);
    CHECK_MEM(resp.payload, "no", 2);
    CHECK_EQ(v.count, 1);
    CHECK_EQ(echo_len, 0);
}

/*
 * A padded request through the client (PROTOCOL.md §2): a GET /cluster of
 * exactly IOG_PADDED_REQUEST bytes, the same bytes when retransmitted; a
 * server that answers it at once is asked once. Challenged anyway (a
 * /cluster answer with rotations is over three times 128 bytes), the client
 * repeats it with the Echo and without the padding: the Echo verifies the
 * address.
 */
static void test_client_pads(void)
{
    fake_net_t *const np = &unit_net;
    iog_coap_msg_t resp, sent;
    uint8_t echo[IOG_COAP_ECHO_MAX];
    size_t echo_len = 99;

    /* answered at once */
    verifier_t v = { 0, 0, 0, 0 };
    CHECK_EQ(verified_run_padded(np, &v, &resp, client_buf, echo, &echo_len, IOG_PADDED_REQUEST), 0);
    CHECK_EQ(resp.code, IOG_COAP_CONTENT);
    CHECK_EQ(v.count, 1);
    CHECK_EQ(echo_len, 0);
    CHECK_EQ(np->n_sent, 1);
    CHECK_EQ(np->sent[0].len, IOG_PADDED_REQUEST);
    CHECK_EQ(iog_coap_parse(&sent, np->sent[0].buf, np->sent[0].len), 0);
    CHECK(iog_coap_path_is(&sent, "/cluster"));
    CHECK_EQ(sent.nopts, 2);
    CHECK_EQ(sent.opts[1].num, IOG_COAP_OPT_PADDING);
    /* 4 + 4 (token) + 8 (Uri-Path) + 4 (the Padding option's head) + 108 zeros */
    CHECK_EQ(sent.opts[1].len, IOG_PADDED_REQUEST - 20);
    CHECK(sent.payload == NULL);

    /* challenged: the repeat carries the Echo and no padding */
    v = (verifier_t){ 1, 0, 0, 0 };
    CHECK_EQ(verified_run_padded(np, &v, &resp, client_buf, echo, &echo_len, IOG_PADDED_REQUEST), 0);
    CHECK_EQ(resp.code, IOG_COAP_CONTENT);
    CHECK_EQ(v.count, 2);
    CHECK_EQ(v.echoed, 1);
    CHECK_EQ(echo_len, sizeof(GO_CH_ECHO));
    CHECK_EQ(np->n_sent, 2);
    CHECK_EQ(np->sent[0].len, IOG_PADDED_REQUEST);
    CHECK_EQ(sent_padded(np), 1);
    CHECK_EQ(iog_coap_parse(&sent, np->sent[1].buf, np->sent[1].len), 0);
    CHECK(iog_coap_opt(&sent, IOG_COAP_OPT_PADDING) == NULL);
    CHECK(iog_coap_opt(&sent, IOG_COAP_OPT_ECHO) != NULL);
    CHECK_EQ(np->sent[1].len, 16 + 2 + sizeof(GO_CH_ECHO)); /* the GET and its Echo option only */

    /* an unpadded request stays unpadded */
    v = (verifier_t){ 1, 0, 0, 0 };
    CHECK_EQ(verified_run(np, &v, &resp, client_buf, echo, &echo_len), 0);
    CHECK_EQ(np->n_sent, 2);
    CHECK_EQ(sent_padded(np), 0);
    CHECK_EQ(np->sent[0].len, 16);

    /* lost twice: retransmitted with the same padded bytes; a payload stays after the padding */
    script_t s = { 3, 0, 0 };
    fake_net_init(np);
    np->on_send = scripted_peer;
    np->user = &s;
    iog_coap_ep_init(&ep, &np->plat);
    iog_coap_req_t rq = { IOG_COAP_POST, 1, "/verify", IOG_CF_COSE_ENCRYPT0, IOG_CF_NONE, NULL, 0,
                          (const uint8_t *)"ping", 4, "a=b", IOG_PADDED_REQUEST };
    CHECK_EQ(iog_coap_request(&ep, &unit_server_addr, &rq, &resp, client_buf, sizeof(client_buf)), 0);
    CHECK_EQ(np->n_sent, 3);
    CHECK_EQ(sent_padded(np), 3);
    CHECK(np->sent[0].len == IOG_PADDED_REQUEST && np->sent[2].len == IOG_PADDED_REQUEST);
    CHECK_MEM(np->sent[0].buf, np->sent[2].buf, IOG_PADDED_REQUEST);
    CHECK_EQ(iog_coap_parse(&sent, np->sent[0].buf, np->sent[0].len), 0);
    CHECK(sent.payload_len == 4 && memcmp(sent.payload, "ping", 4) == 0);
    CHECK_EQ(sent.opts[sent.nopts - 1].num, IOG_COAP_OPT_PADDING);
}

/* The Echo options of datagram @p i that @p n sent: how many, and the last one in @p last. */
static unsigned sent_echoes(const fake_net_t *n, unsigned i, const iog_coap_opt_t **last)
{
    static iog_coap_msg_t m;
    unsigned k = 0;
    *last = NULL;
    if (i < n->n_sent && iog_coap_parse(&m, n->sent[i].buf, n->sent[i].len) == 0) {
        for (unsigned j = 0; j < m.nopts; j++) {
            if (m.opts[j].num == IOG_COAP_OPT_ECHO) {
                k++;
                *last = &m.opts[j];
            }
        }
    }
    return k;
}

/*
 * A request that carries an Echo the server does not take (stale, or from
 * before its restart: a device's log check with its join's echo, PROTOCOL.md
 * §9.2) is challenged, and the repeat carries the challenge's Echo in its
 * place, never beside it (a server reads the first one and would challenge
 * again), and no padding; one the server takes is answered at once.
 */
static void test_client_replaces_echo(void)
{
    static const uint8_t stale[20] = { 0x5e, 0x5e, 0x5e };
    fake_net_t *const np = &unit_net;
    iog_coap_msg_t resp;
    const iog_coap_opt_t *o;
    uint8_t echo[IOG_COAP_ECHO_MAX];
    size_t echo_len = 99;
    for (uint16_t pad_to = 0; pad_to <= IOG_PADDED_REQUEST; pad_to += IOG_PADDED_REQUEST) {
        verifier_t v = { 1, 0, 0, 0 };
        fake_net_init(np);
        np->on_send = verifying_peer;
        np->user = &v;
        iog_coap_ep_init(&ep, &np->plat);
        iog_coap_req_t req = { IOG_COAP_GET, 1, "/ledger/proof", IOG_CF_NONE, IOG_CF_NONE, stale,
                               sizeof(stale), NULL, 0, "id=c-one", pad_to };
        CHECK_EQ(iog_coap_request_verified(&ep, &unit_server_addr, &req, &resp, client_buf,
                                           sizeof(client_buf), echo, &echo_len), 0);
        CHECK_EQ(resp.code, IOG_COAP_CONTENT);
        CHECK_EQ(np->n_sent, 2);
        CHECK_EQ(sent_echoes(np, 0, &o), 1); /* the first: the stale Echo */
        CHECK(o && o->len == sizeof(stale) && memcmp(o->val, stale, sizeof(stale)) == 0);
        CHECK_EQ(sent_echoes(np, 1, &o), 1); /* the repeat: the challenge's only */
        CHECK(o && o->len == sizeof(GO_CH_ECHO) && memcmp(o->val, GO_CH_ECHO, sizeof(GO_CH_ECHO)) == 0);
        CHECK_EQ(v.echoed, 1);
        CHECK_EQ(sent_padded(np), pad_to ? 1 : 0);
        CHECK_EQ(echo_len, sizeof(GO_CH_ECHO));
        /* taken: one request, its Echo as given */
        v = (verifier_t){ 0, 0, 0, 0 };
        fake_net_init(np);
        np->on_send = verifying_peer;
        np->user = &v;
        req.echo = GO_CH_ECHO;
        req.echo_len = sizeof(GO_CH_ECHO);
        CHECK_EQ(iog_coap_request_verified(&ep, &unit_server_addr, &req, &resp, client_buf,
                                           sizeof(client_buf), echo, &echo_len), 0);
        CHECK(resp.code == IOG_COAP_CONTENT && np->n_sent == 1 && v.echoed == 1 && echo_len == 0);
    }
}

/*
 * RFC 7252 §4.2 and §4.8 on the simulated clock, for 64 random draws: the
 * first timeout lies in [ACK_TIMEOUT, ACK_TIMEOUT * ACK_RANDOM_FACTOR] =
 * [2, 3] s and is spread over it, each retransmission doubles it, there are
 * MAX_RETRANSMIT = 4 of them, and the client gives up after the fifth
 * timeout: within MAX_TRANSMIT_WAIT (93 s) of the first transmission.
 */
static void test_backoff_schedule(void)
{
    fake_net_t *const np = &unit_net;
    iog_coap_msg_t resp;
    uint32_t lo = 0xFFFFFFFFu, hi = 0;
    unsigned good = 0;
    for (uint32_t seed = 1; seed <= 64; seed++) {
        script_t s = { 0, 0, 0 }; /* never answered */
        fake_net_init(np);
        np->rnd = seed * 2654435761u;
        np->on_send = scripted_peer;
        np->user = &s;
        iog_coap_ep_init(&ep, &np->plat);
        iog_coap_req_t rq = { IOG_COAP_GET, 1, "/cluster", IOG_CF_NONE, IOG_CF_NONE, NULL, 0, NULL, 0, NULL, 0 };
        int e = iog_coap_request(&ep, &unit_server_addr, &rq, &resp, client_buf, sizeof(client_buf));
        uint32_t t0 = np->sent[0].at, g = np->sent[1].at - t0;
        int ok = e == -ETIMEDOUT && np->n_sent == 1 + IOG_COAP_MAX_RETRANSMIT && g >= 2000 && g <= 3000;
        for (unsigned i = 2; ok && i < np->n_sent; i++) {
            ok = np->sent[i].at - np->sent[i - 1].at == g << (i - 1);
        }
        ok = ok && np->now - t0 == 31 * g && np->now - t0 <= 93000;
        good += ok;
        lo = g < lo ? g : lo;
        hi = g > hi ? g : hi;
    }
    CHECK_EQ(good, 64);
    CHECK(lo < 2250 && hi > 2750); /* the random factor is used, not a constant */
}

/* ---- server ---- */

static int handled;

static void echo_handler(void *ctx, const iog_addr_t *from, const iog_coap_msg_t *req,
                         iog_coap_resp_t *resp)
{
    (void)ctx;
    (void)from;
    handled++;
    if (!iog_coap_path_is(req, "/talk")) {
        resp->code = IOG_COAP_NOT_FOUND;
        return;
    }
    resp->code = IOG_COAP_CONTENT;
    resp->content_format = IOG_CF_CBOR;
    memcpy(resp->payload, req->payload, req->payload_len);
    resp->len = req->payload_len;
    resp->keep = 1; /* as a request that changed state */
}

/* an answer that cannot fit in a server PDU (its payload alone fills it) */
static void big_handler(void *ctx, const iog_addr_t *from, const iog_coap_msg_t *req,
                        iog_coap_resp_t *resp)
{
    (void)ctx;
    (void)from;
    (void)req;
    handled++;
    resp->content_format = IOG_CF_CBOR;
    memset(resp->payload, 0xA5, resp->cap);
    resp->len = resp->cap;
}

static void test_server(void)
{
    fake_net_t *const np = &unit_net;
    uint8_t b[128];
    iog_coap_msg_t m;
    fake_net_init(np);
    iog_coap_ep_init(&ep, &np->plat);
    ep.handler = echo_handler;
    handled = 0;

    size_t len = unit_hex(LIBCOAP_POST_TALK, b, sizeof(b));
    fake_net_push(np, &unit_peer_addr, 1000, b, len);
    CHECK_EQ(iog_coap_serve(&ep, 100), 0);
    CHECK_EQ(handled, 1);
    CHECK_EQ(np->n_sent, 1);
    CHECK_EQ(iog_coap_parse(&m, np->sent[0].buf, np->sent[0].len), 0);
    CHECK_EQ(m.type, IOG_COAP_ACK);
    CHECK_EQ(m.mid, 0x5a2a);
    CHECK_EQ(m.code, IOG_COAP_CONTENT);
    CHECK_EQ(m.tkl, 1);
    CHECK_MEM(m.payload, "hello", 5);

    /* a duplicate (lost ACK) gets the same bytes without a second handler call */
    fake_net_push(np, &unit_peer_addr, 3000, b, len);
    CHECK_EQ(iog_coap_serve(&ep, 5000), 0);
    CHECK_EQ(handled, 1);
    CHECK_EQ(np->n_sent, 2);
    CHECK_EQ(np->sent[1].len, np->sent[0].len);
    CHECK_MEM(np->sent[1].buf, np->sent[0].buf, np->sent[0].len);

    /* the same MID from another endpoint is a new request */
    fake_net_push(np, &unit_server_addr, 3000, b, len);
    CHECK_EQ(iog_coap_serve(&ep, 5000), 0);
    CHECK_EQ(handled, 2);

    /* NON request: NON response with the token */
    len = unit_hex(LIBCOAP_NON_M2M, b, sizeof(b));
    fake_net_push(np, &unit_peer_addr, 4000, b, len);
    CHECK_EQ(iog_coap_serve(&ep, 5000), 0);
    CHECK_EQ(iog_coap_parse(&m, np->sent[np->n_sent - 1].buf, np->sent[np->n_sent - 1].len), 0);
    CHECK_EQ(m.type, IOG_COAP_NON);
    CHECK_EQ(m.code, IOG_COAP_NOT_FOUND);
    CHECK_MEM(m.token, "caff", 4);

    /* garbage is never answered; a ping gets RST */
    unsigned before = np->n_sent;
    fake_net_push(np, &unit_peer_addr, 4000, (const uint8_t *)"\x81\x01", 2);
    CHECK_EQ(iog_coap_serve(&ep, 5000), 0);
    CHECK_EQ(np->n_sent, before);
    len = unit_hex("4000beef", b, sizeof(b));
    fake_net_push(np, &unit_peer_addr, 4000, b, len);
    CHECK_EQ(iog_coap_serve(&ep, 5000), 0);
    CHECK_EQ(np->n_sent, before + 1);
    CHECK_EQ(iog_coap_parse(&m, np->sent[before].buf, np->sent[before].len), 0);
    CHECK_EQ(m.type, IOG_COAP_RST);
    CHECK_EQ(m.mid, 0xbeef);

    /* nothing arrives */
    CHECK_EQ(iog_coap_serve(&ep, 100), -ETIMEDOUT);

    /* an answer too long for the PDU: a bare 5.00 (no option, no payload) says so */
    iog_coap_ep_init(&ep, &np->plat); /* no cached answer to this MID */
    ep.handler = big_handler;
    len = unit_hex(LIBCOAP_POST_TALK, b, sizeof(b));
    fake_net_push(np, &unit_peer_addr, 9000, b, len);
    before = np->n_sent;
    CHECK_EQ(iog_coap_serve(&ep, 5000), 0);
    CHECK_EQ(np->n_sent, before + 1);
    CHECK_EQ(iog_coap_parse(&m, np->sent[before].buf, np->sent[before].len), 0);
    CHECK_EQ(m.type, IOG_COAP_ACK);
    CHECK_EQ(m.mid, 0x5a2a);
    CHECK_EQ(m.code, IOG_COAP_INTERNAL);
    CHECK_EQ(m.tkl, 1);
    CHECK_EQ(m.nopts, 0);
    CHECK_EQ(m.payload_len, 0);

    /* an answer the handler did not keep (4.04) is computed again for a duplicate, the same;
     * the kept one stays for its duplicate */
    iog_coap_ep_init(&ep, &np->plat);
    ep.handler = echo_handler;
    np->n_sent = 0;
    handled = 0;
    len = unit_hex(LIBCOAP_POST_TALK, b, sizeof(b));
    fake_net_push(np, &unit_peer_addr, 9000, b, len);
    CHECK_EQ(iog_coap_serve(&ep, 5000), 0);
    iog_coap_pkt_t p;
    iog_coap_build(&p, b, sizeof(b), IOG_COAP_CON, IOG_COAP_POST, 0x1234, (const uint8_t *)"\x01", 1);
    iog_coap_add_path(&p, "/other");
    len = (size_t)iog_coap_finish(&p);
    for (int i = 0; i < 2; i++) {
        fake_net_push(np, &unit_peer_addr, 9000, b, len);
        CHECK_EQ(iog_coap_serve(&ep, 5000), 0);
        CHECK_EQ(handled, 2 + i);
        CHECK_EQ(iog_coap_parse(&m, np->sent[np->n_sent - 1].buf, np->sent[np->n_sent - 1].len), 0);
        CHECK_EQ(m.code, IOG_COAP_NOT_FOUND);
        CHECK_EQ(m.mid, 0x1234);
    }
    len = unit_hex(LIBCOAP_POST_TALK, b, sizeof(b));
    fake_net_push(np, &unit_peer_addr, 9000, b, len);
    CHECK_EQ(iog_coap_serve(&ep, 5000), 0);
    CHECK_EQ(handled, 3);
    CHECK_MEM(np->sent[np->n_sent - 1].buf, np->sent[0].buf, np->sent[0].len);
}

void test_coap(void)
{
    test_parse_libcoap();
    test_build_like_libcoap();
    test_parse_errors();
    test_client();
    test_client_follows_echo();
    test_padding();
    test_client_pads();
    test_client_replaces_echo();
    test_backoff_schedule();
    test_server();
}
