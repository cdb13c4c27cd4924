/*
 * Tiny unit-test harness shared by the host and the lx106 (QEMU) builds.
 * Prints one line per failed check and a final "N passed, N failed".
 */
#ifndef UNIT_H
#define UNIT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "iog_device.h"
#include "iog_platform.h"
#include "iog_store.h"
#include "vectors_types.h"

extern unsigned unit_pass, unit_fail;

/**
 * Where large test data goes: in the QEMU image, below the ESP8266's 80 KB
 * dram0 (lx106/qemu.ld), which the core's tests fill. Set up before use.
 */
#ifdef IOG_TEST_LX106
#define UNIT_BIG __attribute__((section(".qemu_data")))
#else
#define UNIT_BIG
#endif

#define CHECK(cond)                                                                 \
    do {                                                                            \
        if (cond) {                                                                 \
            unit_pass++;                                                            \
        }                                                                           \
        else {                                                                      \
            unit_fail++;                                                            \
            printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                  \
        }                                                                           \
    } while (0)

#define CHECK_EQ(a, b)                                                              \
    do {                                                                            \
        long long a_ = (long long)(a), b_ = (long long)(b);                        \
        if (a_ == b_) {                                                             \
            unit_pass++;                                                            \
        }                                                                           \
        else {                                                                      \
            unit_fail++;                                                            \
            char sa_[24], sb_[24];                                                  \
            printf("FAIL %s:%d: %s == %s (%s != %s)\n", __FILE__, __LINE__, #a, #b,   \
                   unit_i64(a_, sa_), unit_i64(b_, sb_));                           \
        }                                                                           \
    } while (0)

