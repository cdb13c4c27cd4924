/*
 * Deterministic mutation fuzzing of every decoder of bytes that come from the
 * network or from flash: "every decoder gets a fuzz target; bad input never
 * crashes anything" (gcc has no libFuzzer: this is a small one of our own).
 *
 * Each target starts from real valid bytes (the shared vectors, the libcoap
 * captures, messages built here with the core's encoders), checks that its
 * seeds decode, then decodes a bounded number of mutants of them: bit flips,
 * bytes set to values that matter to CBOR and CoAP, truncations, extensions,
 * insertions, deletions, splices of two seeds, CBOR heads made large, and
 * fully random inputs. Every call must return (the ASan+UBSan build catches
 * any read or write out of bounds and any undefined behaviour), and what a
 * decoder returns on success must point inside its input or output buffer.
 *
 * The PRNG has a fixed seed: a run is reproducible. An output out of bounds
 * prints the target, the mutant's number and the input in hex; a crash under
 * ASan is found again with IOG_FUZZ_TRACE=1, which prints every input before
 * it is decoded. On the host, IOG_FUZZ_ITERS=N sets the mutants per target
 * (default 50,000) and IOG_FUZZ_SEED=N picks another sequence. Targets whose
 * accepted inputs cost an ES256 verify or a P-256 point check get 1/50 of the
 * mutants (1/100 when each also needs a signature). On QEMU every target runs
 * its seeds and 24 mutants (1 for the costly ones).
 */
#include <errno.h>
#include <stdlib.h>

#include "iog_b64.h"
#include "iog_cbor.h"
#include "iog_coap.h"
#include "iog_proto.h"
#include "iog_store.h"
#include "iog_tlog.h"
#include "unit.h"

/* QEMU's RAM below dram0 is shared by the vectors, the test buffers and the stack */
#ifdef IOG_TEST_LX106
#define FUZZ_ITERS 24
#define FUZZ_POOL 8192
#define FUZZ_SEEDS 128
#define FUZZ_MAX 600         /* the fake network's datagrams */
#define FUZZ_VEC_MAX 200     /* the vectors' short messages only */
#define FUZZ_CONST __attribute__((section(".qemu_vectors")))
#else
#define FUZZ_ITERS 50000
#define FUZZ_POOL 32768
#define FUZZ_SEEDS 512
#define FUZZ_MAX IOG_COAP_MAX_PDU /* a whole CoAP datagram */
#define FUZZ_VEC_MAX FUZZ_MAX
#define FUZZ_CONST
#endif
/* costly targets run 1/COSTLY of the iterations */
#define COSTLY 50

/* ---- PRNG (splitmix64) ---- */

static uint64_t rng;

static uint64_t rnd(void)
{
    uint64_t z = (rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* uniform enough in [0, n), n > 0 */
static size_t below(size_t n)
{
    return (size_t)(rnd() % n);
}

/* ---- seeds ---- */

/* What a seed is for: the targets whose seeds it is. */
enum {
    K_COAP = 1u << 0, K_CBOR = 1u << 1, K_KEY = 1u << 2, K_SIGN1 = 1u << 3,
    K_JOINRESP = 1u << 4, K_CLUSTER = 1u << 5, K_HEAD = 1u << 6, K_CP = 1u << 7,
    K_PROOF = 1u << 8, K_ENC0 = 1u << 9, K_PREQ = 1u << 10, K_PRESP = 1u << 11,
    K_M2M = 1u << 12, K_JOINPL = 1u << 13, K_PEERREQ = 1u << 14, K_VERIFY = 1u << 15,
    K_LEAVE = 1u << 16, K_SESSION = 1u << 17, K_TICKET = 1u << 18, K_HELLO = 1u << 19,
    K_TALKRESP = 1u << 20, K_FRAME = 1u << 21, K_RKEY = 1u << 22, K_RSET = 1u << 23,
    K_RMEM = 1u << 24, K_RRTC = 1u << 25, K_B64 = 1u << 26, K_SERVE = 1u << 27,
    K_CLPL = 1u << 28, K_REFUSAL = 1u << 29,
};
/* everything in CBOR */
#define K_ANY_CBOR                                                                                 \
    (K_CBOR | K_KEY | K_SIGN1 | K_JOINRESP | K_CLUSTER | K_HEAD | K_CP | K_PROOF | K_ENC0 |       \
     K_PREQ | K_PRESP | K_M2M | K_JOINPL | K_PEERREQ | K_VERIFY | K_LEAVE | K_SESSION | K_TICKET | \
     K_HELLO | K_TALKRESP | K_CLPL | K_REFUSAL)

static uint8_t pool[FUZZ_POOL] UNIT_BIG;
static struct {
    uint32_t kinds;
    uint16_t off, len;
} seeds[FUZZ_SEEDS] UNIT_BIG;
static unsigned n_seeds;
static size_t pool_len;

static void seed(uint32_t kinds, const uint8_t *p, size_t n)
{
    if (n == 0 || n > FUZZ_MAX || n_seeds == FUZZ_SEEDS || FUZZ_POOL - pool_len < n) {
        return; /* the pool is full: the seeds before are the ones that matter */
    }
    memcpy(pool + pool_len, p, n);
    seeds[n_seeds].kinds = kinds;
    seeds[n_seeds].off = (uint16_t)pool_len;
    seeds[n_seeds].len = (uint16_t)n;
    n_seeds++;
    pool_len += n;
}

/* A field of a shared vector file, or NULL. */
static const char *vfield(const char *file, const char *key)
{
    unsigned nv;
    const vec_t *v = unit_vectors(&nv);
    for (unsigned i = 0; i < nv; i++) {
        if (strcmp(v[i].file, file) != 0) {
            continue;
        }
        for (unsigned j = 0; j < v[i].n; j++) {
            if (strcmp(v[i].kv[j].k, key) == 0) {
                return v[i].kv[j].v;
            }
        }
    }
    return NULL;
}

/* A hex field of a vector into @p out. @return its length, 0 when absent or too long. */
static size_t vhex(const char *file, const char *key, uint8_t *out, size_t cap)
{
    const char *s = vfield(file, key);
    size_t n = s ? unit_hex(s, out, cap) : 0;
    return n > cap ? 0 : n;
}

static int is_hex(const char *s)
{
    size_t n = strlen(s);
    if (n < 4 || n % 2) {
        return 0;
    }
    for (; *s; s++) {
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f'))) {
            return 0;
        }
    }
    return 1;
}

static int ends_with(const char *s, const char *end)
{
    size_t n = strlen(s), m = strlen(end);
    return n >= m && strcmp(s + n - m, end) == 0;
}

/* Every hex field of every shared vector: CBOR seeds, and more by its name. */
static void seed_vectors(uint8_t *tmp)
{
    static const struct {
        char end[16];
        uint32_t kinds;
    } names[] FUZZ_CONST = {
        { "cose_key", K_KEY },        { "sign1", K_SIGN1 },      { "checkpoint", K_CP | K_SIGN1 },
        { "proof_response", K_PROOF }, { "ticket", K_TICKET },   { "box", K_ENC0 },
        { "message", K_ENC0 | K_M2M }, { "reply", K_ENC0 | K_M2M }, { "request", K_ENC0 | K_PREQ },
        { "response", K_ENC0 | K_PRESP }, { "hello", K_HELLO },  { "session_req", K_PEERREQ },
        { "payload", K_JOINPL },      { "credential", K_B64 },   { "refusal", K_ENC0 | K_REFUSAL },
    };
    unsigned nv;
    const vec_t *v = unit_vectors(&nv);
    /* the messages first, then the other fields (keys, hashes, CBOR of decode-strict) */
    for (int pass = 0; pass < 2; pass++) {
        for (unsigned i = 0; i < nv; i++) {
            for (unsigned j = 0; j < v[i].n; j++) {
                const vec_kv_t *kv = &v[i].kv[j];
                if (!is_hex(kv->v)) {
                    continue;
                }
                uint32_t kinds = K_CBOR;
                for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
                    if (ends_with(kv->k, names[k].end)) {
                        kinds |= names[k].kinds;
                    }
                }
                size_t n = unit_hex(kv->v, tmp, FUZZ_MAX);
                if ((kinds != K_CBOR) == (pass == 0) && n <= FUZZ_VEC_MAX) {
                    seed(kinds, tmp, n);
                }
            }
        }
    }
}

