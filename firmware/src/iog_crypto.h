/**
 * @file
 * @brief The one crypto suite of PROTOCOL.md §1 over BearSSL.
 *
 * ES256 with raw r||s signatures, ECDH on P-256 (x-coordinate), SHA-256,
 * HKDF-SHA-256 (RFC 5869, BearSSL br_hkdf), AES-128-GCM with a 16-byte tag.
 * The constant-time 15-bit BearSSL code is used (br_ec_p256_m15,
 * br_ecdsa_i15, br_aes_ct, br_ghash_ctmul32): it needs no 64-bit multiply,
 * which the ESP8266's lx106 core lacks. Nothing here allocates; randomness
 * comes from the platform hook.
 */
#ifndef IOG_CRYPTO_H
#define IOG_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#if defined(ARDUINO_ARCH_ESP8266)
#include <bearssl/bearssl_hash.h> /* the Arduino core's BearSSL */
#include <bearssl/bearssl_rand.h>
#else
#include "bearssl_hash.h"
#include "bearssl_rand.h"
#endif
#include "iog_platform.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifdef IOG_COUNT_OPS
/**
 * Crypto operations done since start, counted when the core is compiled
 * with -DIOG_COUNT_OPS (the host and emulator builds; not the lx106 image,
 * which keeps the core free of writable globals).
 */
typedef struct {
    uint32_t sign;   /**< ES256 signatures */
    uint32_t verify; /**< ES256 verifications */
    uint32_t ecdh;   /**< ECDH (and point checks) */
    uint32_t pub;    /**< public keys computed (key generation) */
    uint32_t aead;   /**< AES-128-GCM seals and opens */
} iog_ops_t;
/** The counters. */
extern iog_ops_t iog_ops;
#define IOG_OP(x) (iog_ops.x++)
#else
#define IOG_OP(x) ((void)0)
#endif

#define IOG_P256_PRIV_LEN 32 /**< private scalar */
#define IOG_P256_PUB_LEN 65  /**< uncompressed point 0x04 || x || y */
#define IOG_SIG_LEN 64       /**< ES256 r || s */
#define IOG_SHA256_LEN 32    /**< SHA-256 digest */
#define IOG_AES_KEY_LEN 16   /**< AES-128 key */
#define IOG_GCM_NONCE_LEN 12 /**< GCM nonce */
#define IOG_GCM_TAG_LEN 16   /**< GCM tag */

/** Incremental SHA-256 (BearSSL context). */
typedef br_sha256_context iog_sha256_ctx_t;

/** Starts an incremental SHA-256. */
void iog_sha256_init(iog_sha256_ctx_t *c);
/** Hashes more bytes. */
void iog_sha256_update(iog_sha256_ctx_t *c, const void *d, size_t n);
/** Writes the digest. */
void iog_sha256_final(iog_sha256_ctx_t *c, uint8_t out[IOG_SHA256_LEN]);
/** One-shot SHA-256. */
void iog_sha256(const void *d, size_t n, uint8_t out[IOG_SHA256_LEN]);

/**
 * @brief HKDF-SHA-256 (RFC 5869): extract with @p salt (may be empty), expand
 *        with @p info to @p out_len bytes.
 * @return 0, or -EINVAL when out_len > 255 * 32.
 */
int iog_hkdf(const uint8_t *salt, size_t salt_len, const uint8_t *ikm, size_t ikm_len,
             const uint8_t *info, size_t info_len, uint8_t *out, size_t out_len);

/**
 * @brief HMAC-SHA-256 (RFC 2104, BearSSL br_hmac) of @p n bytes under a key
 *        of @p key_len bytes.
 */
void iog_hmac_sha256(const uint8_t *key, size_t key_len, const void *d, size_t n,
                     uint8_t out[IOG_SHA256_LEN]);

/**
 * @brief Makes a P-256 key pair from the platform RNG.
 * @return 0 or a negative errno.
 */
int iog_p256_keygen(const iog_platform_t *plat, uint8_t priv[IOG_P256_PRIV_LEN],
                    uint8_t pub[IOG_P256_PUB_LEN]);

/** Computes the public point of @p priv. @return 0 or -EINVAL for a bad scalar. */
int iog_p256_public(const uint8_t priv[IOG_P256_PRIV_LEN], uint8_t pub[IOG_P256_PUB_LEN]);

