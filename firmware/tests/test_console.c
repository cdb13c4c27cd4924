/*
 * The board: console parsing (a table of bad lines, then random lines),
 * settings kept in flash, the public key line against Python's
 * cryptography, sequence-number reservation across reboots and power loss,
 * corrupted and stale state, a full flash. No network: the joins and talks
 * run against the real cluster head in tests/board_e2e.py.
 */
#include <errno.h>

#include "iog_console.h"
#include "selfvectors.h"
#include "unit.h"

static iog_board_t board UNIT_BIG;

/* The lines the board printed since the last clear. */
static struct {
    char text[1320]; /* the QEMU image has 80 KB of RAM for everything */
    size_t len;
    unsigned lines, errors;
} seen;

static void out(void *ctx, const char *line)
{
    size_t n = strlen(line);
    (void)ctx;
    seen.lines++;
    seen.errors += strncmp(line, "error", 5) == 0;
    if (seen.len + n + 1 < sizeof(seen.text)) {
        memcpy(seen.text + seen.len, line, n);
        seen.len += n;
        seen.text[seen.len++] = '\n';
        seen.text[seen.len] = '\0';
    }
}

static void clear(void)
{
    memset(&seen, 0, sizeof(seen));
}

static int saw(const char *s)
{
    return strstr(seen.text, s) != NULL;
}

/* The reset reason of the next boot (the ESP8266's: 0 power on ... 6 the reset pin). */
static int reason;

static int reset_reason(void *ctx)
{
    (void)ctx;
    return reason;
}

static const iog_board_hooks_t hooks = { NULL, out, NULL, NULL, NULL, reset_reason };
static iog_storage_t st;

/* A boot: init (settings, key) and start (restore) on the shared flash. */
static void boot(void)
{
    clear();
    fake_net_init(&unit_net);
    iog_board_init(&board, &unit_net.plat, &st, &hooks);
    iog_board_start(&board);
}

static int run(const char *line)
{
    char buf[IOG_CONSOLE_LINE + 1];
    clear();
    strncpy(buf, line, sizeof(buf) - 1);
    buf[sizeof(buf) - 1] = '\0';
    return iog_board_exec(&board, buf);
}

static void test_first_boot(void)
{
    unit_flash_reset();
    boot();
    CHECK(saw("ok new device key made and stored"));
    CHECK(saw("error not configured"));
    CHECK(unit_flash.len[IOG_REC_KEY] > 0);
    /* the same key at the next boot, and a default ID made from it */
    uint8_t pub[65];
    memcpy(pub, board.dev.me.pub, 65);
    boot();
    CHECK(!saw("new device key"));
    CHECK_MEM(board.dev.me.pub, pub, 65);
    CHECK_EQ(strncmp(board.dev.me.id.s, "iog-", 4), 0);
    CHECK_EQ(board.dev.me.id.len, 12);
}

static void test_pubkey(void)
{
    iog_identity_t me;
    uint8_t b[200];
    unit_flash_reset();
    memcpy(me.priv, SV_DEV_PRIV, 32);
    iog_p256_public(me.priv, me.pub);
    int n = iog_rec_key_encode(&me, b + 6, sizeof(b) - 6);
    CHECK_EQ(iog_store_put(&st, IOG_REC_KEY, b + 6, (size_t)n, b, sizeof(b)), 0);
    boot();
    CHECK_EQ(run("pubkey"), 0);
    /* Python: base64(SubjectPublicKeyInfo DER) of SV_DEV_PRIV's public key */
    CHECK(saw("pubkey MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEYP7UuiVanTHJYet0xjVtaMBJuJI7"
              "Yfps5mliLmDyn7Z5A/4QCLi8maQa6elWKLxk8vGyDC1+n1F3o8KU1EYimQ==\n"));
    CHECK_EQ(seen.lines, 1);
}

static void test_settings(void)
{
    unit_flash_reset();
    boot();
    static const char *const good[] = {
        "set server 127.0.0.1:5683", "set position -33.8688,151.2093", "set id esp-01",
        "set pin 00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF",
        "set port 5701", "set wifi.ssid my lab", "set wifi.pass correct horse",
        "set peer gw-1 10.0.0.9:5700", "set sleep 300", "set mode sleepy",
        "credential aGVsbG8gZmxlZXQ=", "  show  ",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        CHECK_EQ(run(good[i]), 0);
        CHECK_EQ(seen.errors, 0);
    }
    CHECK(saw("show position -33.868800,151.209300\n"));
    boot(); /* kept in flash */
    CHECK_EQ(run("show"), 0);
    CHECK(saw("show id esp-01\n"));
    CHECK(saw("show server 127.0.0.1:5683\n"));
    CHECK(saw("show pin 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"));
    CHECK(saw("show port 5701\n"));
    CHECK(saw("show wifi.ssid my lab (passphrase set)\n"));
    CHECK(saw("show mode sleepy peer=gw-1 10.0.0.9:5700 sleep=300\n"));
    CHECK(saw("show credential aGVsbG8gZmxlZXQ= (sent in every join)"));
    CHECK(!saw("correct horse")); /* the passphrase is never printed */
    CHECK_EQ(board.set.cred_len, 11);
    CHECK_EQ(run("set position 90,-180"), 0);
    CHECK_EQ(board.set.lon, -180000000);
    CHECK_EQ(run("set pin none"), 0);
    CHECK_EQ(run("credential none"), 0);
    CHECK_EQ(board.set.cred_len, 0);
}

