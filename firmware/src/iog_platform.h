/**
 * @file
 * @brief The platform hooks the core runs on: datagrams, clock, randomness.
 *
 * The host build plugs in POSIX UDP, clock_gettime and getrandom; the ESP8266
 * sketch plugs in WiFiUDP, millis() and the hardware RNG. The core never
 * blocks except inside recv().
 */
#ifndef IOG_PLATFORM_H
#define IOG_PLATFORM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @brief A UDP endpoint, compared byte for byte by the core.
 *
 * The core never interprets it; only the platform does. Unused bytes MUST be
 * zero so that memcmp() equality is address equality.
 */
typedef struct {
    uint8_t family; /**< platform-defined (host: AF_INET or AF_INET6) */
    uint8_t ip[16]; /**< address bytes, IPv4 in the first 4 */
    uint16_t port;  /**< port in host byte order */
} iog_addr_t;

/** Platform hooks. Every function returns a negative errno on failure. */
typedef struct {
    void *ctx; /**< passed to every hook */
    /**
     * Sends one datagram. @return 0 or a negative errno. A lossy platform
     * may drop it and still return 0.
     */
    int (*send)(void *ctx, const iog_addr_t *to, const uint8_t *buf, size_t len);
    /**
     * Waits at most @p timeout_ms for one datagram.
     * @return its length, -ETIMEDOUT when none came, another negative errno
     *         on failure. Datagrams longer than @p cap are truncated to cap
     *         (and then fail to parse).
     */
    int (*recv)(void *ctx, iog_addr_t *from, uint8_t *buf, size_t cap, uint32_t timeout_ms);
    /** Monotonic milliseconds; may wrap. */
    uint32_t (*now_ms)(void *ctx);
    /** Fills @p buf with cryptographically secure random bytes. @return 0 or -errno. */
    int (*random)(void *ctx, uint8_t *buf, size_t len);
    /** Wall-clock unix seconds, or 0 when unknown. */
    uint64_t (*unix_s)(void *ctx);
    /**
     * Optional (may be NULL): lets the system run between long computations.
     * The core calls it between the P-256 operations of a join (each takes
     * 0.2-0.4 s on an 80 MHz ESP8266, whose watchdogs bite after ~3 s
     * without a yield), never inside one.
     */
    void (*yield)(void *ctx);
} iog_platform_t;

#ifdef __cplusplus
}
#endif

#endif /* IOG_PLATFORM_H */
