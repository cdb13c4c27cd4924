/*
 * Persistent records: the frame against bytes computed with Python's
 * hashlib, every single-bit flip and truncation of a stored frame, the
 * payload codecs, and a full flash.
 */
#include <errno.h>

#include "iog_store.h"
#include "unit.h"

/* record 2, version 1, payload "abc": 6967 02 01 0300 616263 || SHA-256(...)[0:8] */
static const char FRAME_ABC[] = "6967020103006162630feb37d993fe81bf";

static void test_frame(void)
{
    uint8_t scratch[64], want[32], buf[IOG_STORE_FRAME_MAX];
    const uint8_t *p;
    iog_storage_t st = unit_storage();
    unit_flash_reset();
    size_t wl = unit_hex(FRAME_ABC, want, sizeof(want));
    CHECK_EQ(iog_store_put(&st, IOG_REC_MEMBER, (const uint8_t *)"abc", 3, scratch, sizeof(scratch)), 0);
    CHECK_EQ(unit_flash.len[IOG_REC_MEMBER], wl);
    CHECK_MEM(unit_flash.data[IOG_REC_MEMBER], want, wl);
    CHECK_EQ(iog_store_get(&st, IOG_REC_MEMBER, buf, sizeof(buf), &p), 3);
    CHECK_MEM(p, "abc", 3);
    CHECK_EQ(iog_store_get(&st, IOG_REC_KEY, buf, sizeof(buf), &p), -ENOENT);

    /* every bit flipped, one at a time, and every truncation: detected */
    unsigned caught = 0, total = 0;
    for (size_t i = 0; i < wl * 8; i++) {
        memcpy(unit_flash.data[IOG_REC_MEMBER], want, wl);
        unit_flash.data[IOG_REC_MEMBER][i / 8] ^= (uint8_t)(1u << (i % 8));
        total++;
        caught += iog_store_get(&st, IOG_REC_MEMBER, buf, sizeof(buf), &p) == -EBADMSG;
    }
    for (size_t n = 1; n < wl; n++) {
        memcpy(unit_flash.data[IOG_REC_MEMBER], want, wl);
        unit_flash.len[IOG_REC_MEMBER] = n;
        total++;
        caught += iog_store_get(&st, IOG_REC_MEMBER, buf, sizeof(buf), &p) == -EBADMSG;
    }
    CHECK_EQ(caught, total);
    /* a valid frame of another record in this one's place */
    memcpy(unit_flash.data[IOG_REC_SETTINGS], want, wl);
    unit_flash.len[IOG_REC_SETTINGS] = wl;
    CHECK_EQ(iog_store_get(&st, IOG_REC_SETTINGS, buf, sizeof(buf), &p), -EBADMSG);

    /* too large, and a full flash */
    CHECK_EQ(iog_store_put(&st, IOG_REC_MEMBER, buf, IOG_STORE_FRAME_MAX, buf, sizeof(buf)), -EMSGSIZE);
    unit_flash.full = 1;
    CHECK_EQ(iog_store_put(&st, IOG_REC_KEY, (const uint8_t *)"x", 1, scratch, sizeof(scratch)), -ENOSPC);
    unit_flash.full = 0;
    CHECK_EQ(iog_store_erase(&st, IOG_REC_MEMBER), 0);
    CHECK_EQ(iog_store_get(&st, IOG_REC_MEMBER, buf, sizeof(buf), &p), -ENOENT);
}