/* Each bad line: one `error` line, nothing changed, nothing written. */
static void test_bad_lines(void)
{
    static const char *const bad[] = {
        "set", "set port", "set port 0", "set port 65536", "set port 12a", "set port 1 2",
        "set port -1", "set port 99999999999999999999", "set server 1.2.3:5", "set server 1.2.3.4",
        "set server 256.1.1.1:5", "set server 1.2.3.4:0", "set server 1.2.3.4:70000",
        "set server 1.2.3.4:5 x", "set server 1..2.3:4", "set server localhost:5683",
        "set position 91,0", "set position 0,181", "set position 1.1234567,0", "set position abc",
        "set position 1,", "set position ,1", "set position 1,2,3", "set position 1.2.3,4",
        "set position -,1", "set id", "set id a/b", "set id a b",
        "set id xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "set pin 12",
        "set pin gggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggg",
        "set wifi.ssid", "set wifi.ssid 123456789012345678901234567890123", "set wifi.pass short",
        "set sleep 0", "set sleep 12601", "set mode fast", "set mode", "set peer x",
        "set peer x 1.2.3.4", "set peer a/b 1.2.3.4:5", "set colour blue", "credential",
        "credential !!!!", "credential aGVsbG8", "credential aGVs=G8=", "credential a b",
        "talk", "talk p", "talk p 1.2.3.4:5", "talk p/q 1.2.3.4:5 hi", "verify", "verify a/b",
        "verify a b", "show x", "pubkey now", "frob", "leave", "talk p 1.2.3.4:5 hi",
        "set port 5\x01", "\xff\xfe", "reboot",
    };
    unit_flash_reset();
    boot();
    run("set port 5702");
    iog_settings_t before = board.set;
    unsigned writes = unit_flash.writes;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        run(bad[i]);
        if (seen.errors != 1 || seen.lines != 1) {
            printf("FAIL bad line %zu \"%s\" printed %u lines, %u errors:\n%s", i, bad[i],
                   seen.lines, seen.errors, seen.text);
            unit_fail++;
        }
        else {
            unit_pass++;
        }
    }
    CHECK_MEM(&board.set, &before, sizeof(before));
    CHECK_EQ(unit_flash.writes, writes);
    /* a credential over 256 bytes */
    char cred[400] = "credential ";
    for (int i = 0; i < 344; i++) {
        cred[11 + i] = 'A';
    }
    cred[11 + 344] = '\0';
    run(cred);
    CHECK(saw("error credential: at most 256 bytes"));
}

static void test_input_and_fuzz(void)
{
    char line[IOG_CONSOLE_LINE + 40];
    unit_flash_reset();
    boot();
    /* lines split over several reads, CR LF, an overlong line */
    clear();
    iog_board_input(&board, "set po", 6);
    iog_board_input(&board, "rt 5703\r\nsho", 12);
    CHECK(saw("ok stored"));
    iog_board_input(&board, "w\n", 2);
    CHECK(saw("show port 5703"));
    memset(line, 'x', sizeof(line));
    clear();
    iog_board_input(&board, line, sizeof(line));
    iog_board_input(&board, "\n", 1);
    CHECK(saw("error line too long: ignored"));
    CHECK_EQ(seen.lines, 1);
    iog_board_input(&board, "show\n", 5); /* the console goes on */
    CHECK(saw("show port 5703"));

    /* random lines made of the console's words and random bytes: each is
     * answered, nothing crashes (the ASan build runs this too) */
    static const char *const words[] = {
        "set", "show", "talk", "verify", "credential", "pubkey", "server", "position", "port",
        "pin", "id", "peer", "sleep", "mode", "wifi.ssid", "wifi.pass", "1.2.3.4:5", "-90.5,180",
        "0", "65536", "none", "====", "AAAA", ",", ":", "  ",
    };
    uint32_t r = 12345;
    unsigned answered = 0, total = 0;
    for (int i = 0; i < 3000; i++) {
        size_t n = 0;
        int parts = 1 + i % 5;
        for (int k = 0; k < parts; k++) {
            r = r * 1103515245u + 12345u;
            const char *w = words[(r >> 16) % (sizeof(words) / sizeof(words[0]))];
            if ((r >> 8) % 7 == 0) { /* a random byte */
                line[n++] = (char)(r >> 24);
                continue;
            }
            if (k && n < IOG_CONSOLE_LINE - 1) {
                line[n++] = ' ';
            }
            size_t wl = strlen(w);
            if (n + wl < IOG_CONSOLE_LINE) {
                memcpy(line + n, w, wl);
                n += wl;
            }
        }
        line[n] = '\0';
        if (strncmp(line, "set", 3) == 0 || strlen(line) != n) {
            continue; /* keep the settings (and the flash) out of it; NULs end lines early */
        }
        clear();
        iog_board_exec(&board, line);
        total++;
        answered += seen.lines > 0 || line[strspn(line, " \t")] == '\0';
    }
    CHECK_EQ(answered, total);
    CHECK(total > 1000);
}