/* ---- the contexts the decoders run in ---- */

static const uint8_t ch_priv[32] = { [31] = 5 };
static const uint8_t new_priv[32] = { [31] = 9 };
static struct {
    iog_identity_t me;            /* the device, "c-one" */
    iog_id_t peer, cluster;       /* "m1", "lab-1" */
    iog_member_t mem;             /* its membership at the CH of ch_priv */
    uint8_t nd[IOG_NONCE_LEN];
    uint8_t old_thumb[32];        /* of ch_priv's key, before the rotation to new_priv's */
    uint8_t new_thumb[32];        /* of new_priv's key */
    iog_m2m_t s;                  /* its session with m1, as M2 */
    /* the shared vectors' contexts */
    iog_member_t vmem;            /* protected-request.json */
    iog_id_t vme;
    uint64_t vseq;
    char vpath[16];
    iog_member_t rmem;            /* protected-refusal.json */
    iog_id_t rme;
    uint64_t rseq;
    char rpath[16];
    char rdiag[IOG_REFUSAL_MAX + 1];
    iog_id_t tcl, tme, tini, tresp; /* ticket.json */
    uint8_t tkey[16];
    iog_tlog_cp_t kept;
} cx UNIT_BIG;

static void set_id(iog_id_t *id, const char *s)
{
    iog_id_set(id, s, strlen(s));
}

static void vid(const char *file, const char *key, iog_id_t *id)
{
    const char *s = vfield(file, key);
    if (s) {
        iog_id_set(id, s, strlen(s));
    }
}

/* ---- bounds of what decoders return ---- */

static const uint8_t *cur_in;  /* the input of the call under test */
static size_t cur_n;
static const char *cur_name;   /* its target */
static unsigned long cur_k;    /* its mutant's number, 0 for a seed */
static int trace;              /* IOG_FUZZ_TRACE: every input printed */
static unsigned bad;           /* outputs outside their buffer in this target */

/* @p p[0..len) lies in @p base[0..cap) (or is NULL and empty). */
static int within(const void *p, size_t len, const void *base, size_t cap)
{
    uintptr_t a = (uintptr_t)p, b = (uintptr_t)base;
    return (p == NULL && len == 0) || (a >= b && len <= cap && a - b <= cap - len);
}

#define IN(p, len) out_check(within((p), (len), cur_in, cur_n), __LINE__)
#define OUT(ok) out_check((ok), __LINE__)

static void out_check(int ok, int line)
{
    if (!ok) {
        bad++;
        if (bad <= 3) {
            printf("FAIL fuzz %s mutant %lu: output out of bounds (test_fuzz.c:%d), input:\n",
                   cur_name, cur_k, line);
            unit_dump("  ", cur_in, cur_n);
        }
    }
}

/* ---- targets: each returns 1 when the input was accepted, 0 when refused ---- */

static int t_coap(const uint8_t *in, size_t n)
{
    static iog_coap_msg_t m UNIT_BIG;
    uint32_t v;
    if (iog_coap_parse(&m, in, n)) {
        return 0;
    }
    OUT(m.tkl <= 8 && m.nopts <= IOG_COAP_MAX_OPTS);
    for (unsigned i = 0; i < m.nopts; i++) {
        IN(m.opts[i].val, m.opts[i].len);
        OUT(i == 0 || m.opts[i].num >= m.opts[i - 1].num);
    }
    IN(m.payload, m.payload_len);
    OUT(m.payload == NULL || m.payload_len > 0);
    iog_coap_opt_uint(&m, IOG_COAP_OPT_CONTENT_FORMAT, &v);
    iog_coap_opt_uint(&m, IOG_COAP_OPT_ACCEPT, &v);
    iog_coap_path_is(&m, "/talk");
    iog_coap_path_is(&m, "/");
    return 1;
}

static int t_cbor(const uint8_t *in, size_t n)
{
    iog_cbor_dec_t d;
    iog_cbor_item_t it;
    int ok = iog_cbor_check(in, n) == 0;
    /* the pull parser over any bytes: heads, strings inside */
    iog_cbor_dec_init(&d, in, n);
    while (!iog_cbor_at_end(&d) && iog_cbor_next(&d, &it) == 0) {
        IN(it.raw, 1);
        if (it.type == IOG_CBOR_BSTR || it.type == IOG_CBOR_TSTR) {
            IN(it.ptr, (size_t)it.arg);
        }
        IN(in, (size_t)(d.p - in));
    }
    iog_cbor_dec_init(&d, in, n);
    while (!iog_cbor_at_end(&d) && iog_cbor_skip(&d) == 0) {
        IN(in, (size_t)(d.p - in));
    }
    /* the typed readers in a random order */
    iog_cbor_dec_init(&d, in, n);
    for (int i = 0; i < 24 && !iog_cbor_at_end(&d); i++) {
        const uint8_t *p = NULL;
        size_t len = 0;
        uint64_t u;
        int64_t s;
        int k;
        uint32_t seen = 0;
        uint8_t b[32];
        switch (below(10)) {
        case 0: iog_cbor_get_uint(&d, &u); break;
        case 1: iog_cbor_get_int(&d, &s); break;
        case 2: if (!iog_cbor_get_bstr(&d, &p, &len)) { IN(p, len); } break;
        case 3: if (!iog_cbor_get_tstr(&d, &p, &len)) { IN(p, len); } break;
        case 4: iog_cbor_get_array(&d, &len); break;
        case 5: iog_cbor_get_map(&d, &len); break;
        case 6: iog_cbor_get_bstr_exact(&d, b, below(33)); break;
        case 7: iog_cbor_get_label(&d, &k); break;
        case 8: iog_cbor_map_key(&d, 1 + (int)below(31), &k, &seen); break;
        default:
            if (iog_cbor_skip(&d)) {
                i = 24;
            }
            break;
        }
        IN(in, (size_t)(d.p - in));
    }
    return ok;
}

/* iog_map_decode() with a field of every kind */
typedef struct {
    uint64_t u;
    int64_t i;
    uint8_t bytes[16];
    iog_view_t view, text;
    iog_id_t id;
    uint8_t key[65], point[65];
    iog_view_t array, raw;
    iog_talk_proof_t proof;
    uint8_t hash[32];
} every_t;

#define FLD(T, m, kind) { offsetof(T, m), kind, sizeof(((T *)0)->m) }
static const iog_field_t every_fields[] FUZZ_CONST = {
    FLD(every_t, id, IOG_F_ID),     FLD(every_t, key, IOG_F_KEY),    FLD(every_t, point, IOG_F_POINT),
    FLD(every_t, i, IOG_F_INT),     FLD(every_t, u, IOG_F_UINT),     FLD(every_t, bytes, IOG_F_BYTES),
    FLD(every_t, array, IOG_F_ARRAY), FLD(every_t, hash, IOG_F_BYTES), FLD(every_t, view, IOG_F_VIEW),
    FLD(every_t, text, IOG_F_TEXT), FLD(every_t, raw, IOG_F_RAW),    FLD(every_t, proof, IOG_F_PROOF),
};

static int t_map(const uint8_t *in, size_t n)
{
    every_t x;
    memset(&x, 0, sizeof(x));
    int seen = iog_map_decode(in, n, every_fields, sizeof(every_fields) / sizeof(every_fields[0]), &x);
    IN(x.view.p, x.view.n);
    IN(x.text.p, x.text.n);
    IN(x.array.p, x.array.n);
    IN(x.raw.p, x.raw.n);
    OUT(x.id.len <= IOG_ID_MAX);
    return seen >= 0;
}

