#define _POSIX_C_SOURCE 200809L
#include <time.h>

#include "unit.h"

uint64_t unit_clock(void);
void unit_report(const char *op, uint64_t delta, unsigned reps);

uint64_t unit_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void unit_report(const char *op, uint64_t delta, unsigned reps)
{
    printf("bench %-28s %10.1f us/op (host)\n", op, (double)delta / reps / 1000.0);
}

int main(void)
{
    return unit_run_all();
}