/* A membership made by hand (no network): what a join leaves behind. */
static void fake_join(uint64_t expires)
{
    iog_member_t *m = &board.dev.mem;
    uint8_t k[32] = { [31] = 9 };
    memset(m, 0, sizeof(*m));
    iog_id_set(&m->ch.cluster, "lab-1", 5);
    iog_p256_public(k, m->ch.pub);
    iog_thumbprint(m->ch.pub, m->ch.thumb);
    memset(m->nd, 0x11, sizeof(m->nd));
    memset(&m->keys, 0x22, sizeof(m->keys));
    m->height = 7;
    m->expires = expires;
    board.dev.joined = 1;
    board.member_dirty = 1;
    CHECK_EQ(board.dev.persist(&board, &board.dev), 0);
}

/* What the device does before each protected request. */
static int request(void)
{
    board.dev.mem.seq++;
    return board.dev.persist(&board, &board.dev);
}

static void test_reservation(void)
{
    unit_flash_reset();
    boot();
    fake_join(1800000000);
    CHECK_EQ(board.member_mark, IOG_SEQ_RESERVE);
    unsigned w0 = board.stats.flash_writes;
    for (int i = 0; i < 1000; i++) {
        CHECK_EQ(request(), 0);
    }
    /* 1,000 requests, numbers 0..999: the mark was written at 100, 200, ... 900 */
    CHECK_EQ(board.stats.flash_writes - w0, 1000 / IOG_SEQ_RESERVE - 1);
    CHECK_EQ(board.stats.rtc_writes, 1001);
    CHECK_EQ(board.dev.mem.seq, 1000);
    printf("store: a join and 1,000 protected requests: %u flash writes, %u RTC memory writes\n",
           board.stats.flash_writes - w0 + 1, board.stats.rtc_writes);

    /* a reset (RTC memory kept): exact */
    boot();
    CHECK(saw("restored cluster=lab-1"));
    CHECK_EQ(board.dev.mem.seq, 1000);
    CHECK_EQ(board.stats.flash_writes, 0);

    /* power loss (RTC memory gone, and with it the tickets used as M1 and the
     * clock): a rejoin, a new K_m (here no CH answers: not joined), never a
     * resume under the old K_m */
    for (int i = 0; i < 30; i++) {
        request();
    }
    unit_flash.len[IOG_REC_RTC] = 0;
    boot();
    CHECK(saw("error RTC memory lost (a power loss): rejoining"));
    CHECK(!saw("restored"));
    CHECK(!board.dev.joined && unit_flash.len[IOG_REC_MEMBER] == 0);

    /* RTC memory of an earlier membership (same mark, another N_d) is not used: a rejoin too */
    uint8_t rtc[IOG_STORE_FRAME_MAX];
    fake_join(1800000000);
    for (int i = 0; i < 3; i++) {
        request();
    }
    size_t rl = unit_flash.len[IOG_REC_RTC];
    memcpy(rtc, unit_flash.data[IOG_REC_RTC], rl);
    fake_join(1800000000); /* a rejoin: new N_d, the same mark value */
    board.dev.mem.nd[0] ^= 1;
    board.member_dirty = 1;
    request();
    CHECK_EQ(board.member_mark, IOG_SEQ_RESERVE);
    memcpy(unit_flash.data[IOG_REC_RTC], rtc, rl);
    unit_flash.len[IOG_REC_RTC] = rl;
    boot();
    CHECK(saw("error RTC memory lost (a power loss): rejoining"));
    CHECK(!board.dev.joined && unit_flash.len[IOG_REC_MEMBER] == 0);
}

/* A peer's message in the kept session: the reply's number is in RTC memory before it is sealed. */
static void test_kept_reply(void)
{
    iog_id_t peer;
    iog_rec_rtc_t r;
    uint8_t sk[16] = { 1 }, sid[16] = { 2 }, reply[8], buf[IOG_STORE_FRAME_MAX];
    const uint8_t *p;
    unit_flash_reset();
    boot();
    fake_join(1800000000);
    iog_id_set(&peer, "gw", 2);
    iog_m2m_t *s = &board.dev.sessions[0];
    CHECK_EQ(iog_m2m_init(s, sk, sid, 1800000000, &board.dev.me.id, &peer), 0);
    s->seq = 41;
    board.kept = s;
    board.dev.on_message(&board, &peer, (const uint8_t *)"x", 1, reply, sizeof(reply));
    int n = iog_store_get(&st, IOG_REC_RTC, buf, sizeof(buf), &p);
    CHECK(n > 0 && iog_rec_rtc_decode(p, (size_t)n, &r) == 0);
    CHECK(r.has_session && r.s.seq == 42);
    CHECK(saw("received gw x"));
}

