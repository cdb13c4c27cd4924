/*
 * iotguard-board: the board of the sketch (console, state store, sleepy
 * mode) on POSIX, so the C tests and the emulator tests share them.
 *
 *   iotguard-board --state DIR [--bind IP] [--loss PCT --seed N] [--ack-timeout MS]
 *                  [--flash-limit BYTES] [--wall-clock] [--reading TEXT]
 *
 * The console is stdin/stdout, one command per line; end of input or
 * SIGTERM/SIGINT stops it cleanly. Records are files in DIR (rec-0 .. rec-3,
 * replaced atomically; rec-3 stands for the RTC memory). --flash-limit makes
 * the flash records (0-2) full beyond that many bytes. Without --wall-clock
 * the board has no clock but the cluster head's, as on the chip. The UDP
 * socket is bound to IP (default 127.0.0.1) and the port setting. In sleepy
 * mode it waits IOG_SLEEPY_GRACE_MS for console input, then runs one wake
 * cycle with TEXT (default "reading N") and exits, leaving the file
 * DIR/deep-sleep: the next start finds it (and removes it) and is the sleep
 * timer's wake-up; a start without it is a reset (remove it to reset the
 * board during its sleep).
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "iog_console.h"
#include "iog_udp.h"

/** Sleepy mode: how long a wake-up listens for console input before its cycle. */
#ifndef IOG_SLEEPY_GRACE_MS
#define IOG_SLEEPY_GRACE_MS 300
#endif

static struct {
    const char *state, *bind, *reading;
    unsigned loss, ack_ms;
    uint64_t seed;
    long flash_limit;
    int wall_clock;
} opt = { NULL, "127.0.0.1", NULL, 0, IOG_COAP_ACK_TIMEOUT_MS, 0, -1, 0 };

static iog_udp_t udp;
static iog_platform_t hw;
static iog_board_t board;
static volatile sig_atomic_t stop;

static void on_signal(int s)
{
    (void)s;
    stop = 1;
}

static void rec_path(unsigned rec, char *p, size_t cap)
{
    snprintf(p, cap, "%s/rec-%u", opt.state, rec);
}

static long file_size(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 ? (long)st.st_size : 0;
}

static int st_read(void *ctx, unsigned rec, uint8_t *buf, size_t cap)
{
    char p[4096];
    (void)ctx;
    rec_path(rec, p, sizeof(p));
    int fd = open(p, O_RDONLY);
    if (fd < 0) {
        return errno == ENOENT ? -ENOENT : -EIO;
    }
    ssize_t n = read(fd, buf, cap);
    close(fd);
    return n < 0 ? -EIO : (int)n;
}

static int st_write(void *ctx, unsigned rec, const uint8_t *buf, size_t len)
{
    char p[4096], tmp[4200];
    (void)ctx;
    rec_path(rec, p, sizeof(p));
    if (len == 0) {
        return unlink(p) == 0 || errno == ENOENT ? 0 : -EIO;
    }
    if (opt.flash_limit >= 0 && rec != IOG_REC_RTC) {
        long used = (long)len - file_size(p);
        for (unsigned r = 0; r < IOG_REC_RTC; r++) {
            char q[4096];
            rec_path(r, q, sizeof(q));
            used += file_size(q);
        }
        if (used > opt.flash_limit) {
            return -ENOSPC;
        }
    }
    snprintf(tmp, sizeof(tmp), "%s.tmp", p);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        return -EIO;
    }
    /* RTC memory is RAM on the chip: no fsync for it */
    int bad = write(fd, buf, len) != (ssize_t)len || (rec != IOG_REC_RTC && fsync(fd) != 0);
    close(fd);
    if (bad || rename(tmp, p) != 0) {
        unlink(tmp);
        return -EIO;
    }
    return 0;
}

static const iog_storage_t storage = { NULL, st_read, st_write };

static void out(void *ctx, const char *line)
{
    (void)ctx;
    printf("%s\n", line);
    fflush(stdout);
}

/* Deep sleep: the file the next start takes for its timer's wake-up. */
static void sleep_mark(char *p, size_t cap)
{
    snprintf(p, cap, "%s/deep-sleep", opt.state);
}

/* This start's reset reason (the ESP8266's): the sleep timer's wake-up, or a reset. */
static int woke_by_timer;
static int reset_reason(void *ctx)
{
    (void)ctx;
    return woke_by_timer ? IOG_RESET_DEEP_SLEEP_AWAKE : 6; /* REASON_EXT_SYS_RST */
}

