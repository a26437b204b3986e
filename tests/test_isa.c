/*
 * test_isa.c -- CPU-feature gating end to end: the built kbench refuses a
 * plugin that declares a feature this machine lacks, naming exactly the
 * missing ones, before any of its code runs; an undeclared instruction the
 * CPU cannot run is still caught, as a SIGILL crash; and a worker can be
 * started through KB_WORKER_EXEC_PREFIX (how scripts/matrix.sh runs kbench
 * for another ISA under qemu-user).
 *
 * The fixtures (tests/fixtures/isa/fx_isa.c) share one kernel that is
 * bit-exact with the oracle: fx_isa_control, which declares nothing, must be
 * correct, so a rejection of the others is their declaration and nothing
 * else. What "missing" means here is computed apart from kbench, with GCC's
 * own CPU detection (libgcc's __builtin_cpu_supports).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cli.h"
#include "kb.h"
#include "report.h"
#include "session.h"
#include "kb_run.h"

#define FX(name) "tests/fixtures/" name ".so"

static void skip_unless(const char *rel)
{
    if (access(kb_path(rel), R_OK) != 0) {
        print_message("%s not built here; skipping\n", rel);
        skip();
    }
}

static void expect_status(const kb_run *r, const char *status, int code)
{
    if (strcmp(kb_field(r, "status"), status) != 0 || r->code != code)
        print_error("expected %s (%d), got '%s' (%d)\nstdout:\n%s\nstderr:\n%s\n", status, code,
                    kb_field(r, "status"), r->code, r->out, r->err);
    assert_string_equal(kb_field(r, "status"), status);
    assert_int_equal(r->code, code);
}

/* The feature list of a "needs CPU features this machine lacks: a b; ..."
 * reason, or NULL when the reason is not that. */
static const char *missing_in_reason(const char *reason, char *out, size_t n)
{
    static const char tag[] = "needs CPU features this machine lacks: ";
    const char *p = strstr(reason, tag);
    if (!p) return NULL;
    p += sizeof tag - 1;
    size_t len = strcspn(p, ";\n");
    if (len >= n) len = n - 1;
    memcpy(out, p, len);
    out[len] = 0;
    return out;
}

/* A rejected verdict for `missing`, with no case run: the host refused the
 * plugin on its descriptor, before prepare. */
static void expect_rejected_for(const kb_run *r, const char *missing)
{
    expect_status(r, "rejected", 3);
    char got[256];
    if (!missing_in_reason(kb_field(r, "reason"), got, sizeof got)) {
        print_error("reason does not name missing CPU features: %s\n", kb_field(r, "reason"));
        fail();
    }
    assert_string_equal(got, missing);
    assert_string_equal(kb_field(r, "cases"), "0");
}

static void test_control_is_correct(void **s)
{
    (void)s;
    skip_unless(FX("fx_isa_control"));
    kb_run r;
    KB_RUN(&r, "verify", (char *)kb_path(FX("fx_isa_control")));
    expect_status(&r, "correct", 0);
    assert_string_equal(kb_field(&r, "candidate_name"), "fx_isa_control");
}

#if defined(__x86_64__)
#define FOREIGN_FEATURE "sve"
#else
#define FOREIGN_FEATURE "avx512f"
#endif

static void test_foreign_feature_rejected(void **s)
{
    (void)s;
    skip_unless(FX("fx_needs_foreign_isa"));
    const char *fx = kb_path(FX("fx_needs_foreign_isa"));
    kb_run r;
    KB_RUN(&r, "trial", (char *)fx, "--budget", "0.5");
    expect_rejected_for(&r, FOREIGN_FEATURE);
    assert_string_equal(kb_field(&r, "geomean_ratio"), "n/a");
    KB_RUN(&r, "verify", (char *)fx);
    expect_rejected_for(&r, FOREIGN_FEATURE);
}

static void test_info_shows_both_sides(void **s)
{
    (void)s;
    skip_unless(FX("fx_needs_foreign_isa"));
    kb_run r;
    KB_RUN(&r, "info", (char *)kb_path(FX("fx_needs_foreign_isa")));
    assert_string_equal(kb_field(&r, "cpu_features_needed"), FOREIGN_FEATURE);
    assert_string_equal(kb_field(&r, "cpu_features_missing"), FOREIGN_FEATURE);
    char host[512];
    kb__cpu_feature_names(kb__cpu_features(), host, sizeof host);
    assert_string_equal(kb_field(&r, "host_cpu_features"), host);
    assert_null(strstr(host, FOREIGN_FEATURE));
    assert_string_equal(kb_field(&r, "status"), "rejected");
}

/* Needs AVX-512F and VP2INTERSECT: on most machines (this project's CI
 * included) only the second is missing, and only it may be named; on one
 * that has both, the plugin runs and is correct. */
static void test_only_missing_features_named(void **s)
{
    (void)s;
#if defined(__x86_64__)
    skip_unless(FX("fx_needs_vp2intersect"));
    __builtin_cpu_init();
    char want[128] = "";
    if (!__builtin_cpu_supports("avx512f")) strcat(want, "avx512f");
    if (!__builtin_cpu_supports("avx512vp2intersect"))
        strcat(want, want[0] ? " avx512vp2intersect" : "avx512vp2intersect");
    kb_run r;
    KB_RUN(&r, "verify", (char *)kb_path(FX("fx_needs_vp2intersect")));
    if (want[0]) {
        expect_rejected_for(&r, want);
    } else {
        expect_status(&r, "correct", 0);
    }
    KB_RUN(&r, "info", (char *)kb_path(FX("fx_needs_vp2intersect")));
    assert_string_equal(kb_field(&r, "cpu_features_needed"), "avx512f avx512vp2intersect");
    assert_string_equal(kb_field(&r, "cpu_features_missing"), want[0] ? want : "none");
#else
    skip();
#endif
}

