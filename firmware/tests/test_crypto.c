/*
 * Crypto glue against published vectors: FIPS 180-2 (SHA-256), RFC 4231
 * (HMAC-SHA-256 cases 2 and 6), RFC 5869 (HKDF cases 1 and 3), the GCM spec / NIST (AES-128 test cases 2 and 4),
 * RFC 6979 A.2.5 (deterministic ES256 over "sample"), NIST CAVS ECDH P-256.
 */
#include <errno.h>

#include "iog_crypto.h"
#include "unit.h"

static void test_sha256(void)
{
    uint8_t h[32], want[32];
    iog_sha256("abc", 3, h);
    unit_hex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", want, 32);
    CHECK_MEM(h, want, 32);
    iog_sha256_ctx_t c;
    iog_sha256_init(&c);
    iog_sha256_update(&c, "a", 1);
    iog_sha256_update(&c, "bc", 2);
    iog_sha256_final(&c, h);
    CHECK_MEM(h, want, 32);
}

static void test_hmac(void)
{
    uint8_t mac[32], want[32], key[131];
    /* RFC 4231 4.3: a key shorter than the block */
    iog_hmac_sha256((const uint8_t *)"Jefe", 4, "what do ya want for nothing?", 28, mac);
    unit_hex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", want, 32);
    CHECK_MEM(mac, want, 32);
    /* RFC 4231 4.7: a key longer than the block is hashed first */
    memset(key, 0xaa, sizeof(key));
    iog_hmac_sha256(key, sizeof(key), "Test Using Larger Than Block-Size Key - Hash Key First", 54, mac);
    unit_hex("60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54", want, 32);
    CHECK_MEM(mac, want, 32);
}

static void test_hkdf(void)
{
    uint8_t ikm[22], salt[13], info[10], okm[42], want[42];
    memset(ikm, 0x0b, sizeof(ikm));
    for (int i = 0; i < 13; i++) {
        salt[i] = (uint8_t)i;
    }
    for (int i = 0; i < 10; i++) {
        info[i] = (uint8_t)(0xf0 + i);
    }
    /* RFC 5869 A.1 */
    CHECK_EQ(iog_hkdf(salt, sizeof(salt), ikm, sizeof(ikm), info, sizeof(info), okm, 42), 0);
    unit_hex("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
             "34007208d5b887185865", want, 42);
    CHECK_MEM(okm, want, 42);
    /* RFC 5869 A.3: empty salt and info */
    CHECK_EQ(iog_hkdf(NULL, 0, ikm, sizeof(ikm), NULL, 0, okm, 42), 0);
    unit_hex("8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
             "9d201395faa4b61a96c8", want, 42);
    CHECK_MEM(okm, want, 42);
    CHECK_EQ(iog_hkdf(NULL, 0, ikm, sizeof(ikm), NULL, 0, okm, 255 * 32 + 1), -EINVAL);
}

static void test_gcm(void)
{
    uint8_t key[16], iv[12], pt[64], aad[20], out[80], want[80];
    /* test case 2: zero key, zero IV, one zero block */
    memset(key, 0, 16);
    memset(iv, 0, 12);
    memset(pt, 0, 16);
    iog_gcm_seal(key, iv, NULL, 0, pt, 16, out);
    unit_hex("0388dace60b6a392f328c2b971b2fe78 ab6e47d42cec13bdf53a67b21257bddf", want, 32);
    CHECK_MEM(out, want, 32);

    /* test case 4: 60 bytes with 20 bytes of AAD */
    unit_hex("feffe9928665731c6d6a8f9467308308", key, 16);
    unit_hex("cafebabefacedbaddecaf888", iv, 12);
    size_t pl = unit_hex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
                         "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39", pt, 64);
    size_t al = unit_hex("feedfacedeadbeeffeedfacedeadbeefabaddad2", aad, 20);
    unit_hex("42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
             "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091"
             "5bc94fbc3221a5db94fae95ae7121a47", want, 76);
    CHECK_EQ(pl, 60);
    iog_gcm_seal(key, iv, aad, al, pt, pl, out);
    CHECK_MEM(out, want, 76);

    uint8_t back[80];
    CHECK_EQ(iog_gcm_open(key, iv, aad, al, out, 76, back), 60);
    CHECK_MEM(back, pt, 60);
    /* in place */
    memcpy(back, want, 76);
    CHECK_EQ(iog_gcm_open(key, iv, aad, al, back, 76, back), 60);
    CHECK_MEM(back, pt, 60);
    /* any flipped bit fails and releases nothing */
    out[75] ^= 1;
    memset(back, 0x55, sizeof(back));
    CHECK_EQ(iog_gcm_open(key, iv, aad, al, out, 76, back), -EBADMSG);
    CHECK(back[0] == 0 && back[59] == 0);
    out[75] ^= 1;
    aad[0] ^= 1;
    CHECK_EQ(iog_gcm_open(key, iv, aad, al, out, 76, back), -EBADMSG);
    CHECK_EQ(iog_gcm_open(key, iv, aad, al, out, 15, back), -EBADMSG);
}

