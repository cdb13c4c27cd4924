/*
 * The transparency log as a device checks it (PROTOCOL.md §9): the verifier
 * against a reference written from RFC 9162's recursive definitions (MTH,
 * PATH, PROOF of §2.1), exhaustively over small trees; the decoder on bad
 * bytes; the device's GET /ledger/proof on a scripted CH (query, Echo
 * challenge, a CH without a log), and after a join, with the Echo it signed.
 */
#include <errno.h>

#include "iog_cbor.h"
#include "iog_device.h"
#include "iog_tlog.h"
#include "unit.h"

/* ---- reference: RFC 9162 §2.1, recursively, over leaf hashes ---- */

/* Leaves of the reference tree: an array, or generated (NULL): leaf i = SHA-256(0x00 || unit_tlog_block(i)). */
static const uint8_t (*ref_leaves)[IOG_HASH_LEN];

void unit_tlog_block(size_t i, uint8_t out[IOG_HASH_LEN])
{
    uint8_t b[8];
    for (int j = 0; j < 8; j++) {
        b[j] = (uint8_t)(i >> (8 * j));
    }
    iog_sha256(b, sizeof(b), out);
}

static void ref_leaf(size_t i, uint8_t out[IOG_HASH_LEN])
{
    uint8_t b[1 + IOG_HASH_LEN] = { 0x00 };
    if (ref_leaves) {
        memcpy(out, ref_leaves[i], IOG_HASH_LEN);
        return;
    }
    unit_tlog_block(i, b + 1);
    iog_sha256(b, sizeof(b), out);
}

/* The largest power of two below @p n (n > 1). */
static size_t split(size_t n)
{
    size_t k = 1;
    while (k << 1 < n) {
        k <<= 1;
    }
    return k;
}

/* MTH(D[lo:lo+n]) */
static void ref_mth(size_t lo, size_t n, uint8_t out[IOG_HASH_LEN])
{
    uint8_t b[1 + 2 * IOG_HASH_LEN] = { 0x01 };
    if (n == 1) {
        ref_leaf(lo, out);
        return;
    }
    size_t k = split(n);
    ref_mth(lo, k, b + 1);
    ref_mth(lo + k, n - k, b + 1 + IOG_HASH_LEN);
    iog_sha256(b, sizeof(b), out);
}

void unit_tlog_root(size_t n, uint8_t out[IOG_HASH_LEN])
{
    ref_mth(0, n, out);
}

void unit_mth(const uint8_t (*leaves)[IOG_HASH_LEN], size_t n, uint8_t out[IOG_HASH_LEN])
{
    ref_leaves = leaves;
    ref_mth(0, n, out);
    ref_leaves = NULL;
}

static void put_hash(uint8_t *path, size_t i, const uint8_t h[IOG_HASH_LEN])
{
    path[i * IOG_TLOG_STRIDE] = 0x58;
    path[i * IOG_TLOG_STRIDE + 1] = 0x20;
    memcpy(path + i * IOG_TLOG_STRIDE + 2, h, IOG_HASH_LEN);
}

/* PATH(m, D[lo:lo+n]) into @p out. @return its hashes. */
static size_t ref_path(size_t m, size_t lo, size_t n, uint8_t *out)
{
    uint8_t h[IOG_HASH_LEN];
    size_t c;
    if (n == 1) {
        return 0;
    }
    size_t k = split(n);
    if (m < k) {
        c = ref_path(m, lo, k, out);
        ref_mth(lo + k, n - k, h);
    }
    else {
        c = ref_path(m - k, lo + k, n - k, out);
        ref_mth(lo, k, h);
    }
    put_hash(out, c, h);
    return c + 1;
}

/* SUBPROOF(m, D[lo:lo+n], b) into @p out. @return its hashes. */
static size_t ref_subproof(size_t m, size_t lo, size_t n, int b, uint8_t *out)
{
    uint8_t h[IOG_HASH_LEN];
    size_t c;
    if (m == n) {
        if (b) {
            return 0;
        }
        ref_mth(lo, n, h);
        put_hash(out, 0, h);
        return 1;
    }
    size_t k = split(n);
    if (m <= k) {
        c = ref_subproof(m, lo, k, b, out);
        ref_mth(lo + k, n - k, h);
    }
    else {
        c = ref_subproof(m - k, lo + k, n - k, 0, out);
        ref_mth(lo, k, h);
    }
    put_hash(out, c, h);
    return c + 1;
}

/* ---- the verifier against the reference ---- */

