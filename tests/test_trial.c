/*
 * test_trial.c -- end to end: the built kbench binary on the real targets.
 * The best variant this CPU runs gets a timing verdict, a wrong candidate is
 * incorrect with the case named, and the outputs (block, JSON, ledger) carry
 * the verdict. That a copy of the oracle is never kept is a claim about
 * noise: tests/measure/test_measure.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <jansson.h>
#include <math.h>
#include <sched.h>
#include <sys/file.h>

#include "kb_run.h"
#include "kb_bg.h"
#include "kb_pick.h"

static void expect_status(const kb_run *r, const char *status, int code)
{
    if (strcmp(kb_field(r, "status"), status) != 0 || r->code != code)
        print_error("expected %s (%d), got '%s' (%d)\nstdout:\n%s\nstderr:\n%s\n", status, code,
                    kb_field(r, "status"), r->code, r->out, r->err);
    assert_string_equal(kb_field(r, "status"), status);
    assert_int_equal(r->code, code);
}

static void skip_unless(const char *rel)
{
    if (access(kb_path(rel), R_OK) != 0) {
        print_message("%s not built here; skipping\n", rel);
        skip();
    }
}

/* The best variant of each target this CPU runs (kb_pick.h) is correct and
 * timed: a timing verdict, whichever it is. That it is kept, a claim about
 * speed, is the measurement suite's (tests/measure/test_measure.c). */
static void best_is_timed(const char *target)
{
    const char *best;
    KB_PICK_OR_SKIP(best, target);
    kb_run r;
    KB_RUN(&r, "trial", (char *)best, "--budget", "0.5");
    const char *st = kb_field(&r, "status");
    int ok = (!strcmp(st, "keep") && r.code == 0) || (!strcmp(st, "discard") && r.code == 1) ||
             (!strcmp(st, "inconclusive") && r.code == 4);
    /* An emulated kbench (scripts/matrix.sh suite cells) reads the fresh
     * probe's one-call batches with its own emulated overhead in them; it
     * knows its timing cannot be trusted there and says inconclusive
     * (host/core/trust.c), which the line above accepts. */
    if (!ok)
        print_error("%s: expected a timing verdict, got '%s' (%d)\n%s\n%s\n", best, st, r.code,
                    r.out, r.err);
    assert_true(ok);
    assert_string_equal(kb_field(&r, "target"), target);
    /* An inconclusive that ended timing early (the emulated case above, or
     * a baseline busy between calls on a loaded machine) has no ratio; it
     * must say that its timing could not be trusted. */
    const char *gs = kb_field(&r, "geomean_ratio");
    if (!strcmp(gs, "n/a") && r.code == 4) {
        assert_non_null(strstr(kb_field(&r, "reason"), "cannot be trusted"));
        return;
    }
    const double g = atof(gs);
    assert_true(g > 0.0);
    /* The verdict's CI holds the trial's own and the spread between trials
     * besides (host/trial/measure.c spread_half): 1.645 x min(0.25 |log g|,
     * 0.08) in log space, printed to two decimals in %. */
    const double lo = atof(kb_field(&r, "ci90_low")), hi = atof(kb_field(&r, "ci90_high"));
    const double tlo = atof(kb_field(&r, "trial_ci90_low"));
    const double thi = atof(kb_field(&r, "trial_ci90_high"));
    assert_true(lo > 0 && lo <= tlo && tlo <= g && g <= thi && thi <= hi);
    const double sd = 0.25 * fabs(log(g)) < 0.08 ? 0.25 * fabs(log(g)) : 0.08;
    const double spread = 100.0 * (exp(1.6449 * sd) - 1.0);
    assert_true(fabs(atof(kb_field(&r, "spread_pct")) - spread) < 0.02);
    if (spread > 1.0) assert_true(log(hi / g) > log(thi / g) + 0.001);
}

static void test_pq_best_variant_is_timed(void **s)
{
    (void)s;
    best_is_timed("pq-l2");
}

static void test_pi_best_variant_is_timed(void **s)
{
    (void)s;
    best_is_timed("posting-intersect");
}

static void test_wrong_pq_is_incorrect(void **s)
{
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
    /* A trial checks first too: on the case verify named, not all again. */
    char wrong_case[256];
    const char *at = strstr(reason, "case ") + 5;
    const char *end = strstr(at, ", ");
    snprintf(wrong_case, sizeof wrong_case, "%.*s", end ? (int)(end - at) : (int)strlen(at), at);
    KB_RUN(&r, "trial", (char *)kb_path("tests/fixtures/fx_wrong_pq.so"), "--cases", wrong_case);
    expect_status(&r, "incorrect", 2);
}

