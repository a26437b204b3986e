/*
 * spawn.c -- start a worker locked down.
 *
 * The worker is a fresh exec of kbench itself (`kbench __worker 3`): fork
 * alone would hand it the host's memory, oracle included. It gets its own
 * process group (so the host can kill everything it started), a parent-death
 * signal, resource limits, one CPU, stdin from /dev/null and stdout/stderr
 * into a pipe the host drains and keeps apart from the verdict. A setup step
 * that fails is reported through a close-on-exec error pipe, and the spawn
 * fails with the step's name and errno.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sandbox.h"

/* Whether workers run under an emulator (KB_WORKER_EXEC_PREFIX, see
 * child_setup): the kernel's view of such a worker (its threads, its CPU
 * time) is the emulator's as much as the plugin's, so the rules built on it
 * are off; such runs are for correctness only (scripts/matrix.sh). */
static int emulated(void)
{
    const char *p = getenv("KB_WORKER_EXEC_PREFIX");
    return p && *p;
}

int kb__worker_emulated(void)
{
    return emulated();
}

/* Removes LD_* and GLIBC_TUNABLES from this (forked) process's environment
 * in place: no allocation, so safe in the child of a threaded host. */
static void drop_loader_env(void)
{
    extern char **environ;
    char **out = environ;
    for (char **e = environ; e && *e; e++)
        if (strncmp(*e, "LD_", 3) != 0 && strncmp(*e, "GLIBC_TUNABLES=", 15) != 0) *out++ = *e;
    if (out) *out = NULL;
}

/* The steps of a worker's setup between fork and exec. A failed one is
 * reported to the host through the error pipe (as libuv's uv_spawn does),
 * so the host's error names the step and its errno instead of a worker
 * that "exited 127". */
enum kb__spawn_step {
    KB__STEP_PARENT = 0, /* the host died before the parent-death signal was set */
    KB__STEP_CHANNEL,    /* moving the channel descriptors to fds 3 and 4 */
    KB__STEP_RLIMIT_CORE,
    KB__STEP_RLIMIT_FSIZE,
    KB__STEP_RLIMIT_NOFILE,
    KB__STEP_RLIMIT_AS,
    KB__STEP_RLIMIT_CPU,
    KB__STEP_AFFINITY,
    KB__STEP_EXEC
};

static const char *const KB__STEP_NAMES[] = {
    [KB__STEP_PARENT] = "the parent-death signal (the host exited)",
    [KB__STEP_CHANNEL] = "moving the channel descriptors into place",
    [KB__STEP_RLIMIT_CORE] = "setrlimit(RLIMIT_CORE)",
    [KB__STEP_RLIMIT_FSIZE] = "setrlimit(RLIMIT_FSIZE)",
    [KB__STEP_RLIMIT_NOFILE] = "setrlimit(RLIMIT_NOFILE)",
    [KB__STEP_RLIMIT_AS] = "setrlimit(RLIMIT_AS)",
    [KB__STEP_RLIMIT_CPU] = "setrlimit(RLIMIT_CPU)",
    [KB__STEP_AFFINITY] = "sched_setaffinity (pinning to its CPU)",
    [KB__STEP_EXEC] = "exec of the worker"};

/* What the child writes to the error pipe: the step and its errno. */
typedef struct kb__spawn_error {
    int32_t step, err;
} kb__spawn_error;

/* In the child: reports the step that failed and exits. write(2) and
 * _exit only: async-signal-safe in the child of a threaded host. */
static _Noreturn void child_fail(int err_fd, int step)
{
    const kb__spawn_error e = {step, errno};
    if (err_fd >= 0) (void)!write(err_fd, &e, sizeof e);
    _exit(127);
}

/* stdin from /dev/null, stdout and stderr into the output pipe, the
 * channels at fds 3 and KB__START_FD, the error pipe kept (it closes itself
 * at exec), everything else closed. The error pipe's fd, or -1. */
static int child_fds(int sock, int start, int out_wr, int err_fd)
{
    /* Above everything first, so no dup2 below clobbers it. */
    err_fd = fcntl(err_fd, F_DUPFD_CLOEXEC, 16);
    if (err_fd < 0) _exit(127);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    dup2(out_wr, 1);
    dup2(out_wr, 2);
    /* Into place without clobbering each other: first above both targets. */
    sock = fcntl(sock, F_DUPFD, 16);
    start = fcntl(start, F_DUPFD, 16);
    if (sock < 0 || start < 0 || dup2(sock, 3) != 3 || dup2(start, KB__START_FD) != KB__START_FD)
        child_fail(err_fd, KB__STEP_CHANNEL);
    close_range(KB__START_FD + 1, (unsigned)err_fd - 1, 0);
    close_range((unsigned)err_fd + 1, ~0u, 0);
    return err_fd;
}

