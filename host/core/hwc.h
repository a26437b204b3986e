/*
 * hwc.h -- hardware counters of a worker process (hwc.c).
 */
#ifndef KB_HWC_H
#define KB_HWC_H

#include <stddef.h>
#include <sys/types.h>

typedef struct kb__hwc {
    int fd[3];
    char why[80];
} kb__hwc;

void kb__hwc_open(kb__hwc *h, pid_t pid);
/* Reads and closes; writes "instructions=... cycles=..." or "n/a (why)". */
void kb__hwc_close(kb__hwc *h, char *out, size_t out_len);

#endif
