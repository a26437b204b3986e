/*
 * test_target_pq_cosine.c -- the pq-cosine target end to end: its oracle is listed and
 * pinned, every candidate this CPU runs (baseline, portable and the ISA files, as
 * tests/kb_pick.h judges them) matches the oracle on every case, a lossy candidate (the query
 * normalized by an approximate reciprocal square root) is reported incorrect, and a trial of
 * the baseline against the oracle is never a keep.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "kb_run.h"
#include "kb_pick.h"

#define TARGET "pq-cosine"

static void test_listed_and_pinned(void **s)
{
    (void)s;
    kb_run r;
    KB_RUN(&r, "list");
    assert_int_equal(r.code, 0);
    if (!strstr(r.out, "target: " TARGET "\n"))
        fail_msg("kbench list does not show " TARGET ":\n%s", r.out);
    assert_non_null(strstr(r.out, "pin: ok (" KB_TEST_SOURCE_DIR "/oracles/" TARGET "/PIN)"));
    assert_null(strstr(r.out, "pin: WARNING"));
}

/* Each candidate file that is built; those this CPU cannot run are named, not run. */
static void test_candidates_verify(void **s)
{
    (void)s;
    static const char *const files[] = {"baseline", "portable", "avx2", "avx512", "neon"};
    int ran = 0;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char rel[128], why[512];
        snprintf(rel, sizeof rel, "plugins/" TARGET "/%s.so", files[i]);
        const char *path = kb_path(rel);
        if (access(path, R_OK) != 0) continue;
        if (!kb_pick_runs(path, why, sizeof why)) {
            print_message("%s: not run on this CPU (%s)\n", rel, why);
            continue;
        }
        kb_run r;
        KB_RUN(&r, "verify", (char *)path, "--cases", "all");
        if (r.code != 0) fail_msg("%s: exit %d\n%s\n%s", rel, r.code, r.out, r.err);
        assert_string_equal(kb_field(&r, "status"), "correct");
        assert_string_equal(kb_field(&r, "target"), TARGET);
        ran++;
    }
    assert_true(ran >= 2); /* baseline and portable run everywhere */
}

static void test_lossy_normalization_is_incorrect(void **s)
{
    (void)s;
    const char *path = kb_path("tests/fixtures/fx_wrong_pq_cosine.so");
    if (access(path, R_OK) != 0) fail_msg("%s is not built", path);
    kb_run r;
    KB_RUN(&r, "verify", (char *)path, "--cases", "all");
    assert_int_equal(r.code, 2);
    assert_string_equal(kb_field(&r, "status"), "incorrect");
    assert_non_null(strstr(kb_field(&r, "reason"), "case n="));
}

static void test_baseline_is_not_kept(void **s)
{
    (void)s;
    kb_run r;
    KB_RUN(&r, "trial", (char *)kb_path("plugins/" TARGET "/baseline.so"), "--budget", "1");
    /* discard or inconclusive; on a loaded machine the harness may also reject a side for
     * work between calls, which is still not a keep (test_candidates_verify covers crashes) */
    if (r.code != 1 && r.code != 4)
        print_message("%s: %s\n", kb_field(&r, "status"), kb_field(&r, "reason"));
    assert_string_not_equal(kb_field(&r, "status"), "keep");
    assert_true(r.code != 0 && r.code != 64 && r.code != 70);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_listed_and_pinned),
        cmocka_unit_test(test_candidates_verify),
        cmocka_unit_test(test_lossy_normalization_is_incorrect),
        cmocka_unit_test(test_baseline_is_not_kept),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
