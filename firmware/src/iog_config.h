/*
 * IoT-Guard firmware core: compile-time limits.
 *
 * Every buffer in the core has a size fixed here; nothing is allocated at run
 * time. Override any of these with -D on the compiler command line.
 */

/**
 * @file
 * @brief Compile-time limits of the IoT-Guard device core.
 *
 * The values follow docs/PROTOCOL.md: payloads over 1024 bytes are refused by
 * the cluster head (4.13), CBOR nests at most 8 deep, arrays hold at most 64
 * items and maps at most 32 pairs.
 */
#ifndef IOG_CONFIG_H
#define IOG_CONFIG_H

/** Largest CoAP payload the protocol allows (PROTOCOL.md §2). */
#ifndef IOG_MAX_PAYLOAD
#define IOG_MAX_PAYLOAD 1024
#endif

/** Largest CoAP datagram handled: header, token, options and payload. */
#ifndef IOG_COAP_MAX_PDU
#define IOG_COAP_MAX_PDU (IOG_MAX_PAYLOAD + 128)
#endif

/** Most options one parsed CoAP message may carry; more is -ENOSPC. */
#ifndef IOG_COAP_MAX_OPTS
#define IOG_COAP_MAX_OPTS 16
#endif

/** Token length the client uses for its requests (RFC 7252 allows 0..8). */
#ifndef IOG_COAP_TOKEN_LEN
#define IOG_COAP_TOKEN_LEN 4
#endif

/** RFC 7252 §4.8 ACK_TIMEOUT in milliseconds (the default of the client). */
#ifndef IOG_COAP_ACK_TIMEOUT_MS
#define IOG_COAP_ACK_TIMEOUT_MS 2000
#endif

/** RFC 7252 §4.8 MAX_RETRANSMIT. */
#ifndef IOG_COAP_MAX_RETRANSMIT
#define IOG_COAP_MAX_RETRANSMIT 4
#endif

/** Server side: responses kept for duplicate CON requests (RFC 7252 §4.5). */
#ifndef IOG_COAP_DEDUP_ENTRIES
#define IOG_COAP_DEDUP_ENTRIES 2
#endif

/** Server side: largest response kept in the duplicate cache. */
#ifndef IOG_COAP_DEDUP_MAX
#define IOG_COAP_DEDUP_MAX 400
#endif

/** Deepest CBOR nesting accepted (PROTOCOL.md §1). */
#define IOG_CBOR_MAX_DEPTH 8
/** Most items in one CBOR array (PROTOCOL.md §1). */
#define IOG_CBOR_MAX_ARRAY 64
/** Most pairs in one CBOR map (PROTOCOL.md §1). */
#define IOG_CBOR_MAX_MAP 32

/** Longest device or cluster ID in bytes (PROTOCOL.md §1). */
#define IOG_ID_MAX 64
/** Longest echo value in bytes (PROTOCOL.md §1). */
#define IOG_ECHO_MAX 40
/** Longest fleet credential a join carries, in bytes (PROTOCOL.md §3.5). */
#define IOG_CRED_MAX 256
/** Size of the replay window in sequence numbers (PROTOCOL.md §4.2, §5.2). */
#define IOG_REPLAY_WINDOW 64
/** Highest sequence number a sender may use: 2^40 - 1 (PROTOCOL.md §4.1). */
#define IOG_SEQ_MAX ((uint64_t)0xFFFFFFFFFFull)

/** Largest M2M plaintext message. */
#ifndef IOG_M2M_MAX_MSG
#define IOG_M2M_MAX_MSG 256
#endif

/** Largest sealed ticket kept by a device (CBOR map of PROTOCOL.md §4.4). */
#ifndef IOG_TICKET_MAX
#define IOG_TICKET_MAX 320
#endif

#endif /* IOG_CONFIG_H */
