/*
 * Cost of each crypto operation a device performs. The platform supplies the
 * clock: nanoseconds on the host, instructions on lx106 under QEMU -icount.
 * Benchmarks report; they never fail a test (STYLE.md).
 */
#include "iog_proto.h"
#include "iog_tlog.h"
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

    /* the device's log check after a join (PROTOCOL.md §9.2) at a CH of 1,000
     * blocks that grew from 600 since the kept checkpoint: the whole check
     * (one verify), and its hashes alone (the paths, the leaf) */
    static uint8_t answer[1000];
    iog_member_t m;
    iog_tlog_cp_t kept, cp;
    iog_proof_t p;
    memset(&m, 0, sizeof(m));
    iog_id_set(&m.ch.cluster, "lab-1", 5);
    memcpy(m.ch.pub, pub, sizeof(pub));
    iog_thumbprint(pub, m.ch.thumb);
    m.height = 777;
    unit_tlog_block(777, m.block);
    int n = unit_tlog_answer(priv, &m.ch, 1000, 777, 600, 1767225600000ull, answer, sizeof(answer));
    CHECK_EQ(iog_proof_decode(answer, (size_t)n, &p), 0);
    printf("bench tlog answer at 1,000 blocks from 600: %d bytes, %u + %u path hashes\n", n,
           (unsigned)p.path.n, (unsigned)p.cons.n);
    iog_tlog_cp_t old = { 600, { 0 } };
    unit_tlog_root(600, old.root);
    ok = 0;
    t = unit_clock();
    for (unsigned i = 0; i < reps; i++) {
        kept = old;
        ok += iog_tlog_check_join(answer, (size_t)n, &m, &kept, NULL) == 0;
    }
    unit_report("tlog check (1,000 blocks)", unit_clock() - t, reps);
    CHECK_EQ(ok, reps);
    kept = old;
    cp = (iog_tlog_cp_t){ 1000, { 0 } };
    unit_tlog_root(1000, cp.root);
    ok = 0;
    t = unit_clock();
    for (unsigned i = 0; i < reps * 10; i++) {
        uint8_t leaf[1 + IOG_HASH_LEN] = { 0x00 };
        memcpy(leaf + 1, m.block, IOG_HASH_LEN);
        iog_sha256(leaf, sizeof(leaf), hash);
        ok += iog_tlog_inclusion(777, hash, &cp, p.path.p, p.path.n) == 0 &&
              iog_tlog_consistency(&kept, &cp, p.cons.p, p.cons.n) == 0;
    }
    unit_report("tlog paths only (1,000)", unit_clock() - t, reps * 10);
    CHECK_EQ(ok, reps * 10);
}
