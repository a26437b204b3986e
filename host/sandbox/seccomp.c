/*
 * seccomp.c -- the worker's system-call filter.
 *
 * Installed by the worker before it loads the plugin, so it covers the
 * plugin's constructors as much as prepare and run. An allow-list: what the
 * dynamic loader, glibc (malloc, stdio, threads, timers) and the harness
 * need, and nothing that reaches outside the worker. Everything else traps
 * (SIGSYS), and the worker's handler reports "made a forbidden system call:
 * NAME" on the private channel before exiting, so the host can say which
 * rule was broken. Where an argument decides (files opened read-only only,
 * signals only to itself, threads but not processes), the filter compares
 * the argument; int arguments are compared on their low 32 bits, which is
 * what the kernel reads, so garbage in the upper half cannot slip past.
 *
 * clone3 answers ENOSYS instead of trapping: its flags sit in memory the
 * filter cannot read, and glibc falls back to clone, whose flags it can.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "sandbox.h"

#define KB__LOW32 UINT64_C(0xffffffff)
/* Open flags that write, create or truncate. 020000000 is the kernel's
 * __O_TMPFILE bit alone: glibc's O_TMPFILE and __O_TMPFILE also carry
 * O_DIRECTORY, which plain directory opens (opendir) use. */
#define KB__O_TMPFILE_BIT 020000000
#define KB__OPEN_WRITES \
    ((uint64_t)(O_WRONLY | O_RDWR | O_CREAT | O_TRUNC | O_APPEND | KB__O_TMPFILE_BIT))

#ifndef PR_SET_VMA
#define PR_SET_VMA 0x53564d41
#endif

/* Names of system calls, resolved before the filter goes on so the SIGSYS
 * handler can name one without calling anything that is not
 * async-signal-safe (a trap can come from inside malloc, e.g. glibc's
 * fork() holds the malloc locks when it calls clone). */
#define KB__NR_NAMES 512
static char kb__names[KB__NR_NAMES][24];

/* Allowed whatever their arguments. */
static const char *const kb__allow[] = {
    /* files: reading only (opens are checked below) */
    "read",
    "pread64",
    "readv",
    "preadv",
    "preadv2",
    "close",
    "fstat",
    "stat",
    "lstat",
    "newfstatat",
    "statx",
    "lseek",
    "access",
    "faccessat",
    "faccessat2",
    "readlink",
    "readlinkat",
    "getdents64",
    "getcwd",
    "statfs",
    "fstatfs",
    /* memory (mmap and mremap are narrowed once the plugin is loaded:
     * kb__seccomp_harden; madvise and mprotect are checked below) */
    "mmap",
    "munmap",
    "mremap",
    "brk",
    "msync",
    "mincore",
    /* threads, synchronisation, scheduling queries */
    "futex",
    "set_robust_list",
    "get_robust_list",
    "set_tid_address",
    "sched_yield",
    "sched_getaffinity",
    "sched_getparam",
    "sched_getscheduler",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "membarrier",
    "getcpu",
    /* identity and information */
    "getpid",
    "gettid",
    "getppid",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "getpgrp",
    "uname",
    "getrlimit",
    "sysinfo",
    "getrusage",
    "times",
    "getrandom",
    /* time; timers let CPU-time accounting catch work done from them */
    "clock_gettime",
    "clock_getres",
    "clock_nanosleep",
    "nanosleep",
    "gettimeofday",
    "time",
    "setitimer",
    "getitimer",
    "alarm",
    "timer_create",
    "timer_settime",
    "timer_gettime",
    "timer_getoverrun",
    "timer_delete",
    "restart_syscall",
    /* signals (rt_sigaction is checked below) */
    "rt_sigprocmask",
    "rt_sigreturn",
    "sigaltstack",
    "rt_sigpending",
    "rt_sigtimedwait",
    "rt_sigsuspend",
    "pause",
    /* pipes connect the process only to itself (sanitizer runtimes probe
     * memory through one) */
    "pipe",
    "pipe2",
    /* the end */
    "exit",
    "exit_group",
};

