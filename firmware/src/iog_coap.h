/**
 * @file
 * @brief CoAP (RFC 7252) for IoT-Guard: message codec, a client with CON
 *        retransmission, and a tiny server for the device's own resources.
 *
 * All buffers are caller-owned or live inside iog_coap_ep_t; nothing is
 * allocated. Functions return 0 (or a length) on success and a negative errno
 * on failure.
 */
#ifndef IOG_COAP_H
#define IOG_COAP_H

#include <stddef.h>
#include <stdint.h>

#include "iog_config.h"
#include "iog_platform.h"

#ifdef __cplusplus
extern "C" {
#endif

/** @name Message types (RFC 7252 §3) */
/** @{ */
#define IOG_COAP_CON 0
#define IOG_COAP_NON 1
#define IOG_COAP_ACK 2
#define IOG_COAP_RST 3
/** @} */

/** Builds a code from class and detail, e.g. IOG_COAP_CODE(4, 1) for 4.01. */
#define IOG_COAP_CODE(c, d) ((uint8_t)(((c) << 5) | (d)))
/** Class of a code (2 for 2.05). */
#define IOG_COAP_CLASS(code) ((code) >> 5)

/** @name Method and response codes used by PROTOCOL.md */
/** @{ */
#define IOG_COAP_EMPTY 0
#define IOG_COAP_GET 1
#define IOG_COAP_POST 2
#define IOG_COAP_CREATED IOG_COAP_CODE(2, 1)
#define IOG_COAP_CHANGED IOG_COAP_CODE(2, 4)
#define IOG_COAP_CONTENT IOG_COAP_CODE(2, 5)
#define IOG_COAP_BAD_REQUEST IOG_COAP_CODE(4, 0)
#define IOG_COAP_UNAUTHORIZED IOG_COAP_CODE(4, 1)
#define IOG_COAP_BAD_OPTION IOG_COAP_CODE(4, 2)
#define IOG_COAP_FORBIDDEN IOG_COAP_CODE(4, 3)
#define IOG_COAP_NOT_FOUND IOG_COAP_CODE(4, 4)
#define IOG_COAP_METHOD_NOT_ALLOWED IOG_COAP_CODE(4, 5)
#define IOG_COAP_CONFLICT IOG_COAP_CODE(4, 9)
#define IOG_COAP_TOO_LARGE IOG_COAP_CODE(4, 13)
#define IOG_COAP_UNSUPPORTED_CF IOG_COAP_CODE(4, 15)
#define IOG_COAP_TOO_MANY IOG_COAP_CODE(4, 29)
#define IOG_COAP_INTERNAL IOG_COAP_CODE(5, 0)
#define IOG_COAP_UNAVAILABLE IOG_COAP_CODE(5, 3)
/** @} */

/** @name Option numbers */
/** @{ */
#define IOG_COAP_OPT_URI_HOST 3
#define IOG_COAP_OPT_URI_PORT 7
#define IOG_COAP_OPT_URI_PATH 11
#define IOG_COAP_OPT_CONTENT_FORMAT 12
#define IOG_COAP_OPT_MAX_AGE 14
#define IOG_COAP_OPT_URI_QUERY 15
#define IOG_COAP_OPT_ACCEPT 17
#define IOG_COAP_OPT_SIZE1 60
#define IOG_COAP_OPT_ECHO 252
/** Padding (docs/PROTOCOL.md §2): zeros that only add to a request's size; an
 *  experimental number (RFC 7252 §12.2), elective, safe to forward, no cache key. */
#define IOG_COAP_OPT_PADDING 65020
/** @} */

/**
 * Size from which the cluster head answers a GET /cluster at once, with its
 * Echo, to a source whose address it has not verified (docs/PROTOCOL.md §2):
 * the request pays for the answer in bytes (at most three times it), as a
 * QUIC client pads its first datagram. A device pads its GET /cluster to it.
 */
#define IOG_PADDED_REQUEST 128

/** The longest Echo option value (RFC 9175 §2.2.1). */
#define IOG_COAP_ECHO_MAX 40

/** @name Content-Formats of PROTOCOL.md */
/** @{ */
#define IOG_CF_TEXT 0
#define IOG_CF_COSE_ENCRYPT0 16
#define IOG_CF_COSE_SIGN1 18
#define IOG_CF_LINK_FORMAT 40
#define IOG_CF_CBOR 60
/** No Content-Format / Accept option. */
#define IOG_CF_NONE (-1)
/** @} */

/** One option of a parsed message; @p val points into the datagram. */
typedef struct {
    uint16_t num;       /**< option number */
    uint16_t len;       /**< value length */
    const uint8_t *val; /**< value bytes */
} iog_coap_opt_t;

/** A parsed message: a view into the caller's datagram buffer. */
typedef struct {
    uint8_t type;                             /**< CON, NON, ACK or RST */
    uint8_t code;                             /**< class << 5 | detail */
    uint16_t mid;                             /**< message ID */
    uint8_t tkl;                              /**< token length */
    uint8_t token[8];                         /**< token */
    uint8_t nopts;                            /**< options in @p opts */
    iog_coap_opt_t opts[IOG_COAP_MAX_OPTS];   /**< options in wire order */
    const uint8_t *payload;                   /**< payload or NULL */
    size_t payload_len;                       /**< payload length */
} iog_coap_msg_t;

/**
 * @brief Parses a datagram.
 * @return 0, -EBADMSG for a message format error (RFC 7252 §4.2: the caller
 *         drops it and MAY answer RST to a CON), -ENOSPC for more than
 *         IOG_COAP_MAX_OPTS options.
 */
int iog_coap_parse(iog_coap_msg_t *m, const uint8_t *buf, size_t len);

/** First option @p num of @p m, or NULL. */
const iog_coap_opt_t *iog_coap_opt(const iog_coap_msg_t *m, uint16_t num);

/** The message's first Echo option when its value is 1..IOG_COAP_ECHO_MAX bytes (RFC 9175), else NULL. */
const iog_coap_opt_t *iog_coap_echo(const iog_coap_msg_t *m);

/**
 * @brief Reads a uint option (0..4 bytes).
 * @return 0, -ENOENT when absent, -EBADMSG when longer than 4 bytes.
 */
int iog_coap_opt_uint(const iog_coap_msg_t *m, uint16_t num, uint32_t *v);

/**
 * @brief Compares the Uri-Path options of @p m with @p path ("/a/b").
 * @return 1 when equal, 0 otherwise.
 */
int iog_coap_path_is(const iog_coap_msg_t *m, const char *path);

/** Message builder over a caller-owned buffer; errors are sticky. */
typedef struct {
    uint8_t *buf;  /**< output */
    size_t cap;    /**< capacity */
    size_t len;    /**< bytes written */
    uint16_t last; /**< last option number written */
    int err;       /**< first error or 0 */
} iog_coap_pkt_t;

/** Writes the 4-byte header and the token. */
void iog_coap_build(iog_coap_pkt_t *p, uint8_t *buf, size_t cap, uint8_t type, uint8_t code,
                    uint16_t mid, const uint8_t *token, uint8_t tkl);
/** Adds an option; numbers must not decrease (else -EINVAL). @p val NULL: @p len zeros. */
void iog_coap_add_opt(iog_coap_pkt_t *p, uint16_t num, const void *val, size_t len);
/** Adds a uint option in its shortest form (0 is the empty value). */
void iog_coap_add_opt_uint(iog_coap_pkt_t *p, uint16_t num, uint32_t v);
/** Adds one Uri-Path option per segment of @p path ("/verify"). */
void iog_coap_add_path(iog_coap_pkt_t *p, const char *path);
/** Adds one Uri-Query option per '&'-separated part of @p query ("id=a&from=5"). */
void iog_coap_add_query(iog_coap_pkt_t *p, const char *query);
/**
 * @brief Adds the Padding option (docs/PROTOCOL.md §2) whose zeros make the
 * datagram, once its @p payload_len bytes of payload are added, the smallest
 * of at least @p size bytes (an empty option when it is that large already).
 *
 * IMPORTANT: the last option, after options numbered at most 64751 (a delta
 * of 269 or more; Echo, 252, is the highest a request here carries).
 */
void iog_coap_add_padding(iog_coap_pkt_t *p, size_t size, size_t payload_len);
/** Adds the payload marker and payload (nothing when @p len is 0). */
void iog_coap_add_payload(iog_coap_pkt_t *p, const void *data, size_t len);
/** @return the datagram length, or the first error (-ENOBUFS, -EINVAL). */
int iog_coap_finish(const iog_coap_pkt_t *p);

/** A client request. */
typedef struct {
    uint8_t code;           /**< method */
    uint8_t confirmable;    /**< 1: CON with retransmission, 0: NON */
    const char *path;       /**< "/join" */
    int32_t content_format; /**< or IOG_CF_NONE */
    int32_t accept;         /**< or IOG_CF_NONE */
    const uint8_t *echo;    /**< Echo option value (RFC 9175) or NULL */
    size_t echo_len;        /**< its length */
    const uint8_t *payload; /**< payload or NULL */
    size_t payload_len;     /**< its length */
    const char *query;      /**< Uri-Query options, '&'-separated ("id=a&from=5"), or NULL */
    /**
     * 0, or the least size of the datagram: a Padding option, the last one,
     * makes it the smallest datagram of at least this many bytes (an empty
     * one when it is that large already; docs/PROTOCOL.md §2). Sent as is
     * on retransmission; the repeat with an Echo is not padded.
     */
    uint16_t pad_to;
} iog_coap_req_t;

/** Server-side response filled by a handler. */
typedef struct {
    uint8_t code;           /**< response code; the server presets 2.05 */
    int32_t content_format; /**< or IOG_CF_NONE */
    uint8_t *payload;       /**< buffer provided by the server */
    size_t cap;             /**< its capacity */
    size_t len;             /**< payload bytes written by the handler */
    /**
     * 1: the request changed the server's state (a message opened, a hello
     * claimed): the answer is kept for a duplicate of a CON request. Other
     * answers are computed again for a duplicate, the same, so that requests
     * that change nothing (anyone's) never push out those that did; and they
     * are cut to three times the request (PROTOCOL.md §2: no amplification).
     */
    uint8_t keep;
    /**
     * An Echo option for the answer (the challenge of address verification,
     * RFC 9175 §2.4), or NULL; it must live until the handler's caller sent
     * the answer. IMPORTANT: it is never cut: a handler sets it only where
     * the head, the token and this option are within three times the request.
     */
    const uint8_t *echo;
    uint8_t echo_len; /**< its length, at most IOG_COAP_ECHO_MAX */
} iog_coap_resp_t;

/** Handler of requests to the device's own resources. */
typedef void (*iog_coap_handler_t)(void *ctx, const iog_addr_t *from,
                                   const iog_coap_msg_t *req, iog_coap_resp_t *resp);

/** Server buffers: requests to a device are small (/talk, /m2m). */
#ifndef IOG_COAP_SRV_PDU
#define IOG_COAP_SRV_PDU 512
#endif

/** One CoAP endpoint: one UDP socket, client and server. */
typedef struct {
    const iog_platform_t *plat;   /**< hooks */
    uint32_t ack_timeout_ms;      /**< ACK_TIMEOUT (default IOG_COAP_ACK_TIMEOUT_MS) */
    uint8_t max_retransmit;       /**< MAX_RETRANSMIT (default 4) */
    uint32_t separate_timeout_ms; /**< wait for a separate response after an empty ACK */
    uint16_t next_mid;            /**< next message ID */
    uint32_t retransmissions;     /**< statistics: CON retransmissions sent */
    iog_coap_handler_t handler;   /**< server handler or NULL */
    void *handler_ctx;            /**< its context */
    uint8_t dedup_next;           /**< next slot of @p dedup to overwrite */
    struct {
        iog_addr_t from;
        uint16_t mid;
        uint16_t len; /**< 0: unused */
        uint8_t buf[IOG_COAP_DEDUP_MAX];
    } dedup[IOG_COAP_DEDUP_ENTRIES]; /**< responses to recent CON requests */
    uint8_t tx[IOG_COAP_MAX_PDU]; /**< client request being transmitted */
    uint8_t srx[IOG_COAP_SRV_PDU];  /**< server: received request */
    uint8_t spay[IOG_COAP_SRV_PDU]; /**< server: response payload */
} iog_coap_ep_t;

/** Initialises @p ep with RFC 7252 defaults. */
void iog_coap_ep_init(iog_coap_ep_t *ep, const iog_platform_t *plat);

/**
 * @brief Sends a request and waits for its response.
 *
 * A CON request is retransmitted after a random initial timeout in
 * [ACK_TIMEOUT, ACK_TIMEOUT * 1.5], doubling each time, at most
 * MAX_RETRANSMIT times (RFC 7252 §4.2). The response is matched by message
 * ID (piggybacked in the ACK) or by token (separate response, which is
 * acknowledged if CON). Requests that arrive meanwhile are answered only from
 * the duplicate cache; everything else is ignored.
 *
 * @param[out] resp     parsed response, pointing into @p buf
 * @param[in]  buf      caller's receive buffer (IOG_COAP_MAX_PDU is enough)
 * @return 0, -ETIMEDOUT, -ECONNRESET on RST, -ENOBUFS if the request does not
 *         fit, or a platform error.
 */
int iog_coap_request(iog_coap_ep_t *ep, const iog_addr_t *to, const iog_coap_req_t *req,
                     iog_coap_msg_t *resp, uint8_t *buf, size_t cap);

/**
 * @brief iog_coap_request that answers an address verification once.
 *
 * A server that has not verified the client's address may answer a request
 * whose answer is larger than three times the request with 4.01 and an Echo
 * option (RFC 9175 §2.4; the cluster head does for its public resources, a
 * peer for /talk). The request is then sent again, once, carrying that
 * Echo instead of any of @p req, and without @p req's padding (the Echo
 * proves the address the padding paid for); the second answer is returned,
 * whatever it is (a second challenge is not answered). The Echo the client
 * proved its address with is given back: it is fresh for a join too
 * (PROTOCOL.md §3.1).
 *
 * @param[out] echo     the challenge's Echo value (at most IOG_COAP_ECHO_MAX
 *                      bytes), or NULL
 * @param[out] echo_len its length, 0 when there was no challenge; or NULL
 * @return as iog_coap_request.
 */
int iog_coap_request_verified(iog_coap_ep_t *ep, const iog_addr_t *to, const iog_coap_req_t *req,
                              iog_coap_msg_t *resp, uint8_t *buf, size_t cap, uint8_t *echo,
                              size_t *echo_len);

/**
 * @brief Waits at most @p timeout_ms for one datagram and serves it.
 *
 * Unparseable datagrams are dropped unanswered (no amplification); an empty
 * CON (ping) gets RST; a duplicate CON request gets the cached response, if
 * the handler kept it (iog_coap_resp_t::keep).
 * @return 0 when a datagram was handled, -ETIMEDOUT, or a platform error.
 */
int iog_coap_serve(iog_coap_ep_t *ep, uint32_t timeout_ms);

/**
 * @brief Whether a platform recv() error @p n only means that nothing
 * (usable) arrived: -ETIMEDOUT, -EAGAIN, -EINTR, or -EMSGSIZE (a datagram
 * too large, dropped). Waiting goes on after these.
 */
int iog_coap_recv_idle(int n);

#ifdef __cplusplus
}
#endif

#endif /* IOG_COAP_H */
