/*
 * test_outcheck.c -- the oracle-defined output check (ABI 1.2): a target
 * whose oracle has one is judged by it, not element by element, on every
 * input set the host judges, and NaN still never matches
 * (tests/fixtures/abi/fx_check.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "kb_run.h"

#define FX_ORACLES KB_TEST_BUILD_DIR "/tests/fixtures/oracles"

static const char *fx(const char *name)
{
    static char path[4096];
    snprintf(path, sizeof path, "%s", kb_path(name));
    return path;
}

/* The oracle takes the first of two near-equal minima, this candidate the
 * last: wrong element by element, right under the check's tolerance. */
static void test_near_tie_is_correct(void **state)
{
    (void)state;
    kb_run r;
    KB_RUN(&r, "verify", (char *)fx("tests/fixtures/fx_check_near.so"), "--oracles", FX_ORACLES,
           "--cases", "all");
    if (r.code != 0) fail_msg("exit %d\n%s%s", r.code, r.out, r.err);
    assert_string_equal(kb_field(&r, "status"), "correct");
}

/* The clearly second smallest fails, and the verdict carries the check's
 * reason: which element, what was expected, what came, why. */
static void test_second_is_incorrect_with_reason(void **state)
{
    (void)state;
    kb_run r;
    KB_RUN(&r, "verify", (char *)fx("tests/fixtures/fx_check_far.so"), "--oracles", FX_ORACLES,
           "--cases", "all");
    assert_string_equal(kb_field(&r, "status"), "incorrect");
    const char *why = kb_field(&r, "reason");
    if (!strstr(why, "case n=4096/ties: idx: x[") || !strstr(why, "above the minimum x[") ||
        !strstr(why, "(tolerance 1e-05)"))
        fail_msg("reason: %s\n%s%s", why, r.out, r.err);
}

/* A check that would let NaN through (fabs(NaN - x) > tol is false) is
 * not asked: the host refuses NaN first, as the elementwise rule does. */
static void test_nan_never_matches(void **state)
{
    (void)state;
    kb_run r;
    KB_RUN(&r, "verify", (char *)fx("tests/fixtures/fx_check_nan.so"), "--oracles", FX_ORACLES,
           "--cases", "all");
    assert_string_equal(kb_field(&r, "status"), "incorrect");
    const char *why = kb_field(&r, "reason");
    if (!strstr(why, "output 'val'[0]: got NaN, which never matches"))
        fail_msg("reason: %s\n%s%s", why, r.out, r.err);
}

/* A trial judges the fresh sets (numbered from 16, after the timed ones)
 * through the check too, not only the timed ones. */
static void test_trial_checks_fresh_sets(void **state)
{
    (void)state;
    char log[] = "/tmp/kb_outcheck_XXXXXX";
    int fd = mkstemp(log);
    assert_true(fd >= 0);
    close(fd);
    setenv("FX_CHECK_LOG", log, 1);
    kb_run r;
    KB_RUN(&r, "trial", (char *)fx("tests/fixtures/fx_check_near.so"), "--oracles", FX_ORACLES,
           "--budget", "0.5");
    unsetenv("FX_CHECK_LOG");
    FILE *f = fopen(log, "r");
    assert_non_null(f);
    int set, timed = 0, fresh = 0;
    while (fscanf(f, "set %d\n", &set) == 1) {
        if (set < 16)
            timed++;
        else
            fresh++;
    }
    fclose(f);
    unlink(log);
    if (strcmp(kb_field(&r, "status"), "incorrect") == 0 || timed == 0 || fresh == 0)
        fail_msg("status %s, %d timed and %d fresh sets checked\n%s%s", kb_field(&r, "status"),
                 timed, fresh, r.out, r.err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_near_tie_is_correct),
        cmocka_unit_test(test_second_is_incorrect_with_reason),
        cmocka_unit_test(test_nan_never_matches),
        cmocka_unit_test(test_trial_checks_fresh_sets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