static uint8_t path[IOG_TLOG_MAX_PATH * IOG_TLOG_STRIDE];

static void test_exhaustive(void)
{
    enum { N = 20 };
    unsigned incl = 0, cons = 0, refused = 0, wrong = 0;
    for (size_t n = 1; n <= N; n++) {
        iog_tlog_cp_t cp = { n, { 0 } };
        ref_mth(0, n, cp.root);
        for (size_t m = 0; m < n; m++) {
            uint8_t leaf[IOG_HASH_LEN];
            ref_leaf(m, leaf);
            size_t pn = ref_path(m, 0, n, path);
            incl += iog_tlog_inclusion(m, leaf, &cp, path, pn) == 0;
            /* any other index, a path one hash short or long, a changed hash */
            for (size_t j = 0; j < n + 2; j++) {
                wrong += j != m && iog_tlog_inclusion(j, leaf, &cp, path, pn) == 0;
            }
            wrong += pn > 0 && iog_tlog_inclusion(m, leaf, &cp, path, pn - 1) == 0;
            put_hash(path, pn, cp.root);
            wrong += iog_tlog_inclusion(m, leaf, &cp, path, pn + 1) == 0;
            for (size_t i = 0; i < pn; i++) {
                path[i * IOG_TLOG_STRIDE + 2 + i % IOG_HASH_LEN] ^= 0x80;
                refused += iog_tlog_inclusion(m, leaf, &cp, path, pn) == -EILSEQ;
                path[i * IOG_TLOG_STRIDE + 2 + i % IOG_HASH_LEN] ^= 0x80;
            }
        }
        for (size_t m = 1; m <= n; m++) {
            iog_tlog_cp_t old = { m, { 0 } };
            ref_mth(0, m, old.root);
            size_t pn = ref_subproof(m, 0, n, 1, path);
            cons += iog_tlog_consistency(&old, &cp, path, pn) == 0;
            wrong += pn > 0 && iog_tlog_consistency(&old, &cp, path, pn - 1) == 0;
            for (size_t i = 0; i < pn; i++) {
                path[i * IOG_TLOG_STRIDE + 2] ^= 0x01;
                refused += iog_tlog_consistency(&old, &cp, path, pn) == -EILSEQ;
                path[i * IOG_TLOG_STRIDE + 2] ^= 0x01;
            }
            old.root[5] ^= 0x10;
            refused += iog_tlog_consistency(&old, &cp, path, pn) == -EILSEQ;
            /* the reverse direction is never a proof */
            wrong += m < n && iog_tlog_consistency(&cp, &old, path, pn) == 0;
        }
    }
    CHECK_EQ(incl, N * (N + 1) / 2);
    CHECK_EQ(cons, N * (N + 1) / 2);
    CHECK_EQ(wrong, 0);
    CHECK(refused > 500);
    printf("tlog: %u inclusion and %u consistency proofs of trees of 1-%u blocks verified, "
           "%u altered ones refused\n", incl, cons, (unsigned)N, refused);
    /* size 0, an old tree larger than the new one */
    iog_tlog_cp_t a = { 0, { 0 } }, b = { 3, { 0 } };
    CHECK_EQ(iog_tlog_consistency(&a, &b, path, 1), -EILSEQ);
    a.size = 4;
    CHECK_EQ(iog_tlog_consistency(&a, &b, path, 1), -EILSEQ);
    CHECK_EQ(iog_tlog_inclusion(3, path, &b, path, 2), -EILSEQ);
}

/* ---- answers of GET /ledger/proof ---- */

static void put_path(iog_cbor_enc_t *e, const uint8_t *p, size_t n)
{
    iog_cbor_put_array(e, n);
    for (size_t i = 0; i < n; i++) {
        iog_cbor_put_bstr(e, p + i * IOG_TLOG_STRIDE + 2, IOG_HASH_LEN);
    }
}

