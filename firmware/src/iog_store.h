/**
 * @file
 * @brief The persistent state of a board: framed, checksummed records behind
 *        a small storage interface.
 *
 * A board keeps four records. The storage decides where each lives: the
 * sketch puts the first three in LittleFS files and IOG_REC_RTC in the
 * ESP8266's RTC user memory (kept across deep sleep and resets, lost on power
 * loss); the host harness puts each in a file.
 *
 * Every record is framed and checked on load:
 *
 *      0       2     3     4          6              6+len         6+len+8
 *      +-------+-----+-----+----------+--------------+--------------+
 *      | 'i' 'g' | rec | ver | len (LE) |   payload    | SHA-256[0:8] |
 *      +-------+-----+-----+----------+--------------+--------------+
 *
 * The check covers the header and the payload, so a torn, truncated, stale
 * (another record's bytes) or bit-flipped record reads as -EBADMSG and is
 * never used. Sequence numbers are reserved in steps: the member record
 * holds a high-water mark above every number used, and a device that
 * restarts without a valid RTC record resumes at that mark. A corrupt member record therefore means a
 * rejoin (a new K_m), never a reused number.
 *
 * Nothing is allocated: callers pass a scratch buffer of IOG_STORE_FRAME_MAX.
 */
#ifndef IOG_STORE_H
#define IOG_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "iog_device.h"
#include "iog_proto.h"
#include "iog_tlog.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Records. */
enum {
    IOG_REC_KEY = 0,      /**< the device key pair (written once) */
    IOG_REC_SETTINGS = 1, /**< what the console sets */
    IOG_REC_MEMBER = 2,   /**< membership, member keys, sequence high-water mark */
    IOG_REC_RTC = 3,      /**< exact counters and a session (RTC memory on the chip) */
    IOG_REC_COUNT = 4,
};

/** Layout version of every record's payload. */
#define IOG_STORE_VERSION 1
/** Frame header and check bytes around a payload. */
#define IOG_STORE_OVERHEAD 14
/** Largest framed record. */
#define IOG_STORE_FRAME_MAX 512
/**
 * Largest framed RTC record: the sketch keeps it, after a 4-byte length,
 * from RTC user memory block 32 to the end of the ESP8266's 512 bytes. The
 * largest one (a peer ID of 64 bytes, IOG_SPENT_TICKETS tickets) fits.
 */
#define IOG_STORE_RTC_MAX 380

/**
 * @brief Where records live. Both hooks return a negative errno on failure.
 */
typedef struct {
    void *ctx; /**< passed to both hooks */
    /**
     * Reads record @p rec into @p buf. @return its length, -ENOENT when the
     * record does not exist, -EIO.
     */
    int (*read)(void *ctx, unsigned rec, uint8_t *buf, size_t cap);
    /**
     * Replaces record @p rec by @p len bytes; @p len 0 deletes it. A backend
     * SHOULD replace atomically (LittleFS and rename() do). @return 0,
     * -ENOSPC when full, -EIO.
     */
    int (*write)(void *ctx, unsigned rec, const uint8_t *buf, size_t len);
} iog_storage_t;

/** What the console sets (IOG_REC_SETTINGS). Unset strings are empty. */
typedef struct {
    uint8_t has_pos;               /**< 1 when set */
    uint8_t has_pin;               /**< 1: the CH key must have thumbprint @p pin */
    uint8_t mode;                  /**< IOG_MODE_* */
    uint16_t port;                 /**< UDP port of the device's /talk and /m2m */
    uint32_t sleep_s;              /**< sleepy mode: deep sleep between wake-ups */
    int64_t lat, lon;              /**< position in microdegrees */
    iog_addr_t server;             /**< the cluster head; family 0: unset */
    iog_addr_t peer_addr;          /**< sleepy mode: where @p peer is */
    iog_id_t id;                   /**< device ID; len 0: unset (a default is made from the key) */
    iog_id_t peer;                 /**< sleepy mode: who gets the reading */
    uint8_t pin[IOG_HASH_LEN];     /**< pinned CH key thumbprint */
    char ssid[33];                 /**< Wi-Fi network, 1-32 bytes */
    char pass[64];                 /**< Wi-Fi passphrase, empty or 8-63 bytes */
    uint16_t cred_len;             /**< fleet credential length, 0: none */
    uint8_t cred[IOG_CRED_MAX];    /**< fleet credential, sent in every join (IOG_CRED_MAX: iog_config.h) */
} iog_settings_t;

/** The longest deep sleep of the sleepy mode: the ESP8266's deep-sleep timer
 * reaches about 3.5 hours. The console and the settings record refuse more. */
#define IOG_SLEEP_MAX_S 12600u