static int t_cose_key(const uint8_t *in, size_t n)
{
    uint8_t pub[65];
    return iog_cose_key_decode(in, n, pub) == 0;
}

static int t_sign1(const uint8_t *in, size_t n)
{
    iog_sign1_t s;
    if (iog_sign1_parse(in, n, &s)) {
        return 0;
    }
    IN(s.kid, s.kid_len);
    IN(s.payload, s.payload_len);
    IN(s.sig, IOG_SIG_LEN);
    return 1;
}

static int t_join_resp(const uint8_t *in, size_t n)
{
    iog_member_t m;
    iog_join_req_t jr = { &cx.me, &cx.cluster, 0, 0, cx.nd, NULL, 0, NULL, 0 };
    return iog_join_resp_verify(in, n, &jr, NULL, 0, &m) == 0;
}

static int t_cluster(const uint8_t *in, size_t n)
{
    iog_cluster_t c;
    /* no pin; or pinned to the key before the rotation, which the answer must lead from */
    int a = iog_cluster_info_verify(in, n, NULL, &c) == 0;
    OUT(c.cluster.len <= IOG_ID_MAX);
    int b = iog_cluster_info_verify(in, n, cx.old_thumb, &c) == 0;
    return a || b;
}

/*
 * A cluster-info payload signed by the key it names (anyone can make one):
 * what follows the signature, the rotations from the pin, gets any payload.
 */
static int t_cluster_signed(const uint8_t *in, size_t n)
{
    static uint8_t sb[FUZZ_MAX + 200] UNIT_BIG;
    iog_cluster_t c;
    int len = iog_sign1_encode(new_priv, cx.new_thumb, 32, IOG_AAD_CLUSTER, in, n, sb, sizeof(sb));
    if (len < 0) {
        return 0;
    }
    uint8_t *at = sb + sizeof(sb) - (size_t)len; /* at the end of its buffer, as inputs are */
    memmove(at, sb, (size_t)len);
    return iog_cluster_info_verify(at, (size_t)len, cx.old_thumb, &c) == 0;
}

static int t_head(const uint8_t *in, size_t n)
{
    uint64_t h, t;
    uint8_t hash[32];
    return iog_ledger_head_verify(in, n, cx.mem.ch.pub, &h, hash, &t) == 0;
}

static int t_checkpoint(const uint8_t *in, size_t n)
{
    iog_tlog_cp_t cp;
    uint64_t t;
    return iog_checkpoint_verify(in, n, &cx.mem.ch, &cp, &t) == 0;
}

static int t_proof(const uint8_t *in, size_t n)
{
    iog_proof_t p;
    if (iog_proof_decode(in, n, &p)) {
        return 0;
    }
    IN(p.cp.p, p.cp.n);
    IN(p.block.p, p.block.n);
    OUT(p.block.n == IOG_HASH_LEN);
    IN(p.path.p, IOG_TLOG_STRIDE * p.path.n);
    IN(p.cons.p, IOG_TLOG_STRIDE * p.cons.n);
    /* the walks over the paths as decoded, against any tree */
    iog_tlog_cp_t cp = { p.old_size + p.index + 1, { 0 } }, old = { p.old_size, { 0 } };
    iog_tlog_inclusion(p.index, p.block.p, &cp, p.path.p, p.path.n);
    iog_tlog_consistency(&old, &cp, p.cons.p, p.cons.n);
    return 1;
}

static int t_check_join(const uint8_t *in, size_t n)
{
    /* once with no kept checkpoint, once from the one of the seed (tree size 4) */
    iog_tlog_cp_t none = { 0, { 0 } }, kept = cx.kept;
    uint64_t t;
    int a = iog_tlog_check_join(in, n, &cx.mem, &none, &t) == 0;
    int b = iog_tlog_check_join(in, n, &cx.mem, &kept, &t) == 0;
    return a || b;
}

static int t_enc0(const uint8_t *in, size_t n)
{
    iog_enc0_t e;
    uint64_t seq;
    if (iog_enc0_parse(in, n, &e)) {
        return 0;
    }
    IN(e.kid, e.kid_len);
    IN(e.iv, e.iv_len);
    IN(e.piv, e.piv_len);
    IN(e.kidctx, e.kidctx_len);
    IN(e.ct, e.ct_len);
    if (e.piv) {
        iog_piv_decode(e.piv, e.piv_len, &seq);
    }
    return 1;
}

static uint8_t out_buf[IOG_MAX_PAYLOAD] UNIT_BIG;

static int t_prot_req(const uint8_t *in, size_t n)
{
    iog_id_t kid;
    uint64_t seq;
    /* the device's own member keys, and the vector's */
    int a = iog_prot_req_open(&cx.mem, IOG_PATH_VERIFY, in, n, &kid, &seq, out_buf, sizeof(out_buf));
    OUT(a <= (int)sizeof(out_buf));
    int b = iog_prot_req_open(&cx.vmem, cx.vpath, in, n, &kid, &seq, out_buf, 40);
    OUT(b <= 40);
    return a >= 0 || b >= 0;
}

static int t_prot_resp(const uint8_t *in, size_t n)
{
    int a = iog_prot_resp_open(&cx.vmem, &cx.vme, cx.vseq, cx.vpath, in, n, out_buf, sizeof(out_buf));
    OUT(a <= (int)sizeof(out_buf));
    int b = iog_prot_resp_open(&cx.vmem, &cx.vme, cx.vseq, cx.vpath, in, n, out_buf, 32);
    OUT(b <= 32);
    return a >= 0;
}

/* Only the CH's refusal of the vector's request opens, to its diagnostic. */
static int t_prot_refusal(const uint8_t *in, size_t n)
{
    size_t dl = strlen(cx.rdiag);
    int a = iog_prot_refusal_open(&cx.rmem, &cx.rme, cx.rseq, cx.rpath, in, n, out_buf, sizeof(out_buf));
    OUT(a < 0 || ((size_t)a == dl && memcmp(out_buf, cx.rdiag, dl) == 0));
    int b = iog_prot_refusal_open(&cx.rmem, &cx.rme, cx.rseq, cx.rpath, in, n, out_buf, 32);
    OUT(b <= 32);
    return a >= 0;
}

static int t_m2m(const uint8_t *in, size_t n)
{
    static iog_m2m_t s UNIT_BIG;
    s = cx.s; /* a fresh replay window: the seeds open every time */
    int a = iog_m2m_open(&s, &cx.me.id, in, n, out_buf, sizeof(out_buf));
    OUT(a <= (int)sizeof(out_buf));
    int b = iog_m2m_open(&s, &cx.me.id, in, n, out_buf, 24); /* the same again: a replay */
    OUT(b <= 24 && (a < 0 || b == -EALREADY));
    return a >= 0;
}

static int t_join_payload(const uint8_t *in, size_t n)
{
    iog_join_payload_t j;
    if (iog_join_payload_decode(in, n, &j)) {
        return 0;
    }
    IN(j.echo, j.echo_len);
    IN(j.cred, j.cred_len);
    OUT(j.echo_len <= IOG_ECHO_MAX && j.cred_len <= IOG_CRED_MAX);
    return 1;
}

static int t_peer_req(const uint8_t *in, size_t n)
{
    iog_id_t peer;
    iog_talk_proof_t p;
    int has = 0, ok = 0;
    const uint8_t *echo;
    size_t el;
    if (iog_peer_req_decode(in, n, &peer, &p, &has, &echo, &el) == 0) { /* session-req */
        IN(echo, el);
        OUT(el <= IOG_ECHO_MAX);
        ok = 1;
    }
    if (iog_peer_req_decode(in, n, &peer, NULL, NULL, &echo, &el) == 0) { /* verify-req */
        IN(echo, el);
        ok = 1;
    }
    if (iog_peer_req_decode(in, n, NULL, NULL, NULL, &echo, &el) == 0) { /* leave-req */
        IN(echo, el);
        ok = 1;
    }
    return ok;
}