int unit_tlog_answer(const uint8_t priv[IOG_P256_PRIV_LEN], const iog_cluster_t *ch, size_t n,
                     size_t idx, size_t from, uint64_t time_ms, uint8_t *out, size_t cap)
{
    uint8_t payload[120], cp[240], block[IOG_HASH_LEN], root[IOG_HASH_LEN];
    iog_cbor_enc_t e;
    ref_mth(0, n, root);
    iog_cbor_enc_init(&e, payload, sizeof(payload));
    iog_cbor_put_map(&e, 4);
    iog_cbor_put_uint(&e, 1);
    iog_cbor_put_tstr(&e, ch->cluster.s, ch->cluster.len);
    iog_cbor_put_uint(&e, 2);
    iog_cbor_put_uint(&e, n);
    iog_cbor_put_uint(&e, 3);
    iog_cbor_put_bstr(&e, root, IOG_HASH_LEN);
    iog_cbor_put_uint(&e, 4);
    iog_cbor_put_uint(&e, time_ms);
    int cl = iog_sign1_encode(priv, ch->thumb, IOG_HASH_LEN, IOG_AAD_CHECKPOINT, payload,
                              (size_t)iog_cbor_enc_finish(&e), cp, sizeof(cp));
    unit_tlog_block(idx, block);
    iog_cbor_enc_init(&e, out, cap);
    iog_cbor_put_map(&e, from ? 6 : 4);
    iog_cbor_put_uint(&e, 1);
    iog_cbor_put_bstr(&e, cp, (size_t)cl);
    iog_cbor_put_uint(&e, 2);
    iog_cbor_put_uint(&e, idx);
    iog_cbor_put_uint(&e, 3);
    iog_cbor_put_bstr(&e, block, IOG_HASH_LEN);
    iog_cbor_put_uint(&e, 4);
    put_path(&e, path, ref_path(idx, 0, n, path));
    if (from) {
        iog_cbor_put_uint(&e, 5);
        iog_cbor_put_uint(&e, from);
        iog_cbor_put_uint(&e, 6);
        put_path(&e, path, ref_subproof(from, 0, n, 1, path));
    }
    return iog_cbor_enc_finish(&e);
}

/* A member joined in block @p idx of the generated tree, at the CH of key @p priv. */
static void tlog_member(iog_member_t *m, const uint8_t priv[32], size_t idx)
{
    memset(m, 0, sizeof(*m));
    iog_id_set(&m->ch.cluster, "lab-1", 5);
    iog_p256_public(priv, m->ch.pub);
    iog_thumbprint(m->ch.pub, m->ch.thumb);
    m->height = idx;
    unit_tlog_block(idx, m->block);
}

static void test_decode(void)
{
    static uint8_t a[700], b[700];
    static const uint8_t priv[32] = { [31] = 5 };
    iog_member_t m;
    iog_tlog_cp_t kept = { 0, { 0 } };
    iog_proof_t p;
    tlog_member(&m, priv, 6);
    int n = unit_tlog_answer(priv, &m.ch, 9, 6, 4, 1767225600000ull, a, sizeof(a));
    CHECK(n > 0);
    CHECK_EQ(iog_proof_decode(a, (size_t)n, &p), 0);
    CHECK_EQ(p.index, 6);
    CHECK_EQ(p.old_size, 4);
    CHECK(p.path.n == 4 && p.cons.n > 0);
    /* every truncation and every changed byte: refused, never a crash, never accepted */
    unsigned accepted = 0;
    int signed_from = (int)(p.cp.p - a) + 45, signed_to = (int)(p.cp.p - a + p.cp.n);
    for (int i = 0; i < n; i++) {
        iog_tlog_cp_t k = { 4, { 0 } };
        ref_mth(0, 4, k.root);
        accepted += iog_tlog_check_join(a, (size_t)i, &m, &k, NULL) == 0;
        /* a change to the checkpoint's payload or signature may reach the
         * verify (31 M instructions on the lx106): a sample of those bytes */
        if (i >= signed_from && i < signed_to && i % 16) {
            continue;
        }
        memcpy(b, a, (size_t)n);
        b[i] ^= (uint8_t)(1u << (i % 8));
        accepted += iog_tlog_check_join(b, (size_t)n, &m, &k, NULL) == 0;
    }
    CHECK_EQ(accepted, 0);
    /* a path hash in a longer (not deterministic) encoding; a path too long */
    iog_cbor_enc_t e;
    iog_cbor_enc_init(&e, b, sizeof(b));
    iog_cbor_put_map(&e, 4);
    iog_cbor_put_uint(&e, 1);
    iog_cbor_put_bstr(&e, "x", 1);
    iog_cbor_put_uint(&e, 2);
    iog_cbor_put_uint(&e, 0);
    iog_cbor_put_uint(&e, 3);
    iog_cbor_put_bstr(&e, m.block, 32);
    iog_cbor_put_uint(&e, 4);
    iog_cbor_put_array(&e, 1);
    size_t at = e.len;
    iog_cbor_put_bstr(&e, m.block, 32);
    n = iog_cbor_enc_finish(&e);
    CHECK_EQ(iog_proof_decode(b, (size_t)n, &p), 0);
    memmove(b + at + 3, b + at + 2, 32);
    b[at] = 0x59, b[at + 1] = 0x00, b[at + 2] = 0x20;
    CHECK_EQ(iog_proof_decode(b, (size_t)n + 1, &p), -EBADMSG);
    b[at - 1] = 0x98, b[at] = 64; /* array(64) */
    CHECK_EQ(iog_proof_decode(b, (size_t)n + 1, &p), -EBADMSG);
    /* nothing kept: the answer checks and is kept; its time is returned */
    uint64_t t = 0;
    n = unit_tlog_answer(priv, &m.ch, 9, 6, 0, 1767225600000ull, a, sizeof(a));
    CHECK_EQ(iog_tlog_check_join(a, (size_t)n, &m, &kept, &t), 0);
    CHECK(kept.size == 9 && t == 1767225600000ull);
    /* a checkpoint in the CH's name (its kid) signed by another key */
    static const uint8_t other[32] = { [31] = 6 };
    n = unit_tlog_answer(other, &m.ch, 9, 6, 9, 1, a, sizeof(a));
    CHECK_EQ(iog_tlog_check_join(a, (size_t)n, &m, &kept, NULL), -EACCES);
    /* the same tree again: an equal size needs the same root and no path */
    n = unit_tlog_answer(priv, &m.ch, 9, 6, 9, 1, a, sizeof(a));
    CHECK_EQ(iog_tlog_check_join(a, (size_t)n, &m, &kept, NULL), 0);
    /* a smaller tree than the kept one */
    n = unit_tlog_answer(priv, &m.ch, 8, 6, 8, 1, a, sizeof(a));
    CHECK_EQ(iog_tlog_check_join(a, (size_t)n, &m, &kept, NULL), -EXDEV);
    CHECK(kept.size == 9);
}

