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
        uint32_t v = 0;
        for (size_t j = 0; j < 3; j++) { /* past the end: zeros */
            v = v << 8 | (i + j < n ? p[i + j] : 0u);
        }
        /* 6 bits each; the j-th digit needs byte j - 1 (i < n: the first two always) */
        for (size_t j = 0; j < 4; j++) {
            out[o++] = j <= n - i ? b64[(v >> (18 - 6 * j)) & 63] : '=';
        }
    }
    out[o] = 0;
    return (int)o;
}

int iog_b64_decode(const char *s, uint8_t *out, size_t cap)
{
    size_t n = strlen(s), o = 0;
    uint32_t v = 0; /* the digits so far, 6 bits each; a group's 24 bits are its low ones */
    int pad = 0;
    if (n == 0 || n % 4) {
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        const char *q = strchr(b64, s[i]); /* s[i] is not the NUL: i < n */
        if (s[i] == '=' && i + 2 >= n) { /* the last group's third or fourth digit */
            pad++;
            q = b64;
        }
        else if (!q || pad) { /* after a '=' only another one */
            return -EINVAL;
        }
        v = v << 6 | (uint32_t)(q - b64);
        for (int j = 0; i % 4 == 3 && j < 3 - pad; j++) { /* a group's bytes */
            if (o >= cap) {
                return -EMSGSIZE;
            }
            out[o++] = (uint8_t)(v >> (16 - 8 * j));
        }
    }
    return (int)o;
}
