/*
 * kb_run.h -- for end-to-end tests: run the built kbench binary, capture its
 * stdout, stderr and exit code, and pick `key: value` lines out of the
 * verdict block. Header-only; include once per test file.
 */
#ifndef KB_RUN_H
#define KB_RUN_H

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct kb_run {
    int code;        /* exit code, or 128 + signal */
    char out[65536]; /* stdout */
    char err[16384]; /* stderr */
} kb_run;

static void kb__slurp(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r <= 0) break;
        n += (size_t)r;
        if (n == cap - 1) { /* keep draining so the child never blocks */
            char sink[4096];
            while (read(fd, sink, sizeof sink) > 0) {
            }
            break;
        }
    }
    buf[n] = 0;
}

/* Execs build/kbench with a NULL-terminated argv (argv[0] is its name).
 * KB_TEST_EXEC_PREFIX names a program that runs it instead, as
 * `prefix build/kbench args...`: scripts/matrix.sh runs the suite with
 * kbench under qemu-x86_64 (QEMU_CPU in the environment) to see what a CPU
 * without AVX-512 or AVX sees. Returns only on failure. */
static inline void kb_exec_kbench(char *const argv[])
{
    char exe[4096];
    snprintf(exe, sizeof exe, "%s/kbench", KB_TEST_BUILD_DIR);
    const char *pre = getenv("KB_TEST_EXEC_PREFIX");
    if (!pre || !*pre) {
        execv(exe, argv);
        return;
    }
    size_t n = 0;
    while (argv[n]) n++;
    char **v = calloc(n + 2, sizeof *v);
    if (!v) return;
    v[0] = (char *)pre;
    v[1] = exe;
    for (size_t i = 1; i <= n; i++) v[i + 1] = argv[i];
    execv(pre, v);
}

/* Whether kbench runs under an emulator here (KB_TEST_EXEC_PREFIX): the
 * few things qemu-user keeps from the host process (its setrlimit, socket
 * timestamps) are then checked by the native run of the suite. */
static inline int kb_host_emulated(void)
{
    const char *pre = getenv("KB_TEST_EXEC_PREFIX");
    return pre && *pre;
}

