/*
 * POSIX UDP platform: sockets, poll() timeouts, getrandom(), and bounded loss.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "iog_udp.h"

int iog_udp_resolve(const char *s, iog_addr_t *out)
{
    char host[256];
    const char *port = "5683";
    if (strncmp(s, "coap://", 7) == 0) {
        s += 7;
    }
    if (strlen(s) >= sizeof(host)) {
        return -EINVAL;
    }
    strcpy(host, s);
    char *slash = strchr(host, '/');
    if (slash) {
        *slash = '\0';
    }
    char *h = host;
    if (h[0] == '[') {
        char *end = strchr(h, ']');
        if (!end) {
            return -EINVAL;
        }
        *end = '\0';
        h++;
        if (end[1] == ':') {
            port = end + 2;
        }
    }
    else {
        char *colon = strrchr(h, ':');
        if (colon) {
            *colon = '\0';
            port = colon + 1;
        }
    }
    struct addrinfo hints, *res;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_DGRAM;
    hints.ai_flags = AI_NUMERICSERV;
    if (getaddrinfo(*h ? h : "0.0.0.0", port, &hints, &res) != 0) {
        return -EINVAL;
    }
    memset(out, 0, sizeof(*out));
    if (res->ai_family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)res->ai_addr;
        out->family = AF_INET;
        memcpy(out->ip, &sin->sin_addr, 4);
        out->port = ntohs(sin->sin_port);
    }
    else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)res->ai_addr;
        out->family = AF_INET6;
        memcpy(out->ip, &sin6->sin6_addr, 16);
        out->port = ntohs(sin6->sin6_port);
    }
    freeaddrinfo(res);
    return 0;
}

void iog_udp_format(const iog_addr_t *a, char *out, unsigned cap)
{
    char ip[INET6_ADDRSTRLEN];
    inet_ntop(a->family == AF_INET ? AF_INET : AF_INET6, a->ip, ip, sizeof(ip));
    snprintf(out, cap, a->family == AF_INET ? "%s:%u" : "[%s]:%u", ip, a->port);
}

static socklen_t to_sockaddr(const iog_addr_t *a, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (a->family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        sin->sin_family = AF_INET;
        memcpy(&sin->sin_addr, a->ip, 4);
        sin->sin_port = htons(a->port);
        return sizeof(*sin);
    }
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    sin6->sin6_family = AF_INET6;
    memcpy(&sin6->sin6_addr, a->ip, 16);
    sin6->sin6_port = htons(a->port);
    return sizeof(*sin6);
}

static void from_sockaddr(const struct sockaddr_storage *ss, iog_addr_t *a)
{
    memset(a, 0, sizeof(*a));
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
        a->family = AF_INET;
        memcpy(a->ip, &sin->sin_addr, 4);
        a->port = ntohs(sin->sin_port);
    }
    else {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
        a->family = AF_INET6;
        memcpy(a->ip, &sin6->sin6_addr, 16);
        a->port = ntohs(sin6->sin6_port);
    }
}

int iog_udp_open(iog_udp_t *u, const char *bind_to)
{
    iog_addr_t a;
    struct sockaddr_storage ss;
    memset(u, 0, sizeof(*u));
    u->fd = -1;
    if (iog_udp_resolve(bind_to, &a)) {
        return -EINVAL;
    }
    u->family = a.family;
    u->fd = socket(a.family == AF_INET ? AF_INET : AF_INET6, SOCK_DGRAM, 0);
    if (u->fd < 0) {
        return -errno;
    }
    socklen_t sl = to_sockaddr(&a, &ss);
    if (bind(u->fd, (struct sockaddr *)&ss, sl) < 0) {
        int e = errno;
        close(u->fd);
        u->fd = -1;
        return -e;
    }
    return 0;
}

uint16_t iog_udp_port(const iog_udp_t *u)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    iog_addr_t a;
    getsockname(u->fd, (struct sockaddr *)&ss, &sl);
    from_sockaddr(&ss, &a);
    return a.port;
}

void iog_udp_set_loss(iog_udp_t *u, unsigned pct, uint64_t seed)
{
    u->loss_pct = pct > 100 ? 100 : pct;
    u->rng = seed ? seed : 0x9E3779B97F4A7C15ull;
}

/* IOG_UDP_TRACE=1 in the environment logs every datagram to stderr. */
static void trace(const char *what, const uint8_t *buf, size_t len)
{
    static int on = -1;
    if (on < 0) {
        const char *e = getenv("IOG_UDP_TRACE");
        on = e && *e == '1';
    }
    if (!on || len < 4) {
        return;
    }
    fprintf(stderr, "[udp %u] %s type=%u code=%u.%02u mid=%04x len=%u\n", (unsigned)getpid(), what,
            (buf[0] >> 4) & 3, buf[1] >> 5, buf[1] & 31, (unsigned)(buf[2] << 8 | buf[3]),
            (unsigned)len);
}