/* ---- the device on a scripted CH ---- */

static struct {
    int mode;               /* 0: challenge then the proof; 1: no log; 2: unknown device */
    unsigned gets;          /* GETs seen */
    int echoed;             /* the second GET carried the challenge's Echo */
    unsigned padded;        /* GETs with a Padding option (only GET /cluster is padded) */
    char query[2][40];      /* the Uri-Query options of the last GET */
    uint8_t answer[400];    /* the proof answer */
    size_t answer_len;
} ch;

static void scripted_ch(fake_net_t *n, const iog_addr_t *to, const uint8_t *buf, size_t len)
{
    iog_coap_msg_t req;
    uint8_t out[400];
    iog_coap_pkt_t p;
    (void)to;
    if (iog_coap_parse(&req, buf, len) || req.code != IOG_COAP_GET ||
        !iog_coap_path_is(&req, "/ledger/proof")) {
        return;
    }
    ch.gets++;
    ch.padded += iog_coap_opt(&req, IOG_COAP_OPT_PADDING) != NULL;
    unsigned q = 0;
    memset(ch.query, 0, sizeof(ch.query));
    for (unsigned i = 0; i < req.nopts; i++) {
        if (req.opts[i].num == IOG_COAP_OPT_URI_QUERY && q < 2 && req.opts[i].len < 40) {
            memcpy(ch.query[q++], req.opts[i].val, req.opts[i].len);
        }
    }
    const iog_coap_opt_t *echo = iog_coap_opt(&req, IOG_COAP_OPT_ECHO);
    ch.echoed = echo && echo->len == 3 && memcmp(echo->val, "e-1", 3) == 0;
    iog_coap_build(&p, out, sizeof(out), IOG_COAP_ACK, IOG_COAP_CONTENT, req.mid, req.token, req.tkl);
    if (ch.mode == 0 && !echo) {
        p.buf[1] = IOG_COAP_UNAUTHORIZED;
        iog_coap_add_opt(&p, IOG_COAP_OPT_ECHO, "e-1", 3);
    }
    else if (ch.mode == 0) {
        iog_coap_add_opt_uint(&p, IOG_COAP_OPT_CONTENT_FORMAT, IOG_CF_CBOR);
        iog_coap_add_payload(&p, ch.answer, ch.answer_len);
    }
    else {
        const char *diag = ch.mode == 1 ? "no transparency log" : "unknown device";
        p.buf[1] = IOG_COAP_NOT_FOUND;
        iog_coap_add_opt_uint(&p, IOG_COAP_OPT_CONTENT_FORMAT, IOG_CF_TEXT);
        iog_coap_add_payload(&p, diag, strlen(diag));
    }
    fake_net_push(n, &unit_server_addr, n->now + 5, out, (size_t)iog_coap_finish(&p));
}

