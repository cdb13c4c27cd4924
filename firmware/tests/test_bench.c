/*
 * Cost of each crypto operation a device performs. The platform supplies the
 * clock: nanoseconds on the host, instructions on lx106 under QEMU -icount.
 * Benchmarks report; they never fail a test (STYLE.md).
 */
#include "iog_proto.h"
#include "unit.h"

uint64_t unit_clock(void);
void unit_report(const char *op, uint64_t delta, unsigned reps);

void test_bench(void)
{
    uint8_t priv[32], pub[65], peer_priv[32], peer_pub[65], hash[32], sig[64], z[32], km[32];
    uint8_t nd[16] = { 1 }, nch[16] = { 2 }, thumb[32] = { 3 };
    uint8_t key[16] = { 4 }, iv[12] = { 5 }, msg[64 + 16] = { 6 }, aad[40] = { 7 };
    iog_id_t cl, id;
    iog_member_keys_t mk;
    fake_net_t *const np = &unit_net;
#ifdef IOG_TEST_LX106
    const unsigned reps = 1;
#else
    const unsigned reps = 20;
#endif
    fake_net_init(np);
    iog_p256_keygen(&np->plat, priv, pub);
    iog_p256_keygen(&np->plat, peer_priv, peer_pub);
    iog_id_set(&cl, "lab-1", 5);
    iog_id_set(&id, "m1", 2);
    iog_sha256("x", 1, hash);

    uint64_t t = unit_clock();
    for (unsigned i = 0; i < reps; i++) {
        iog_es256_sign(priv, hash, sig);
    }
    unit_report("ES256 sign", unit_clock() - t, reps);

    t = unit_clock();
    int ok = 0;
    for (unsigned i = 0; i < reps; i++) {
        ok += iog_es256_verify(pub, hash, sig) == 0;
    }
    unit_report("ES256 verify", unit_clock() - t, reps);
    CHECK_EQ(ok, reps);

    t = unit_clock();
    for (unsigned i = 0; i < reps; i++) {
        iog_ecdh(priv, peer_pub, z);
        iog_derive_km(z, nd, nch, &cl, &id, thumb, km);
        iog_derive_member_keys(km, &mk);
    }
    unit_report("ECDH+HKDF (K_m and 5 keys)", unit_clock() - t, reps);

    t = unit_clock();
    for (unsigned i = 0; i < reps * 10; i++) {
        iog_gcm_seal(key, iv, aad, sizeof(aad), msg, 64, msg);
    }
    unit_report("AES-128-GCM seal 64 B", unit_clock() - t, reps * 10);

    t = unit_clock();
    for (unsigned i = 0; i < reps * 10; i++) {
        iog_sha256(msg, 64, hash);
    }
    unit_report("SHA-256 64 B", unit_clock() - t, reps * 10);
}