static int t_verify(const uint8_t *in, size_t n)
{
    iog_verify_resp_t v;
    int ok = iog_verify_resp_decode(in, n, &v) == 0;
    OUT(!ok || (v.status <= IOG_STATUS_EXPIRED && v.peer.len >= 1 && v.peer.len <= IOG_ID_MAX));
    return ok;
}

static int t_leave(const uint8_t *in, size_t n)
{
    uint64_t h;
    uint8_t hash[32];
    return iog_leave_resp_decode(in, n, &h, hash) == 0;
}

static int t_ticket(const uint8_t *in, size_t n)
{
    iog_ticket_t t;
    uint8_t sk[16];
    if (iog_ticket_parse(in, n, &t)) {
        return 0;
    }
    iog_ticket_open(&t, cx.tkey, &cx.tcl, &cx.tme, &cx.tini, &cx.tresp, 0, sk);
    return 1;
}

/* session-resp as the device takes it (iog_device_session()) */
static int t_session(const uint8_t *in, size_t n)
{
    const uint8_t *g, *t, *w;
    size_t gl, tl, wl;
    if (iog_session_resp_split(in, n, &g, &gl, &t, &tl, &w, &wl)) {
        return 0;
    }
    IN(g, gl);
    IN(t, tl);
    IN(w, wl);
    if (w) {
        iog_verify_resp_t v;
        iog_verify_resp_decode(w, wl, &v);
    }
    else {
        iog_ticket_t grant;
        uint8_t sk[16];
        if (iog_ticket_parse(g, gl, &grant) == 0) {
            iog_ticket_open(&grant, cx.tkey, &cx.tcl, &cx.tme, &cx.tini, &cx.tresp, 0, sk);
        }
    }
    return 1;
}

static int t_hello(const uint8_t *in, size_t n)
{
    iog_id_t id, resp;
    iog_talk_proof_t p;
    int has;
    int ok = iog_hello_decode(in, n, &id, &resp, &p, &has) == 0;
    OUT(!ok || (id.len >= 1 && id.len <= IOG_ID_MAX && (!has || resp.len <= IOG_ID_MAX)));
    return ok;
}

static int t_talk_resp(const uint8_t *in, size_t n)
{
    iog_id_t id;
    const uint8_t *t;
    size_t tl;
    iog_ticket_t ticket;
    if (iog_talk_resp_decode(in, n, &id, &t, &tl)) {
        return 0;
    }
    IN(t, tl);
    iog_ticket_parse(t, tl, &ticket);
    return 1;
}

/* ---- flash: the frame and the records ---- */

static const uint8_t *flash_in;
static size_t flash_n;

static int fuzz_read(void *ctx, unsigned rec, uint8_t *buf, size_t cap)
{
    (void)ctx;
    (void)rec;
    size_t n = flash_n < cap ? flash_n : cap;
    memcpy(buf, flash_in, n);
    return (int)n;
}

static int t_frame(const uint8_t *in, size_t n)
{
    static uint8_t buf[IOG_STORE_FRAME_MAX] UNIT_BIG;
    iog_storage_t st = { NULL, fuzz_read, NULL };
    const uint8_t *p = NULL;
    int ok = 0;
    flash_in = in;
    flash_n = n;
    for (unsigned rec = 0; rec < IOG_REC_COUNT; rec++) {
        int r = iog_store_get(&st, rec, buf, sizeof(buf), &p);
        if (r >= 0) {
            OUT(within(p, (size_t)r, buf, sizeof(buf)));
            ok = 1;
        }
    }
    return ok;
}

static int t_rec_key(const uint8_t *in, size_t n)
{
    iog_identity_t me;
    return iog_rec_key_decode(in, n, &me) == 0;
}

static int t_rec_settings(const uint8_t *in, size_t n)
{
    static iog_settings_t s UNIT_BIG;
    int ok = iog_rec_settings_decode(in, n, &s) == 0;
    OUT(strlen(s.ssid) < sizeof(s.ssid) && strlen(s.pass) < sizeof(s.pass) &&
        s.cred_len <= IOG_CRED_MAX && s.id.len <= IOG_ID_MAX && s.peer.len <= IOG_ID_MAX);
    return ok;
}

static int t_rec_member(const uint8_t *in, size_t n)
{
    static iog_rec_member_t r UNIT_BIG;
    int ok = iog_rec_member_decode(in, n, &r) == 0;
    OUT(r.mem.ch.cluster.len <= IOG_ID_MAX && r.mem.seq <= IOG_SEQ_MAX + 1);
    return ok;
}

static int t_rec_rtc(const uint8_t *in, size_t n)
{
    static iog_rec_rtc_t r UNIT_BIG;
    int ok = iog_rec_rtc_decode(in, n, &r) == 0;
    OUT(r.s.peer.len <= IOG_ID_MAX && r.has_session <= 1);
    if (ok && r.s.active) { /* a session read back is usable: its window moves */
        iog_replay_check(&r.s.window, r.s.window.top + 100);
        iog_replay_update(&r.s.window, r.s.window.top + 1);
        iog_replay_check(&r.s.window, r.s.window.top - 1);
    }
    return ok;
}

static int t_b64(const uint8_t *in, size_t n)
{
    /* a line of the console: a NUL-terminated string, here at the end of its buffer */
    static char s[FUZZ_MAX + 1] UNIT_BIG;
    static uint8_t out[IOG_CRED_MAX] UNIT_BIG;
    char *p = s + sizeof(s) - 1 - n;
    memcpy(p, in, n);
    s[sizeof(s) - 1] = '\0';
    int a = iog_b64_decode(p, out, sizeof(out));
    OUT(a <= (int)sizeof(out));
    int b = iog_b64_decode(p, out, 7);
    OUT(b <= 7);
    return a >= 0;
}

/* ---- the device's server: a datagram to its /talk or /m2m ---- */

static iog_device_t *dev;
static iog_m2m_t dev_session UNIT_BIG; /* its session with m1 */
static unsigned to_ch;                 /* datagrams it sent its CH: a hello forwarded */
/* the Echo the device made for unit_peer_addr at dev_echo_ms, which the /talk seeds carry */
static uint8_t dev_echo[IOG_TALK_ECHO_LEN];
static uint32_t dev_echo_ms;

static void serve_sent(fake_net_t *nt, const iog_addr_t *to, const uint8_t *buf, size_t len)
{
    static iog_coap_msg_t m UNIT_BIG;
    (void)nt;
    to_ch += to->port == unit_server_addr.port && memcmp(to->ip, unit_server_addr.ip, 16) == 0;
    /* whatever the device sends is well-formed CoAP of a size it may send */
    OUT(len <= IOG_COAP_MAX_PDU && iog_coap_parse(&m, buf, len) == 0);
}

static int t_serve(const uint8_t *in, size_t n)
{
    fake_net_t *nt = &unit_net;
    dev->sessions[0] = dev_session;
    memset(dev->ep.dedup, 0, sizeof(dev->ep.dedup)); /* no cached answer: each is handled */
    dev->paused = 0; /* the CH never answers here: no pause in forwarding hellos either */
    /* each mutant at the time of the seeds' Echo (it stays fresh), on a full forwarding budget */
    nt->now = dev_echo_ms;
    dev->forward_tokens = IOG_TALK_FORWARD_BURST;
    dev->forward_ms = nt->now;
    nt->n_in = 0;
    nt->n_sent = 0;
    if (n > sizeof(nt->inbox[0].buf)) {
        n = sizeof(nt->inbox[0].buf);
    }
    fake_net_push(nt, &unit_peer_addr, nt->now, in, n);
    unsigned before = dev->messages;
    to_ch = 0;
    iog_device_serve(dev, 0);
    return dev->messages > before || to_ch > 0; /* a message opened, or a hello forwarded */
}

/* ---- mutations ---- */

