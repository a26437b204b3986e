/*
 * test_run_cmd.c -- `kbench run`: a candidate called in a loop in the
 * foreground, for perf or a debugger. A correct plugin is checked ok and
 * timed, a wrong one reports its first mismatch and fails, --calls is the
 * number of calls made, and the output never passes for a verdict.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "kb_run.h"

#define NOT_A_VERDICT "not a verdict: no sandbox, no baseline interleaving; use `kbench trial`"

static const char *built_or_skip(const char *rel)
{
    const char *p = kb_path(rel);
    if (access(p, R_OK) != 0) {
        print_message("%s not built here; skipping\n", rel);
        skip();
    }
    return p;
}

static void show(const kb_run *r)
{
    print_message("exit %d\nstdout:\n%s\nstderr:\n%s\n", r->code, r->out, r->err);
}

static void test_correct_plugin(void **s)
{
    (void)s;
    const char *cand = built_or_skip("plugins/posting-intersect/portable.so");
    kb_run r;
    KB_RUN(&r, "run", (char *)cand, "--calls", "37");
    if (r.code != 0) show(&r);
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, NOT_A_VERDICT));
    assert_null(strstr(r.out, "\nstatus: ")); /* nothing a verdict reader would take */
    assert_string_equal(kb_field(&r, "target"), "posting-intersect");
    assert_memory_equal(kb_field(&r, "check"), "ok: ", 4);
    assert_string_equal(kb_field(&r, "calls"), "37");
    assert_true(atof(kb_field(&r, "ns_per_call_median")) > 0);
    assert_true(atof(kb_field(&r, "ns_per_call_mean")) > 0);
    /* the default case is the target's first quick one */
    assert_true(strlen(kb_field(&r, "case")) > 0);
}

/* --seconds alone: calls until the time is up; --case and --seed pick the
 * inputs, and the seed printed repeats them. */
static void test_seconds_case_seed(void **s)
{
    (void)s;
    const char *cand = built_or_skip("plugins/pq-l2/portable.so");
    kb_run r;
    KB_RUN(&r, "run", (char *)cand, "--seconds", "0.2", "--case", "n=1024,d=128,m=8/uniform",
           "--seed", "0x1234");
    if (r.code != 0) show(&r);
    assert_int_equal(r.code, 0);
    assert_string_equal(kb_field(&r, "case"), "n=1024,d=128,m=8/uniform");
    assert_string_equal(kb_field(&r, "seed"), "0x0000000000001234");
    assert_true(atoll(kb_field(&r, "calls")) >= 1);
    assert_memory_equal(kb_field(&r, "check"), "ok: ", 4);
}

/* fx_wrong_pi drops the last id of a k >= 4 intersection. */
static void test_wrong_plugin(void **s)
{
    (void)s;
    const char *cand = built_or_skip("tests/fixtures/fx_wrong_pi.so");
    kb_run r;
    KB_RUN(&r, "run", (char *)cand, "--case", "k=4,n=4096,ratio=16/dense", "--calls", "3");
    if (r.code != 2) show(&r);
    assert_int_equal(r.code, 2);
    assert_non_null(strstr(r.out, NOT_A_VERDICT));
    const char *check = kb_field(&r, "check");
    assert_memory_equal(check, "incorrect: ", 11);
    assert_non_null(strstr(check, "case k=4,n=4096,ratio=16/dense, output 'out'"));
    /* the last id dropped: one element fewer than the oracle's, whatever the seed */
    const char *prod = strstr(check, "produced ");
    assert_non_null(prod);
    unsigned long got = 0, want = 0;
    assert_int_equal(sscanf(prod, "produced %lu elements, expected %lu", &got, &want), 2);
    assert_int_equal(got + 1, want);
    assert_string_equal(kb_field(&r, "calls"), "3");
}

static void test_usage(void **s)
{
    (void)s;
    const char *cand = built_or_skip("plugins/posting-intersect/portable.so");
    kb_run r;
    KB_RUN(&r, "run", "--help");
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, "perf stat"));
    assert_non_null(strstr(r.out, "valgrind"));
    KB_RUN(&r, "run", (char *)cand, "--case", "k=99/nope", "--calls", "1");
    assert_int_equal(r.code, 64);
    assert_non_null(strstr(r.err, "unknown distribution 'nope' for posting-intersect"));
    KB_RUN(&r, "run", (char *)cand, "--seconds", "0");
    assert_int_equal(r.code, 64);
    KB_RUN(&r, "run", (char *)cand, "--calls", "0");
    assert_int_equal(r.code, 64);
    KB_RUN(&r, "run");
    assert_int_equal(r.code, 64);
    KB_RUN(&r, "run", "/nonexistent/cand.so");
    assert_int_equal(r.code, 64);
    assert_non_null(strstr(r.err, "no such file"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_correct_plugin),
        cmocka_unit_test(test_seconds_case_seed),
        cmocka_unit_test(test_wrong_plugin),
        cmocka_unit_test(test_usage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