static void test_corrupt_state(void)
{
    uint8_t good[IOG_STORE_FRAME_MAX];
    unit_flash_reset();
    boot();
    fake_join(1800000000);
    for (int i = 0; i < 150; i++) {
        request();
    }
    size_t n = unit_flash.len[IOG_REC_MEMBER];
    memcpy(good, unit_flash.data[IOG_REC_MEMBER], n);
    unsigned rejoin = 0, restored = 0;
    for (size_t i = 0; i < n; i += 3) {
        unit_flash.len[IOG_REC_MEMBER] = n;
        memcpy(unit_flash.data[IOG_REC_MEMBER], good, n);
        unit_flash.data[IOG_REC_MEMBER][i] ^= 0x40;
        boot();
        rejoin += saw("error stored membership is corrupt: rejoining") && !board.dev.joined &&
                  unit_flash.len[IOG_REC_MEMBER] == 0 && unit_flash.len[IOG_REC_RTC] == 0;
        restored += saw("restored");
    }
    CHECK_EQ(rejoin, (n + 2) / 3);
    CHECK_EQ(restored, 0);
    /* a torn write: half a record */
    memcpy(unit_flash.data[IOG_REC_MEMBER], good, n);
    unit_flash.len[IOG_REC_MEMBER] = n / 2;
    boot();
    CHECK(saw("error stored membership is corrupt"));
    /* corrupt settings: defaults and an error line; a corrupt key: a new key and an error */
    unit_flash.data[IOG_REC_SETTINGS][8] ^= 1;
    unit_flash.len[IOG_REC_SETTINGS] = unit_flash.len[IOG_REC_SETTINGS] ? unit_flash.len[IOG_REC_SETTINGS] : 20;
    boot();
    CHECK(saw("error stored settings are unreadable"));
    unit_flash.data[IOG_REC_KEY][20] ^= 1;
    boot();
    CHECK(saw("error stored key is unreadable"));
    CHECK(saw("ok new device key made and stored"));
}

static void test_pin_expiry_full(void)
{
    unit_flash_reset();
    boot();
    fake_join(1800000000);
    run("set pin 1111111111111111111111111111111111111111111111111111111111111111");
    CHECK(saw("ok stored; the membership belonged to the old id or CH key: join again"));
    CHECK(!board.dev.joined);
    CHECK_EQ(unit_flash.len[IOG_REC_MEMBER], 0);

    /* stored under the right pin, then the pin changes under it (another board's flash) */
    run("set pin none");
    fake_join(1800000000);
    unsigned char t[32];
    memcpy(t, board.dev.mem.ch.thumb, 32);
    board.set.has_pin = 1;
    memset(board.set.pin, 0x33, 32);
    uint8_t b[IOG_STORE_FRAME_MAX];
    int n = iog_rec_settings_encode(&board.set, b + 6, sizeof(b) - 6);
    iog_store_put(&st, IOG_REC_SETTINGS, b + 6, (size_t)n, b, sizeof(b));
    boot();
    CHECK(saw("error the stored CH key does not match the pin: rejoining"));
    CHECK(!board.dev.joined);

    /* expired by the clock (the fake platform's unix time is 1.7e9) */
    run("set pin none");
    fake_join(1600000000);
    boot();
    CHECK(saw("error membership expired: rejoining"));
    CHECK(!board.dev.joined);

    /* a full flash: settings refused and unchanged; a request whose mark
     * cannot be written is not sent */
    fake_join(1800000000);
    unit_flash.full = 1;
    CHECK_EQ(run("set port 6000"), -ENOSPC);
    CHECK(saw("error settings not stored: flash full"));
    CHECK(board.set.port != 6000);
    int e = 0;
    for (int i = 0; i < 2 * IOG_SEQ_RESERVE && !e; i++) {
        e = request();
    }
    CHECK_EQ(e, -ENOSPC);
    CHECK_EQ(board.dev.mem.seq, IOG_SEQ_RESERVE + 1); /* the refused one was never reserved */
    unit_flash.full = 0;
    CHECK_EQ(request(), 0);
    CHECK_EQ(board.member_mark, IOG_SEQ_RESERVE + 1 + IOG_SEQ_RESERVE);
    CHECK_EQ(run("reset"), 0);
    CHECK(saw("ok reset: everything forgotten"));
    CHECK(!board.dev.joined);
    CHECK_EQ(unit_flash.len[IOG_REC_MEMBER], 0);
    CHECK_EQ(unit_flash.len[IOG_REC_SETTINGS], 0);
    CHECK(unit_flash.len[IOG_REC_KEY] > 0);
}

/*
 * The board's clock over 60 days of uptime: its millisecond counter wraps
 * after 49.7 days, and the estimate goes on (it fell back 49.7 days).
 */
static void test_clock_past_ms_wrap(void)
{
    unit_flash_reset();
    boot();
    board.clock_unix = 1700000000;
    board.clock_ms = unit_net.now;
    uint64_t elapsed_ms = 0;
    int off = 0;
    for (unsigned h = 0; h < 60 * 24; h++) {
        uint32_t before = unit_net.now;
        unit_net.now += 3600u * 1000u + 7u; /* an hour, and a little */
        iog_board_poll(&board, 0);
        elapsed_ms += (uint32_t)(unit_net.now - before);
        off += iog_board_now(&board) != 1700000000u + elapsed_ms / 1000u;
    }
    CHECK(elapsed_ms > 0x100000000ull);
    CHECK_EQ(off, 0);
    CHECK_EQ(iog_board_now(&board), 1700000000u + elapsed_ms / 1000u);
}

/* ---- a CH key rotation (PROTOCOL.md §6.1, §6.2): the board re-keys at boot ---- */