static int add(scmp_filter_ctx ctx, uint32_t action, const char *name, unsigned n,
               const struct scmp_arg_cmp *cmp, char *err, size_t err_len)
{
    const int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) return 0; /* not on this architecture: nothing to allow */
    int rc = seccomp_rule_add_array(ctx, action, nr, n, cmp);
    if (rc != 0) {
        kb__errf(err, err_len, "cannot add the seccomp rule for %s: %s", name, strerror(-rc));
        return KB__EIO;
    }
    return 0;
}

/* Allowed when the low 32 bits of argument `arg` equal `v`. */
static int add_eq32(scmp_filter_ctx ctx, const char *name, unsigned arg, uint64_t v, char *err,
                    size_t err_len)
{
    struct scmp_arg_cmp c = SCMP_CMP64(arg, SCMP_CMP_MASKED_EQ, KB__LOW32, v & KB__LOW32);
    return add(ctx, SCMP_ACT_ALLOW, name, 1, &c, err, err_len);
}

static void resolve_names(void)
{
    for (int nr = 0; nr < KB__NR_NAMES; nr++) {
        char *s = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
        snprintf(kb__names[nr], sizeof kb__names[nr], "%s", s ? s : "");
        free(s);
    }
}

void kb__syscall_describe(long nr, char *out, size_t out_len)
{
    /* Async-signal-safe: no stdio, no allocation. */
    if (!out_len) return;
    const char *name = nr >= 0 && nr < KB__NR_NAMES && kb__names[nr][0] ? kb__names[nr] : NULL;
    size_t n = 0;
    if (!name) {
        n = kb__put_str(out, n, out_len, nr < 0 ? "system call number -" : "system call number ");
        n = kb__put_u64(out, n, out_len, nr < 0 ? 0ul - (unsigned long)nr : (unsigned long)nr);
        out[n] = 0;
        return;
    }
    const char *why = "";
    if (!strcmp(name, "openat") || !strcmp(name, "open") || !strcmp(name, "creat"))
        why = " (files may only be opened for reading)";
    else if (!strcmp(name, "clone") || !strcmp(name, "fork") || !strcmp(name, "vfork"))
        why = " (plugins may start threads, not processes)";
    else if (!strcmp(name, "kill") || !strcmp(name, "tgkill") || !strcmp(name, "tkill"))
        why = " (plugins may signal only themselves)";
    else if (!strcmp(name, "socket") || !strcmp(name, "connect") || !strcmp(name, "socketpair"))
        why = " (no network, no sockets)";
    else if (!strcmp(name, "rt_sigaction") || !strcmp(name, "signal") || !strcmp(name, "sigaction"))
        why = " (plugins may not install signal handlers)";
    else if (!strcmp(name, "mprotect") || !strcmp(name, "pkey_mprotect"))
        why = " (memory may not be made executable, nor the harness's image writable)";
    else if (!strcmp(name, "mmap"))
        why = " (after loading, memory may not be mapped executable, nor with MAP_FIXED over "
              "what is there)";
    else if (!strcmp(name, "mremap"))
        why = " (memory may not be moved to an address of the plugin's choosing)";
    else if (!strcmp(name, "madvise"))
        why = " (only advice about the plugin's own view of its memory; no MADV_REMOVE, "
              "MADV_PAGEOUT, MADV_COLD)";
    else if (!strcmp(name, "rseq"))
        why = " (no restartable sequences: they let the kernel jump into plugin code from the "
              "harness's)";
    else if (!strcmp(name, "arch_prctl"))
        why = " (only queries; the harness's thread pointer, vDSO and CPUID stay as they are)";
    else if (!strncmp(name, "pkey_", 5))
        why = " (no memory protection keys)";
    else if (!strcmp(name, "write") || !strcmp(name, "writev") || !strcmp(name, "sendto") ||
             !strcmp(name, "sendmsg"))
        why = " (only stdout, stderr and the harness's channel may be written)";
    n = kb__put_str(out, n, out_len, name);
    n = kb__put_str(out, n, out_len, why);
    out[n] = 0;
}