/* xorshift64*: deterministic per seed, good enough for a loss model */
static int drop(iog_udp_t *u, unsigned *run)
{
    if (!u->loss_pct) {
        return 0;
    }
    u->rng ^= u->rng >> 12;
    u->rng ^= u->rng << 25;
    u->rng ^= u->rng >> 27;
    unsigned r = (unsigned)((u->rng * 2685821657736338717ull) >> 33) % 100;
    if (r < u->loss_pct && *run < IOG_UDP_MAX_RUN) {
        (*run)++;
        u->dropped++;
        return 1;
    }
    *run = 0;
    u->passed++;
    return 0;
}

static int udp_send(void *ctx, const iog_addr_t *to, const uint8_t *buf, size_t len)
{
    iog_udp_t *u = ctx;
    struct sockaddr_storage ss;
    if (drop(u, &u->run)) {
        trace("drop-tx", buf, len);
        return 0;
    }
    trace("tx", buf, len);
    socklen_t sl = to_sockaddr(to, &ss);
    if (sendto(u->fd, buf, len, 0, (struct sockaddr *)&ss, sl) < 0) {
        return -errno;
    }
    return 0;
}

static uint32_t udp_now(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint32_t)((uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u);
}

static int udp_recv(void *ctx, iog_addr_t *from, uint8_t *buf, size_t cap, uint32_t timeout_ms)
{
    iog_udp_t *u = ctx;
    uint32_t start = udp_now(ctx);
    for (;;) {
        uint32_t el = udp_now(ctx) - start;
        if (el >= timeout_ms) {
            return -ETIMEDOUT;
        }
        struct pollfd pfd = { u->fd, POLLIN, 0 };
        int r = poll(&pfd, 1, (int)(timeout_ms - el));
        if (r < 0) {
            if (errno == EINTR) {
                return -EINTR;
            }
            return -errno;
        }
        if (r == 0) {
            return -ETIMEDOUT;
        }
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        ssize_t n = recvfrom(u->fd, buf, cap, MSG_TRUNC, (struct sockaddr *)&ss, &sl);
        if (n < 0) {
            return -errno;
        }
        if ((size_t)n > cap) {
            return -EMSGSIZE;
        }
        if (drop(u, &u->run)) {
            trace("drop-rx", buf, (size_t)n);
            continue;
        }
        trace("rx", buf, (size_t)n);
        from_sockaddr(&ss, from);
        return (int)n;
    }
}

static int udp_random(void *ctx, uint8_t *buf, size_t len)
{
    (void)ctx;
    while (len) {
        ssize_t n = getrandom(buf, len, 0);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static uint64_t udp_unix(void *ctx)
{
    (void)ctx;
    return (uint64_t)time(NULL);
}

void iog_udp_platform(iog_udp_t *u, iog_platform_t *p)
{
    p->ctx = u;
    p->send = udp_send;
    p->recv = udp_recv;
    p->now_ms = udp_now;
    p->random = udp_random;
    p->unix_s = udp_unix;
    p->yield = NULL;
}

void iog_udp_close(iog_udp_t *u)
{
    if (u->fd >= 0) {
        close(u->fd);
        u->fd = -1;
    }
}