static struct {
    uint8_t answer[600]; /* GET /cluster's answer */
    size_t len;
    unsigned gets;
    unsigned padded; /* GETs of IOG_PADDED_REQUEST bytes that end with a Padding option */
} cl;

static void cluster_ch(fake_net_t *n, const iog_addr_t *to, const uint8_t *buf, size_t len)
{
    iog_coap_msg_t req;
    uint8_t out[640];
    iog_coap_pkt_t p;
    (void)to;
    if (iog_coap_parse(&req, buf, len) || req.code != IOG_COAP_GET || !iog_coap_path_is(&req, "/cluster")) {
        return;
    }
    cl.gets++;
    cl.padded += len == IOG_PADDED_REQUEST && req.nopts && req.opts[req.nopts - 1].num == IOG_COAP_OPT_PADDING;
    iog_coap_build(&p, out, sizeof(out), IOG_COAP_ACK, IOG_COAP_CONTENT, req.mid, req.token, req.tkl);
    iog_coap_add_opt_uint(&p, IOG_COAP_OPT_CONTENT_FORMAT, IOG_CF_COSE_SIGN1);
    iog_coap_add_payload(&p, cl.answer, cl.len);
    fake_net_push(n, &unit_server_addr, n->now + 5, out, (size_t)iog_coap_finish(&p));
}

/* A boot whose CH answers GET /cluster with cl.answer. */
static void boot_ch(void)
{
    clear();
    fake_net_init(&unit_net);
    unit_net.on_send = cluster_ch;
    cl.gets = 0;
    cl.padded = 0;
    iog_board_init(&board, &unit_net.plat, &st, &hooks);
    iog_board_start(&board);
}

static void test_rekey(void)
{
    static const uint8_t k9[32] = { [31] = 9 }, k10[32] = { [31] = 10 };
    static uint8_t rot[300];
    uint8_t new_pub[65], old_thumb[32], new_thumb[32];
    iog_member_keys_t old_keys;
    iog_rec_member_t m;
    const uint8_t *p;
    unit_flash_reset();
    boot();
    CHECK_EQ(run("set server 127.0.0.1:5683"), 0);
    fake_join(1800000000); /* the CH key of k9 */
    memcpy(old_thumb, board.dev.mem.ch.thumb, 32);
    board.set.has_pin = 1;
    memcpy(board.set.pin, old_thumb, 32);
    uint8_t b[IOG_STORE_FRAME_MAX];
    int n = iog_rec_settings_encode(&board.set, b + 6, sizeof(b) - 6);
    iog_store_put(&st, IOG_REC_SETTINGS, b + 6, (size_t)n, b, sizeof(b));
    for (int i = 0; i < 150; i++) {
        request();
    }
    memcpy(&old_keys, &board.dev.mem.keys, sizeof(old_keys));
    iog_p256_public(k10, new_pub);
    iog_thumbprint(new_pub, new_thumb);
    const uint8_t *rv[1] = { rot };
    size_t rl[1] = { (size_t)unit_rotation(k9, new_pub, k9, &board.dev.mem.ch.cluster, rot, sizeof(rot)) };

    /* a key offered without a rotation from the membership's key: refused, nothing changes */
    cl.len = (size_t)unit_cluster_answer(k10, new_pub, &board.dev.mem.ch.cluster, rv, rl, 0, cl.answer,
                                         sizeof(cl.answer));
    boot_ch();
    CHECK(saw("restored") && saw("error CH key check: refused"));
    CHECK_EQ(cl.gets, 1);
    CHECK_EQ(cl.padded, 1); /* the key check's GET /cluster, padded (PROTOCOL.md §2) */
    CHECK_MEM(board.dev.mem.ch.thumb, old_thumb, 32);

    /* with the rotation: K_m' from the new key, the same nonces and numbers, all stored */
    cl.len = (size_t)unit_cluster_answer(k10, new_pub, &board.dev.mem.ch.cluster, rv, rl, 1, cl.answer,
                                         sizeof(cl.answer));
    CHECK(cl.len > 0 && cl.len < 580);
    unit_flash.full = 1; /* first: a membership that cannot be stored keeps the old key */
    boot_ch();
    CHECK(saw("error re-keyed, but the membership is not stored: the old key is kept"));
    CHECK_MEM(board.dev.mem.ch.thumb, old_thumb, 32);
    CHECK_MEM(&board.dev.mem.keys, &old_keys, sizeof(old_keys));
    unit_flash.full = 0;
    boot_ch();
    CHECK(saw("rekeyed ch_key="));
    CHECK_MEM(board.dev.mem.ch.thumb, new_thumb, 32);
    CHECK(memcmp(&board.dev.mem.keys, &old_keys, sizeof(old_keys)) != 0);
    CHECK(board.dev.mem.seq >= 150 && board.dev.mem.seq <= 2 * IOG_SEQ_RESERVE);
    iog_member_t want = board.dev.mem;
    CHECK_EQ(iog_member_derive(&board.dev.me, &want), 0);
    CHECK_MEM(&board.dev.mem.keys, &want.keys, sizeof(want.keys));
    CHECK_MEM(board.set.pin, new_thumb, 32); /* the pin followed */
    n = iog_store_get(&st, IOG_REC_MEMBER, b, sizeof(b), &p);
    CHECK(n > 0 && iog_rec_member_decode(p, (size_t)n, &m) == 0);
    CHECK_MEM(m.mem.ch.thumb, new_thumb, 32);
    CHECK_MEM(&m.mem.keys, &want.keys, sizeof(want.keys));
    uint64_t seq = board.dev.mem.seq;

    /* the next boot: restored with K_m' and the pin, nothing to re-key */
    boot_ch();
    CHECK(saw("restored") && !saw("rekeyed") && seen.errors == 0);
    CHECK_EQ(cl.gets, 1);
    CHECK(board.dev.mem.seq == seq);
    CHECK_MEM(&board.dev.mem.keys, &want.keys, sizeof(want.keys));
    /* a board asleep (RTC memory kept, sleepy mode) does not ask at each wake */
    board.set.mode = IOG_MODE_SLEEPY;
    n = iog_rec_settings_encode(&board.set, b + 6, sizeof(b) - 6);
    iog_store_put(&st, IOG_REC_SETTINGS, b + 6, (size_t)n, b, sizeof(b));
    boot_ch();
    CHECK(saw("restored"));
    CHECK_EQ(cl.gets, 0);
}

