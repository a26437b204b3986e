/*
 * sandbox.h -- host side of a worker: spawn it locked down (spawn.c), talk
 * to it under a deadline and turn its death into a verdict (channel.c).
 */
#ifndef KB_SANDBOX_H
#define KB_SANDBOX_H

#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <time.h>

#include "kb.h"
#include "proto.h"

/* AddressSanitizer reserves terabytes of shadow address space at start and
 * LeakSanitizer stops the world with ptrace at exit: a worker of a
 * sanitizer build runs without an address-space limit and leaves with
 * _exit, skipping the leak check its seccomp filter would refuse. */
#if defined(__SANITIZE_ADDRESS__)
#define KB__ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KB__ASAN 1
#endif
#endif
#ifndef KB__ASAN
#define KB__ASAN 0
#endif

/* Under valgrind (scripts/valgrind-trial.sh) the tool runs inside the
 * worker's own process: it writes stand-ins for /proc/self/cmdline and auxv
 * to temporary files as the worker starts, and its scheduler writes to pipes
 * of its own, so the worker gets no file-size limit and no system-call
 * filter there. Natively RUNNING_ON_VALGRIND is 0 (a no-op instruction
 * sequence), whatever a plugin does. */
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifdef RUNNING_ON_VALGRIND
#define KB__VALGRIND (RUNNING_ON_VALGRIND != 0)
#else
#define KB__VALGRIND 0
#endif

typedef struct kb__limits {
    uint64_t as_bytes;    /* RLIMIT_AS of the worker */
    uint32_t cpu_seconds; /* RLIMIT_CPU: a backstop behind the host's deadlines */
    int cpu;              /* pin to this CPU; -1: do not pin */
} kb__limits;

/* How a worker failed, as a verdict. */
typedef struct kb__failure {
    kb__status status; /* crash, timeout or rejected */
    char reason[512];
} kb__failure;

typedef struct kb__worker {
    pid_t pid;
    int sock;
    int start_sock; /* start messages of batches (KB__REQF_STARTED) */
    int out_rd;     /* the worker's stdout+stderr, captured */
    uint64_t nonce, seq;
    const char *label;   /* "candidate", "baseline" */
    char captured[8192]; /* first bytes the plugin printed */
    size_t n_captured;
    uint64_t captured_total;
    int reaped;
    int wstatus;
    struct rusage ru;
    char fault[512]; /* last words of the harness's fault handler */
    /* Policy the worker enforces per request (KB__REQF_*). */
    int fpenv_free; /* the target lets plugins change FP control state */
    /* CPU-time accounting between calls (see kb__worker_call). */
    clockid_t cpu_clock; /* the worker's process CPU clock */
    int have_cpu_clock;
    int stat_fd; /* /proc/<pid>/stat, to see when the worker is off the CPU */
    int in_gap;  /* a reply came; the next request is not sent yet */
    uint64_t gap_cpu0, gap_wall0;
    uint64_t idle_cpu_ns, idle_wall_ns, idle_gaps; /* summed over every gap so far */
    /* Set by measure.c while timing: the candidate's backstop follows the
     * baseline's idle CPU (idle_ref); the baseline's is judged as one. */
    const struct kb__worker *idle_ref;
    int idle_is_baseline;
    int stamps; /* the kernel stamps its messages (SO_TIMESTAMPNS) */
    /* The last batch's CPU time minus its stamped interval: the harness's
     * own wake-up, receive and sends, and any plugin code that ran outside
     * the stamps (measure.c compares the two sides' medians). */
    int64_t last_excess;
} kb__worker;

/* CPU a worker may use between calls, where nothing times it. The harness
 * there is blocked in its receive before the host has read the reply
 * (docs/robustness.md, threat 26), so CPU used there is the plugin working
 * untimed, which on the shared CPU is also time taken from the other side's
 * batches. Two bounds hold, on the idle CPU summed over a worker's gaps:
 *
 * - The trial's (check_idle in trial/measure.c, once timing is over): the
 *   candidate's may not exceed KB__IDLE_CPU_ALLOW_NS plus, per gap, twice
 *   the baseline's own mean idle CPU per gap plus KB__IDLE_CPU_PER_GAP_NS.
 *   Relative to the baseline because a machine that charges an honest
 *   worker's bookkeeping (a busy or stolen-from VM: its reply, the unmapping
 *   of a fresh set) charges both sides alike.
 * - Each worker's backstop (kb__worker_call, at every request), so such work
 *   is stopped early: KB__IDLE_CPU_BACKSTOP_NS plus, per gap, the larger of
 *   KB__IDLE_CPU_BACKSTOP_PER_GAP_NS and the trial's bound on the baseline's
 *   idle CPU so far (idle_ref). The baseline is not judged by it: its work
 *   between calls can only take time from the candidate, never make the
 *   candidate win, so past its backstop (or KB__IDLE_CPU_BASELINE_SHARE of
 *   the time it waited, if larger) the trial is inconclusive, not rejected. */