static void test_device(void)
{
    static const uint8_t priv[32] = { [31] = 5 };
    iog_identity_t me;
    uint64_t t = 0;
    fake_net_t *const np = &unit_net;
    iog_device_t *const d = unit_board_device();
    memset(&me, 0, sizeof(me));
    iog_id_set(&me.id, "c-one", 5);
    fake_net_init(np);
    np->on_send = scripted_ch;
    iog_device_init(d, &np->plat, &unit_server_addr, &me);
    memset(&ch, 0, sizeof(ch));
    CHECK_EQ(iog_device_check_join(d, &t), -ENOTCONN);
    tlog_member(&d->mem, priv, 3);
    d->joined = 1;

    /* the first check: no from=, an Echo challenge answered once */
    int n = unit_tlog_answer(priv, &d->mem.ch, 4, 3, 0, 1767225600000ull, ch.answer,
                             sizeof(ch.answer));
    CHECK(n > 0);
    ch.answer_len = (size_t)n;
    CHECK_EQ(iog_device_check_join(d, &t), 0);
    CHECK_EQ(ch.gets, 2);
    CHECK(ch.echoed);
    CHECK_EQ(ch.padded, 0); /* /ledger/proof is challenged whatever its size: not padded */
    CHECK(strcmp(ch.query[0], "id=c-one") == 0 && ch.query[1][0] == '\0');
    CHECK(d->log.size == 4 && t == 1767225600000ull);

    /* a later join (block 6 of 7): from=4, the consistency checked */
    tlog_member(&d->mem, priv, 6);
    n = unit_tlog_answer(priv, &d->mem.ch, 7, 6, 4, 1767225700000ull, ch.answer, sizeof(ch.answer));
    CHECK(n > 0 && n < 380);
    ch.answer_len = (size_t)n;
    ch.gets = 0;
    CHECK_EQ(iog_device_check_join(d, &t), 0);
    CHECK(strcmp(ch.query[0], "id=c-one") == 0 && strcmp(ch.query[1], "from=4") == 0);
    CHECK(d->log.size == 7);

    /* an answer that proves another block: -EPROTO, said in diag, the kept checkpoint stays */
    d->mem.height = 5;
    CHECK_EQ(iog_device_check_join(d, &t), -EPROTO);
    CHECK(strstr(d->diag, "another block") != NULL);
    CHECK(d->log.size == 7);

    /* a CH without a log; a CH that knows no join of this ID */
    ch.mode = 1;
    CHECK_EQ(iog_device_check_join(d, &t), -ENOTSUP);
    ch.mode = 2;
    CHECK_EQ(iog_device_check_join(d, &t), -EACCES);
    CHECK_EQ(d->code, IOG_COAP_NOT_FOUND);
}

/*
 * ---- a join and its check on a scripted CH (PROTOCOL.md §3.1, §9.2) ----
 *
 * The CH answers GET /cluster with an Echo made for the device (EC), may
 * answer the first join "stale join" with another (EJ), and takes on
 * /ledger/... only the Echo it holds valid, else 4.01 with a new one (EP).
 */
#define JC_CLUSTER_ECHO "cluster-echo"    /* EC */
#define JC_STALE_ECHO "stale-join-echo-2" /* EJ */
#define JC_PROOF_ECHO "proof-echo"        /* EP */
#define JC_BLOCK 5                        /* the join's block, in a log of 7 */

static struct {
    const uint8_t *priv;     /* the CH key */
    uint8_t cluster[300];    /* GET /cluster's answer */
    size_t cluster_len;
    uint8_t proof[400];      /* GET /ledger/proof's answer */
    size_t proof_len;
    int stale;               /* answer the next join 4.01 "stale join" + EJ */
    int conflict;            /* answer the next join 4.09 in plain text, as a forger on the path */
    uint8_t nd[IOG_NONCE_LEN]; /* the nonce of the last join */
    const char *valid;       /* the Echo /ledger/... takes (the others are challenged) */
    unsigned joins, gets;    /* POST /join, GET /ledger/... seen */
    unsigned echoes[3];      /* Echo options of each GET /ledger/... (the first 3) */
    char echo[3][41];        /* the last Echo of each, as text */
    unsigned padded;         /* GET /ledger/... with a Padding option */
    char signed_echo[41];    /* the echo of the join the CH took */
} jc;