/* ---- the CH's "not a member" (PROTOCOL.md §4.1): acted on only when sealed ---- */

static struct {
    int mode;                    /* UNIT_R_*: how the CH refuses each protected request */
    unsigned verifies, sessions; /* protected requests it refused */
    unsigned clusters;           /* GET /cluster it left unanswered (a rejoin's first step) */
    uint8_t answer[200];         /* the board's last answer to a peer */
    size_t answer_len;
} rf;

static void refusing_ch(fake_net_t *n, const iog_addr_t *to, const uint8_t *buf, size_t len)
{
    iog_coap_msg_t req;
    iog_id_t kid;
    uint64_t seq;
    uint8_t pt[300], out[300];
    if (memcmp(to, &unit_server_addr, sizeof(*to)) != 0) {
        rf.answer_len = len <= sizeof(rf.answer) ? len : 0;
        memcpy(rf.answer, buf, rf.answer_len);
        return;
    }
    if (iog_coap_parse(&req, buf, len)) {
        return;
    }
    rf.clusters += iog_coap_path_is(&req, "/cluster");
    int verify = iog_coap_path_is(&req, "/verify");
    const char *path = verify ? IOG_PATH_VERIFY : IOG_PATH_SESSION;
    if ((!verify && !iog_coap_path_is(&req, "/session")) ||
        iog_prot_req_open(&board.dev.mem, path, req.payload, req.payload_len, &kid, &seq, pt, sizeof(pt)) < 0) {
        return;
    }
    rf.verifies += verify;
    rf.sessions += !verify;
    int m = unit_refusal(&board.dev.mem, rf.mode, IOG_COAP_FORBIDDEN, "not a member: left", NULL, 0, &req, &kid, seq,
                         path, out, sizeof(out));
    fake_net_push(n, &unit_server_addr, n->now + 5, out, (size_t)m);
}

/* A configured, joined board whose CH refuses as @p mode says. */
static void refused_board(int mode)
{
    unit_flash_reset();
    boot();
    run("set server 127.0.0.1:5683");
    run("set position 1,2");
    fake_join(1800000000);
    memset(board.dev.mem.keys.resp, 0x44, sizeof(board.dev.mem.keys.resp)); /* not the request key */
    board.key_at = unit_net.now + 3600000u; /* no CH key check meanwhile */
    memset(&rf, 0, sizeof(rf));
    rf.mode = mode;
    unit_net.on_send = refusing_ch;
}

/* m1's hello to the board, from unit_peer_addr, with the Echo its first try draws; served. */
static void hello_to_board(void)
{
    iog_id_t m1;
    iog_talk_proof_t proof;
    iog_coap_pkt_t p;
    iog_coap_msg_t a;
    uint8_t hello[160], b[240], echo[IOG_COAP_ECHO_MAX];
    size_t el = 0;
    iog_id_set(&m1, "m1", 2);
    memset(&proof, 0x17, sizeof(proof));
    proof.time = 1700000000;
    int hl = iog_hello_encode(&m1, &board.dev.me.id, &proof, hello, sizeof(hello));
    CHECK(hl > 0);
    clear();
    for (uint16_t round = 0; round < 2; round++) {
        iog_coap_build(&p, b, sizeof(b), IOG_COAP_CON, IOG_COAP_POST, (uint16_t)(0x500 + round),
                       (const uint8_t *)"\x7a", 1);
        iog_coap_add_path(&p, "/talk");
        iog_coap_add_opt_uint(&p, IOG_COAP_OPT_CONTENT_FORMAT, IOG_CF_CBOR);
        if (el) {
            iog_coap_add_opt(&p, IOG_COAP_OPT_ECHO, echo, el);
        }
        iog_coap_add_payload(&p, hello, (size_t)hl);
        int n = iog_coap_finish(&p);
        CHECK(n > 0);
        rf.answer_len = 0;
        fake_net_push(&unit_net, &unit_peer_addr, unit_net.now, b, (size_t)n);
        iog_board_poll(&board, 100);
        const iog_coap_opt_t *o = iog_coap_parse(&a, rf.answer, rf.answer_len) == 0
                                      ? iog_coap_opt(&a, IOG_COAP_OPT_ECHO)
                                      : NULL;
        if (round == 0) {
            CHECK(o && o->len <= sizeof(echo));
            el = o && o->len <= sizeof(echo) ? o->len : 0;
            memcpy(echo, o ? o->val : echo, el);
        }
    }
    /* the CH's refusal, passed on to m1 as a warning */
    CHECK(iog_coap_parse(&a, rf.answer, rf.answer_len) == 0 && a.code == IOG_COAP_FORBIDDEN &&
          a.payload_len == 27 && memcmp(a.payload, "warning: not a member: left", 27) == 0);
}