extern char _end[]; /* the end of the executable's image (its bss) */

/* Files read-only, output to stdout and stderr, the two channels. */
static int allow_files_and_channel(scmp_filter_ctx ctx, int sock, int start_sock, char *err,
                                   size_t err_len)
{
    int rc = 0;
    /* Files: read-only opens only. */
    struct scmp_arg_cmp ro2 = SCMP_CMP64(2, SCMP_CMP_MASKED_EQ, KB__OPEN_WRITES, 0);
    struct scmp_arg_cmp ro1 = SCMP_CMP64(1, SCMP_CMP_MASKED_EQ, KB__OPEN_WRITES, 0);
    if (rc == 0) rc = add(ctx, SCMP_ACT_ALLOW, "openat", 1, &ro2, err, err_len);
    if (rc == 0) rc = add(ctx, SCMP_ACT_ALLOW, "open", 1, &ro1, err, err_len);
    if (rc == 0) rc = add(ctx, SCMP_ACT_ERRNO(ENOSYS), "openat2", 0, NULL, err, err_len);

    /* Output: stdout and stderr (captured by the host); the channel. A
     * sanitizer build writes to pipes of its own to probe memory, so there
     * any fd may be written (files still open only for reading). */
    if (KB__ASAN) {
        rc = add(ctx, SCMP_ACT_ALLOW, "write", 0, NULL, err, err_len);
        if (rc == 0) rc = add(ctx, SCMP_ACT_ALLOW, "writev", 0, NULL, err, err_len);
    }
    for (int fd = 1; rc == 0 && !KB__ASAN && fd <= 2; fd++) {
        rc = add_eq32(ctx, "write", 0, (uint64_t)fd, err, err_len);
        if (rc == 0) rc = add_eq32(ctx, "writev", 0, (uint64_t)fd, err, err_len);
    }
    static const char *const chan[] = {"sendto", "sendmsg", "recvfrom", "recvmsg"};
    for (size_t i = 0; rc == 0 && i < sizeof chan / sizeof chan[0]; i++)
        rc = add_eq32(ctx, chan[i], 0, (uint64_t)sock, err, err_len);
    for (size_t i = 0; rc == 0 && i < 2; i++)
        rc = add_eq32(ctx, chan[i], 0, (uint64_t)start_sock, err, err_len);
    return rc;
}

/* Memory: mprotect and madvise, within what the harness must keep. */
static int allow_memory(scmp_filter_ctx ctx, char *err, size_t err_len)
{
    int rc = 0;
    /* mprotect: never to make memory executable, never on the harness's
     * own image (its code, and the relocations -z now made read-only):
     * a plugin may not rewrite what runs between its calls, where no
     * clock looks (the start message, the reply). */
    struct scmp_arg_cmp mp[2] = {SCMP_CMP64(0, SCMP_CMP_GE, (uint64_t)(uintptr_t)_end),
                                 SCMP_CMP64(2, SCMP_CMP_MASKED_EQ, PROT_EXEC, 0)};
    if (rc == 0) rc = add(ctx, SCMP_ACT_ALLOW, "mprotect", 2, mp, err, err_len);

    /* madvise: only advice about the caller's own view of its memory.
     * Refused: MADV_REMOVE (punches pages out of a shared file, under
     * whoever else maps it), MADV_COLD / MADV_PAGEOUT / MADV_COLLAPSE
     * (move or rebuild pages another process may share, such as the
     * inputs), MADV_MERGEABLE (KSM merges pages across processes) and the
     * privileged or newer kinds. */
    static const int advice_ok[] = {MADV_NORMAL,
                                    MADV_RANDOM,
                                    MADV_SEQUENTIAL,
                                    MADV_WILLNEED,
                                    MADV_DONTNEED,
                                    MADV_FREE,
                                    MADV_DONTFORK,
                                    MADV_DOFORK,
                                    MADV_UNMERGEABLE,
                                    MADV_HUGEPAGE,
                                    MADV_NOHUGEPAGE,
                                    MADV_DONTDUMP,
                                    MADV_DODUMP,
                                    MADV_WIPEONFORK,
                                    MADV_KEEPONFORK,
                                    22 /* MADV_POPULATE_READ */,
                                    23 /* MADV_POPULATE_WRITE */};
    for (size_t i = 0; rc == 0 && i < sizeof advice_ok / sizeof advice_ok[0]; i++)
        rc = add_eq32(ctx, "madvise", 2, (uint64_t)advice_ok[i], err, err_len);
    return rc;
}