/* The CH's signed join answer (PROTOCOL.md §3.3) for join payload @p j, in block JC_BLOCK. */
static int jc_join_answer(const iog_join_payload_t *j, uint8_t *out, size_t cap)
{
    static uint8_t payload[300];
    static const uint8_t nch[IOG_NONCE_LEN] = { 0x4e, 0x43, 0x48 };
    uint8_t pub[IOG_P256_PUB_LEN], key[80], th[IOG_HASH_LEN], block[IOG_HASH_LEN];
    iog_cbor_enc_t e;
    iog_p256_public(jc.priv, pub);
    iog_thumbprint(pub, th);
    int kl = iog_cose_key_encode(pub, key, sizeof(key));
    unit_tlog_block(JC_BLOCK, block);
    iog_cbor_enc_init(&e, payload, sizeof(payload));
    iog_cbor_put_map(&e, 9);
    iog_cbor_put_uint(&e, 1);
    iog_cbor_put_tstr(&e, j->cluster.s, j->cluster.len);
    iog_cbor_put_uint(&e, 2);
    iog_cbor_put_raw(&e, key, (size_t)kl);
    iog_cbor_put_uint(&e, 3);
    iog_cbor_put_bstr(&e, th, IOG_HASH_LEN);
    iog_cbor_put_uint(&e, 4);
    iog_cbor_put_tstr(&e, j->id.s, j->id.len);
    iog_cbor_put_uint(&e, 5);
    iog_cbor_put_bstr(&e, j->nd, IOG_NONCE_LEN);
    iog_cbor_put_uint(&e, 6);
    iog_cbor_put_bstr(&e, nch, IOG_NONCE_LEN);
    iog_cbor_put_uint(&e, 7);
    iog_cbor_put_uint(&e, JC_BLOCK);
    iog_cbor_put_uint(&e, 8);
    iog_cbor_put_bstr(&e, block, IOG_HASH_LEN);
    iog_cbor_put_uint(&e, 9);
    iog_cbor_put_uint(&e, 1800000000);
    int pl = iog_cbor_enc_finish(&e);
    return pl < 0 ? pl
                  : iog_sign1_encode(jc.priv, th, IOG_HASH_LEN, IOG_AAD_JOIN_RESP, payload, (size_t)pl,
                                     out, cap);
}

static void jc_text(char out[41], const uint8_t *v, size_t n)
{
    n = n < 40 ? n : 40;
    if (n) {
        memcpy(out, v, n);
    }
    out[n] = '\0';
}

static void join_ch(fake_net_t *n, const iog_addr_t *to, const uint8_t *buf, size_t len)
{
    static uint8_t out[600];
    static iog_coap_msg_t req;
    iog_coap_pkt_t p;
    uint8_t code = IOG_COAP_CONTENT;
    const char *echo = NULL; /* an Echo option for the answer */
    const uint8_t *body = NULL;
    size_t body_len = 0;
    (void)to;
    if (iog_coap_parse(&req, buf, len) || IOG_COAP_CLASS(req.code) != 0 || req.code == IOG_COAP_EMPTY) {
        return;
    }
    if (iog_coap_path_is(&req, "/cluster")) {
        echo = JC_CLUSTER_ECHO;
        body = jc.cluster, body_len = jc.cluster_len;
    }
    else if (iog_coap_path_is(&req, "/join")) {
        static uint8_t answer[400];
        iog_sign1_t s;
        iog_join_payload_t j;
        jc.joins++;
        if (iog_sign1_parse(req.payload, req.payload_len, &s) ||
            iog_join_payload_decode(s.payload, s.payload_len, &j)) {
            return;
        }
        memcpy(jc.nd, j.nd, sizeof(jc.nd));
        if (jc.conflict) {
            jc.conflict = 0;
            code = IOG_COAP_CONFLICT;
            body = (const uint8_t *)"id bound to another key", body_len = 23;
        }
        else if (jc.stale) { /* signed over an echo from before the device's latest event */
            jc.stale = 0;
            code = IOG_COAP_UNAUTHORIZED;
            echo = JC_STALE_ECHO;
        }
        else {
            jc_text(jc.signed_echo, j.echo, j.echo ? j.echo_len : 0);
            int a = jc_join_answer(&j, answer, sizeof(answer));
            code = IOG_COAP_CREATED;
            body = answer, body_len = a > 0 ? (size_t)a : 0;
        }
    }
    else {
        const iog_coap_opt_t *o = NULL;
        unsigned k = jc.gets < 3 ? jc.gets : 2;
        jc.gets++;
        jc.echoes[k] = 0;
        for (unsigned i = 0; i < req.nopts; i++) {
            if (req.opts[i].num == IOG_COAP_OPT_ECHO) {
                jc.echoes[k]++;
                o = &req.opts[i];
            }
        }
        jc_text(jc.echo[k], o ? o->val : NULL, o ? o->len : 0);
        jc.padded += iog_coap_opt(&req, IOG_COAP_OPT_PADDING) != NULL;
        if (!o || !jc.valid || strcmp(jc.echo[k], jc.valid) != 0) { /* address not verified */
            code = IOG_COAP_UNAUTHORIZED;
            echo = JC_PROOF_ECHO;
            jc.valid = JC_PROOF_ECHO;
        }
        else if (iog_coap_path_is(&req, "/ledger/proof")) {
            body = jc.proof, body_len = jc.proof_len;
        }
        else {
            code = IOG_COAP_NOT_FOUND; /* no head here: the request is what is checked */
        }
    }
    iog_coap_build(&p, out, sizeof(out), IOG_COAP_ACK, code, req.mid, req.token, req.tkl);
    if (echo) {
        iog_coap_add_opt(&p, IOG_COAP_OPT_ECHO, echo, strlen(echo));
    }
    iog_coap_add_payload(&p, body, body_len);
    fake_net_push(n, &unit_server_addr, n->now + 5, out, (size_t)iog_coap_finish(&p));
}

