/*
 * clock.c -- the host's monotonic clock.
 */
#include <time.h>

#include "kb.h"

uint64_t kb__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
