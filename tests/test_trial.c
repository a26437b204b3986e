/*
 * test_trial.c -- end to end: the built kbench binary on the real targets.
 * Optimized candidates are kept, a copy of the oracle never is, a wrong
 * candidate is incorrect with the case named, and the outputs (block, JSON,
 * ledger) carry the verdict.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <jansson.h>

#include "kb_run.h"
#include "kb_bg.h"

static void expect_status(const kb_run *r, const char *status, int code) {
    if (strcmp(kb_field(r, "status"), status) != 0 || r->code != code)
        print_error("expected %s (%d), got '%s' (%d)\nstdout:\n%s\nstderr:\n%s\n", status, code,
                    kb_field(r, "status"), r->code, r->out, r->err);
    assert_string_equal(kb_field(r, "status"), status);
    assert_int_equal(r->code, code);
}

static void skip_unless(const char *rel) {
    if (access(kb_path(rel), R_OK) != 0) {
        print_message("%s not built here; skipping\n", rel);
        skip();
    }
}

static void test_pq_optimized_is_kept(void **s) {
    (void)s;
    skip_unless("plugins/pq-l2/avx512.so");
    kb_run r;
    KB_RUN(&r, "trial", (char *)kb_path("plugins/pq-l2/avx512.so"));
    expect_status(&r, "keep", 0);
    assert_true(atof(kb_field(&r, "ci90_high")) < 0.99);
    assert_string_equal(kb_field(&r, "target"), "pq-l2");
}

static void test_pi_optimized_is_kept(void **s) {
    (void)s;
    skip_unless("plugins/posting-intersect/avx512.so");
    kb_run r;
    KB_RUN(&r, "trial", (char *)kb_path("plugins/posting-intersect/avx512.so"));
    expect_status(&r, "keep", 0);
    assert_string_equal(kb_field(&r, "target"), "posting-intersect");
}

/* The null control: a byte-identical copy of the oracle, in its own worker,
 * against the oracle. Nothing but noise separates the two, so a keep is a
 * false keep. (The shipped baseline.so is the oracle's source, not its
 * bytes: its code layout differs and can be a few percent faster or slower
 * on a given CPU; measurement.md "Code layout".) */
static void identical_copy_never_kept(const char *target) {
    char oracle[4096], copy[] = "/tmp/kb-aa-XXXXXX.so";
    snprintf(oracle, sizeof oracle, "%s/oracles/%s/oracle.so", KB_TEST_BUILD_DIR, target);
    int fd = mkstemps(copy, 3);
    assert_true(fd >= 0);
    close(fd);
    kb_bg_put(oracle, copy, 0, 0);
    kb_run r;
    KB_RUN(&r, "trial", copy);
    unlink(copy);
    if (!strcmp(kb_field(&r, "status"), "keep")) print_error("%s\n", r.out);
    assert_string_equal(kb_field(&r, "target"), target);
    assert_string_not_equal(kb_field(&r, "status"), "keep");
    assert_true(r.code == 1 || r.code == 4);
}

static void test_identical_copy_never_kept(void **s) {
    (void)s;
    identical_copy_never_kept("pq-l2");
    identical_copy_never_kept("posting-intersect");
}

static void test_wrong_pq_is_incorrect(void **s) {
    (void)s;
    skip_unless("tests/fixtures/fx_wrong_pq.so");
    kb_run r;
    /* The wrong element is only in the larger cases: run them all. */
    KB_RUN(&r, "verify", (char *)kb_path("tests/fixtures/fx_wrong_pq.so"), "--cases", "all");
    expect_status(&r, "incorrect", 2);
    const char *reason = kb_field(&r, "reason");
    assert_non_null(strstr(reason, "case n="));
    assert_non_null(strstr(reason, "expected"));
    assert_non_null(strstr(reason, "got"));
    KB_RUN(&r, "trial", (char *)kb_path("tests/fixtures/fx_wrong_pq.so"), "--cases", "all");
    expect_status(&r, "incorrect", 2);
}

