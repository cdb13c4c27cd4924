/**
 * @file
 * @brief POSIX UDP platform for the core, with an optional lossy mode.
 *
 * Lossy mode drops a seeded pseudo-random share of the datagrams this socket
 * sends and receives, but never more than IOG_UDP_MAX_RUN in a row (sent and
 * received counted together). With a run of 1, every CON exchange completes
 * within 3 transmissions (MAX_RETRANSMIT is 4): the loss is bounded, so tests
 * that rely on retransmission cannot flake. The bound lowers the effective
 * rate: asking for p drops about p / (1 + p) of the datagrams (20 % -> ~17 %);
 * the statistics report the real share.
 */
#ifndef IOG_UDP_H
#define IOG_UDP_H

#include <stdint.h>

#include "iog_platform.h"

/** Longest run of consecutive drops in one direction. */
#define IOG_UDP_MAX_RUN 1

/** A UDP socket and its loss model. */
typedef struct {
    int fd;               /**< socket */
    int family;           /**< AF_INET or AF_INET6 */
    unsigned loss_pct;    /**< 0..100 */
    uint64_t rng;         /**< xorshift state for the loss model */
    unsigned run;         /**< consecutive drops, both directions */
    unsigned dropped;     /**< statistics */
    unsigned passed;      /**< statistics */
} iog_udp_t;

/**
 * @brief Resolves "host:port", "[v6]:port" or "coap://host:port" (default
 *        port 5683).
 * @return 0 or -EINVAL.
 */
int iog_udp_resolve(const char *s, iog_addr_t *out);

/** Formats @p a as "host:port". */
void iog_udp_format(const iog_addr_t *a, char *out, unsigned cap);

/**
 * @brief Opens a UDP socket bound to @p bind ("host:port"; port 0 = any).
 * @return 0 or -errno.
 */
int iog_udp_open(iog_udp_t *u, const char *bind);

/** Local port of the socket. */
uint16_t iog_udp_port(const iog_udp_t *u);

/** Enables loss: @p pct percent, seeded with @p seed. */
void iog_udp_set_loss(iog_udp_t *u, unsigned pct, uint64_t seed);

/** Fills @p p with hooks over @p u (send, recv, now_ms, getrandom, time). */
void iog_udp_platform(iog_udp_t *u, iog_platform_t *p);

/** Closes the socket. */
void iog_udp_close(iog_udp_t *u);

#endif