/* A device joins the scripted CH; @p stale: its first join is answered "stale join". */
static int jc_join(iog_device_t *d, const iog_identity_t *me, int stale, const char *valid)
{
    fake_net_init(&unit_net);
    unit_net.on_send = join_ch;
    iog_device_init(d, &unit_net.plat, &unit_server_addr, me);
    jc.stale = stale;
    jc.valid = valid;
    jc.joins = jc.gets = jc.padded = 0;
    memset(jc.echoes, 0, sizeof(jc.echoes));
    return iog_device_join(d, 48857000, 2353000);
}

static void test_join_echo(void)
{
    static const uint8_t ch_priv[32] = { [31] = 5 };
    iog_identity_t me;
    iog_member_t m;
    uint64_t t = 0, height;
    iog_device_t *const d = unit_board_device();
    memset(&me, 0, sizeof(me));
    iog_id_set(&me.id, "c-one", 5);
    me.priv[31] = 7;
    iog_p256_public(me.priv, me.pub);
    jc.priv = ch_priv;
    tlog_member(&m, ch_priv, JC_BLOCK);
    int n = unit_cluster_answer(ch_priv, m.ch.pub, &m.ch.cluster, NULL, NULL, 0, jc.cluster,
                                sizeof(jc.cluster));
    CHECK(n > 0);
    jc.cluster_len = (size_t)n;
    n = unit_tlog_answer(ch_priv, &m.ch, 7, JC_BLOCK, 0, 1767225600000ull, jc.proof, sizeof(jc.proof));
    CHECK(n > 0);
    jc.proof_len = (size_t)n;

    /* the join signs the /cluster answer's echo; the check carries it and is answered at once */
    CHECK_EQ(jc_join(d, &me, 0, JC_CLUSTER_ECHO), 0);
    CHECK_EQ(jc.joins, 1);
    CHECK(strcmp(jc.signed_echo, JC_CLUSTER_ECHO) == 0);
    CHECK_EQ(iog_device_check_join(d, &t), 0);
    CHECK_EQ(jc.gets, 1);
    CHECK_EQ(jc.echoes[0], 1);
    CHECK(strcmp(jc.echo[0], JC_CLUSTER_ECHO) == 0);
    CHECK_EQ(jc.padded, 0);
    CHECK(d->log.size == 7 && t == 1767225600000ull);

    /* answered "stale join": the join signs the new echo, and the check carries that one */
    CHECK_EQ(jc_join(d, &me, 1, JC_STALE_ECHO), 0);
    CHECK_EQ(jc.joins, 2);
    CHECK(strcmp(jc.signed_echo, JC_STALE_ECHO) == 0);
    CHECK_EQ(iog_device_check_join(d, &t), 0);
    CHECK_EQ(jc.gets, 1);
    CHECK(jc.echoes[0] == 1 && strcmp(jc.echo[0], JC_STALE_ECHO) == 0);

    /* the join's echo gone stale (or the CH restarted): 4.01 + a new Echo, and
     * the repeat carries the new one in place of the join's, unpadded */
    jc.valid = NULL;
    jc.gets = 0;
    d->log.size = 0;
    CHECK_EQ(iog_device_check_join(d, &t), 0);
    CHECK_EQ(jc.gets, 2);
    CHECK(jc.echoes[0] == 1 && strcmp(jc.echo[0], JC_STALE_ECHO) == 0);
    CHECK(jc.echoes[1] == 1 && strcmp(jc.echo[1], JC_PROOF_ECHO) == 0);
    CHECK_EQ(jc.padded, 0);

    /* the signed ledger head, read when the check fails, carries the join's echo too */
    jc.valid = JC_STALE_ECHO;
    jc.gets = 0;
    CHECK_EQ(iog_device_ledger_head(d, &height, &t), -EACCES);
    CHECK(jc.gets == 1 && jc.echoes[0] == 1 && strcmp(jc.echo[0], JC_STALE_ECHO) == 0);
    CHECK_EQ(d->code, IOG_COAP_NOT_FOUND);

    /* a text 4.09 is not the CH's word (it is not signed: a forger on the path
     * may have sent it while the CH recorded the join): the nonce stays
     * pending, and the next join is the same join (PROTOCOL.md §3.3) */
    uint8_t nd[IOG_NONCE_LEN];
    jc.conflict = 1;
    d->pend = 0;
    CHECK_EQ(iog_device_join(d, 48857000, 2353000), -EACCES);
    CHECK_EQ(d->code, IOG_COAP_CONFLICT);
    memcpy(nd, jc.nd, sizeof(nd));
    CHECK_EQ(d->pend, 1);
    CHECK_EQ(iog_device_join(d, 48857000, 2353000), 0);
    CHECK(memcmp(jc.nd, nd, sizeof(nd)) == 0);
}