#define KB__SETTLE_NS                    200000u
#define KB__IDLE_CPU_ALLOW_NS            2000000.0
#define KB__IDLE_CPU_PER_GAP_NS          20000.0
#define KB__IDLE_CPU_BACKSTOP_NS         5000000.0
#define KB__IDLE_CPU_BACKSTOP_PER_GAP_NS 200000.0
#define KB__IDLE_CPU_BASELINE_SHARE      0.25
/* Idle CPU per gap a candidate may use for the baseline's so far: twice the
 * baseline's mean per gap plus KB__IDLE_CPU_PER_GAP_NS. base->idle_gaps must
 * be non-zero. Both bounds above use it. */
double kb__idle_cpu_per_gap_allowed(const kb__worker *base);
/* Fills fail for a worker over an idle CPU bound: status and "<label> used
 * CPU outside timed calls: <its idle totals> <bound>", where `bound` names
 * the bound, what it was seen before and what to do. */
void kb__idle_cpu_fail(const kb__worker *w, kb__status status, const char *bound,
                       kb__failure *fail);

/* Address space a worker may add to what it has mapped when a case is
 * prepared (its RLIMIT_AS soft limit; see kb__worker_call). */
#define KB__MEM_HEADROOM (UINT64_C(2) << 30)

/* Starts a worker (spawn.c): a fresh exec of `exe` with lim applied. Returns
 * once the exec has happened; a setup step of the child that failed (a limit,
 * the CPU pin, the exec) makes it KB__ECHILD with err naming the step and
 * its errno. */
int kb__worker_spawn(kb__worker *w, const char *exe, const char *label, const kb__limits *lim,
                     char *err, size_t err_len);

/* Sends q with up to two fds, waits up to timeout_s for its reply. Returns 0
 * and fills rep (of any type: OK, FAIL, REFUSED) and *host_ns, the host's
 * own measure of the request: for a batch, the kernel's send stamps of the
 * worker's start message and reply (but never less than the CPU time the
 * worker used meanwhile), else from sending to reading the reply. On death, timeout or a forged or malformed
 * reply: kills the worker's process group, fills fail and returns
 * KB__ECHILD. `what` names the phase for the message ("run of case X"). */
int kb__worker_call(kb__worker *w, kb__req *q, const int *fds, int nfds, kb__rep *rep,
                    double timeout_s, uint64_t *host_ns, kb__failure *fail, const char *what);

/* Asks the worker to exit and reaps it; a worker that does not exit cleanly
 * within timeout_s fails (a plugin that crashes or exits in release). */
int kb__worker_quit(kb__worker *w, double timeout_s, kb__failure *fail);

/* SIGKILL the whole process group and reap. Idempotent. */
void kb__worker_kill(kb__worker *w);

/* Workers run through KB_WORKER_EXEC_PREFIX (an emulator): their threads,
 * CPU time, filters and memory map are the emulator's as much as theirs. */
int kb__worker_emulated(void);

/* ---- the worker's memory map and filters, from /proc (maps.c) -------- */
typedef struct kb__maps {
    char *text;       /* the kept lines of /proc/<pid>/maps after loading; NULL if unreadable */
    int64_t exec_kb;  /* VmExe + VmLib after loading */
    int filters;      /* Seccomp_filters after loading */
    int taken;        /* a snapshot was taken (none for an emulated worker) */
    size_t image_len; /* bytes of text that are the harness's own image (its first lines) */
} kb__maps;
/* After loading: keeps the worker's executable, file and kernel mappings;
 * fails (why filled) if executable memory is writable or anonymous. */
int kb__maps_snapshot(pid_t pid, kb__maps *m, char *why, size_t why_len);
/* After every batch (cheap: /proc/<pid>/status and the head of its maps):
 * 1 (why filled) when the size of the executable memory, the filter count
 * or a mapping of the harness's own image changed; else 0. */
int kb__maps_quick_changed(pid_t pid, const kb__maps *m, char *why, size_t why_len);
/* The quick check, and the whole map: 1 (why filled) when a kept mapping is
 * gone or altered, or a mapping is executable that was not after loading. */
int kb__maps_changed(pid_t pid, const kb__maps *m, char *why, size_t why_len);
void kb__maps_free(kb__maps *m);
/* The fewest and most seccomp filters on any of the worker's threads. */
int kb__worker_filters(pid_t pid, int *lo, int *hi);

/* CPU time (user + system, all threads, live and dead) of the worker, in ns;
 * 0 when it cannot be read. */
uint64_t kb__worker_cpu_ns(const kb__worker *w);

/* ---- the worker's system-call filter (seccomp.c) --------------------- */
/* Installs the allow-list filter in the calling process (the worker, before
 * it loads a plugin). `sock` is the private channel, the only socket it may
 * use. rseq traps when `rseq_trap`, else fails with ENOSYS. Calls outside
 * the list raise SIGSYS; the caller installs a SIGSYS handler first (the
 * filter forbids changing it afterwards). */
int kb__seccomp_install(int sock, int start_sock, int rseq_trap, char *err, size_t err_len);
/* After the plugin is loaded: a second, stricter filter on every thread, so
 * nothing new becomes executable and nothing is mapped over what exists. */
int kb__seccomp_harden(char *err, size_t err_len);
/* "socket (no network, no sockets)" for a trapped call; async-signal-safe
 * once kb__seccomp_install has run. */
void kb__syscall_describe(long nr, char *out, size_t out_len);

#endif /* KB_SANDBOX_H */
