/*
 * test_ledger_kill.c -- the ledger under 8 concurrent `kbench trial --ledger`
 * processes, some of them killed with SIGKILL at random moments: every line
 * in the file is complete and parseable (the header once, then lines of 13
 * tab-separated fields), and every trial that exited normally has exactly
 * one line (each process's --description is a token of its own).
 *
 * A killed trial may or may not have written its line, but never part of
 * one: the append is a single write(2) under an exclusive flock (ledger.c).
 * The kill times are drawn from a seed printed at the start; set
 * KB_LEDGER_KILL_SEED to replay one, KB_LEDGER_KILL_ROUNDS for more rounds
 * (scripts/ledger-stress.sh runs many).
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "kb.h"
#include "ledger.h"

#define NPROC   8
#define NFIELDS KB__LF_N2
#define PLUGIN  "plugins/posting-intersect/portable.so"

static char g_dir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/kb_test_ledger_kill.XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* splitmix64: the kill schedule, reproducible from the printed seed */
static uint64_t next_rand(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

typedef struct proc {
    pid_t pid;
    char token[64];
    int64_t kill_at_ms; /* after the start; -1: not on a timer */
    int kill_on_append; /* when the ledger next grows (another trial appended) */
    int killed;         /* we sent SIGKILL while it still ran */
    int done, status;
    int lines; /* lines with its token */
} proc;

static pid_t start_trial(const char *ledger, const char *token)
{
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, 0);
            dup2(null, 1);
            dup2(null, 2);
        }
        setenv("KBENCH_STATE_DIR", g_dir, 1); /* read-only use; keep it private */
        char exe[4096], plugin[4096];
        snprintf(exe, sizeof exe, "%s/kbench", KB_TEST_BUILD_DIR);
        snprintf(plugin, sizeof plugin, "%s/%s", KB_TEST_BUILD_DIR, PLUGIN);
        execl(exe, "kbench", "trial", plugin, "--ledger", ledger, "--budget", "0.3",
              "--description", token, "-q", (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Is s a number as the ledger writes one ("%.4f", "%.3f")? */
static int is_number(const char *s)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    return end != s && *end == '\0' && errno == 0 && isfinite(v);
}

static int is_status(const char *s)
{
    static const char *const names[] = {"keep",  "discard", "inconclusive", "incorrect",
                                        "crash", "timeout", "rejected",     "correct"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(s, names[i])) return 1;
    return 0;
}

/* Checks one line (without its newline) and returns its description. */
static const char *check_line(char *line, size_t lineno)
{
    char *f[NFIELDS + 1];
    int n = 0;
    for (char *p = line; n <= NFIELDS;) {
        f[n++] = p;
        p = strchr(p, '\t');
        if (!p) break;
        *p++ = '\0';
    }
    if (n != NFIELDS) fail_msg("ledger line %zu has %d fields, not %d", lineno, n, NFIELDS);
    int y, mo, d, h, mi, s;
    char z;
    if (sscanf(f[0], "%4d-%2d-%2dT%2d:%2d:%2d%c", &y, &mo, &d, &h, &mi, &s, &z) != 7 || z != 'Z' ||
        strlen(f[0]) != 20)
        fail_msg("ledger line %zu: timestamp '%s'", lineno, f[0]);
    if (!is_status(f[6])) fail_msg("ledger line %zu: status '%s'", lineno, f[6]);
    for (int k = 7; k <= 10; k++)
        if (strcmp(f[k], "n/a") != 0 && !is_number(f[k]))
            fail_msg("ledger line %zu: field %d is '%s'", lineno, k + 1, f[k]);
    if (!is_number(f[11])) fail_msg("ledger line %zu: trial_seconds '%s'", lineno, f[11]);
    if (strlen(f[3]) != 16 || strspn(f[3], "0123456789abcdef") != 16)
        fail_msg("ledger line %zu: digest '%s'", lineno, f[3]);
    if (f[KB__LF_CAND][0] != '/')
        fail_msg("ledger line %zu: candidate '%s' is not absolute", lineno, f[KB__LF_CAND]);
    if (strcmp(f[KB__LF_LEDGER_VERSION], "2") != 0)
        fail_msg("ledger line %zu: ledger_version '%s'", lineno, f[KB__LF_LEDGER_VERSION]);
    return f[12];
}

static void one_round(uint64_t seed, int round)
{
    char ledger[512];
    snprintf(ledger, sizeof ledger, "%s/results-%d.tsv", g_dir, round);
    uint64_t rs = seed;
    proc p[NPROC];
    memset(p, 0, sizeof p);
    /* kill 2 to 4 of the 8: some at a random moment of their run, some
     * the moment another trial's line lands, when the rest are finishing
     * and about to append too */
    int nkill = 2 + (int)(next_rand(&rs) % 3);
    for (int i = 0; i < NPROC; i++) {
        snprintf(p[i].token, sizeof p[i].token, "kill-test-%016llx-%d-%d", (unsigned long long)seed,
                 round, i);
        p[i].kill_at_ms = -1;
    }
    for (int k = 0; k < nkill;) {
        int i = (int)(next_rand(&rs) % NPROC);
        if (p[i].kill_at_ms >= 0) continue;
        if (next_rand(&rs) & 1)
            p[i].kill_on_append = 1;
        else
            p[i].kill_at_ms = (int64_t)(next_rand(&rs) % 8000);
        k++;
    }
    uint64_t t0 = now_ms();
    for (int i = 0; i < NPROC; i++) {
        p[i].pid = start_trial(ledger, p[i].token);
        assert_true(p[i].pid > 0);
    }
    /* Reap and kill; a child is only signalled before it is reaped, so the
     * pid is still ours. Two minutes is far past any 0.3 s-budget trial. */
    int left = NPROC;
    off_t seen = 0;
    while (left > 0) {
        uint64_t t = now_ms() - t0;
        struct stat st;
        int grew = stat(ledger, &st) == 0 && st.st_size != seen;
        if (grew) seen = st.st_size;
        for (int i = 0; i < NPROC; i++) {
            if (p[i].done) continue;
            pid_t w = waitpid(p[i].pid, &p[i].status, WNOHANG);
            if (w == p[i].pid) {
                p[i].done = 1;
                left--;
            } else if (!p[i].killed && ((p[i].kill_at_ms >= 0 && (int64_t)t >= p[i].kill_at_ms) ||
                                        (p[i].kill_on_append && grew))) {
                kill(p[i].pid, SIGKILL);
                p[i].killed = 1;
                grew = 0; /* one victim per append */
            } else if (t > 120000 && !p[i].killed) {
                kill(p[i].pid, SIGKILL);
                fail_msg("trial %d (%s) still runs after 120 s", i, p[i].token);
            }
        }
        usleep(2000);
    }

    /* The file: header once, then whole, parseable lines. */
    FILE *f = fopen(ledger, "r");
    int normal = 0;
    for (int i = 0; i < NPROC; i++) normal += WIFEXITED(p[i].status);
    if (!f) {
        /* only possible when every trial died before appending */
        assert_int_equal(normal, 0);
        return;
    }
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        lineno++;
        if ((size_t)n != strlen(line)) fail_msg("ledger line %zu has a NUL byte", lineno);
        if (line[n - 1] != '\n')
            fail_msg("ledger line %zu is incomplete (no newline): '%s'", lineno, line);
        if (lineno == 1) {
            assert_string_equal(line, KB__LEDGER_HEADER);
            continue;
        }
        line[n - 1] = '\0';
        if (!strcmp(line, KB__LEDGER_COLUMNS_V2))
            fail_msg("the header appears again at line %zu", lineno);
        const char *desc = check_line(line, lineno);
        int owner = -1;
        for (int i = 0; i < NPROC; i++)
            if (!strcmp(desc, p[i].token)) owner = i;
        if (owner < 0)
            fail_msg("ledger line %zu has a description of no trial: '%s'", lineno, desc);
        p[owner].lines++;
    }
    free(line);
    fclose(f);
    assert_true(lineno >= 1);

    int killed_mid = 0;
    for (int i = 0; i < NPROC; i++) {
        if (p[i].lines > 1) fail_msg("trial %d (%s) has %d lines", i, p[i].token, p[i].lines);
        if (WIFEXITED(p[i].status)) {
            int code = WEXITSTATUS(p[i].status);
            /* a verdict: keep 0, discard 1, incorrect 2, crash/timeout/rejected 3,
             * inconclusive 4 */
            if (code > 4) fail_msg("trial %d (%s) exited %d, not a verdict", i, p[i].token, code);
            if (p[i].lines != 1)
                fail_msg("trial %d (%s) exited normally (%d) but has no ledger line", i, p[i].token,
                         code);
        } else {
            assert_true(WIFSIGNALED(p[i].status) && WTERMSIG(p[i].status) == SIGKILL);
            assert_true(p[i].killed);
            killed_mid += p[i].lines == 0;
        }
    }
    print_message("round %d: %d exited normally, %d killed (%d before appending), %zu lines\n",
                  round, normal, NPROC - normal, killed_mid, lineno - 1);
}

static void test_concurrent_trials_with_kills(void **state)
{
    (void)state;
    const char *s = getenv("KB_LEDGER_KILL_SEED");
    uint64_t seed =
        s && *s ? strtoull(s, NULL, 0) : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    const char *r = getenv("KB_LEDGER_KILL_ROUNDS");
    int rounds = r && *r ? atoi(r) : 1;
    print_message("KB_LEDGER_KILL_SEED=0x%016llx, %d round(s)\n", (unsigned long long)seed, rounds);
    for (int i = 0; i < rounds; i++) {
        uint64_t rs = seed + (uint64_t)i;
        one_round(next_rand(&rs), i);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_concurrent_trials_with_kills, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