/** Checks that @p pub is an uncompressed point on P-256. @return 0 or -EINVAL. */
int iog_p256_check(const uint8_t pub[IOG_P256_PUB_LEN]);

/**
 * @brief ES256 signature of a SHA-256 @p hash (RFC 6979 deterministic nonce).
 * @return 0 or -EINVAL.
 */
int iog_es256_sign(const uint8_t priv[IOG_P256_PRIV_LEN], const uint8_t hash[IOG_SHA256_LEN],
                   uint8_t sig[IOG_SIG_LEN]);

/**
 * @brief Verifies an ES256 r||s signature over a SHA-256 @p hash.
 * @return 0 when valid, -EBADMSG otherwise.
 */
int iog_es256_verify(const uint8_t pub[IOG_P256_PUB_LEN], const uint8_t hash[IOG_SHA256_LEN],
                     const uint8_t sig[IOG_SIG_LEN]);

/**
 * @brief ECDH on P-256: @p z = x-coordinate of priv * peer.
 * @return 0, or -EINVAL when @p peer is not a valid point.
 */
int iog_ecdh(const uint8_t priv[IOG_P256_PRIV_LEN], const uint8_t peer[IOG_P256_PUB_LEN],
             uint8_t z[32]);

/**
 * @brief AES-128-GCM seal: @p out receives ciphertext || tag (@p len + 16
 *        bytes). @p out may equal @p pt.
 */
void iog_gcm_seal(const uint8_t key[IOG_AES_KEY_LEN], const uint8_t nonce[IOG_GCM_NONCE_LEN],
                  const uint8_t *aad, size_t aad_len, const uint8_t *pt, size_t len,
                  uint8_t *out);

/**
 * @brief AES-128-GCM open of @p ct (ciphertext || tag, @p ct_len bytes).
 *
 * @p out receives ct_len - 16 bytes and may equal @p ct. On failure @p out is
 * wiped: no unauthenticated plaintext is released.
 * @return the plaintext length, or -EBADMSG.
 */
int iog_gcm_open(const uint8_t key[IOG_AES_KEY_LEN], const uint8_t nonce[IOG_GCM_NONCE_LEN],
                 const uint8_t *aad, size_t aad_len, const uint8_t *ct, size_t ct_len,
                 uint8_t *out);

/**
 * @name Deep-stack EC operations
 * The P-256 operations need more stack than the ESP8266 Arduino loop() has
 * (4 KB). On that core they are called through BearSSL's StackThunk
 * (thunk_iog_ec_*, made with make_stack_thunk() in the sketch's
 * iog_thunks.cpp); elsewhere directly. Use the iog_es256_* / iog_ecdh
 * functions, not these.
 */
/** @{ */
int iog_ec_sign_impl(const uint8_t *priv, const uint8_t *hash, uint8_t *sig);
int iog_ec_verify_impl(const uint8_t *pub, const uint8_t *hash, const uint8_t *sig);
int iog_ec_mul_impl(uint8_t *point, const uint8_t *scalar);
int iog_ec_pub_impl(const uint8_t *priv, uint8_t *pub);
/** @} */

/** Constant-time comparison. @return 1 when equal. */
int iog_ct_eq(const void *a, const void *b, size_t n);
/** iog_ct_eq() of two SHA-256 hashes (thumbprints, roots: IOG_HASH_LEN). */
int iog_hash_eq(const uint8_t *a, const uint8_t *b);

/** Wipes @p n bytes in a way the compiler keeps. */
void iog_wipe(void *p, size_t n);

/**
 * @brief A deterministic random bit generator (HMAC-DRBG over SHA-256,
 *        BearSSL) for a platform whose raw source is a hardware register,
 *        such as the ESP8266's RANDOM_REG32: seed it once from many raw
 *        samples, mix a fresh sample in before each use.
 */
typedef struct {
    br_hmac_drbg_context drbg; /**< state */
    uint8_t seeded;            /**< 1 after iog_rng_mix() */
} iog_rng_t;

/** Seeds @p r with @p n bytes (the first call) or mixes them in. */
void iog_rng_mix(iog_rng_t *r, const void *entropy, size_t n);

/** Fills @p out from @p r. @return 0, or -EIO when never seeded. */
int iog_rng_fill(iog_rng_t *r, void *out, size_t n);

#ifdef __cplusplus
}
#endif

#endif /* IOG_CRYPTO_H */