/*
 * The CH says this board is not a member (4.03 "not a member: ..."): to a
 * verify, the board drops its membership and rejoins at once; to the
 * /session of a hello it serves, at its next poll. Only when the refusal is
 * sealed (PROTOCOL.md §4.1): an unsealed one, which anyone on the path can
 * send, is reported and changes nothing — the membership stays, in RAM and
 * flash, no join starts. (Before, a forged 4.03 made the board rejoin: a
 * ledger write for one unauthenticated datagram.)
 */
static void test_not_member_sealed_only(void)
{
    for (int sealed = 0; sealed < 2; sealed++) {
        refused_board(sealed ? UNIT_R_SEALED : UNIT_R_TEXT);
        size_t member_len = unit_flash.len[IOG_REC_MEMBER];
        CHECK(member_len > 0);
        run("verify m1");
        CHECK_EQ(rf.verifies, 1);
        if (sealed) {
            CHECK(saw("error the cluster head says this board is not a member: rejoining"));
            CHECK(rf.clusters > 0); /* the rejoin (unanswered here) */
            CHECK(!board.dev.joined);
            CHECK_EQ(unit_flash.len[IOG_REC_MEMBER], 0);
        }
        else {
            CHECK(saw("error the cluster head's \"not a member\" is not sealed: ignored\n"));
            CHECK(saw("error verify: refused (4.03 not a member: left)\n"));
            CHECK(!saw("rejoining"));
            CHECK_EQ(rf.clusters, 0);
            CHECK(board.dev.joined);
            CHECK_EQ(unit_flash.len[IOG_REC_MEMBER], member_len);
        }

        refused_board(sealed ? UNIT_R_SEALED : UNIT_R_TEXT);
        hello_to_board();
        CHECK_EQ(rf.sessions, 1);
        CHECK(saw("warning m1 not a member: left\n"));
        CHECK_EQ(rf.clusters, 0); /* the rejoin is the next poll's */
        if (sealed) {
            CHECK(saw("error the cluster head says this board is not a member: rejoining"));
            CHECK(board.join_due && !board.dev.joined);
            CHECK_EQ(unit_flash.len[IOG_REC_MEMBER], 0);
        }
        else {
            CHECK(saw("error the cluster head's \"not a member\" is not sealed: ignored\n"));
            CHECK(!board.join_due && board.dev.joined);
            CHECK_EQ(unit_flash.len[IOG_REC_MEMBER], member_len);
        }
    }
    unit_net.on_send = NULL;
}

/*
 * A ticket the board used (PROTOCOL.md §4.4) is refused after a reset and
 * after a deep-sleep wake (RTC memory kept): its used tickets are in the RTC
 * record, written anyway before the new session's first message, so a talk
 * costs no more writes (measured: flash and RTC writes of a talk with a new
 * session). An attacker on the path answers a later hello to m2 (at another
 * port, or after m2 lost the kept session) with a /talk answer he recorded:
 * "error talk: refused (ticket already used)", no message sent, the kept
 * session as it was. (Before, the board started that session again and sent
 * its message under number 0 again: the same AES-GCM key and nonce.)
 */