static void deep_sleep(void *ctx, uint32_t ms)
{
    char p[4096];
    (void)ctx;
    sleep_mark(p, sizeof(p));
    int fd = open(p, O_WRONLY | O_CREAT, 0600);
    if (fd >= 0) {
        close(fd);
    }
    fprintf(stderr, "iotguard-board: deep sleep %u ms: exiting (start again to wake)\n", ms);
    exit(0);
}

static void restart(void *ctx)
{
    (void)ctx;
    fprintf(stderr, "iotguard-board: reboot: exiting (start again)\n");
    exit(0);
}

static uint64_t no_clock(void *ctx)
{
    (void)ctx;
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: iotguard-board --state DIR [--bind IP] [--loss PCT --seed N] "
                    "[--ack-timeout MS] [--flash-limit BYTES] [--wall-clock] [--reading TEXT]\n");
    exit(2);
}

static void parse(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i];
        if (!strcmp(f, "--wall-clock")) {
            opt.wall_clock = 1;
            continue;
        }
        if (strncmp(f, "--", 2) || i + 1 >= argc) {
            usage();
        }
        const char *v = argv[++i];
        if (!strcmp(f, "--state")) opt.state = v;
        else if (!strcmp(f, "--bind")) opt.bind = v;
        else if (!strcmp(f, "--reading")) opt.reading = v;
        else if (!strcmp(f, "--loss")) opt.loss = (unsigned)atoi(v);
        else if (!strcmp(f, "--seed")) opt.seed = strtoull(v, NULL, 10);
        else if (!strcmp(f, "--ack-timeout")) opt.ack_ms = (unsigned)atoi(v);
        else if (!strcmp(f, "--flash-limit")) opt.flash_limit = atol(v);
        else usage();
    }
    if (!opt.state) {
        usage();
    }
}

/* Reads what stdin has; @return 0 at end of input. */
static int read_console(int wait_ms)
{
    struct pollfd p = { 0, POLLIN, 0 };
    char buf[512];
    if (poll(&p, 1, wait_ms) <= 0) {
        return 1;
    }
    ssize_t n = read(0, buf, sizeof(buf));
    if (n <= 0) {
        return n < 0 && errno == EINTR;
    }
    iog_board_input(&board, buf, (size_t)n);
    return 1;
}

int main(int argc, char **argv)
{
    char bind[80];
    parse(argc, argv);
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    if (mkdir(opt.state, 0700) && errno != EEXIST) {
        fprintf(stderr, "iotguard-board: error: cannot make %s\n", opt.state);
        return 2;
    }
    iog_udp_platform(&udp, &hw);
    if (!opt.wall_clock) {
        hw.unix_s = no_clock;
    }
    char mark[4096];
    sleep_mark(mark, sizeof(mark));
    woke_by_timer = unlink(mark) == 0;
    iog_board_hooks_t hooks = { NULL, out, NULL, deep_sleep, restart, reset_reason };
    iog_board_init(&board, &hw, &storage, &hooks);

    snprintf(bind, sizeof(bind), "%s:%u", opt.bind, board.set.port);
    int e = iog_udp_open(&udp, bind);
    if (e) { /* as a board without Wi-Fi: the console still works */
        printf("error cannot listen on %s: %s (set port N, then reboot)\n", bind, strerror(-e));
    }
    if (opt.loss) {
        iog_udp_set_loss(&udp, opt.loss, opt.seed);
    }
    board.dev.ep.ack_timeout_ms = opt.ack_ms;
    printf("ok iotguard board %s on port %u (type help)\n", board.dev.me.id.s, board.set.port);
    iog_board_start(&board);

    if (board.set.mode == IOG_MODE_SLEEPY) {
        uint32_t t0 = hw.now_ms(hw.ctx);
        while (board.line_len == 0 && hw.now_ms(hw.ctx) - t0 < IOG_SLEEPY_GRACE_MS) {
            struct pollfd p = { 0, POLLIN, 0 };
            if (poll(&p, 1, 10) > 0) {
                break; /* a person is typing: stay in the console */
            }
        }
        if (hw.now_ms(hw.ctx) - t0 >= IOG_SLEEPY_GRACE_MS) {
            char msg[64];
            int n = snprintf(msg, sizeof(msg), "reading %u", (unsigned)board.wakes);
            if (opt.reading) {
                n = snprintf(msg, sizeof(msg), "%s", opt.reading);
            }
            iog_board_wake(&board, (const uint8_t *)msg, (size_t)n);
            return 0;
        }
    }
    while (!stop && read_console(0)) {
        iog_board_poll(&board, 2);
    }
    iog_udp_close(&udp);
    return 0;
}