/* Declares nothing, executes an undefined instruction in run(): the host
 * cannot know beforehand, so it must report the signal, and say what to do. */
static void test_undeclared_instruction_is_sigill_crash(void **s)
{
    (void)s;
    skip_unless(FX("fx_undeclared_sigill"));
    kb_run r;
    KB_RUN(&r, "verify", (char *)kb_path(FX("fx_undeclared_sigill")));
    expect_status(&r, "crash", 3);
    const char *reason = kb_field(&r, "reason");
    assert_non_null(strstr(reason, "SIGILL"));
    assert_non_null(strstr(reason, "during run"));
    assert_non_null(strstr(reason, "cpu_features"));
}

/* The worker started through a prefix program: /usr/bin/env execs its
 * arguments unchanged, so the trial must come out as without it; a prefix
 * that does not exist must fail, which shows the prefix is what ran. */
static void test_worker_exec_prefix(void **s)
{
    (void)s;
    skip_unless(FX("fx_isa_control"));
    if (access("/usr/bin/env", X_OK) != 0) skip();
    const char *fx = kb_path(FX("fx_isa_control"));
    kb_run r;
    setenv("KB_WORKER_EXEC_PREFIX", "/usr/bin/env", 1);
    KB_RUN(&r, "verify", (char *)fx);
    expect_status(&r, "correct", 0);
    setenv("KB_WORKER_EXEC_PREFIX", "/nonexistent/kbench-emulator", 1);
    KB_RUN(&r, "verify", (char *)fx);
    unsetenv("KB_WORKER_EXEC_PREFIX");
    /* The spawn reports the failed step (spawn.c's error pipe), not a
     * worker that exited 127. */
    expect_status(&r, "rejected", 3);
    assert_non_null(strstr(kb_field(&r, "reason"), "exec of the worker failed"));
    assert_non_null(strstr(kb_field(&r, "reason"), "No such file or directory"));
    KB_RUN(&r, "verify", (char *)fx);
    expect_status(&r, "correct", 0);
}

/* kb__cpu_feature_names as the rejection message uses it: one name per
 * known bit, distinct, lower case, no spaces; bit order; unknown bits named
 * by number; bounded and terminated when the buffer is short. */
static void test_feature_names(void **s)
{
    (void)s;
    static const uint64_t known[] = {KB_CPU_SSE42,
                                     KB_CPU_POPCNT,
                                     KB_CPU_AVX,
                                     KB_CPU_AVX2,
                                     KB_CPU_FMA,
                                     KB_CPU_BMI2,
                                     KB_CPU_AVX512F,
                                     KB_CPU_AVX512BW,
                                     KB_CPU_AVX512VL,
                                     KB_CPU_AVX512DQ,
                                     KB_CPU_AVX512VNNI,
                                     KB_CPU_AVX512VBMI2,
                                     KB_CPU_AVX512VP2INTERSECT,
                                     KB_CPU_NEON,
                                     KB_CPU_SVE};
    const size_t nk = sizeof known / sizeof known[0];
    char names[sizeof known / sizeof known[0]][32];
    for (size_t i = 0; i < nk; i++) {
        kb__cpu_feature_names(known[i], names[i], sizeof names[i]);
        assert_true(names[i][0] != 0);
        assert_null(strchr(names[i], ' '));
        assert_true(strncmp(names[i], "bit", 3) != 0);
        for (const char *c = names[i]; *c; c++) assert_false(*c >= 'A' && *c <= 'Z');
        for (size_t j = 0; j < i; j++) assert_string_not_equal(names[i], names[j]);
    }
    /* Reversed order in the mask changes nothing: names follow bit order. */
    char out[64];
    kb__cpu_feature_names(KB_CPU_SVE | KB_CPU_AVX512VP2INTERSECT | KB_CPU_SSE42, out, sizeof out);
    char want[128];
    snprintf(want, sizeof want, "%s %s %s", names[0], names[12], names[14]);
    assert_string_equal(out, want);
    /* A bit from a newer ABI than this host knows. */
    kb__cpu_feature_names((UINT64_C(1) << 63) | KB_CPU_NEON, out, sizeof out);
    snprintf(want, sizeof want, "%s bit63", names[13]);
    assert_string_equal(out, want);
    /* Cut inside the second name: a terminated prefix, nothing past n. */
    memset(out, '#', sizeof out);
    const size_t n = strlen(names[6]) + 4; /* "avx512f avx" + NUL */
    kb__cpu_feature_names(KB_CPU_AVX512F | KB_CPU_AVX512VP2INTERSECT, out, n);
    assert_int_equal(strlen(out), n - 1);
    assert_int_equal(out[n], '#');
    snprintf(want, sizeof want, "%s %s", names[6], names[12]);
    assert_memory_equal(out, want, n - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_control_is_correct),
        cmocka_unit_test(test_foreign_feature_rejected),
        cmocka_unit_test(test_info_shows_both_sides),
        cmocka_unit_test(test_only_missing_features_named),
        cmocka_unit_test(test_undeclared_instruction_is_sigill_crash),
        cmocka_unit_test(test_worker_exec_prefix),
        cmocka_unit_test(test_feature_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