#define CHECK_MEM(a, b, n)                                                          \
    do {                                                                            \
        if (memcmp((a), (b), (n)) == 0) {                                           \
            unit_pass++;                                                            \
        }                                                                           \
        else {                                                                      \
            unit_fail++;                                                            \
            printf("FAIL %s:%d: %s == %s\n", __FILE__, __LINE__, #a, #b);           \
            unit_dump("  got ", (const uint8_t *)(a), (n));                         \
            unit_dump("  want", (const uint8_t *)(b), (n));                         \
        }                                                                           \
    } while (0)

/** Parses lowercase/uppercase hex (spaces ignored). @return bytes written. */
size_t unit_hex(const char *hex, uint8_t *out, size_t cap);
/** Formats @p v in decimal into @p buf (24 bytes); no printf long long needed. */
const char *unit_i64(long long v, char *buf);
/** Prints @p n bytes as hex after @p label. */
void unit_dump(const char *label, const uint8_t *p, size_t n);

/** Deterministic platform over a scripted in-memory network and virtual clock. */
typedef struct fake_net fake_net_t;
typedef void (*fake_on_send_t)(fake_net_t *n, const iog_addr_t *to, const uint8_t *buf,
                               size_t len);
struct fake_net {
    uint32_t now;
    uint32_t rnd;
    struct {
        iog_addr_t from;
        uint32_t at;
        size_t len;
        uint8_t buf[600]; /* a /cluster answer with a rotation */
    } inbox[6];
    unsigned n_in;
    struct {
        uint32_t at;
        size_t len;
        uint8_t buf[400];
    } sent[8];
    unsigned n_sent;
    fake_on_send_t on_send;
    void *user;
    iog_platform_t plat;
};

/** The one fake network the tests share (it is large for a microcontroller). */
extern fake_net_t unit_net;
/** Sets up @p n and its platform hooks. */
void fake_net_init(fake_net_t *n);
/** Queues a datagram from @p from, delivered at virtual time @p at. */
void fake_net_push(fake_net_t *n, const iog_addr_t *from, uint32_t at, const uint8_t *buf,
                   size_t len);
/** The address used as "the server" by tests: 127.0.0.1:5683. */
extern const iog_addr_t unit_server_addr;
/** The address used as "another peer": 127.0.0.2:5683. */
extern const iog_addr_t unit_peer_addr;

/** Flash in memory: one buffer per record, and a switch that makes it full. */
typedef struct {
    uint8_t data[IOG_REC_COUNT][IOG_STORE_FRAME_MAX];
    size_t len[IOG_REC_COUNT];
    int full;          /**< 1: writes of records other than RTC fail with -ENOSPC */
    unsigned writes;   /**< successful writes */
} unit_flash_t;

/** The one in-memory flash the tests share. */
extern unit_flash_t unit_flash;
/** Empties it. */
void unit_flash_reset(void);
/** A storage over unit_flash. */
iog_storage_t unit_storage(void);

/** RFC 9162 Merkle tree hash of @p n leaf hashes, recursively from the RFC (test_tlog.c). */
void unit_mth(const uint8_t (*leaves)[32], size_t n, uint8_t out[32]);
/** The block hash of block @p i of test_tlog.c's generated ledger. */
void unit_tlog_block(size_t i, uint8_t out[32]);
/** The root of the tree of its first @p n blocks. */
void unit_tlog_root(size_t n, uint8_t out[32]);
/**
 * A GET /ledger/proof answer for block @p idx of the generated ledger of @p n
 * blocks, its checkpoint signed by @p priv in @p ch's name, with the
 * consistency proof from tree size @p from (0: none). @return its length.
 */
int unit_tlog_answer(const uint8_t priv[32], const iog_cluster_t *ch, size_t n, size_t idx,
                     size_t from, uint64_t time_ms, uint8_t *out, size_t cap);

/**
 * GET /cluster's answer signed by @p priv for its key @p pub (PROTOCOL.md §6),
 * with the @p nrot rotations @p rot (key 7) when @p nrot > 0. @return its length.
 */
int unit_cluster_answer(const uint8_t priv[32], const uint8_t pub[65], const iog_id_t *cl,
                        const uint8_t *const *rot, const size_t *rot_len, size_t nrot,
                        uint8_t *out, size_t cap);
/** A rotation (§6.1) from @p old_priv's key to @p new_pub, signed by @p signer. @return its length. */
int unit_rotation(const uint8_t old_priv[32], const uint8_t new_pub[65], const uint8_t signer[32],
                  const iog_id_t *cl, uint8_t *out, size_t cap);

/**
 * How a scripted CH refuses a protected request (PROTOCOL.md §4.1): sealed
 * as the protocol says; as plain text (what anyone on the path can send);
 * sealed for the request after it; sealed with an IV but a map for
 * plaintext (an answer sealed as a refusal); sealed as an answer (header {}).
 */
enum { UNIT_R_SEALED = 1, UNIT_R_TEXT, UNIT_R_OTHER_SEQ, UNIT_R_MAP, UNIT_R_ANSWER };

/**
 * The CH's refusal, @p code with the diagnostic @p text and, unless NULL,
 * the Echo option @p echo of @p echo_len bytes, of the protected request
 * @p req from @p kid with number @p seq to @p path, for member @p m, as
 * @p mode (UNIT_R_*) says: an ACK in @p out. The sealing is built here from
 * the protocol's definition, not with the core's. @return its length.
 */
int unit_refusal(const iog_member_t *m, int mode, uint8_t code, const char *text, const uint8_t *echo,
                 size_t echo_len, const iog_coap_msg_t *req, const iog_id_t *kid, uint64_t seq, const char *path,
                 uint8_t *out, size_t cap);

/**
 * A ticket (PROTOCOL.md §4.4) of session @p sid until @p expires, Sk @p sk
 * sealed under @p ticket_key (the recipient's ticket key) with the IV
 * 80 81 00 ..: {1: sid, 2: expires, 3: initiator, 4: responder,
 * 5: recipient, 6: [h'A10101', {5: iv}, ciphertext]}. @return its length.
 */
size_t unit_ticket(const uint8_t ticket_key[16], const iog_id_t *cluster, const uint8_t sid[16],
                   uint64_t expires, const iog_id_t *initiator, const iog_id_t *responder,
                   const iog_id_t *recipient, const uint8_t sk[16], uint8_t *out, size_t cap);

/**
 * A scripted M2 (PROTOCOL.md §5.1) for an initiator @p dev on the fake
 * network (unit_m2_on_send): it answers each CON POST /talk sent to any
 * address but unit_server_addr with 2.05 talk-resp {1: id, 2: a ticket of
 * session @p sid until @p expires, Sk @p sk}, and keeps a copy of each
 * answer's payload; with @p replay k >= 1 it answers instead with the
 * payload of its k-th answer as it is (what anyone who recorded it can
 * send). It answers a CON POST /m2m in its side @p s of its last new
 * session with the reply "ok" (4.01 "replay" or "unauthorized" when it
 * does not open).
 */
typedef struct {
    iog_device_t *dev;      /**< the initiator (its ticket key, cluster) */
    iog_id_t id;            /**< M2's ID */
    uint8_t sk[16];         /**< the next ticket's Sk */
    uint8_t sid[16];        /**< ... its sid */
    uint64_t expires;       /**< ... its expiry */
    unsigned replay;        /**< 0: a new ticket; k: the k-th answer again */
    unsigned talks;         /**< /talk requests received */
    unsigned m2ms;          /**< /m2m requests received */
    unsigned messages;      /**< ... opened */
    unsigned replays;       /**< ... whose number it had seen: a nonce used again */
    unsigned answers;       /**< new answers kept */
    struct {
        size_t len;
        uint8_t buf[240];
    } answer[8];            /**< the payloads of the first new answers */
    iog_m2m_t s;            /**< M2's side of its last new session */
} unit_m2_t;

/** The one scripted M2 the tests share. */
extern unit_m2_t unit_m2;
/** Sets it up as M2 @p id for @p dev: no answer kept, the next ticket's Sk 0x5c.., sid 0x51.. (first byte 1). */
void unit_m2_init(iog_device_t *dev, const char *id, uint64_t expires);
/** The fake network's on_send hook that plays it. */
void unit_m2_on_send(fake_net_t *n, const iog_addr_t *to, const uint8_t *buf, size_t len);

/** The board's device of test_console.c, for the device tests that run after it. */
iog_device_t *unit_board_device(void);

/** The libcoap captures of test_coap.c, as hex. */
#define UNIT_LIBCOAP 4
extern const char *const unit_libcoap[UNIT_LIBCOAP];
/** The shared vectors of testdata/vectors (test_vectors.c): @p n of them. */
const vec_t *unit_vectors(unsigned *n);

/* test suites */
void test_cbor(void);
void test_coap(void);
void test_crypto(void);
void test_proto(void);
void test_tlog(void);
void test_vectors(void);
void test_bench(void);
void test_store(void);
void test_console(void);
void test_fuzz(void);
void test_device_server(void);
#ifndef IOG_TEST_LX106
void test_libcoap(void);
#endif

/** Runs every suite and prints the summary. @return 0 when all passed. */
int unit_run_all(void);

#endif