/* Sets a limit, never above the hard limit kbench itself was given (raising
 * it needs privilege): a stricter limit from whoever started kbench stays. */
static void child_limit(int err_fd, int step, int resource, rlim_t cur, rlim_t max)
{
    struct rlimit r;
    if (getrlimit(resource, &r) == 0 && r.rlim_max != RLIM_INFINITY && max > r.rlim_max)
        max = r.rlim_max;
    if (cur > max) cur = max;
    r.rlim_cur = cur;
    r.rlim_max = max;
    if (setrlimit(resource, &r) != 0) child_fail(err_fd, step);
}

/* Resource limits and the CPU. */
static void child_limits(int err_fd, const kb__limits *lim)
{
    child_limit(err_fd, KB__STEP_RLIMIT_CORE, RLIMIT_CORE, 0, 0);
    /* No file grows (seccomp already refuses opens for writing). */
    if (!KB__VALGRIND) child_limit(err_fd, KB__STEP_RLIMIT_FSIZE, RLIMIT_FSIZE, 0, 0);
    child_limit(err_fd, KB__STEP_RLIMIT_NOFILE, RLIMIT_NOFILE, 256, 256);
    if (lim->as_bytes && !KB__ASAN)
        child_limit(err_fd, KB__STEP_RLIMIT_AS, RLIMIT_AS, lim->as_bytes, lim->as_bytes);
    if (lim->cpu_seconds)
        child_limit(err_fd, KB__STEP_RLIMIT_CPU, RLIMIT_CPU, lim->cpu_seconds,
                    (rlim_t)lim->cpu_seconds + 1);
    if (lim->cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        if (lim->cpu >= CPU_SETSIZE) {
            errno = EINVAL;
            child_fail(err_fd, KB__STEP_AFFINITY);
        }
        CPU_SET(lim->cpu, &set);
        if (sched_setaffinity(0, sizeof set, &set) != 0) child_fail(err_fd, KB__STEP_AFFINITY);
    }
}

/* The environment the worker runs with. */
static void child_env(void)
{
    /* Same address-space layout in every worker: branch predictors and
     * caches index by address, and a random layout per worker is a random
     * speed difference between two identical plugins. */
    personality(ADDR_NO_RANDOMIZE);
    /* The plugin's libraries are found as closure.c found (and hashed) them:
     * by the loader's default search, never through LD_LIBRARY_PATH,
     * LD_PRELOAD or tunables of whoever started kbench. */
    drop_loader_env();
    /* No restartable-sequence areas in the worker (worker.c, rseq_off). */
    setenv("GLIBC_TUNABLES", "glibc.pthread.rseq=0", 1);
    if (KB__ASAN) {
        /* Let the worker's own fault handlers see faults (they name what a
         * plugin hit), and skip the exit-time leak check (see sandbox.h). */
        static char opts[1024];
        const char *old = getenv("ASAN_OPTIONS");
        snprintf(opts, sizeof opts,
                 "%s%sallow_user_segv_handler=1:handle_segv=0:handle_sigbus=0:"
                 "handle_abort=0:handle_sigfpe=0:handle_sigill=0:detect_leaks=0:"
                 "allocator_may_return_null=1",
                 old ? old : "", old && *old ? ":" : "");
        setenv("ASAN_OPTIONS", opts, 1);
    }
}

static _Noreturn void child_setup(int sock, int start, int out_wr, int err_fd,
                                  const kb__limits *lim, const char *exe, pid_t host)
{
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != host) _exit(127); /* the host died before the line above */
    err_fd = child_fds(sock, start, out_wr, err_fd);
    child_limits(err_fd, lim);
    child_env();
    /* A kbench for another ISA, run by qemu-user where no binfmt_misc entry
     * hands foreign binaries to qemu, cannot exec its worker itself: the
     * kernel refuses the ELF. KB_WORKER_EXEC_PREFIX names the program that
     * runs it (e.g. /usr/bin/qemu-aarch64; its options go in QEMU_* env). */
    const char *pre = getenv("KB_WORKER_EXEC_PREFIX");
    if (pre && *pre) {
        char *const pargv[] = {(char *)pre, (char *)exe, (char *)"__worker", (char *)"3", NULL};
        execv(pre, pargv);
        child_fail(err_fd, KB__STEP_EXEC);
    }
    char *const argv[] = {(char *)"kbench-worker", (char *)"__worker", (char *)"3", NULL};
    execv(exe, argv);
    child_fail(err_fd, KB__STEP_EXEC);
}

