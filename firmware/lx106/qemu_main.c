/*
 * QEMU lx106 test runner: stdout over semihosting, the CCOUNT register as the
 * benchmark clock. Under `-icount shift=0` QEMU advances its virtual clock one
 * nanosecond per executed instruction and derives CCOUNT from it, so a
 * calibration loop of known length turns CCOUNT deltas into instruction
 * counts. At 80 MHz an lx106 that retires one instruction per cycle needs
 * count / 80 000 ms; real code on the ESP8266 runs slower (flash cache misses,
 * load stalls), so these are lower bounds on latency.
 */
#include <stdint.h>
#include <stdio.h>

#include "unit.h"

uint64_t unit_clock(void);
void unit_report(const char *op, uint64_t delta, unsigned reps);
void lx106_spin(uint32_t n);
int main(void);

static int simcall(int nr, int a, int b, int c)
{
    register int a2 __asm__("a2") = nr;
    register int a3 __asm__("a3") = a;
    register int a4 __asm__("a4") = b;
    register int a5 __asm__("a5") = c;
    __asm__ volatile(".byte 0x00, 0x51, 0x00" : "+r"(a2), "+r"(a3) : "r"(a4), "r"(a5) : "memory");
    return a2;
}

static char line[128];
static unsigned line_len;

static void flush_line(void)
{
    if (line_len) {
        simcall(4, 1, (int)(intptr_t)line, (int)line_len); /* write(1, line, len) */
        line_len = 0;
    }
}

static int sh_putc(char c, FILE *f)
{
    (void)f;
    line[line_len++] = c;
    if (c == '\n' || line_len == sizeof(line)) {
        flush_line();
    }
    return (unsigned char)c;
}

static FILE sh_stdout = FDEV_SETUP_STREAM(sh_putc, NULL, NULL, _FDEV_SETUP_WRITE);
FILE *const stdout = &sh_stdout;
FILE *const stderr = &sh_stdout;

static uint32_t ccount(void)
{
    uint32_t v;
    __asm__ volatile("rsr.ccount %0" : "=a"(v));
    return v;
}

/* 64-bit CCOUNT: the 32-bit register wraps every 2^32 ticks */
static uint64_t ccount_hi;
static uint32_t ccount_last;

uint64_t unit_clock(void)
{
    uint32_t c = ccount();
    if (c < ccount_last) {
        ccount_hi += (uint64_t)1 << 32;
    }
    ccount_last = c;
    return ccount_hi | c;
}

/* instructions per CCOUNT tick, as cal_insns / cal_ticks */
static uint64_t cal_insns = 1, cal_ticks = 1;

static void calibrate(void)
{
    const uint32_t n = 1000000;
    uint64_t t0 = unit_clock();
    lx106_spin(n);
    uint64_t t1 = unit_clock();
    /* loop 2n + 1, call0 + ret + the rsr of the second read: 3 more */
    cal_insns = 2ull * n + 4;
    cal_ticks = t1 - t0;
    if (cal_ticks == 0) {
        cal_ticks = 1;
    }
    char a[24], b[24];
    printf("calibration: %s instructions = %s CCOUNT ticks\n", unit_i64((long long)cal_insns, a),
           unit_i64((long long)cal_ticks, b));
}

void unit_report(const char *op, uint64_t delta, unsigned reps)
{
    uint64_t insns = delta * cal_insns / cal_ticks / reps;
    uint64_t us = insns / 80; /* at 80 MHz, one instruction per cycle */
    char a[24], b[24];
    printf("bench %-28s %10s insns/op  ~%s.%01u ms at 80 MHz\n", op, unit_i64((long long)insns, a),
           unit_i64((long long)(us / 1000), b), (unsigned)((us % 1000) / 100));
}

int main(void)
{
    printf("IoT-Guard core tests on qemu-system-xtensa -M sim -cpu lx106\n");
    calibrate();
    int r = unit_run_all();
    flush_line();
    return r;
}