static const uint8_t interesting[] FUZZ_CONST = { 0x00, 0x01, 0x7f, 0x80, 0xff, 0x17, 0x18, 0x19,
                                                  0x1a, 0x1b, 0x1c, 0x1f, 0x20, 0x40, 0x58, 0x5b,
                                                  0x60, 0x78, 0x7b, 0x80, 0x9f, 0xa0, 0xbf, 0xc0,
                                                  0xf4, 0xf6, 0xf7, 0xf9, 0xfb, 0x0d, 0x0e, 0x0f,
                                                  0xd0, 0xe0, 0xdd, 0xee };

static uint8_t work[FUZZ_MAX + 512] UNIT_BIG; /* the mutant; a signed seed while they are made */

static const uint8_t *seed_at(unsigned i)
{
    return pool + seeds[i].off;
}

/* opens a gap of *k bytes at @p at, shifting the rest (capped: *k may shrink). @return the length */
static size_t gap(size_t n, size_t at, size_t *k)
{
    if (n + *k > FUZZ_MAX) {
        *k = FUZZ_MAX - n;
    }
    memmove(work + at + *k, work + at, n - at);
    return n + *k;
}

static size_t mutate_once(size_t n)
{
    size_t at = n ? below(n) : 0, k;
    switch (below(12)) {
    case 0: /* bit flip */
        if (n) {
            work[at] ^= (uint8_t)(1u << below(8));
        }
        break;
    case 1: /* an interesting byte */
        if (n) {
            work[at] = interesting[below(sizeof(interesting))];
        }
        break;
    case 2: /* a random byte, or a small step */
        if (n) {
            work[at] = below(2) ? (uint8_t)rnd() : (uint8_t)(work[at] + (uint8_t)(below(9) - 4));
        }
        break;
    case 3: /* truncation */
        return below(n + 1);
    case 4: /* extension with random or interesting bytes */
        k = 1 + below(16);
        for (size_t i = 0; i < k && n < FUZZ_MAX; i++) {
            work[n++] = below(2) ? (uint8_t)rnd() : interesting[below(sizeof(interesting))];
        }
        break;
    case 5: /* insertion */
        k = 1 + below(8);
        n = gap(n, at, &k);
        for (size_t i = at; i < at + k; i++) {
            work[i] = (uint8_t)rnd();
        }
        break;
    case 6: /* deletion */
        if (n) {
            k = 1 + below(n - at < 16 ? n - at : 16);
            memmove(work + at, work + at + k, n - at - k);
            n -= k;
        }
        break;
    case 7: { /* splice: part of another seed, over or into this one */
        unsigned o = (unsigned)below(n_seeds);
        size_t from = below(seeds[o].len), len = 1 + below(seeds[o].len - from);
        if (below(2)) {
            n = gap(n, at, &len);
        }
        if (at + len > FUZZ_MAX) {
            len = FUZZ_MAX - at;
        }
        memcpy(work + at, seed_at(o) + from, len);
        if (at + len > n) {
            n = at + len;
        }
        break;
    }
    case 8: /* a CBOR head made large: 1, 2, 4 or 8 bytes of argument, high values */
        if (n) {
            work[at] = (uint8_t)((work[at] & 0xE0) | (24 + below(4)));
            for (size_t i = at + 1; i < n && i <= at + 8; i++) {
                work[i] = below(3) ? 0xff : interesting[below(sizeof(interesting))];
            }
        }
        break;
    case 9: /* a chunk repeated */
        if (n) {
            k = 1 + below(n - at < 32 ? n - at : 32);
            size_t to = below(n + 1), want = k;
            n = gap(n, to, &k);
            if (k < want) {
                break;
            }
            memmove(work + to, work + (at >= to ? at + k : at), k);
        }
        break;
    case 10: /* a CoAP option's delta or length nibble made 13, 14 or 15 */
        if (n) {
            uint8_t nib = (uint8_t)(13 + below(3));
            work[at] = below(2) ? (uint8_t)((work[at] & 0x0F) | nib << 4) : (uint8_t)((work[at] & 0xF0) | nib);
        }
        break;
    default: /* two bytes swapped */
        if (n > 1) {
            size_t b = below(n);
            uint8_t t = work[at];
            work[at] = work[b];
            work[b] = t;
        }
        break;
    }
    return n;
}

/* A mutant of one of the @p kinds seeds (or of any seed, or random bytes) in work. */
static unsigned own[FUZZ_SEEDS] UNIT_BIG, n_own; /* the seeds of the target under test */

static size_t mutant(void)
{
    size_t n;
    if (below(32) == 0) { /* random bytes */
        n = below(below(4) ? 64 : FUZZ_MAX + 1);
        for (size_t i = 0; i < n; i++) {
            work[i] = (uint8_t)rnd();
        }
        return n;
    }
    unsigned s = n_own && below(8) ? own[below(n_own)] : (unsigned)below(n_seeds);
    n = seeds[s].len;
    memcpy(work, seed_at(s), n);
    if (below(8) == 0) { /* the head of this one, the tail of another */
        unsigned o = (unsigned)below(n_seeds);
        size_t cut = below(n + 1), from = below(seeds[o].len + 1u), len = seeds[o].len - from;
        if (cut + len > FUZZ_MAX) {
            len = FUZZ_MAX - cut;
        }
        memcpy(work + cut, seed_at(o) + from, len);
        n = cut + len;
    }
    for (size_t r = 1 + (below(4) ? below(3) : below(12)); r > 0; r--) {
        n = mutate_once(n);
    }
    return n;
}

/* ---- the run ---- */

typedef struct {
    char name[14];
    uint8_t costly;            /* 1: an accepted input costs an ES256 verify or a point check; 2: any a signature too */
    uint32_t kinds;            /* its seeds */
    int (*run)(const uint8_t *in, size_t n);
} target_t;

static const target_t targets[] FUZZ_CONST = {
    { "coap", 0, K_COAP | K_SERVE, t_coap },
    { "cbor", 0, K_ANY_CBOR, t_cbor },
    { "map", 0, K_ANY_CBOR, t_map },
    { "cose_key", 1, K_KEY, t_cose_key },
    { "sign1", 0, K_SIGN1 | K_JOINRESP | K_CLUSTER | K_HEAD | K_CP, t_sign1 },
    { "join_resp", 1, K_JOINRESP, t_join_resp },
    { "cluster", 1, K_CLUSTER, t_cluster },
    { "cluster_sign", 2, K_CLPL, t_cluster_signed },
    { "ledger_head", 1, K_HEAD, t_head },
    { "checkpoint", 1, K_CP, t_checkpoint },
    { "proof", 0, K_PROOF, t_proof },
    { "check_join", 1, K_PROOF, t_check_join },
    { "enc0", 0, K_ENC0 | K_PREQ | K_PRESP | K_M2M | K_TICKET, t_enc0 },
    { "prot_req", 0, K_PREQ, t_prot_req },
    { "prot_resp", 0, K_PRESP, t_prot_resp },
    { "prot_refusal", 0, K_REFUSAL, t_prot_refusal },
    { "m2m", 0, K_M2M, t_m2m },
    { "join_payload", 1, K_JOINPL, t_join_payload },
    { "peer_req", 0, K_PEERREQ, t_peer_req },
    { "verify_resp", 0, K_VERIFY, t_verify },
    { "leave_resp", 0, K_LEAVE, t_leave },
    { "session_resp", 0, K_SESSION, t_session },
    { "ticket", 0, K_TICKET, t_ticket },
    { "hello", 0, K_HELLO, t_hello },
    { "talk_resp", 0, K_TALKRESP, t_talk_resp },
    { "store_frame", 0, K_FRAME, t_frame },
    { "rec_key", 0, K_RKEY, t_rec_key },
    { "rec_settings", 0, K_RSET, t_rec_settings },
    { "rec_member", 0, K_RMEM, t_rec_member },
    { "rec_rtc", 0, K_RRTC, t_rec_rtc },
    { "b64", 0, K_B64, t_b64 },
    { "serve", 0, K_SERVE, t_serve },
};

/* The input of a call, at the very end of its buffer: a read past it is out of bounds. */
static uint8_t in_buf[FUZZ_MAX] UNIT_BIG;

