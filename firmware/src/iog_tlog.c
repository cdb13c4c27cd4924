/*
 * The transparency log as a device checks it: checkpoints and RFC 9162 proofs.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "iog_cbor.h"
#include "iog_tlog.h"

#define FLD(T, m, kind) { offsetof(T, m), kind, sizeof(((T *)0)->m) }

/*
 * checkpoint (PROTOCOL.md §9.1), the payload of a COSE_Sign1 by the CH key:
 *
 *   A4                          map(4)
 *      01 <tstr cluster>        origin
 *      02 <uint size>           tree size, >= 1
 *      03 58 20 <root:32>       root hash
 *      04 <uint time_ms>        time of the newest block
 */
typedef struct {
    iog_tlog_cp_t cp;
    iog_view_t cluster;
    uint64_t time_ms;
} checkpoint_t;

static const iog_field_t checkpoint_fields[] = {
    FLD(checkpoint_t, cluster, IOG_F_TEXT), FLD(checkpoint_t, cp.size, IOG_F_UINT),
    FLD(checkpoint_t, cp.root, IOG_F_BYTES), FLD(checkpoint_t, time_ms, IOG_F_UINT),
};

/*
 * Decodes a checkpoint and checks its kid and cluster against @p ch; the
 * signature is left to the caller (iog_sign1_verify() on @p s), so that a
 * device can check the cheap things first.
 */
static int checkpoint_open(const uint8_t *buf, size_t len, const iog_cluster_t *ch,
                           iog_tlog_cp_t *cp, uint64_t *time_ms, iog_sign1_t *s)
{
    checkpoint_t c;
    if (iog_sign1_decode(buf, len, s, checkpoint_fields, 4, &c) != 0x1E || c.cp.size == 0) {
        return -EBADMSG;
    }
    /* the kid names the signer: a checkpoint of any other key is refused unverified */
    if (s->kid_len != IOG_HASH_LEN || !iog_hash_eq(s->kid, ch->thumb) ||
        !iog_id_eq(&ch->cluster, c.cluster.p, c.cluster.n)) {
        return -EACCES;
    }
    *cp = c.cp;
    if (time_ms) {
        *time_ms = c.time_ms;
    }
    return 0;
}

int iog_checkpoint_verify(const uint8_t *buf, size_t len, const iog_cluster_t *ch,
                          iog_tlog_cp_t *cp, uint64_t *time_ms)
{
    iog_sign1_t s;
    int e = checkpoint_open(buf, len, ch, cp, time_ms, &s);
    return e ? e : iog_sign1_verify(&s, ch->pub, IOG_AAD_CHECKPOINT);
}

/*
 * inclusion-proof (PROTOCOL.md §9.2), Content-Format 60:
 *
 *   A4..A6                      map(4..6)
 *      01 <bstr checkpoint>     COSE_Sign1, §9.1
 *      02 <uint index>          leaf index = block height
 *      03 58 20 <hash:32>       block hash
 *      04 <array of hash>       audit path, leaf to root
 *     [05 <uint M>]             when asked with from=M
 *     [06 <array of hash>]      consistency path from M (absent when empty)
 */
static const iog_field_t proof_fields[] = {
    FLD(iog_proof_t, cp, IOG_F_VIEW),     FLD(iog_proof_t, index, IOG_F_UINT),
    FLD(iog_proof_t, block, IOG_F_VIEW),  FLD(iog_proof_t, path, IOG_F_ARRAY),
    FLD(iog_proof_t, old_size, IOG_F_UINT), FLD(iog_proof_t, cons, IOG_F_ARRAY),
};

/* A path as its hashes: an array of 32-byte bstrs in deterministic encoding. */
static int path_read(iog_view_t *v)
{
    iog_cbor_dec_t d;
    size_t n = 0;
    iog_cbor_dec_init(&d, v->p, v->n);
    if (v->p && (iog_cbor_get_array(&d, &n) || n > IOG_TLOG_MAX_PATH ||
                 v->p + v->n - d.p != (ptrdiff_t)(IOG_TLOG_STRIDE * n))) {
        return -EBADMSG;
    }
    for (size_t i = 0; i < n; i++) {
        if (d.p[IOG_TLOG_STRIDE * i] != 0x58 || d.p[IOG_TLOG_STRIDE * i + 1] != IOG_HASH_LEN) {
            return -EBADMSG;
        }
    }
    v->p = d.p;
    v->n = n;
    return 0;
}

int iog_proof_decode(const uint8_t *buf, size_t len, iog_proof_t *p)
{
    memset(p, 0, sizeof(*p));
    int seen = iog_map_decode(buf, len, proof_fields, 6, p);
    /* 1-4 required; a consistency path only with its tree size, which is >= 1 */
    if ((seen & 0x1E) != 0x1E || p->block.n != IOG_HASH_LEN || ((seen & 0x20) && !p->old_size) ||
        (p->cons.p && !p->old_size) || path_read(&p->path) || path_read(&p->cons)) {
        return -EBADMSG;
    }
    return 0;
}