/* In the host: waits until the child's exec closes the error pipe (0), or
 * reads the step that failed, reaps the child and fills err (KB__ECHILD). */
static int await_exec(pid_t pid, int err_rd, const char *label, char *err, size_t err_len)
{
    kb__spawn_error e;
    ssize_t n;
    do n = read(err_rd, &e, sizeof e);
    while (n < 0 && errno == EINTR);
    if (n != (ssize_t)sizeof e) return 0; /* EOF: the exec closed it */
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
    const char *step = e.step >= 0 && e.step <= KB__STEP_EXEC ? KB__STEP_NAMES[e.step] : "?";
    kb__errf(err, err_len, "cannot start the %s worker: %s failed: %s", label, step,
             strerror(e.err));
    return KB__ECHILD;
}

static void close_pair(int p[2])
{
    if (p[0] >= 0) close(p[0]);
    if (p[1] >= 0) close(p[1]);
    p[0] = p[1] = -1;
}

/* The worker's channel, start channel, output pipe and error pipe, all
 * close-on-exec in the host. 0, or KB__EIO with err filled and none open. */
static int spawn_fds(int sv[2], int ss[2], int pp[2], int ep[2], char *err, size_t err_len)
{
    sv[0] = sv[1] = ss[0] = ss[1] = pp[0] = pp[1] = ep[0] = ep[1] = -1;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0 ||
        socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ss) != 0)
        kb__errf(err, err_len, "cannot create the worker channel: %s", strerror(errno));
    else if (pipe2(pp, O_CLOEXEC) != 0)
        kb__errf(err, err_len, "cannot create the worker output pipe: %s", strerror(errno));
    else if (pipe2(ep, O_CLOEXEC) != 0)
        kb__errf(err, err_len, "cannot create the worker error pipe: %s", strerror(errno));
    else
        return 0;
    close_pair(sv);
    close_pair(ss);
    close_pair(pp);
    close_pair(ep);
    return KB__EIO;
}

int kb__worker_spawn(kb__worker *w, const char *exe, const char *label, const kb__limits *lim,
                     char *err, size_t err_len)
{
    memset(w, 0, sizeof *w);
    w->pid = -1;
    w->sock = w->start_sock = w->out_rd = w->stat_fd = -1;
    w->label = label;
    int sv[2], ss[2], pp[2], ep[2];
    if (spawn_fds(sv, ss, pp, ep, err, err_len) != 0) return KB__EIO;
    if (getrandom(&w->nonce, sizeof w->nonce, 0) != sizeof w->nonce) w->nonce ^= kb__now_ns();
    /* The host holds the oracle's outputs and the secret seed. Not dumpable,
     * /proc/<host>/mem and ptrace need CAP_SYS_PTRACE, which workers drop. */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    const pid_t host = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        kb__errf(err, err_len, "cannot fork a worker: %s", strerror(errno));
        close_pair(sv);
        close_pair(ss);
        close_pair(pp);
        close_pair(ep);
        return KB__EIO;
    }
    if (pid == 0) child_setup(sv[1], ss[1], pp[1], ep[1], lim, exe, host);
    setpgid(pid, pid); /* both sides set it: no race with an early kill */
    close(sv[1]);
    close(ss[1]);
    close(pp[1]);
    close(ep[1]);
    const int rc = await_exec(pid, ep[0], label, err, err_len);
    close(ep[0]);
    if (rc != 0) {
        close(sv[0]);
        close(ss[0]);
        close(pp[0]);
        return rc;
    }
    w->pid = pid;
    w->sock = sv[0];
    w->start_sock = ss[0];
    w->out_rd = pp[0];
    fcntl(w->out_rd, F_SETFL, O_NONBLOCK);
    w->have_cpu_clock = !emulated() && clock_getcpuclockid(pid, &w->cpu_clock) == 0;
    if (w->have_cpu_clock) {
        char stat[64];
        snprintf(stat, sizeof stat, "/proc/%d/stat", (int)pid);
        w->stat_fd = open(stat, O_RDONLY | O_CLOEXEC);
    }
    const int on = 1;
    w->stamps = setsockopt(w->sock, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on) == 0 &&
                setsockopt(w->start_sock, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on) == 0;
    return 0;
}