/** Board modes. */
enum {
    IOG_MODE_CONSOLE = 0, /**< always on: console, listens for peers */
    IOG_MODE_SLEEPY = 1,  /**< wake, send one reading, deep sleep */
};

/** Sets @p s to the defaults: nothing configured, port 5700, console mode, 60 s sleep. */
void iog_settings_default(iog_settings_t *s);

/**
 * @brief Frames @p payload as record @p rec and writes it.
 * @param scratch at least @p len + IOG_STORE_OVERHEAD bytes
 * @return 0, -EMSGSIZE when too large, or the storage's error.
 */
int iog_store_put(const iog_storage_t *st, unsigned rec, const uint8_t *payload, size_t len,
                  uint8_t *scratch, size_t cap);

/**
 * @brief Reads record @p rec into @p buf and checks its frame.
 * @param[out] payload points into @p buf
 * @return the payload length, -ENOENT when absent, -EBADMSG when corrupt
 *         (bad magic, record number, version, length or checksum), -EIO.
 */
int iog_store_get(const iog_storage_t *st, unsigned rec, uint8_t *buf, size_t cap,
                  const uint8_t **payload);

/** Deletes record @p rec. @return 0 or the storage's error. */
int iog_store_erase(const iog_storage_t *st, unsigned rec);

/* ---- record payloads ---- */

/** Encodes the key pair. @return the length or -ENOBUFS. */
int iog_rec_key_encode(const iog_identity_t *me, uint8_t *out, size_t cap);
/** Decodes the key pair (the ID is not part of it). @return 0 or -EBADMSG. */
int iog_rec_key_decode(const uint8_t *p, size_t n, iog_identity_t *me);

/** Encodes the settings. @return the length or -ENOBUFS. */
int iog_rec_settings_encode(const iog_settings_t *s, uint8_t *out, size_t cap);
/** Decodes and range-checks the settings. @return 0 or -EBADMSG. */
int iog_rec_settings_decode(const uint8_t *p, size_t n, iog_settings_t *s);

/** The member record: a membership and what goes with it. */
typedef struct {
    iog_member_t mem;   /**< with keys; seq is not stored (see mark) */
    uint64_t mark;      /**< every sequence number below it may have been used */
    uint64_t clock;     /**< a lower bound of unix time when written, 0: unknown */
    iog_tlog_cp_t log;  /**< the CH's log as last checked (size 0: none) */
} iog_rec_member_t;

/**
 * @brief Encodes the member record; the log checkpoint, when there is one,
 *        is a trailer of 40 bytes (tree size, root) that records written
 *        before it lack.
 * @return the length or -ENOBUFS.
 */
int iog_rec_member_encode(const iog_rec_member_t *r, uint8_t *out, size_t cap);
/** Decodes it, with or without the trailer; the CH thumbprint is recomputed. @return 0 or -EBADMSG. */
int iog_rec_member_decode(const uint8_t *p, size_t n, iog_rec_member_t *r);

/**
 * The RTC record: the exact counters, the M1 session a sleepy sensor
 * reuses, and the tickets the device used as M1 (iog_device_t::spent).
 * Written before each protected request and M2M message (RTC memory
 * does not wear), so a reset or a wake-up resumes exactly and writes no
 * flash. It is lost on power loss: the member record's mark then applies and
 * the session is asked for again. Valid only with the membership it names.
 */
typedef struct {
    uint8_t member_nd[8];   /**< the membership it belongs to: N_d's first bytes */
    uint64_t member_mark;   /**< ... and its stored mark */
    uint64_t member_seq;    /**< next protected-request sequence number (<= mark) */
    uint8_t has_session;    /**< 1: @p s and @p addr hold a session */
    iog_m2m_t s;            /**< the session, seq = next M2M sequence number */
    iog_addr_t addr;        /**< its peer's address */
    uint64_t clock;         /**< unix time estimate when written (a lower bound), 0: unknown */
    uint32_t sleep_s;       /**< the deep sleep planned after it, s: only its timer's wake-up adds it */
    uint32_t wakes;         /**< wake-ups since the last cold start */
    uint8_t spent_n;        /**< tickets in @p spent */
    iog_spent_t spent[IOG_SPENT_TICKETS]; /**< the device's used tickets (expiry not 0) */
} iog_rec_rtc_t;

/** Encodes the RTC record. @return the length or -ENOBUFS. */
int iog_rec_rtc_encode(const iog_rec_rtc_t *r, uint8_t *out, size_t cap);
/** Decodes it. @return 0 or -EBADMSG. */
int iog_rec_rtc_decode(const uint8_t *p, size_t n, iog_rec_rtc_t *r);

#ifdef __cplusplus
}
#endif

#endif /* IOG_STORE_H */