static int call(const target_t *t, const uint8_t *p, size_t n)
{
    uint8_t *in = in_buf + sizeof(in_buf) - n;
    memmove(in, p, n);
    cur_in = in;
    cur_n = n;
    cur_name = t->name;
    if (trace) {
        printf("fuzz %s %lu:", t->name, cur_k);
        unit_dump("", in, n);
    }
    return t->run(in, n);
}

static unsigned long fuzz_iters(void)
{
#ifndef IOG_TEST_LX106
    const char *s = getenv("IOG_FUZZ_ITERS");
    trace = getenv("IOG_FUZZ_TRACE") != NULL;
    if (s && *s) {
        return strtoul(s, NULL, 10);
    }
#endif
    return FUZZ_ITERS;
}

static uint64_t fuzz_seed(void)
{
#ifndef IOG_TEST_LX106
    const char *s = getenv("IOG_FUZZ_SEED");
    if (s && *s) {
        return strtoull(s, NULL, 10);
    }
#endif
    return 0x696f67fu;
}

/* ---- seeds built here ---- */


/* A CoAP request to the device carrying @p payload (@p path, @p cf). */
/* A POST to @p path; to /talk also with the Echo that verifies unit_peer_addr (dev_echo). */
static void seed_request(uint32_t kinds, uint8_t type, const char *path, int cf, const uint8_t *payload,
                         size_t n)
{
    uint8_t *dg = out_buf; /* free until the targets run */
    iog_coap_pkt_t p;
    static const uint8_t tok[4] = { 1, 2, 3, 4 };
    int talk = strcmp(path, "/talk") == 0;
    for (int echo = 0; echo <= talk; echo++) {
        iog_coap_build(&p, dg, sizeof(out_buf), type, IOG_COAP_POST, 0x1234, tok, (uint8_t)(n % 5));
        iog_coap_add_path(&p, path);
        if (cf >= 0) {
            iog_coap_add_opt_uint(&p, IOG_COAP_OPT_CONTENT_FORMAT, (uint32_t)cf);
        }
        if (echo) {
            iog_coap_add_opt(&p, IOG_COAP_OPT_ECHO, dev_echo, sizeof(dev_echo));
        }
        iog_coap_add_payload(&p, payload, n);
        int len = iog_coap_finish(&p);
        if (len > 0) {
            seed(kinds, dg, (size_t)len);
        }
    }
}

static void setup_contexts(void)
{
    memset(&cx, 0, sizeof(cx));
    set_id(&cx.me.id, "c-one");
    set_id(&cx.peer, "m1");
    set_id(&cx.cluster, "lab-1");
    memset(cx.me.priv, 0, 32);
    cx.me.priv[31] = 3;
    iog_p256_public(cx.me.priv, cx.me.pub);
    for (int i = 0; i < 16; i++) {
        cx.nd[i] = (uint8_t)(i + 1);
    }
    cx.mem.ch.cluster = cx.cluster;
    iog_p256_public(ch_priv, cx.mem.ch.pub);
    iog_thumbprint(cx.mem.ch.pub, cx.mem.ch.thumb);
    memcpy(cx.old_thumb, cx.mem.ch.thumb, 32);
    cx.mem.height = 3;
    unit_tlog_block(3, cx.mem.block);
    memset(&cx.mem.keys, 0x5a, sizeof(cx.mem.keys));
    memcpy(cx.mem.nd, cx.nd, 16);
    cx.mem.seq = 1;
    cx.kept.size = 4;
    unit_tlog_root(4, cx.kept.root);
    /* its session with m1, as M2, and m1's side of it */
    uint8_t sk[16], sid[16];
    memset(sk, 0x33, 16);
    memset(sid, 0x44, 16);
    iog_m2m_init(&cx.s, sk, sid, 1800000000, &cx.me.id, &cx.peer);
    /* protected-request.json */
    static const char pr[] FUZZ_CONST = "protected-request.json";
    vid(pr, "cluster", &cx.vmem.ch.cluster);
    vid(pr, "id", &cx.vme);
    vhex(pr, "req_key", cx.vmem.keys.req, 16);
    vhex(pr, "resp_key", cx.vmem.keys.resp, 16);
    vhex(pr, "common_iv", cx.vmem.keys.iv, 12);
    const char *s = vfield(pr, "path"), *q = vfield(pr, "seq");
    if (s && strlen(s) < sizeof(cx.vpath)) {
        strcpy(cx.vpath, s);
    }
    cx.vseq = q ? strtoull(q, NULL, 10) : 0;
    /* protected-refusal.json */
    static const char rj[] FUZZ_CONST = "protected-refusal.json";
    vid(rj, "cluster", &cx.rmem.ch.cluster);
    vid(rj, "id", &cx.rme);
    vhex(rj, "resp_key", cx.rmem.keys.resp, 16);
    s = vfield(rj, "path");
    q = vfield(rj, "seq");
    if (s && strlen(s) < sizeof(cx.rpath)) {
        strcpy(cx.rpath, s);
    }
    cx.rseq = q ? strtoull(q, NULL, 10) : 0;
    s = vfield(rj, "diagnostic");
    if (s && strlen(s) < sizeof(cx.rdiag)) {
        strcpy(cx.rdiag, s);
    }
    /* ticket.json */
    static const char tj[] FUZZ_CONST = "ticket.json";
    vid(tj, "cluster", &cx.tcl);
    vid(tj, "me", &cx.tme);
    vid(tj, "initiator", &cx.tini);
    vid(tj, "responder", &cx.tresp);
    vhex(tj, "ticket_key", cx.tkey, 16);
}

