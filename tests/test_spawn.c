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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_affinity_failure_is_named),
        cmocka_unit_test(test_exec_failure_is_named),
        cmocka_unit_test(test_good_spawn_starts_a_worker),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
