/*
 * test_pick.c -- `kbench pick`: of several ISA variants of one kernel, the
 * ones this machine lacks features for are shown unsupported and never run,
 * the others are trialled, and the best kept one is named.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "kb_run.h"

static void test_pick_skips_unsupported_and_names_the_best(void **s)
{
    (void)s;
    const char *needs_more = kb_path("tests/fixtures/fx_needs_foreign_isa.so");
    const char *portable = kb_path("plugins/pq-l2/portable.so");
    const char *baseline = kb_path("plugins/pq-l2/baseline.so");
    if (access(needs_more, R_OK) || access(portable, R_OK) || access(baseline, R_OK)) {
        print_message("pick fixtures not built; skipping\n");
        skip();
    }
    kb_run r;
    KB_RUN(&r, "pick", (char *)needs_more, (char *)baseline, (char *)portable, "--budget", "1");
    if (r.code != 0 && r.code != 1) print_error("%s\n%s\n", r.out, r.err);
    /* The variant needing a feature this CPU lacks is never run. */
    const char *line = strstr(r.out, "fx_needs_foreign_isa.so");
    assert_non_null(line);
    assert_non_null(strstr(line, "unsupported"));
    assert_string_equal(kb_field(&r, "target"), "pq-l2");
    /* The baseline is never the pick: the pick is portable, or none was kept
     * on a machine too busy to decide. */
    const char *best = kb_field(&r, "best");
    if (r.code == 0) {
        assert_non_null(strstr(best, "portable.so"));
        assert_true(atof(kb_field(&r, "best_geomean_ratio")) < 0.99);
    } else {
        assert_string_equal(best, "none kept");
    }
}

static void test_pick_refuses_mixed_targets(void **s)
{
    (void)s;
    kb_run r;
    KB_RUN(&r, "pick", (char *)kb_path("plugins/pq-l2/portable.so"),
           (char *)kb_path("plugins/posting-intersect/portable.so"), "--budget", "0.3");
    assert_int_equal(r.code, 64);
    assert_non_null(strstr(r.err, "is a variant of posting-intersect"));
    KB_RUN(&r, "pick");
    assert_int_equal(r.code, 64);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pick_skips_unsupported_and_names_the_best),
        cmocka_unit_test(test_pick_refuses_mixed_targets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