static void test_settings(void)
{
    iog_settings_t s, t;
    uint8_t b[IOG_STORE_FRAME_MAX], b2[IOG_STORE_FRAME_MAX];
    iog_settings_default(&s);
    strcpy(s.ssid, "lab wifi");
    strcpy(s.pass, "secret-pass");
    s.server.family = 2;
    s.server.ip[0] = 192;
    s.server.port = 5683;
    iog_id_set(&s.id, "esp-01", 6);
    s.has_pos = 1;
    s.lat = -33868800;
    s.lon = 151209300;
    s.has_pin = 1;
    memset(s.pin, 0xab, sizeof(s.pin));
    s.mode = IOG_MODE_SLEEPY;
    iog_id_set(&s.peer, "gw", 2);
    s.sleep_s = 3600;
    s.cred_len = IOG_CRED_MAX;
    memset(s.cred, 0x5a, IOG_CRED_MAX);
    int n = iog_rec_settings_encode(&s, b, sizeof(b));
    CHECK(n > 0);
    CHECK_EQ(iog_rec_settings_decode(b, (size_t)n, &t), 0);
    CHECK_EQ(iog_rec_settings_encode(&t, b2, sizeof(b2)), n);
    CHECK_MEM(b, b2, (size_t)n);
    CHECK_EQ(t.lat, -33868800);
    CHECK(strcmp(t.pass, "secret-pass") == 0);
    /* a trailing byte, a cut, an out-of-range latitude are refused */
    CHECK_EQ(iog_rec_settings_decode(b, (size_t)n + 1, &t), -EBADMSG);
    CHECK_EQ(iog_rec_settings_decode(b, (size_t)n - 1, &t), -EBADMSG);
    s.lat = 90000001;
    n = iog_rec_settings_encode(&s, b, sizeof(b));
    CHECK_EQ(iog_rec_settings_decode(b, (size_t)n, &t), -EBADMSG);
    s.lat = 0;
    /* a sleep the console refuses (past the deep-sleep timer) is refused too */
    s.sleep_s = IOG_SLEEP_MAX_S;
    n = iog_rec_settings_encode(&s, b, sizeof(b));
    CHECK_EQ(iog_rec_settings_decode(b, (size_t)n, &t), 0);
    s.sleep_s = IOG_SLEEP_MAX_S + 1;
    n = iog_rec_settings_encode(&s, b, sizeof(b));
    CHECK_EQ(iog_rec_settings_decode(b, (size_t)n, &t), -EBADMSG);
    s.cred_len = IOG_CRED_MAX + 1;
    CHECK_EQ(iog_rec_settings_encode(&s, b, sizeof(b)), -ENOBUFS);
}

