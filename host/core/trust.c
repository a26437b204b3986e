/*
 * trust.c -- whether this process's timing can be trusted, and what a
 * timing-only check says when it cannot.
 *
 * kbench's CPU checks (CPU outside timed calls) and the fresh-input probe
 * judge a plugin by how long things took. Under a user-mode emulator
 * (qemu-user runs the host, its workers, or both) or in a sanitizer build
 * (every host step instrumented) those figures are the emulator's or the
 * instrumentation's as much as the plugin's, and an honest plugin can fail
 * them. There a failed timing-only check is inconclusive, never rejected;
 * it never becomes a keep either, and every correctness and sandbox check
 * stays as it is (only kb__timing_verdict's callers, which are timing
 * checks alone, read this).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/prctl.h>

#include "kb.h"

#ifndef KB_SANITIZED
#if defined(__SANITIZE_ADDRESS__)
#define KB_SANITIZED "address"
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KB_SANITIZED "address"
#endif
#endif
#endif

/* qemu-user, started by name (scripts/matrix.sh), leaves its own name as
 * the process's: the kernel names a process after the file it exec'd. */
static int started_by_emulator(char *why, size_t len)
{
    char comm[17] = {0};
    if (prctl(PR_GET_NAME, comm, 0, 0, 0) != 0 || strncmp(comm, "qemu-", 5) != 0) return 0;
    snprintf(why, len, "kbench runs under the emulator %s", comm);
    return 1;
}

/* Linux maps a vDSO into every native x86-64 and aarch64 process; an
 * emulator that builds the guest's auxiliary vector itself (qemu-user, also
 * when binfmt_misc starts it) may give none. */
static int no_vdso(char *why, size_t len)
{
#if defined(__x86_64__) || defined(__aarch64__)
    if (getauxval(AT_SYSINFO_EHDR) != 0) return 0;
    snprintf(why, len, "no vDSO in the auxiliary vector (AT_SYSINFO_EHDR), as under an emulator");
    return 1;
#else
    (void)why;
    (void)len;
    return 0;
#endif
}

static int decide(char *why, size_t len)
{
    /* A test hook (docs/robustness.md): it can only turn a timing-only
     * rejection into inconclusive, never make a verdict a keep. */
    const char *hook = getenv("KB_TIMING_UNTRUSTED");
    if (hook && *hook) {
        snprintf(why, len, "KB_TIMING_UNTRUSTED=%s", hook);
        return 1;
    }
#ifdef KB_SANITIZED
    snprintf(why, len, "a sanitizer build (-fsanitize=%s)", KB_SANITIZED);
    return 1;
#endif
    const char *pre = getenv("KB_WORKER_EXEC_PREFIX");
    if (pre && *pre) {
        snprintf(why, len, "workers run under KB_WORKER_EXEC_PREFIX=%s", pre);
        return 1;
    }
    return started_by_emulator(why, len) || no_vdso(why, len);
}

int kb__timing_untrusted(const char **why)
{
    static int state = -1;
    static char reason[256];
    if (state < 0) state = decide(reason, sizeof reason);
    if (why) *why = reason;
    return state;
}

kb__status kb__timing_verdict(kb__status st, char *reason, size_t len)
{
    const char *why;
    if (st != KB__ST_REJECTED || !kb__timing_untrusted(&why)) return st;
    char was[512];
    snprintf(was, sizeof was, "%s", reason);
    snprintf(reason, len, "timing cannot be trusted here: %s; %s", why, was);
    return KB__ST_INCONCLUSIVE;
}