/* The process: arch_prctl, rseq, seccomp, threads and signals. */
static int allow_process(scmp_filter_ctx ctx, int rseq_trap, char *err, size_t err_len)
{
    int rc = 0;
    /* arch_prctl: queries, and the permission AMX needs. Setting the FS or
     * GS base, mapping a vDSO, CPUID faulting or shadow stacks would change
     * what the harness's own code runs on. */
    static const int arch_ok[] = {0x1003 /* ARCH_GET_FS */,
                                  0x1004 /* ARCH_GET_GS */,
                                  0x1011 /* ARCH_GET_CPUID */,
                                  0x1021 /* ARCH_GET_XCOMP_SUPP */,
                                  0x1022 /* ARCH_GET_XCOMP_PERM */,
                                  0x1023 /* ARCH_REQ_XCOMP_PERM */,
                                  0x5005 /* ARCH_SHSTK_STATUS */};
    for (size_t i = 0; rc == 0 && i < sizeof arch_ok / sizeof arch_ok[0]; i++)
        rc = add_eq32(ctx, "arch_prctl", 0, (uint64_t)arch_ok[i], err, err_len);

    /* rseq: a registered critical section makes the kernel jump to an
     * abort address of the registrant's choosing when the thread is
     * preempted inside it, and the range may cover the harness's code.
     * The worker starts without glibc's registration (see worker.c); then
     * any call is the plugin's and traps. Where glibc registers threads
     * anyway, the call fails with ENOSYS, which glibc takes in its stride. */
    if (rc == 0 && !rseq_trap) rc = add(ctx, SCMP_ACT_ERRNO(ENOSYS), "rseq", 0, NULL, err, err_len);

    /* seccomp itself, so the worker can stack its post-load filter
     * (kb__seccomp_harden), which then refuses any further one. A filter
     * only ever narrows; the host counts the filters on every thread after
     * loading (trial.c), so a constructor that skips the worker's or adds
     * its own is seen. */
    /* ops 1-3: SET_MODE_FILTER, GET_ACTION_AVAIL, GET_NOTIF_SIZES */
    for (uint64_t op = 1; rc == 0 && op <= 3; op++)
        rc = add_eq32(ctx, "seccomp", 0, op, err, err_len);

    /* Threads yes (CLONE_THREAD), processes no. */
    struct scmp_arg_cmp thr = SCMP_CMP64(0, SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD);
    if (rc == 0) rc = add(ctx, SCMP_ACT_ALLOW, "clone", 1, &thr, err, err_len);
    if (rc == 0) rc = add(ctx, SCMP_ACT_ERRNO(ENOSYS), "clone3", 0, NULL, err, err_len);

    /* NUMA memory policy: on the shared inputs it is the memfd's own, so
     * mbind could move the pages the baseline reads to another node.
     * Libraries set policies at load (OpenBLAS does) and take ENOSYS, what a
     * kernel without NUMA answers, in their stride; a trap would reject
     * them for nothing. */
    static const char *const numa[] = {"mbind", "set_mempolicy", "migrate_pages", "move_pages"};
    for (size_t i = 0; rc == 0 && i < sizeof numa / sizeof numa[0]; i++)
        rc = add(ctx, SCMP_ACT_ERRNO(ENOSYS), numa[i], 0, NULL, err, err_len);

    /* Signals: only to itself, and no handlers. A handler is plugin code
     * the worker's clock does not see (a timer's, between batches) unless
     * the harness blocks signals around every batch, which costs two
     * system calls inside each timed interval; so sigaction may only read
     * (act == NULL): the harness installed its own (faults, SIGSYS) before
     * this filter, and default actions still kill or stop as usual. */
    const pid_t self = getpid();
    if (rc == 0) rc = add_eq32(ctx, "kill", 0, (uint64_t)self, err, err_len);
    if (rc == 0) rc = add_eq32(ctx, "tgkill", 0, (uint64_t)self, err, err_len);
    if (rc == 0) {
        struct scmp_arg_cmp c = SCMP_CMP64(1, SCMP_CMP_EQ, 0);
        rc = add(ctx, SCMP_ACT_ALLOW, "rt_sigaction", 1, &c, err, err_len);
    }
    return rc;
}

