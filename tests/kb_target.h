/*
 * kb_target.h -- the end-to-end checks every target's test makes
 * (tests/test_target_<t>.c defines TARGET, WRONG_FX and WRONG_CASES, then
 * includes this): its oracle is listed and pinned; every candidate this CPU
 * runs (baseline, portable and the ISA files, as tests/kb_pick.h judges
 * them) matches the oracle on the cases kb_verify_cases() names; the
 * target's wrong fixture is reported incorrect; a trial of a byte copy of
 * the oracle against the oracle is never a keep.
 */
#ifndef KB_TARGET_H
#define KB_TARGET_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "kb_run.h"
#include "kb_pick.h"

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
        KB_RUN(&r, "verify", (char *)path, "--cases", (char *)kb_verify_cases());
        if (r.code != 0) fail_msg("%s: exit %d\n%s\n%s", rel, r.code, r.out, r.err);
        assert_string_equal(kb_field(&r, "status"), "correct");
        assert_string_equal(kb_field(&r, "target"), TARGET);
        ran++;
    }
    assert_true(ran >= 2); /* baseline and portable run everywhere */
}

static void test_wrong_fixture_is_incorrect(void **s)
{
    (void)s;
    const char *path = kb_path("tests/fixtures/" WRONG_FX ".so");
    if (access(path, R_OK) != 0) fail_msg("%s is not built", path);
    kb_run r;
    KB_RUN(&r, "verify", (char *)path, "--cases", WRONG_CASES);
    assert_int_equal(r.code, 2);
    assert_string_equal(kb_field(&r, "status"), "incorrect");
    assert_non_null(strstr(kb_field(&r, "reason"), "case n="));
}

static void test_oracle_copy_is_not_kept(void **s)
{
    (void)s;
    kb_assert_oracle_copy_not_kept(TARGET);
}

/* A contender built from a Debian library (plugins/<target>/<name>.so):
 * where built it verifies on the cases kb_verify_cases() names and runs to
 * a timed verdict against the oracle, as docs/results.md reports it; where
 * not, the test says which package would build it and skips. */
static inline void kb_check_contender(const char *name, const char *package)
{
    char rel[256], path[4096];
    snprintf(rel, sizeof rel, "plugins/%s/%s.so", TARGET, name);
    snprintf(path, sizeof path, "%s", kb_path(rel));
    if (access(path, R_OK) != 0) {
        print_message("%s not built (apt-get install %s): skipping\n", rel, package);
        skip();
    }
    kb_run *r = malloc(sizeof *r);
    assert_non_null(r);
    KB_RUN(r, "verify", path, "--cases", (char *)kb_verify_cases());
    if (r->code != 0) fail_msg("verify %s: exit %d\n%s\n%s", rel, r->code, r->out, r->err);
    assert_string_equal(kb_field(r, "status"), "correct");
    assert_string_equal(kb_field(r, "candidate_name"), name);
    KB_RUN(r, "trial", path, "--budget", "0.5");
    if (!kb_emulated_timing_verdict(r)) { /* a claim about timing: the native run's */
        char st[32]; /* a copy: kb_field's buffers are reused */
        snprintf(st, sizeof st, "%s", kb_field(r, "status"));
        const int ok = (!strcmp(st, "keep") && r->code == 0) ||
                       (!strcmp(st, "discard") && r->code == 1) ||
                       (!strcmp(st, "inconclusive") && r->code == 4);
        if (!ok) print_error("expected a timed verdict, got '%s' (%d)\n%s\n", st, r->code, r->out);
        assert_true(ok);
        /* an inconclusive trial may have stopped before any figure (n/a) */
        const double g = atof(kb_field(r, "geomean_ratio"));
        if (strcmp(st, "inconclusive") && !(g > 0.0 && g < 100.0))
            fail_msg("%s: a %s verdict with geomean_ratio '%s'\n%s\n%s", rel, st,
                     kb_field(r, "geomean_ratio"), r->out, r->err);
    }
    free(r);
}

#define KB_TARGET_TESTS                                                                 \
    cmocka_unit_test(test_listed_and_pinned), cmocka_unit_test(test_candidates_verify), \
        cmocka_unit_test(test_wrong_fixture_is_incorrect),                              \
        cmocka_unit_test(test_oracle_copy_is_not_kept)

#endif /* KB_TARGET_H */
