/*
 * The size image: the board the Arduino sketch runs (console, state store,
 * sleepy mode) over the whole device core (join, verify, session, leave,
 * talk, M2M, the /talk and /m2m server), linked for the ESP8266 memory map
 * with BearSSL. It is linked, never run: the platform, storage and console
 * hooks are stubs where the sketch has WiFiUDP, millis(), the RNG, LittleFS
 * and Serial. `make size` reports it; the board struct (the app's RAM) is in
 * its bss.
 */
#include <errno.h>

#include "iog_console.h"

volatile int iog_image_sink;

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

/* The storage: flash as the sketch has it (LittleFS files) stubbed out. */
static int stub_read(void *ctx, unsigned rec, uint8_t *buf, size_t cap)
{
    (void)ctx;
    (void)rec;
    (void)buf;
    (void)cap;
    return -ENOENT;
}

static int stub_write(void *ctx, unsigned rec, const uint8_t *buf, size_t len)
{
    (void)ctx;
    (void)rec;
    (void)buf;
    return (int)len - (int)len;
}

static const iog_storage_t storage = { 0, stub_read, stub_write };

static void stub_out(void *ctx, const char *line)
{
    (void)ctx;
    iog_image_sink = line[0];
}

static iog_board_t board;

void _start(void)
{
    static const iog_board_hooks_t hooks = { 0, stub_out, 0, 0, 0, 0 };
    iog_image_sink = iog_board_init(&board, &plat, &storage, &hooks);
    iog_board_start(&board);
    if (board.set.mode == IOG_MODE_SLEEPY) {
        iog_image_sink = iog_board_wake(&board, (const uint8_t *)"reading", 7);
    }
    for (;;) {
        char c = (char)stub_now(0);
        iog_board_input(&board, &c, 1);
        iog_board_poll(&board, 50);
    }
}