static void test_ticket_used_once_across_reset(void)
{
    unit_flash_reset();
    boot();
    run("set server 127.0.0.1:5683");
    run("set position 1,2");
    fake_join(1800000000);
    board.key_at = unit_net.now + 3600000u; /* no CH key check meanwhile */
    unit_m2_init(&board.dev, "m2", 1700000600);
    unit_net.on_send = unit_m2_on_send;
    iog_board_stats_t s0 = board.stats;
    CHECK_EQ(run("talk m2 127.0.0.2:5683 one"), 0);
    CHECK(saw("sent m2 reply=ok session=new\n"));
    unsigned fw = board.stats.flash_writes - s0.flash_writes, rw = board.stats.rtc_writes - s0.rtc_writes;
    printf("store: a talk with a new session: %u flash writes, %u RTC memory writes\n", fw, rw);
    CHECK_EQ(fw, 0);
    CHECK_EQ(rw, 2);
    CHECK_EQ(unit_m2.messages, 1);

    /* a reset: the kept session and the used ticket restored; the recorded answer refused */
    boot();
    unit_net.on_send = unit_m2_on_send;
    CHECK(saw("restored") && saw("session=m2"));
    iog_m2m_t kept = *board.kept;
    CHECK_EQ(kept.seq, 1);
    unit_m2.replay = 1;
    CHECK_EQ(run("talk m2 127.0.0.2:5684 two"), -EACCES);
    CHECK(saw("error talk: refused (ticket already used)\n"));
    CHECK_EQ(unit_m2.talks, 2);
    CHECK_EQ(unit_m2.m2ms, 1);
    CHECK_EQ(unit_m2.replays, 0);
    CHECK(board.kept == &board.dev.sessions[0] && board.kept_addr.port == 5683);
    CHECK_MEM(board.kept, &kept, sizeof(kept));

    /* a sleepy board: a fresh ticket at a wake, then a deep sleep */
    run("set peer m2 127.0.0.2:5684");
    run("set mode sleepy");
    unit_m2.replay = 0;
    unit_m2.sid[0] = 2;
    CHECK_EQ(iog_board_wake(&board, (const uint8_t *)"r1", 2), 2);
    CHECK(saw("sent m2 reply=ok session=new"));
    CHECK_EQ(unit_m2.messages, 2);
    /* the wake-up: m2 lost the session (4.01), the board asks once for a new one, and gets the
     * recorded answer with the ticket of the session it kept */
    boot();
    unit_net.on_send = unit_m2_on_send;
    CHECK(saw("restored") && saw("session=m2"));
    memset(&unit_m2.s, 0, sizeof(unit_m2.s));
    unit_m2.replay = 2;
    unsigned m2ms = unit_m2.m2ms;
    CHECK_EQ(iog_board_wake(&board, (const uint8_t *)"r2", 2), -EACCES);
    CHECK(saw("error talk: refused (ticket already used)\n"));
    CHECK_EQ(unit_m2.talks, 4);
    CHECK_EQ(unit_m2.m2ms, m2ms + 1); /* the kept session's message, refused 4.01 by m2 */
    CHECK_EQ(unit_m2.replays, 0);
    /* a fresh ticket: a new session */
    unit_m2.replay = 0;
    unit_m2.sid[0] = 3;
    boot();
    unit_net.on_send = unit_m2_on_send;
    CHECK_EQ(iog_board_wake(&board, (const uint8_t *)"r3", 2), 2);
    CHECK(saw("sent m2 reply=ok session=new"));
    CHECK_EQ(unit_m2.messages, 3);
    unit_net.on_send = NULL;
}

/*
 * A sleepy board's clock across a deep sleep of 2 h: the RTC record keeps
 * the clock as it was and the planned sleep apart, and only the sleep
 * timer's wake-up (REASON_DEEP_SLEEP_AWAKE, 5) adds the sleep. Every other
 * reset reason — power on with RTC memory kept (0), the watchdogs (1, 3),
 * an exception (2), a restart (4), the reset pin (6) — is a start during
 * the sleep as far as the board knows: it restarts from the clock it kept,
 * behind, never ahead. (Before, the record held the clock plus the sleep:
 * a reset during the sleep left the board ahead by what was left of it,
 * and its talk proofs stale past 60 s.) The same when the wake made no
 * session (the peer did not answer): the record keeps the clock without a
 * session too (before, only with one: the board fell back to its member
 * record's clock, behind by everything since, its talk proofs stale).
 */
static void test_clock_across_sleep(void)
{
    const uint64_t t = 1750000000;
    for (int answers = 0; answers < 2; answers++) {
        for (int why = 0; why <= 7; why++) {
            unit_flash_reset();
            reason = 0;
            boot();
            run("set peer m2 127.0.0.2:5683");
            run("set sleep 7200");
            run("set mode sleepy");
            fake_join(1900000000); /* its member record's clock: the fake network's 1700000000 */
            board.key_at = unit_net.now + 3600000u; /* no CH key check meanwhile */
            board.clock_unix = t;
            board.clock_ms = unit_net.now;
            unit_m2_init(&board.dev, "m2", t + 600);
            unit_net.on_send = answers ? unit_m2_on_send : NULL;
            CHECK_EQ(iog_board_wake(&board, (const uint8_t *)"r", 1), answers ? 2 : -ETIMEDOUT);
            CHECK(saw(answers ? "sent m2 reply=ok session=new" : "error talk: no answer") && saw("sleep 7200"));
            uint64_t slept_at = iog_board_now(&board); /* the clock the record kept */
            CHECK(slept_at >= t && slept_at < t + 200);
            reason = why;
            boot();
            CHECK(saw("restored"));
            uint64_t want = slept_at + (why == IOG_RESET_DEEP_SLEEP_AWAKE ? 7200 : 0);
            if (iog_board_now(&board) != want) {
                printf("reset reason %d, %s: clock %llu, want %llu\n", why, answers ? "a session" : "no session",
                       (unsigned long long)iog_board_now(&board), (unsigned long long)want);
            }
            CHECK(iog_board_now(&board) == want);
        }
    }
    reason = 0;
    unit_net.on_send = NULL;
}

void test_console(void)
{
    st = unit_storage();
    test_first_boot();
    test_pubkey();
    test_settings();
    test_bad_lines();
    test_input_and_fuzz();
    test_reservation();
    test_kept_reply();
    test_clock_past_ms_wrap();
    test_corrupt_state();
    test_pin_expiry_full();
    test_rekey();
    test_not_member_sealed_only();
    test_ticket_used_once_across_reset();
    test_clock_across_sleep();
}

/* The board's device, lent to test_tlog.c once the board's tests are done
 * (RAM is scarce in the QEMU image). */
iog_device_t *unit_board_device(void)
{
    return &board.dev;
}