/* SHA-256(prefix || a [|| b]) into out, which may alias a or b (RFC 9162 §2.1.1). */
static void tree_hash(uint8_t prefix, const uint8_t *a, const uint8_t *b, uint8_t out[IOG_HASH_LEN])
{
    iog_sha256_ctx_t c;
    iog_sha256_init(&c);
    iog_sha256_update(&c, &prefix, 1);
    iog_sha256_update(&c, a, IOG_HASH_LEN);
    if (b) {
        iog_sha256_update(&c, b, IOG_HASH_LEN);
    }
    iog_sha256_final(&c, out);
}

#define AT(path, i) ((path) + IOG_TLOG_STRIDE * (i) + 2)

/*
 * The walk of RFC 9162 §2.1.3.2 (inclusion: @p fr NULL, @p sr the leaf hash)
 * and §2.1.4.2 (consistency: @p fr and @p sr the first hash) over path[i..n),
 * with fn and sn already set up. @return 0 when sn ends at 0, else -EILSEQ.
 */
static int walk(uint32_t fn, uint32_t sn, const uint8_t *path, size_t i, size_t n, uint8_t *fr,
                uint8_t *sr)
{
    for (; i < n; i++) {
        const uint8_t *c = AT(path, i);
        if (sn == 0) {
            return -EILSEQ;
        }
        if ((fn & 1) || fn == sn) {
            if (fr) {
                tree_hash(0x01, c, fr, fr);
            }
            tree_hash(0x01, c, sr, sr);
            while (fn && !(fn & 1)) {
                fn >>= 1;
                sn >>= 1;
            }
        }
        else {
            tree_hash(0x01, sr, c, sr);
        }
        fn >>= 1;
        sn >>= 1;
    }
    return sn ? -EILSEQ : 0;
}

int iog_tlog_inclusion(uint64_t index, const uint8_t leaf[IOG_HASH_LEN], const iog_tlog_cp_t *cp,
                       const uint8_t *path, size_t n)
{
    uint8_t r[IOG_HASH_LEN];
    if (index >= cp->size || cp->size > IOG_TLOG_MAX_SIZE) {
        return -EILSEQ;
    }
    memcpy(r, leaf, IOG_HASH_LEN);
    return walk((uint32_t)index, (uint32_t)cp->size - 1, path, 0, n, NULL, r) ||
                   !iog_hash_eq(r, cp->root)
               ? -EILSEQ
               : 0;
}

int iog_tlog_consistency(const iog_tlog_cp_t *old, const iog_tlog_cp_t *cp, const uint8_t *path,
                         size_t n)
{
    uint8_t fr[IOG_HASH_LEN], sr[IOG_HASH_LEN];
    uint32_t fn = (uint32_t)old->size - 1, sn = (uint32_t)cp->size - 1;
    size_t i;
    if (old->size == cp->size) {
        return n == 0 && iog_hash_eq(old->root, cp->root) ? 0 : -EILSEQ;
    }
    if (old->size == 0 || old->size > cp->size || cp->size > IOG_TLOG_MAX_SIZE || n == 0) {
        return -EILSEQ;
    }
    /* a first tree of 2^k blocks is a node of the second one: its root starts the path */
    memcpy(fr, (old->size & fn) ? AT(path, 0) : old->root, IOG_HASH_LEN);
    i = (old->size & fn) != 0;
    memcpy(sr, fr, IOG_HASH_LEN);
    while (fn & 1) {
        fn >>= 1;
        sn >>= 1;
    }
    return walk(fn, sn, path, i, n, fr, sr) || !iog_hash_eq(fr, old->root) ||
                   !iog_hash_eq(sr, cp->root)
               ? -EILSEQ
               : 0;
}

int iog_tlog_check_join(const uint8_t *buf, size_t len, const iog_member_t *m,
                        iog_tlog_cp_t *kept, uint64_t *time_ms)
{
    iog_proof_t p;
    iog_tlog_cp_t cp;
    iog_sign1_t s;
    uint8_t leaf[IOG_HASH_LEN];
    if (iog_proof_decode(buf, len, &p)) {
        return -EBADMSG;
    }
    int e = checkpoint_open(p.cp.p, p.cp.n, &m->ch, &cp, time_ms, &s);
    if (e) {
        return e;
    }
    /* hashes first, the one signature last */
    if (p.index != m->height || !iog_hash_eq(p.block.p, m->block)) {
        return -ENOENT;
    }
    tree_hash(0x00, p.block.p, NULL, leaf);
    if (iog_tlog_inclusion(p.index, leaf, &cp, p.path.p, p.path.n)) {
        return -EILSEQ;
    }
    if (kept->size &&
        (p.old_size != kept->size || iog_tlog_consistency(kept, &cp, p.cons.p, p.cons.n))) {
        return -EXDEV;
    }
    if (iog_sign1_verify(&s, m->ch.pub, IOG_AAD_CHECKPOINT)) {
        return -EACCES;
    }
    *kept = cp;
    return 0;
}
