/*
 * test_target_predicate.c -- the predicate target end to end (made by scripts/scaffold-target.sh):
 * its oracle loads and passes the spec checks, the baseline matches the oracle on every
 * case, and a trial of the baseline against the oracle is never a keep.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "kb_run.h"

static void test_baseline_verifies(void **s)
{
    (void)s;
    kb_run r;
    KB_RUN(&r, "verify", (char *)kb_path("plugins/predicate/baseline.so"), "--cases", "all");
    if (r.code != 0) print_error("%s\n%s\n", r.out, r.err);
    assert_int_equal(r.code, 0);
    assert_string_equal(kb_field(&r, "status"), "correct");
    assert_string_equal(kb_field(&r, "target"), "predicate");
}

static void test_baseline_is_not_kept(void **s)
{
    (void)s;
    kb_run r;
    KB_RUN(&r, "trial", (char *)kb_path("plugins/predicate/baseline.so"), "--budget", "1");
    /* discard or inconclusive; on a loaded machine the harness may also reject a side for
     * work between calls, which is still not a keep (test_baseline_verifies covers crashes) */
    if (r.code != 1 && r.code != 4) print_message("%s: %s\n", kb_field(&r, "status"), kb_field(&r, "reason"));
    assert_string_not_equal(kb_field(&r, "status"), "keep");
    assert_true(r.code != 0 && r.code != 64 && r.code != 70);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_baseline_verifies),
        cmocka_unit_test(test_baseline_is_not_kept),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
