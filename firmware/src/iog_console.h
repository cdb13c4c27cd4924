/**
 * @file
 * @brief A board: the device, its settings and state in storage, and a
 *        line-oriented console to set it up without recompiling.
 *
 * The sketch (Serial at 115200 baud, LittleFS, RTC memory, WiFiUDP) and the
 * host harness (stdin/stdout, files, POSIX UDP) run the same board code.
 * Input is fed byte by byte; each complete line is one command. Output goes
 * to the out() hook one line at a time, and every event line begins with a
 * stable word: `joined`, `restored`, `verified`, `warning`, `received`,
 * `sent`, `left`, `sleep`, `error`; a command's other answers begin with
 * `ok`, `show`, `pubkey` or `help`. Commands (firmware/README.md has the
 * full list):
 *
 *     set wifi.ssid S | wifi.pass P | server IP:PORT | id ID | position LAT,LON
 *     set pin HEX|none | port N | peer ID IP:PORT | sleep SECONDS | mode console|sleepy
 *     show | pubkey | credential BASE64|none | join | verify PEER
 *     talk PEER IP:PORT TEXT | leave | reset | reboot | help
 *
 * State across reboots (PROTOCOL.md §4.1: a sequence number never repeats
 * for one key): the member record holds a high-water mark IOG_SEQ_RESERVE
 * above the last protected request's number and is written only when the
 * mark is reached; the RTC record holds the exact numbers (and the M2M
 * session of a sleepy sensor) and is written before each request. A cold
 * start resumes at the mark; a wake-up from deep sleep at the exact number.
 *
 * Time: a board has no RTC and needs no NTP. After a join it reads the CH's
 * signed GET /ledger/head, whose time is a lower bound of now, and counts
 * its own milliseconds from there (a deep-sleep timer's wake-up adds the
 * time slept; any other start does not, so the clock stays behind). Expiry
 * of the membership and of tickets is judged on that clock, and in any case
 * by the CH's answers: "not a member" leads to a rejoin.
 */
#ifndef IOG_CONSOLE_H
#define IOG_CONSOLE_H

#include "iog_device.h"
#include "iog_store.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Longest console input line (a 256-byte credential in base64 fits). */
#ifndef IOG_CONSOLE_LINE
#define IOG_CONSOLE_LINE 400
#endif

/** Longest output line; longer ones are cut. */
#ifndef IOG_CONSOLE_OUT
#define IOG_CONSOLE_OUT 400
#endif

/** Sequence numbers reserved per member-record write. */
#ifndef IOG_SEQ_RESERVE
#define IOG_SEQ_RESERVE 100
#endif

/** Interval of the CH key check of a board in console mode (PROTOCOL.md §6.2: about daily). */
#ifndef IOG_REKEY_CHECK_MS
#define IOG_REKEY_CHECK_MS (24u * 3600u * 1000u)
#endif

/** Wait before a failed automatic join is tried again. */
#ifndef IOG_JOIN_RETRY_MS
#define IOG_JOIN_RETRY_MS 30000
#endif

/** Heap and stack figures of the system, 0 when unknown. */
typedef struct {
    uint32_t heap_free;     /**< free heap now */
    uint32_t heap_min;      /**< lowest free heap seen (high-water mark of use) */
    uint32_t stack_free;    /**< least free loop() stack seen */
    uint32_t bearssl_stack; /**< most of BearSSL's separate stack used */
} iog_mem_t;

/** What the board needs from its host beyond the platform. */
typedef struct {
    void *ctx; /**< passed to every hook */
    /** Prints one line (without its newline). */
    void (*out)(void *ctx, const char *line);
    /** Optional: heap and stack figures for `show`. */
    void (*mem)(void *ctx, iog_mem_t *m);
    /** Optional: deep sleep for @p ms; on the chip it does not return. */
    void (*sleep)(void *ctx, uint32_t ms);
    /** Optional: restart the board (`reboot`). */
    void (*restart)(void *ctx);
    /**
     * Optional: why this start happened, as the ESP8266's reset reason
     * (`ESP.getResetInfoPtr()->reason`). Only IOG_RESET_DEEP_SLEEP_AWAKE, the
     * deep-sleep timer's wake-up, adds the sleep the RTC record planned to the
     * board's clock; any other start (power on, a reset, the watchdog, a
     * restart), or no hook, restarts it from the clock the record kept.
     */
    int (*reset_reason)(void *ctx);
} iog_board_hooks_t;

