/*
 * Crypto glue on BearSSL. No primitive is implemented here.
 */
#include <errno.h>
#include <string.h>

#if defined(ARDUINO_ARCH_ESP8266)
#include <bearssl/bearssl.h>
#else
#include "bearssl.h"
#endif
#include "iog_crypto.h"

#ifdef IOG_COUNT_OPS
iog_ops_t iog_ops;
#endif

/* P-256 with the 15-bit constant-time code: no 32x32->64 multiply needed. */
#define EC_IMPL (&br_ec_p256_m15)

#if defined(ARDUINO_ARCH_ESP8266)
/* run on BearSSL's own stack: see iog_crypto.h and arduino/IoTGuard/iog_thunks.cpp */
int thunk_iog_ec_sign_impl(const uint8_t *priv, const uint8_t *hash, uint8_t *sig);
int thunk_iog_ec_verify_impl(const uint8_t *pub, const uint8_t *hash, const uint8_t *sig);
int thunk_iog_ec_mul_impl(uint8_t *point, const uint8_t *scalar);
int thunk_iog_ec_pub_impl(const uint8_t *priv, uint8_t *pub);
#define EC_CALL(f) thunk_##f
#else
#define EC_CALL(f) f
#endif

int iog_ec_sign_impl(const uint8_t *priv, const uint8_t *hash, uint8_t *sig)
{
    br_ec_private_key sk = { BR_EC_secp256r1, (unsigned char *)priv, IOG_P256_PRIV_LEN };
    return br_ecdsa_i15_sign_raw(EC_IMPL, &br_sha256_vtable, hash, &sk, sig) == IOG_SIG_LEN;
}

int iog_ec_verify_impl(const uint8_t *pub, const uint8_t *hash, const uint8_t *sig)
{
    br_ec_public_key pk = { BR_EC_secp256r1, (unsigned char *)pub, IOG_P256_PUB_LEN };
    return br_ecdsa_i15_vrfy_raw(EC_IMPL, hash, IOG_SHA256_LEN, &pk, sig, IOG_SIG_LEN) == 1;
}

int iog_ec_mul_impl(uint8_t *point, const uint8_t *scalar)
{
    return EC_IMPL->mul(point, IOG_P256_PUB_LEN, scalar, IOG_P256_PRIV_LEN, BR_EC_secp256r1) == 1;
}

int iog_ec_pub_impl(const uint8_t *priv, uint8_t *pub)
{
    br_ec_private_key sk = { BR_EC_secp256r1, (unsigned char *)priv, IOG_P256_PRIV_LEN };
    uint8_t tmp[BR_EC_KBUF_PUB_MAX_SIZE];
    br_ec_public_key pk;
    if (br_ec_compute_pub(EC_IMPL, &pk, tmp, &sk) != IOG_P256_PUB_LEN) {
        return 0;
    }
    memcpy(pub, pk.q, IOG_P256_PUB_LEN);
    return 1;
}

void iog_sha256_init(iog_sha256_ctx_t *c)
{
    br_sha256_init(c);
}

void iog_sha256_update(iog_sha256_ctx_t *c, const void *d, size_t n)
{
    br_sha256_update(c, d, n);
}

void iog_sha256_final(iog_sha256_ctx_t *c, uint8_t out[IOG_SHA256_LEN])
{
    br_sha256_out(c, out);
}

void iog_sha256(const void *d, size_t n, uint8_t out[IOG_SHA256_LEN])
{
    br_sha256_context c;
    br_sha256_init(&c);
    br_sha256_update(&c, d, n);
    br_sha256_out(&c, out);
}

int iog_hkdf(const uint8_t *salt, size_t salt_len, const uint8_t *ikm, size_t ikm_len,
             const uint8_t *info, size_t info_len, uint8_t *out, size_t out_len)
{
    if (out_len > 255u * 32u) {
        return -EINVAL;
    }
    br_hkdf_context hc;
    /* RFC 5869: an absent salt is HashLen zero bytes, the same as an empty one */
    br_hkdf_init(&hc, &br_sha256_vtable, salt_len ? salt : BR_HKDF_NO_SALT, salt_len);
    br_hkdf_inject(&hc, ikm, ikm_len);
    br_hkdf_flip(&hc);
    br_hkdf_produce(&hc, info, info_len, out, out_len);
    iog_wipe(&hc, sizeof(hc));
    return 0;
}

