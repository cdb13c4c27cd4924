/*
 * The size image: the whole device core (join, verify, session, leave, talk,
 * M2M, the /talk and /m2m server) linked for the ESP8266 memory map with
 * BearSSL, the way the Arduino sketch uses it. It is linked, never run: the
 * platform hooks are stubs where the sketch has WiFiUDP, millis() and the RNG.
 * `make size` reports it; the device struct (the app's RAM) is in its bss.
 */
#include <errno.h>

#include "iog_device.h"

void _start(void);

static int stub_send(void *ctx, const iog_addr_t *to, const uint8_t *b, size_t n)
{
    (void)ctx;
    (void)to;
    (void)b;
    return (int)n - (int)n;
}

static int stub_recv(void *ctx, iog_addr_t *from, uint8_t *b, size_t cap, uint32_t t)
{
    (void)ctx;
    (void)from;
    (void)b;
    (void)cap;
    (void)t;
    return -ETIMEDOUT;
}

static uint32_t ticks;
static uint32_t stub_now(void *ctx)
{
    (void)ctx;
    return ticks++;
}

static int stub_random(void *ctx, uint8_t *b, size_t n)
{
    (void)ctx;
    while (n--) {
        b[n] = (uint8_t)(ticks++ * 2654435761u >> 24);
    }
    return 0;
}

static uint64_t stub_unix(void *ctx)
{
    (void)ctx;
    return 0;
}

static const iog_platform_t plat = { 0, stub_send, stub_recv, stub_now, stub_random, stub_unix, NULL };
static iog_device_t dev;
volatile int iog_image_sink;

void _start(void)
{
    iog_identity_t me;
    iog_addr_t ch = { 2, { 192, 168, 4, 1 }, 5683 };
    iog_verify_resp_t v;
    iog_m2m_t *s = 0;
    uint8_t ticket[IOG_TICKET_MAX], reply[64], hash[32];
    size_t tl;
    uint64_t h;
    iog_p256_keygen(&plat, me.priv, me.pub);
    iog_id_set(&me.id, "esp-1", 5);
    iog_device_init(&dev, &plat, &ch, &me);
    iog_image_sink = iog_device_join(&dev, 48858370, 2294481);
    iog_image_sink = iog_device_verify(&dev, &me.id, &v);
    iog_image_sink = iog_device_session(&dev, &me.id, &dev.sessions[0], ticket, &tl, sizeof(ticket));
    iog_image_sink = iog_device_talk(&dev, &ch, &me.id, &s);
    if (s) {
        iog_image_sink = iog_device_send(&dev, s, &ch, reply, 4, reply, sizeof(reply));
    }
    iog_image_sink = iog_device_leave(&dev, &h, hash);
    for (;;) {
        iog_image_sink = iog_device_serve(&dev, 1000);
    }
}