/** The ESP8266's REASON_DEEP_SLEEP_AWAKE: a start by the deep-sleep timer. */
#define IOG_RESET_DEEP_SLEEP_AWAKE 5

/** Counters a board keeps since it started. */
typedef struct {
    uint32_t flash_writes; /**< records written to flash (all but RTC) */
    uint32_t rtc_writes;   /**< RTC record writes */
    uint32_t tx_bytes;     /**< UDP payload bytes sent */
    uint32_t rx_bytes;     /**< UDP payload bytes received */
    uint32_t tx_dgrams;    /**< datagrams sent */
    uint32_t rx_dgrams;    /**< datagrams received */
} iog_board_stats_t;

/** A board. About 9 KB: keep it static. */
typedef struct {
    /* the small members first: they stay within the short load offsets */
    iog_platform_t plat;          /**< hw's hooks, counted, with the board's clock */
    const iog_platform_t *hw;     /**< the real platform */
    const iog_storage_t *st;      /**< where records live */
    iog_board_hooks_t hooks;      /**< console and system hooks */
    uint64_t member_mark;         /**< stored high-water mark of dev.mem.seq */
    uint8_t member_dirty;         /**< 1: the member record must be written */
    uint8_t in_join;              /**< 1 while iog_device_join() runs */
    uint8_t join_due;             /**< 1: join when join_at comes */
    uint8_t kept_ok;              /**< 1: @p kept holds the session of the RTC record */
    uint8_t line_bad;             /**< 1: the line overflowed, skip to its end */
    uint32_t join_at;             /**< local ms */
    uint32_t key_at;              /**< local ms of the next CH key check */
    iog_m2m_t *kept;              /**< the M1 session kept in RTC memory, or NULL */
    iog_addr_t kept_addr;         /**< its peer's address */
    uint64_t clock_unix;          /**< lower bound of unix time at clock_ms, 0: unknown */
    uint32_t clock_ms;            /**< local ms of clock_unix */
    uint32_t wakes;               /**< starts with RTC memory kept (wake-ups, resets) */
    uint32_t boot_ms;             /**< local ms at iog_board_init() */
    iog_board_stats_t stats;      /**< counters */
    size_t line_len;              /**< length of @p line */
    size_t out_len;               /**< length of @p out */
    iog_settings_t set;           /**< settings (IOG_REC_SETTINGS) */
    iog_device_t dev;             /**< the device */
    char line[IOG_CONSOLE_LINE + 1]; /**< input being collected */
    char out[IOG_CONSOLE_OUT];    /**< output line being built */
    uint8_t io[IOG_STORE_FRAME_MAX]; /**< record scratch */
} iog_board_t;

/**
 * @brief Loads the settings and the key (making and storing a key on the
 *        first boot, from @p hw's random()). Call before opening the UDP
 *        socket: b->set.port and b->set.ssid say which to open.
 * @return 0, or a negative errno when no key could be made or kept (the
 *         board then runs with a key it will lose at the next boot).
 */
int iog_board_init(iog_board_t *b, const iog_platform_t *hw, const iog_storage_t *st,
                   const iog_board_hooks_t *hooks);

/**
 * @brief Restores the membership (prints `restored`) or, when there is none
 *        and the board is configured, joins (prints `joined`). A corrupt,
 *        expired or differently pinned membership is dropped and rejoined.
 */
void iog_board_start(iog_board_t *b);

/** Feeds console input; each '\n' or '\r' ends a line, which is executed. */
void iog_board_input(iog_board_t *b, const char *data, size_t n);

/**
 * @brief Executes one console line (modified in place).
 * @return 0, or a negative errno when it printed an `error` line.
 */
int iog_board_exec(iog_board_t *b, char *line);

/** Serves peers for at most @p timeout_ms and runs a due join. */
void iog_board_poll(iog_board_t *b, uint32_t timeout_ms);

/**
 * @brief One sleepy-sensor cycle: join if not a member, send @p msg to the
 *        configured peer (reusing a still-valid session, else asking for
 *        one), print what it cost, keep the counters in RTC memory and
 *        deep-sleep for the configured time.
 * @return what the send returned (the hooks' sleep normally does not return).
 */
int iog_board_wake(iog_board_t *b, const uint8_t *msg, size_t len);

/** The board's estimate of unix time (a lower bound), 0 when unknown. */
uint64_t iog_board_now(const iog_board_t *b);

#ifdef __cplusplus
}
#endif

#endif /* IOG_CONSOLE_H */