static void test_es256(void)
{
    uint8_t priv[32], pub[65], want_pub[65], hash[32], sig[64], want[64];
    unit_hex("c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721", priv, 32);
    unit_hex("04 60fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb6"
             "7903fe1008b8bc99a41ae9e95628bc64f2f1b20c2d7e9f5177a3c294d4462299", want_pub, 65);
    CHECK_EQ(iog_p256_public(priv, pub), 0);
    CHECK_MEM(pub, want_pub, 65);
    CHECK_EQ(iog_p256_check(pub), 0);

    /* RFC 6979 A.2.5, SHA-256, message "sample": the nonce is deterministic */
    iog_sha256("sample", 6, hash);
    CHECK_EQ(iog_es256_sign(priv, hash, sig), 0);
    unit_hex("efd48b2aacb6a8fd1140dd9cd45e81d69d2c877b56aaf991c34d0ea84eaf3716"
             "f7cb1c942d657c41d436c7a1b6e29f65f3e900dbb9aff4064dc4ab2f843acda8", want, 64);
    CHECK_MEM(sig, want, 64);
    CHECK_EQ(iog_es256_verify(pub, hash, sig), 0);
    sig[10] ^= 0x01;
    CHECK_EQ(iog_es256_verify(pub, hash, sig), -EBADMSG);
    sig[10] ^= 0x01;
    hash[0] ^= 0x80;
    CHECK_EQ(iog_es256_verify(pub, hash, sig), -EBADMSG);
    hash[0] ^= 0x80;
    memset(sig + 32, 0, 32); /* s = 0 */
    CHECK_EQ(iog_es256_verify(pub, hash, sig), -EBADMSG);
    /* a point off the curve */
    pub[64] ^= 1;
    CHECK_EQ(iog_p256_check(pub), -EINVAL);
    pub[0] = 0x02;
    CHECK_EQ(iog_p256_check(pub), -EINVAL);
}

static void test_ecdh(void)
{
    uint8_t d[32], q[65], peer[65], z[32], want[32];
    /* NIST CAVS ECDH P-256, COUNT = 0 */
    unit_hex("7d7dc5f71eb29ddaf80d6214632eeae03d9058af1fb6d22ed80badb62bc1a534", d, 32);
    unit_hex("04 700c48f77f56584c5cc632ca65640db91b6bacce3a4df6b42ce7cc838833d287"
             "db71e509e3fd9b060ddb20ba5c51dcc5948d46fbf640dfe0441782cab85fa4ac", peer, 65);
    unit_hex("46fc62106420ff012e54a434fbdd2d25ccc5852060561e68040dd7778997bd7b", want, 32);
    CHECK_EQ(iog_ecdh(d, peer, z), 0);
    CHECK_MEM(z, want, 32);
    CHECK_EQ(iog_p256_public(d, q), 0);
    uint8_t wq[65];
    unit_hex("04 ead218590119e8876b29146ff89ca61770c4edbbf97d38ce385ed281d8a6b230"
             "28af61281fd35e2fa7002523acc85a429cb06ee6648325389f59edfce1405141", wq, 65);
    CHECK_MEM(q, wq, 65);
    peer[40] ^= 1;
    CHECK_EQ(iog_ecdh(d, peer, z), -EINVAL);
}

static void test_keygen(void)
{
    fake_net_t *const np = &unit_net;
    uint8_t a[32], apub[65], b[32], bpub[65], z1[32], z2[32], h[32], sig[64];
    fake_net_init(np);
    CHECK_EQ(iog_p256_keygen(&np->plat, a, apub), 0);
    CHECK_EQ(iog_p256_keygen(&np->plat, b, bpub), 0);
    CHECK(memcmp(a, b, 32) != 0);
    CHECK_EQ(iog_p256_check(apub), 0);
    CHECK_EQ(iog_ecdh(a, bpub, z1), 0);
    CHECK_EQ(iog_ecdh(b, apub, z2), 0);
    CHECK_MEM(z1, z2, 32);
    iog_sha256("m", 1, h);
    CHECK_EQ(iog_es256_sign(a, h, sig), 0);
    CHECK_EQ(iog_es256_verify(apub, h, sig), 0);
    CHECK_EQ(iog_es256_verify(bpub, h, sig), -EBADMSG);
    CHECK(iog_ct_eq("abc", "abc", 3));
    CHECK(!iog_ct_eq("abc", "abd", 3));
}

void test_crypto(void)
{
    test_sha256();
    test_hmac();
    test_hkdf();
    test_gcm();
    test_es256();
    test_ecdh();
    test_keygen();
}