/* Runs build/kbench with a NULL-terminated argument list. */
static void kb_run_argv(kb_run *r, char *const argv[])
{
    int po[2], pe[2];
    if (pipe(po) || pipe(pe)) abort();
    pid_t pid = fork();
    if (pid == 0) {
        dup2(po[1], 1);
        dup2(pe[1], 2);
        close(po[0]);
        close(pe[0]);
        kb_exec_kbench(argv);
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    /* stderr is small; read stdout first, then stderr. A fixture that floods
     * stderr is captured by kbench itself, never passed through. */
    kb__slurp(po[0], r->out, sizeof r->out);
    kb__slurp(pe[0], r->err, sizeof r->err);
    close(po[0]);
    close(pe[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    r->code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

#define KB_RUN(r, ...)                                          \
    do {                                                        \
        char *const kb__argv[] = {"kbench", __VA_ARGS__, NULL}; \
        kb_run_argv((r), kb__argv);                             \
    } while (0)

/* Value of `key: ` in the verdict block, or "". The value is in one of 8
 * static buffers used in turn, so a value read earlier
 * stays valid across the next 7 calls (a test that keeps `status` and then
 * reads `geomean_ratio` once read the ratio back as its status). */
static inline const char *kb_field(const kb_run *r, const char *key)
{
    static char ring[8][1024];
    static unsigned turn;
    char *val = ring[turn++ % 8];
    char pat[128];
    snprintf(pat, sizeof pat, "\n%s: ", key);
    const char *p = strstr(r->out, pat);
    val[0] = 0;
    if (!p) return val;
    p += strlen(pat);
    size_t n = strcspn(p, "\n");
    if (n >= sizeof ring[0]) n = sizeof ring[0] - 1;
    memcpy(val, p, n);
    val[n] = 0;
    return val;
}

/* A verdict an emulated kbench (scripts/matrix.sh suite cells) gives an
 * honest plugin for its timing, not its code: the fresh probe's one-call
 * batches and the CPU checks carry the emulator's own overhead there, and
 * kbench itself knows it (host/core/trust.c), so such a check ends the
 * trial inconclusive ("timing cannot be trusted here: ...") before its
 * per-case figures. Only tests that read those figures or a timing reason
 * need this; a test that accepts inconclusive does not. Claims about timing
 * are the native run's. */
#if defined(__SANITIZE_ADDRESS__)
#define KB_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KB_TEST_SANITIZED 1
#endif
#endif
#ifndef KB_TEST_SANITIZED
#define KB_TEST_SANITIZED 0
#endif
/* The same holds for a sanitizer build (scripts/sanitize.sh), whose
 * instrumented harness and kernels claim correctness only
 * (docs/matrix.md). */
static inline int kb_emulated_timing_reason(const char *status, const char *why)
{
    if (!(kb_host_emulated() || KB_TEST_SANITIZED) || !status || !why) return 0;
    return !strcmp(status, "inconclusive") && strstr(why, "cannot be trusted");
}
static inline int kb_emulated_timing_verdict(const kb_run *r)
{
    char st[32];
    snprintf(st, sizeof st, "%s", kb_field(r, "status"));
    return kb_emulated_timing_reason(st, kb_field(r, "reason"));
}

/* Absolute path of a build product, e.g. kb_path("plugins/pq-l2/avx512.so"). */
static const char *kb_path(const char *rel)
{
    static char buf[4][4096];
    static int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof buf[i], "%s/%s", KB_TEST_BUILD_DIR, rel);
    return buf[i];
}

/* Whether this test is the child subreaper of what kbench starts (see
 * kb_subreaper()); without it kb_leftovers() can see only its own children. */
static int kb__subreaper = 0;

/* Makes the test the child subreaper of every process kbench starts, so
 * that kb_leftovers() sees orphans. qemu-user refuses the prctl (EINVAL):
 * under an emulator (KB_TEST_EXEC_PREFIX, scripts/matrix.sh's aarch64
 * suite cell) the test says so and goes on without it, the native suite
 * checking leftovers; natively a refusal fails the test. */
static inline int kb_subreaper(void)
{
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) == 0) {
        kb__subreaper = 1;
        return 0;
    }
    const char *pre = getenv("KB_TEST_EXEC_PREFIX");
    if (pre && *pre) {
        fprintf(stderr,
                "note: prctl(PR_SET_CHILD_SUBREAPER) refused under %s: leftover "
                "processes are not checked here (the native suite checks them)\n",
                pre);
        return 0;
    }
    perror("prctl(PR_SET_CHILD_SUBREAPER)");
    return -1;
}

/* For tests that are the child subreaper of every process kbench starts:
 * reaps what was re-parented to the test and returns how many descendants
 * were still there (alive or not yet reaped) after kbench exited, killing
 * any that live. */
static inline int kb_leftovers(void)
{
    int n = 0, st;
    for (;;) {
        pid_t p = waitpid(-1, &st, WNOHANG);
        if (p > 0) {
            n++;
            continue;
        }
        if (p == 0) { /* alive: kill every child we have, then reap */
            n++;
            DIR *d = opendir("/proc");
            for (struct dirent *e; d && (e = readdir(d));) {
                char path[300], buf[512];
                snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
                FILE *f = fopen(path, "r");
                if (!f) continue;
                int pid = 0, ppid = 0;
                if (fgets(buf, sizeof buf, f)) {
                    const char *rp = strrchr(buf, ')');
                    pid = atoi(buf);
                    if (rp) sscanf(rp + 2, "%*c %d", &ppid);
                }
                fclose(f);
                if (ppid == getpid() && pid > 0) kill(pid, SIGKILL);
            }
            if (d) closedir(d);
            while (waitpid(-1, &st, 0) > 0) {
            }
        }
        return n; /* p < 0: ECHILD, nothing left */
    }
}

#endif
