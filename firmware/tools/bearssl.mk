# Compiles the needed BearSSL subset from the apt source into one archive.
# Called by the firmware Makefile with OUT, CC, CFLAGS, BR, AR and LIB set.
# Only what the suite uses (P-256 m15/i15, SHA-256, HMAC, HKDF, HMAC_DRBG,
# constant-time AES-CTR and 32-bit GHASH for GCM): keeps CI builds short.
SRCS := $(wildcard $(addprefix $(BR)src/, \
    aead/gcm.c codec/*.c \
    ec/ec_p256_m15.c ec/ec_keygen.c ec/ec_pubkey.c ec/ec_secp256r1.c ec/ec_secp384r1.c ec/ec_secp521r1.c ec/ecdsa_i15_*.c \
    hash/sha2small.c hash/ghash_ctmul32.c int/i15_*.c int/i32_div32.c kdf/hkdf.c \
    mac/hmac.c rand/hmac_drbg.c \
    symcipher/aes_ct.c symcipher/aes_ct_enc.c symcipher/aes_ct_ctr.c symcipher/aes_common.c))
OBJS := $(patsubst $(BR)src/%.c,$(OUT)/%.o,$(SRCS))

$(LIB): $(OBJS)
	@rm -f $@
	@$(AR) rcs $@ $^

$(OUT)/%.o: $(BR)src/%.c
	@mkdir -p $(dir $@)
	@$(CC) $(CFLAGS) -I$(BR)inc -I$(BR)src -c $< -o $@