static void test_wrong_pi_is_incorrect(void **s)
{
    (void)s;
    skip_unless("tests/fixtures/fx_wrong_pi.so");
    kb_run r;
    KB_RUN(&r, "trial", (char *)kb_path("tests/fixtures/fx_wrong_pi.so"), "--cases", "all");
    expect_status(&r, "incorrect", 2);
    assert_non_null(strstr(kb_field(&r, "reason"), "case k="));
}

static void test_verify_correct(void **s)
{
    (void)s;
    kb_run r;
    KB_RUN(&r, "verify", (char *)kb_path("plugins/posting-intersect/portable.so"), "--cases",
           "all");
    expect_status(&r, "correct", 0);
}

static void test_json_and_ledger(void **s)
{
    (void)s;
    char ledger[] = "/tmp/kb-test-ledger-XXXXXX";
    int fd = mkstemp(ledger);
    assert_true(fd >= 0);
    close(fd);
    unlink(ledger); /* kbench creates it with the header */
    kb_run r;
    KB_RUN(&r, "trial", (char *)kb_path("plugins/posting-intersect/portable.so"), "--json",
           "--ledger", ledger, "--description", "e2e\tjson", "--budget", "0.5");
    json_error_t e;
    json_t *j = json_loads(r.out, 0, &e);
    if (!j) print_error("not JSON (%s), exit %d: %s\nstderr:\n%s\n", e.text, r.code, r.out, r.err);
    assert_non_null(j);
    assert_non_null(json_object_get(j, "context"));
    char st[32];
    const char *sv = json_string_value(json_object_get(json_object_get(j, "kbench"), "status"));
    assert_non_null(sv);
    /* Timings, unless an emulated kbench's timing checks ended it (see
     * best_is_timed): then the ledger line below is still asserted. */
    const char *why = json_string_value(json_object_get(json_object_get(j, "kbench"), "reason"));
    if (!kb_emulated_timing_reason(sv, why)) {
        json_t *b = json_object_get(j, "benchmarks");
        if (!json_is_array(b) || json_array_size(b) == 0) print_error("no benchmarks: %s\n", r.out);
        assert_true(json_is_array(b) && json_array_size(b) > 0);
        json_t *b0 = json_array_get(b, 0);
        assert_string_equal(json_string_value(json_object_get(b0, "time_unit")), "ns");
        assert_true(json_number_value(json_object_get(b0, "real_time")) > 0);
    }
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

static void test_usage_errors(void **s)
{
    (void)s;
    kb_run r;
    KB_RUN(&r, "trial", "/nonexistent/cand.so");
    assert_int_equal(r.code, 64);
    assert_non_null(strstr(r.err, "/nonexistent/cand.so"));
    KB_RUN(&r, "trial");
    assert_int_equal(r.code, 64);
    KB_RUN(&r, "trial", (char *)kb_path("plugins/posting-intersect/portable.so"), "--budget", "x");
    assert_int_equal(r.code, 64);
    KB_RUN(&r, "frobnicate");
    assert_int_equal(r.code, 64);
    KB_RUN(&r, "trial", "--help");
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, "inconclusive  4"));
}

/* Two trials at once on one machine would time each other (their workers
 * share the last CPU): a second trial waits for the first's lock and says
 * so. */
static void test_a_second_trial_waits(void **s)
{
    (void)s;
    cpu_set_t set;
    assert_int_equal(sched_getaffinity(0, sizeof set, &set), 0);
    int cpu = CPU_SETSIZE - 1;
    while (cpu > 0 && !CPU_ISSET(cpu, &set)) cpu--;
    char path[64];
    snprintf(path, sizeof path, "/tmp/kbench-timing-cpu%d.lock", cpu);
    int ready[2];
    assert_int_equal(pipe(ready), 0);
    const pid_t holder = fork();
    assert_true(holder >= 0);
    if (holder == 0) { /* another trial, timing for a second */
        const int fd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0 || flock(fd, LOCK_EX) != 0) _exit(1);
        if (write(ready[1], "x", 1) != 1) _exit(1);
        usleep(1000 * 1000);
        _exit(0);
    }
    close(ready[1]);
    char c;
    assert_int_equal(read(ready[0], &c, 1), 1);
    close(ready[0]);
    kb_run r;
    KB_RUN(&r, "verify", (char *)kb_path("plugins/posting-intersect/portable.so"));
    int st;
    assert_int_equal(waitpid(holder, &st, 0), holder);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    if (!strstr(r.err, "another trial is timing on CPU"))
        fail_msg("no wait reported:\n%s\n%s", r.out, r.err);
    expect_status(&r, "correct", 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_verify_correct),
        cmocka_unit_test(test_pi_best_variant_is_timed),
        cmocka_unit_test(test_pq_best_variant_is_timed),
        cmocka_unit_test(test_wrong_pq_is_incorrect),
        cmocka_unit_test(test_wrong_pi_is_incorrect),
        cmocka_unit_test(test_json_and_ledger),
        cmocka_unit_test(test_a_second_trial_waits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