/* The scripted CH at unit_server_addr, the scripted M2 (unit_m2) elsewhere. */
static void join_ch_or_m2(fake_net_t *n, const iog_addr_t *to, const uint8_t *buf, size_t len)
{
    if (memcmp(to, &unit_server_addr, sizeof(*to)) == 0) {
        join_ch(n, to, buf, len);
    }
    else {
        unit_m2_on_send(n, to, buf, len);
    }
}

/*
 * A join forgets the tickets used as M1: under its new K_m no ticket sealed
 * before opens. A device whose memory is full (IOG_SPENT_TICKETS unexpired
 * tickets: -EBUSY, no hello sent) rejoins and talks at once; the first
 * answer, kept and handed to it again, does not open. (Before, the memory
 * outlived the join: -EBUSY until the tickets expired, up to 10 min.)
 */
static void test_join_forgets_tickets(void)
{
    iog_device_t *const d = unit_board_device(); /* joined by test_join_echo */
    iog_member_keys_t before;
    iog_id_t m2;
    iog_m2m_t *s = NULL;
    iog_id_set(&m2, "m2", 2);
    CHECK(d->joined);
    unit_net.on_send = join_ch_or_m2;
    unit_m2_init(d, "m2", 1700000600);
    for (unsigned i = 0; i < IOG_SPENT_TICKETS; i++) {
        unit_m2.sid[0] = (uint8_t)(1 + i);
        CHECK_EQ(iog_device_talk(d, &unit_peer_addr, &m2, &s), 0);
    }
    unsigned talks = unit_m2.talks;
    CHECK_EQ(iog_device_talk(d, &unit_peer_addr, &m2, &s), -EBUSY);
    CHECK_EQ(unit_m2.talks, talks);
    memcpy(&before, &d->mem.keys, sizeof(before));
    CHECK_EQ(iog_device_join(d, 48857000, 2353000), 0);
    CHECK(memcmp(&before, &d->mem.keys, sizeof(before)) != 0); /* a new K_m */
    for (unsigned i = 0; i < IOG_SPENT_TICKETS; i++) {
        CHECK(d->spent[i].expires == 0);
    }
    unit_m2.replay = 1; /* the first answer again, sealed under the old ticket key */
    CHECK_EQ(iog_device_talk(d, &unit_peer_addr, &m2, &s), -EACCES);
    CHECK(strcmp(d->diag, "ticket does not open") == 0);
    unit_m2.replay = 0;
    unit_m2.sid[0] = 9;
    CHECK_EQ(iog_device_talk(d, &unit_peer_addr, &m2, &s), 0);
    CHECK(s && s->active && s->sid[0] == 9 && s->seq == 0);
    unit_net.on_send = NULL;
}

void test_tlog(void)
{
    test_exhaustive();
    test_decode();
    test_device();
    test_join_echo();
    test_join_forgets_tickets();
}