static void build_seeds(void)
{
    iog_cbor_enc_t e;
    int n;
    uint8_t *b = work; /* free until the targets run */
    const size_t cap = sizeof(work);
    n_seeds = 0;
    pool_len = 0;

    /* the vectors' messages of the contexts above, before the pool fills */
    n = (int)vhex("ticket.json", "ticket", b, cap);
    seed(K_TICKET | K_ENC0, b, (size_t)n);
    n = (int)vhex("protected-request.json", "response", b, cap);
    seed(K_PRESP | K_ENC0, b, (size_t)n);
    n = (int)vhex("protected-refusal.json", "refusal", b, cap);
    seed(K_REFUSAL | K_ENC0, b, (size_t)n);
    /* for that request: a map sealed as a refusal, and a refusal sealed as an answer ({}, nonce of seq) */
    for (int mode = UNIT_R_MAP; mode <= UNIT_R_ANSWER; mode++) {
        iog_coap_msg_t m, req;
        memset(&req, 0, sizeof(req));
        n = unit_refusal(&cx.rmem, mode, IOG_COAP_FORBIDDEN, cx.rdiag, NULL, 0, &req, &cx.rme, cx.rseq, cx.rpath, b, cap);
        if (n > 0 && iog_coap_parse(&m, b, (size_t)n) == 0) {
            seed(K_REFUSAL | K_ENC0 | K_PRESP, m.payload, m.payload_len);
        }
    }

    /* CoAP: the libcoap captures */
    for (unsigned i = 0; i < UNIT_LIBCOAP; i++) {
        size_t l = unit_hex(unit_libcoap[i], b, cap);
        seed(K_COAP, b, l);
    }

    /* the COSE_Keys; a signed cluster-info with and without a rotation; a ledger head */
    uint8_t new_pub[65];
    iog_p256_public(new_priv, new_pub);
    n = iog_cose_key_encode(cx.mem.ch.pub, b, cap);
    seed(K_KEY, b, (size_t)n);
    n = unit_cluster_answer(ch_priv, cx.mem.ch.pub, &cx.cluster, NULL, NULL, 0, b, cap);
    seed(K_CLUSTER, b, (size_t)n);
    static uint8_t rot[300] UNIT_BIG;
    n = unit_rotation(ch_priv, new_pub, ch_priv, &cx.cluster, rot, sizeof(rot));
    const uint8_t *rp = rot;
    size_t rl = (size_t)n;
    n = unit_cluster_answer(new_priv, new_pub, &cx.cluster, &rp, &rl, 1, b, cap);
    seed(K_CLUSTER, b, (size_t)n);
    {
        iog_sign1_t s;
        if (n > 0 && iog_sign1_parse(b, (size_t)n, &s) == 0) {
            seed(K_CLPL, s.payload, s.payload_len);
        }
    }
    iog_thumbprint(new_pub, cx.new_thumb);
    seed(K_SIGN1, rot, rl);
    {
        uint8_t pl[64], h[32];
        memset(h, 0x77, 32);
        iog_cbor_enc_init(&e, pl, sizeof(pl));
        iog_cbor_put_map(&e, 3);
        iog_cbor_put_uint(&e, 1);
        iog_cbor_put_uint(&e, 12);
        iog_cbor_put_uint(&e, 2);
        iog_cbor_put_bstr(&e, h, 32);
        iog_cbor_put_uint(&e, 3);
        iog_cbor_put_uint(&e, 1767225600000ull);
        n = iog_sign1_encode(ch_priv, cx.mem.ch.thumb, 32, IOG_AAD_HEAD, pl, e.len, b, cap);
        seed(K_HEAD, b, (size_t)n);
    }

    /* the join: its request's payload, and the CH's answer */
    {
        iog_join_req_t jr = { &cx.me, &cx.cluster, 48856600, 2352200, cx.nd, cx.nd, 12, cx.nd, 16 };
        iog_sign1_t s;
        n = iog_join_req_encode(&jr, b, cap);
        seed(K_SIGN1, b, (size_t)n);
        if (n > 0 && iog_sign1_parse(b, (size_t)n, &s) == 0) {
            seed(K_JOINPL, s.payload, s.payload_len);
        }
        uint8_t pl[300], key[80], blk[32];
        memset(blk, 0x66, 32);
        iog_cbor_enc_init(&e, pl, sizeof(pl));
        iog_cbor_put_map(&e, 9);
        iog_cbor_put_uint(&e, 1);
        iog_cbor_put_tstr(&e, cx.cluster.s, cx.cluster.len);
        iog_cbor_put_uint(&e, 2);
        iog_cbor_put_raw(&e, key, (size_t)iog_cose_key_encode(cx.mem.ch.pub, key, sizeof(key)));
        iog_cbor_put_uint(&e, 3);
        iog_cbor_put_bstr(&e, cx.mem.ch.thumb, 32);
        iog_cbor_put_uint(&e, 4);
        iog_cbor_put_tstr(&e, cx.me.id.s, cx.me.id.len);
        iog_cbor_put_uint(&e, 5);
        iog_cbor_put_bstr(&e, cx.nd, 16);
        iog_cbor_put_uint(&e, 6);
        iog_cbor_put_bstr(&e, blk, 16);
        iog_cbor_put_uint(&e, 7);
        iog_cbor_put_uint(&e, 3);
        iog_cbor_put_uint(&e, 8);
        iog_cbor_put_bstr(&e, blk, 32);
        iog_cbor_put_uint(&e, 9);
        iog_cbor_put_uint(&e, 1800000000);
        n = iog_sign1_encode(ch_priv, cx.mem.ch.thumb, 32, IOG_AAD_JOIN_RESP, pl, e.len, b, cap);
        seed(K_JOINRESP, b, (size_t)n);
    }

    /* the log: proof answers, and the checkpoint in them */
    for (size_t from = 0; from <= 4; from += 4) {
        iog_proof_t p;
        n = unit_tlog_answer(ch_priv, &cx.mem.ch, 9, 3, from, 1767225600000ull, b, cap);
        seed(K_PROOF, b, (size_t)n);
        if (n > 0 && iog_proof_decode(b, (size_t)n, &p) == 0 && from) {
            seed(K_CP | K_SIGN1, p.cp.p, p.cp.n);
        }
    }

    /* protected requests (the CH's side opens them) */
    {
        uint8_t pt[100], echo[12];
        iog_talk_proof_t proof;
        memset(echo, 0xEC, sizeof(echo));
        iog_talk_proof_make(cx.mem.keys.talk, &cx.cluster, &cx.peer, &cx.me.id, cx.nd, 1700000000,
                            &proof);
        n = iog_peer_req_encode(&cx.peer, &proof, echo, sizeof(echo), pt, sizeof(pt));
        seed(K_PEERREQ, pt, (size_t)n);
        n = iog_prot_req_seal(&cx.mem, &cx.me.id, 5, IOG_PATH_VERIFY, pt, (size_t)n, b, cap);
        seed(K_PREQ | K_ENC0, b, (size_t)n);
        n = iog_peer_req_encode(&cx.peer, NULL, NULL, 0, pt, sizeof(pt));
        seed(K_PEERREQ, pt, (size_t)n);
        n = iog_peer_req_encode(NULL, NULL, echo, sizeof(echo), pt, sizeof(pt));
        seed(K_PEERREQ, pt, (size_t)n);
        /* a hello to the device, with a fresh proof; one that predates proofs */
        iog_talk_proof_make(cx.mem.keys.talk, &cx.cluster, &cx.peer, &cx.me.id, cx.nd, 1700000000,
                            &proof);
        n = iog_hello_encode(&cx.peer, &cx.me.id, &proof, pt, sizeof(pt));
        seed(K_HELLO, pt, (size_t)n);
        seed_request(K_SERVE, IOG_COAP_CON, "/talk", IOG_CF_CBOR, pt, (size_t)n);
        seed_request(K_SERVE, IOG_COAP_NON, "/talk", IOG_CF_CBOR, pt, (size_t)n);
        iog_cbor_enc_init(&e, pt, sizeof(pt));
        iog_cbor_put_map(&e, 1);
        iog_cbor_put_uint(&e, 1);
        iog_cbor_put_tstr(&e, cx.peer.s, cx.peer.len);
        seed(K_HELLO, pt, e.len);
        seed_request(K_SERVE, IOG_COAP_CON, "/talk", IOG_CF_CBOR, pt, e.len);
    }

    /* M2M: m1's messages to the device in their session */
    {
        static iog_m2m_t m1 UNIT_BIG;
        uint8_t sk[16], sid[16];
        memset(sk, 0x33, 16);
        memset(sid, 0x44, 16);
        iog_m2m_init(&m1, sk, sid, 1800000000, &cx.peer, &cx.me.id);
        m1.seq = 7;
        n = iog_m2m_seal(&m1, &cx.peer, (const uint8_t *)"reading 1", 9, b, cap);
        seed(K_M2M | K_ENC0, b, (size_t)n);
        seed_request(K_SERVE, IOG_COAP_CON, "/m2m", IOG_CF_COSE_ENCRYPT0, b, (size_t)n);
        n = iog_m2m_seal(&m1, &cx.peer, NULL, 0, b, cap);
        seed(K_M2M | K_ENC0, b, (size_t)n);
        seed_request(K_SERVE, IOG_COAP_NON, "/m2m", IOG_CF_COSE_ENCRYPT0, b, (size_t)n);
    }

    /* the CH's answers: verify-resp, leave-resp, session-resp (tickets, or a warning) */
    {
        uint8_t h[32], t[400];
        size_t tl = vhex("ticket.json", "ticket", t, sizeof(t));
        memset(h, 0x99, 32);
        iog_cbor_enc_init(&e, b, cap);
        iog_cbor_put_map(&e, 5);
        iog_cbor_put_uint(&e, 1);
        iog_cbor_put_tstr(&e, cx.peer.s, cx.peer.len);
        iog_cbor_put_uint(&e, 2);
        iog_cbor_put_uint(&e, IOG_STATUS_LEFT);
        iog_cbor_put_uint(&e, 3);
        iog_cbor_put_uint(&e, 42);
        iog_cbor_put_uint(&e, 4);
        iog_cbor_put_bstr(&e, h, 32);
        iog_cbor_put_uint(&e, 5);
        iog_cbor_put_uint(&e, 1800000000);
        int vl = iog_cbor_enc_finish(&e);
        seed(K_VERIFY, b, (size_t)vl);
        memmove(b + 2, b, (size_t)vl);
        b[0] = 0xA1;
        b[1] = 0x03;
        seed(K_SESSION, b, (size_t)vl + 2);
        iog_cbor_enc_init(&e, b, cap);
        iog_cbor_put_map(&e, 2);
        iog_cbor_put_uint(&e, 1);
        iog_cbor_put_uint(&e, 43);
        iog_cbor_put_uint(&e, 2);
        iog_cbor_put_bstr(&e, h, 32);
        seed(K_LEAVE, b, e.len);
        iog_cbor_enc_init(&e, b, cap);
        iog_cbor_put_map(&e, 2);
        iog_cbor_put_uint(&e, 1);
        iog_cbor_put_raw(&e, t, tl);
        iog_cbor_put_uint(&e, 2);
        iog_cbor_put_raw(&e, t, tl);
        seed(K_SESSION, b, e.len);
        n = iog_talk_resp_encode(&cx.peer, t, tl, b, cap);
        seed(K_TALKRESP, b, (size_t)n);
    }

    /* flash: every record, framed and as its payload */
    {
        static union {
            iog_settings_t st;
            iog_rec_member_t rm;
            iog_rec_rtc_t rr;
        } u UNIT_BIG;
        iog_settings_t *const st = &u.st;
        iog_rec_member_t *const rm = &u.rm;
        iog_rec_rtc_t *const rr = &u.rr;
        uint8_t *const frame = out_buf;
        const size_t fcap = IOG_STORE_FRAME_MAX;
        iog_storage_t flash = unit_storage();
        unit_flash_reset();
        n = iog_rec_key_encode(&cx.me, b, cap);
        seed(K_RKEY, b, (size_t)n);
        iog_store_put(&flash, IOG_REC_KEY, b, (size_t)n, frame, fcap);
        iog_settings_default(st);
        strcpy(st->ssid, "lab");
        strcpy(st->pass, "passphrase");
        st->server = unit_server_addr;
        st->has_pos = 1;
        st->lat = 48856600;
        st->lon = 2352200;
        st->id = cx.me.id;
        st->peer = cx.peer;
        st->peer_addr = unit_peer_addr;
        st->has_pin = 1;
        memcpy(st->pin, cx.old_thumb, 32);
        st->cred_len = 20;
        memset(st->cred, 0xC5, 20);
        n = iog_rec_settings_encode(st, b, cap);
        seed(K_RSET, b, (size_t)n);
        iog_store_put(&flash, IOG_REC_SETTINGS, b, (size_t)n, frame, fcap);
        memset(rm, 0, sizeof(*rm));
        rm->mem = cx.mem;
        rm->mark = 300;
        rm->clock = 1700000000;
        n = iog_rec_member_encode(rm, b, cap);
        seed(K_RMEM, b, (size_t)n);
        rm->log = cx.kept;
        n = iog_rec_member_encode(rm, b, cap);
        seed(K_RMEM, b, (size_t)n);
        iog_store_put(&flash, IOG_REC_MEMBER, b, (size_t)n, frame, fcap);
        memset(rr, 0, sizeof(*rr));
        rr->member_mark = 300;
        rr->member_seq = 290;
        rr->clock = 1700000000;
        rr->wakes = 3;
        n = iog_rec_rtc_encode(rr, b, cap);
        seed(K_RRTC, b, (size_t)n);
        rr->has_session = 1;
        rr->s = cx.s;
        rr->s.seq = 12;
        iog_replay_update(&rr->s.window, 9);
        rr->addr = unit_peer_addr;
        n = iog_rec_rtc_encode(rr, b, cap);
        seed(K_RRTC, b, (size_t)n);
        iog_store_put(&flash, IOG_REC_RTC, b, (size_t)n, frame, fcap);
        for (unsigned rec = 0; rec < IOG_REC_COUNT; rec++) {
            if (unit_flash.len[rec]) {
                seed(K_FRAME, unit_flash.data[rec], unit_flash.len[rec]);
            }
        }
        unit_flash_reset();
    }

    /* base64: a credential's line, and short ones with padding */
    {
        static const uint8_t three[5] = { 0xfb, 0xff, 0x00, 0x10, 0x7f };
        for (size_t l = 1; l <= 5; l++) {
            n = iog_b64_encode(three, l, (char *)b, cap);
            seed(K_B64, b, (size_t)n);
        }
        uint8_t cred[200];
        size_t cl = vhex("join-request-credential.json", "credential", cred, sizeof(cred));
        n = iog_b64_encode(cred, cl, (char *)b, cap);
        seed(K_B64, b, (size_t)n);
    }

    seed_vectors(b);
}