/* Harmless queries that libraries make. */
static int allow_queries(scmp_filter_ctx ctx, char *err, size_t err_len)
{
    int rc = 0;
    if (rc == 0) rc = add_eq32(ctx, "ioctl", 1, TCGETS, err, err_len); /* isatty */
    if (rc == 0) rc = add_eq32(ctx, "ioctl", 1, TIOCGWINSZ, err, err_len);
    static const int fcntl_ok[] = {F_GETFD, F_SETFD, F_GETFL, F_SETFL};
    for (size_t i = 0; rc == 0 && i < sizeof fcntl_ok / sizeof fcntl_ok[0]; i++)
        rc = add_eq32(ctx, "fcntl", 1, (uint64_t)fcntl_ok[i], err, err_len);
    static const int prctl_ok[] = {PR_SET_NAME, PR_GET_NAME, PR_SET_VMA, PR_GET_DUMPABLE};
    for (size_t i = 0; rc == 0 && i < sizeof prctl_ok / sizeof prctl_ok[0]; i++)
        rc = add_eq32(ctx, "prctl", 0, (uint64_t)prctl_ok[i], err, err_len);
    /* prlimit64 may read limits, never set them (new_limit == NULL). */
    struct scmp_arg_cmp noset = SCMP_CMP64(2, SCMP_CMP_EQ, 0);
    if (rc == 0) rc = add(ctx, SCMP_ACT_ALLOW, "prlimit64", 1, &noset, err, err_len);
    return rc;
}

/* A filter whose default is `action` and that kills a process making a
 * system call of another architecture (their numbers mean other calls).
 * NULL, with err, when libseccomp has no memory. */
static scmp_filter_ctx new_filter(uint32_t action, char *err, size_t err_len)
{
    scmp_filter_ctx ctx = seccomp_init(action);
    if (!ctx) {
        kb__errf(err, err_len, "cannot create a seccomp filter (libseccomp out of memory)");
        return NULL;
    }
    seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
    return ctx;
}

/* Loads the filter when building it went well (rc 0) and frees it. rc, or
 * KB__EIO with err naming `what` when the kernel refused it. */
static int load_filter(scmp_filter_ctx ctx, int rc, const char *what, char *err, size_t err_len)
{
    if (rc == 0 && (rc = seccomp_load(ctx)) != 0) {
        kb__errf(err, err_len, "cannot load the %s: %s", what, strerror(-rc));
        rc = KB__EIO;
    }
    seccomp_release(ctx);
    return rc;
}

