/**
 * @file
 * @brief Base64 (RFC 4648 §4, padded) for the console's credential and
 *        public key lines, and the host tools.
 */
#ifndef IOG_B64_H
#define IOG_B64_H

#include <stddef.h>
#include <stdint.h>

/**
 * @brief Encodes @p n bytes of @p p into @p out (NUL-terminated).
 * @return the length without the NUL, or -ENOBUFS when @p cap is too small.
 */
int iog_b64_encode(const uint8_t *p, size_t n, char *out, size_t cap);

/**
 * @brief Decodes the NUL-terminated, padded base64 @p s into at most @p cap
 *        bytes of @p out. Strict: no white space, padding only at the end.
 * @return the byte count, -EINVAL for what is not base64, -EMSGSIZE when
 *         more than @p cap bytes would result.
 */
int iog_b64_decode(const char *s, uint8_t *out, size_t cap);

#endif
