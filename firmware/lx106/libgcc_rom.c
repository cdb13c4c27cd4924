/*
 * The libgcc helpers that live in the ESP8266 mask ROM (see rom.ld), for the
 * QEMU test image only: QEMU has no copy of that ROM. Written with shifts and
 * 32-bit multiplies only, so they cannot call themselves.
 */
#include <stdint.h>

uint32_t __udivsi3(uint32_t n, uint32_t d);
uint32_t __umodsi3(uint32_t n, uint32_t d);
int32_t __divsi3(int32_t n, int32_t d);
uint64_t __umulsidi3(uint32_t a, uint32_t b);
uint64_t __muldi3(uint64_t a, uint64_t b);
uint64_t __udivdi3(uint64_t n, uint64_t d);
uint64_t __umoddi3(uint64_t n, uint64_t d);
int64_t __divdi3(int64_t n, int64_t d);

static uint64_t udivmod64(uint64_t n, uint64_t d, uint64_t *rem)
{
    uint64_t q = 0, r = 0;
    for (int i = 63; i >= 0; i--) {
        r = (r << 1) | ((n >> i) & 1);
        if (r >= d) {
            r -= d;
            q |= (uint64_t)1 << i;
        }
    }
    *rem = r;
    return q;
}

static uint32_t udivmod32(uint32_t n, uint32_t d, uint32_t *rem)
{
    uint32_t q = 0, r = 0;
    for (int i = 31; i >= 0; i--) {
        r = (r << 1) | ((n >> i) & 1);
        if (r >= d) {
            r -= d;
            q |= 1u << i;
        }
    }
    *rem = r;
    return q;
}

uint32_t __udivsi3(uint32_t n, uint32_t d)
{
    uint32_t r;
    return udivmod32(n, d, &r);
}

uint32_t __umodsi3(uint32_t n, uint32_t d)
{
    uint32_t r;
    udivmod32(n, d, &r);
    return r;
}

int32_t __divsi3(int32_t n, int32_t d)
{
    uint32_t r;
    uint32_t q = udivmod32(n < 0 ? 0u - (uint32_t)n : (uint32_t)n,
                           d < 0 ? 0u - (uint32_t)d : (uint32_t)d, &r);
    return ((n < 0) != (d < 0)) ? (int32_t)(0u - q) : (int32_t)q;
}

uint64_t __umulsidi3(uint32_t a, uint32_t b)
{
    uint32_t al = a & 0xFFFF, ah = a >> 16, bl = b & 0xFFFF, bh = b >> 16;
    uint64_t lo = (uint64_t)(al * bl);
    uint64_t mid = (uint64_t)(al * bh) + (uint64_t)(ah * bl);
    uint64_t hi = (uint64_t)(ah * bh);
    return lo + (mid << 16) + (hi << 32);
}

uint64_t __muldi3(uint64_t a, uint64_t b)
{
    uint64_t r = __umulsidi3((uint32_t)a, (uint32_t)b);
    r += (uint64_t)((uint32_t)(a >> 32) * (uint32_t)b) << 32;
    r += (uint64_t)((uint32_t)a * (uint32_t)(b >> 32)) << 32;
    return r;
}

uint64_t __udivdi3(uint64_t n, uint64_t d)
{
    uint64_t r;
    return udivmod64(n, d, &r);
}

uint64_t __umoddi3(uint64_t n, uint64_t d)
{
    uint64_t r;
    udivmod64(n, d, &r);
    return r;
}

int64_t __divdi3(int64_t n, int64_t d)
{
    uint64_t r;
    uint64_t q = udivmod64(n < 0 ? 0 - (uint64_t)n : (uint64_t)n,
                           d < 0 ? 0 - (uint64_t)d : (uint64_t)d, &r);
    return ((n < 0) != (d < 0)) ? (int64_t)(0 - q) : (int64_t)q;
}