int kb__seccomp_install(int sock, int start_sock, int rseq_trap, char *err, size_t err_len)
{
    resolve_names();
    if (KB__VALGRIND) return 0; /* see sandbox.h */
    scmp_filter_ctx ctx = new_filter(SCMP_ACT_TRAP, err, err_len);
    if (!ctx) return KB__ENOMEM;
    int rc = 0;
    seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 1);
    for (size_t i = 0; rc == 0 && i < sizeof kb__allow / sizeof kb__allow[0]; i++)
        rc = add(ctx, SCMP_ACT_ALLOW, kb__allow[i], 0, NULL, err, err_len);
    if (rc == 0) rc = allow_files_and_channel(ctx, sock, start_sock, err, err_len);
    if (rc == 0) rc = allow_memory(ctx, err, err_len);
    if (rc == 0) rc = allow_process(ctx, rseq_trap, err, err_len);
    if (rc == 0) rc = allow_queries(ctx, err, err_len);
    return load_filter(ctx, rc, "seccomp filter", err, err_len);
}

/* Once the plugin, its libraries and their constructors are loaded, what
 * is executable is final. A second filter, stacked on the first (the
 * kernel runs both; the stricter answer wins) and synced to every thread
 * the constructors started, traps: mmap asking for PROT_EXEC; mmap with
 * MAP_FIXED or MAP_FIXED_NOREPLACE, except an anonymous PROT_NONE
 * reservation (glibc's malloc shrinks a thread's heap that way when
 * overcommit is strict, and it replaces nothing with anything usable);
 * mremap with MREMAP_FIXED or MREMAP_DONTUNMAP. mprotect to PROT_EXEC is
 * already refused by the first filter, and pkey_* never allowed. What a
 * plugin can still do to the harness's mappings (munmap, then mmap by
 * hint) leaves them changed, which the host sees from /proc (maps.c): the
 * size of the executable memory after every batch, the whole map after
 * timing. */
int kb__seccomp_harden(char *err, size_t err_len)
{
    if (KB__VALGRIND) return 0;
    scmp_filter_ctx ctx = new_filter(SCMP_ACT_ALLOW, err, err_len);
    if (!ctx) return KB__ENOMEM;
    int rc = 0;
    seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0); /* set already, and prctl is refused */
    seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
    const uint64_t exec = PROT_EXEC;
    struct scmp_arg_cmp x = SCMP_CMP64(2, SCMP_CMP_MASKED_EQ, exec, exec);
    if (rc == 0) rc = add(ctx, SCMP_ACT_TRAP, "mmap", 1, &x, err, err_len);
    /* fixed and (not anonymous, or readable, or writable); libseccomp has
     * no "not equal" under a mask, hence one rule per way out */
    static const uint64_t fixed[] = {MAP_FIXED, MAP_FIXED_NOREPLACE};
    for (size_t i = 0; rc == 0 && i < 2; i++) {
        struct scmp_arg_cmp f =
            SCMP_CMP64(3, SCMP_CMP_MASKED_EQ, fixed[i] | MAP_ANONYMOUS, fixed[i]);
        rc = add(ctx, SCMP_ACT_TRAP, "mmap", 1, &f, err, err_len);
        static const uint64_t usable[] = {PROT_READ, PROT_WRITE};
        for (size_t b = 0; rc == 0 && b < 2; b++) {
            struct scmp_arg_cmp fu[2] = {SCMP_CMP64(3, SCMP_CMP_MASKED_EQ, fixed[i], fixed[i]),
                                         SCMP_CMP64(2, SCMP_CMP_MASKED_EQ, usable[b], usable[b])};
            rc = add(ctx, SCMP_ACT_TRAP, "mmap", 2, fu, err, err_len);
        }
    }
    static const uint64_t moves[] = {1u << 1 /* MREMAP_FIXED */, 1u << 2 /* MREMAP_DONTUNMAP */};
    for (size_t i = 0; rc == 0 && i < 2; i++) {
        struct scmp_arg_cmp m = SCMP_CMP64(3, SCMP_CMP_MASKED_EQ, moves[i], moves[i]);
        rc = add(ctx, SCMP_ACT_TRAP, "mremap", 1, &m, err, err_len);
    }
    if (rc == 0) rc = add(ctx, SCMP_ACT_TRAP, "seccomp", 0, NULL, err, err_len);
    return load_filter(ctx, rc, "post-load seccomp filter", err, err_len);
}
