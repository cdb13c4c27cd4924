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
 * Only a refusal the CH sealed for the protected request it refuses
 * (PROTOCOL.md §4.1) is authentic (iog_device_t::sealed): any other could
 * come from anyone on the path, and nothing that changes state (dropping the
 * membership, a rejoin) may follow from it.
 */
#ifndef IOG_DEVICE_H
#define IOG_DEVICE_H

#include "iog_coap.h"
#include "iog_proto.h"
#include "iog_tlog.h"

#ifdef __cplusplus
extern "C" {
#endif

/** M2M sessions a device keeps at once (as M1 and as M2). */
#ifndef IOG_MAX_SESSIONS
#define IOG_MAX_SESSIONS 4
#endif

/**
 * How often a join answered 5.03 ("outcome not known yet", or "busy: too
 * many joins" from a CH over its join rate) is sent again (PROTOCOL.md
 * §3.3); each time after the answer's Max-Age, at most IOG_JOIN_MAX_WAIT_MS.
 */
#ifndef IOG_JOIN_RETRIES
#define IOG_JOIN_RETRIES 4
#endif
#ifndef IOG_JOIN_MAX_WAIT_MS
#define IOG_JOIN_MAX_WAIT_MS 60000u
#endif

/**
 * Hellos a listener remembers (by their proof's tag, until stale) so that a
 * replayed one is refused without asking the CH; the CH, which remembers
 * every proof it accepted, still refuses one that got past this memory.
 */
#ifndef IOG_HELLO_MEMORY
#define IOG_HELLO_MEMORY 8
#endif

/**
 * Hellos a listener forwards to its CH: one per IOG_TALK_FORWARD_MS on
 * average, at most IOG_TALK_FORWARD_BURST at once; beyond, 4.29.
 */
#ifndef IOG_TALK_FORWARD_MS
#define IOG_TALK_FORWARD_MS 250
#endif
#ifndef IOG_TALK_FORWARD_BURST
#define IOG_TALK_FORWARD_BURST 4
#endif

/**
 * How long an M2M session lasts, from when it was made, on a device without
 * a clock (PROTOCOL.md §4.4: the CH's default session lifetime); with one it
 * ends at its ticket's expiry.
 */
#ifndef IOG_SESSION_LOCAL_S
#define IOG_SESSION_LOCAL_S 600
#endif

/**
 * Tickets an initiator remembers having started a session with (PROTOCOL.md
 * §4.4): it uses a ticket once. The /talk answer that carries a ticket is
 * not bound to the hello it answers, so anyone on the path, or who recorded
 * an earlier answer, can hand an old ticket to a later talk of the same
 * initiator; starting its session again would number messages from 0 again
 * under the same keys: AES-GCM nonces reused. Each sid is kept until its
 * ticket expires; a full memory refuses new tickets (the talk is not even
 * sent) rather than forget one that has not expired: at most this many
 * sessions as M1 per ticket lifetime (10 min by default). One per session
 * slot, and one more for the session that replaces a slot's; the board's
 * RTC record holds all of them (iog_store.h: IOG_STORE_RTC_MAX). Without a
 * clock (unix_s() 0) none expires, but such a device cannot talk as M1.
 */
#ifndef IOG_SPENT_TICKETS
#define IOG_SPENT_TICKETS (IOG_MAX_SESSIONS + 1)
#endif

/**
 * A ticket an initiator used: its sid until its expiry.
 */
typedef struct {
    uint8_t sid[IOG_NONCE_LEN]; /**< the session ID */
    uint64_t expires;           /**< the ticket's expiry, unix s; 0: the entry is free */
} iog_spent_t;

/**
 * A forwarded hello the CH leaves unanswered holds the listener until CoAP
 * gives up (up to 93 s), serving no one. After one, hellos are answered 5.03
 * unforwarded for IOG_TALK_CH_PAUSE_MS, twice as long after each next
 * unanswered forward, at most IOG_TALK_CH_PAUSE_MAX_MS; an answer of the CH
 * ends it.
 */
#ifndef IOG_TALK_CH_PAUSE_MS
#define IOG_TALK_CH_PAUSE_MS 30000u
#endif
#ifndef IOG_TALK_CH_PAUSE_MAX_MS
#define IOG_TALK_CH_PAUSE_MAX_MS 600000u
#endif

/**
 * A listener serves /talk only to a source whose address it verified
 * (PROTOCOL.md §2, §5.1; RFC 9175 §2.4): a hello without an Echo option it
 * made for that address and port within IOG_TALK_ECHO_MS gets 4.01 with a
 * new one. An Echo value is IOG_TALK_ECHO_LEN bytes: 4 of its millisecond
 * clock and 8 of HMAC-SHA-256, under a random key drawn at its first
 * challenge after a boot and after each wrap of that clock (2^32 ms, 49.7
 * days: a stamp of an earlier turn never checks), over them and the
 * source's address and port. It keeps no state per source.
 */
#define IOG_TALK_ECHO_LEN 12
#define IOG_TALK_ECHO_MS 60000u

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

/**
 * Told about a peer that was refused on a /talk (M2 side): @p why is a
 * warning ("left", "peer not a member: ...") or "bad talk proof: ...".
 */
typedef void (*iog_warning_fn)(void *ctx, const iog_id_t *peer, const char *why);

/**
 * Told about a peer the CH accepted on a /talk (M2 side): its talk proof
 * verified and it is a member. The grant names no join block: @p v has the
 * peer and status member only.
 */
typedef void (*iog_verified_fn)(void *ctx, const iog_id_t *peer, const iog_verify_resp_t *v);

/** A device. Set the public fields after iog_device_init(). */
struct iog_device {
    const iog_platform_t *plat;   /**< hooks */
    int joined;                   /**< 1 after a join */
    int has_pin;                  /**< 1: the CH key must have thumbprint @p pin; a join sets it (trust on first use) */
    uint8_t code;                 /**< CoAP code of the last refusal (0: none) */
    uint8_t sealed;               /**< 1: @p diag was sealed by the CH for the protected request it refused: authentic */
    uint8_t echo_len;             /**< length of @p echo, 0 when none */
    uint8_t join_echo_len;        /**< length of @p echo when it holds the echo the last join signed, else 0 */
    /* the listener's counters and flags here, where short loads reach them (bytes: 255) */
    unsigned hello_next;          /**< the slot the next hello takes when all are live */
    uint32_t forward_tokens;      /**< hellos that may go to the CH now (M2) */
    uint32_t forward_ms;          /**< when the bucket last earned a token, ms */
    uint32_t pause_from;          /**< when the CH last left a forwarded hello unanswered, ms */
    uint32_t pause_len;           /**< the pause in forwarding from then, ms; 0: the CH answered the last one */
    uint8_t paused;               /**< 1 until that pause is seen over */
    uint8_t echo_keyed;           /**< 1 once @p echo_key is drawn (M2) */
    uint32_t echo_seen;           /**< the clock when last read for @p echo_key: a lower read is a wrap, ms */
    iog_addr_t ch;                /**< the cluster head */
    iog_member_t mem;             /**< membership (valid when @p joined) */
    iog_identity_t me;            /**< ID and key pair */
    uint8_t pin[IOG_HASH_LEN];    /**< pinned CH thumbprint; follows a rotation (PROTOCOL.md §6.1) */
    char diag[80];                /**< its diagnostic text */
    unsigned warnings;            /**< peers refused on /talk (M2) */
    unsigned messages;            /**< M2M messages received (M2) */
    iog_persist_fn persist;       /**< state persistence, or NULL */
    void *persist_ctx;            /**< its context */
    iog_message_fn on_message;    /**< M2M message sink, or NULL */
    iog_warning_fn on_warning;    /**< /talk refusal sink, or NULL */
    iog_verified_fn on_verified;  /**< /talk verdict sink, or NULL */
    void *cb_ctx;                 /**< context of the three above */
    const uint8_t *cred;          /**< fleet credential every join carries, or NULL (PROTOCOL.md §3.5) */
    size_t cred_len;              /**< its length */
    /**
     * Latest echo of the CH: of the /cluster answer, of a challenge; after a
     * join, the one it signed, which the CH made for this device's address
     * (@p join_echo_len): a public GET other than /cluster carries it.
     */
    uint8_t echo[IOG_ECHO_MAX];
    struct {
        uint8_t tag[IOG_GCM_TAG_LEN]; /**< the proof's tag */
        uint64_t until;               /**< its last fresh second (0: slot free) */
    } hellos[IOG_HELLO_MEMORY];   /**< hellos forwarded to the CH (M2) */
    uint8_t echo_key[32];         /**< the key of this turn of the clock's /talk Echo values (M2) */
    uint8_t talk_echo[IOG_TALK_ECHO_LEN]; /**< the Echo of the last /talk challenge, while it is sent */
    /**
     * A join sent without an answer from the ledger (5.03, no answer): it
     * may be recorded. The next join to @p pend_cluster reuses its nonce, so
     * that the CH answers it with the recorded join (PROTOCOL.md §3.3). Kept
     * in RAM only: a reboot forgets it.
     */
    int pend;
    uint8_t pend_nonce[IOG_NONCE_LEN]; /**< its device nonce */
    iog_id_t pend_cluster;             /**< its cluster */
    /**
     * The tickets this device used as M1, each until its expiry. An entry
     * is never freed, only taken over by a new ticket, the one that expires
     * first and only once it has expired on the clock: so every ticket
     * forgotten expires no later than every ticket held, and when the clock
     * falls back below the expiry of a forgotten one, every entry is
     * unexpired again and new tickets are refused until the clock catches
     * up. A join empties it: no ticket sealed under an earlier K_m opens
     * under the new one. A re-key does not (the board goes back to the old
     * K_m when it cannot store K_m'). Persist it with the membership (the
     * board's RTC record).
     */
    iog_spent_t spent[IOG_SPENT_TICKETS];
    iog_tlog_cp_t log;            /**< the CH's log as last checked (kept across joins) */
    /* the large members last: the fields above stay within the short load offsets */
    iog_m2m_t sessions[IOG_MAX_SESSIONS]; /**< M2M sessions */
    uint8_t rx[IOG_COAP_MAX_PDU]; /**< client receive buffer */
    uint8_t work[IOG_MAX_PAYLOAD];/**< outgoing payloads */
    uint8_t pt[IOG_MAX_PAYLOAD];  /**< plaintexts */
    iog_coap_ep_t ep;             /**< the UDP endpoint (client and server) */
};

/**
 * @brief Sets up @p d with identity @p me talking to the CH at @p ch; the
 *        device serves /talk and /m2m on the same endpoint.
 */
void iog_device_init(iog_device_t *d, const iog_platform_t *plat, const iog_addr_t *ch,
                     const iog_identity_t *me);

/**
 * @brief GET /cluster and check its signature and, if the device has a pin,
 *        the key against it: the pinned key, or one the rotations of the
 *        answer lead to from it (PROTOCOL.md §6.1); then the pin follows.
 * @return 0, -EACCES (bad signature, or no rotation from the pin leads to the
 *         key), -EPROTO, or a CoAP error.
 */
int iog_device_cluster(iog_device_t *d, iog_cluster_t *out);

/**
 * @brief Joins at (lat, lon) microdegrees: /cluster (whose Echo option the
 *        join signs), signed /join, the echo challenge if the CH still asks
 *        (or answers "stale join": the echo predates the device's latest
 *        ledger event), the CH's signed answer, K_m and the member keys.
 *        Trust on first use (PROTOCOL.md §3.3): a device without a pin pins
 *        the CH key of this join, and refuses any other key afterwards; the
 *        persist hook must keep @p has_pin and @p pin, through leaves.
 *
 * A CH whose ledger has not decided answers 5.03 "outcome not known yet"
 * (one over its join rate 5.03 "busy: too many joins"): the same signed
 * join is sent again after the answer's Max-Age, at most IOG_JOIN_RETRIES
 * times (a new echo challenge meanwhile is signed into the
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
 *        The GET carries the Echo option the last join signed, as
 *        iog_device_check_join() does.
 * @return 0, -ENOTCONN when not joined, -EACCES, -EPROTO, or a CoAP error.
 */
int iog_device_ledger_head(iog_device_t *d, uint64_t *height, uint64_t *time_ms);

/**
 * @brief Proves this device's join in the CH's transparency log (PROTOCOL.md
 *        §9.2): GET /ledger/proof?id=ID, with &from=M when it keeps a
 *        checkpoint of tree size M (d->log), checked by iog_tlog_check_join()
 *        against the membership; then d->log holds the new checkpoint. The GET
 *        carries the Echo option the join signed: the CH made it for this
 *        address, so it answers at once (within the echo's 60 s; else it
 *        challenges, and the GET is repeated with the new Echo in its place).
 * @param[out] time_ms the checkpoint's time, a lower bound of now, or NULL
 * @return 0; -ENOTSUP when the CH keeps no log; -EPROTO when the log does not
 *         prove the join or is not an extension of the kept checkpoint
 *         (d->diag says which; the membership stands, as the CH granted it);
 *         -ENOTCONN, -EACCES for another refusal, or a CoAP error.
 */
int iog_device_check_join(iog_device_t *d, uint64_t *time_ms);

/**
 * @brief Moves the membership to the CH key in force after a rotation
 *        (PROTOCOL.md §6.2): GET /cluster, accept its key only through
 *        rotations from the membership's key (a pin, if any, must be that
 *        key or the new one), then K_m' from the new key and the nonces of
 *        the join. No ledger
 *        event; the sequence number goes on; the pin follows. IMPORTANT: the
 *        caller persists d->mem before the next protected request (the CH
 *        refuses the old K_m once it saw K_m').
 * @return 1 when re-keyed, 0 when already keyed to the key in force,
 *         -ENOTCONN, -EACCES (no rotation from the membership's key leads to
 *         the key offered, or another cluster), -EPROTO, or a CoAP error.
 */
int iog_device_rekey(iog_device_t *d);

/**
 * @brief Asks the CH about @p peer (protected /verify).
 * @return 0 with the verdict in @p v (any status but member is a warning),
 *         or a negative errno.
 */
int iog_device_verify(iog_device_t *d, const iog_id_t *peer, iog_verify_resp_t *v);

/**
 * @brief Asks the CH for a session with @p peer (protected /session),
 *        forwarding the peer's talk proof @p proof when not NULL (PROTOCOL.md
 *        §5.1). The grant is opened into @p s; the peer's ticket is copied to
 *        @p ticket.
 * @return 0; -EACCES when refused (d->code 4.01 with a proof: the CH refused
 *         it, "bad talk proof..."); -EPERM when the CH accepted the proof but
 *         warns about the peer (d->diag holds the status: "left", ...); or
 *         another negative errno.
 */
int iog_device_session(iog_device_t *d, const iog_id_t *peer, const iog_talk_proof_t *proof,
                       iog_m2m_t *s, uint8_t *ticket, size_t *ticket_len, size_t ticket_cap);

/** Leaves the cluster (protected /leave). @return 0 or a negative errno. */
int iog_device_leave(iog_device_t *d, uint64_t *height, uint8_t hash[IOG_HASH_LEN]);

/**
 * @brief Plays M1: POST /talk to @p peer at @p addr with a hello carrying a
 *        talk proof under this device's member key, open the ticket it
 *        returns; the session is kept in d->sessions and returned in @p out.
 *        A ticket is used once (IOG_SPENT_TICKETS): one whose sid this
 *        device started a session with before is refused, and no session
 *        is touched. The ticket's sid is in d->spent when this returns 0:
 *        the caller persists it (with the membership) before the
 *        session's first message, so that a restart does not forget it.
 * @return 0; -EACCES when the peer refused: d->code 4.01 for the talk proof
 *         (d->diag "bad talk proof..."), 4.03 for a warning (d->diag
 *         "warning: ..."), or when the ticket was used before (d->diag
 *         "ticket already used"); -EBUSY when IOG_SPENT_TICKETS unexpired
 *         tickets are remembered (nothing sent); -ENOTCONN when not
 *         joined; -ETIME without a clock (a proof needs the time); or
 *         another error.
 */
int iog_device_talk(iog_device_t *d, const iog_addr_t *addr, const iog_id_t *peer,
                    iog_m2m_t **out);

/**
 * @brief Whether session @p s is over, or will be within @p margin_s seconds:
 *        at its ticket's expiry on the device's clock or, without one,
 *        IOG_SESSION_LOCAL_S after it was made.
 */
int iog_device_session_over(const iog_device_t *d, const iog_m2m_t *s, uint32_t margin_s);

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
