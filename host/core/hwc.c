/*
 * hwc.c -- hardware counters of a worker, when the machine offers them.
 *
 * perf_event_open on the candidate's worker (instructions, cycles, cache
 * misses), counting from after its load to its shutdown. Many VMs and
 * containers expose no counters (this project's CI machine among them):
 * then the result says "n/a" and why, never a made-up figure.
 */
#include <errno.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kb.h"
#include "hwc.h"

static int open_one(pid_t pid, uint64_t config, int group)
{
    struct perf_event_attr a;
    memset(&a, 0, sizeof a);
    a.size = sizeof a;
    a.type = PERF_TYPE_HARDWARE;
    a.config = config;
    a.disabled = group < 0;
    a.exclude_kernel = 1;
    a.exclude_hv = 1;
    a.inherit = 1;
    return (int)syscall(SYS_perf_event_open, &a, pid, -1, group, 0);
}

void kb__hwc_open(kb__hwc *h, pid_t pid)
{
    static const uint64_t cfg[3] = {PERF_COUNT_HW_INSTRUCTIONS, PERF_COUNT_HW_CPU_CYCLES,
                                    PERF_COUNT_HW_CACHE_MISSES};
    memset(h, 0, sizeof *h);
    for (int i = 0; i < 3; i++) h->fd[i] = -1;
    h->fd[0] = open_one(pid, cfg[0], -1);
    if (h->fd[0] < 0) {
        snprintf(h->why, sizeof h->why, "perf_event_open: %s", strerror(errno));
        return;
    }
    for (int i = 1; i < 3; i++) h->fd[i] = open_one(pid, cfg[i], h->fd[0]);
    ioctl(h->fd[0], PERF_EVENT_IOC_RESET, PERF_IOC_FLAG_GROUP);
    ioctl(h->fd[0], PERF_EVENT_IOC_ENABLE, PERF_IOC_FLAG_GROUP);
}

void kb__hwc_close(kb__hwc *h, char *out, size_t out_len)
{
    if (h->fd[0] < 0) {
        snprintf(out, out_len, "n/a (%s)", h->why[0] ? h->why : "not opened");
        return;
    }
    uint64_t v[3] = {0, 0, 0};
    for (int i = 0; i < 3; i++)
        if (h->fd[i] >= 0 && read(h->fd[i], &v[i], sizeof v[i]) != (ssize_t)sizeof v[i]) v[i] = 0;
    snprintf(out, out_len, "instructions=%llu cycles=%llu cache_misses=%llu",
             (unsigned long long)v[0], (unsigned long long)v[1], (unsigned long long)v[2]);
    for (int i = 0; i < 3; i++)
        if (h->fd[i] >= 0) close(h->fd[i]);
}