void iog_hmac_sha256(const uint8_t *key, size_t key_len, const void *d, size_t n,
                     uint8_t out[IOG_SHA256_LEN])
{
    br_hmac_key_context kc;
    br_hmac_context hc;
    br_hmac_key_init(&kc, &br_sha256_vtable, key, key_len);
    br_hmac_init(&hc, &kc, 0);
    br_hmac_update(&hc, d, n);
    br_hmac_out(&hc, out);
    iog_wipe(&kc, sizeof(kc));
    iog_wipe(&hc, sizeof(hc));
}

int iog_p256_keygen(const iog_platform_t *plat, uint8_t priv[IOG_P256_PRIV_LEN],
                    uint8_t pub[IOG_P256_PUB_LEN])
{
    uint8_t seed[48];
    int r = plat->random(plat->ctx, seed, sizeof(seed));
    if (r) {
        return r;
    }
    br_hmac_drbg_context rng;
    br_hmac_drbg_init(&rng, &br_sha256_vtable, seed, sizeof(seed));
    iog_wipe(seed, sizeof(seed));
    br_ec_private_key sk;
    /* br_ec_keygen draws until the scalar is in [1, n-1] */
    size_t n = br_ec_keygen(&rng.vtable, EC_IMPL, &sk, priv, BR_EC_secp256r1);
    iog_wipe(&rng, sizeof(rng));
    if (n != IOG_P256_PRIV_LEN) {
        return -EIO;
    }
    return iog_p256_public(priv, pub);
}

int iog_p256_public(const uint8_t priv[IOG_P256_PRIV_LEN], uint8_t pub[IOG_P256_PUB_LEN])
{
    IOG_OP(pub);
    return EC_CALL(iog_ec_pub_impl)(priv, pub) ? 0 : -EINVAL;
}

int iog_p256_check(const uint8_t pub[IOG_P256_PUB_LEN])
{
    /* multiplying by 1 decodes the point and fails off the curve */
    static const uint8_t one[IOG_P256_PRIV_LEN] = { [IOG_P256_PRIV_LEN - 1] = 1 };
    uint8_t tmp[IOG_P256_PUB_LEN];
    if (pub[0] != 0x04) {
        return -EINVAL;
    }
    memcpy(tmp, pub, sizeof(tmp));
    IOG_OP(ecdh);
    return EC_CALL(iog_ec_mul_impl)(tmp, one) ? 0 : -EINVAL;
}

int iog_es256_sign(const uint8_t priv[IOG_P256_PRIV_LEN], const uint8_t hash[IOG_SHA256_LEN],
                   uint8_t sig[IOG_SIG_LEN])
{
    IOG_OP(sign);
    return EC_CALL(iog_ec_sign_impl)(priv, hash, sig) ? 0 : -EINVAL;
}

int iog_es256_verify(const uint8_t pub[IOG_P256_PUB_LEN], const uint8_t hash[IOG_SHA256_LEN],
                     const uint8_t sig[IOG_SIG_LEN])
{
    IOG_OP(verify);
    return EC_CALL(iog_ec_verify_impl)(pub, hash, sig) ? 0 : -EBADMSG;
}

int iog_ecdh(const uint8_t priv[IOG_P256_PRIV_LEN], const uint8_t peer[IOG_P256_PUB_LEN],
             uint8_t z[32])
{
    uint8_t pt[IOG_P256_PUB_LEN];
    if (peer[0] != 0x04) {
        return -EINVAL;
    }
    memcpy(pt, peer, sizeof(pt));
    IOG_OP(ecdh);
    if (!EC_CALL(iog_ec_mul_impl)(pt, priv)) {
        iog_wipe(pt, sizeof(pt));
        return -EINVAL;
    }
    memcpy(z, pt + 1, 32);
    iog_wipe(pt, sizeof(pt));
    return 0;
}