static void test_member_rtc(void)
{
    iog_rec_member_t m, m2;
    iog_rec_rtc_t r, r2;
    uint8_t b[IOG_STORE_FRAME_MAX], priv[32] = { [31] = 7 };
    memset(&m, 0, sizeof(m));
    iog_id_set(&m.mem.ch.cluster, "lab-1", 5);
    iog_p256_public(priv, m.mem.ch.pub);
    memset(m.mem.nd, 1, 16);
    memset(&m.mem.keys, 2, sizeof(m.mem.keys));
    m.mem.expires = 1800000000;
    m.mark = 300;
    m.clock = 1700000000;
    int n = iog_rec_member_encode(&m, b, sizeof(b));
    CHECK(n > 0);
    CHECK_EQ(iog_rec_member_decode(b, (size_t)n, &m2), 0);
    CHECK_EQ(m2.mem.seq, 300); /* resumes at the mark */
    CHECK_MEM(&m2.mem.keys, &m.mem.keys, sizeof(m.mem.keys));
    iog_thumbprint(m.mem.ch.pub, m.mem.ch.thumb);
    CHECK_MEM(m2.mem.ch.thumb, m.mem.ch.thumb, 32);
    CHECK_EQ(iog_rec_member_decode(b, (size_t)n - 1, &m2), -EBADMSG);
    CHECK(m2.log.size == 0);
    /* with the CH's log as last checked: a trailer that a record of before lacks */
    m.log.size = 11;
    memset(m.log.root, 0xAB, sizeof(m.log.root));
    int nl = iog_rec_member_encode(&m, b, sizeof(b));
    CHECK_EQ(nl, n + 40);
    CHECK_EQ(iog_rec_member_decode(b, (size_t)nl, &m2), 0);
    CHECK(m2.log.size == 11 && m2.mem.seq == 300);
    CHECK_MEM(m2.log.root, m.log.root, sizeof(m.log.root));
    for (int cut = n + 1; cut < nl; cut += 7) {
        CHECK_EQ(iog_rec_member_decode(b, (size_t)cut, &m2), -EBADMSG);
    }
    CHECK_EQ(iog_rec_member_decode(b, (size_t)n, &m2), 0); /* the record of before */
    CHECK(m2.log.size == 0);
    memset(b + n, 0, 8); /* a trailer of tree size 0 */
    CHECK_EQ(iog_rec_member_decode(b, (size_t)nl, &m2), -EBADMSG);
    /* a record of a build before talk keys: the member keys 16 bytes shorter
       (the talk key, last of them, missing) is refused, and the board rejoins */
    memmove(b + n - 16 - 16, b + n - 16, 16);
    CHECK_EQ(iog_rec_member_decode(b, (size_t)n - 16, &m2), -EBADMSG);

    memset(&r, 0, sizeof(r));
    r.member_mark = 300;
    r.member_seq = 250;
    r.has_session = 1;
    iog_id_set(&r.s.peer, "gw", 2);
    r.s.seq = 12;
    r.s.window.init = 1;
    r.s.window.top = 11;
    r.addr.family = 2;
    r.clock = 1700000100;
    r.sleep_s = 7200;
    r.wakes = 9;
    n = iog_rec_rtc_encode(&r, b, sizeof(b));
    CHECK_EQ(iog_rec_rtc_decode(b, (size_t)n, &r2), 0);
    CHECK(r2.clock == 1700000100 && r2.sleep_s == 7200);
    CHECK_EQ(r2.s.seq, 12);
    CHECK_EQ(r2.wakes, 9);
    CHECK(r2.s.active);
    CHECK_EQ(r2.spent_n, 0);
    /* the tickets used as M1 (iog_device_t::spent): the largest record, a peer ID of 64
     * bytes and all of them, fits the sketch's RTC memory */
    iog_id_set(&r.s.peer, "gggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggg", IOG_ID_MAX);
    r.spent_n = IOG_SPENT_TICKETS;
    for (unsigned i = 0; i < IOG_SPENT_TICKETS; i++) {
        memset(r.spent[i].sid, (int)(0x10 + i), sizeof(r.spent[i].sid));
        r.spent[i].expires = 1700000600u + i;
    }
    n = iog_rec_rtc_encode(&r, b, sizeof(b));
    printf("store: the largest RTC record: %d bytes framed (at most %d)\n", n + IOG_STORE_OVERHEAD,
           IOG_STORE_RTC_MAX);
    CHECK(n > 0 && n + IOG_STORE_OVERHEAD <= IOG_STORE_RTC_MAX);
    CHECK_EQ(iog_rec_rtc_decode(b, (size_t)n, &r2), 0);
    CHECK_EQ(r2.spent_n, IOG_SPENT_TICKETS);
    CHECK_MEM(r2.spent, r.spent, sizeof(r.spent));
    CHECK_EQ(iog_rec_rtc_decode(b, (size_t)n - 1, &r2), -EBADMSG);
    /* a free entry (expiry 0), the last one's here, is neither written nor read */
    memset(b + n - 8, 0, 8);
    CHECK_EQ(iog_rec_rtc_decode(b, (size_t)n, &r2), -EBADMSG);
    r.spent[IOG_SPENT_TICKETS - 1].expires = 0;
    CHECK_EQ(iog_rec_rtc_encode(&r, b, sizeof(b)), -ENOBUFS);
    r.spent_n = IOG_SPENT_TICKETS + 1; /* more than the device holds */
    CHECK_EQ(iog_rec_rtc_encode(&r, b, sizeof(b)), -ENOBUFS);
    r.spent_n = 0;
    /* without a session: the clock, the sleep and the wake count all the same */
    r.has_session = 0;
    n = iog_rec_rtc_encode(&r, b, sizeof(b));
    CHECK_EQ(iog_rec_rtc_decode(b, (size_t)n, &r2), 0);
    CHECK(!r2.has_session && r2.clock == 1700000100 && r2.sleep_s == 7200 && r2.wakes == 9);
    r.has_session = 1;
    /* a counter above its mark would reuse numbers after the next cold start */
    r.member_seq = 301;
    n = iog_rec_rtc_encode(&r, b, sizeof(b));
    CHECK_EQ(iog_rec_rtc_decode(b, (size_t)n, &r2), -EBADMSG);
}

void test_store(void)
{
    test_frame();
    test_settings();
    test_member_rtc();
}
