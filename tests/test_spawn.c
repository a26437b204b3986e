/*
 * test_spawn.c -- a worker's setup steps between fork and exec: a step that
 * fails is reported by name and errno (spawn.c's error pipe), not as a
 * worker that exited 127, and a good spawn still starts a worker that
 * answers and quits.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "sandbox.h"

static const char *kbench_exe(void)
{
    return KB_TEST_BUILD_DIR "/kbench";
}

/* Pinning to a CPU no machine has fails in the child: the host's error
 * names the step and EINVAL, and no worker is left. */
static void test_affinity_failure_is_named(void **state)
{
    (void)state;
    kb__worker w;
    const kb__limits lim = {.as_bytes = 0, .cpu_seconds = 10, .cpu = CPU_SETSIZE - 1};
    char err[512] = "";
    int rc = kb__worker_spawn(&w, kbench_exe(), "candidate", &lim, err, sizeof err);
    assert_int_equal(rc, KB__ECHILD);
    assert_non_null(strstr(err, "candidate worker"));
    assert_non_null(strstr(err, "sched_setaffinity"));
    assert_non_null(strstr(err, strerror(EINVAL)));
    assert_int_equal(w.pid, -1);
    assert_int_equal(w.sock, -1);
}

/* An exec that fails is reported as the exec, with its errno. */
static void test_exec_failure_is_named(void **state)
{
    (void)state;
    if (kb__worker_emulated()) skip(); /* the exec is the emulator's */
    kb__worker w;
    const kb__limits lim = {.as_bytes = 0, .cpu_seconds = 10, .cpu = -1};
    char err[512] = "";
    int rc = kb__worker_spawn(&w, "/nonexistent/kbench", "baseline", &lim, err, sizeof err);
    assert_int_equal(rc, KB__ECHILD);
    assert_non_null(strstr(err, "baseline worker"));
    assert_non_null(strstr(err, "exec of the worker"));
    assert_non_null(strstr(err, strerror(ENOENT)));
}

/* The twin: the same limits with a real CPU and binary start a worker. */
static void test_good_spawn_starts_a_worker(void **state)
{
    (void)state;
    kb__worker w;
    const kb__limits lim = {.as_bytes = 16ull << 30, .cpu_seconds = 10, .cpu = -1};
    char err[512] = "";
    int rc = kb__worker_spawn(&w, kbench_exe(), "candidate", &lim, err, sizeof err);
    assert_int_equal(rc, 0);
    assert_true(w.pid > 0);
    kb__failure fail;
    memset(&fail, 0, sizeof fail);
    rc = kb__worker_quit(&w, 10.0, &fail);
    if (rc != 0) fprintf(stderr, "quit: %s\n", fail.reason);
    assert_int_equal(rc, 0);
    kb__worker_kill(&w);
}

/* A hard limit lower than kbench's own, set by whoever started kbench,
 * stays: the worker gets it, and the spawn does not fail trying to raise
 * it. Runs last: it lowers this process's RLIMIT_CPU for good. */
static void test_stricter_inherited_limit_stays(void **state)
{
    (void)state;
    struct rlimit mine;
    assert_int_equal(getrlimit(RLIMIT_CPU, &mine), 0);
    if (mine.rlim_max != RLIM_INFINITY && mine.rlim_max < 1000) skip();
    const struct rlimit lower = {1000, 1000};
    assert_int_equal(setrlimit(RLIMIT_CPU, &lower), 0);
    kb__worker w;
    const kb__limits lim = {.as_bytes = 16ull << 30, .cpu_seconds = 5000, .cpu = -1};
    char err[512] = "";
    int rc = kb__worker_spawn(&w, kbench_exe(), "candidate", &lim, err, sizeof err);
    if (rc != 0) fprintf(stderr, "spawn: %s\n", err);
    assert_int_equal(rc, 0);
    struct rlimit got;
    assert_int_equal(prlimit(w.pid, RLIMIT_CPU, NULL, &got), 0);
    assert_true(got.rlim_max <= 1000 && got.rlim_cur <= got.rlim_max);
    kb__failure fail;
    memset(&fail, 0, sizeof fail);
    assert_int_equal(kb__worker_quit(&w, 10.0, &fail), 0);
    kb__worker_kill(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_affinity_failure_is_named),
        cmocka_unit_test(test_exec_failure_is_named),
        cmocka_unit_test(test_good_spawn_starts_a_worker),
        cmocka_unit_test(test_stricter_inherited_limit_stays),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