static void setup_device(void)
{
    dev = unit_board_device();
    fake_net_init(&unit_net);
    iog_device_init(dev, &unit_net.plat, &unit_server_addr, &cx.me);
    dev->mem = cx.mem;
    dev->joined = 1;
    dev->ep.max_retransmit = 1; /* the CH never answers here: give up soon */
    dev_session = cx.s;
    unit_net.on_send = serve_sent;
    /* the Echo a /talk from unit_peer_addr is challenged with (PROTOCOL.md §2), for the seeds */
    const uint8_t talk[] = { 0x40, 0x02, 0x12, 0x36, 0xb4, 't', 'a', 'l', 'k', 0x11, 0x3c };
    iog_coap_msg_t m;
    uint8_t a[64];
    dev_echo_ms = unit_net.now;
    fake_net_push(&unit_net, &unit_peer_addr, unit_net.now, talk, sizeof(talk));
    iog_device_serve(dev, 0);
    size_t al = unit_net.n_sent ? unit_net.sent[unit_net.n_sent - 1].len : 0;
    memcpy(a, unit_net.sent[unit_net.n_sent ? unit_net.n_sent - 1 : 0].buf, al <= sizeof(a) ? al : 0);
    const iog_coap_opt_t *o = al <= sizeof(a) && iog_coap_parse(&m, a, al) == 0 ? iog_coap_opt(&m, IOG_COAP_OPT_ECHO) : NULL;
    CHECK(o && o->len == sizeof(dev_echo));
    if (o && o->len == sizeof(dev_echo)) {
        memcpy(dev_echo, o->val, sizeof(dev_echo));
    }
}

void test_fuzz(void)
{
    unsigned long iters = fuzz_iters();
    uint64_t base = fuzz_seed();
    setup_contexts();
    setup_device(); /* before the seeds: the /talk ones carry its Echo */
    build_seeds();
    printf("fuzz: %u seeds (%u bytes), %lu mutants per target, 1/%d for the costly ones\n", n_seeds,
           (unsigned)pool_len, iters, COSTLY);
    for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
        const target_t *t = &targets[i];
        unsigned long runs = t->costly ? (iters + COSTLY * t->costly - 1) / (COSTLY * t->costly) : iters;
        unsigned long acc = 0;
        unsigned seeds_ok = 0;
        rng = base ^ (0x100000001B3ull * (i + 1));
        bad = 0;
        /* the seeds themselves: a target whose seeds are all refused fuzzes little */
        n_own = 0;
        cur_k = 0;
        for (unsigned s = 0; s < n_seeds; s++) {
            if (seeds[s].kinds & t->kinds) {
                own[n_own++] = s;
                seeds_ok += (unsigned)call(t, seed_at(s), seeds[s].len);
            }
        }
        for (cur_k = 1; cur_k <= runs; cur_k++) {
            size_t n = mutant();
            acc += (unsigned long)call(t, work, n);
        }
        printf("fuzz %-12s %3u/%-3u seeds accepted, %lu of %lu mutants accepted\n", t->name,
               seeds_ok, n_own, acc, runs);
        CHECK(seeds_ok > 0);
        CHECK_EQ(bad, 0);
    }
    unit_net.on_send = NULL;
}
