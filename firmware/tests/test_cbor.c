/*
 * CBOR: encodings from RFC 8949 Appendix A, and every rejection PROTOCOL.md §1
 * names.
 */
#include <errno.h>

#include "iog_cbor.h"
#include "unit.h"

static void enc_int(int64_t v, const char *hex)
{
    uint8_t buf[16], want[16];
    iog_cbor_enc_t e;
    iog_cbor_enc_init(&e, buf, sizeof(buf));
    iog_cbor_put_int(&e, v);
    size_t n = unit_hex(hex, want, sizeof(want));
    CHECK_EQ(iog_cbor_enc_finish(&e), n);
    CHECK_MEM(buf, want, n);
    /* and back */
    iog_cbor_dec_t d;
    int64_t got = 0;
    iog_cbor_dec_init(&d, buf, n);
    CHECK_EQ(iog_cbor_get_int(&d, &got), 0);
    CHECK(got == v);
    CHECK(iog_cbor_at_end(&d));
}

static void test_rfc8949_ints(void)
{
    enc_int(0, "00");
    enc_int(1, "01");
    enc_int(10, "0a");
    enc_int(23, "17");
    enc_int(24, "1818");
    enc_int(25, "1819");
    enc_int(100, "1864");
    enc_int(1000, "1903e8");
    enc_int(1000000, "1a000f4240");
    enc_int(1000000000000LL, "1b000000e8d4a51000");
    enc_int(-1, "20");
    enc_int(-10, "29");
    enc_int(-100, "3863");
    enc_int(-1000, "3903e7");
    enc_int(-90000000, "3a055d4a7f");
    enc_int(INT64_MIN, "3b7fffffffffffffff");
    /* 18446744073709551615 as uint */
    uint8_t buf[9];
    iog_cbor_enc_t e;
    iog_cbor_enc_init(&e, buf, sizeof(buf));
    iog_cbor_put_uint(&e, UINT64_MAX);
    CHECK_EQ(iog_cbor_enc_finish(&e), 9);
    CHECK(buf[0] == 0x1b && buf[1] == 0xff && buf[8] == 0xff);
}

static void test_rfc8949_structures(void)
{
    uint8_t buf[64], want[64];
    iog_cbor_enc_t e;
    size_t n;

    /* [1, [2, 3], [4, 5]] */
    iog_cbor_enc_init(&e, buf, sizeof(buf));
    iog_cbor_put_array(&e, 3);
    iog_cbor_put_uint(&e, 1);
    iog_cbor_put_array(&e, 2);
    iog_cbor_put_uint(&e, 2);
    iog_cbor_put_uint(&e, 3);
    iog_cbor_put_array(&e, 2);
    iog_cbor_put_uint(&e, 4);
    iog_cbor_put_uint(&e, 5);
    n = unit_hex("8301820203820405", want, sizeof(want));
    CHECK_EQ(iog_cbor_enc_finish(&e), n);
    CHECK_MEM(buf, want, n);
    CHECK_EQ(iog_cbor_check(buf, n), 0);

    /* {1: 2, 3: 4}, h'01020304', "IETF", "\u00fc" */
    iog_cbor_enc_init(&e, buf, sizeof(buf));
    iog_cbor_put_map(&e, 2);
    iog_cbor_put_uint(&e, 1);
    iog_cbor_put_uint(&e, 2);
    iog_cbor_put_uint(&e, 3);
    iog_cbor_put_uint(&e, 4);
    iog_cbor_put_bstr(&e, "\x01\x02\x03\x04", 4);
    iog_cbor_put_cstr(&e, "IETF");
    iog_cbor_put_tstr(&e, "\xc3\xbc", 2);
    n = unit_hex("a201020304 4401020304 6449455446 62c3bc", want, sizeof(want));
    CHECK_EQ(iog_cbor_enc_finish(&e), n);
    CHECK_MEM(buf, want, n);

    /* a 24-byte string takes a 2-byte head */
    uint8_t s24[24] = { 0 };
    iog_cbor_enc_init(&e, buf, sizeof(buf));
    iog_cbor_put_bstr(&e, s24, sizeof(s24));
    CHECK_EQ(iog_cbor_enc_finish(&e), 26);
    CHECK(buf[0] == 0x58 && buf[1] == 24);

    /* too small a buffer is a sticky -ENOBUFS */
    iog_cbor_enc_init(&e, buf, 3);
    iog_cbor_put_cstr(&e, "IETF");
    iog_cbor_put_uint(&e, 1);
    CHECK_EQ(iog_cbor_enc_finish(&e), -ENOBUFS);
}

