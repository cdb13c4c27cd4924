/*
 * IoT-Guard protocol messages: COSE structures, key schedule, tickets, M2M.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "iog_cbor.h"
#include "iog_proto.h"

/* Protected headers, the only ones sent or accepted. */
static const uint8_t prot_es256[3] = { 0xA1, 0x01, 0x26 };  /* {1: -7} */
static const uint8_t prot_a128gcm[3] = { 0xA1, 0x01, 0x01 }; /* {1: 1} */

/* Largest external AAD: the ticket's, with three 64-byte IDs and a 64-byte cluster. */
#define AAD_MAX (32 + 5 * (IOG_ID_MAX + 2) + 2 * 18)
/* Largest Enc_structure: ["Encrypt0", h'A10101', bstr(external_aad)]. */
#define ENC_STRUCT_MAX (AAD_MAX + 20)

const char *iog_status_name(unsigned status)
{
    static const char *const names[] = { "member", "unknown", "left", "revoked", "expired" };
    return status < sizeof(names) / sizeof(names[0]) ? names[status] : "invalid";
}

static int id_char_ok(uint8_t c)
{
    uint8_t l = c | 0x20; /* A-Z to a-z; nothing else lands in a-z */
    return (l >= 'a' && l <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

int iog_id_set(iog_id_t *id, const void *s, size_t n)
{
    const uint8_t *p = s;
    if (n == 0 || n > IOG_ID_MAX) {
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if (!id_char_ok(p[i])) {
            return -EINVAL;
        }
    }
    memcpy(id->s, p, n);
    id->s[n] = '\0';
    id->len = (uint8_t)n;
    return 0;
}

/* iog_hash_eq() compares IOG_HASH_LEN bytes */
typedef char hash_is_sha256[IOG_HASH_LEN == IOG_SHA256_LEN ? 1 : -1];

int iog_id_eq(const iog_id_t *id, const void *s, size_t n)
{
    return id->len == n && memcmp(id->s, s, n) == 0;
}

int iog_id_same(const iog_id_t *a, const iog_id_t *b)
{
    return iog_id_eq(a, b->s, b->len);
}

static void put_id(iog_cbor_enc_t *e, const iog_id_t *id)
{
    iog_cbor_put_tstr(e, id->s, id->len);
}

/* Reads a tstr that must be a valid ID. */
static int get_id(iog_cbor_dec_t *d, iog_id_t *id)
{
    const uint8_t *p;
    size_t n;
    if (iog_cbor_get_tstr(d, &p, &n) || iog_id_set(id, p, n)) {
        return -EBADMSG;
    }
    return 0;
}

static int get_talk_proof(iog_cbor_dec_t *d, iog_talk_proof_t *p);

/* Map key @p k and the ID @p id. */
static void put_k_id(iog_cbor_enc_t *e, unsigned k, const iog_id_t *id)
{
    iog_cbor_put_uint(e, k);
    put_id(e, id);
}

/* Map key @p k and a bstr. */
static void put_k_bstr(iog_cbor_enc_t *e, unsigned k, const void *p, size_t n)
{
    iog_cbor_put_uint(e, k);
    iog_cbor_put_bstr(e, p, n);
}

/*
 * Starts encoding into @p out an array of @p n items whose first is the text
 * @p label: a COSE structure, an external_aad, an HKDF info.
 */
static void enc_labelled(iog_cbor_enc_t *e, uint8_t *out, size_t cap, size_t n, const char *label)
{
    iog_cbor_enc_init(e, out, cap);
    iog_cbor_put_array(e, n);
    iog_cbor_put_cstr(e, label);
}

/* ---- COSE_Key ---- */

/*
 * COSE_Key of a P-256 public key (RFC 9053 §7.1.1), deterministic order,
 * with alg or, for the RFC 9679 thumbprint, without (and map(4)):
 *
 *   A5                      map(5)
 *      01 02                kty: EC2
 *      03 26                alg: ES256 (-7)
 *      20 01                crv (-1): P-256 (1)
 *      21 58 20 <x:32>      x (-2)
 *      22 58 20 <y:32>      y (-3)
 */
#define COSE_KEY_LEN 77
static size_t key_bytes(const uint8_t pub[IOG_P256_PUB_LEN], int alg, uint8_t out[COSE_KEY_LEN])
{
    size_t h = alg ? 5 : 3;
    memcpy(out, "\xA5\x01\x02\x03\x26", h);
    out[0] -= !alg;
    memcpy(out + h, "\x20\x01\x21\x58\x20", 5);
    memcpy(out + h + 5, pub + 1, 32);
    memcpy(out + h + 37, "\x22\x58\x20", 3);
    memcpy(out + h + 40, pub + 33, 32);
    return h + 72;
}

int iog_cose_key_encode(const uint8_t pub[IOG_P256_PUB_LEN], uint8_t *out, size_t cap)
{
    return cap < COSE_KEY_LEN ? -ENOBUFS : (int)key_bytes(pub, 1, out);
}

/*
 * Reads a COSE_Key into the point @p pub: labels 1 (kty), 3 (alg) and -1
 * (crv) with the one value each may have, -2 and -3 the coordinates; alg is
 * optional, any other label (e.g. a private part, -4) is refused.
 */
static int cose_key_read(iog_cbor_dec_t *d, uint8_t pub[IOG_P256_PUB_LEN], int check)
{
    size_t n;
    uint32_t seen = 0; /* bit k + 3 for label k (iog_cbor_check() refused duplicates) */
    if (iog_cbor_get_map(d, &n)) {
        return -EBADMSG;
    }
    pub[0] = 0x04;
    for (size_t i = 0; i < n; i++) {
        int k, v;
        if (iog_cbor_get_label(d, &k) || k < -3 || k > 3 || k == 0 || k == 2) {
            return -EBADMSG;
        }
        if (k < -1 ? iog_cbor_get_bstr_exact(d, pub + 1 + 32 * (size_t)(-2 - k), 32)
                   : iog_cbor_get_label(d, &v) || v != (k == 1 ? 2 : k == 3 ? -7 : 1)) {
            return -EBADMSG; /* kty EC2, alg ES256, crv P-256 */
        }
        seen |= 1u << (k + 3);
    }
    if ((seen & 0x17) != 0x17) { /* all but alg */
        return -EBADMSG;
    }
    return check && iog_p256_check(pub) ? -EBADMSG : 0;
}

int iog_cose_key_decode(const uint8_t *buf, size_t len, uint8_t pub[IOG_P256_PUB_LEN])
{
    iog_cbor_dec_t d;
    if (iog_cbor_check(buf, len)) {
        return -EBADMSG;
    }
    iog_cbor_dec_init(&d, buf, len);
    return cose_key_read(&d, pub, 1);
}

void iog_thumbprint(const uint8_t pub[IOG_P256_PUB_LEN], uint8_t out[IOG_HASH_LEN])
{
    /* RFC 9679 §3: only the required parameters, deterministic order */
    uint8_t b[COSE_KEY_LEN];
    iog_sha256(b, key_bytes(pub, 0, b), out);
}

/* ---- COSE_Sign1 ---- */

/*
 * Sig_structure (RFC 9052 §4.4), hashed without building it in memory:
 *
 *   84                              array(4)
 *      6A "Signature1"              context
 *      43 A1 01 26                  body_protected = {1: -7}
 *      <bstr> external_aad
 *      <bstr> payload
 */
static void sig_structure_hash(const char *aad, const uint8_t *payload, size_t payload_len,
                               uint8_t hash[IOG_HASH_LEN])
{
    static const uint8_t start[] = { 0x84, 0x6A, 'S', 'i', 'g', 'n', 'a', 't', 'u', 'r', 'e', '1',
                                     0x43, 0xA1, 0x01, 0x26 };
    const uint8_t *part[2] = { (const uint8_t *)aad, payload };
    size_t len[2] = { strlen(aad), payload_len };
    iog_sha256_ctx_t c;
    iog_sha256_init(&c);
    iog_sha256_update(&c, start, sizeof(start));
    for (int i = 0; i < 2; i++) { /* each a bstr: its head, its bytes */
        uint8_t head[9];
        iog_cbor_enc_t e;
        iog_cbor_enc_init(&e, head, sizeof(head));
        iog_cbor_put_bstr_head(&e, len[i]);
        iog_sha256_update(&c, head, e.len);
        iog_sha256_update(&c, part[i], len[i]);
    }
    iog_sha256_final(&c, hash);
}

/*
 * COSE_Sign1 (untagged):
 *
 *   84                      array(4)
 *      43 A1 01 26          protected {1: -7}
 *      A1 04 <bstr kid>     unprotected {4: kid}
 *      <bstr payload>
 *      58 40 <r || s>       signature
 */
/*
 * The most bytes the fields before the payload's bytes take, for a kid of
 * kid_len (at most 64) bytes: array 1, protected 4, map 1, label 1, kid head
 * 2, kid, payload head 3 (payloads stay below 64 KiB).
 */
#define SIGN1_HEAD_MAX(kid_len) (12 + (kid_len))

/*
 * Signs the payload_len-byte payload that lies at out + SIGN1_HEAD_MAX(kid_len)
 * and makes the COSE_Sign1 around it in place: the header is written before
 * it, the payload moved down behind the header (it may only move down), the
 * signature appended. No second buffer of the payload's size: a join with a
 * credential is ~550 bytes, too much for the ESP8266's stack.
 */
static int sign1_in_place(const uint8_t priv[IOG_P256_PRIV_LEN], const uint8_t *kid, size_t kid_len,
                          const char *aad, size_t payload_len, uint8_t *out, size_t cap)
{
    uint8_t hash[IOG_HASH_LEN], sig[IOG_SIG_LEN], head[SIGN1_HEAD_MAX(IOG_ID_MAX)];
    size_t off = SIGN1_HEAD_MAX(kid_len);
    if (kid_len > IOG_ID_MAX || off + payload_len > cap) {
        return -ENOBUFS;
    }
    sig_structure_hash(aad, out + off, payload_len, hash);
    if (iog_es256_sign(priv, hash, sig)) {
        return -EINVAL;
    }
    iog_cbor_enc_t e;
    iog_cbor_enc_init(&e, head, sizeof(head));
    iog_cbor_put_raw(&e, "\x84\x43\xA1\x01\x26\xA1\x04", 7); /* [h'A10126', {4: */
    iog_cbor_put_bstr(&e, kid, kid_len);
    iog_cbor_put_bstr_head(&e, payload_len);
    int h = iog_cbor_enc_finish(&e);
    if (h < 0) {
        return h;
    }
    memmove(out + h, out + off, payload_len);
    memcpy(out, head, (size_t)h);
    iog_cbor_enc_init(&e, out + h + payload_len, cap - (size_t)h - payload_len);
    iog_cbor_put_bstr(&e, sig, sizeof(sig));
    int sl = iog_cbor_enc_finish(&e);
    if (sl < 0) {
        return sl;
    }
    return h + (int)payload_len + sl;
}

int iog_sign1_encode(const uint8_t priv[IOG_P256_PRIV_LEN], const uint8_t *kid, size_t kid_len,
                     const char *aad, const uint8_t *payload, size_t payload_len, uint8_t *out,
                     size_t cap)
{
    size_t off = SIGN1_HEAD_MAX(kid_len);
    if (kid_len > IOG_ID_MAX || off + payload_len > cap) {
        return -ENOBUFS;
    }
    memmove(out + off, payload, payload_len);
    return sign1_in_place(priv, kid, kid_len, aad, payload_len, out, cap);
}

/*
 * Starts reading the untagged COSE structure in @p buf: checked whole, an
 * array of @p items whose first is the protected header @p prot (3 bytes),
 * then the head of the unprotected map (its size in @p n).
 */
static int cose_open(iog_cbor_dec_t *d, const uint8_t *buf, size_t len, size_t items,
                     const uint8_t prot[3], size_t *n)
{
    const uint8_t *p;
    if (iog_cbor_check(buf, len)) {
        return -EBADMSG;
    }
    iog_cbor_dec_init(d, buf, len);
    return iog_cbor_get_array(d, n) || *n != items || iog_cbor_get_bstr(d, &p, n) || *n != 3 ||
                   memcmp(p, prot, 3) != 0 || iog_cbor_get_map(d, n)
               ? -EBADMSG
               : 0;
}

int iog_sign1_parse(const uint8_t *buf, size_t len, iog_sign1_t *s)
{
    iog_cbor_dec_t d;
    size_t n;
    int k;
    if (cose_open(&d, buf, len, 4, prot_es256, &n) || n != 1 || iog_cbor_get_label(&d, &k) ||
        k != 4 || iog_cbor_get_bstr(&d, &s->kid, &s->kid_len)) {
        return -EBADMSG;
    }
    if (iog_cbor_get_bstr(&d, &s->payload, &s->payload_len) || iog_cbor_get_bstr(&d, &s->sig, &n) ||
        n != IOG_SIG_LEN) {
        return -EBADMSG;
    }
    return 0;
}

/*
 * A map with the keys 1..nf (PROTOCOL.md §1: every key known, none twice):
 * the value of key k goes to out + f[k - 1].off as its kind says.
 */
int iog_map_decode(const uint8_t *buf, size_t len, const iog_field_t *f, size_t nf, void *out)
{
    iog_cbor_dec_t d;
    size_t n;
    uint32_t seen = 0;
    if (iog_cbor_map_open(&d, buf, len, &n)) {
        return -EBADMSG;
    }
    for (size_t i = 0; i < n; i++) {
        int k;
        if (iog_cbor_map_key(&d, (int)nf, &k, &seen)) {
            return -EBADMSG;
        }
        const iog_field_t *x = &f[k - 1];
        void *p = (uint8_t *)out + x->off;
        iog_view_t *v = p;
        int r;
        switch (x->kind) {
        case IOG_F_UINT: r = iog_cbor_get_uint(&d, p); break;
        case IOG_F_INT: r = iog_cbor_get_int(&d, p); break;
        case IOG_F_BYTES: r = iog_cbor_get_bstr_exact(&d, p, x->len); break;
        case IOG_F_VIEW: r = iog_cbor_get_bstr(&d, &v->p, &v->n); break;
        case IOG_F_TEXT: r = iog_cbor_get_tstr(&d, &v->p, &v->n); break;
        case IOG_F_ID: r = get_id(&d, p); break;
        case IOG_F_KEY:
        case IOG_F_POINT: r = cose_key_read(&d, p, x->kind == IOG_F_KEY); break;
        case IOG_F_PROOF: r = get_talk_proof(&d, p); break;
        default: /* IOG_F_ARRAY or IOG_F_RAW: the whole item, its head included */
            v->p = d.p;
            r = (x->kind == IOG_F_ARRAY && (*d.p >> 5) != IOG_CBOR_ARRAY) || iog_cbor_skip(&d);
            v->n = (size_t)(d.p - v->p);
            break;
        }
        if (r) {
            return -EBADMSG;
        }
    }
    return (int)seen;
}

int iog_sign1_decode(const uint8_t *buf, size_t len, iog_sign1_t *s, const iog_field_t *f,
                     size_t nf, void *out)
{
    return iog_sign1_parse(buf, len, s) ? -EBADMSG
                                         : iog_map_decode(s->payload, s->payload_len, f, nf, out);
}

int iog_sign1_verify(const iog_sign1_t *s, const uint8_t pub[IOG_P256_PUB_LEN], const char *aad)
{
    uint8_t hash[IOG_HASH_LEN];
    sig_structure_hash(aad, s->payload, s->payload_len, hash);
    return iog_es256_verify(pub, hash, s->sig) ? -EACCES : 0;
}

/* ---- join ---- */

/*
 * join-req payload (PROTOCOL.md §3.2), deterministic:
 *
 *   A6 / A7                     map(6 or 7)
 *      01 <tstr cluster>
 *      02 <tstr id>
 *      03 <COSE_Key>
 *      04 <int lat>  05 <int lon>
 *      06 50 <N_d:16>
 *     [07 <bstr echo>]
 */
/* SubjectPublicKeyInfo of a P-256 key (RFC 5480): the DER before the point. */
static const uint8_t spki_p256[26] = {
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
    0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
};

void iog_p256_spki(const uint8_t pub[IOG_P256_PUB_LEN], uint8_t der[IOG_P256_SPKI_LEN])
{
    memcpy(der, spki_p256, sizeof(spki_p256));
    memcpy(der + sizeof(spki_p256), pub, IOG_P256_PUB_LEN);
}

int iog_join_req_encode(const iog_join_req_t *jr, uint8_t *out, size_t cap)
{
    uint8_t key[COSE_KEY_LEN];
    size_t off = SIGN1_HEAD_MAX(jr->me->id.len);
    if ((jr->echo && (jr->echo_len == 0 || jr->echo_len > IOG_ECHO_MAX)) ||
        (jr->cred && (jr->cred_len == 0 || jr->cred_len > IOG_CRED_MAX)) ||
        jr->lat < -90000000 || jr->lat > 90000000 || jr->lon < -180000000 ||
        jr->lon > 180000000) {
        return -EINVAL;
    }
    if (off + IOG_SIG_LEN + 2 > cap) {
        return -ENOBUFS;
    }
    /* the payload is encoded where sign1_in_place() expects it */
    iog_cbor_enc_t e;
    iog_cbor_enc_init(&e, out + off, cap - off - (IOG_SIG_LEN + 2));
    iog_cbor_put_map(&e, 6 + (jr->echo ? 1 : 0) + (jr->cred ? 1 : 0));
    put_k_id(&e, 1, jr->cluster);
    put_k_id(&e, 2, &jr->me->id);
    iog_cbor_put_uint(&e, 3);
    iog_cbor_put_raw(&e, key, key_bytes(jr->me->pub, 1, key));
    iog_cbor_put_uint(&e, 4);
    iog_cbor_put_int(&e, jr->lat);
    iog_cbor_put_uint(&e, 5);
    iog_cbor_put_int(&e, jr->lon);
    put_k_bstr(&e, 6, jr->nd, IOG_NONCE_LEN);
    if (jr->echo) {
        put_k_bstr(&e, 7, jr->echo, jr->echo_len);
    }
    if (jr->cred) {
        put_k_bstr(&e, 8, jr->cred, jr->cred_len);
    }
    int pl = iog_cbor_enc_finish(&e);
    if (pl < 0) {
        return pl;
    }
    return sign1_in_place(jr->me->priv, (const uint8_t *)jr->me->id.s, jr->me->id.len,
                          IOG_AAD_JOIN_REQ, (size_t)pl, out, cap);
}

#define FLD(T, m, kind) { offsetof(T, m), kind, sizeof(((T *)0)->m) }

/* join-resp (PROTOCOL.md §3.3), keys 1..9, all required */
typedef struct {
    iog_member_t m;
    uint8_t thumb[IOG_HASH_LEN];
    iog_id_t id;
    uint8_t nd[IOG_NONCE_LEN];
} join_resp_t;

static const iog_field_t join_resp_fields[] = {
    FLD(join_resp_t, m.ch.cluster, IOG_F_ID), FLD(join_resp_t, m.ch.pub, IOG_F_KEY),
    FLD(join_resp_t, thumb, IOG_F_BYTES),     FLD(join_resp_t, id, IOG_F_ID),
    FLD(join_resp_t, nd, IOG_F_BYTES),        FLD(join_resp_t, m.nch, IOG_F_BYTES),
    FLD(join_resp_t, m.height, IOG_F_UINT),   FLD(join_resp_t, m.block, IOG_F_BYTES),
    FLD(join_resp_t, m.expires, IOG_F_UINT),
};

int iog_join_resp_verify(const uint8_t *buf, size_t len, const iog_join_req_t *sent,
                         const uint8_t *pin, uint64_t now, iog_member_t *m)
{
    iog_sign1_t s;
    join_resp_t r;
    memset(&r, 0, sizeof(r));
    /* m is written only once the answer is verified: a refused answer to a
     * rejoin leaves the membership the device holds as it was */
    if (iog_sign1_decode(buf, len, &s, join_resp_fields, 9, &r) != 0x3FE) {
        return -EBADMSG; /* all of 1..9 are required */
    }
    iog_thumbprint(r.m.ch.pub, r.m.ch.thumb);
    if (!iog_hash_eq(r.thumb, r.m.ch.thumb) || s.kid_len != IOG_HASH_LEN ||
        !iog_hash_eq(s.kid, r.m.ch.thumb) ||
        (pin && !iog_hash_eq(pin, r.m.ch.thumb)) ||
        !iog_id_same(&r.m.ch.cluster, sent->cluster) ||
        !iog_id_same(&r.id, &sent->me->id) ||
        !iog_ct_eq(r.nd, sent->nd, IOG_NONCE_LEN) ||
        iog_sign1_verify(&s, r.m.ch.pub, IOG_AAD_JOIN_RESP)) {
        return -EACCES;
    }
    if (now && now >= r.m.expires) {
        return -ESTALE;
    }
    memcpy(r.m.nd, sent->nd, IOG_NONCE_LEN);
    *m = r.m;
    return 0;
}

/* rotation (PROTOCOL.md §6.1), keys 1..4, all required */
typedef struct {
    iog_view_t cluster;
    uint8_t old[IOG_P256_PUB_LEN];
    uint8_t nw[IOG_P256_PUB_LEN];
    uint64_t time;
} rotation_t;

/* the keys need no curve check: the old one verifies the rotation, the last new one is key 2 */
static const iog_field_t rotation_fields[] = {
    FLD(rotation_t, cluster, IOG_F_TEXT), FLD(rotation_t, old, IOG_F_POINT),
    FLD(rotation_t, nw, IOG_F_POINT),     FLD(rotation_t, time, IOG_F_UINT),
};

/*
 * Follows the @p n rotations that @p d reads (key 7, oldest first) from the
 * pinned key @p pin to the key of @p to: the
 * first whose old key has thumbprint @p pin (earlier ones are skipped
 * unread), then each naming as old key the new key of the one before, the
 * last naming @p to's key; each a COSE_Sign1 by its old key (kid = its
 * thumbprint, external_aad "iotguard rotate") for @p to's cluster.
 */
static int follow_rotations(iog_cbor_dec_t *d, size_t n, const uint8_t *pin, const iog_cluster_t *to)
{
    uint8_t cur[IOG_P256_PUB_LEN], th[IOG_HASH_LEN];
    int started = 0;
    for (size_t i = 0; i < n; i++) {
        iog_sign1_t s;
        rotation_t r;
        const uint8_t *b;
        size_t bl;
        if (iog_cbor_get_bstr(d, &b, &bl) || iog_sign1_parse(b, bl, &s)) {
            return -EBADMSG;
        }
        if (!started && (s.kid_len != IOG_HASH_LEN || !iog_hash_eq(s.kid, pin))) {
            continue;
        }
        if (iog_map_decode(s.payload, s.payload_len, rotation_fields, 4, &r) != 0x1E) {
            return -EBADMSG;
        }
        iog_thumbprint(r.old, th);
        if (s.kid_len != IOG_HASH_LEN || !iog_hash_eq(s.kid, th) ||
            !memcmp(r.old, r.nw, sizeof(cur))) {
            return -EBADMSG;
        }
        if ((started && memcmp(r.old, cur, sizeof(cur))) ||
            !iog_id_eq(&to->cluster, r.cluster.p, r.cluster.n) ||
            iog_sign1_verify(&s, r.old, IOG_AAD_ROTATE)) {
            return -EACCES;
        }
        memcpy(cur, r.nw, sizeof(cur));
        started = 1;
    }
    return started && !memcmp(cur, to->pub, sizeof(cur)) ? 0 : -EACCES;
}

/* cluster-info (PROTOCOL.md §6), keys 1..6 required, 7 optional */
typedef struct {
    iog_cluster_t c;
    uint8_t thumb[IOG_HASH_LEN];
    iog_view_t rot;
} cluster_info_t;

static const iog_field_t cluster_fields[] = {
    FLD(cluster_info_t, c.cluster, IOG_F_ID), FLD(cluster_info_t, c.pub, IOG_F_KEY),
    FLD(cluster_info_t, thumb, IOG_F_BYTES),  FLD(cluster_info_t, c.lat, IOG_F_INT),
    FLD(cluster_info_t, c.lon, IOG_F_INT),    FLD(cluster_info_t, c.radius, IOG_F_UINT),
    FLD(cluster_info_t, rot, IOG_F_ARRAY), /* [1*2 bstr]: the latest rotations, oldest first */
};

int iog_cluster_info_verify(const uint8_t *buf, size_t len, const uint8_t *pin,
                            iog_cluster_t *out)
{
    iog_sign1_t s;
    cluster_info_t x;
    iog_cbor_dec_t d;
    size_t nrot = 0;
    memset(&x, 0, sizeof(x));
    memset(out, 0, sizeof(*out));
    int seen = iog_sign1_decode(buf, len, &s, cluster_fields, 7, &x);
    iog_cbor_dec_init(&d, x.rot.p, x.rot.n);
    if ((seen & ~0x80) != 0x7E || (x.rot.p && (iog_cbor_get_array(&d, &nrot) || nrot > 2))) {
        return -EBADMSG;
    }
    iog_thumbprint(x.c.pub, x.c.thumb);
    *out = x.c;
    if (!iog_hash_eq(x.thumb, out->thumb)) {
        return -EACCES;
    }
    int e = iog_sign1_verify(&s, out->pub, IOG_AAD_CLUSTER);
    if (e || !pin || iog_hash_eq(pin, out->thumb)) {
        return e;
    }
    /* another key than the pinned one: only through the rotations it carries */
    return follow_rotations(&d, nrot, pin, out);
}

/* ledger-head (PROTOCOL.md §6), keys 1..3, all required */
typedef struct {
    uint64_t height;
    uint8_t hash[IOG_HASH_LEN];
    uint64_t time_ms;
} ledger_head_t;

static const iog_field_t head_fields[] = {
    FLD(ledger_head_t, height, IOG_F_UINT), FLD(ledger_head_t, hash, IOG_F_BYTES),
    FLD(ledger_head_t, time_ms, IOG_F_UINT),
};

int iog_ledger_head_verify(const uint8_t *buf, size_t len, const uint8_t pub[IOG_P256_PUB_LEN],
                           uint64_t *height, uint8_t hash[IOG_HASH_LEN], uint64_t *time_ms)
{
    iog_sign1_t s;
    ledger_head_t h;
    if (iog_sign1_decode(buf, len, &s, head_fields, 3, &h) != 0xE) {
        return -EBADMSG;
    }
    *height = h.height;
    memcpy(hash, h.hash, IOG_HASH_LEN);
    *time_ms = h.time_ms;
    return iog_sign1_verify(&s, pub, IOG_AAD_HEAD);
}

/* ---- key schedule ---- */

int iog_derive_km(const uint8_t z[32], const uint8_t nd[IOG_NONCE_LEN],
                  const uint8_t nch[IOG_NONCE_LEN], const iog_id_t *cluster, const iog_id_t *id,
                  const uint8_t thumb[IOG_HASH_LEN], uint8_t km[32])
{
    /* kminfo = ["iotguard K_m", cluster, id, thumbprint] */
    uint8_t info[16 + 2 * (IOG_ID_MAX + 2) + 34];
    uint8_t salt[2 * IOG_NONCE_LEN];
    iog_cbor_enc_t e;
    enc_labelled(&e, info, sizeof(info), 4, "iotguard K_m");
    put_id(&e, cluster);
    put_id(&e, id);
    iog_cbor_put_bstr(&e, thumb, IOG_HASH_LEN);
    int il = iog_cbor_enc_finish(&e);
    if (il < 0) {
        return -EINVAL;
    }
    memcpy(salt, nd, IOG_NONCE_LEN);
    memcpy(salt + IOG_NONCE_LEN, nch, IOG_NONCE_LEN);
    return iog_hkdf(salt, sizeof(salt), z, 32, info, (size_t)il, km, 32);
}

void iog_derive_member_keys(const uint8_t km[32], iog_member_keys_t *k)
{
    /* each key is HKDF-Expand(K_m, its label) */
    static const struct {
        char label[20];
        uint8_t off, len;
    } keys[] = {
        { "iotguard req key", offsetof(iog_member_keys_t, req), sizeof(k->req) },
        { "iotguard resp key", offsetof(iog_member_keys_t, resp), sizeof(k->resp) },
        { "iotguard common iv", offsetof(iog_member_keys_t, iv), sizeof(k->iv) },
        { "iotguard ticket key", offsetof(iog_member_keys_t, ticket), sizeof(k->ticket) },
        { "iotguard talk key", offsetof(iog_member_keys_t, talk), sizeof(k->talk) },
    };
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        iog_hkdf(NULL, 0, km, 32, (const uint8_t *)keys[i].label, strlen(keys[i].label),
                 (uint8_t *)k + keys[i].off, keys[i].len);
    }
}

int iog_member_derive(const iog_identity_t *me, iog_member_t *m)
{
    uint8_t z[32], km[32];
    int r = iog_ecdh(me->priv, m->ch.pub, z);
    if (r) {
        return r;
    }
    r = iog_derive_km(z, m->nd, m->nch, &m->ch.cluster, &me->id, m->ch.thumb, km);
    iog_wipe(z, sizeof(z));
    if (r) {
        return r;
    }
    iog_derive_member_keys(km, &m->keys);
    iog_wipe(km, sizeof(km));
    return 0;
}

/* ---- COSE_Encrypt0 ---- */

size_t iog_piv_encode(uint64_t seq, uint8_t out[5])
{
    uint8_t t[5];
    size_t n = 0;
    do { /* the low bytes first, at most 5 */
        t[n++] = (uint8_t)seq;
        seq >>= 8;
    } while (seq && n < 5);
    for (size_t i = 0; i < n; i++) {
        out[i] = t[n - 1 - i];
    }
    return n;
}

int iog_piv_decode(const uint8_t *p, size_t n, uint64_t *seq)
{
    if (n == 0 || n > 5 || (n > 1 && p[0] == 0)) {
        return -EBADMSG;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        v = (v << 8) | p[i];
    }
    *seq = v;
    return 0;
}

void iog_nonce(const uint8_t iv[12], uint64_t seq, uint8_t nonce[12])
{
    memcpy(nonce, iv, 12);
    for (int i = 11; i >= 4; i--, seq >>= 8) {
        nonce[i] ^= (uint8_t)seq;
    }
}

/*
 * Enc_structure (RFC 9052 §5.3), the AEAD's AAD:
 *
 *   83                          array(3)
 *      68 "Encrypt0"            context
 *      43 A1 01 01              protected {1: 1}
 *      <bstr external_aad>      CBOR array of PROTOCOL.md, wrapped in a bstr
 */
static int enc_structure(const uint8_t *ext, size_t ext_len, uint8_t *out, size_t cap)
{
    iog_cbor_enc_t e;
    iog_cbor_enc_init(&e, out, cap);
    /* ["Encrypt0", h'A10101', */
    iog_cbor_put_raw(&e, "\x83\x68" "Encrypt0" "\x43\xA1\x01\x01", 14);
    iog_cbor_put_bstr(&e, ext, ext_len);
    return iog_cbor_enc_finish(&e);
}

/*
 * The unprotected header of an Encrypt0: the labels it may hold, in the
 * order they are sent, and where iog_enc0_t keeps each (a pointer, NULL when
 * absent, and just after it its length).
 */
static const struct {
    uint8_t label, off;
} enc0_hdrs[4] = {
    { 4, offsetof(iog_enc0_t, kid) },
    { 5, offsetof(iog_enc0_t, iv) },
    { 6, offsetof(iog_enc0_t, piv) },
    { 10, offsetof(iog_enc0_t, kidctx) },
};
typedef char enc0_len_after_ptr[offsetof(iog_enc0_t, kid_len) == sizeof(uint8_t *) ? 1 : -1];

static const uint8_t **enc0_hdr(const iog_enc0_t *x, unsigned i)
{
    return (const uint8_t **)(void *)((uint8_t *)(uintptr_t)x + enc0_hdrs[i].off);
}

/*
 * COSE_Encrypt0 (untagged):
 *
 *   83                              array(3)
 *      43 A1 01 01                  protected {1: 1}
 *      A? {4: kid, 6: piv [, 10: kid context]}
 *      <bstr ciphertext || tag>
 *
 * Seals message @p seq (at most IOG_SEQ_MAX) from @p kid under @p key and
 * the nonce of @p iv and @p seq.
 */
static int enc0_seal(const uint8_t key[16], const uint8_t iv[12], uint64_t seq, const iog_id_t *kid,
                     const uint8_t *kidctx, const uint8_t *ext, size_t ext_len, const uint8_t *pt,
                     size_t pt_len, uint8_t *out, size_t cap)
{
    uint8_t aad[ENC_STRUCT_MAX], nonce[12], piv[5];
    if (seq > IOG_SEQ_MAX) {
        return -ERANGE;
    }
    int al = enc_structure(ext, ext_len, aad, sizeof(aad));
    if (al < 0) {
        return al;
    }
    iog_enc0_t h = { 0 };
    h.kid = (const uint8_t *)kid->s;
    h.kid_len = kid->len;
    h.piv = piv;
    h.piv_len = iog_piv_encode(seq, piv);
    h.kidctx = kidctx;
    h.kidctx_len = IOG_NONCE_LEN;
    iog_cbor_enc_t e;
    iog_cbor_enc_init(&e, out, cap);
    iog_cbor_put_raw(&e, "\x83\x43\xA1\x01\x01", 5); /* [h'A10101', */
    iog_cbor_put_map(&e, 2 + (kidctx != NULL));
    for (unsigned i = 0; i < 4; i++) {
        const uint8_t **v = enc0_hdr(&h, i);
        if (*v) {
            iog_cbor_put_uint(&e, enc0_hdrs[i].label);
            iog_cbor_put_bstr(&e, *v, *(const size_t *)(v + 1));
        }
    }
    iog_cbor_put_bstr_head(&e, pt_len + IOG_GCM_TAG_LEN);
    if (e.err || e.cap - e.len < pt_len + IOG_GCM_TAG_LEN) {
        return -ENOBUFS;
    }
    iog_nonce(iv, seq, nonce);
    iog_gcm_seal(key, nonce, aad, (size_t)al, pt, pt_len, out + e.len);
    return (int)(e.len + pt_len + IOG_GCM_TAG_LEN);
}

int iog_enc0_parse(const uint8_t *buf, size_t len, iog_enc0_t *x)
{
    iog_cbor_dec_t d;
    size_t n;
    memset(x, 0, sizeof(*x));
    if (cose_open(&d, buf, len, 3, prot_a128gcm, &n)) {
        return -EBADMSG;
    }
    for (size_t i = 0; i < n; i++) {
        int k;
        unsigned j = 0;
        if (iog_cbor_get_label(&d, &k)) {
            return -EBADMSG;
        }
        while (j < 4 && enc0_hdrs[j].label != k) {
            j++;
        }
        /* only the labels of the table, each once */
        const uint8_t **v = j < 4 ? enc0_hdr(x, j) : NULL;
        if (!v || *v || iog_cbor_get_bstr(&d, v, (size_t *)(v + 1))) {
            return -EBADMSG;
        }
    }
    if (iog_cbor_get_bstr(&d, &x->ct, &x->ct_len) || x->ct_len < IOG_GCM_TAG_LEN) {
        return -EBADMSG;
    }
    return 0;
}

/*
 * Opens message @p seq of @p x under @p key and the nonce of @p iv and @p seq
 * in place in @p out, which must hold the whole ciphertext and tag.
 */
static int enc0_open(const uint8_t key[16], const uint8_t iv[12], uint64_t seq, const iog_enc0_t *x,
                     const uint8_t *ext, size_t ext_len, uint8_t *out, size_t cap)
{
    uint8_t aad[ENC_STRUCT_MAX], nonce[12];
    int al = enc_structure(ext, ext_len, aad, sizeof(aad));
    if (al < 0) {
        return -EBADMSG;
    }
    if (cap < x->ct_len) {
        return -ENOBUFS;
    }
    memmove(out, x->ct, x->ct_len);
    iog_nonce(iv, seq, nonce);
    int n = iog_gcm_open(key, nonce, aad, (size_t)al, out, x->ct_len, out);
    return n < 0 ? -EACCES : n;
}

/* external_aad = ["iotguard", cluster, kid (bstr), piv (bstr), path] */
static int request_aad(const iog_id_t *cluster, const iog_id_t *kid, uint64_t seq,
                       const char *path, uint8_t *out, size_t cap)
{
    uint8_t piv[5];
    size_t pl = iog_piv_encode(seq, piv);
    iog_cbor_enc_t e;
    enc_labelled(&e, out, cap, 5, "iotguard");
    put_id(&e, cluster);
    iog_cbor_put_bstr(&e, kid->s, kid->len);
    iog_cbor_put_bstr(&e, piv, pl);
    iog_cbor_put_cstr(&e, path);
    return iog_cbor_enc_finish(&e);
}

int iog_prot_req_seal(const iog_member_t *m, const iog_id_t *me, uint64_t seq, const char *path,
                      const uint8_t *pt, size_t pt_len, uint8_t *out, size_t cap)
{
    uint8_t ext[AAD_MAX];
    int el = request_aad(&m->ch.cluster, me, seq, path, ext, sizeof(ext));
    return el < 0 ? el
                  : enc0_seal(m->keys.req, m->keys.iv, seq, me, NULL, ext, (size_t)el, pt, pt_len,
                              out, cap);
}

/*
 * Opens the CH's answer to request (@p me, @p seq, @p path) under the
 * response key: a response (unprotected {}, nonce of the common IV and
 * seq) or, with @p refusal, a sealed refusal (unprotected {5: iv}, nonce iv).
 */
static int answer_open(const iog_member_t *m, const iog_id_t *me, uint64_t seq, const char *path,
                       const uint8_t *buf, size_t len, uint8_t *out, size_t cap, int refusal)
{
    uint8_t ext[AAD_MAX], iv[12];
    iog_enc0_t x;
    if (iog_enc0_parse(buf, len, &x) || x.kid || x.piv || x.kidctx ||
        (refusal ? !x.iv || x.iv_len != sizeof(iv) : x.iv != NULL)) {
        return -EBADMSG;
    }
    memcpy(iv, refusal ? x.iv : m->keys.iv, sizeof(iv)); /* out may be buf: the ciphertext moves over it */
    int el = request_aad(&m->ch.cluster, me, seq, path, ext, sizeof(ext));
    return el < 0 ? el : enc0_open(m->keys.resp, iv, refusal ? 0 : seq, &x, ext, (size_t)el, out, cap);
}

int iog_prot_resp_open(const iog_member_t *m, const iog_id_t *me, uint64_t seq, const char *path,
                       const uint8_t *buf, size_t len, uint8_t *out, size_t cap)
{
    return answer_open(m, me, seq, path, buf, len, out, cap, 0);
}

/*
 * A sealed refusal (PROTOCOL.md §4.1): [h'A10101', {5: iv}, ciphertext ||
 * tag] under the response key, nonce = iv (iog_nonce(iv, 0)), the AAD of
 * the request it refuses, plaintext a text string (a response's is a map).
 */
int iog_prot_refusal_open(const iog_member_t *m, const iog_id_t *me, uint64_t seq, const char *path,
                          const uint8_t *buf, size_t len, uint8_t *out, size_t cap)
{
    iog_cbor_dec_t d;
    const uint8_t *text;
    size_t tl;
    int n = answer_open(m, me, seq, path, buf, len, out, cap, 1);
    if (n < 0) {
        return n;
    }
    iog_cbor_dec_init(&d, out, (size_t)n);
    if (iog_cbor_check(out, (size_t)n) || iog_cbor_get_tstr(&d, &text, &tl) ||
        tl > IOG_REFUSAL_MAX) {
        return -EBADMSG;
    }
    memmove(out, text, tl);
    return (int)tl;
}

int iog_prot_req_open(const iog_member_t *m, const char *path, const uint8_t *buf, size_t len,
                      iog_id_t *kid, uint64_t *seq, uint8_t *out, size_t cap)
{
    uint8_t ext[AAD_MAX];
    iog_enc0_t x;
    if (iog_enc0_parse(buf, len, &x) || !x.kid || !x.piv || x.iv || x.kidctx ||
        iog_id_set(kid, x.kid, x.kid_len) || iog_piv_decode(x.piv, x.piv_len, seq)) {
        return -EBADMSG;
    }
    int el = request_aad(&m->ch.cluster, kid, *seq, path, ext, sizeof(ext));
    return el < 0 ? el
                  : enc0_open(m->keys.req, m->keys.iv, *seq, &x, ext, (size_t)el, out, cap);
}

/*
 * talk-proof (PROTOCOL.md §5.1):
 *
 *   83                  array(3)
 *      4C <nonce:12>    N_t
 *      <uint time>      unix s
 *      50 <tag:16>      AES-128-GCM tag
 */
static void put_talk_proof(iog_cbor_enc_t *e, const iog_talk_proof_t *p)
{
    iog_cbor_put_array(e, 3);
    iog_cbor_put_bstr(e, p->nonce, sizeof(p->nonce));
    iog_cbor_put_uint(e, p->time);
    iog_cbor_put_bstr(e, p->tag, sizeof(p->tag));
}

static int get_talk_proof(iog_cbor_dec_t *d, iog_talk_proof_t *p)
{
    size_t n;
    if (iog_cbor_get_array(d, &n) || n != 3 ||
        iog_cbor_get_bstr_exact(d, p->nonce, sizeof(p->nonce)) || iog_cbor_get_uint(d, &p->time) ||
        iog_cbor_get_bstr_exact(d, p->tag, sizeof(p->tag))) {
        return -EBADMSG;
    }
    return 0;
}

int iog_peer_req_encode(const iog_id_t *peer, const iog_talk_proof_t *proof, const uint8_t *echo,
                        size_t echo_len, uint8_t *out, size_t cap)
{
    iog_cbor_enc_t e;
    if ((echo && (echo_len == 0 || echo_len > IOG_ECHO_MAX)) || (proof && !peer)) {
        return -EINVAL;
    }
    iog_cbor_enc_init(&e, out, cap);
    iog_cbor_put_map(&e, (peer != NULL) + (proof != NULL) + (echo != NULL));
    if (peer) {
        put_k_id(&e, 1, peer);
    }
    if (proof) {
        iog_cbor_put_uint(&e, 2);
        put_talk_proof(&e, proof);
    }
    if (echo) {
        put_k_bstr(&e, 9, echo, echo_len);
    }
    return iog_cbor_enc_finish(&e);
}

int iog_peer_req_decode(const uint8_t *buf, size_t len, iog_id_t *peer, iog_talk_proof_t *proof,
                        int *has_proof, const uint8_t **echo, size_t *echo_len)
{
    iog_cbor_dec_t d;
    size_t n;
    uint32_t seen = 0;
    *echo = NULL;
    *echo_len = 0;
    if (has_proof) {
        *has_proof = 0;
    }
    if (iog_cbor_map_open(&d, buf, len, &n)) {
        return -EBADMSG;
    }
    for (size_t i = 0; i < n; i++) {
        int k;
        if (iog_cbor_get_label(&d, &k)) {
            return -EBADMSG;
        }
        if (k == 1 && peer) {
            if (get_id(&d, peer)) {
                return -EBADMSG;
            }
        }
        else if (k == 2 && peer && proof && has_proof) {
            if (get_talk_proof(&d, proof)) {
                return -EBADMSG;
            }
            *has_proof = 1;
        }
        else if (k == 9) {
            if (iog_cbor_get_bstr(&d, echo, echo_len) || *echo_len == 0 ||
                *echo_len > IOG_ECHO_MAX) {
                return -EBADMSG;
            }
        }
        else {
            return -EBADMSG;
        }
        seen |= 1u << k;
    }
    return (peer && !(seen & 2)) ? -EBADMSG : 0;
}

int iog_join_payload_decode(const uint8_t *buf, size_t len, iog_join_payload_t *j)
{
    iog_cbor_dec_t d;
    size_t n;
    uint32_t seen = 0;
    memset(j, 0, sizeof(*j));
    if (iog_cbor_map_open(&d, buf, len, &n)) {
        return -EBADMSG;
    }
    for (size_t i = 0; i < n; i++) {
        int k;
        int r = 0;
        if (iog_cbor_map_key(&d, 8, &k, &seen)) {
            return -EBADMSG;
        }
        switch (k) {
        case 1: r = get_id(&d, &j->cluster); break;
        case 2: r = get_id(&d, &j->id); break;
        case 3: r = cose_key_read(&d, j->pub, 1); break;
        case 4: r = iog_cbor_get_int(&d, &j->lat); break;
        case 5: r = iog_cbor_get_int(&d, &j->lon); break;
        case 6: r = iog_cbor_get_bstr_exact(&d, j->nd, sizeof(j->nd)); break;
        case 7:
            r = iog_cbor_get_bstr(&d, &j->echo, &j->echo_len);
            if (!r && (j->echo_len == 0 || j->echo_len > IOG_ECHO_MAX)) {
                r = -EBADMSG;
            }
            break;
        case 8:
            r = iog_cbor_get_bstr(&d, &j->cred, &j->cred_len);
            if (!r && (j->cred_len == 0 || j->cred_len > IOG_CRED_MAX)) {
                r = -EBADMSG;
            }
            break;
        }
        if (r) {
            return -EBADMSG;
        }
    }
    if ((seen & 0x7E) != 0x7E || j->lat < -90000000 || j->lat > 90000000 ||
        j->lon < -180000000 || j->lon > 180000000) {
        return -EBADMSG;
    }
    return 0;
}

/* verify-resp (PROTOCOL.md §4.3), keys 1, 2 required, 3..5 optional */
typedef struct {
    iog_verify_resp_t v;
    uint64_t status;
} verify_resp_t;

static const iog_field_t verify_resp_fields[] = {
    FLD(verify_resp_t, v.peer, IOG_F_ID),     FLD(verify_resp_t, status, IOG_F_UINT),
    FLD(verify_resp_t, v.height, IOG_F_UINT), FLD(verify_resp_t, v.block, IOG_F_BYTES),
    FLD(verify_resp_t, v.expires, IOG_F_UINT),
};

int iog_verify_resp_decode(const uint8_t *buf, size_t len, iog_verify_resp_t *v)
{
    verify_resp_t x;
    memset(&x, 0, sizeof(x));
    memset(v, 0, sizeof(*v));
    int seen = iog_map_decode(buf, len, verify_resp_fields, 5, &x);
    if (seen < 0 || (seen & 0x6) != 0x6 || x.status > IOG_STATUS_EXPIRED) {
        return -EBADMSG;
    }
    x.v.status = (unsigned)x.status;
    x.v.has_block = (seen & 0x10) != 0;
    *v = x.v;
    return 0;
}

/* leave-resp {1: height, 2: hash} */
typedef struct {
    uint64_t height;
    uint8_t hash[IOG_HASH_LEN];
} leave_resp_t;

static const iog_field_t leave_resp_fields[] = {
    FLD(leave_resp_t, height, IOG_F_UINT), FLD(leave_resp_t, hash, IOG_F_BYTES),
};

int iog_leave_resp_decode(const uint8_t *buf, size_t len, uint64_t *height, uint8_t hash[32])
{
    leave_resp_t x;
    if (iog_map_decode(buf, len, leave_resp_fields, 2, &x) != 0x6) {
        return -EBADMSG;
    }
    *height = x.height;
    memcpy(hash, x.hash, IOG_HASH_LEN);
    return 0;
}

/* session-resp {1: grant, 2: ticket} or, instead of a session, {3: verify-resp} */
typedef struct {
    iog_view_t grant, ticket, warning;
} session_resp_t;

static const iog_field_t session_resp_fields[] = {
    FLD(session_resp_t, grant, IOG_F_RAW), FLD(session_resp_t, ticket, IOG_F_RAW),
    FLD(session_resp_t, warning, IOG_F_RAW),
};

int iog_session_resp_split(const uint8_t *buf, size_t len, const uint8_t **grant,
                           size_t *grant_len, const uint8_t **ticket, size_t *ticket_len,
                           const uint8_t **warning, size_t *warning_len)
{
    session_resp_t x;
    memset(&x, 0, sizeof(x));
    int seen = iog_map_decode(buf, len, session_resp_fields, 3, &x);
    *grant = x.grant.p;
    *grant_len = x.grant.n;
    *ticket = x.ticket.p;
    *ticket_len = x.ticket.n;
    *warning = x.warning.p;
    *warning_len = x.warning.n;
    return seen == 0x6 || seen == 0x8 ? 0 : -EBADMSG;
}

/* ---- tickets ---- */

/* ticket (PROTOCOL.md §4.4), keys 1..6, all required; 6: the sealed box */
typedef struct {
    iog_ticket_t t;
    iog_view_t box;
} ticket_t;

static const iog_field_t ticket_fields[] = {
    FLD(ticket_t, t.sid, IOG_F_BYTES),      FLD(ticket_t, t.expires, IOG_F_UINT),
    FLD(ticket_t, t.initiator, IOG_F_ID),   FLD(ticket_t, t.responder, IOG_F_ID),
    FLD(ticket_t, t.recipient, IOG_F_ID),   FLD(ticket_t, box, IOG_F_ARRAY),
};

int iog_ticket_parse(const uint8_t *buf, size_t len, iog_ticket_t *t)
{
    ticket_t x;
    iog_enc0_t e;
    memset(&x, 0, sizeof(x));
    memset(t, 0, sizeof(*t));
    /* unprotected {5: iv} only; the sealed Sk is 16 bytes + tag */
    if (iog_map_decode(buf, len, ticket_fields, 6, &x) != 0x7E || iog_enc0_parse(x.box.p, x.box.n, &e) ||
        e.kid || e.piv || e.kidctx || !e.iv || e.iv_len != 12 || e.ct_len != sizeof(t->ct)) {
        return -EBADMSG;
    }
    memcpy(x.t.iv, e.iv, 12);
    memcpy(x.t.ct, e.ct, sizeof(t->ct));
    *t = x.t;
    return 0;
}

int iog_ticket_open(const iog_ticket_t *t, const uint8_t ticket_key[16], const iog_id_t *cluster,
                    const iog_id_t *me, const iog_id_t *initiator, const iog_id_t *responder,
                    uint64_t now, uint8_t sk[16])
{
    uint8_t ext[AAD_MAX];
    if (!iog_id_same(&t->recipient, me) ||
        !iog_id_same(&t->initiator, initiator) ||
        !iog_id_same(&t->responder, responder)) {
        return -EACCES;
    }
    if (now && now >= t->expires) {
        return -ETIME;
    }
    /* ["iotguard ticket", cluster, sid, expiry, initiator, responder, recipient] */
    iog_cbor_enc_t e;
    enc_labelled(&e, ext, sizeof(ext), 7, "iotguard ticket");
    put_id(&e, cluster);
    iog_cbor_put_bstr(&e, t->sid, sizeof(t->sid));
    iog_cbor_put_uint(&e, t->expires);
    put_id(&e, &t->initiator);
    put_id(&e, &t->responder);
    put_id(&e, &t->recipient);
    int el = iog_cbor_enc_finish(&e);
    if (el < 0) {
        return -EBADMSG;
    }
    iog_enc0_t x = { 0 };
    x.ct = t->ct;
    x.ct_len = sizeof(t->ct);
    uint8_t out[sizeof(t->ct)];
    int n = enc0_open(ticket_key, t->iv, 0, &x, ext, (size_t)el, out, sizeof(out));
    if (n != 16) {
        return -EACCES;
    }
    memcpy(sk, out, 16);
    iog_wipe(out, sizeof(out));
    return 0;
}

/* ---- talk and M2M ---- */

/* external_aad of a talk proof: ["iotguard talk", cluster, initiator, responder, nonce, time] */
static int talk_aad(const iog_id_t *cluster, const iog_id_t *initiator, const iog_id_t *responder,
                    const uint8_t nonce[IOG_TALK_NONCE_LEN], uint64_t time, uint8_t *out,
                    size_t cap)
{
    iog_cbor_enc_t e;
    enc_labelled(&e, out, cap, 6, "iotguard talk");
    put_id(&e, cluster);
    put_id(&e, initiator);
    put_id(&e, responder);
    iog_cbor_put_bstr(&e, nonce, IOG_TALK_NONCE_LEN);
    iog_cbor_put_uint(&e, time);
    return iog_cbor_enc_finish(&e);
}

int iog_talk_proof_make(const uint8_t talk_key[16], const iog_id_t *cluster,
                        const iog_id_t *initiator, const iog_id_t *responder,
                        const uint8_t nonce[IOG_TALK_NONCE_LEN], uint64_t time,
                        iog_talk_proof_t *p)
{
    uint8_t ext[AAD_MAX], aad[ENC_STRUCT_MAX];
    int el = talk_aad(cluster, initiator, responder, nonce, time, ext, sizeof(ext));
    int al = el < 0 ? el : enc_structure(ext, (size_t)el, aad, sizeof(aad));
    if (al < 0) {
        return -EINVAL;
    }
    memcpy(p->nonce, nonce, IOG_TALK_NONCE_LEN);
    p->time = time;
    iog_gcm_seal(talk_key, nonce, aad, (size_t)al, NULL, 0, p->tag); /* the tag alone */
    return 0;
}

int iog_talk_fresh(uint64_t t, uint64_t now)
{
    if (t > UINT64_MAX - IOG_TALK_LIFETIME_S || now > UINT64_MAX - IOG_TALK_LIFETIME_S) {
        return 0; /* no wrap-around into freshness */
    }
    return t <= now + IOG_TALK_LIFETIME_S && now <= t + IOG_TALK_LIFETIME_S;
}

int iog_talk_proof_check(const uint8_t talk_key[16], const iog_id_t *cluster,
                         const iog_id_t *initiator, const iog_id_t *responder,
                         const iog_talk_proof_t *p, uint64_t now)
{
    iog_talk_proof_t want;
    if (!iog_talk_fresh(p->time, now)) {
        return -ETIME;
    }
    if (iog_talk_proof_make(talk_key, cluster, initiator, responder, p->nonce, p->time, &want)) {
        return -EACCES;
    }
    return iog_ct_eq(want.tag, p->tag, sizeof(want.tag)) ? 0 : -EACCES;
}

/*
 * hello (PROTOCOL.md §5.1):
 *
 *   A3                      map(3)
 *      01 <tstr initiator>
 *      02 <tstr responder>
 *      03 <talk-proof>
 */
int iog_hello_encode(const iog_id_t *id, const iog_id_t *responder, const iog_talk_proof_t *p,
                     uint8_t *out, size_t cap)
{
    iog_cbor_enc_t e;
    iog_cbor_enc_init(&e, out, cap);
    iog_cbor_put_map(&e, 3);
    put_k_id(&e, 1, id);
    put_k_id(&e, 2, responder);
    iog_cbor_put_uint(&e, 3);
    put_talk_proof(&e, p);
    return iog_cbor_enc_finish(&e);
}

/* hello: the initiator; then the responder and the proof, both or neither */
typedef struct {
    iog_id_t id, responder;
    iog_talk_proof_t proof;
} hello_t;

static const iog_field_t hello_fields[] = {
    FLD(hello_t, id, IOG_F_ID), FLD(hello_t, responder, IOG_F_ID), FLD(hello_t, proof, IOG_F_PROOF),
};

int iog_hello_decode(const uint8_t *buf, size_t len, iog_id_t *id, iog_id_t *responder,
                     iog_talk_proof_t *p, int *has_proof)
{
    hello_t x;
    int seen = iog_map_decode(buf, len, hello_fields, 3, &x);
    *has_proof = 0;
    if (seen < 0 || !(seen & 0x2) || ((seen & 0x4) != 0) != ((seen & 0x8) != 0)) {
        return -EBADMSG;
    }
    *id = x.id;
    if (seen & 0x8) {
        *responder = x.responder;
        *p = x.proof;
        *has_proof = 1;
    }
    return 0;
}

int iog_talk_resp_encode(const iog_id_t *id, const uint8_t *ticket, size_t ticket_len,
                         uint8_t *out, size_t cap)
{
    iog_cbor_enc_t e;
    iog_cbor_enc_init(&e, out, cap);
    iog_cbor_put_map(&e, 2);
    put_k_id(&e, 1, id);
    iog_cbor_put_uint(&e, 2);
    iog_cbor_put_raw(&e, ticket, ticket_len);
    return iog_cbor_enc_finish(&e);
}

/* talk-resp {1: the responder, 2: the ticket} */
typedef struct {
    iog_id_t id;
    iog_view_t ticket;
} talk_resp_t;

static const iog_field_t talk_resp_fields[] = {
    FLD(talk_resp_t, id, IOG_F_ID), FLD(talk_resp_t, ticket, IOG_F_RAW),
};

int iog_talk_resp_decode(const uint8_t *buf, size_t len, iog_id_t *id, const uint8_t **ticket,
                         size_t *ticket_len)
{
    talk_resp_t x;
    if (iog_map_decode(buf, len, talk_resp_fields, 2, &x) != 0x6) {
        return -EBADMSG;
    }
    *id = x.id;
    *ticket = x.ticket.p;
    *ticket_len = x.ticket.n;
    return 0;
}

/* key_X / iv_X = HKDF(salt = sid, IKM = Sk, info = ["iotguard m2m key"/"iv", X]) */
static int m2m_derive(const uint8_t sk[16], const uint8_t sid[16], const iog_id_t *x,
                      uint8_t key[16], uint8_t iv[12])
{
    uint8_t info[24 + IOG_ID_MAX + 2];
    for (int i = 0; i < 2; i++) {
        iog_cbor_enc_t e;
        enc_labelled(&e, info, sizeof(info), 2, i ? "iotguard m2m iv" : "iotguard m2m key");
        put_id(&e, x);
        int n = iog_cbor_enc_finish(&e);
        if (n < 0 || iog_hkdf(sid, 16, sk, 16, info, (size_t)n, i ? iv : key, i ? 12 : 16)) {
            return -EINVAL;
        }
    }
    return 0;
}

int iog_m2m_init(iog_m2m_t *s, const uint8_t sk[16], const uint8_t sid[IOG_NONCE_LEN],
                 uint64_t expires, const iog_id_t *me, const iog_id_t *peer)
{
    memset(s, 0, sizeof(*s));
    if (m2m_derive(sk, sid, me, s->tx_key, s->tx_iv) ||
        m2m_derive(sk, sid, peer, s->rx_key, s->rx_iv)) {
        iog_wipe(s, sizeof(*s));
        return -EINVAL;
    }
    memcpy(s->sid, sid, IOG_NONCE_LEN);
    s->expires = expires;
    s->peer = *peer;
    iog_replay_init(&s->window);
    s->active = 1;
    return 0;
}

/* external_aad = ["iotguard m2m", sid, sender, receiver] */
static int m2m_aad(const uint8_t sid[16], const iog_id_t *sender, const iog_id_t *receiver,
                   uint8_t *out, size_t cap)
{
    iog_cbor_enc_t e;
    enc_labelled(&e, out, cap, 4, "iotguard m2m");
    iog_cbor_put_bstr(&e, sid, 16);
    put_id(&e, sender);
    put_id(&e, receiver);
    return iog_cbor_enc_finish(&e);
}

int iog_m2m_seal(iog_m2m_t *s, const iog_id_t *me, const uint8_t *pt, size_t pt_len, uint8_t *out,
                 size_t cap)
{
    uint8_t ext[AAD_MAX];
    int el = m2m_aad(s->sid, me, &s->peer, ext, sizeof(ext));
    int n = el < 0 ? el
                   : enc0_seal(s->tx_key, s->tx_iv, s->seq, me, s->sid, ext, (size_t)el, pt, pt_len,
                               out, cap);
    if (n >= 0) {
        s->seq++; /* a nonce is never used twice, even if the send fails */
    }
    return n;
}

int iog_m2m_open(iog_m2m_t *s, const iog_id_t *me, const uint8_t *buf, size_t len, uint8_t *out,
                 size_t cap)
{
    uint8_t ext[AAD_MAX];
    iog_enc0_t x;
    uint64_t seq;
    if (iog_enc0_parse(buf, len, &x) || !x.kid || !x.piv || !x.kidctx || x.iv ||
        iog_piv_decode(x.piv, x.piv_len, &seq)) {
        return -EBADMSG;
    }
    if (!iog_id_eq(&s->peer, x.kid, x.kid_len) || x.kidctx_len != sizeof(s->sid) ||
        !iog_ct_eq(x.kidctx, s->sid, sizeof(s->sid))) {
        return -EACCES;
    }
    int r = iog_replay_check(&s->window, seq);
    if (r) {
        return r;
    }
    int el = m2m_aad(s->sid, &s->peer, me, ext, sizeof(ext));
    int n = el < 0 ? el : enc0_open(s->rx_key, s->rx_iv, seq, &x, ext, (size_t)el, out, cap);
    if (n >= 0) {
        iog_replay_update(&s->window, seq);
    }
    return n;
}
