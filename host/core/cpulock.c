/*
 * cpulock.c -- one trial times on a CPU at a time.
 *
 * Every trial pins both its workers to the last CPU it may run on, so two
 * kbench processes on one machine (two agents, a test suite beside a manual
 * trial) would put four workers on one CPU, each trial's batches preempted by
 * the other's at turns the pairing does not balance. A trial therefore
 * holds an exclusive flock on a per-CPU file that
 * every kbench on the machine finds at the same path; a second trial waits
 * for it and says so. The lock goes with the process (the kernel drops a
 * flock when its last descriptor closes), so a killed trial holds nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "kb.h"

/* Read-only is enough for flock, so a file another user created serves. */
int kb__cpu_lock(int cpu, FILE *note)
{
    if (cpu < 0) return -1;
    char path[64]; /* not under $TMPDIR: every kbench must find the same file */
    snprintf(path, sizeof path, "/tmp/kbench-timing-cpu%d.lock", cpu);
    const int fd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) {
        if (note)
            fprintf(note,
                    "kbench: cannot open %s (%s): this trial does not wait for others timing on "
                    "CPU %d; run one trial at a time on this machine\n",
                    path, strerror(errno), cpu);
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) return fd;
    if (note && errno == EWOULDBLOCK)
        fprintf(note,
                "kbench: another trial is timing on CPU %d (%s); waiting for it, since two at "
                "once would time each other\n",
                cpu, path);
    while (flock(fd, LOCK_EX) != 0)
        if (errno != EINTR) {
            if (note)
                fprintf(note, "kbench: cannot lock %s (%s); timing without waiting\n", path,
                        strerror(errno));
            close(fd);
            return -1;
        }
    return fd;
}

void kb__cpu_unlock(int fd)
{
    if (fd >= 0) close(fd);
}