static void test_decode_typed(void)
{
    uint8_t b[64];
    size_t n = unit_hex("a3 01 6449455446 20 4401020304 0a 83010203", b, sizeof(b));
    iog_cbor_dec_t d;
    size_t m;
    int64_t k;
    const uint8_t *p;
    CHECK_EQ(iog_cbor_check(b, n), 0);
    iog_cbor_dec_init(&d, b, n);
    CHECK_EQ(iog_cbor_get_map(&d, &m), 0);
    CHECK_EQ(m, 3);
    CHECK_EQ(iog_cbor_get_key(&d, &k), 0);
    CHECK_EQ(k, 1);
    /* wrong type leaves the cursor in place */
    CHECK_EQ(iog_cbor_get_bstr(&d, &p, &m), -EBADMSG);
    CHECK_EQ(iog_cbor_get_tstr(&d, &p, &m), 0);
    CHECK_EQ(m, 4);
    CHECK_MEM(p, "IETF", 4);
    CHECK_EQ(iog_cbor_get_key(&d, &k), 0);
    CHECK_EQ(k, -1);
    CHECK_EQ(iog_cbor_get_bstr(&d, &p, &m), 0);
    CHECK_EQ(m, 4);
    CHECK_EQ(iog_cbor_get_key(&d, &k), 0);
    CHECK_EQ(k, 10);
    CHECK_EQ(iog_cbor_skip(&d), 0);
    CHECK(iog_cbor_at_end(&d));
}

static void reject(const char *hex, int want)
{
    uint8_t b[200];
    size_t n = unit_hex(hex, b, sizeof(b));
    int r = iog_cbor_check(b, n);
    CHECK_EQ(r, want);
    if (r != want) {
        printf("  input %s\n", hex);
    }
}

static void test_rejections(void)
{
    reject("5f42010243030405ff", -ENOTSUP);  /* indefinite bstr */
    reject("9f018202039f0405ffff", -ENOTSUP); /* indefinite array */
    reject("bf616101ff", -ENOTSUP);           /* indefinite map */
    reject("c11a514b67b0", -ENOTSUP);         /* tag 1 */
    reject("f93c00", -ENOTSUP);               /* half float */
    reject("f5", -ENOTSUP);                   /* true */
    reject("a2 01 02 01 03", -EBADMSG);       /* duplicate key */
    reject("a2 6161 01 6161 02", -EBADMSG);   /* duplicate text key */
    reject("1c", -EBADMSG);                   /* reserved AI */
    reject("1a0000", -EBADMSG);               /* truncated argument */
    reject("44 0102", -EBADMSG);              /* truncated string */
    reject("62 c328", -EBADMSG);              /* invalid UTF-8 */
    reject("62 c0af", -EBADMSG);              /* overlong UTF-8 */
    reject("63 eda080", -EBADMSG);            /* UTF-16 surrogate */
    reject("01 02", -EBADMSG);                /* trailing bytes */
    reject("", -EBADMSG);                     /* nothing */
    /* nesting: 8 levels accepted, 9 rejected */
    reject("8181818181818181 00", 0);
    reject("818181818181818181 00", -EBADMSG);
    reject("a1 01 a1 01 a1 01 a1 01 a1 01 a1 01 a1 01 a1 01 00", 0);
    reject("a1 01 a1 01 a1 01 a1 01 a1 01 a1 01 a1 01 a1 01 a1 01 00", -EBADMSG);
    /* array of 64 ok, 65 rejected; map of 32 pairs ok, 33 rejected */
    char big[400];
    strcpy(big, "9840");
    for (int i = 0; i < 64; i++) {
        strcat(big, "00");
    }
    reject(big, 0);
    strcpy(big, "9841");
    for (int i = 0; i < 65; i++) {
        strcat(big, "00");
    }
    reject(big, -EBADMSG);
    strcpy(big, "b820");
    for (int i = 0; i < 32; i++) {
        char kv[8];
        snprintf(kv, sizeof(kv), "18%02x00", i + 24);
        strcat(big, kv);
    }
    reject(big, 0);
    strcpy(big, "b821");
    for (int i = 0; i < 33; i++) {
        char kv[8];
        snprintf(kv, sizeof(kv), "18%02x00", i + 24);
        strcat(big, kv);
    }
    reject(big, -EBADMSG);
    /* a huge declared length must not wrap the cursor */
    reject("5bffffffffffffffff00", -EBADMSG);
    reject("9bffffffffffffffff", -EBADMSG);
}

void test_cbor(void)
{
    test_rfc8949_ints();
    test_rfc8949_structures();
    test_decode_typed();
    test_rejections();
}
