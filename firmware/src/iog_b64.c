#include "iog_b64.h"

#include <errno.h>
#include <string.h>

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int iog_b64_encode(const uint8_t *p, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    if ((n + 2) / 3 * 4 + 1 > cap) {
        return -ENOBUFS;
    }
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        out[o++] = b64[v >> 18];
        out[o++] = b64[(v >> 12) & 63];
        out[o++] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? b64[v & 63] : '=';
    }
    out[o] = 0;
    return (int)o;
}

int iog_b64_decode(const char *s, uint8_t *out, size_t cap)
{
    size_t n = strlen(s), o = 0;
    if (n == 0 || n % 4) {
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i += 4) {
        uint32_t v = 0;
        int pad = 0;
        for (int j = 0; j < 4; j++) {
            const char *q = s[i + j] ? strchr(b64, s[i + j]) : NULL;
            if (s[i + j] == '=' && i + 4 == n && j >= 2) {
                pad++;
                v <<= 6;
                continue;
            }
            if (!q || pad) {
                return -EINVAL;
            }
            v = v << 6 | (uint32_t)(q - b64);
        }
        for (int j = 0; j < 3 - pad; j++) {
            if (o >= cap) {
                return -EMSGSIZE;
            }
            out[o++] = (uint8_t)(v >> (16 - 8 * j));
        }
    }
    return (int)o;
}
