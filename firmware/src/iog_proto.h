/**
 * @file
 * @brief IoT-Guard protocol messages (docs/PROTOCOL.md §1–§6), no I/O.
 *
 * Everything here turns values into wire bytes and back and runs the crypto
 * of the protocol; nothing sends or receives. The device driver (iog_device.h)
 * puts these on CoAP. Functions return a length or 0 on success and a negative
 * errno on failure: -EBADMSG for malformed input, -EACCES for a failed
 * signature, tag or binding check, -ENOBUFS for a too small output buffer.
 */
#ifndef IOG_PROTO_H
#define IOG_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "iog_cbor.h"
#include "iog_config.h"
#include "iog_crypto.h"
#include "iog_replay.h"

#ifdef __cplusplus
extern "C" {
#endif

#define IOG_NONCE_LEN 16 /**< device nonce, CH nonce, session ID, Sk */
#define IOG_HASH_LEN 32  /**< SHA-256 */

/** External AADs of the signed messages (PROTOCOL.md §3, §6). */
#define IOG_AAD_JOIN_REQ "iotguard join-req"
#define IOG_AAD_JOIN_RESP "iotguard join-resp"
#define IOG_AAD_CLUSTER "iotguard cluster"
#define IOG_AAD_HEAD "iotguard head"
#define IOG_AAD_ROTATE "iotguard rotate"

/** Paths of protected requests, bound into their AAD (PROTOCOL.md §4.1). */
#define IOG_PATH_VERIFY "verify"
#define IOG_PATH_SESSION "session"
#define IOG_PATH_LEAVE "leave"

/** /verify verdicts (PROTOCOL.md §4.3). */
enum {
    IOG_STATUS_MEMBER = 0,
    IOG_STATUS_UNKNOWN = 1,
    IOG_STATUS_LEFT = 2,
    IOG_STATUS_REVOKED = 3,
    IOG_STATUS_EXPIRED = 4,
};

/** Name of a /verify status ("member", "unknown", ...). */
const char *iog_status_name(unsigned status);

/** A length-prefixed ID (device or cluster), NUL-terminated for printing. */
typedef struct {
    uint8_t len;                /**< 1..64 */
    char s[IOG_ID_MAX + 1];     /**< bytes, NUL-terminated */
} iog_id_t;

/**
 * @brief Sets @p id from @p s[0..n) after checking 1–64 bytes of [A-Za-z0-9._-].
 * @return 0 or -EINVAL.
 */
int iog_id_set(iog_id_t *id, const void *s, size_t n);
/** True when @p id equals @p s[0..n). */
int iog_id_eq(const iog_id_t *id, const void *s, size_t n);
/** True when @p a and @p b are the same ID. */
int iog_id_same(const iog_id_t *a, const iog_id_t *b);

/** A device's identity. IMPORTANT: holds the private key. */
typedef struct {
    iog_id_t id;                      /**< device ID */
    uint8_t priv[IOG_P256_PRIV_LEN];  /**< private scalar */
    uint8_t pub[IOG_P256_PUB_LEN];    /**< public point */
} iog_identity_t;

/** The cluster head as a device knows it. */
typedef struct {
    iog_id_t cluster;                 /**< cluster ID */
    uint8_t pub[IOG_P256_PUB_LEN];    /**< CH public key */
    uint8_t thumb[IOG_HASH_LEN];      /**< RFC 9679 thumbprint of @p pub */
    int64_t lat, lon;                 /**< microdegrees (from /cluster) */
    uint64_t radius;                  /**< metres (from /cluster) */
} iog_cluster_t;

/** Keys derived from K_m (PROTOCOL.md §3.4). IMPORTANT: secrets. */
typedef struct {
    uint8_t req[16];    /**< device -> CH */
    uint8_t resp[16];   /**< CH -> device */
    uint8_t iv[12];     /**< common IV */
    uint8_t ticket[16]; /**< tickets sealed to this member */
    uint8_t talk[16];   /**< this member's talk proofs (PROTOCOL.md §5.1) */
} iog_member_keys_t;

/** A membership: what a joined device keeps. */
typedef struct {
    uint64_t seq;                     /**< next protected-request sequence number */
    uint64_t height;                  /**< ledger height of the join block */
    uint64_t expires;                 /**< membership expiry, unix s */
    iog_member_keys_t keys;           /**< derived keys */
    uint8_t nd[IOG_NONCE_LEN];        /**< device nonce N_d */
    uint8_t nch[IOG_NONCE_LEN];       /**< CH nonce N_ch */
    uint8_t block[IOG_HASH_LEN];      /**< hash of the join block */
    iog_cluster_t ch;                 /**< the CH */
} iog_member_t;

/* ---- COSE_Key and thumbprint (PROTOCOL.md §1) ---- */

/**
 * @brief Encodes @p pub as COSE_Key {1: 2, 3: -7, -1: 1, -2: x, -3: y}.
 * @return the length (77) or -ENOBUFS.
 */
int iog_cose_key_encode(const uint8_t pub[IOG_P256_PUB_LEN], uint8_t *out, size_t cap);

/**
 * @brief Decodes a COSE_Key with exactly the labels of PROTOCOL.md §1 (alg
 *        optional) into an uncompressed point, checked to be on P-256.
 * @return 0 or -EBADMSG.
 */
int iog_cose_key_decode(const uint8_t *buf, size_t len, uint8_t pub[IOG_P256_PUB_LEN]);

/** RFC 9679 thumbprint: SHA-256 of {1: 2, -1: 1, -2: x, -3: y}. */
void iog_thumbprint(const uint8_t pub[IOG_P256_PUB_LEN], uint8_t out[IOG_HASH_LEN]);

/* ---- COSE_Sign1 (untagged, ES256) ---- */

/** A parsed COSE_Sign1: views into the message. */
typedef struct {
    const uint8_t *kid;     /**< unprotected header 4 */
    size_t kid_len;         /**< its length */
    const uint8_t *payload; /**< payload bytes */
    size_t payload_len;     /**< their length */
    const uint8_t *sig;     /**< 64-byte signature */
} iog_sign1_t;

/**
 * @brief Signs @p payload as an untagged COSE_Sign1 with protected {1: -7},
 *        unprotected {4: kid} and external AAD @p aad.
 * @return the length or -ENOBUFS.
 */
int iog_sign1_encode(const uint8_t priv[IOG_P256_PRIV_LEN], const uint8_t *kid, size_t kid_len,
                     const char *aad, const uint8_t *payload, size_t payload_len, uint8_t *out,
                     size_t cap);

/**
 * @brief Parses an untagged COSE_Sign1 whose protected header is exactly
 *        {1: -7} and whose unprotected header is {4: kid}.
 * @return 0 or -EBADMSG. The signature is not checked: see iog_sign1_verify().
 */
int iog_sign1_parse(const uint8_t *buf, size_t len, iog_sign1_t *s);

/** Bytes of a message, in place. */
typedef struct {
    const uint8_t *p; /**< first byte */
    size_t n;         /**< length */
} iog_view_t;

/** Kinds of the fields of iog_map_decode(). */
enum {
    IOG_F_UINT,  /**< uint64_t */
    IOG_F_INT,   /**< int64_t */
    IOG_F_BYTES, /**< a bstr of exactly iog_field_t::len bytes, copied */
    IOG_F_VIEW,  /**< a bstr, as an iog_view_t */
    IOG_F_TEXT,  /**< a tstr, as an iog_view_t */
    IOG_F_ID,    /**< a tstr that is an ID (PROTOCOL.md §1), as an iog_id_t */
    IOG_F_KEY,   /**< a COSE_Key, as its point (65 bytes), checked on P-256 */
    IOG_F_POINT, /**< a COSE_Key not checked on the curve (a verify under it will) */
    IOG_F_ARRAY, /**< an array, as an iog_view_t of its encoding (head included) */
    IOG_F_RAW,   /**< any one item, as an iog_view_t of its encoding */
    IOG_F_PROOF, /**< a talk-proof (PROTOCOL.md §5.1), as an iog_talk_proof_t */
};

/** Where iog_map_decode() puts the value of one key, and as what. */
typedef struct {
    uint16_t off; /**< offsetof() in the output struct */
    uint8_t kind; /**< IOG_F_* */
    uint8_t len;  /**< IOG_F_BYTES: the exact length */
} iog_field_t;

/**
 * @brief Decodes the CBOR map @p buf whose keys are 1..@p nf (nf <= 30):
 *        key k as @p f[k - 1] says, into @p out. Well-formedness and the
 *        limits of PROTOCOL.md §1 first; an unknown key is malformed.
 * @return the keys seen as a bit mask (bit k for key k), or -EBADMSG.
 */
int iog_map_decode(const uint8_t *buf, size_t len, const iog_field_t *f, size_t nf, void *out);

/**
 * @brief iog_sign1_parse(), then iog_map_decode() of its payload: the shape
 *        of every signed message here. The signature is not checked.
 * @return the keys seen, or -EBADMSG.
 */
int iog_sign1_decode(const uint8_t *buf, size_t len, iog_sign1_t *s, const iog_field_t *f,
                     size_t nf, void *out);

/** Verifies @p s under @p pub with external AAD @p aad. @return 0 or -EACCES. */
int iog_sign1_verify(const iog_sign1_t *s, const uint8_t pub[IOG_P256_PUB_LEN], const char *aad);

/** Length of a P-256 SubjectPublicKeyInfo in DER (RFC 5480). */
#define IOG_P256_SPKI_LEN (26 + IOG_P256_PUB_LEN)

/**
 * @brief Writes @p pub as a SubjectPublicKeyInfo (DER, RFC 5480): the body
 *        of the PEM public key an operator enrolls or issues a credential for.
 */
void iog_p256_spki(const uint8_t pub[IOG_P256_PUB_LEN], uint8_t der[IOG_P256_SPKI_LEN]);

/* ---- join (PROTOCOL.md §3) ---- */

/** Inputs of a join request. */
typedef struct {
    const iog_identity_t *me;     /**< signer */
    const iog_id_t *cluster;      /**< cluster to join */
    int64_t lat, lon;             /**< microdegrees */
    const uint8_t *nd;            /**< 16-byte device nonce */
    const uint8_t *echo;          /**< echo from the CH's 4.01, or NULL */
    size_t echo_len;              /**< its length (1..40) */
    /**
     * A fleet credential (PROTOCOL.md §3.5), or NULL: sent opaque as
     * join-req key 8. The device never parses it; a CH whose admission is
     * enrolled checks it.
     */
    const uint8_t *cred;
    size_t cred_len;              /**< its length (1..IOG_CRED_MAX) */
} iog_join_req_t;

/**
 * @brief Builds the signed join request (COSE_Sign1, Content-Format 18),
 *        with the credential as key 8 when @p jr carries one. The payload is
 *        encoded in @p out itself (no stack buffer of its size).
 * @return the length, -EINVAL for a bad field, -ENOBUFS.
 */
int iog_join_req_encode(const iog_join_req_t *jr, uint8_t *out, size_t cap);

/**
 * @brief Verifies a join response and fills @p m (except seq and keys).
 *
 * Checks: the COSE_Sign1 shape, the signature under the CH key it carries
 * (key 2), that the thumbprint (key 3) and the kid are that key's, that
 * cluster, id and N_d are what was sent, and, when @p pin is not NULL, that
 * the key's thumbprint equals @p pin. @p now is the device's clock (unix s),
 * 0 when it has none: an answer whose membership expired by then is no
 * membership (PROTOCOL.md §3.3). @p m is written only on success.
 * @return 0, -EBADMSG, -EACCES for a signature/binding mismatch, or -ESTALE
 * for a membership already expired.
 */
int iog_join_resp_verify(const uint8_t *buf, size_t len, const iog_join_req_t *sent,
                         const uint8_t *pin, uint64_t now, iog_member_t *m);

/**
 * @brief Verifies GET /cluster's signed cluster-info (PROTOCOL.md §6) under
 *        the key it carries (key 2) and, when @p pin is not NULL, that key
 *        against the pin: the pinned key itself, or a key the rotations of
 *        key 7 lead to from it (§6.1: each verified under the key before it,
 *        naming it as old key, for this cluster). The caller that sees
 *        @p out->thumb differ from @p pin has followed a rotation: it pins
 *        the new key (and a member re-keys, §6.2).
 * @return 0, -EBADMSG, or -EACCES (bad signature, or no rotation from the
 *         pinned key leads to the key offered).
 */
int iog_cluster_info_verify(const uint8_t *buf, size_t len, const uint8_t *pin,
                            iog_cluster_t *out);

/**
 * @brief Verifies GET /ledger/head's signed ledger-head (PROTOCOL.md §6)
 *        under the CH key @p pub (the member's: a head signed by another key
 *        is refused).
 * @return 0 with the height, head hash and its time, -EBADMSG or -EACCES.
 */
int iog_ledger_head_verify(const uint8_t *buf, size_t len, const uint8_t pub[IOG_P256_PUB_LEN],
                           uint64_t *height, uint8_t hash[IOG_HASH_LEN], uint64_t *time_ms);

/**
 * @brief K_m = HKDF(salt = N_d || N_ch, IKM = Z, info = kminfo, L = 32)
 *        with kminfo = CBOR ["iotguard K_m", cluster, id, thumbprint].
 * @return 0 or -EINVAL.
 */
int iog_derive_km(const uint8_t z[32], const uint8_t nd[IOG_NONCE_LEN],
                  const uint8_t nch[IOG_NONCE_LEN], const iog_id_t *cluster, const iog_id_t *id,
                  const uint8_t thumb[IOG_HASH_LEN], uint8_t km[32]);

/** Derives the req, resp, IV, ticket and talk keys from K_m (PROTOCOL.md §3.4). */
void iog_derive_member_keys(const uint8_t km[32], iog_member_keys_t *k);

/**
 * @brief ECDH with the CH key, K_m and the member keys for @p m.
 * @return 0 or -EINVAL.
 */
int iog_member_derive(const iog_identity_t *me, iog_member_t *m);

/* ---- COSE_Encrypt0 and protected requests (PROTOCOL.md §4) ---- */

/** A parsed COSE_Encrypt0: views into the message; NULL for absent headers. */
typedef struct {
    const uint8_t *kid;    size_t kid_len;    /**< header 4 */
    const uint8_t *iv;     size_t iv_len;     /**< header 5 */
    const uint8_t *piv;    size_t piv_len;    /**< header 6 */
    const uint8_t *kidctx; size_t kidctx_len; /**< header 10 */
    const uint8_t *ct;     size_t ct_len;     /**< ciphertext || tag */
} iog_enc0_t;

/**
 * @brief Parses an untagged COSE_Encrypt0 with protected {1: 1} and an
 *        unprotected map holding only labels 4, 5, 6 and 10.
 * @return 0 or -EBADMSG.
 */
int iog_enc0_parse(const uint8_t *buf, size_t len, iog_enc0_t *e);

/** Encodes @p seq as a partial IV (big-endian, no leading zeros, 0 -> 00). @return its length. */
size_t iog_piv_encode(uint64_t seq, uint8_t out[5]);
/** Strict inverse of iog_piv_encode(). @return 0 or -EBADMSG. */
int iog_piv_decode(const uint8_t *p, size_t n, uint64_t *seq);

/** nonce = iv XOR seq as a 12-byte big-endian integer. */
void iog_nonce(const uint8_t iv[12], uint64_t seq, uint8_t nonce[12]);

/**
 * @brief Seals a protected request to @p path ("verify", ...) with sequence
 *        number @p seq under the member's req key.
 * @return the length of the COSE_Encrypt0, -ERANGE when seq > 2^40-1, -ENOBUFS.
 */
int iog_prot_req_seal(const iog_member_t *m, const iog_id_t *me, uint64_t seq, const char *path,
                      const uint8_t *pt, size_t pt_len, uint8_t *out, size_t cap);

/**
 * @brief Opens the CH's protected response to request (@p me, @p seq, @p path).
 * @p out must hold the ciphertext with its tag (decryption is in place).
 * @return the plaintext length (written to @p out), -EBADMSG or -EACCES.
 */
int iog_prot_resp_open(const iog_member_t *m, const iog_id_t *me, uint64_t seq, const char *path,
                       const uint8_t *buf, size_t len, uint8_t *out, size_t cap);

/** Longest diagnostic a sealed refusal carries, in bytes (PROTOCOL.md §4.1). */
#define IOG_REFUSAL_MAX 128

/**
 * @brief Opens the CH's sealed refusal of request (@p me, @p seq, @p path)
 *        (PROTOCOL.md §4.1): an untagged COSE_Encrypt0 with unprotected
 *        {5: iv} (12 bytes, nothing else) under the member's resp key, the
 *        nonce its IV, the AAD of the request's response; its plaintext is
 *        one CBOR text string of at most IOG_REFUSAL_MAX bytes, the
 *        refusal's diagnostic. Only a refusal that opens is the CH's, and
 *        only of this request: a device acts on no other (a forged 4.03
 *        "not a member" must not make it rejoin).
 * @p out must hold the ciphertext with its tag (decryption is in place).
 * @return the diagnostic's length, its bytes (UTF-8, not NUL-terminated) at
 *         the start of @p out; -EBADMSG for another shape or plaintext (a
 *         response sealed with an IV is no refusal), -EACCES when it does
 *         not open, -ENOBUFS.
 */
int iog_prot_refusal_open(const iog_member_t *m, const iog_id_t *me, uint64_t seq, const char *path,
                          const uint8_t *buf, size_t len, uint8_t *out, size_t cap);

/* ---- talk proofs (PROTOCOL.md §5.1) ---- */

#define IOG_TALK_NONCE_LEN 12  /**< a talk proof's nonce: its AES-GCM nonce */
#define IOG_TALK_LIFETIME_S 60 /**< a proof is fresh this long before and after its time */

/** A talk proof: the initiator's proof of membership in its hello. */
typedef struct {
    uint8_t nonce[IOG_TALK_NONCE_LEN]; /**< fresh random per hello */
    uint64_t time;                     /**< the initiator's clock when made, unix s */
    uint8_t tag[IOG_GCM_TAG_LEN];      /**< AES-128-GCM tag under the talk key */
} iog_talk_proof_t;

/**
 * @brief Makes the proof that @p initiator asks @p responder to talk at
 *        @p time (unix s) with @p nonce: the AES-128-GCM tag, under the
 *        initiator's @p talk_key, of an empty plaintext with the AAD
 *        ["Encrypt0", h'A10101', ["iotguard talk", cluster, initiator,
 *        responder, nonce, time]]. IMPORTANT: a nonce must never be used
 *        twice under one talk key: draw it from the platform RNG.
 * @return 0 or -EINVAL.
 */
int iog_talk_proof_make(const uint8_t talk_key[16], const iog_id_t *cluster,
                        const iog_id_t *initiator, const iog_id_t *responder,
                        const uint8_t nonce[IOG_TALK_NONCE_LEN], uint64_t time,
                        iog_talk_proof_t *p);

/** True when a proof made at @p t is fresh at @p now: at most 60 s apart. */
int iog_talk_fresh(uint64_t t, uint64_t now);

/**
 * @brief Checks @p p as the CH does, under the initiator's @p talk_key, for
 *        @p responder at @p now. A device cannot (it has no other member's
 *        key): the tests and the shared vectors use it.
 * @return 0, -ETIME when stale, -EACCES when the tag does not verify.
 */
int iog_talk_proof_check(const uint8_t talk_key[16], const iog_id_t *cluster,
                         const iog_id_t *initiator, const iog_id_t *responder,
                         const iog_talk_proof_t *p, uint64_t now);

/**
 * @brief Encodes verify-req / session-req {1: peer, ? 2: proof, ? 9: echo},
 *        or leave-req {? 9: echo} when @p peer is NULL. @p proof (a
 *        session-req forwarding the initiator's talk proof) may be NULL.
 * @return the length, -EINVAL or -ENOBUFS.
 */
int iog_peer_req_encode(const iog_id_t *peer, const iog_talk_proof_t *proof, const uint8_t *echo,
                        size_t echo_len, uint8_t *out, size_t cap);

/**
 * @brief Decodes verify-req / session-req (@p peer not NULL) or leave-req
 *        (@p peer NULL); @p echo points into @p buf, NULL when absent. A
 *        talk proof (key 2) is accepted only when @p proof is not NULL (a
 *        session-req); *has_proof says whether there was one.
 *        The CH's side, used by tests and strict-decoding vectors.
 * @return 0 or -EBADMSG.
 */
int iog_peer_req_decode(const uint8_t *buf, size_t len, iog_id_t *peer, iog_talk_proof_t *proof,
                        int *has_proof, const uint8_t **echo, size_t *echo_len);

/**
 * @brief Opens a protected request with the member's req key (the CH's side).
 * @param[out] kid  the sender, as carried in the header
 * @param[out] seq  its sequence number
 * @return the plaintext length, -EBADMSG, or -EACCES when decryption fails.
 */
int iog_prot_req_open(const iog_member_t *m, const char *path, const uint8_t *buf, size_t len,
                      iog_id_t *kid, uint64_t *seq, uint8_t *out, size_t cap);

/** A decoded join-req payload (the CH's side). */
typedef struct {
    iog_id_t cluster;              /**< key 1 */
    iog_id_t id;                   /**< key 2 */
    uint8_t pub[IOG_P256_PUB_LEN]; /**< key 3, checked to be on P-256 */
    int64_t lat, lon;              /**< keys 4, 5, in range */
    uint8_t nd[IOG_NONCE_LEN];     /**< key 6 */
    const uint8_t *echo;           /**< key 7 or NULL */
    size_t echo_len;               /**< its length */
    const uint8_t *cred;           /**< key 8 (a fleet credential, opaque) or NULL */
    size_t cred_len;               /**< its length (1..IOG_CRED_MAX) */
} iog_join_payload_t;

/** Decodes a join-req payload with the checks of PROTOCOL.md §3.2. @return 0 or -EBADMSG. */
int iog_join_payload_decode(const uint8_t *buf, size_t len, iog_join_payload_t *j);

/** A decoded verify-resp. */
typedef struct {
    iog_id_t peer;         /**< the peer asked about */
    unsigned status;       /**< IOG_STATUS_* */
    uint64_t height;       /**< 0 when absent */
    uint8_t block[32];     /**< zero when absent */
    int has_block;         /**< 1 when key 4 was present */
    uint64_t expires;      /**< 0 when absent */
} iog_verify_resp_t;

/** Decodes a verify-resp. @return 0 or -EBADMSG. */
int iog_verify_resp_decode(const uint8_t *buf, size_t len, iog_verify_resp_t *v);

/** Decodes a leave-resp {1: height, 2: hash}. @return 0 or -EBADMSG. */
int iog_leave_resp_decode(const uint8_t *buf, size_t len, uint64_t *height, uint8_t hash[32]);

/**
 * @brief Splits a session-resp into views into @p buf: {1: grant, 2: ticket}
 *        gives the encodings of its two tickets and *warning = NULL; {3:
 *        verify-resp}, the CH's warning about an initiator whose talk proof
 *        it accepted, gives that verify-resp in @p warning and no tickets.
 * @return 0 or -EBADMSG.
 */
int iog_session_resp_split(const uint8_t *buf, size_t len, const uint8_t **grant,
                           size_t *grant_len, const uint8_t **ticket, size_t *ticket_len,
                           const uint8_t **warning, size_t *warning_len);

/* ---- tickets (PROTOCOL.md §4.4) ---- */

/** A parsed ticket. */
typedef struct {
    uint8_t sid[IOG_NONCE_LEN]; /**< session ID */
    uint64_t expires;           /**< unix s */
    iog_id_t initiator;         /**< M1 */
    iog_id_t responder;         /**< M2 */
    iog_id_t recipient;         /**< whose ticket key seals it */
    uint8_t iv[12];             /**< header 5 */
    uint8_t ct[32];             /**< sealed Sk || tag */
} iog_ticket_t;

/** Parses a ticket. @return 0 or -EBADMSG. */
int iog_ticket_parse(const uint8_t *buf, size_t len, iog_ticket_t *t);

/**
 * @brief Opens ticket @p t with @p ticket_key for @p me.
 *
 * Checks that the recipient is @p me, that initiator and responder are
 * @p initiator and @p responder, that it has not expired at @p now (unix s;
 * 0 skips the check when the device has no clock) and the AEAD tag.
 * @return 0 with Sk in @p sk, -EACCES on a failed check, -ETIME when expired.
 */
int iog_ticket_open(const iog_ticket_t *t, const uint8_t ticket_key[16], const iog_id_t *cluster,
                    const iog_id_t *me, const iog_id_t *initiator, const iog_id_t *responder,
                    uint64_t now, uint8_t sk[16]);

/* ---- talk and M2M (PROTOCOL.md §5) ---- */

/** Encodes hello {1: id, 2: responder, 3: proof}. @return the length or -ENOBUFS. */
int iog_hello_encode(const iog_id_t *id, const iog_id_t *responder, const iog_talk_proof_t *p,
                     uint8_t *out, size_t cap);
/**
 * @brief Decodes a hello. One without keys 2 and 3 (from a device that
 *        predates talk proofs) decodes with *has_proof = 0, for the listener
 *        to refuse; one with only one of them is malformed.
 * @return 0 or -EBADMSG.
 */
int iog_hello_decode(const uint8_t *buf, size_t len, iog_id_t *id, iog_id_t *responder,
                     iog_talk_proof_t *p, int *has_proof);
/** Encodes talk-resp {1: id, 2: ticket} with the ticket's encoding as is. */
int iog_talk_resp_encode(const iog_id_t *id, const uint8_t *ticket, size_t ticket_len,
                         uint8_t *out, size_t cap);
/** Decodes talk-resp; @p ticket points into @p buf. @return 0 or -EBADMSG. */
int iog_talk_resp_decode(const uint8_t *buf, size_t len, iog_id_t *id, const uint8_t **ticket,
                         size_t *ticket_len);

/** One side of an M2M session (PROTOCOL.md §5.2). IMPORTANT: holds keys. */
typedef struct {
    uint8_t active;              /**< 1 when in use */
    uint8_t sid[IOG_NONCE_LEN];  /**< session ID */
    uint64_t expires;            /**< ticket expiry */
    uint32_t made_ms;            /**< the device's now_ms() when it was made (its end without a clock) */
    iog_id_t peer;               /**< the other party */
    uint8_t tx_key[16];          /**< my sending key */
    uint8_t tx_iv[12];           /**< my sending IV */
    uint8_t rx_key[16];          /**< the peer's sending key */
    uint8_t rx_iv[12];           /**< the peer's sending IV */
    uint64_t seq;                /**< my next sequence number */
    iog_replay_t window;         /**< the peer's sequence numbers */
} iog_m2m_t;

/** Derives the session keys for @p me talking to @p peer. */
int iog_m2m_init(iog_m2m_t *s, const uint8_t sk[16], const uint8_t sid[IOG_NONCE_LEN],
                 uint64_t expires, const iog_id_t *me, const iog_id_t *peer);

/**
 * @brief Seals @p pt from @p me to the peer with the next sequence number.
 * @return the COSE_Encrypt0 length, -ERANGE when seq is exhausted, -ENOBUFS.
 */
int iog_m2m_seal(iog_m2m_t *s, const iog_id_t *me, const uint8_t *pt, size_t pt_len, uint8_t *out,
                 size_t cap);

/**
 * @brief Opens a message from the peer to @p me; moves the replay window.
 * @p out must hold the ciphertext with its tag (decryption is in place).
 * @return the plaintext length, -EBADMSG, -EACCES (wrong sender/session/tag),
 *         -EALREADY or -ESTALE (replay).
 */
int iog_m2m_open(iog_m2m_t *s, const iog_id_t *me, const uint8_t *buf, size_t len, uint8_t *out,
                 size_t cap);

#ifdef __cplusplus
}
#endif

#endif /* IOG_PROTO_H */