/* GCM over bitsliced constant-time AES and the 32-bit GHASH. */
static void gcm_start(br_gcm_context *gc, br_aes_ct_ctr_keys *ak, const uint8_t *key,
                      const uint8_t *nonce, const uint8_t *aad, size_t aad_len)
{
    br_aes_ct_ctr_init(ak, key, IOG_AES_KEY_LEN);
    br_gcm_init(gc, &ak->vtable, br_ghash_ctmul32);
    br_gcm_reset(gc, nonce, IOG_GCM_NONCE_LEN);
    br_gcm_aad_inject(gc, aad, aad_len);
    br_gcm_flip(gc);
}

void iog_gcm_seal(const uint8_t key[IOG_AES_KEY_LEN], const uint8_t nonce[IOG_GCM_NONCE_LEN],
                  const uint8_t *aad, size_t aad_len, const uint8_t *pt, size_t len,
                  uint8_t *out)
{
    br_gcm_context gc;
    br_aes_ct_ctr_keys ak;
    IOG_OP(aead);
    gcm_start(&gc, &ak, key, nonce, aad, aad_len);
    if (out != pt && len) {
        memmove(out, pt, len);
    }
    br_gcm_run(&gc, 1, out, len);
    br_gcm_get_tag(&gc, out + len);
    iog_wipe(&ak, sizeof(ak));
    iog_wipe(&gc, sizeof(gc));
}

int iog_gcm_open(const uint8_t key[IOG_AES_KEY_LEN], const uint8_t nonce[IOG_GCM_NONCE_LEN],
                 const uint8_t *aad, size_t aad_len, const uint8_t *ct, size_t ct_len,
                 uint8_t *out)
{
    if (ct_len < IOG_GCM_TAG_LEN) {
        return -EBADMSG;
    }
    size_t len = ct_len - IOG_GCM_TAG_LEN;
    uint8_t tag[IOG_GCM_TAG_LEN];
    memcpy(tag, ct + len, sizeof(tag)); /* before an in-place decrypt can touch it */
    br_gcm_context gc;
    br_aes_ct_ctr_keys ak;
    IOG_OP(aead);
    gcm_start(&gc, &ak, key, nonce, aad, aad_len);
    if (out != ct && len) {
        memmove(out, ct, len);
    }
    br_gcm_run(&gc, 0, out, len);
    uint32_t ok = br_gcm_check_tag(&gc, tag);
    iog_wipe(&ak, sizeof(ak));
    iog_wipe(&gc, sizeof(gc));
    if (!ok) {
        iog_wipe(out, len);
        return -EBADMSG;
    }
    return (int)len;
}

int iog_ct_eq(const void *a, const void *b, size_t n)
{
    const uint8_t *x = a, *y = b;
    uint8_t d = 0;
    for (size_t i = 0; i < n; i++) {
        d |= x[i] ^ y[i];
    }
    return d == 0;
}

int iog_hash_eq(const uint8_t *a, const uint8_t *b)
{
    return iog_ct_eq(a, b, IOG_SHA256_LEN);
}

void iog_wipe(void *p, size_t n)
{
    volatile uint8_t *v = p;
    while (n--) {
        *v++ = 0;
    }
}

void iog_rng_mix(iog_rng_t *r, const void *entropy, size_t n)
{
    if (!r->seeded) {
        br_hmac_drbg_init(&r->drbg, &br_sha256_vtable, entropy, n);
        r->seeded = 1;
    }
    else {
        br_hmac_drbg_update(&r->drbg, entropy, n);
    }
}

int iog_rng_fill(iog_rng_t *r, void *out, size_t n)
{
    if (!r->seeded) {
        return -EIO;
    }
    br_hmac_drbg_generate(&r->drbg, out, n);
    return 0;
}
