/**
 * @file
 * @brief A device of IoT-Guard: the protocol flows of PROTOCOL.md §3–§5 on CoAP.
 *
 * One iog_device_t is one device with one UDP endpoint: it joins a cluster
 * head, makes protected requests (/verify, /session, /leave), asks a peer to
 * talk (M1), serves /talk and /m2m (M2), and exchanges encrypted M2M messages.
 * All state lives in the struct (about 9 KB with the defaults); nothing is
 * allocated. Calls block in the platform's recv() while they wait.
 *
 * Errors are negative errno values; when the other side refused,
 * iog_device_t::code and iog_device_t::diag hold its CoAP code and diagnostic.
 */
#ifndef IOG_DEVICE_H
#define IOG_DEVICE_H

#include "iog_coap.h"
#include "iog_proto.h"

#ifdef __cplusplus
extern "C" {
#endif

/** M2M sessions a device keeps at once (as M1 and as M2). */
#ifndef IOG_MAX_SESSIONS
#define IOG_MAX_SESSIONS 4
#endif

/**
 * How often a join answered 5.03 "outcome not known yet" is sent again
 * (PROTOCOL.md §3.3); each time after the answer's Max-Age, at most
 * IOG_JOIN_MAX_WAIT_MS.
 */
#ifndef IOG_JOIN_RETRIES
#define IOG_JOIN_RETRIES 4
#endif
#ifndef IOG_JOIN_MAX_WAIT_MS
#define IOG_JOIN_MAX_WAIT_MS 60000u
#endif

typedef struct iog_device iog_device_t;

/**
 * Persists the device's state. Called after a join and before each protected
 * request with the sequence number already advanced, so that a device that
 * restarts never reuses a nonce (PROTOCOL.md §4.1). Return 0 to go on.
 */
typedef int (*iog_persist_fn)(void *ctx, const iog_device_t *d);

/**
 * Receives a decrypted M2M message (M2 side) and may write a reply of at most
 * @p cap bytes to @p reply, sent back encrypted. @return the reply's length.
 */
typedef size_t (*iog_message_fn)(void *ctx, const iog_id_t *peer, const uint8_t *msg, size_t len,
                                 uint8_t *reply, size_t cap);

/** Told about a peer that was refused on a /talk (M2 side). */
typedef void (*iog_warning_fn)(void *ctx, const iog_id_t *peer, const char *why);

/** Told about a peer the CH verified as a member on a /talk (M2 side). */
typedef void (*iog_verified_fn)(void *ctx, const iog_id_t *peer, const iog_verify_resp_t *v);

/** A device. Set the public fields after iog_device_init(). */
struct iog_device {
    iog_coap_ep_t ep;             /**< the UDP endpoint (client and server) */
    const iog_platform_t *plat;   /**< hooks */
    iog_addr_t ch;                /**< the cluster head */
    iog_identity_t me;            /**< ID and key pair */
    iog_member_t mem;             /**< membership (valid when @p joined) */
    int joined;                   /**< 1 after a join */
    int has_pin;                  /**< 1: the CH key must have thumbprint @p pin */
    uint8_t pin[IOG_HASH_LEN];    /**< pinned CH thumbprint */
    iog_m2m_t sessions[IOG_MAX_SESSIONS]; /**< M2M sessions */
    uint8_t code;                 /**< CoAP code of the last refusal (0: none) */
    char diag[80];                /**< its diagnostic text */
    unsigned warnings;            /**< peers refused on /talk (M2) */
    unsigned messages;            /**< M2M messages received (M2) */
    iog_persist_fn persist;       /**< state persistence, or NULL */
    void *persist_ctx;            /**< its context */
    iog_message_fn on_message;    /**< M2M message sink, or NULL */
    iog_warning_fn on_warning;    /**< /talk refusal sink, or NULL */
    iog_verified_fn on_verified;  /**< /talk verdict sink, or NULL */
    void *cb_ctx;                 /**< context of the three above */
    const uint8_t *cred;          /**< fleet credential for the join, or NULL (not sent yet: see iog_join_req_t) */
    size_t cred_len;              /**< its length */
    uint8_t echo[IOG_ECHO_MAX];   /**< latest echo of the CH: /cluster answer or restart challenge */
    uint8_t echo_len;             /**< its length, 0 when none */
    /**
     * A join sent without an answer from the ledger (5.03, no answer): it
     * may be recorded. The next join to @p pend_cluster reuses its nonce, so
     * that the CH answers it with the recorded join (PROTOCOL.md §3.3). Kept
     * in RAM only: a reboot forgets it.
     */
    int pend;
    uint8_t pend_nonce[IOG_NONCE_LEN]; /**< its device nonce */
    iog_id_t pend_cluster;             /**< its cluster */
    uint8_t rx[IOG_COAP_MAX_PDU]; /**< client receive buffer */
    uint8_t work[IOG_MAX_PAYLOAD];/**< outgoing payloads */
    uint8_t pt[IOG_MAX_PAYLOAD];  /**< plaintexts */
};

/**
 * @brief Sets up @p d with identity @p me talking to the CH at @p ch; the
 *        device serves /talk and /m2m on the same endpoint.
 */
void iog_device_init(iog_device_t *d, const iog_platform_t *plat, const iog_addr_t *ch,
                     const iog_identity_t *me);

/**
 * @brief GET /cluster and check its signature (and the pin, if any).
 * @return 0, -EACCES (bad signature or pin), -EPROTO, or a CoAP error.
 */
int iog_device_cluster(iog_device_t *d, iog_cluster_t *out);

/**
 * @brief Joins at (lat, lon) microdegrees: /cluster (whose Echo option the
 *        join signs), signed /join, the echo challenge if the CH still asks,
 *        the CH's signed answer, K_m and the member keys.
 *
 * A CH whose ledger has not decided answers 5.03 "outcome not known yet":
 * the same signed join is sent again after the answer's Max-Age, at most
 * IOG_JOIN_RETRIES times (a new echo challenge meanwhile is signed into the
 * same join, same nonce). A join that ends without the ledger's answer stays
 * pending (@p pend): the next join to that cluster reuses its nonce.
 *
 * @return 0, -EACCES when refused (see code/diag) or the answer does not
 *         verify, -EAGAIN when the outcome is not known yet (code 5.03),
 *         -EPROTO, or a CoAP error (-ETIMEDOUT: the outcome is not known
 *         either).
 */
int iog_device_join(iog_device_t *d, int64_t lat, int64_t lon);

/**
 * @brief GET /ledger/head and check its signature under the member's CH key.
 *        A device without a clock takes the head's time as a lower bound of
 *        the time now (PROTOCOL.md §6): the CH signed it, no later than now.
 * @return 0, -ENOTCONN when not joined, -EACCES, -EPROTO, or a CoAP error.
 */
int iog_device_ledger_head(iog_device_t *d, uint64_t *height, uint64_t *time_ms);

/**
 * @brief Asks the CH about @p peer (protected /verify).
 * @return 0 with the verdict in @p v (any status but member is a warning),
 *         or a negative errno.
 */
int iog_device_verify(iog_device_t *d, const iog_id_t *peer, iog_verify_resp_t *v);

/**
 * @brief Asks the CH for a session with @p peer (protected /session). The
 *        grant is opened into @p s; the peer's ticket is copied to @p ticket.
 * @return 0, or a negative errno (-EACCES when refused).
 */
int iog_device_session(iog_device_t *d, const iog_id_t *peer, iog_m2m_t *s, uint8_t *ticket,
                       size_t *ticket_len, size_t ticket_cap);

/** Leaves the cluster (protected /leave). @return 0 or a negative errno. */
int iog_device_leave(iog_device_t *d, uint64_t *height, uint8_t hash[IOG_HASH_LEN]);

/**
 * @brief Plays M1: POST /talk to @p peer at @p addr, open the ticket it
 *        returns; the session is kept in d->sessions and returned in @p out.
 * @return 0, -EACCES when the peer refused (diag "warning: ..."), or an error.
 */
int iog_device_talk(iog_device_t *d, const iog_addr_t *addr, const iog_id_t *peer,
                    iog_m2m_t **out);

/**
 * @brief Sends one encrypted M2M message in session @p s to @p addr and opens
 *        the peer's encrypted reply into @p reply.
 * @return the reply's length, or a negative errno.
 */
int iog_device_send(iog_device_t *d, iog_m2m_t *s, const iog_addr_t *addr, const uint8_t *msg,
                    size_t len, uint8_t *reply, size_t reply_cap);

/** Serves /talk and /m2m for at most @p timeout_ms. @return as iog_coap_serve(). */
int iog_device_serve(iog_device_t *d, uint32_t timeout_ms);

#ifdef __cplusplus
}
#endif

#endif /* IOG_DEVICE_H */