static void test_wrong_pi_is_incorrect(void **s) {
    (void)s;
    skip_unless("tests/fixtures/fx_wrong_pi.so");
    kb_run r;
    KB_RUN(&r, "trial", (char *)kb_path("tests/fixtures/fx_wrong_pi.so"), "--cases", "all");
    expect_status(&r, "incorrect", 2);
    assert_non_null(strstr(kb_field(&r, "reason"), "case k="));
}

static void test_verify_correct(void **s) {
    (void)s;
    kb_run r;
    KB_RUN(&r, "verify", (char *)kb_path("plugins/posting-intersect/portable.so"), "--cases", "all");
    expect_status(&r, "correct", 0);
}

static void test_json_and_ledger(void **s) {
    (void)s;
    char ledger[] = "/tmp/kb-test-ledger-XXXXXX";
    int fd = mkstemp(ledger);
    assert_true(fd >= 0);
    close(fd);
    unlink(ledger); /* kbench creates it with the header */
    kb_run r;
    KB_RUN(&r, "trial", (char *)kb_path("plugins/posting-intersect/avx512.so"), "--json", "--ledger",
           ledger, "--description", "e2e\tjson", "--budget", "0.5");
    json_error_t e;
    json_t *j = json_loads(r.out, 0, &e);
    if (!j) print_error("not JSON (%s): %s\n", e.text, r.out);
    assert_non_null(j);
    assert_non_null(json_object_get(j, "context"));
    json_t *b = json_object_get(j, "benchmarks");
    if (!json_is_array(b) || json_array_size(b) == 0) print_error("no benchmarks: %s\n", r.out);
    assert_true(json_is_array(b) && json_array_size(b) > 0);
    json_t *b0 = json_array_get(b, 0);
    assert_string_equal(json_string_value(json_object_get(b0, "time_unit")), "ns");
    assert_true(json_number_value(json_object_get(b0, "real_time")) > 0);
    char st[32];
    const char *sv = json_string_value(json_object_get(json_object_get(j, "kbench"), "status"));
    assert_non_null(sv);
    snprintf(st, sizeof st, "\t%s\t", sv);
    json_decref(j);

    FILE *f = fopen(ledger, "r");
    assert_non_null(f);
    char line[4096];
    assert_non_null(fgets(line, sizeof line, f));
    assert_non_null(strstr(line, "timestamp\ttarget"));
    assert_non_null(fgets(line, sizeof line, f));
    assert_non_null(strstr(line, "posting-intersect"));
    assert_non_null(strstr(line, st));
    assert_non_null(strstr(line, "e2e json"));
    assert_null(fgets(line, sizeof line, f));
    fclose(f);
    unlink(ledger);
}

static void test_usage_errors(void **s) {
    (void)s;
    kb_run r;
    KB_RUN(&r, "trial", "/nonexistent/cand.so");
    assert_int_equal(r.code, 64);
    assert_non_null(strstr(r.err, "/nonexistent/cand.so"));
    KB_RUN(&r, "trial");
    assert_int_equal(r.code, 64);
    KB_RUN(&r, "trial", (char *)kb_path("plugins/posting-intersect/avx512.so"), "--budget", "x");
    assert_int_equal(r.code, 64);
    KB_RUN(&r, "frobnicate");
    assert_int_equal(r.code, 64);
    KB_RUN(&r, "trial", "--help");
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, "inconclusive  4"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_verify_correct),
        cmocka_unit_test(test_pi_optimized_is_kept),
        cmocka_unit_test(test_pq_optimized_is_kept),
        cmocka_unit_test(test_identical_copy_never_kept),
        cmocka_unit_test(test_wrong_pq_is_incorrect),
        cmocka_unit_test(test_wrong_pi_is_incorrect),
        cmocka_unit_test(test_json_and_ledger),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
